//! Bookkeeping the cache cannot read (garbage bytes, a key of another type) means "changed": the node
//! fails closed, counts it, rewrites it, and the next store succeeds. Nothing in Redis fails `build`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{builder, counting, eventually, server, RedisServer, DEADLINE};
use tiercache::{Cache, EntryLayout, EntryOptions};

/// The garbage a key can hold: bytes that are no nonce, and a value of another Redis type.
#[derive(Debug, Clone, Copy)]
enum Garbage {
    Bytes,
    WrongType,
}

const BOTH: [Garbage; 2] = [Garbage::Bytes, Garbage::WrongType];

/// Writes `garbage` at `key` in tiercache's database (1).
async fn plant(redis: &RedisServer, key: &str, garbage: Garbage) {
    let mut conn = redis.connection_db(1).await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    match garbage {
        Garbage::Bytes => {
            let _: () = redis::cmd("SET")
                .arg(key)
                .arg(&b"\xff\xfe not a nonce \x00"[..])
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        Garbage::WrongType => {
            let _: () = redis::cmd("RPUSH")
                .arg(key)
                .arg("a")
                .arg("b")
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
}

fn part(s: &str) -> String {
    format!("{}.{s}", s.len())
}

fn entry_key(ns: &str, key: &str, kind: char) -> String {
    format!("tc:{{{}:{}}}:{kind}", part(ns), part(key))
}

fn tag_key(ns: &str, tag: &str) -> String {
    format!("tc:{{{}}}:t:{tag}", part(ns))
}

/// A key of the namespace's own slot: `s` stream, `e` epoch, `b` channel.
fn namespace_key(ns: &str, kind: char) -> String {
    format!("tc:{{{}}}:{kind}", part(ns))
}

fn opts() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(600))
}

/// `a` loads `key` and another node then finds it in L2: the store went through.
async fn assert_store_succeeds(
    redis: &RedisServer,
    ns: &str,
    a: &Cache,
    key: &str,
    o: &EntryOptions,
) {
    let v = a
        .get_or_load(key, o, || async { Ok::<_, std::io::Error>(41_u64) })
        .await
        .unwrap();
    assert_eq!(*v, 41);
    let other = builder(redis, ns)
        .entry_layout(a.config().entry_layout)
        .build()
        .await
        .unwrap();
    eventually(DEADLINE, &format!("{key} is stored in L2"), || async {
        other.get::<u64>(key).await.unwrap().as_deref() == Some(&41)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_epoch_neither_fails_build_nor_blocks_stores() {
    for garbage in BOTH {
        let redis = server();
        plant(&redis, &namespace_key("epoch", 'e'), garbage).await;
        let a = builder(&redis, "epoch")
            .require_redis_at_start(true)
            .build()
            .await
            .unwrap_or_else(|e| panic!("{garbage:?}: build failed: {e}"));
        assert!(a.stats().repairs >= 1, "{garbage:?}: counted");
        assert_store_succeeds(&redis, "epoch", &a, "k", &opts()).await;

        // On a running node: the epoch turns to garbage; it reads as a change (L1 dropped) and is
        // rewritten, and stores go on.
        let drops = a.stats().l1_drops;
        plant(&redis, &namespace_key("epoch", 'e'), garbage).await;
        eventually(
            DEADLINE,
            "the running node drops L1 and recovers",
            || async { a.stats().l1_drops > drops && !a.admin().is_suspect() },
        )
        .await;
        assert_store_succeeds(&redis, "epoch", &a, "k2", &opts()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_generation_is_replaced_and_fences_the_old_load() {
    for garbage in BOTH {
        let redis = server();
        let a = builder(&redis, "gen").build().await.unwrap();
        plant(&redis, &entry_key("gen", "k", 'g'), garbage).await;
        assert_store_succeeds(&redis, "gen", &a, "k", &opts()).await;
        assert!(a.stats().repairs >= 1, "{garbage:?}: counted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_tag_version_is_a_change_not_the_end_of_caching_under_the_tag() {
    for garbage in BOTH {
        let redis = server();
        let a = builder(&redis, "tags").build().await.unwrap();
        let b = builder(&redis, "tags").build().await.unwrap();
        let o = opts().with_tags(["donation"]);
        let calls = Arc::new(AtomicUsize::new(0));
        b.get_or_load("w", &o, counting(&calls, 1_u64))
            .await
            .unwrap();

        plant(&redis, &tag_key("tags", "donation"), garbage).await;
        // The next read that needs the version from Redis (a miss under the tag) finds garbage: it is
        // rewritten, and the store under the new version succeeds.
        let v = a
            .get_or_load("w2", &o, counting(&calls, 2_u64))
            .await
            .unwrap();
        assert_eq!(*v, 2);
        assert!(a.stats().repairs >= 1, "{garbage:?}: counted");
        // Cached in L1 too, once the rewritten version is announced (the fill that raced the
        // announcement may be refused, never a later one).
        eventually(DEADLINE, "a serves w2 from L1", || async {
            let hits = a.stats().l1_hits;
            let v = a
                .get_or_load("w2", &o, counting(&calls, 9_u64))
                .await
                .unwrap();
            *v == 2 && a.stats().l1_hits == hits + 1
        })
        .await;
        // The rewrite is a change: b's copy, made under the old version, is not served any more.
        eventually(DEADLINE, "b drops its copy of w", || async {
            *b.get_or_load("w", &o, counting(&calls, 3_u64))
                .await
                .unwrap()
                == 3
        })
        .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "{garbage:?}: one reload of w"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_cannot_be_a_lease_is_taken_over_at_once() {
    for garbage in BOTH {
        let redis = server();
        let a = builder(&redis, "lease").build().await.unwrap();
        plant(&redis, &entry_key("lease", "k", 'l'), garbage).await;
        let started = Instant::now();
        assert_store_succeeds(&redis, "lease", &a, "k", &opts()).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{garbage:?}: no wait for a lease that never expires ({:?})",
            started.elapsed()
        );
        assert!(a.stats().repairs >= 1, "{garbage:?}: counted");
        // Named locks share the lease code.
        let lock = format!("tc:L:{}:nightly", part("lease"));
        plant(&redis, &lock, garbage).await;
        let repairs = a.stats().repairs;
        let guard = a
            .lock("nightly", tiercache::LockOptions::from_config(a.config()))
            .await
            .unwrap();
        assert_eq!(a.stats().repairs, repairs + 1, "{garbage:?}: counted");
        let last = guard.fencing_token();
        assert!(guard.release().await.unwrap());
        // Its fencing counter is repaired too: the next token comes from Redis's clock.
        let counter = format!("tc:F:{}:{{{lock}}}nightly", part("lease"));
        plant(&redis, &counter, garbage).await;
        let repairs = a.stats().repairs;
        let guard = a
            .lock("nightly", tiercache::LockOptions::from_config(a.config()))
            .await
            .unwrap();
        assert!(guard.fencing_token() > last, "{garbage:?}");
        assert_eq!(a.stats().repairs, repairs + 1, "{garbage:?}: counted");
        assert!(guard.release().await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_another_type_is_replaced_and_invalidations_flow() {
    for garbage in BOTH {
        let redis = server();
        plant(&redis, &namespace_key("stream", 's'), garbage).await;
        let a = builder(&redis, "stream")
            .require_redis_at_start(true)
            .build()
            .await
            .unwrap();
        let b = builder(&redis, "stream").build().await.unwrap();
        b.get_or_load("k", &opts(), || async { Ok::<_, std::io::Error>(1_u64) })
            .await
            .unwrap();
        plant(&redis, &namespace_key("stream", 's'), garbage).await;
        a.invalidate("k").await.unwrap();
        eventually(DEADLINE, "b drops k", || async {
            b.get::<u64>("k").await.unwrap().is_none()
        })
        .await;
        assert!(a.stats().repairs >= 1, "{garbage:?}: counted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_of_another_type_is_a_miss_and_is_rewritten() {
    for (ns, letter, layout) in [
        ("entry", 'v', EntryLayout::String),
        ("entry1", 'd', EntryLayout::Hash),
    ] {
        let redis = server();
        let a = builder(&redis, ns)
            .entry_layout(layout)
            .build()
            .await
            .unwrap();
        plant(&redis, &entry_key(ns, "k", letter), Garbage::WrongType).await;
        assert!(a.get::<u64>("k").await.unwrap().is_none());
        assert_store_succeeds(&redis, ns, &a, "k", &opts()).await;
        assert!(a.stats().repairs >= 1, "{layout:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_bus_messages_and_stream_entries_fail_closed() {
    let redis = server();
    let a = builder(&redis, "bus").build().await.unwrap();
    a.get_or_load("k", &opts(), || async { Ok::<_, std::io::Error>(1_u64) })
        .await
        .unwrap();
    let mut conn = redis.connection_db(1).await.unwrap();
    let channel = namespace_key("bus", 'b');
    // A message nobody can read may have been an invalidation: recover from the stream.
    let gaps = a.stats().gaps_detected;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(&b"\x01\x02 garbage"[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    eventually(DEADLINE, "the node suspects a gap and recovers", || async {
        a.stats().gaps_detected > gaps && !a.admin().is_suspect()
    })
    .await;
    assert!(a.stats().repairs >= 1);
    // An unreadable entry in the stream: the node cannot know what it said, so L1 goes.
    let drops = a.stats().l1_drops;
    let _: String = redis::cmd("XADD")
        .arg(namespace_key("bus", 's'))
        .arg("*")
        .arg("m")
        .arg(&b"\xff garbage"[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg("no-space-at-all")
        .query_async(&mut conn)
        .await
        .unwrap();
    eventually(DEADLINE, "the node drops L1 and trusts again", || async {
        a.stats().l1_drops > drops && !a.admin().is_suspect()
    })
    .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let v = a
        .get_or_load("k", &opts(), counting(&calls, 2_u64))
        .await
        .unwrap();
    assert_eq!(*v, 1, "L2 still has the value; only L1 was dropped");
}
