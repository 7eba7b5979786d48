//! `fetch_many`: many keys in one call, one loader call for those missing everywhere, and per key
//! everything the single-key path guarantees (single flight across both kinds of call, one load per
//! key for the fleet, fenced stores, fail-safe, errors that stay with their key).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{builder, builder_behind, eventually, on_both_backends, server, Backend, DEADLINE};
use futures_util::future::join_all;
use parking_lot::Mutex;
use tiercache::{Cache, EntryOptions, ErrorKind, Fetched, Source};
use tiercache_testkit::FaultProxy;

fn opts() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(600))
}

/// The seven views of a dashboard, on different slots of a cluster.
fn views() -> Vec<String> {
    (0..7).map(|i| format!("dashboard:view:{i}")).collect()
}

/// What a batch loader was asked, call by call.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<BTreeSet<String>>>>);

impl Calls {
    fn all(&self) -> Vec<BTreeSet<String>> {
        self.0.lock().clone()
    }

    /// How many times each key was loaded, over every call.
    fn per_key(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for call in self.0.lock().iter() {
            for key in call {
                *counts.entry(key.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// A batch loader answering each key with its length, after `delay`.
    fn loader(&self, delay: Duration) -> impl Fn(Vec<String>) -> Answer + Send + Sync + 'static {
        let calls = self.clone();
        move |keys: Vec<String>| {
            calls.0.lock().push(keys.iter().cloned().collect());
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(keys
                    .into_iter()
                    .map(|k| (k.clone(), k.len() as u64))
                    .collect())
            })
        }
    }
}

/// What a test's batch loader answers with.
type Answer = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<(String, u64)>, std::io::Error>> + Send>,
>;

fn values(answers: &[Result<Fetched<u64>, tiercache::Error>]) -> Vec<u64> {
    answers.iter().map(|a| *a.as_ref().unwrap().value).collect()
}

fn sources(answers: &[Result<Fetched<u64>, tiercache::Error>]) -> Vec<Source> {
    answers.iter().map(|a| a.as_ref().unwrap().source).collect()
}

/// A dashboard whose views are partly cached: L1 answers its own, L2 another node's, and one loader
/// call computes the rest; the next read is all L1 and calls no loader.
async fn one_loader_call_for_the_views_missing_everywhere(backend: Backend) {
    let fleet = backend.nodes("batch", 2).await;
    let keys = views();
    fleet[0].set(&keys[1], 111_u64, &opts()).await.unwrap();
    fleet[1].set(&keys[4], 444_u64, &opts()).await.unwrap();
    eventually(DEADLINE, "node 0 has its own write in L1", || async {
        fleet[0].admin().serves_locally(&keys[1])
    })
    .await;
    let calls = Calls::default();
    let opts = opts();
    let answers = fleet[0]
        .fetch_many(
            keys.iter().map(|k| (k.as_str(), &opts)),
            calls.loader(Duration::ZERO),
        )
        .await;
    let len = keys[0].len() as u64;
    assert_eq!(
        values(&answers),
        vec![len, 111, len, len, 444, len, len],
        "in the order asked"
    );
    let mut expected = vec![Source::Loaded; 7];
    expected[1] = Source::L1;
    expected[4] = Source::L2;
    assert_eq!(sources(&answers), expected);
    let missing: BTreeSet<String> = [0, 2, 3, 5, 6].iter().map(|&i| keys[i].clone()).collect();
    assert_eq!(
        calls.all(),
        vec![missing],
        "one call, with the keys missing everywhere"
    );

    let again = fleet[0]
        .fetch_many(
            keys.iter().map(|k| (k.as_str(), &opts)),
            calls.loader(Duration::ZERO),
        )
        .await;
    assert_eq!(sources(&again), vec![Source::L1; 7]);
    assert_eq!(calls.all().len(), 1, "all cached: no loader call");
    // The other node finds the loaded views in L2.
    let elsewhere = fleet[1]
        .fetch_many(
            keys.iter().map(|k| (k.as_str(), &opts)),
            calls.loader(Duration::ZERO),
        )
        .await;
    assert_eq!(values(&elsewhere), values(&answers));
    assert_eq!(calls.all().len(), 1);
}

/// Four nodes with fifty callers each open the same cold dashboard at once: each view is loaded
/// once for the whole fleet.
async fn a_cold_dashboard_is_loaded_once_for_the_fleet(backend: Backend) {
    let fleet = backend.nodes("batch-fleet", 4).await;
    let keys = views();
    let calls = Calls::default();
    let opts = opts();
    let callers = fleet.iter().flat_map(|node| {
        (0..50).map(|_| {
            let (node, keys, loader, opts) = (
                node.clone(),
                keys.clone(),
                calls.loader(Duration::from_millis(200)),
                opts.clone(),
            );
            tokio::spawn(async move {
                node.fetch_many(keys.iter().map(|k| (k.as_str(), &opts)), loader)
                    .await
            })
        })
    });
    for answers in join_all(callers).await {
        let answers = answers.unwrap();
        assert_eq!(values(&answers), vec![keys[0].len() as u64; 7]);
    }
    let per_key = calls.per_key();
    assert_eq!(per_key.len(), 7, "{per_key:?}");
    assert!(
        per_key.values().all(|&n| n == 1),
        "one load per view for the fleet: {per_key:?}"
    );
}

on_both_backends!(
    one_loader_call_for_the_views_missing_everywhere,
    a_cold_dashboard_is_loaded_once_for_the_fleet,
);

/// A key a single-key call is loading is waited for, not loaded again: the batch loads the others
/// at once, without waiting for that load to finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_joins_a_single_key_load_already_running() {
    let redis = server();
    let cache = common::node(&redis, "batch-join").await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let single = {
        let (cache, gate) = (cache.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .get_or_load("slow", &opts(), move || async move {
                    gate.notified().await;
                    Ok::<_, std::io::Error>(99_u64)
                })
                .await
        })
    };
    eventually(DEADLINE, "the single-key load runs", || async {
        cache.stats().loads == 1
    })
    .await;
    let calls = Calls::default();
    let batch = {
        let (cache, loader) = (cache.clone(), calls.loader(Duration::ZERO));
        tokio::spawn(async move {
            let opts = opts();
            cache
                .fetch_many([("slow", &opts), ("quick", &opts)], loader)
                .await
        })
    };
    eventually(DEADLINE, "the batch loads the other key", || async {
        calls.all().len() == 1
    })
    .await;
    assert_eq!(calls.all(), vec![BTreeSet::from(["quick".to_owned()])]);
    gate.notify_one();
    let answers = batch.await.unwrap();
    assert_eq!(values(&answers), vec![99, 5]);
    assert_eq!(*single.await.unwrap().unwrap(), 99);
    assert_eq!(
        cache.stats().loads,
        2,
        "the single load and the batch's one"
    );
}

/// A key the loader leaves out fails alone; the loader's error fails each key it was asked for;
/// an invalid key fails alone; a key asked twice is loaded once and answered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_stay_with_their_keys() {
    let redis = server();
    let cache = common::node(&redis, "batch-errors").await;
    let opts = opts();
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = asked.clone();
    let answers = cache
        .fetch_many(
            [("a", &opts), ("", &opts), ("b", &opts), ("a", &opts)],
            move |keys: Vec<String>| {
                counted.fetch_add(keys.len(), Ordering::SeqCst);
                async move {
                    Ok::<_, std::io::Error>(
                        keys.into_iter()
                            .filter(|k| k != "b")
                            .map(|k| (k, 1_u64))
                            .collect::<HashMap<_, _>>(),
                    )
                }
            },
        )
        .await;
    assert_eq!(*answers[0].as_ref().unwrap().value, 1);
    assert_eq!(
        answers[1].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    let missing = answers[2].as_ref().unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Loader);
    assert!(missing.to_string().contains("\"b\""), "{missing}");
    assert_eq!(*answers[3].as_ref().unwrap().value, 1);
    assert_eq!(asked.load(Ordering::SeqCst), 2, "a and b, once each");

    let failed = cache
        .fetch_many([("c", &opts), ("d", &opts)], |_keys: Vec<String>| async {
            Err::<Vec<(String, u64)>, _>(std::io::Error::other("aggregate query failed"))
        })
        .await;
    for answer in &failed {
        let e = answer.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Loader);
        let chain = format!("{e}: {}", std::error::Error::source(e).unwrap());
        assert!(chain.contains("aggregate query failed"), "{chain}");
    }
    assert_eq!(cache.get::<u64>("c").await.unwrap(), None, "nothing stored");
}

/// A batch load overlapped by an invalidation of one of its keys answers its caller but does not
/// store that key; the others are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_during_the_batch_load_fences_its_key() {
    let redis = server();
    let fleet = common::nodes(&redis, "batch-fence", 2).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(AtomicUsize::new(0));
    let batch = {
        let (cache, gate, started) = (fleet[0].clone(), gate.clone(), started.clone());
        tokio::spawn(async move {
            let opts = opts();
            cache
                .fetch_many([("x", &opts), ("y", &opts)], move |keys: Vec<String>| {
                    let (gate, started) = (gate.clone(), started.clone());
                    async move {
                        started.fetch_add(1, Ordering::SeqCst);
                        gate.notified().await;
                        Ok::<_, std::io::Error>(
                            keys.into_iter().map(|k| (k, 1_u64)).collect::<Vec<_>>(),
                        )
                    }
                })
                .await
        })
    };
    eventually(DEADLINE, "the batch load runs", || async {
        started.load(Ordering::SeqCst) == 1
    })
    .await;
    fleet[1].invalidate("x").await.unwrap();
    gate.notify_one();
    let answers = batch.await.unwrap();
    assert_eq!(
        values(&answers),
        vec![1, 1],
        "the caller gets what it loaded"
    );
    assert_eq!(
        fleet[1].get::<u64>("x").await.unwrap(),
        None,
        "x is fenced out"
    );
    assert_eq!(fleet[1].get::<u64>("y").await.unwrap().as_deref(), Some(&1));
    assert_eq!(fleet[0].stats().fenced_writes, 1);
}

/// With Redis unreachable the batch still loads once, every key in one call, and keeps the values
/// in L1 briefly; a key L1 holds but can no longer vouch for is served stale when the loader fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_loads_once_and_fail_safe_holds_per_key() {
    let redis = server();
    let proxy = Arc::new(FaultProxy::start(redis.port()).await.unwrap());
    let cache: Cache = builder_behind(&proxy, "batch-down")
        .read_deadline(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    proxy.partition();
    let calls = Calls::default();
    let opts = opts();
    let answers = cache
        .fetch_many(
            [("p", &opts), ("q", &opts), ("r", &opts)],
            calls.loader(Duration::ZERO),
        )
        .await;
    assert_eq!(values(&answers), vec![1, 1, 1]);
    assert_eq!(calls.all().len(), 1, "one call for the three keys");
    proxy.heal();

    let short = EntryOptions::new(Duration::from_millis(300));
    let other = builder(&redis, "batch-stale").build().await.unwrap();
    other
        .get_or_load("s", &short, || async { Ok::<_, std::io::Error>(7_u64) })
        .await
        .unwrap();
    eventually(DEADLINE, "s expires", || async {
        other.get::<u64>("s").await.unwrap().is_none()
    })
    .await;
    let answers = other
        .fetch_many([("s", &short), ("t", &short)], |_keys: Vec<String>| async {
            Err::<Vec<(String, u64)>, _>(std::io::Error::other("database down"))
        })
        .await;
    let stale = answers[0].as_ref().unwrap();
    assert_eq!((*stale.value, stale.source), (7, Source::Stale));
    assert_eq!(answers[1].as_ref().unwrap_err().kind(), ErrorKind::Loader);
}

/// How many `MGET`s the server has run.
fn mgets(redis: &tiercache_testkit::RedisServer) -> u64 {
    let calls = redis.info_field("commandstats", "cmdstat_mget").ok();
    calls
        .as_deref()
        .and_then(|stats| stats.strip_prefix("calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// A dashboard that is all in L2 is read in one `MGET` from the calling task, each view decoded
/// and kept in L1 as a single read keeps it; a view missing from L2 goes on to its own read and
/// load, and a view whose entry is corrupt is a miss there, never an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_in_l2_are_read_in_one_round_trip() {
    let redis = server();
    let writer = builder(&redis, "batch-once").build().await.unwrap();
    let reader = builder(&redis, "batch-once").build().await.unwrap();
    let keys = views();
    let opts = opts();
    for (i, key) in keys.iter().enumerate() {
        writer.set(key, i as u64, &opts).await.unwrap();
    }
    let calls = Calls::default();
    let before = mgets(&redis);
    let answers = reader
        .fetch_many(
            keys.iter().map(|k| (k.as_str(), &opts)),
            calls.loader(Duration::ZERO),
        )
        .await;
    assert_eq!(values(&answers), (0..7).collect::<Vec<u64>>());
    assert_eq!(sources(&answers), vec![Source::L2; 7]);
    assert_eq!(mgets(&redis) - before, 1, "one MGET for the seven views");
    assert!(calls.all().is_empty(), "nothing to load");
    assert!(keys.iter().all(|k| reader.admin().serves_locally(k)));

    // Two views gone from L2 (one deleted, one corrupt) and five in L1: the two are read and
    // loaded on their own paths, in one loader call.
    let (deleted, corrupt) = (&keys[2], &keys[5]);
    writer.invalidate(deleted).await.unwrap();
    writer.invalidate(corrupt).await.unwrap();
    writer.set(corrupt, 5_u64, &opts).await.unwrap();
    // The entry's Redis key as keys.rs documents it (layout 2), in the database tests use.
    let entry = format!("tc:{{10.batch-once:{}.{corrupt}}}:v", corrupt.len());
    let mut raw = redis.connection_db(1).await.unwrap();
    let overwritten: bool = redis::cmd("SET")
        .arg(&entry)
        .arg("not an envelope")
        .arg("XX")
        .arg("KEEPTTL")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(overwritten, "the entry is where keys.rs says");
    let fresh = builder(&redis, "batch-once").build().await.unwrap();
    let answers = fresh
        .fetch_many(
            keys.iter().map(|k| (k.as_str(), &opts)),
            calls.loader(Duration::ZERO),
        )
        .await;
    let len = keys[0].len() as u64;
    assert_eq!(values(&answers), vec![0, 1, len, 3, 4, len, 6]);
    let mut expected = vec![Source::L2; 7];
    expected[2] = Source::Loaded;
    expected[5] = Source::Loaded;
    assert_eq!(sources(&answers), expected);
    let reloaded: BTreeSet<String> = [deleted.clone(), corrupt.clone()].into();
    assert_eq!(calls.all(), vec![reloaded], "one call for the two");
}
