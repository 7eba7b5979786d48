//! In a run of misses a node's cold `get_or_load` reads go straight to the fenced read (one round trip
//! before the load instead of two); what they answer is what the hit read would have answered, the
//! lease still lets one node load, and a run of hits brings the hit read back.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{counting, on_both_backends, Backend};
use futures_util::future::join_all;
use tiercache::{Cache, EntryOptions};

fn opts() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(300))
}

/// Reads `n` keys nobody has, each loaded and stored: a run of misses.
async fn miss_run(cache: &Cache, prefix: &str, n: u64) {
    for i in 0..n {
        let value = cache
            .get_or_load(&format!("{prefix}{i}"), &opts(), move || async move {
                Ok::<_, std::io::Error>(i)
            })
            .await
            .unwrap();
        assert_eq!(*value, i);
    }
}

/// `key` through `get_or_load` with a loader that fails: the value must come from a tier.
async fn hit(cache: &Cache, key: &str) -> u64 {
    *cache
        .get_or_load(key, &opts(), || async {
            Err::<u64, _>(std::io::Error::other("this read must hit"))
        })
        .await
        .unwrap_or_else(|e| panic!("{key} was not a hit: {e}"))
}

async fn a_run_of_misses_sends_cold_reads_to_the_fenced_read_until_a_run_of_hits(backend: Backend) {
    let writer = backend.node("runs").await;
    let reader = backend.node("runs").await;
    assert_eq!(reader.stats().l2_fence_first_reads, 0);

    miss_run(&reader, "new", 12).await;
    let after_misses = reader.stats();
    assert!(
        after_misses.l2_fence_first_reads > 0,
        "twelve misses in a row did not switch to the fenced read: {after_misses:?}"
    );
    assert_eq!(after_misses.loads, 12);

    for i in 0..20_u64 {
        writer
            .set(&format!("hot{i}"), 100 + i, &opts())
            .await
            .unwrap();
    }
    // Hits answered by the fenced read are hits like any other: the stored value, no load.
    let first = hit(&reader, "hot0").await;
    assert_eq!(first, 100);
    let fenced_hits = reader.stats().l2_fence_first_reads;
    assert!(
        fenced_hits > after_misses.l2_fence_first_reads,
        "the first hit after the misses was not read fenced first"
    );
    for i in 1..10_u64 {
        assert_eq!(hit(&reader, &format!("hot{i}")).await, 100 + i);
    }
    let switched_back = reader.stats().l2_fence_first_reads;
    for i in 10..20_u64 {
        assert_eq!(hit(&reader, &format!("hot{i}")).await, 100 + i);
    }
    let stats = reader.stats();
    assert_eq!(
        stats.l2_fence_first_reads, switched_back,
        "ten hits in a row did not bring the hit read back: {stats:?}"
    );
    assert_eq!(stats.loads, 12, "a hit ran its loader: {stats:?}");
    assert_eq!(stats.l2_hits, 20, "{stats:?}");
}

async fn a_run_of_misses_on_two_nodes_still_loads_a_key_once(backend: Backend) {
    let nodes = backend.nodes("runs-lease", 2).await;
    for (n, node) in nodes.iter().enumerate() {
        miss_run(node, &format!("prime{n}-"), 12).await;
        assert!(node.stats().l2_fence_first_reads > 0);
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let shared_calls = &calls;
    let reads = nodes.iter().flat_map(|node| {
        (0..8).map(move |_| {
            let calls = shared_calls.clone();
            async move {
                node.get_or_load("shared", &opts(), move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // Long enough that every other read arrives while the load runs.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, std::io::Error>(7_u64)
                })
                .await
            }
        })
    });
    for value in join_all(reads).await {
        assert_eq!(*value.unwrap(), 7);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the key was loaded more than once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tagged_entry_whose_tag_changed_is_not_served_by_a_fenced_first_read() {
    let backend = Backend::server();
    let writer = backend.node("runs-tags").await;
    let reader = backend.node("runs-tags").await;
    let tagged = opts().with_tags(["team"]);
    let calls = Arc::new(AtomicUsize::new(0));
    let stored = writer
        .get_or_load("standings", &tagged, counting(&calls, 1_u64))
        .await
        .unwrap();
    assert_eq!(*stored, 1);

    miss_run(&reader, "new", 12).await;
    writer.invalidate_tags(["team"]).await.unwrap();
    let before = reader.stats().l2_fence_first_reads;
    let read = reader
        .get_or_load("standings", &tagged, counting(&calls, 2_u64))
        .await
        .unwrap();
    assert!(reader.stats().l2_fence_first_reads > before);
    assert_eq!(*read, 2, "the entry of the old tag version was served");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

on_both_backends!(
    a_run_of_misses_sends_cold_reads_to_the_fenced_read_until_a_run_of_hits,
    a_run_of_misses_on_two_nodes_still_loads_a_key_once,
);
