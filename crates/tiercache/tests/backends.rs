//! The behaviour every deployment relies on, one test body run on two backends: a single Redis server
//! and a Redis Cluster of three masters with one replica each (keys and tags spread over slots, the
//! bus on sharded pub/sub). Plus what only a cluster can do: lose a master to its replica mid-work.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{counting, eventually, on_both_backends, Backend, RedisCluster, DEADLINE};
use futures_util::future::join_all;
use tiercache::{Cache, EntryLayout, EntryOptions};

fn opts() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(600))
}

/// Keys chosen to land on different slots (and so, on a cluster, on every master).
fn spread_keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("widget:{i}")).collect()
}

async fn roundtrip(backend: Backend) {
    let fleet = backend.nodes("rt", 2).await;
    let keys = spread_keys(12);
    for (i, key) in keys.iter().enumerate() {
        fleet[0].set(key, i as u64, &opts()).await.unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            fleet[1].get::<u64>(key).await.unwrap().as_deref(),
            Some(&(i as u64))
        );
    }
    // A load on one node is an L2 hit on the other, tags and all.
    let tagged = opts().with_tags(["campaign:7"]);
    let calls = Arc::new(AtomicUsize::new(0));
    for key in &keys {
        let loaded = fleet[0]
            .get_or_load(&format!("{key}:t"), &tagged, counting(&calls, 5_u64))
            .await
            .unwrap();
        assert_eq!(*loaded, 5);
        let read = fleet[1]
            .get_or_load(&format!("{key}:t"), &tagged, counting(&calls, 6_u64))
            .await
            .unwrap();
        assert_eq!(*read, 5);
    }
    assert_eq!(calls.load(Ordering::SeqCst), keys.len(), "one load per key");
}

async fn invalidation_reaches_every_node(backend: Backend) {
    let fleet = backend.nodes("inv", 3).await;
    let keys = spread_keys(8);
    let tagged = opts().with_tags(["donations"]);
    for node in &fleet {
        for key in &keys {
            node.get_or_load(key, &tagged, || async { Ok::<_, std::io::Error>(1_u64) })
                .await
                .unwrap();
        }
    }
    // Concurrent invalidations of keys on different slots go out as batches.
    join_all(keys[..4].iter().map(|k| fleet[0].invalidate(k)))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    for (i, node) in fleet.iter().enumerate() {
        for key in &keys[..4] {
            eventually(DEADLINE, &format!("node {i} drops {key}"), || async {
                node.get::<u64>(key).await.unwrap().is_none()
            })
            .await;
        }
        for key in &keys[4..] {
            assert_eq!(node.get::<u64>(key).await.unwrap().as_deref(), Some(&1));
        }
    }
    // A tag reaches every key under it, whatever slot the key is in.
    fleet[1].invalidate_tags(["donations"]).await.unwrap();
    for (i, node) in fleet.iter().enumerate() {
        for key in &keys[4..] {
            eventually(
                DEADLINE,
                &format!("node {i} drops {key} by tag"),
                || async {
                    *node
                        .get_or_load(key, &tagged, || async { Ok::<_, std::io::Error>(2_u64) })
                        .await
                        .unwrap()
                        == 2
                },
            )
            .await;
        }
    }
}

async fn stampede_loads_once(backend: Backend) {
    let fleet = backend.nodes("stampede", 2).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let reads = (0..16).map(|i| {
        let node = fleet[i % 2].clone();
        let calls = calls.clone();
        async move {
            node.get_or_load("hot", &opts(), move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok::<_, std::io::Error>(42_u64)
            })
            .await
            .unwrap()
        }
    });
    for value in join_all(reads).await {
        assert_eq!(*value, 42);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one load in the fleet");
}

async fn an_invalidation_during_a_load_fences_its_store(backend: Backend) {
    let fleet = backend.nodes("fence", 2).await;
    let (a, b) = (fleet[0].clone(), fleet[1].clone());
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
    let tagged = opts().with_tags(["region:eu"]);
    let slow = {
        let tagged = tagged.clone();
        tokio::spawn(async move {
            a.get_or_load("report", &tagged, move || async move {
                let _ = started_tx.send(());
                let _ = finish_rx.await;
                Ok::<_, std::io::Error>(1_u64)
            })
            .await
            .unwrap()
        })
    };
    started_rx.await.unwrap();
    b.invalidate("report").await.unwrap();
    finish_tx.send(()).unwrap();
    assert_eq!(*slow.await.unwrap(), 1, "the caller gets what it loaded");
    assert!(fleet[0].stats().fenced_writes >= 1, "the store was refused");
    let calls = Arc::new(AtomicUsize::new(0));
    eventually(DEADLINE, "b loads the report afresh", || async {
        *b.get_or_load("report", &tagged, counting(&calls, 2_u64))
            .await
            .unwrap()
            == 2
    })
    .await;
    // The same through a tag.
    b.invalidate_tags(["region:eu"]).await.unwrap();
    eventually(DEADLINE, "a loads again after the tag moved", || async {
        *fleet[0]
            .get_or_load("report", &tagged, counting(&calls, 3_u64))
            .await
            .unwrap()
            == 3
    })
    .await;
}

async fn a_lost_publish_is_recovered_from_the_stream(backend: Backend) {
    let fleet = backend.nodes("lost", 2).await;
    for node in &fleet {
        node.get_or_load("k", &opts(), || async { Ok::<_, std::io::Error>(1_u64) })
            .await
            .unwrap();
    }
    fleet[0].admin().fault_skip_publish(1);
    fleet[0].invalidate("k").await.unwrap();
    eventually(
        DEADLINE,
        "node 1 learns of the unpublished invalidation",
        || async { fleet[1].get::<u64>("k").await.unwrap().is_none() },
    )
    .await;
    assert!(fleet[1].stats().gaps_detected >= 1);
}

/// A rolling upgrade's middle: nodes on entry layout 1 and layout 2 share a namespace (each reads
/// only its own layout's entries). Whatever one of them changes, by key, by tag or by `set`, the
/// other stops serving, from L1 and from L2.
async fn nodes_of_both_entry_layouts_see_each_others_changes(backend: Backend) {
    let old = backend
        .builder("mixed")
        .entry_layout(EntryLayout::Hash)
        .build()
        .await
        .unwrap();
    let new = backend.node("mixed").await;
    let keys = spread_keys(6);
    let tagged = opts().with_tags(["campaign:9"]);
    let source = Arc::new(AtomicU64::new(1));
    let load = |source: &Arc<AtomicU64>| {
        let source = source.clone();
        move || async move { Ok::<_, std::io::Error>(source.load(Ordering::SeqCst)) }
    };
    // Both layouts hold every key (each node loads into its own), and both L1s too.
    for node in [&old, &new] {
        for key in &keys {
            assert_eq!(
                *node.get_or_load(key, &tagged, load(&source)).await.unwrap(),
                1
            );
        }
    }
    let serves =
        |node: &Cache, key: &str, want: u64| {
            let (node, key, source) = (node.clone(), key.to_owned(), source.clone());
            async move {
                *node
                .get_or_load(&key, &opts().with_tags(["campaign:9"]), move || async move {
                    Ok::<_, std::io::Error>(source.load(Ordering::SeqCst))
                })
                .await
                .unwrap()
                == want
            }
        };
    // Layout 1 invalidates a key: layout 2's node reloads it.
    source.store(2, Ordering::SeqCst);
    old.invalidate(&keys[0]).await.unwrap();
    eventually(DEADLINE, "layout 2 sees layout 1's invalidation", || {
        serves(&new, &keys[0], 2)
    })
    .await;
    // Layout 2 invalidates a key: layout 1's node reloads it.
    source.store(3, Ordering::SeqCst);
    new.invalidate(&keys[1]).await.unwrap();
    eventually(DEADLINE, "layout 1 sees layout 2's invalidation", || {
        serves(&old, &keys[1], 3)
    })
    .await;
    // A tag, from either side, covers both layouts' entries.
    source.store(4, Ordering::SeqCst);
    new.invalidate_tags(["campaign:9"]).await.unwrap();
    for key in &keys[2..4] {
        eventually(DEADLINE, "layout 1 sees layout 2's tag", || {
            serves(&old, key, 4)
        })
        .await;
        eventually(DEADLINE, "layout 2 sees its own tag", || {
            serves(&new, key, 4)
        })
        .await;
    }
    // `set` on one layout removes the other layout's copy.
    new.set(&keys[4], 50_u64, &tagged).await.unwrap();
    eventually(
        DEADLINE,
        "layout 1 reads layout 2's set through a reload",
        || serves(&old, &keys[4], source.load(Ordering::SeqCst)),
    )
    .await;
    old.set(&keys[5], 60_u64, &tagged).await.unwrap();
    eventually(
        DEADLINE,
        "layout 2 does not serve its old copy after layout 1's set",
        || serves(&new, &keys[5], source.load(Ordering::SeqCst)),
    )
    .await;
}

on_both_backends!(
    roundtrip,
    invalidation_reaches_every_node,
    stampede_loads_once,
    an_invalidation_during_a_load_fences_its_store,
    a_lost_publish_is_recovered_from_the_stream,
    nodes_of_both_entry_layouts_see_each_others_changes,
);

/// A master of the cluster dies while one node changes data and invalidates it and another reads
/// through the cache; its replica takes over. Once the fleet has recovered, no node serves a value
/// older than the source's, on any key: an invalidation acknowledged before the crash was replicated
/// (`WAIT`), one that failed was queued and replayed, and the bus's shard moving was a gap the
/// subscribers recovered from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_master_mid_workload_leaves_no_stale_read() {
    let Backend::Cluster(mut cluster) = Backend::cluster() else {
        unreachable!("Backend::cluster builds a cluster")
    };
    let builder = |cluster: &RedisCluster| {
        Cache::builder()
            .namespace("failover")
            .heartbeat_interval(Duration::from_millis(100))
            .cluster_urls(cluster.urls())
    };
    let writer = builder(&cluster).build().await.unwrap();
    let reader = builder(&cluster).build().await.unwrap();
    let keys = spread_keys(24);
    // The source of truth the loaders read: key -> version.
    let source: Arc<HashMap<String, AtomicU64>> = Arc::new(
        keys.iter()
            .map(|k| (k.clone(), AtomicU64::new(0)))
            .collect(),
    );
    let read = |node: Cache, key: String, source: Arc<HashMap<String, AtomicU64>>| async move {
        let name = key.clone();
        node.get_or_load(&name, &opts(), move || async move {
            Ok::<_, std::io::Error>(source[&key].load(Ordering::SeqCst))
        })
        .await
    };
    for key in &keys {
        read(reader.clone(), key.clone(), source.clone())
            .await
            .unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let work = {
        let (writer, reader, keys, source, stop) = (
            writer.clone(),
            reader.clone(),
            keys.clone(),
            source.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut round = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let key = &keys[round % keys.len()];
                // The database commits first, then the cache is told.
                source[key].fetch_add(1, Ordering::SeqCst);
                // During the failover a call may fail; the invalidation is queued and replayed.
                let _ = writer.invalidate(key).await;
                let _ = read(
                    reader.clone(),
                    keys[(round * 7) % keys.len()].clone(),
                    source.clone(),
                )
                .await;
                round += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            round
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The master of the namespace's slot: the bus's stream, channel and tag versions, and a third of
    // the entries.
    let slot = RedisCluster::slot_of("tc:{8.failover}:s");
    let killed = cluster.kill_master_for_slot(slot).unwrap();
    let promoted = cluster
        .wait_for_failover(slot, Duration::from_secs(30))
        .unwrap();
    assert_ne!(killed, promoted);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let rounds = work.await.unwrap();
    assert!(rounds > keys.len(), "the workload ran ({rounds} rounds)");

    for (name, node) in [("writer", &writer), ("reader", &reader)] {
        eventually(
            Duration::from_secs(30),
            &format!("the {name} recovers"),
            || async {
                !node.admin().is_suspect()
                    && node.admin().pending_invalidations() == 0
                    && !node.admin().is_redis_unavailable()
            },
        )
        .await;
    }
    for key in &keys {
        let want = source[key].load(Ordering::SeqCst);
        for (name, node) in [("writer", &writer), ("reader", &reader)] {
            let got = read(node.clone(), key.clone(), source.clone())
                .await
                .unwrap();
            assert_eq!(
                *got, want,
                "{name} serves {key} at version {got}, the source is at {want}"
            );
        }
    }
}
