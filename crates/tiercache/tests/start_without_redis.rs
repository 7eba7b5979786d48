//! A node can be built while Redis is down; it joins the fleet when Redis answers.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{builder, eventually, server, DEADLINE};
use tiercache::{EntryOptions, ErrorKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_built_while_redis_is_down_serves_loads_and_joins_when_redis_returns() {
    let mut redis = server();
    redis.kill();
    let started = Instant::now();
    let a = builder(&redis, "late").build().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "build returned in {:?}",
        started.elapsed()
    );
    assert!(a.admin().is_redis_unavailable());

    // Loaders answer, coalesced on this node.
    let calls = Arc::new(AtomicUsize::new(0));
    let opts = EntryOptions::new(Duration::from_secs(600));
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut waiting = Vec::new();
    for _ in 0..8 {
        let (a, opts, calls, gate) = (a.clone(), opts.clone(), calls.clone(), gate.clone());
        waiting.push(tokio::spawn(async move {
            a.get_or_load("k", &opts, move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                Ok::<_, std::io::Error>(1_u64)
            })
            .await
        }));
    }
    eventually(DEADLINE, "the loader runs", || async {
        calls.load(Ordering::SeqCst) == 1
    })
    .await;
    gate.notify_waiters();
    for w in waiting {
        assert_eq!(*w.await.unwrap().unwrap(), 1);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one load for eight callers"
    );
    let v = a
        .get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(2_u64) })
        .await
        .unwrap();
    assert_eq!(*v, 1, "L1 answers while Redis is away");

    redis.restart().unwrap();
    eventually(DEADLINE, "the node joins the fleet", || async {
        !a.admin().is_redis_unavailable()
    })
    .await;
    assert!(a.stats().l1_drops >= 1, "what L1 took meanwhile is dropped");
    let v = a
        .get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(3_u64) })
        .await
        .unwrap();
    assert_eq!(
        *v, 3,
        "the value cached while alone is not served after joining"
    );

    // It is a member of the fleet now: invalidations flow both ways.
    let b = builder(&redis, "late").build().await.unwrap();
    assert_eq!(
        *b.get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(9_u64) })
            .await
            .unwrap(),
        3,
        "b reads what a stored in L2"
    );
    b.invalidate("k").await.unwrap();
    eventually(DEADLINE, "a hears b's invalidation", || async {
        a.get::<u64>("k").await.unwrap().is_none()
    })
    .await;
    b.get_or_load("j", &opts, || async { Ok::<_, std::io::Error>(5_u64) })
        .await
        .unwrap();
    a.invalidate("j").await.unwrap();
    eventually(DEADLINE, "b hears a's invalidation", || async {
        b.get::<u64>("j").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_redis_at_start_fails_fast_without_printing_the_password() {
    let mut redis = server();
    let port = redis.port();
    redis.kill();
    let err = tiercache::Cache::builder()
        .redis_url(&format!("redis://cacheuser:s3cret-pw@127.0.0.1:{port}"))
        .require_redis_at_start(true)
        .build()
        .await
        .expect_err("Redis is down");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        std::error::Error::source(&err).is_some(),
        "the connection error is kept as the source: {err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(shown.contains(&port.to_string()), "{shown}");
    assert!(!shown.contains("s3cret-pw"), "password leaked: {shown}");
}
