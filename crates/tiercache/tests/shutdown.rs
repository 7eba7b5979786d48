//! `Cache::shutdown` sends what a node still queues before the process exits: invalidations made
//! while Redis was out of reach reach Redis and the fleet, or the call says how many did not.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use common::{builder, counting, eventually, server, DEADLINE};
use tiercache::{Cache, EntryOptions, Error, ErrorKind};
use tiercache_testkit::FaultProxy;

fn opts() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(600))
}

async fn node_behind(proxy: &FaultProxy, namespace: &str, shutdown_timeout: Duration) -> Cache {
    common::builder_behind(proxy, namespace)
        .shutdown_timeout(shutdown_timeout)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_shut_down_sends_the_invalidations_it_queued() {
    let redis = server();
    let proxy = FaultProxy::start(redis.port()).await.unwrap();
    let a = node_behind(&proxy, "shutdown", Duration::from_secs(20)).await;
    let b = builder(&redis, "shutdown").build().await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    for node in [&a, &b] {
        let v: Arc<String> = node
            .get_or_load("k", &opts(), counting(&calls, "old".to_owned()))
            .await
            .unwrap();
        assert_eq!(*v, "old");
    }

    proxy.partition();
    let err = a.invalidate("k").await.expect_err("Redis is out of reach");
    assert!(err.is_pending(), "{err}");
    assert_eq!(a.admin().pending_invalidations(), 1);

    // The process is asked to stop while Redis is still away; Redis comes back during the shutdown.
    let stopping = tokio::spawn({
        let a = a.clone();
        async move { a.shutdown().await }
    });
    eventually(DEADLINE, "the shutdown refuses new work", || {
        let a = a.clone();
        async move {
            a.invalidate_tags(["x"])
                .await
                .is_err_and(|e| e.kind() == ErrorKind::Unavailable)
        }
    })
    .await;
    proxy.heal();
    let report = stopping.await.unwrap().expect("everything queued was sent");
    assert!(report.sent >= 1, "{report:?}");
    assert_eq!(a.admin().pending_invalidations(), 0);
    drop(a);

    // The invalidation reached Redis and the other node, although the node that made it is gone.
    eventually(DEADLINE, "b stops serving the old value", || {
        let b = b.clone();
        async move { !b.admin().serves_locally("k") }
    })
    .await;
    let v: Arc<String> = b
        .get_or_load("k", &opts(), counting(&calls, "new".to_owned()))
        .await
        .unwrap();
    assert_eq!(*v, "new", "L2 no longer holds the old value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_that_cannot_reach_redis_says_how_much_was_not_sent() {
    let redis = server();
    let proxy = FaultProxy::start(redis.port()).await.unwrap();
    let a = node_behind(&proxy, "shutdown-lost", Duration::from_millis(500)).await;
    a.set("k", 1_u8, &opts()).await.unwrap();
    proxy.partition();
    assert!(a.invalidate("k").await.unwrap_err().is_pending());
    assert!(a.invalidate_tags(["t"]).await.unwrap_err().is_pending());

    let err = tokio::time::timeout(DEADLINE, a.shutdown())
        .await
        .expect("the shutdown keeps to its deadline")
        .expect_err("Redis never came back");
    match &err {
        Error::ShutdownIncomplete {
            unsent,
            namespace_clear,
            ..
        } => {
            assert_eq!(*unsent, 2, "{err}");
            assert!(!namespace_clear);
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(err.kind(), ErrorKind::Pending);
}
