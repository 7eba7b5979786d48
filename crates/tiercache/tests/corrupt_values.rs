//! Bad bytes in Redis are misses: counted, deleted and refilled by the loader, never a panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{counting, node, server};
use tiercache::EntryOptions;

/// The Redis key of an entry, as documented in `keys.rs`.
fn entry_key(namespace: &str, key: &str) -> String {
    format!(
        "tc:{{{}.{}:{}.{}}}:d",
        namespace.len(),
        namespace,
        key.len(),
        key
    )
}

async fn overwrite_envelope(
    redis: &common::RedisServer,
    key: &str,
    f: impl FnOnce(Vec<u8>) -> Vec<u8>,
) {
    let mut conn = redis.connection_db(1).await.unwrap();
    let redis_key = entry_key("bad", key);
    let original: Vec<u8> = redis::cmd("HGET")
        .arg(&redis_key)
        .arg("d")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!original.is_empty(), "the entry exists before corruption");
    let _: () = redis::cmd("HSET")
        .arg(&redis_key)
        .arg("d")
        .arg(f(original))
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// A name and a way to damage an envelope.
type Corruption = (&'static str, fn(Vec<u8>) -> Vec<u8>);

#[tokio::test]
async fn corrupt_truncated_oversized_and_unknown_version_values_are_reloaded() {
    let redis = server();
    let writer = node(&redis, "bad").await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    let corruptions: [Corruption; 5] = [
        ("truncated", |mut b| {
            b.truncate(b.len() / 2);
            b
        }),
        ("garbage", |b| b.iter().map(|x| x ^ 0x5a).collect()),
        ("unknown_version", |mut b| {
            b[2] = 99;
            b
        }),
        ("oversized", |mut b| {
            b[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        }),
        ("wrong_payload", |mut b| {
            let n = b.len();
            b[n - 1] = 0xff;
            b.extend_from_slice(&[0xff; 9]);
            let len = u32::try_from(b.len() - 36).unwrap();
            b[32..36].copy_from_slice(&len.to_le_bytes());
            b
        }),
    ];
    for (name, corrupt) in corruptions {
        writer.set(name, vec![1_u64, 2, 3], &opts).await.unwrap();
        overwrite_envelope(&redis, name, corrupt).await;
        let reader = node(&redis, "bad").await;
        let calls = Arc::new(AtomicUsize::new(0));
        let v = reader
            .get_or_load(name, &opts, counting(&calls, vec![4_u64]))
            .await
            .unwrap();
        assert_eq!(*v, vec![4], "{name}: the loader refilled the value");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{name}");
        assert_eq!(reader.stats().decode_errors, 1, "{name}: counted once");
        let fresh = node(&redis, "bad").await;
        assert_eq!(
            fresh.get::<Vec<u64>>(name).await.unwrap().as_deref(),
            Some(&vec![4]),
            "{name}: L2 refilled"
        );
    }
}
