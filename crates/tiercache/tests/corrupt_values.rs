//! Bad bytes in Redis are misses: counted, deleted and refilled by the loader, never a panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{builder, counting, server};
use tiercache::{EntryLayout, EntryOptions};

/// The Redis key of an entry, as documented in `keys.rs`.
fn entry_key(namespace: &str, key: &str, layout: EntryLayout) -> String {
    let letter = match layout {
        EntryLayout::Hash => 'd',
        _ => 'v',
    };
    format!(
        "tc:{{{}.{}:{}.{}}}:{letter}",
        namespace.len(),
        namespace,
        key.len(),
        key
    )
}

/// Where the envelope's payload length is, and where its payload starts (see `codec.rs`: format 1
/// in a layout-1 hash, format 2 with its tag frame in a layout-2 string).
#[derive(Clone, Copy)]
struct Lengths {
    payload_len_at: usize,
    payload_at: usize,
}

fn lengths_of(envelope: &[u8]) -> Lengths {
    if envelope[2] == 2 {
        let tags = u32::from_le_bytes(envelope[24..28].try_into().unwrap()) as usize;
        Lengths {
            payload_len_at: 28,
            payload_at: 32 + tags,
        }
    } else {
        Lengths {
            payload_len_at: 32,
            payload_at: 36,
        }
    }
}

async fn overwrite_envelope(
    redis: &common::RedisServer,
    namespace: &str,
    key: &str,
    layout: EntryLayout,
    f: Corrupt,
) {
    let mut conn = redis.connection_db(1).await.unwrap();
    let redis_key = entry_key(namespace, key, layout);
    let mut read = match layout {
        EntryLayout::Hash => redis::cmd("HGET"),
        _ => redis::cmd("GET"),
    };
    read.arg(&redis_key);
    if layout == EntryLayout::Hash {
        read.arg("d");
    }
    let original: Vec<u8> = read.query_async(&mut conn).await.unwrap();
    assert!(!original.is_empty(), "the entry exists before corruption");
    let lengths = lengths_of(&original);
    let damaged = f(original, lengths);
    let mut write = match layout {
        EntryLayout::Hash => redis::cmd("HSET"),
        _ => redis::cmd("SET"),
    };
    if layout == EntryLayout::Hash {
        write.arg(&redis_key).arg("d").arg(damaged);
    } else {
        write.arg(&redis_key).arg(damaged).arg("KEEPTTL");
    }
    write.exec_async(&mut conn).await.unwrap();
}

/// A way to damage an envelope.
type Corrupt = fn(Vec<u8>, Lengths) -> Vec<u8>;

/// A name and a way to damage an envelope.
type Corruption = (&'static str, Corrupt);

#[tokio::test]
async fn corrupt_truncated_oversized_unknown_version_and_unknown_codec_values_are_reloaded() {
    let redis = server();
    for (namespace, layout) in [("bad", EntryLayout::String), ("bad1", EntryLayout::Hash)] {
        corrupt_values_are_reloaded(&redis, namespace, layout).await;
    }
}

async fn corrupt_values_are_reloaded(
    redis: &common::RedisServer,
    namespace: &str,
    layout: EntryLayout,
) {
    let build = || async {
        builder(redis, namespace)
            .entry_layout(layout)
            .build()
            .await
            .unwrap()
    };
    let writer = build().await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    let corruptions: [Corruption; 7] = [
        ("truncated", |mut b, _| {
            b.truncate(b.len() / 2);
            b
        }),
        ("garbage", |b, _| b.iter().map(|x| x ^ 0x5a).collect()),
        ("unknown_version", |mut b, _| {
            b[2] = 99;
            b
        }),
        // A value codec this build lacks (one of a later release, or postcard on a node built
        // without it): its payload must not be read as bincode.
        ("unknown_codec", |mut b, _| {
            b[3] = 0x7f;
            b
        }),
        // Each layout's format under the other's key.
        ("other_format", |mut b, _| {
            b[2] = 3 - b[2];
            b
        }),
        ("oversized", |mut b, at| {
            b[at.payload_len_at..at.payload_len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        }),
        ("wrong_payload", |mut b, at| {
            let n = b.len();
            b[n - 1] = 0xff;
            b.extend_from_slice(&[0xff; 9]);
            let len = u32::try_from(b.len() - at.payload_at).unwrap();
            b[at.payload_len_at..at.payload_len_at + 4].copy_from_slice(&len.to_le_bytes());
            b
        }),
    ];
    for (name, corrupt) in corruptions {
        writer.set(name, vec![1_u64, 2, 3], &opts).await.unwrap();
        overwrite_envelope(redis, namespace, name, layout, corrupt).await;
        let reader = build().await;
        let calls = Arc::new(AtomicUsize::new(0));
        let v = reader
            .get_or_load(name, &opts, counting(&calls, vec![4_u64]))
            .await
            .unwrap();
        assert_eq!(
            *v,
            vec![4],
            "{layout:?} {name}: the loader refilled the value"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{layout:?} {name}");
        assert_eq!(
            reader.stats().decode_errors,
            1,
            "{layout:?} {name}: counted once"
        );
        let fresh = build().await;
        assert_eq!(
            fresh.get::<Vec<u64>>(name).await.unwrap().as_deref(),
            Some(&vec![4]),
            "{layout:?} {name}: L2 refilled"
        );
    }
}
