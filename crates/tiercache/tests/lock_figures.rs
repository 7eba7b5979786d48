//! Lock figures tell healthy coalescing (contended) apart from real failures.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, nodes, server, DEADLINE};
use tiercache::{EntryOptions, ErrorKind, LockOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_another_nodes_load_is_contention_not_failure() {
    let redis = server();
    let fleet = nodes(&redis, "lock-figures", 2).await;
    let (a, b) = (fleet[0].clone(), fleet[1].clone());
    let gate = Arc::new(tokio::sync::Notify::new());
    let opts = EntryOptions::new(Duration::from_secs(60));
    let loading = {
        let (a, gate, opts) = (a.clone(), gate.clone(), opts.clone());
        tokio::spawn(async move {
            a.get_or_load("hot", &opts, move || async move {
                gate.notified().await;
                Ok::<_, std::io::Error>(7_u64)
            })
            .await
        })
    };
    eventually(DEADLINE, "node a holds the lease", || {
        let a = a.clone();
        async move { a.stats().lock_acquired == 1 }
    })
    .await;
    let waiting = {
        let (b, opts) = (b.clone(), opts.clone());
        tokio::spawn(async move {
            b.get_or_load("hot", &opts, || async { Ok::<_, std::io::Error>(8_u64) })
                .await
        })
    };
    eventually(DEADLINE, "node b waits for node a", || {
        let b = b.clone();
        async move { b.stats().fleet_waits == 1 }
    })
    .await;
    gate.notify_one();
    assert_eq!(*loading.await.unwrap().unwrap(), 7);
    assert_eq!(*waiting.await.unwrap().unwrap(), 7, "b got a's value");
    let stats = b.stats();
    assert_eq!(stats.lock_contended, 1, "one wait, however many polls");
    assert_eq!(stats.lock_failed, 0, "{stats:?}");
    assert_eq!(stats.lock_acquired, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_lock_that_times_out_is_one_failure() {
    let redis = server();
    let fleet = nodes(&redis, "lock-timeout", 2).await;
    let held = fleet[0]
        .lock("nightly", LockOptions::from_config(fleet[0].config()))
        .await
        .unwrap();
    let opts = LockOptions {
        timeout: Duration::from_millis(200),
        retries: 50,
        lease: Duration::from_secs(5),
    };
    let err = fleet[1].lock("nightly", opts).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Lock);
    let stats = fleet[1].stats();
    assert_eq!(
        (stats.lock_contended, stats.lock_failed),
        (1, 1),
        "{stats:?}"
    );
    held.release().await.unwrap();
}
