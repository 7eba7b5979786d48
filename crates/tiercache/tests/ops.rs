//! The operator's API (`Cache::admin`: `inspect`, `scan_namespace`, `nodes`, `leases`, removals, records,
//! `server_info`) against a private Redis: what it reports, and that it touches only what it says.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tiercache::{EntryOptions, EntryState, KeyKind, LeaseKind, LeaseState, LockOptions};

use common::{eventually, DEADLINE};
use tiercache_testkit::{lists_node, node_id, stop_node};

fn opts(ttl: Duration) -> EntryOptions {
    EntryOptions::new(ttl).with_tags(["donation", "campaign:7"])
}

fn lock_opts() -> LockOptions {
    LockOptions {
        timeout: Duration::from_secs(1),
        retries: 0,
        lease: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn inspect_reports_state_generation_tags_times_and_size() {
    let server = common::server();
    let cache = common::node(&server, "inspect").await;
    let missing = cache.admin().inspect("nothing-here").await.unwrap();
    assert_eq!(missing.state, EntryState::Missing);
    assert!(missing.tags.is_empty() && missing.lease.is_none() && missing.size_bytes == 0);

    cache
        .set("total", vec![1_u64, 2, 3], &opts(Duration::from_secs(900)))
        .await
        .unwrap();
    let fresh = cache.admin().inspect("total").await.unwrap();
    assert_eq!(fresh.state, EntryState::Fresh);
    assert!(
        fresh.generation.is_some(),
        "set fences loads with a new generation"
    );
    assert!(fresh.age_ms.unwrap() < 5_000);
    let fresh_for = fresh.fresh_for_ms.unwrap();
    assert!((890_000..=900_000).contains(&fresh_for), "{fresh_for}");
    // Redis keeps it for the TTL plus the fail-safe grace (1 h by default).
    let kept = fresh.kept_for_ms.unwrap();
    assert!((4_490_000..=4_500_000).contains(&kept), "{kept}");
    // The grace after expiry: an hour, give or take the time between Redis's clock and ours.
    assert!((3_590_000..=3_601_000).contains(&fresh.fail_safe_left_ms.unwrap()));
    assert!(fresh.size_bytes > 36, "header plus payload");
    let mut tags: Vec<(&str, bool)> = fresh
        .tags
        .iter()
        .map(|t| (t.tag.as_str(), t.current))
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, [("campaign:7", true), ("donation", true)]);
    assert!(fresh.lease.is_none());

    cache.invalidate_tags(["campaign:7"]).await.unwrap();
    let moved = cache.admin().inspect("total").await.unwrap();
    assert_eq!(moved.state, EntryState::Invalidated);
    let campaign = moved.tags.iter().find(|t| t.tag == "campaign:7").unwrap();
    assert!(!campaign.current);
    assert_ne!(
        campaign.current_version.as_deref(),
        Some(campaign.recorded_version.as_str())
    );
    assert_eq!(
        cache.admin().inspect("total").await.unwrap().state,
        EntryState::Invalidated,
        "inspecting changes nothing: the entry is still there to be found invalid"
    );
}

#[tokio::test]
async fn inspect_names_the_node_loading_a_key() {
    let server = common::server();
    let [loader_node, observer] = common::nodes_in(&server, ["loading"; 2]).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(tokio::sync::Notify::new());
    let load = {
        let (cache, gate, started) = (loader_node.clone(), gate.clone(), started.clone());
        tokio::spawn(async move {
            cache
                .get_or_load("slow", &opts(Duration::from_secs(60)), move || async move {
                    started.notify_one();
                    gate.notified().await;
                    Ok::<_, std::io::Error>(42_u64)
                })
                .await
        })
    };
    started.notified().await;
    let report = observer.admin().inspect("slow").await.unwrap();
    let lease = report.lease.expect("the loader holds the key's lease");
    assert_eq!(lease.state, LeaseState::Held);
    assert_eq!(lease.kind, LeaseKind::Load("slow".into()));
    let holder = lease.holder.unwrap();
    assert_eq!(
        holder.node_id,
        Some(format!("{:016x}", loader_node.admin().node_id()))
    );
    gate.notify_one();
    assert_eq!(*load.await.unwrap().unwrap(), 42);
    eventually(DEADLINE, "the lease is released", || async {
        observer
            .admin()
            .inspect("slow")
            .await
            .unwrap()
            .lease
            .is_none()
    })
    .await;
}

#[tokio::test]
async fn an_expired_entry_is_removed_only_while_unchanged_and_every_node_drops_it() {
    let server = common::server();
    let [a, b] = common::nodes_in(&server, ["expiry"; 2]).await;
    let short = opts(Duration::from_millis(300));
    a.set("old", 1_u64, &short).await.unwrap();
    a.set("kept", 1_u64, &short).await.unwrap();
    assert_eq!(b.get::<u64>("old").await.unwrap().as_deref(), Some(&1));
    eventually(
        DEADLINE,
        "both entries are past their logical expiry",
        || async {
            a.admin().inspect("old").await.unwrap().state == EntryState::Expired
                && a.admin().inspect("kept").await.unwrap().state == EntryState::Expired
        },
    )
    .await;
    let old = a.admin().inspect("old").await.unwrap();
    assert!(old.fresh_for_ms.unwrap() <= 0);
    assert_eq!(
        old.fail_safe_left_ms, old.kept_for_ms,
        "all that is left is fail-safe"
    );

    // "kept" is stored again after it was found expired: its removal must not take the new value.
    let kept_report = a.admin().inspect("kept").await.unwrap();
    a.set("kept", 2_u64, &opts(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(!a.admin().remove_expired_entry(&kept_report).await.unwrap());
    assert_eq!(
        a.admin().inspect("kept").await.unwrap().state,
        EntryState::Fresh
    );

    assert!(
        b.admin().l1_weighed_bytes() > 0,
        "b holds a copy of \"old\""
    );
    assert!(a.admin().remove_expired_entry(&old).await.unwrap());
    assert_eq!(
        a.admin().inspect("old").await.unwrap().state,
        EntryState::Missing
    );
    eventually(DEADLINE, "b's L1 dropped \"old\"", || async {
        b.admin().forget_local("kept");
        b.admin().l1_weighed_bytes() == 0
    })
    .await;
    let fresh = a.admin().inspect("kept").await.unwrap();
    assert!(
        !a.admin().remove_expired_entry(&fresh).await.unwrap(),
        "a fresh entry is never removed"
    );
}

#[tokio::test]
async fn scan_finds_every_kind_of_its_namespace_and_nothing_else() {
    let server = common::server();
    let [ours, neighbour, prefix_twin] = common::nodes_in(&server, ["ops", "ops:x", "op"]).await;
    for cache in [&ours, &neighbour, &prefix_twin] {
        cache
            .set("k", 1_u64, &opts(Duration::from_secs(60)))
            .await
            .unwrap();
        cache.invalidate_tags(["donation"]).await.unwrap();
        cache
            .admin()
            .push_record("metrics", b"{}", 10)
            .await
            .unwrap();
        std::mem::forget(cache.lock("nightly", lock_opts()).await.unwrap());
    }
    ours.set("k", 2_u64, &opts(Duration::from_secs(60)))
        .await
        .unwrap();
    common::other_programs_key(&server).await;

    let keys = ours.admin().scan_namespace().await.unwrap();
    let kinds: std::collections::BTreeSet<KeyKind> = keys.iter().map(|k| k.kind).collect();
    for kind in [
        KeyKind::Entry,
        KeyKind::Generation,
        KeyKind::TagVersion,
        KeyKind::ReplayStream,
        KeyKind::NamedLock,
        KeyKind::FencingCounter,
        KeyKind::Presence,
        KeyKind::Record,
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {keys:#?}");
    }
    assert!(
        keys.iter().all(|k| k.redis_key.contains("3.ops")),
        "{keys:#?}"
    );
    let entry = keys.iter().find(|k| k.kind == KeyKind::Entry).unwrap();
    assert_eq!(entry.name, "k");
    let me = format!("{:016x}", ours.admin().node_id());
    assert!(keys
        .iter()
        .any(|k| k.kind == KeyKind::Presence && k.name == me));
}

#[tokio::test]
async fn only_a_gone_holders_lease_is_abandoned_and_removal_is_compare_and_delete() {
    let server = common::server();
    let [stays, goes] = common::nodes_in(&server, ["leases"; 2]).await;
    let held = stays.lock("held", lock_opts()).await.unwrap();
    std::mem::forget(goes.lock("orphan", lock_opts()).await.unwrap());
    let goes_id = node_id(&goes);
    assert!(lists_node(&stays, &goes_id).await);
    stop_node(&stays, goes, DEADLINE).await;

    let leases = stays.admin().leases().await.unwrap();
    let find = |name: &str| {
        leases
            .iter()
            .find(|l| l.kind == LeaseKind::Named(name.into()))
            .unwrap()
            .clone()
    };
    let (kept, orphan) = (find("held"), find("orphan"));
    assert_eq!(kept.state, LeaseState::Held);
    assert_eq!(kept.token, held.token());
    assert_eq!(orphan.state, LeaseState::HolderGone);
    assert_eq!(orphan.holder.as_ref().unwrap().node_prefix, goes_id[..8]);
    assert!(
        orphan.expires_in_ms.unwrap() > 50_000,
        "it would have lasted another minute"
    );
    assert!(
        stays.admin().remove_abandoned_lease(&kept).await.is_err(),
        "a held lease is refused"
    );

    // Taken again between the look and the removal: the new holder keeps it.
    let () = redis::cmd("DEL")
        .arg(&orphan.redis_key)
        .query_async(&mut server.connection_db(1).await.unwrap())
        .await
        .unwrap();
    let retaken = stays.lock("orphan", lock_opts()).await.unwrap();
    assert!(!stays.admin().remove_abandoned_lease(&orphan).await.unwrap());
    assert!(
        retaken.release().await.unwrap(),
        "the new holder still held it"
    );

    std::mem::forget(stays.lock("orphan2", lock_opts()).await.unwrap());
    let mut raw = server.connection_db(1).await.unwrap();
    let () = redis::cmd("PERSIST")
        .arg(format!("{}2", orphan.redis_key))
        .query_async(&mut raw)
        .await
        .unwrap();
    let stuck = stays
        .admin()
        .leases()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.kind == LeaseKind::Named("orphan2".into()))
        .unwrap();
    assert_eq!(stuck.state, LeaseState::NeverExpires);
    assert!(stays.admin().remove_abandoned_lease(&stuck).await.unwrap());
    assert!(held.release().await.unwrap());
}

#[tokio::test]
async fn clear_namespace_removes_its_cache_keys_only_and_every_node_drops_its_l1() {
    let server = common::server();
    let [a, b, other] = common::nodes_in(&server, ["clear", "clear", "clear2"]).await;
    let day = opts(Duration::from_secs(86_400));
    for key in ["x", "y"] {
        a.set(key, 1_u64, &day).await.unwrap();
        assert_eq!(b.get::<u64>(key).await.unwrap().as_deref(), Some(&1));
    }
    a.invalidate("gone").await.unwrap();
    other.set("x", 9_u64, &day).await.unwrap();
    a.admin().push_record("metrics", b"{}", 10).await.unwrap();
    let mut raw = common::other_programs_key(&server).await;

    let report = a.admin().clear_namespace().await.unwrap();
    assert_eq!(report.removed.get(&KeyKind::Entry), Some(&2));
    assert!(report.total() >= 5, "{report:?}");
    // What is left: presence, records, the epoch, and the stream the clear message itself went
    // through.
    let left: Vec<KeyKind> = a
        .admin()
        .scan_namespace()
        .await
        .unwrap()
        .iter()
        .map(|k| k.kind)
        .collect();
    assert!(
        left.iter().all(|k| matches!(
            k,
            KeyKind::Presence | KeyKind::Record | KeyKind::ReplayStream | KeyKind::Epoch
        )),
        "{left:?}"
    );
    eventually(DEADLINE, "b dropped its L1", || async {
        b.get::<u64>("x").await.unwrap().is_none() && b.get::<u64>("y").await.unwrap().is_none()
    })
    .await;
    assert_eq!(
        other.admin().inspect("x").await.unwrap().state,
        EntryState::Fresh
    );
    let session: Option<String> = redis::cmd("GET")
        .arg("session:42")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(session.as_deref(), Some("x"));
    let epoch: Option<String> = redis::cmd("GET")
        .arg("tc:{5.clear}:e")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        epoch.is_some(),
        "the epoch stays: a clear is announced on the bus instead"
    );
    assert_eq!(a.admin().records("metrics", 5).await.unwrap().len(), 1);
}

#[tokio::test]
async fn records_keep_the_newest_and_server_info_reads_redis() {
    let server = common::server();
    let cache = common::node(&server, "records").await;
    for i in 0..5_u8 {
        cache.admin().push_record("history", &[i], 3).await.unwrap();
    }
    assert_eq!(
        cache.admin().records("history", 10).await.unwrap(),
        vec![vec![4], vec![3], vec![2]]
    );
    assert_eq!(
        cache.admin().records("history", 1).await.unwrap(),
        vec![vec![4]]
    );
    assert!(cache.admin().records("none", 10).await.unwrap().is_empty());
    let info = cache.admin().server_info().await.unwrap();
    assert!(!info.version.is_empty() && info.used_memory > 0);
    assert_eq!(info.database, 1);
    assert!(
        info.database_keys >= 2,
        "the record list and the presence key at least"
    );
}
