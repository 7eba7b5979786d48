//! Per-node single-flight: concurrent callers of one key share one load.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{node, server};
use tiercache::{EntryOptions, ErrorKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_callers_run_the_loader_once() {
    let redis = server();
    let cache = node(&redis, "flight").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let opts = EntryOptions::new(Duration::from_secs(60));
    let mut callers = Vec::new();
    for _ in 0..200 {
        let (cache, calls, gate, opts) = (cache.clone(), calls.clone(), gate.clone(), opts.clone());
        callers.push(tokio::spawn(async move {
            cache
                .get_or_load("hot", &opts, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    gate.notified().await;
                    Ok::<_, std::io::Error>(99_u64)
                })
                .await
        }));
    }
    common::eventually(
        common::DEADLINE,
        "every caller has joined the flight",
        || {
            let cache = cache.clone();
            async move { cache.stats().coalesced >= 199 }
        },
    )
    .await;
    gate.notify_one();
    for c in callers {
        assert_eq!(*c.await.unwrap().unwrap(), 99);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().loads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_is_shared_by_its_waiters_and_not_cached() {
    let redis = server();
    let cache = node(&redis, "flight-err").await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let opts = EntryOptions::new(Duration::from_secs(60));
    let mut callers = Vec::new();
    for _ in 0..20 {
        let (cache, gate, opts) = (cache.clone(), gate.clone(), opts.clone());
        callers.push(tokio::spawn(async move {
            cache
                .get_or_load::<u64, _, _, _>("k", &opts, move || async move {
                    gate.notified().await;
                    Err(std::io::Error::other("aggregate query failed"))
                })
                .await
        }));
    }
    common::eventually(common::DEADLINE, "every caller has joined", || {
        let cache = cache.clone();
        async move { cache.stats().coalesced >= 19 }
    })
    .await;
    gate.notify_one();
    for c in callers {
        let err = c.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Loader);
        assert!(err.to_string().contains("aggregate query failed"), "{err}");
    }
    assert_eq!(cache.stats().loads, 1);
    assert_eq!(cache.get::<u64>("k").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_sharing_a_failed_redis_read_all_get_the_redis_error_with_its_source() {
    let redis = server();
    let cache = common::builder(&redis, "flight-redis-err")
        .response_timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    // Redis hangs: the one read of the flight times out, and every reader that shared it must see
    // that Redis error, not a message that lost it.
    redis.pause(Duration::from_secs(3));
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get::<u64>("k").await })
        })
        .collect();
    for reader in readers {
        let err = reader.await.unwrap().expect_err("Redis hangs");
        assert_eq!(err.kind(), ErrorKind::Redis, "{err}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "the Redis error is the source: {err:?}"
        );
    }
    assert!(cache.stats().coalesced > 0, "the readers shared one read");
}

#[tokio::test]
async fn a_panicking_loader_is_an_error_and_the_next_call_loads_again() {
    let redis = server();
    let cache = node(&redis, "flight-panic").await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    let err = cache
        .get_or_load::<u64, _, _, std::io::Error>("k", &opts, || async { panic!("loader bug") })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loader bug"), "{err}");
    let v = cache
        .get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(5_u64) })
        .await
        .unwrap();
    assert_eq!(*v, 5);
}
