//! Counters reach the installed `metrics` recorder: batched off the hit path, and in full.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{builder, server, DEADLINE};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tiercache::EntryOptions;
use tiercache_testkit::eventually_sync;

/// L1 hits the recorder received since the last call (a debugging snapshot resets its counters).
fn exported_hits(snapshotter: &Snapshotter) -> u64 {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| {
            let key = key.key();
            key.name() == "tiercache_l1_hits_total"
                && key
                    .labels()
                    .any(|l| l.key() == "namespace" && l.value() == "export")
        })
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => n,
            other => panic!("a counter, not {other:?}"),
        })
        .sum()
}

#[test]
fn every_count_reaches_the_recorder_in_the_background_and_on_demand() {
    let redis = server();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // Handles are taken when the node is built, so the recorder need only be current then.
    let cache = metrics::with_local_recorder(&recorder, || {
        rt.block_on(builder(&redis, "export").build()).unwrap()
    });
    let hits = |n: u32| {
        rt.block_on(async {
            for _ in 0..n {
                assert_eq!(*cache.get::<u32>("k").await.unwrap().unwrap(), 7);
            }
        });
    };
    rt.block_on(cache.set("k", 7u32, &EntryOptions::new(Duration::from_secs(600))))
        .unwrap();

    hits(100);
    let mut exported = 0;
    eventually_sync(DEADLINE, "the publisher hands over every hit", || {
        exported += exported_hits(&snapshotter);
        exported == 100
    });
    assert_eq!(cache.stats().l1_hits, 100);

    hits(50);
    cache.admin().publish_metrics();
    exported += exported_hits(&snapshotter);
    assert_eq!(exported, 150, "publish_metrics hands over at once");
    cache.admin().publish_metrics();
    assert_eq!(
        exported_hits(&snapshotter),
        0,
        "nothing is handed over twice"
    );
}
