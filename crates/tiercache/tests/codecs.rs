//! Nodes of different value codecs share a namespace: each reads what the other wrote (both codecs
//! are built into a node with the `postcard` feature), and nothing either writes is an error to the
//! other. A codec a node lacks is a miss, counted: `corrupt_values.rs` ("unknown_codec").
#![cfg(feature = "postcard")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{builder, counting, server};
use serde::{Deserialize, Serialize};
use tiercache::{Cache, EntryLayout, EntryOptions, ValueCodec};

/// A value with the shapes whose encodings differ between the codecs (bincode and postcard write
/// integers of 251 and more, and so lengths, differently), so a payload read in the wrong codec
/// would not come back equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Report {
    total: u64,
    delta: i64,
    label: String,
    by_day: BTreeMap<String, Vec<u32>>,
    ratio: Option<f64>,
}

fn report(n: u64) -> Report {
    Report {
        total: 1_000_000 + n,
        delta: -300,
        label: "donations ".repeat(40),
        by_day: [
            ("mon".to_owned(), (0..300).collect()),
            ("tue".to_owned(), vec![u32::MAX]),
        ]
        .into(),
        ratio: Some(0.25),
    }
}

/// The codec byte of the entry `key` as Redis holds it (`codec.rs`: byte 3 of either format).
async fn codec_byte(
    redis: &common::RedisServer,
    namespace: &str,
    key: &str,
    layout: EntryLayout,
) -> u8 {
    let mut conn = redis.connection_db(1).await.unwrap();
    let prefix = format!(
        "tc:{{{}.{}:{}.{}}}",
        namespace.len(),
        namespace,
        key.len(),
        key
    );
    let envelope: Vec<u8> = match layout {
        EntryLayout::Hash => redis::cmd("HGET")
            .arg(format!("{prefix}:d"))
            .arg("d")
            .query_async(&mut conn)
            .await
            .unwrap(),
        _ => redis::cmd("GET")
            .arg(format!("{prefix}:v"))
            .query_async(&mut conn)
            .await
            .unwrap(),
    };
    assert!(envelope.len() > 3, "{key}: an entry in Redis");
    envelope[3]
}

async fn node(
    redis: &common::RedisServer,
    namespace: &str,
    layout: EntryLayout,
    codec: ValueCodec,
) -> Cache {
    builder(redis, namespace)
        .entry_layout(layout)
        .value_codec(codec)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn nodes_of_either_codec_read_each_others_entries() {
    let redis = server();
    let opts = EntryOptions::new(Duration::from_secs(60));
    for (namespace, layout) in [
        ("codecs", EntryLayout::String),
        ("codecs1", EntryLayout::Hash),
    ] {
        let bincode = node(&redis, namespace, layout, ValueCodec::Bincode).await;
        let postcard = node(&redis, namespace, layout, ValueCodec::Postcard).await;
        let pairs = [
            ("b", &bincode, &postcard, ValueCodec::Bincode),
            ("p", &postcard, &bincode, ValueCodec::Postcard),
        ];
        for (n, (key, writer, reader, codec)) in pairs.into_iter().enumerate() {
            let value = report(n as u64);
            writer.set(key, value.clone(), &opts).await.unwrap();
            assert_eq!(
                codec_byte(&redis, namespace, key, layout).await,
                match codec {
                    ValueCodec::Postcard => 1,
                    _ => 0,
                },
                "{layout:?} {key}: written in the writer's codec"
            );
            // `get` reads L2 alone: the other codec's entry comes back as the value.
            assert_eq!(
                reader.get::<Report>(key).await.unwrap().as_deref(),
                Some(&value),
                "{layout:?} {key}: {codec:?} entry read by the other codec's node"
            );
            // A load of it does not run the loader: it is a hit, not a miss.
            reader.admin().forget_local(key);
            let calls = Arc::new(AtomicUsize::new(0));
            let got = reader
                .get_or_load(key, &opts, counting(&calls, report(99)))
                .await
                .unwrap();
            assert_eq!(*got, value, "{layout:?} {key}");
            assert_eq!(calls.load(Ordering::SeqCst), 0, "{layout:?} {key}");
        }
        // A value loaded on one node and read on the other, the loader's store path.
        let calls = Arc::new(AtomicUsize::new(0));
        postcard
            .get_or_load("loaded", &opts, counting(&calls, report(7)))
            .await
            .unwrap();
        assert_eq!(codec_byte(&redis, namespace, "loaded", layout).await, 1);
        assert_eq!(
            bincode.get::<Report>("loaded").await.unwrap().as_deref(),
            Some(&report(7)),
            "{layout:?}: a postcard node's loaded value read by a bincode node"
        );
        for cache in [&bincode, &postcard] {
            assert_eq!(
                cache.stats().decode_errors,
                0,
                "{layout:?}: nothing misread"
            );
        }
    }
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_a_miss_in_either_codec() {
    let redis = server();
    let opts = EntryOptions::new(Duration::from_secs(60));
    for codec in [ValueCodec::Bincode, ValueCodec::Postcard] {
        let namespace = format!("wrong-type-{}", codec == ValueCodec::Postcard);
        let writer = node(&redis, &namespace, EntryLayout::String, codec).await;
        writer.set("k", report(1), &opts).await.unwrap();
        let reader = node(&redis, &namespace, EntryLayout::String, ValueCodec::Bincode).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let got = reader
            .get_or_load("k", &opts, counting(&calls, vec![4_u8]))
            .await
            .unwrap();
        assert_eq!(*got, vec![4], "{codec:?}: the loader refilled it");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{codec:?}");
        assert_eq!(reader.stats().decode_errors, 1, "{codec:?}: counted");
    }
}
