//! Invalidations that cannot reach Redis are kept, said to be pending, and replayed in order when
//! Redis answers (auto-recovery), before the node uses L2 again.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{builder, counting, eventually, server, DEADLINE};
use tiercache::{Cache, EntryOptions, ErrorKind};
use tiercache_testkit::FaultProxy;

fn opts() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(600))
}

async fn node_behind(proxy: &FaultProxy, namespace: &str, max_pending: usize) -> Cache {
    common::builder_behind(proxy, namespace)
        .max_pending_invalidations(max_pending)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_made_during_a_partition_reach_the_fleet_when_it_heals() {
    let redis = server();
    let proxy = FaultProxy::start(redis.port()).await.unwrap();
    let a = node_behind(&proxy, "partition", 100).await;
    let b = builder(&redis, "partition").build().await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let tagged = opts().with_tags(["campaign:1"]);
    for node in [&a, &b] {
        node.get_or_load("k", &opts(), counting(&calls, 1_u64))
            .await
            .unwrap();
        node.get_or_load("t", &tagged, counting(&calls, 1_u64))
            .await
            .unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1 + 1, "b read what a stored");

    proxy.partition();
    let err = a.invalidate("k").await.expect_err("Redis is out of reach");
    assert_eq!(err.kind(), ErrorKind::Pending, "{err}");
    assert!(err.is_pending());
    let err = a
        .invalidate_tags(["campaign:1"])
        .await
        .expect_err("still out of reach");
    assert!(err.is_pending(), "{err}");
    let err = a
        .set("s", 7_u64, &opts())
        .await
        .expect_err("set cannot reach Redis");
    assert!(err.is_pending(), "{err}");
    // At least these three: the first read of "t" created its tag's version and announces it from a
    // spawned task, which on a loaded machine may meet the partition too and wait beside them.
    assert!(
        a.admin().pending_invalidations() >= 3,
        "{} queued",
        a.admin().pending_invalidations()
    );

    // The invalidations hold on a at once, while b (and L2) still have the old values.
    let v = a
        .get_or_load("k", &opts(), counting(&calls, 2_u64))
        .await
        .unwrap();
    assert_eq!(*v, 2, "a does not serve what it invalidated");
    let v = a
        .get_or_load("t", &tagged, counting(&calls, 2_u64))
        .await
        .unwrap();
    assert_eq!(*v, 2);
    assert_eq!(
        *a.get::<u64>("s").await.unwrap().unwrap(),
        7,
        "a keeps its own set briefly"
    );
    assert_eq!(*b.get::<u64>("k").await.unwrap().unwrap(), 1);

    proxy.heal();
    eventually(DEADLINE, "a replays its queue", || async {
        a.admin().pending_invalidations() == 0
    })
    .await;
    eventually(DEADLINE, "b drops k and t", || async {
        b.get::<u64>("k").await.unwrap().is_none()
            && *b
                .get_or_load("t", &tagged, counting(&calls, 3_u64))
                .await
                .unwrap()
                == 3
    })
    .await;
    assert!(a.stats().invalidations_replayed >= 3);
    eventually(DEADLINE, "a uses L2 again", || async {
        !a.admin().is_redis_unavailable()
            && !a.admin().is_suspect()
            && a.get::<u64>("t").await.unwrap().as_deref() == Some(&3)
    })
    .await;
    // Ordinary invalidations go straight through again.
    a.invalidate("t").await.unwrap();
    eventually(DEADLINE, "b hears it", || async {
        b.get::<u64>("t").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_falls_back_to_clearing_the_namespace() {
    let redis = server();
    let proxy = FaultProxy::start(redis.port()).await.unwrap();
    let a = node_behind(&proxy, "overflow", 3).await;
    let b = builder(&redis, "overflow").build().await.unwrap();
    let other = builder(&redis, "elsewhere").build().await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    for key in ["x", "y", "z"] {
        b.get_or_load(key, &opts(), counting(&calls, 1_u64))
            .await
            .unwrap();
    }
    other
        .get_or_load("x", &opts(), counting(&calls, 1_u64))
        .await
        .unwrap();

    proxy.partition();
    let err = a
        .invalidate_tags(["t1", "t2", "t3", "t4", "t5"])
        .await
        .expect_err("out of reach");
    match err {
        tiercache::Error::Pending {
            namespace_clear, ..
        } => assert!(namespace_clear),
        other => panic!("expected Pending, got {other}"),
    }
    assert_eq!(a.stats().pending_overflows, 1);

    proxy.heal();
    eventually(
        DEADLINE,
        "every entry of the namespace is gone from b and L2",
        || async {
            let mut gone = true;
            for key in ["x", "y", "z"] {
                gone &= b.get::<u64>(key).await.unwrap().is_none();
            }
            gone
        },
    )
    .await;
    assert_eq!(
        other.get::<u64>("x").await.unwrap().as_deref(),
        Some(&1),
        "another namespace is untouched"
    );
    eventually(DEADLINE, "a uses L2 again", || async {
        a.admin().pending_invalidations() == 0 && !a.admin().is_redis_unavailable()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_made_before_the_node_ever_reached_redis_is_replayed_when_it_joins() {
    let redis = server();
    let b = builder(&redis, "early").build().await.unwrap();
    b.get_or_load("k", &opts(), || async { Ok::<_, std::io::Error>(1_u64) })
        .await
        .unwrap();
    let proxy = FaultProxy::start(redis.port()).await.unwrap();
    proxy.partition();
    let a = Cache::builder()
        .redis_url(&proxy.url())
        .namespace("early")
        .heartbeat_interval(Duration::from_millis(100))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    assert!(a.admin().is_redis_unavailable());
    assert!(a.invalidate("k").await.unwrap_err().is_pending());
    proxy.heal();
    eventually(DEADLINE, "a joins and b hears the invalidation", || async {
        !a.admin().is_redis_unavailable() && b.get::<u64>("k").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_that_could_not_reach_redis_is_replayed_as_the_keys_invalidation() {
    let redis = server();
    let proxy = FaultProxy::start(redis.port()).await.unwrap();
    let a = node_behind(&proxy, "set-replay", 100).await;
    let b = builder(&redis, "set-replay").build().await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    for node in [&a, &b] {
        node.get_or_load("s", &opts(), counting(&calls, 1_u64))
            .await
            .unwrap();
    }

    // The set is the first call to meet the partition: its write goes out in the bus's batch,
    // which times out and is queued.
    proxy.partition();
    let err = a
        .set("s", 7_u64, &opts())
        .await
        .expect_err("set cannot reach Redis");
    assert!(err.is_pending(), "{err}");
    assert_eq!(*a.get::<u64>("s").await.unwrap().unwrap(), 7);

    proxy.heal();
    eventually(DEADLINE, "a replays its queue and b drops s", || async {
        a.admin().pending_invalidations() == 0 && b.get::<u64>("s").await.unwrap().is_none()
    })
    .await;
    // By the time a queued write reaches Redis another node may have written a newer value: the
    // replay invalidated the key instead of writing 7 late.
    let v = b
        .get_or_load("s", &opts(), counting(&calls, 2_u64))
        .await
        .unwrap();
    assert_eq!(*v, 2, "the queued set was replayed as a write");
}
