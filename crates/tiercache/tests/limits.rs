//! Every limit on what a caller hands the cache is a clear error, and internal queues stay bounded.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{builder, node, server};
use tiercache::{Cache, EntryOptions, ErrorKind};

fn opts() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(60))
}

fn load() -> std::future::Ready<Result<u64, std::io::Error>> {
    std::future::ready(Ok(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_tags_and_values_past_their_limits_are_clear_errors() {
    let redis = server();
    let cache = builder(&redis, "limits")
        .max_value_bytes(1024)
        .build()
        .await
        .unwrap();

    let long_key = "k".repeat(1025);
    for key in ["", long_key.as_str()] {
        let err = cache.get_or_load(key, &opts(), load).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey, "{err}");
        assert_eq!(
            cache.get::<u64>(key).await.unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert_eq!(
            cache.invalidate(key).await.unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
    }
    let msg = cache.invalidate(&long_key).await.unwrap_err().to_string();
    assert!(msg.contains("1025 bytes") && msg.contains("1024"), "{msg}");

    let too_many = opts().with_tags((0..65).map(|i| format!("t{i}")));
    let err = cache.get_or_load("k", &too_many, load).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTag);
    assert!(err.to_string().contains("65 tags"), "{err}");
    assert_eq!(
        cache.set("k", 1_u64, &too_many).await.unwrap_err().kind(),
        ErrorKind::InvalidTag
    );
    let long_tag = "t".repeat(257);
    for tag in ["", long_tag.as_str()] {
        let err = cache
            .get_or_load("k", &opts().with_tags([tag]), load)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidTag, "{tag:?}");
        assert_eq!(
            cache.invalidate_tags([tag]).await.unwrap_err().kind(),
            ErrorKind::InvalidTag
        );
    }
    // Up to the limits everything goes through, and one call may invalidate many tags.
    let most = opts().with_tags((0..64).map(|i| format!("t{i}")));
    assert_eq!(*cache.get_or_load("k", &most, load).await.unwrap(), 1);
    cache
        .invalidate_tags((0..500).map(|i| format!("t{i}")))
        .await
        .unwrap();

    let err = cache
        .set("big", vec![7_u8; 4096], &opts())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode);
    assert!(err.to_string().contains("big"), "{err}");
    // A loaded value over the limit is returned to its caller but cached nowhere.
    let v = cache
        .get_or_load("big", &opts(), || async {
            Ok::<_, std::io::Error>(vec![7_u8; 4096])
        })
        .await
        .unwrap();
    assert_eq!(v.len(), 4096);
    assert!(cache.get::<Vec<u8>>("big").await.unwrap().is_none());
    assert!(cache.stats().encode_errors >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_with_characters_that_would_break_key_patterns_are_refused() {
    let redis = server();
    for namespace in [
        "",
        "a b",
        "wid{gets}",
        "w*",
        "w?",
        "w[1]",
        "w\\x",
        "tab\there",
        "é",
    ] {
        let err = Cache::builder()
            .redis_url(&redis.url())
            .namespace(namespace)
            .build()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{namespace:?}");
        assert!(err.to_string().contains("TIERCACHE_NAMESPACE"), "{err}");
    }
    let long = "n".repeat(257);
    assert!(builder(&redis, &long).build().await.is_err());
    for namespace in ["widgets", "org-1:widgets_v2.eu", &"n".repeat(256)] {
        builder(&redis, namespace).build().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_concurrent_invalidations_than_the_outbox_holds_all_complete() {
    let redis = server();
    let cache = node(&redis, "outbox").await;
    let calls: Vec<_> = (0..6000)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.invalidate(&format!("k{i}")).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let sent = cache.stats().bus_messages_sent;
    assert!(
        sent < 6000,
        "group commit: {sent} messages for 6000 invalidations"
    );
}
