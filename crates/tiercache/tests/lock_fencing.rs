//! Named locks hand out fencing tokens: each acquisition's is greater than every earlier one of the
//! same name, whichever node took it, however the last holder lost it, and whether or not Redis
//! still has the lock's counter.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{nodes, server, RedisServer, DEADLINE};
use tiercache::{Cache, KeyKind, LockGuard, LockOptions};

fn opts(lease: Duration) -> LockOptions {
    LockOptions {
        timeout: DEADLINE,
        retries: 100_000,
        lease,
    }
}

async fn take(node: &Cache, name: &str) -> LockGuard {
    node.lock(name, opts(Duration::from_secs(30)))
        .await
        .unwrap()
}

/// The Redis key of `name`'s fencing counter, as the node's own scan finds it.
async fn counter_key(node: &Cache, name: &str) -> String {
    node.admin()
        .scan_namespace()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kind == KeyKind::FencingCounter && k.name == name)
        .unwrap_or_else(|| panic!("no fencing counter for {name:?}"))
        .redis_key
}

/// A plain connection to the database the nodes use (`Config::redis_db`, 1 by default).
async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis.connection_db(1).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_increase_across_acquisitions_on_every_node() {
    let redis = server();
    let fleet = nodes(&redis, "fencing", 2).await;
    let mut last = 0;
    for round in 0..20 {
        let node = &fleet[round % 2];
        let guard = take(node, "nightly").await;
        assert!(
            guard.fencing_token() > last,
            "round {round}: {} after {last}",
            guard.fencing_token()
        );
        last = guard.fencing_token();
        assert!(guard.release().await.unwrap());
    }
    // Another name has a counter of its own, and is not held back by this one's.
    let other = take(&fleet[0], "weekly").await;
    assert!(other.fencing_token() > 0);
    assert!(other.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_ran_out_and_was_taken_over_is_told_and_fenced() {
    let redis = server();
    let fleet = nodes(&redis, "fencing", 2).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    let stale = a
        .lock("nightly", opts(Duration::from_millis(200)))
        .await
        .unwrap();
    // b retries until a's lease runs out.
    let current = take(b, "nightly").await;
    assert!(
        current.fencing_token() > stale.fencing_token(),
        "{} after {}",
        current.fencing_token(),
        stale.fencing_token()
    );
    assert!(
        !stale.extend(Duration::from_secs(30)).await.unwrap(),
        "not a's to extend"
    );
    assert!(!stale.release().await.unwrap(), "not a's to release");
    assert!(
        current.extend(Duration::from_secs(30)).await.unwrap(),
        "b's lock survived a's calls"
    );
    let current_token = current.fencing_token();
    assert!(current.release().await.unwrap());
    let next = take(a, "nightly").await;
    assert!(next.fencing_token() > current_token);
    assert!(next.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_unreadable_counter_still_yields_a_larger_token() {
    let redis = server();
    let node = common::node(&redis, "fencing").await;
    let mut conn = raw(&redis).await;
    let first = take(&node, "nightly").await;
    let last = first.fencing_token();
    assert!(first.release().await.unwrap());
    let counter = counter_key(&node, "nightly").await;

    // Evicted: Redis's clock takes over.
    let deleted: i64 = redis::cmd("DEL")
        .arg(&counter)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(deleted, 1, "{counter}");
    let after_loss = take(&node, "nightly").await;
    assert!(
        after_loss.fencing_token() > last,
        "{} after {last}",
        after_loss.fencing_token()
    );
    let after_loss_token = after_loss.fencing_token();
    assert!(after_loss.release().await.unwrap());

    // Overwritten with something else: repaired, and the clock still takes over.
    let () = redis::cmd("SET")
        .arg(&counter)
        .arg("not a number")
        .query_async(&mut conn)
        .await
        .unwrap();
    let repairs = node.stats().repairs;
    let after_garbage = take(&node, "nightly").await;
    let last = after_garbage.fencing_token();
    assert!(after_garbage.release().await.unwrap());
    assert!(last > after_loss_token, "{last} after {after_loss_token}");
    assert_eq!(node.stats().repairs, repairs + 1);

    // A counter ahead of the clock (the clock stepped back): the counter wins.
    let ahead = last + 1_000_000_000_000;
    let () = redis::cmd("SET")
        .arg(&counter)
        .arg(ahead)
        .query_async(&mut conn)
        .await
        .unwrap();
    let after_step = take(&node, "nightly").await;
    assert_eq!(after_step.fencing_token(), ahead + 1);
    assert!(after_step.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_expires_thirty_days_after_the_last_acquisition() {
    let redis = server();
    let node = common::node(&redis, "fencing").await;
    let guard = take(&node, "nightly").await;
    assert!(guard.release().await.unwrap());
    let counter = counter_key(&node, "nightly").await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&counter)
        .query_async(&mut raw(&redis).await)
        .await
        .unwrap();
    let thirty_days = 30 * 24 * 3600 * 1000;
    assert!(
        ttl > thirty_days - DEADLINE.as_millis() as i64 && ttl <= thirty_days,
        "{ttl} ms"
    );
}
