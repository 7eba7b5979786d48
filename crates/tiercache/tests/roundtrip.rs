//! Core behaviour of the two tiers: cross-node reads, expiry, types, keys, errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{counting, eventually, node, server, DEADLINE};
use serde::{Deserialize, Serialize};
use tiercache::{EntryOptions, ErrorKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stats {
    total_cents: u64,
    donors: Vec<String>,
}

fn stats() -> Stats {
    Stats {
        total_cents: 12_345,
        donors: vec!["ada".into(), "grace".into()],
    }
}

#[tokio::test]
async fn a_value_loaded_on_one_node_is_an_l2_hit_on_another_then_an_l1_hit() {
    let redis = server();
    let a = node(&redis, "rt").await;
    let b = node(&redis, "rt").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let opts = EntryOptions::new(Duration::from_secs(60));

    let first = a
        .get_or_load("k", &opts, counting(&calls, stats()))
        .await
        .unwrap();
    let second = b
        .get_or_load("k", &opts, counting(&calls, stats()))
        .await
        .unwrap();
    let third = b
        .get_or_load("k", &opts, counting(&calls, stats()))
        .await
        .unwrap();

    assert_eq!(*first, stats());
    assert_eq!(*second, stats());
    assert!(
        Arc::ptr_eq(&second, &third),
        "an L1 hit hands out the same decoded value"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(a.stats().loads, 1);
    assert_eq!(b.stats().l2_hits, 1);
    assert_eq!(b.stats().l1_hits, 1);
    assert_eq!(
        b.get::<Stats>("k").await.unwrap().as_deref(),
        Some(&stats())
    );
    assert_eq!(a.get::<Stats>("absent").await.unwrap(), None);
}

#[tokio::test]
async fn entries_expire_from_both_tiers_at_their_ttl() {
    let redis = server();
    let a = node(&redis, "ttl").await;
    let b = node(&redis, "ttl").await;
    let opts = EntryOptions::new(Duration::from_millis(300));
    a.set("short", 1_u32, &opts).await.unwrap();
    assert_eq!(b.get::<u32>("short").await.unwrap().as_deref(), Some(&1));

    eventually(DEADLINE, "the entry expires in L1 and L2", || async {
        a.get::<u32>("short").await.unwrap().is_none()
            && b.get::<u32>("short").await.unwrap().is_none()
    })
    .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let v = b
        .get_or_load("short", &opts, counting(&calls, 2_u32))
        .await
        .unwrap();
    assert_eq!(
        (*v, calls.load(Ordering::SeqCst)),
        (2, 1),
        "an expired entry is reloaded"
    );
}

#[tokio::test]
async fn a_type_mismatch_is_a_miss_not_a_panic() {
    let redis = server();
    let a = node(&redis, "types").await;
    let b = node(&redis, "types").await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    a.set("k", stats(), &opts).await.unwrap();

    assert_eq!(
        b.get::<Vec<u64>>("k").await.unwrap(),
        None,
        "L2 bytes of another type are a miss"
    );
    assert_eq!(b.stats().decode_errors, 1, "counted, and the bytes deleted");
    assert_eq!(
        a.get::<Vec<u64>>("k").await.unwrap(),
        None,
        "L1 holding another type is a miss"
    );
    assert_eq!(a.stats().type_mismatches, 1);
    let calls = Arc::new(AtomicUsize::new(0));
    let v = b
        .get_or_load("k", &opts, counting(&calls, String::from("text")))
        .await
        .unwrap();
    assert_eq!(
        (v.as_str(), calls.load(Ordering::SeqCst)),
        ("text", 1),
        "the loader refills the key"
    );
}

#[tokio::test]
async fn keys_of_different_namespaces_and_boundaries_never_collide() {
    let redis = server();
    let x = node(&redis, "x").await;
    let xy = node(&redis, "x:y").await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    x.set("y:z", 1_u32, &opts).await.unwrap();
    xy.set("z", 2_u32, &opts).await.unwrap();
    let x_fresh = node(&redis, "x").await;
    let xy_fresh = node(&redis, "x:y").await;
    assert_eq!(
        x_fresh.get::<u32>("y:z").await.unwrap().as_deref(),
        Some(&1)
    );
    assert_eq!(xy_fresh.get::<u32>("z").await.unwrap().as_deref(), Some(&2));
    for key in ["ключ", "with space", "{braces}", "tc:epoch", "a\nb"] {
        x.set(key, key.to_owned(), &opts).await.unwrap();
        assert_eq!(
            x_fresh
                .get::<String>(key)
                .await
                .unwrap()
                .as_deref()
                .map(String::as_str),
            Some(key)
        );
    }
}

#[tokio::test]
async fn empty_and_oversized_keys_are_clear_errors() {
    let redis = server();
    let a = node(&redis, "keys").await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    let err = a.get::<u32>("").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
    let long = "k".repeat(5000);
    let err = a.set(&long, 1_u32, &opts).await.unwrap_err();
    assert!(err.to_string().contains("5000 bytes"), "{err}");
}

#[tokio::test]
async fn a_loader_error_reaches_the_caller_as_source_and_nothing_is_cached() {
    let redis = server();
    let a = node(&redis, "errors").await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    let err = a
        .get_or_load::<u32, _, _, _>("k", &opts, || async {
            Err(std::io::Error::other("database is down"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    let source = std::error::Error::source(&err).expect("loader error kept as source");
    assert!(source.to_string().contains("database is down"));
    assert_eq!(a.get::<u32>("k").await.unwrap(), None);
}

#[tokio::test]
async fn a_value_over_the_size_limit_is_refused_by_set_and_not_cached_by_a_load() {
    let redis = server();
    let a = common::builder(&redis, "big")
        .max_value_bytes(1024)
        .build()
        .await
        .unwrap();
    let opts = EntryOptions::new(Duration::from_secs(60));
    let big = vec![7_u8; 4096];
    assert_eq!(
        a.set("big", big.clone(), &opts).await.unwrap_err().kind(),
        ErrorKind::Encode
    );
    let v = a
        .get_or_load(
            "big",
            &opts,
            move || async move { Ok::<_, std::io::Error>(big) },
        )
        .await
        .unwrap();
    assert_eq!(v.len(), 4096, "the caller still gets its value");
    assert_eq!(a.stats().encode_errors, 2);
    assert_eq!(a.get::<Vec<u8>>("big").await.unwrap(), None);
}

#[tokio::test]
async fn a_malformed_redis_url_names_the_wrong_part() {
    let err = tiercache::Cache::builder()
        .redis_url("redis://127.0.0.1:notaport")
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("port"), "{err}");
}
