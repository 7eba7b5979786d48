//! `Cache::fetch` says which tier answered: L1, L2, this node's loader, or a stale fail-safe value.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{builder, eventually, server, DEADLINE};
use tiercache::{EntryOptions, Source};
use tokio::sync::Notify;

#[tokio::test]
async fn each_tier_reports_itself() {
    let redis = server();
    let a = common::node(&redis, "source").await;
    let b = common::node(&redis, "source").await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    let ok = |v: u64| move || async move { Ok::<_, std::io::Error>(v) };

    let first = a.fetch("k", &opts, ok(1)).await.unwrap();
    assert_eq!((*first.value, first.source), (1, Source::Loaded));
    let again = a.fetch("k", &opts, ok(2)).await.unwrap();
    assert_eq!((*again.value, again.source), (1, Source::L1));
    let other = b.fetch("k", &opts, ok(3)).await.unwrap();
    assert_eq!((*other.value, other.source), (1, Source::L2));
    let other_again = b
        .fetch("k", EntryOptions::lazy(|| opts.clone()), ok(4))
        .await
        .unwrap();
    assert_eq!(other_again.source, Source::L1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coalesced_caller_reports_the_leaders_source() {
    let redis = server();
    let cache = common::node(&redis, "source-coalesced").await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    let gate = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let (g, s) = (gate.clone(), started.clone());
    let leader = {
        let cache = cache.clone();
        let opts = opts.clone();
        tokio::spawn(async move {
            cache
                .fetch("k", &opts, move || async move {
                    s.notify_one();
                    g.notified().await;
                    Ok::<_, std::io::Error>(7_u64)
                })
                .await
        })
    };
    started.notified().await;
    let follower = {
        let cache = cache.clone();
        let opts = opts.clone();
        tokio::spawn(async move {
            cache
                .fetch("k", &opts, || async { Ok::<_, std::io::Error>(8_u64) })
                .await
        })
    };
    eventually(DEADLINE, "the second caller joins the flight", || async {
        cache.stats().coalesced == 1
    })
    .await;
    gate.notify_one();
    let (leader, follower) = (
        leader.await.unwrap().unwrap(),
        follower.await.unwrap().unwrap(),
    );
    assert_eq!((*leader.value, leader.source), (7, Source::Loaded));
    assert_eq!((*follower.value, follower.source), (7, Source::Loaded));
}

#[tokio::test]
async fn a_fail_safe_value_is_reported_stale() {
    let redis = server();
    let cache = builder(&redis, "source-stale").build().await.unwrap();
    let opts = EntryOptions::new(Duration::from_millis(300));
    cache
        .fetch("k", &opts, || async { Ok::<_, std::io::Error>(1_u64) })
        .await
        .unwrap();
    eventually(DEADLINE, "the entry expires", || async {
        cache.get::<u64>("k").await.unwrap().is_none()
    })
    .await;
    let served = cache
        .fetch::<u64, _, _, _>("k", &opts, || async {
            Err(std::io::Error::other("database down"))
        })
        .await
        .unwrap();
    assert_eq!((*served.value, served.source), (1, Source::Stale));
}
