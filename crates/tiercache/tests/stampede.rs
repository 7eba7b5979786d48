//! Fleet-wide coalescing: one load per key for the whole fleet, and no hang when the loader misbehaves.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{builder, eventually, server, DEADLINE};
use tiercache::{Cache, EntryOptions};

async fn fleet(
    redis: &common::RedisServer,
    namespace: &str,
    n: usize,
    lease: Duration,
) -> Vec<Cache> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut config = builder(redis, namespace)
            .build()
            .await
            .unwrap()
            .config()
            .clone();
        config.lock_timeout = lease;
        out.push(Cache::builder().config(config).build().await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_with_250_callers_each_run_the_loader_once() {
    let redis = server();
    let nodes = fleet(&redis, "stampede", 4, Duration::from_secs(30)).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let opts = EntryOptions::new(Duration::from_secs(60));
    let mut callers = Vec::new();
    for node in &nodes {
        for _ in 0..250 {
            let (node, calls, opts) = (node.clone(), calls.clone(), opts.clone());
            callers.push(tokio::spawn(async move {
                node.get_or_load("cold", &opts, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, std::io::Error>(vec![7_u64; 16])
                })
                .await
            }));
        }
    }
    for c in callers {
        assert_eq!(*c.await.unwrap().unwrap(), vec![7_u64; 16]);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one load for the whole fleet"
    );
    let waits: u64 = nodes.iter().map(|n| n.stats().fleet_waits).sum();
    assert!(
        waits >= 1,
        "other nodes waited for the fill instead of loading"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_that_vanishes_is_taken_over_once() {
    let redis = server();
    let mut nodes = fleet(&redis, "takeover", 3, Duration::from_millis(500)).await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    // The first node starts a load that never finishes, then the node "dies" (task aborted).
    let hung = {
        let (node, opts) = (nodes[0].clone(), opts.clone());
        tokio::spawn(async move {
            node.get_or_load("k", &opts, || async {
                std::future::pending::<()>().await;
                Ok::<_, std::io::Error>(0_u64)
            })
            .await
        })
    };
    eventually(DEADLINE, "the first node holds the lease", || async {
        nodes[0].stats().lock_acquired >= 1
    })
    .await;
    // The node dies: its caller goes away and its last handle is dropped, so nothing extends the lease.
    hung.abort();
    let _ = hung.await;
    let dead = nodes.remove(0);
    drop(dead);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut waiters = Vec::new();
    for node in &nodes {
        let (node, calls, opts) = (node.clone(), calls.clone(), opts.clone());
        waiters.push(tokio::spawn(async move {
            node.get_or_load("k", &opts, move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(42_u64)
            })
            .await
        }));
    }
    for w in waiters {
        assert_eq!(
            *tokio::time::timeout(DEADLINE, w)
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
            42
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "exactly one node took the lease over"
    );
    let takeovers: u64 = nodes.iter().map(|n| n.stats().lease_takeovers).sum();
    assert!(takeovers >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_loader_releases_the_lease_and_nobody_hangs() {
    let redis = server();
    let nodes = fleet(&redis, "panic", 2, Duration::from_secs(30)).await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    let err = nodes[0]
        .get_or_load::<u64, _, _, std::io::Error>("k", &opts, || async { panic!("bad aggregate") })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad aggregate"));
    let conn = redis.connection_db(1).await.unwrap();
    // Released by a task of its own after the call returns (no caller waits for it).
    eventually(DEADLINE, "the lease was released", || {
        let mut conn = conn.clone();
        async move {
            let lease: Option<String> = redis::cmd("GET")
                .arg("tc:{5.panic:1.k}:l")
                .query_async(&mut conn)
                .await
                .unwrap();
            lease.is_none()
        }
    })
    .await;
    let v = tokio::time::timeout(
        Duration::from_secs(5),
        nodes[1].get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(1_u64) }),
    )
    .await
    .expect("no wait on a dead lease")
    .unwrap();
    assert_eq!(*v, 1);
}

#[tokio::test]
async fn with_locking_disabled_each_node_coalesces_on_its_own() {
    let redis = server();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let mut config = builder(&redis, "nolock")
            .build()
            .await
            .unwrap()
            .config()
            .clone();
        config.locking_enabled = false;
        nodes.push(Cache::builder().config(config).build().await.unwrap());
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let opts = EntryOptions::new(Duration::from_secs(60));
    let mut callers = Vec::new();
    for node in &nodes {
        for _ in 0..20 {
            let (node, calls, opts) = (node.clone(), calls.clone(), opts.clone());
            callers.push(tokio::spawn(async move {
                node.get_or_load("k", &opts, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, std::io::Error>(1_u64)
                })
                .await
            }));
        }
    }
    for c in callers {
        c.await.unwrap().unwrap();
    }
    assert!(
        (1..=2).contains(&calls.load(Ordering::SeqCst)),
        "at most one load per node"
    );
    assert_eq!(
        nodes.iter().map(|n| n.stats().lock_acquired).sum::<u64>(),
        0
    );
}

/// The lease a cold read takes with its fence, and the store that lets go of it, run as scripts
/// pipelined by SHA: after `SCRIPT FLUSH` the pipelined call fails with NOSCRIPT and the read falls
/// back to loading the script, and either way one node loads and no lease is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_load_leaves_no_lease_behind_with_or_without_cached_scripts() {
    let redis = server();
    let nodes = fleet(&redis, "claim", 2, Duration::from_secs(30)).await;
    let opts = EntryOptions::new(Duration::from_secs(60));
    let mut conn = redis.connection_db(1).await.unwrap();
    for (key, lease_key) in [("k1", "tc:{5.claim:2.k1}:l"), ("k2", "tc:{5.claim:2.k2}:l")] {
        if key == "k2" {
            redis::cmd("SCRIPT")
                .arg("FLUSH")
                .exec_async(&mut conn)
                .await
                .unwrap();
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let mut callers = Vec::new();
        for node in &nodes {
            for _ in 0..5 {
                let (node, calls, opts) = (node.clone(), calls.clone(), opts.clone());
                callers.push(tokio::spawn(async move {
                    node.get_or_load(key, &opts, move || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<_, std::io::Error>(9_u64)
                    })
                    .await
                }));
            }
        }
        for c in callers {
            assert_eq!(*c.await.unwrap().unwrap(), 9);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{key}: one load");
        let lease: Option<String> = redis::cmd("GET")
            .arg(lease_key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(lease, None, "{key}: the store released the lease");
    }
    let acquired: u64 = nodes.iter().map(|n| n.stats().lock_acquired).sum();
    assert_eq!(acquired, 2, "one lease per cold key");
}

/// A caller cancelled while its cold read is in flight, after Redis took the key's lease for it, does
/// not leave the lease for the fleet to wait out: the lease the read was taking is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_read_cancelled_after_taking_the_lease_releases_it() {
    let redis = server();
    let proxy = tiercache_testkit::FaultProxy::start(redis.port())
        .await
        .unwrap();
    let node = Cache::builder()
        .redis_url(&proxy.url())
        .namespace("cancel")
        .response_timeout(Duration::from_secs(5))
        // The slow link below must not cut the read short: the caller is cancelled instead.
        .read_deadline(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let lease_key = "tc:{6.cancel:1.k}:l";
    let conn = redis.connection_db(1).await.unwrap();
    // A first cold read loads the read script into Redis (its pipelined EVALSHA finds none and falls
    // back to a lease taken by the load's own task); the cold read below takes the lease itself.
    let opts = EntryOptions::new(Duration::from_secs(60));
    node.get_or_load("warm", &opts, || async { Ok::<_, std::io::Error>(0_u64) })
        .await
        .unwrap();
    // Every chunk through the proxy now waits 300 ms each way: the lease is in Redis well before
    // the fence read's reply is back. The caller is cancelled as soon as a direct connection sees it.
    proxy.set_latency(Duration::from_millis(300));
    let lease_taken = async {
        let mut watch = redis.connection_db(1).await.unwrap();
        loop {
            let held: bool = redis::cmd("EXISTS")
                .arg(lease_key)
                .query_async(&mut watch)
                .await
                .unwrap();
            if held {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let load = node.get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(1_u64) });
    tokio::select! {
        done = load => panic!("the read finished before it could be cancelled: {done:?}"),
        () = lease_taken => {}
        () = tokio::time::sleep(DEADLINE) => panic!("the cold read never took the lease"),
    }
    proxy.set_latency(Duration::ZERO);
    eventually(DEADLINE, "the cancelled read's lease is released", || {
        let mut conn = conn.clone();
        async move {
            let held: bool = redis::cmd("EXISTS")
                .arg(lease_key)
                .query_async(&mut conn)
                .await
                .unwrap();
            !held
        }
    })
    .await;
}

/// Node `loader` starts loading `key` and holds it until node `waiter`'s read of the key is waiting
/// for the fill; returns what the waiter read.
async fn read_while_another_node_loads(
    loader: &Cache,
    waiter: &Cache,
    key: &str,
    value: String,
) -> String {
    let opts = EntryOptions::new(Duration::from_secs(60));
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let leases_before = loader.stats().lock_acquired;
    let loading = {
        let (node, opts, key, value) =
            (loader.clone(), opts.clone(), key.to_owned(), value.clone());
        tokio::spawn(async move {
            node.get_or_load(&key, &opts, move || async move {
                let _ = released.await;
                Ok::<_, std::io::Error>(value)
            })
            .await
        })
    };
    eventually(DEADLINE, "the loading node holds the lease", || async {
        loader.stats().lock_acquired > leases_before
    })
    .await;
    let waits_before = waiter.stats().fleet_waits;
    let waiting = {
        let (node, opts, key) = (waiter.clone(), opts.clone(), key.to_owned());
        tokio::spawn(async move {
            node.get_or_load(&key, &opts, || async {
                Err::<String, _>(std::io::Error::other("the waiter must not load"))
            })
            .await
        })
    };
    eventually(DEADLINE, "the other node waits for the fill", || async {
        waiter.stats().fleet_waits > waits_before
    })
    .await;
    release.send(()).unwrap();
    assert_eq!(*loading.await.unwrap().unwrap(), value);
    let read = tokio::time::timeout(DEADLINE, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    (*read).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_takes_a_small_value_from_the_filled_notice_and_a_large_one_from_redis() {
    let redis = server();
    let nodes = fleet(&redis, "notice", 2, Duration::from_secs(30)).await;
    let (loader, waiter) = (&nodes[0], &nodes[1]);
    // Three rounds, each on a new key: a waiter mid-way through a fallback poll when the notice
    // arrives reads Redis instead, which is correct but rare; two of three must use the notice.
    for round in 0..3 {
        let value = format!("small value {round}");
        let read =
            read_while_another_node_loads(loader, waiter, &format!("small{round}"), value.clone())
                .await;
        assert_eq!(read, value);
    }
    let stats = waiter.stats();
    assert!(
        stats.fill_notice_hits >= 2,
        "waiters read Redis although the notice carried the value: {stats:?}"
    );
    assert_eq!(stats.loads, 0, "{stats:?}");
    // The value from the notice went into L1, as a read of Redis would have put it.
    let l1_before = waiter.stats().l1_hits;
    assert_eq!(
        waiter
            .get::<String>("small0")
            .await
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some("small value 0")
    );
    assert_eq!(waiter.stats().l1_hits, l1_before + 1);

    let large = "x".repeat(8 * 1024);
    let notice_hits = waiter.stats().fill_notice_hits;
    let l2_hits = waiter.stats().l2_hits;
    let read = read_while_another_node_loads(loader, waiter, "large", large.clone()).await;
    assert_eq!(read, large);
    assert_eq!(
        waiter.stats().fill_notice_hits,
        notice_hits,
        "an entry over 4 KiB rode on the notice"
    );
    assert!(
        waiter.stats().l2_hits > l2_hits,
        "the large value was not read from Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_that_polls_as_the_holder_stores_does_not_load_the_key_again() {
    // A waiter that read nothing just before the holder's store, then took the lease the store had
    // just released, loaded the key a second time. The waiters' polls (20 ms, jittered, doubling)
    // meet the stores of loads of about that length on many keys at once.
    let redis = server();
    let nodes = fleet(&redis, "poll-race", 4, Duration::from_secs(30)).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let opts = EntryOptions::new(Duration::from_secs(60));
    let keys = 40;
    let mut callers = Vec::new();
    for k in 0..keys {
        for node in &nodes {
            for _ in 0..5 {
                let (node, calls, opts) = (node.clone(), calls.clone(), opts.clone());
                callers.push(tokio::spawn(async move {
                    node.get_or_load(&format!("k{k}"), &opts, move || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(18 + k % 8)).await;
                        Ok::<_, std::io::Error>(k)
                    })
                    .await
                }));
            }
        }
    }
    for (i, caller) in callers.into_iter().enumerate() {
        let value = tokio::time::timeout(DEADLINE, caller)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(*value, (i / 20) as u64);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        keys as usize,
        "a key was loaded twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filled_notice_that_arrives_after_the_keys_invalidation_is_not_served() {
    use futures_util::StreamExt;
    let redis = server();
    let nodes = fleet(&redis, "stale-notice", 3, Duration::from_secs(30)).await;
    let (first, waiter, loader) = (&nodes[0], &nodes[1], &nodes[2]);
    let opts = EntryOptions::new(Duration::from_secs(60));
    // Listen on the namespace's channel (length-prefixed namespace, see keys.rs) for the first fill.
    let channel = "tc:{12.stale-notice}:b";
    let client = redis::Client::open(redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(channel).await.unwrap();
    let old = first
        .get_or_load("standings", &opts, || async {
            Ok::<_, std::io::Error>("the old standings".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(*old, "the old standings");
    let notice = tokio::time::timeout(DEADLINE, async {
        let mut messages = pubsub.on_message();
        loop {
            let payload = messages.next().await.unwrap().get_payload_bytes().to_vec();
            if payload.windows(17).any(|w| w == b"the old standings") {
                return payload;
            }
        }
    })
    .await
    .expect("the first fill's notice, carrying its value");

    // The waiting node invalidates the key itself: no node may serve the old value to it now.
    waiter.invalidate("standings").await.unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let loading = {
        let (node, opts) = (loader.clone(), opts.clone());
        tokio::spawn(async move {
            node.get_or_load("standings", &opts, move || async move {
                let _ = released.await;
                Ok::<_, std::io::Error>("the new standings".to_owned())
            })
            .await
        })
    };
    eventually(DEADLINE, "another node loads the key", || async {
        loader.stats().lock_acquired >= 1
    })
    .await;
    let waiting = {
        let (node, opts) = (waiter.clone(), opts.clone());
        tokio::spawn(async move {
            node.get_or_load("standings", &opts, || async {
                Err::<String, _>(std::io::Error::other("the waiter must not load"))
            })
            .await
        })
    };
    eventually(
        DEADLINE,
        "the invalidating node waits for the fill",
        || async { waiter.stats().fleet_waits >= 1 },
    )
    .await;
    // The old notice arrives late (as it can from the subscriber's buffer): published again, it
    // reaches the waiter before the new load's notice.
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(&notice)
        .exec_async(&mut conn)
        .await
        .unwrap();
    release.send(()).unwrap();
    assert_eq!(*loading.await.unwrap().unwrap(), "the new standings");
    let read = tokio::time::timeout(DEADLINE, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        *read, "the new standings",
        "the waiter served a value its own invalidation had removed"
    );
}
