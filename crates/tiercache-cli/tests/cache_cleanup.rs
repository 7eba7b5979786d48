//! `tiercache cache-cleanup`: what it removes, what it leaves, and that it asks before `--force`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{eventually, Fixture, DEADLINE};
use tiercache::{Cache, EntryOptions, EntryState, LockOptions};

fn lock_opts() -> LockOptions {
    LockOptions {
        timeout: Duration::from_secs(1),
        retries: 0,
        lease: Duration::from_secs(60),
    }
}

/// Keys of the cache's database, every namespace's and every program's, but presence keys: each
/// run of the CLI is a node for its few seconds, and leaves one behind until it expires.
async fn all_keys(f: &Fixture) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut f.raw().await)
        .await
        .unwrap();
    keys.retain(|k| !k.starts_with("tc:n:"));
    keys.sort();
    keys
}

/// Namespace "clean" with an expired entry, a fresh one, a lock held by a running node and one whose
/// node stopped; namespace "cleanx" (whose name starts alike) with the same; and a key of another
/// program. Returns the running node of "clean" and its held lock guard.
async fn plant(f: &Fixture) -> (Cache, tiercache::LockGuard, Cache) {
    let stays = f.node("clean").await;
    let neighbour = f.node("cleanx").await;
    let short = EntryOptions::new(Duration::from_millis(200)).with_tags(["donation"]);
    let long = EntryOptions::new(Duration::from_secs(3600)).with_tags(["donation"]);
    for cache in [&stays, &neighbour] {
        cache.set("expired", 1_u64, &short).await.unwrap();
        cache.set("fresh", 2_u64, &long).await.unwrap();
    }
    let held = stays.lock("held", lock_opts()).await.unwrap();
    {
        let goes = f.node("clean").await;
        std::mem::forget(goes.lock("orphan", lock_opts()).await.unwrap());
        std::mem::forget(neighbour.lock("orphan", lock_opts()).await.unwrap());
        common::stop_node(&stays, goes, DEADLINE).await;
    }
    let () = redis::cmd("SET")
        .arg("session:42")
        .arg("not a cache key")
        .query_async(&mut f.raw().await)
        .await
        .unwrap();
    eventually(
        DEADLINE,
        "the short entry is past its logical expiry",
        || async { stays.admin().inspect("expired").await.unwrap().state == EntryState::Expired },
    )
    .await;
    (stays, held, neighbour)
}

#[tokio::test]
async fn dry_run_lists_what_would_go_and_removes_nothing() {
    let f = Fixture::redis_only();
    let (_stays, _held, _n) = plant(&f).await;
    let before = all_keys(&f).await;
    let run = f.run("clean", &["cache-cleanup", "--dry-run"]);
    run.assert_stdout(
        0,
        &[
            "would remove named lock \"orphan\"",
            "would remove entry \"expired\"",
            "would remove 1 abandoned lease(s) and lock(s); 1 held by running nodes kept",
            "would remove 1 expired entry",
            "dry run: nothing was changed",
        ],
    );
    let force = f.run("clean", &["cache-cleanup", "--force", "--dry-run", "-v"]);
    force.assert_stdout(0, &["would remove entry tc:{5.clean:7.expired}:v"]);
    assert!(
        !force.stdout.contains("cleanx") && !force.stdout.contains("session"),
        "{force:?}"
    );
    assert_eq!(all_keys(&f).await, before, "a dry run changes nothing");
}

#[tokio::test]
async fn cleanup_removes_abandoned_locks_and_expired_entries_of_its_namespace_only() {
    let f = Fixture::redis_only();
    let (stays, held, neighbour) = plant(&f).await;
    let other_before: Vec<String> = all_keys(&f)
        .await
        .into_iter()
        .filter(|k| !k.contains("5.clean:") && !k.contains("5.clean}"))
        .collect();
    assert!(stays.get::<u64>("expired").await.unwrap().is_none());

    let locks = f.run("clean", &["cache-cleanup", "--locks", "-v"]);
    locks.assert_stdout(
        0,
        &["removed named lock \"orphan\"", "kept named lock \"held\""],
    );
    assert!(
        !locks.stdout.contains("expired entr"),
        "--locks alone: {locks:?}"
    );
    assert_eq!(
        stays.admin().inspect("expired").await.unwrap().state,
        EntryState::Expired
    );

    let expired = f.run("clean", &["cache-cleanup", "--expired-only"]);
    expired.assert_stdout(0, &["removed 1 expired entry; every node told"]);
    assert_eq!(
        stays.admin().inspect("expired").await.unwrap().state,
        EntryState::Missing
    );
    assert_eq!(
        stays.admin().inspect("fresh").await.unwrap().state,
        EntryState::Fresh
    );
    assert!(
        held.release().await.unwrap(),
        "the running node's lock was kept"
    );

    let other_after: Vec<String> = all_keys(&f)
        .await
        .into_iter()
        .filter(|k| !k.contains("5.clean:") && !k.contains("5.clean}"))
        .collect();
    assert_eq!(
        other_after, other_before,
        "other namespaces and programs untouched"
    );
    assert_eq!(
        neighbour.admin().inspect("expired").await.unwrap().state,
        EntryState::Expired
    );

    let nothing = f.run("clean", &["cache-cleanup"]);
    assert!(
        nothing.stdout.contains("removed 0 abandoned")
            && nothing.stdout.contains("removed 0 expired"),
        "{nothing:?}"
    );
}

#[tokio::test]
async fn force_refuses_without_a_terminal_and_with_yes_clears_the_namespace_fleet_wide() {
    let f = Fixture::redis_only();
    let (stays, _held, neighbour) = plant(&f).await;
    assert_eq!(
        stays.get::<u64>("fresh").await.unwrap().as_deref(),
        Some(&2)
    );
    let before = all_keys(&f).await;

    let refused = f.run("clean", &["cache-cleanup", "--force"]);
    refused.assert_stderr(64, &["no terminal to confirm on: add --yes"]);
    assert_eq!(all_keys(&f).await, before, "nothing removed");

    let yes = f.run("clean", &["cache-cleanup", "--force", "--yes"]);
    yes.assert_stdout(0, &["every node told to drop its L1"]);
    eventually(DEADLINE, "the running node dropped its L1", || async {
        stays.get::<u64>("fresh").await.unwrap().is_none()
    })
    .await;
    let left = all_keys(&f).await;
    let ours: Vec<&String> = left
        .iter()
        .filter(|k| k.contains("5.clean:") || k.contains("5.clean}"))
        .collect();
    assert!(
        ours.iter().all(|k| k.starts_with("tc:n:")
            || k.starts_with("tc:F:")
            || k.as_str() == "tc:{5.clean}:s"
            || k.as_str() == "tc:{5.clean}:e"),
        "only presence, the locks' fencing counters, the epoch and the clear message's stream are left: {ours:?}"
    );
    for kept in ["session:42", "tc:{5.clean}:e"] {
        assert!(left.iter().any(|k| k == kept), "{kept} kept: {left:?}");
    }
    assert_eq!(
        neighbour.admin().inspect("fresh").await.unwrap().state,
        EntryState::Fresh
    );
}
