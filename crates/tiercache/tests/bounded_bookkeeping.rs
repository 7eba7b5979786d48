//! Requests that make ever new tags must not grow Redis forever nor flush any node's L1: every key
//! the cache creates expires (but the namespace's replay stream, capped, and its epoch, one key), and
//! a node past its bound of known tag versions forgets the ones no L1 entry carries.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use common::{builder, counting, server, RedisServer};
use futures_util::stream::{self, StreamExt};
use tiercache::{Cache, EntryOptions};

const NAMESPACE: &str = "bounded";
/// Distinct tags the invalidations make, beside the tags of the loaded entries.
const INVALIDATED_TAGS: usize = 100_000;
const LOADED_ENTRIES: usize = 1_000;
const TAGS_PER_ENTRY: usize = 10;
/// The nodes' bound: above the tags their L1 entries carry (10,001), far below what they hear of.
const MAX_KNOWN_TAGS: usize = 30_000;

async fn node(redis: &RedisServer) -> Cache {
    builder(redis, NAMESPACE)
        .max_known_tags(MAX_KNOWN_TAGS)
        .build()
        .await
        .unwrap()
}

/// Every key in tiercache's database with its remaining life in ms (-1: none).
async fn keys_and_lives(redis: &RedisServer) -> Vec<(String, i64)> {
    let mut conn = redis.connection_db(1).await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(1000) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("PTTL").arg(key);
        }
        let lives: Vec<i64> = pipe.query_async(&mut conn).await.unwrap();
        out.extend(chunk.iter().cloned().zip(lives));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_distinct_tags_leave_redis_bounded_and_no_l1_flushed() {
    let redis = server();
    let (a, b) = (node(&redis).await, node(&redis).await);
    let calls = Arc::new(AtomicUsize::new(0));
    let hot = EntryOptions::new(Duration::from_secs(300)).with_tags(["hot"]);
    for n in [&a, &b] {
        let v: Arc<String> = n
            .get_or_load("hot", &hot, counting(&calls, "hot".to_owned()))
            .await
            .unwrap();
        assert_eq!(*v, "hot");
    }

    // Entries with tags of their own, loaded on a: their tags are in use there.
    stream::iter(0..LOADED_ENTRIES)
        .for_each_concurrent(32, |i| {
            let (a, calls) = (a.clone(), calls.clone());
            async move {
                let tags = (0..TAGS_PER_ENTRY).map(|t| format!("entry-{i}-{t}"));
                let opts = EntryOptions::new(Duration::from_secs(60)).with_tags(tags);
                let _: Arc<usize> = a
                    .get_or_load(&format!("entry-{i}"), &opts, counting(&calls, i))
                    .await
                    .unwrap();
            }
        })
        .await;
    // Tags nobody caches under, invalidated through a: both nodes hear of each.
    let tags: Vec<String> = (0..INVALIDATED_TAGS)
        .map(|i| format!("fresh-{i}"))
        .collect();
    for chunk in tags.chunks(1000) {
        a.invalidate_tags(chunk).await.unwrap();
    }
    common::eventually(common::DEADLINE, "b heard of every invalidated tag", || {
        let b = b.clone();
        async move { b.stats().invalidations_received >= INVALIDATED_TAGS as u64 }
    })
    .await;

    for (name, n) in [("a", &a), ("b", &b)] {
        let stats = n.stats();
        assert_eq!(stats.l1_drops, 0, "node {name} dropped its L1");
        assert!(
            stats.tags_forgotten > 0,
            "node {name} never reached its bound"
        );
        assert!(
            n.admin().known_tags() <= MAX_KNOWN_TAGS,
            "node {name} knows {} tags",
            n.admin().known_tags()
        );
        assert!(
            n.admin().serves_locally("hot"),
            "node {name} lost its hot entry"
        );
    }
    let kept = (0..LOADED_ENTRIES)
        .filter(|i| a.admin().serves_locally(&format!("entry-{i}")))
        .count();
    assert_eq!(kept, LOADED_ENTRIES, "entries whose tags are in use stay");

    let lives = keys_and_lives(&redis).await;
    let forever: Vec<&(String, i64)> = lives.iter().filter(|(_, life)| *life < 0).collect();
    // The replay stream (capped by TIERCACHE_STREAM_MAX_LEN) and the epoch: one each per namespace.
    assert!(
        forever.len() <= 2
            && forever
                .iter()
                .all(|(k, _)| k.ends_with("}:s") || k.ends_with("}:e")),
        "keys that never expire: {forever:?}"
    );
    let tag_keys = lives.iter().filter(|(k, _)| k.contains("}:t:")).count();
    assert!(
        tag_keys >= INVALIDATED_TAGS,
        "every tag has its version ({tag_keys})"
    );
    // The longest a key lives: the entries' lifetime in Redis (TTL plus the fail-safe hour), or a
    // generation's lifetime (10 minutes), whichever is longer.
    let longest = Duration::from_secs(300 + 3600).as_millis() as i64;
    assert!(
        lives.iter().all(|(_, life)| *life <= longest),
        "a key outlives every entry: {:?}",
        lives.iter().max_by_key(|(_, life)| *life)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_version_outlives_the_longest_entry_recording_it() {
    let redis = server();
    let a = node(&redis).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let short = EntryOptions::new(Duration::from_secs(1)).with_tags(["shared"]);
    let long = EntryOptions::new(Duration::from_secs(7200)).with_tags(["shared"]);
    let _: Arc<u8> = a
        .get_or_load("long", &long, counting(&calls, 1u8))
        .await
        .unwrap();
    let _: Arc<u8> = a
        .get_or_load("short", &short, counting(&calls, 2u8))
        .await
        .unwrap();
    a.set("set", 3u8, &long).await.unwrap();
    let lives = keys_and_lives(&redis).await;
    let life_of = |suffix: &str| {
        lives
            .iter()
            .find(|(k, _)| k.ends_with(suffix))
            .map(|(_, life)| *life)
            .unwrap()
    };
    let tag = life_of(":t:shared");
    for entry in ["4.long}:v", "3.set}:v"] {
        assert!(
            tag >= life_of(entry) - 1_000,
            "the tag ({tag} ms) dies before {entry} ({} ms)",
            life_of(entry)
        );
    }
    // An invalidation keeps the version's life: entries recording the old one must find it changed.
    a.invalidate_tags(["shared"]).await.unwrap();
    let after = keys_and_lives(&redis).await;
    let tag_after = after
        .iter()
        .find(|(k, _)| k.ends_with(":t:shared"))
        .map(|(_, life)| *life)
        .unwrap();
    assert!(tag_after >= tag - 60_000, "{tag_after} < {tag}");
}
