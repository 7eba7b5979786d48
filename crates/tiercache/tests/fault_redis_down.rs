//! Redis down never takes the service down; the node resynchronises when it returns.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{builder, builder_behind, eventually, server, DEADLINE};
use tiercache::{EntryOptions, Source};
use tiercache_testkit::FaultProxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_keep_answering_while_redis_is_killed_and_nodes_resync_after_restart() {
    let mut redis = server();
    let a = builder(&redis, "down").build().await.unwrap();
    let b = builder(&redis, "down").build().await.unwrap();
    let opts = EntryOptions::new(Duration::from_secs(600));
    a.get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(1_u64) })
        .await
        .unwrap();
    b.get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(1_u64) })
        .await
        .unwrap();

    redis.kill();
    let calls = Arc::new(AtomicUsize::new(0));
    for round in 0..20 {
        for node in [&a, &b] {
            let calls = calls.clone();
            let started = Instant::now();
            let v = node
                .get_or_load("k", &opts, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(2_u64)
                })
                .await
                .unwrap();
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "round {round}: answered in bounded time"
            );
            assert!(*v == 1 || *v == 2);
        }
    }
    assert!(
        calls.load(Ordering::SeqCst) <= 4,
        "L1 answers between loads: {}",
        calls.load(Ordering::SeqCst)
    );
    for (name, node) in [("a", &a), ("b", &b)] {
        eventually(
            DEADLINE,
            &format!("node {name} opens its circuit breaker"),
            || async { node.admin().is_redis_unavailable() },
        )
        .await;
    }
    // With the breaker open, a miss goes straight to the loader without waiting on Redis timeouts.
    let started = Instant::now();
    let v = a
        .get_or_load("cold", &opts, || async { Ok::<_, std::io::Error>(3_u64) })
        .await
        .unwrap();
    assert_eq!(*v, 3);
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "took {:?}",
        started.elapsed()
    );

    redis.restart().unwrap();
    for (name, node) in [("a", &a), ("b", &b)] {
        eventually(DEADLINE, &format!("node {name} resynchronises"), || async {
            let _ = node.get::<u64>("probe").await;
            !node.admin().is_redis_unavailable() && !node.admin().is_suspect()
        })
        .await;
    }
    a.invalidate("k").await.unwrap();
    eventually(DEADLINE, "invalidations flow again", || async {
        b.get::<u64>("k").await.unwrap().is_none()
    })
    .await;
}

/// A call whose loader has returned waits for the value's store only until its read deadline: a
/// Redis that stops answering before the store costs it the deadline, not a response timeout (here
/// one minute). The store goes on without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loading_caller_waits_for_its_store_only_until_its_read_deadline() {
    let redis = server();
    let proxy = Arc::new(FaultProxy::start(redis.port()).await.unwrap());
    let a = builder_behind(&proxy, "deadline")
        .response_timeout(Duration::from_secs(60))
        .read_deadline(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let opts = EntryOptions::new(Duration::from_secs(600));
    let cut = proxy.clone();
    let fetched = tokio::time::timeout(
        Duration::from_secs(30),
        a.fetch("k", &opts, move || async move {
            // Redis stops answering between the read that found nothing and the store.
            cut.partition();
            Ok::<_, std::io::Error>(7_u64)
        }),
    )
    .await
    .expect("the loading caller is answered while its store waits for Redis")
    .unwrap();
    assert_eq!(*fetched.value, 7);
    assert_eq!(fetched.source, Source::Loaded);
    assert_eq!(a.stats().read_deadline_hits, 1);
    proxy.heal();
}

/// The read deadline counts time spent on Redis, not the loader's: a slow loader over a healthy
/// Redis still sees its value stored before its caller is answered, so another node reads it from L2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loader_does_not_spend_the_read_deadline() {
    let redis = server();
    let a = builder(&redis, "slow-loader")
        .read_deadline(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let b = builder(&redis, "slow-loader").build().await.unwrap();
    let opts = EntryOptions::new(Duration::from_secs(600));
    let v = a
        .get_or_load("k", &opts, || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, std::io::Error>(5_u64)
        })
        .await
        .unwrap();
    assert_eq!(*v, 5);
    assert_eq!(a.stats().read_deadline_hits, 0, "the store was waited for");
    assert_eq!(
        b.get::<u64>("k").await.unwrap().as_deref(),
        Some(&5),
        "the value is in Redis when its caller is answered"
    );
}
