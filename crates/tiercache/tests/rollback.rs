//! Redis restored from an older snapshot brings back entries that acknowledged invalidations had
//! removed, with the epoch of the time (it is in the snapshot too). The nodes notice that the stream
//! lost the position they had reached, delete the namespace's entries from L2 and drop their L1s, so
//! no read serves what an invalidation they saw acknowledged had removed.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use common::{counting, eventually, nodes, server, DEADLINE};
use tiercache::{Cache, EntryOptions};

fn plain() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(600))
}

fn tagged() -> EntryOptions {
    plain().with_tags(["campaign:1"])
}

async fn read(node: &Cache, key: &str, opts: &EntryOptions, calls: &Arc<AtomicUsize>) -> String {
    let value: Arc<String> = node
        .get_or_load(key, opts, counting(calls, "new".to_owned()))
        .await
        .unwrap();
    (*value).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_an_acknowledged_invalidation_removed_stay_gone_after_a_restore_from_an_older_snapshot(
) {
    let mut redis = server();
    let fleet = nodes(&redis, "rollback", 2).await;
    let calls = Arc::new(AtomicUsize::new(0));
    for node in &fleet {
        for (key, opts) in [("k", plain()), ("t", tagged())] {
            let v: Arc<String> = node
                .get_or_load(key, &opts, counting(&calls, "old".to_owned()))
                .await
                .unwrap();
            assert_eq!(*v, "old");
        }
    }
    // The snapshot a restore will bring back: both entries, the tag's version, the epoch.
    redis.cmd(&["SAVE"]).unwrap();
    fleet[0].invalidate("k").await.unwrap();
    fleet[0].invalidate_tags(["campaign:1"]).await.unwrap();
    eventually(DEADLINE, "node 1 drops both", || {
        let n = fleet[1].clone();
        async move { !n.admin().serves_locally("k") && !n.admin().serves_locally("t") }
    })
    .await;

    let gaps_before: Vec<u64> = fleet.iter().map(|n| n.stats().gaps_detected).collect();
    redis.restart().unwrap();
    // (The nodes may notice and clear the resurrected entries before this test could look at them.)
    let mut db = redis.connection_db(1).await.unwrap();
    let entry = "tc:{8.rollback:1.k}:v";
    for (node, before) in fleet.iter().zip(gaps_before) {
        eventually(DEADLINE, "the node saw its connection go", || {
            let n = node.clone();
            async move { n.stats().gaps_detected > before }
        })
        .await;
    }

    // From here on no read may answer what the invalidations removed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut reads = 0;
    while tokio::time::Instant::now() < deadline {
        for node in &fleet {
            assert_eq!(read(node, "k", &plain(), &calls).await, "new");
            assert_eq!(read(node, "t", &tagged(), &calls).await, "new");
            reads += 2;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reads > 0);
    let detected: u64 = fleet.iter().map(|n| n.stats().rollbacks_detected).sum();
    assert!(detected >= 1, "no node noticed the rollback");
    // The resurrected entries are gone from L2 (what is there now was loaded after the restore).
    let old: Option<Vec<u8>> = redis::cmd("GET")
        .arg(entry)
        .query_async(&mut db)
        .await
        .unwrap();
    assert!(
        old.is_none_or(|v| !v.windows(3).any(|w| w == b"old")),
        "L2 still holds the old value"
    );
}
