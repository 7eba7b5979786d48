//! Invalidations reach every node's L1; lost messages are detected and recovered.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{counting, eventually, nodes, server, DEADLINE};
use tiercache::{Cache, EntryOptions};
use tiercache_testkit::FaultProxy;

fn opts() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(600))
}

/// Deletes a tag's version key behind the cache's back (an operator, or an eviction).
async fn delete_tag_version(redis: &common::RedisServer, key: &str) {
    let mut conn = redis.connection_db(1).await.unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// A new node's `get_or_load` of `k` naming `tags`, with a loader that returns 2: the value it got
/// and how often its loader ran.
async fn read_on_a_new_node(
    redis: &common::RedisServer,
    namespace: &str,
    tags: &[&str],
) -> (u64, usize) {
    let reader = common::node(redis, namespace).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let v = reader
        .get_or_load(
            "k",
            &opts().with_tags(tags.iter().copied()),
            counting(&calls, 2_u64),
        )
        .await
        .unwrap();
    (*v, calls.load(Ordering::SeqCst))
}

async fn load_everywhere(nodes: &[Cache], key: &str, value: u64, tags: &[&str]) {
    let opts = opts().with_tags(tags.iter().copied());
    for n in nodes {
        let v = n
            .get_or_load(
                key,
                &opts,
                move || async move { Ok::<_, std::io::Error>(value) },
            )
            .await
            .unwrap();
        assert_eq!(*v, value);
        // Second read proves the value sits in this node's L1.
        let before = n.stats().l1_hits;
        n.get_or_load(
            key,
            &opts,
            move || async move { Ok::<_, std::io::Error>(value) },
        )
        .await
        .unwrap();
        assert_eq!(n.stats().l1_hits, before + 1, "{key} is in L1");
    }
}

async fn gone_everywhere(nodes: &[Cache], key: &str) {
    for (i, n) in nodes.iter().enumerate() {
        eventually(
            DEADLINE,
            &format!("node {i} no longer serves {key}"),
            || async { n.get::<u64>(key).await.unwrap().is_none() },
        )
        .await;
    }
}

#[tokio::test]
async fn key_and_tag_invalidations_reach_every_node() {
    let redis = server();
    let fleet = nodes(&redis, "inv", 3).await;
    load_everywhere(&fleet, "by-key", 1, &[]).await;
    load_everywhere(&fleet, "by-tag", 2, &["campaign:123"]).await;

    fleet[0].invalidate("by-key").await.unwrap();
    gone_everywhere(&fleet, "by-key").await;
    fleet[1].invalidate_tags(["campaign:123"]).await.unwrap();
    gone_everywhere(&fleet, "by-tag").await;
    assert!(fleet[2].stats().invalidations_received >= 2);
}

#[tokio::test]
async fn a_tag_invalidation_leaves_entries_of_other_tags_cached() {
    let redis = server();
    let fleet = nodes(&redis, "selective", 3).await;
    load_everywhere(&fleet, "org1", 1, &["organization:1", "donation"]).await;
    load_everywhere(&fleet, "org2", 2, &["organization:2", "donation"]).await;

    fleet[0].invalidate_tags(["organization:1"]).await.unwrap();
    gone_everywhere(&fleet, "org1").await;
    for n in &fleet {
        let before = n.stats().l1_hits;
        assert_eq!(n.get::<u64>("org2").await.unwrap().as_deref(), Some(&2));
        assert_eq!(n.stats().l1_hits, before + 1, "org2 is still an L1 hit");
    }
}

#[tokio::test]
async fn an_invalidation_right_after_the_subscriber_is_killed_leaves_no_stale_l1() {
    let redis = server();
    let fleet = nodes(&redis, "kill", 3).await;
    load_everywhere(&fleet, "k", 1, &["t"]).await;
    load_everywhere(&fleet, "other", 9, &[]).await;

    let killed = redis.kill_pubsub_clients().await.unwrap();
    assert!(killed >= 3, "killed {killed} subscribers");
    fleet[0].invalidate("k").await.unwrap();
    gone_everywhere(&fleet, "k").await;
    for (i, n) in fleet.iter().enumerate() {
        eventually(
            DEADLINE,
            &format!("node {i} recovers and trusts L1 again"),
            || async { !n.admin().is_suspect() },
        )
        .await;
        assert_eq!(n.get::<u64>("other").await.unwrap().as_deref(), Some(&9));
    }
}

#[tokio::test]
async fn a_node_that_misses_messages_detects_the_gap_and_replays() {
    let redis = server();
    let fleet = nodes(&redis, "gap", 2).await;
    let (sender, receiver) = (&fleet[0], &fleet[1]);
    load_everywhere(&fleet, "missed", 1, &[]).await;
    load_everywhere(&fleet, "kept", 2, &[]).await;

    sender.admin().fault_skip_publish(1);
    sender.invalidate("missed").await.unwrap();
    eventually(
        DEADLINE,
        "the receiver notices the gap (heartbeat ahead) and replays",
        || async { receiver.stats().gaps_detected >= 1 && receiver.stats().replays >= 1 },
    )
    .await;
    gone_everywhere(&fleet, "missed").await;
    assert_eq!(receiver.stats().l1_drops, 0, "a replay, not a drop");
    let before = receiver.stats().l1_hits;
    assert_eq!(
        receiver.get::<u64>("kept").await.unwrap().as_deref(),
        Some(&2)
    );
    assert_eq!(
        receiver.stats().l1_hits,
        before + 1,
        "untouched entries survive a replay"
    );
}

#[tokio::test]
async fn a_node_whose_position_was_trimmed_from_the_stream_drops_l1() {
    let redis = server();
    // A slow heartbeat on the sender, so the receiver cannot notice the gap before the stream is trimmed.
    let fleet = vec![
        common::builder(&redis, "trim")
            .heartbeat_interval(Duration::from_secs(3))
            .build()
            .await
            .unwrap(),
        common::node(&redis, "trim").await,
    ];
    let (sender, receiver) = (&fleet[0], &fleet[1]);
    load_everywhere(&fleet, "missed", 1, &[]).await;
    load_everywhere(&fleet, "innocent", 2, &[]).await;

    sender.admin().fault_skip_publish(1);
    sender.invalidate("missed").await.unwrap();
    let mut conn = redis.connection_db(1).await.unwrap();
    let stream = "tc:{4.trim}:s";
    let _: i64 = redis::cmd("XTRIM")
        .arg(stream)
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();

    eventually(DEADLINE, "the receiver drops its L1", || async {
        receiver.stats().l1_drops >= 1
    })
    .await;
    gone_everywhere(&fleet, "missed").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let v = receiver
        .get_or_load("innocent", &opts(), counting(&calls, 3_u64))
        .await
        .unwrap();
    assert_eq!(
        (*v, calls.load(Ordering::SeqCst)),
        (2, 0),
        "after the drop L2 still answers"
    );
}

#[tokio::test]
async fn after_redis_restarts_empty_no_node_serves_pre_restart_l1_entries() {
    let mut redis = server();
    let fleet = nodes(&redis, "restart", 3).await;
    load_everywhere(&fleet, "k", 1, &["t"]).await;

    redis.kill();
    redis.restart().unwrap();
    for (i, n) in fleet.iter().enumerate() {
        eventually(
            DEADLINE,
            &format!("node {i} drops its pre-restart L1"),
            || async { n.stats().l1_drops >= 1 && !n.admin().is_suspect() },
        )
        .await;
        assert_eq!(n.get::<u64>("k").await.unwrap(), None);
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let v = fleet[0]
        .get_or_load("k", &opts().with_tags(["t"]), counting(&calls, 5_u64))
        .await
        .unwrap();
    assert_eq!(
        (*v, calls.load(Ordering::SeqCst)),
        (5, 1),
        "the node works against the new server"
    );
}

#[tokio::test]
async fn a_tag_version_deleted_by_hand_invalidates_its_entries_fail_closed() {
    let redis = server();
    let fleet = nodes(&redis, "evict", 2).await;
    load_everywhere(&fleet, "k", 1, &["donation"]).await;

    delete_tag_version(&redis, "tc:{5.evict}:t:donation").await;

    assert_eq!(
        read_on_a_new_node(&redis, "evict", &["donation"]).await,
        (2, 1),
        "L2 refused the entry whose tag version vanished"
    );
    for (i, n) in fleet.iter().enumerate() {
        eventually(
            DEADLINE,
            &format!("node {i} learns the recreated version"),
            || async { n.get::<u64>("k").await.unwrap().as_deref() == Some(&2) },
        )
        .await;
    }
}

async fn slow_load_overlapped_by(invalidate: impl AsyncFnOnce(&Cache)) {
    let redis = server();
    let fleet = nodes(&redis, "slow", 2).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(tokio::sync::Notify::new());
    let loading = {
        let (cache, gate, started) = (fleet[0].clone(), gate.clone(), started.clone());
        tokio::spawn(async move {
            let opts = opts().with_tags(["campaign:7"]);
            cache
                .get_or_load("slow", &opts, move || async move {
                    started.notify_one();
                    gate.notified().await;
                    Ok::<_, std::io::Error>(1_u64)
                })
                .await
        })
    };
    started.notified().await;
    invalidate(&fleet[1]).await;
    gate.notify_one();
    assert_eq!(
        *loading.await.unwrap().unwrap(),
        1,
        "the loader's callers get its value"
    );
    assert_eq!(fleet[0].stats().fenced_writes, 1);
    for n in &fleet {
        assert_eq!(n.get::<u64>("slow").await.unwrap(), None, "stored nowhere");
    }
    let fresh = common::node(&redis, "slow").await;
    assert_eq!(fresh.get::<u64>("slow").await.unwrap(), None);
}

#[tokio::test]
async fn a_load_overlapped_by_a_key_invalidation_is_never_stored() {
    slow_load_overlapped_by(async |c: &Cache| c.invalidate("slow").await.unwrap()).await;
}

#[tokio::test]
async fn a_load_overlapped_by_a_tag_invalidation_is_never_stored() {
    slow_load_overlapped_by(async |c: &Cache| c.invalidate_tags(["campaign:7"]).await.unwrap())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_ten_thousand_invalidations_is_batched_and_applied_everywhere() {
    let redis = server();
    let fleet = nodes(&redis, "burst", 3).await;
    for i in 0..50 {
        load_everywhere(&fleet, &format!("k{i}"), i, &[]).await;
    }
    let sent_before = fleet[0].stats().bus_messages_sent;
    let received_before: Vec<u64> = fleet
        .iter()
        .map(|n| n.stats().invalidations_received)
        .collect();
    let mut tasks = Vec::new();
    for i in 0..10_000 {
        let cache = fleet[0].clone();
        tasks.push(tokio::spawn(async move {
            cache.invalidate(&format!("k{}", i % 5000)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let messages = fleet[0].stats().bus_messages_sent - sent_before;
    assert!(
        messages < 1000,
        "10,000 invalidations became {messages} messages"
    );
    for (i, n) in fleet.iter().enumerate().skip(1) {
        eventually(
            DEADLINE,
            &format!("node {i} applied all 10,000"),
            || async { n.stats().invalidations_received - received_before[i] >= 10_000 },
        )
        .await;
    }
    for i in 0..50 {
        gone_everywhere(&fleet, &format!("k{i}")).await;
    }
}

#[tokio::test]
async fn a_read_naming_fewer_tags_than_the_entry_still_checks_every_recorded_tag() {
    let redis = server();
    let writer = common::node(&redis, "subset").await;
    writer
        .set("k", 1_u64, &opts().with_tags(["campaign:1", "donation"]))
        .await
        .unwrap();
    delete_tag_version(&redis, "tc:{6.subset}:t:donation").await;

    assert_eq!(
        read_on_a_new_node(&redis, "subset", &["campaign:1"]).await,
        (2, 1),
        "the unnamed tag's vanished version still invalidates"
    );
}

#[tokio::test]
async fn a_cold_read_vouched_by_the_bus_stops_vouching_once_the_tag_moves_on() {
    let redis = server();
    let fleet = nodes(&redis, "vouch", 2).await;
    let tagged = opts().with_tags(["campaign:7"]);
    fleet[0].set("k", 1_u64, &tagged).await.unwrap();
    fleet[0].admin().forget_local("k");
    assert_eq!(
        fleet[0].get::<u64>("k").await.unwrap().as_deref(),
        Some(&1),
        "a cold read of an entry whose tag version the node knows"
    );

    fleet[1].invalidate_tags(["campaign:7"]).await.unwrap();
    // The entry stays in Redis under its old recorded version (tag invalidation is a version bump);
    // node 0 must stop vouching for that version once the bus brings the new one.
    eventually(DEADLINE, "node 0 refuses the cold read", || async {
        fleet[0].admin().forget_local("k");
        fleet[0].get::<u64>("k").await.unwrap().is_none()
    })
    .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let v = fleet[0]
        .get_or_load("k", &tagged, counting(&calls, 2_u64))
        .await
        .unwrap();
    assert_eq!((*v, calls.load(Ordering::SeqCst)), (2, 1), "and reloads it");
}

// Current-thread runtime: both calls reach the outbox before its flusher runs, so they share one
// batch, the set first.
#[tokio::test(flavor = "current_thread")]
async fn a_key_invalidated_after_its_set_in_the_same_batch_ends_without_a_value() {
    let redis = server();
    let nodes = nodes(&redis, "set-then-invalidate", 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let opts = EntryOptions::new(Duration::from_secs(600));
    let (set, invalidated) = tokio::join!(a.set("k", 7_u64, &opts), a.invalidate("k"));
    set.unwrap();
    invalidated.unwrap();
    assert_eq!(
        b.get::<u64>("k").await.unwrap(),
        None,
        "the set's write outlived the invalidation that followed it"
    );
    assert_eq!(
        a.get::<u64>("k").await.unwrap(),
        None,
        "the setting node's L1 kept the value the invalidation removed"
    );
    // And the other order: the value set after the invalidation stays.
    let (invalidated, set) = tokio::join!(a.invalidate("k"), a.set("k", 8_u64, &opts));
    invalidated.unwrap();
    set.unwrap();
    assert_eq!(b.get::<u64>("k").await.unwrap().as_deref(), Some(&8));
    assert_eq!(a.get::<u64>("k").await.unwrap().as_deref(), Some(&8));
    assert!(
        a.admin().serves_locally("k"),
        "the set filled its own node's L1"
    );
}

/// A node whose Redis traffic goes through `proxy`, waiting `response_timeout` for each reply.
async fn node_behind(proxy: &FaultProxy, namespace: &str, response_timeout: Duration) -> Cache {
    Cache::builder()
        .redis_url(&proxy.url())
        .namespace(namespace)
        .heartbeat_interval(Duration::from_millis(100))
        .response_timeout(response_timeout)
        .build()
        .await
        .unwrap()
}

/// A load of `k` on `node` whose loader reads `truth` and then holds until released; returns once the
/// loader has read, with the call and its release.
async fn frozen_load(
    node: &Cache,
    truth: &Arc<AtomicU64>,
    opts: &EntryOptions,
) -> (Call, tokio::sync::oneshot::Sender<()>) {
    let (started, loader_started) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let call = {
        let (node, truth, opts) = (node.clone(), truth.clone(), opts.clone());
        tokio::spawn(async move {
            node.get_or_load("k", &opts, move || async move {
                let version = truth.load(Ordering::SeqCst);
                let _ = started.send(());
                let _ = released.await;
                Ok::<_, std::io::Error>(version)
            })
            .await
        })
    };
    tokio::time::timeout(DEADLINE, loader_started)
        .await
        .expect("the leader's loader runs")
        .unwrap();
    (call, release)
}

/// A call of `k` on `node`, loading `truth` if it leads; returns once it has joined the load running
/// there.
async fn joined_load(node: &Cache, truth: &Arc<AtomicU64>, opts: &EntryOptions) -> Call {
    let coalesced_before = node.stats().coalesced;
    let call = {
        let (node, truth, opts) = (node.clone(), truth.clone(), opts.clone());
        tokio::spawn(async move {
            node.get_or_load("k", &opts, move || async move {
                Ok::<_, std::io::Error>(truth.load(Ordering::SeqCst))
            })
            .await
        })
    };
    eventually(DEADLINE, "the call joins the running load", || async {
        node.stats().coalesced > coalesced_before
    })
    .await;
    call
}

/// Lets the frozen load finish; the call that joined it must come back with version 2, the value
/// after the invalidation, not the load's version 1.
async fn release_and_expect_the_new_value(
    release: tokio::sync::oneshot::Sender<()>,
    follower: Call,
) {
    let _ = release.send(());
    let read = tokio::time::timeout(DEADLINE, follower)
        .await
        .expect("the call finishes")
        .unwrap()
        .unwrap();
    assert_eq!(
        *read, 2,
        "the call began after the invalidation was acknowledged: it must not get the older load's value"
    );
}

/// A `get_or_load` running in a task of its own.
type Call = tokio::task::JoinHandle<Result<Arc<u64>, tiercache::Error>>;

/// A call that joins a load already running on its node after another node's invalidation of the key
/// was acknowledged, but before the bus brought it here, must not get that load's result (read before
/// the change): when the invalidation arrives, the call reads again. The chaos suite found this with a
/// loader frozen for seconds: a read that began just after an acknowledgement returned the old value
/// seconds later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_on_a_load_that_an_invalidation_overtakes_reads_again() {
    let redis = server();
    let proxy = FaultProxy::start(redis.port()).await.unwrap();
    let slow = node_behind(&proxy, "overtaken", Duration::from_secs(5)).await;
    let other = common::node(&redis, "overtaken").await;
    // The marker sits in the slow node's L1 and is invalidated right after the key: once it is gone
    // there, the node has applied the key's invalidation (the bus applies in order, replays too).
    load_everywhere(std::slice::from_ref(&slow), "marker", 0, &[]).await;
    let truth = Arc::new(AtomicU64::new(1));
    let (leader, release) = frozen_load(&slow, &truth, &opts()).await;
    // The leader's loader has read version 1. The bus now takes 300 ms to reach the slow node, so the
    // call below joins the load after the invalidation was acknowledged and before the node knows.
    proxy.set_latency(Duration::from_millis(300));
    truth.store(2, Ordering::SeqCst);
    other.invalidate("k").await.unwrap();
    other.invalidate("marker").await.unwrap();
    let follower = joined_load(&slow, &truth, &opts()).await;
    assert!(
        slow.admin().serves_locally("marker"),
        "the call joined before the invalidation arrived (raise the proxy latency if this fails)"
    );
    proxy.set_latency(Duration::ZERO);
    // Applied, from the bus or (when the slow bus made the node suspect) from the stream's replay.
    eventually(
        DEADLINE,
        "the invalidations reach the slow node",
        || async { !slow.admin().serves_locally("marker") && !slow.admin().is_suspect() },
    )
    .await;
    release_and_expect_the_new_value(release, follower).await;
    assert_eq!(slow.stats().flights_overtaken, 1);
    // The leader's own call began before the change: the version it loaded is its answer.
    let led = leader.await.unwrap().unwrap();
    assert_eq!(*led, 1);
}

/// The same, when the invalidation never arrives: the node is cut off from Redis, misses it and turns
/// suspect. A call that joined a load begun before then must not get that load's result either,
/// since the node cannot know what it missed: it reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_on_a_load_when_its_node_turns_suspect_reads_again() {
    let redis = server();
    let proxy = FaultProxy::start(redis.port()).await.unwrap();
    let cut_off = node_behind(&proxy, "suspect-flight", Duration::from_millis(500)).await;
    let other = common::node(&redis, "suspect-flight").await;
    let truth = Arc::new(AtomicU64::new(1));
    let (leader, release) = frozen_load(&cut_off, &truth, &opts()).await;
    proxy.partition();
    truth.store(2, Ordering::SeqCst);
    other.invalidate("k").await.unwrap();
    let follower = joined_load(&cut_off, &truth, &opts()).await;
    assert!(
        !cut_off.admin().is_suspect(),
        "the call joined before the node noticed the partition"
    );
    eventually(DEADLINE, "the cut-off node turns suspect", || async {
        cut_off.admin().is_suspect()
    })
    .await;
    release_and_expect_the_new_value(release, follower).await;
    assert!(cut_off.stats().flights_overtaken >= 1);
    let led = leader.await.unwrap().unwrap();
    assert_eq!(*led, 1);
    proxy.heal();
}

/// A tag invalidation poisons no flight on its way (flights do not know their tags), but it fences the
/// load's store: Redis's refusal is the proof, and a call that joined the load after the invalidation
/// was acknowledged reads again rather than take the load's older value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_on_a_load_whose_store_is_fenced_by_a_tag_reads_again() {
    let redis = server();
    let nodes = nodes(&redis, "tag-fenced", 2).await;
    let (loading, other) = (&nodes[0], &nodes[1]);
    let tagged = opts().with_tags(["g"]);
    let truth = Arc::new(AtomicU64::new(1));
    let (leader, release) = frozen_load(loading, &truth, &tagged).await;
    truth.store(2, Ordering::SeqCst);
    other.invalidate_tags(["g"]).await.unwrap();
    let follower = joined_load(loading, &truth, &tagged).await;
    let fenced_before = loading.stats().fenced_writes;
    release_and_expect_the_new_value(release, follower).await;
    assert!(loading.stats().fenced_writes > fenced_before);
    assert_eq!(loading.stats().flights_overtaken, 1);
    assert_eq!(*leader.await.unwrap().unwrap(), 1);
}

/// A `set` whose call timed out on a slow link (its caller was told the write is pending and only the
/// key's invalidation is queued) must not put its value into Redis when it arrives there late, after
/// another node's invalidation of the key was acknowledged: every node would serve that older value
/// until the queued invalidation is replayed. The chaos suite found this with 150 ms of latency on
/// one node: a value served 1.9 s after its invalidation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_that_timed_out_does_not_land_over_a_later_invalidation() {
    let redis = server();
    let proxy = FaultProxy::start(redis.port()).await.unwrap();
    let slow = node_behind(&proxy, "late-set", Duration::from_millis(300)).await;
    let other = common::node(&redis, "late-set").await;
    // Loads the scripts, so the late set is one command.
    slow.set("warm", 0_u64, &opts()).await.unwrap();
    // The set reaches Redis 600 ms after it is sent; its caller gives up after 300 ms.
    proxy.set_latency(Duration::from_millis(600));
    let late = slow.set("k", 1_u64, &opts()).await;
    assert!(
        late.as_ref().is_err_and(tiercache::Error::is_pending),
        "the set times out as pending: {late:?}"
    );
    // The set's bytes are already in the proxy's hands; nothing after them gets through (so the
    // queued invalidation cannot be replayed before the check below).
    proxy.partition();
    let received_before = other.stats().invalidations_received;
    other.invalidate("k").await.unwrap();
    eventually(
        DEADLINE,
        "the late set reaches Redis and is announced",
        || async { other.stats().invalidations_received > received_before },
    )
    .await;
    let read = other.get::<u64>("k").await.unwrap();
    assert_eq!(
        read.as_deref(),
        None,
        "the invalidation was acknowledged after the set's caller gave up: its value must not be served"
    );
    proxy.heal();
}

/// `invalidate_tags_and_set`: the tag's other entries are gone on every node, the replaced entries
/// hold their new values on every node, and readers on other nodes never find one missing while
/// replacements follow one another (an invalidation followed by `set`s leaves them empty between).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_invalidated_with_its_replacements_never_leaves_them_empty() {
    const HOT: usize = 40;
    let redis = server();
    let fleet = nodes(&redis, "replace", 3).await;
    let tagged = opts().with_tags(["campaign:1"]);
    let hot: Vec<String> = (0..HOT).map(|i| format!("hot{i}")).collect();
    for key in &hot {
        load_everywhere(&fleet, key, 0, &["campaign:1"]).await;
    }
    load_everywhere(&fleet, "cold", 0, &["campaign:1"]).await;
    load_everywhere(&fleet, "other", 0, &["campaign:2"]).await;

    let tags = vec!["campaign:1".to_owned()];
    let replace = |v: u64| -> Vec<(String, u64, EntryOptions)> {
        hot.iter().map(|k| (k.clone(), v, tagged.clone())).collect()
    };
    let written = fleet[0]
        .invalidate_tags_and_set(&tags, replace(1))
        .await
        .unwrap();
    assert_eq!(written, HOT);
    for (i, n) in fleet.iter().enumerate() {
        eventually(DEADLINE, &format!("node {i} dropped cold"), || async {
            n.get::<u64>("cold").await.unwrap().is_none()
        })
        .await;
        for key in &hot {
            let v = n.get::<u64>(key).await.unwrap();
            assert_eq!(v.as_deref(), Some(&1), "node {i} {key}");
        }
        assert_eq!(
            n.get::<u64>("other").await.unwrap().as_deref(),
            Some(&0),
            "node {i}"
        );
    }

    let writer = fleet[0].clone();
    let batches: Vec<_> = (2..=60_u64).map(replace).collect();
    let replacing = tokio::spawn(async move {
        // Paced: a dispatcher replaces its views a few times a second; a reader's read that
        // straddles a replacement is made again, which replacements faster than a read's two round
        // trips could outrun.
        let mut pace = tokio::time::interval(Duration::from_millis(5));
        for entries in batches {
            pace.tick().await;
            writer
                .invalidate_tags_and_set(&tags, entries)
                .await
                .unwrap();
        }
    });
    let mut reads = 0;
    while !replacing.is_finished() {
        for n in &fleet[1..] {
            let key = &hot[reads % HOT];
            let seen = n.get::<u64>(key).await.unwrap();
            assert!(seen.is_some(), "read {reads}: {key} was missing");
            reads += 1;
        }
    }
    replacing.await.unwrap();
    assert!(reads > 0);
    for (i, n) in fleet.iter().enumerate() {
        eventually(
            DEADLINE,
            &format!("node {i} shows the last values"),
            || async { n.get::<u64>("hot7").await.unwrap().as_deref() == Some(&60) },
        )
        .await;
    }
}
