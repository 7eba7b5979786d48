//! Redis out of memory with a policy that evicts nothing (`maxmemory` + `noeviction`) refuses the
//! invalidation script. What needs no memory still goes out (the entries and tag versions are
//! deleted, the message is published), so the other nodes stop serving the old values; the call is
//! reported pending with the real cause, and the replay sends it whole once memory is free.
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

async fn read(node: &Cache, key: &str, opts: &EntryOptions, value: &str) -> String {
    let calls = Arc::new(AtomicUsize::new(0));
    let v: Arc<String> = node
        .get_or_load(key, opts, counting(&calls, value.to_owned()))
        .await
        .unwrap();
    (*v).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_redis_has_no_memory_for_still_reaches_the_other_nodes_and_is_pending() {
    let redis = server();
    let fleet = nodes(&redis, "oom", 2).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    for node in &fleet {
        assert_eq!(read(node, "k", &plain(), "old").await, "old");
        assert_eq!(read(node, "t", &tagged(), "old").await, "old");
    }
    assert!(b.admin().serves_locally("k") && b.admin().serves_locally("t"));

    redis.out_of_memory().await.unwrap();
    assert!(
        redis.cmd(&["SET", "probe", "1"]).is_err(),
        "Redis still takes writes"
    );
    // A script's first write decides: a batch that starts by deleting (a key's invalidation) is
    // let through whole; one that starts by writing (a tag's new version) is refused.
    let err = a
        .invalidate_tags(["campaign:1"])
        .await
        .expect_err("Redis refuses writes");
    assert!(err.is_pending(), "{err}");
    assert!(err.to_string().contains("out of memory"), "{err}");
    assert_eq!(a.admin().pending_invalidations(), 1);
    // Queued behind it, in order.
    let err = a.invalidate("k").await.expect_err("behind the first");
    assert!(err.is_pending(), "{err}");
    assert_eq!(a.admin().pending_invalidations(), 2);

    // The other node heard of both although Redis could not record them.
    eventually(DEADLINE, "b drops both values", || async {
        !b.admin().serves_locally("k") && !b.admin().serves_locally("t")
    })
    .await;
    assert!(a.stats().invalidations_sent_without_stream >= 1);
    // And L2 no longer holds them: b loads (Redis cannot keep the new values, but b answers).
    assert_eq!(read(b, "k", &plain(), "new").await, "new");
    assert_eq!(read(b, "t", &tagged(), "new").await, "new");

    // Memory comes back: the replay records the batches in the stream and the queue empties.
    redis.memory_back().unwrap();
    eventually(DEADLINE, "a's queue is replayed", || async {
        a.admin().pending_invalidations() == 0 && !a.admin().is_redis_unavailable()
    })
    .await;
    assert!(a.stats().invalidations_replayed >= 2);
    assert_eq!(read(a, "k", &plain(), "new").await, "new");
}
