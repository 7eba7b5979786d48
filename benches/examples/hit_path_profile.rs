//! Runs one hot path many times in a single-threaded runtime, for a profiler.
//!
//! ```text
//! cargo build --release -p tiercache-benches --example hit_path_profile
//! valgrind --tool=callgrind target/release/examples/hit_path_profile l2 20000 1024 [in_flight]
//! ```
//!
//! Paths: `l1` (`get` from L1), `l2` (`forget_local` + `get`), `l2_tagged` (`forget_local` +
//! `get_or_load` naming the entry's tag), `raw` (raw `GET` + bincode decode), `forget`
//! (`forget_local` alone, to subtract it from `l2`), `l1_get_or_load` (`get_or_load` on a key in L1,
//! as a service calls it), `moka` (`moka::future::Cache::get`) and `moka_sync`
//! (`moka::sync::Cache::get`, the fastest moka lookup), beside `l1`; `miss` (`get_or_load` of a key
//! in neither tier, no tags, as the `ops` bench's miss) beside `naive_miss` (`GET` finding nothing,
//! then `SET EX`); `dashboard` (`forget_local` of seven views, then `fetch_many` of them: one
//! round trip) beside `raw_dashboard` (seven raw `GET`s pipelined, each decoded), each task with
//! seven views of its own. `in_flight` (default 1) tasks share the calls,
//! each on its own key, to show costs that grow with concurrency. It prints the mean wall time per
//! call and Redis's own per-command CPU time, so client and server cost can be told apart.
//!
//! `HIT_PATH_SUBSCRIBER=info` (or `debug`, `trace`) installs a `tracing_subscriber::fmt` subscriber at
//! that level, writing nowhere, to show what the cache's spans cost: at `info` they are disabled
//! (the cache's spans are DEBUG), at `debug` each call makes one. Unset: no subscriber.
#![allow(clippy::unwrap_used, missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tiercache::{Cache, EntryOptions};
use tiercache_benches::{decode, encode, naive_miss, node, raw_connection, Payload};
use tiercache_testkit::RedisServer;

/// The keys of the `dashboard` paths' seven views.
const VIEWS: [&str; 7] = [
    "view0", "view1", "view2", "view3", "view4", "view5", "view6",
];

struct Setup {
    cache: Cache,
    raw: redis::aio::MultiplexedConnection,
    moka: moka::future::Cache<String, Arc<Payload>>,
    moka_sync: moka::sync::Cache<String, Arc<Payload>>,
    value: Arc<Payload>,
    opts: EntryOptions,
    /// Options without tags, for the miss paths.
    untagged: EntryOptions,
    /// Numbers the miss paths' keys, so no key is read twice.
    misses: std::sync::atomic::AtomicU64,
}

async fn one_call(s: &Setup, path: &str, key: &str, raw_key: &str) {
    match path {
        "l1" => {
            black_box(s.cache.get::<Payload>(key).await.unwrap());
        }
        "l2" => {
            s.cache.admin().forget_local(key);
            black_box(s.cache.get::<Payload>(key).await.unwrap());
        }
        "l2_tagged" => {
            s.cache.admin().forget_local(key);
            // The loader never runs here: it holds the shared value and copies it only if run.
            let v = Arc::clone(&s.value);
            black_box(
                s.cache
                    .get_or_load(key, &s.opts, || async move {
                        Ok::<_, std::io::Error>(Payload::clone(&v))
                    })
                    .await
                    .unwrap(),
            );
        }
        "forget" => s.cache.admin().forget_local(key),
        "l1_get_or_load" => {
            black_box(
                s.cache
                    .get_or_load(key, &s.opts, || async {
                        Err::<Payload, _>(std::io::Error::other("the key is in L1"))
                    })
                    .await
                    .unwrap(),
            );
        }
        "moka" => {
            black_box(s.moka.get(key).await.unwrap());
        }
        "moka_sync" => {
            black_box(s.moka_sync.get(key).unwrap());
        }
        "miss" => {
            let n = s.misses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let v = Payload::clone(&s.value);
            black_box(
                s.cache
                    .get_or_load(&format!("{key}-miss{n}"), &s.untagged, || async move {
                        Ok::<_, std::io::Error>(v)
                    })
                    .await
                    .unwrap(),
            );
        }
        "naive_miss" => {
            let n = s.misses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let raw_key = format!("{raw_key}-miss{n}");
            naive_miss(&mut s.raw.clone(), &raw_key, &s.value, 3600).await;
        }
        "raw" => {
            let bytes: Vec<u8> = redis::cmd("GET")
                .arg(raw_key)
                .query_async(&mut s.raw.clone())
                .await
                .unwrap();
            black_box(decode(&bytes));
        }
        "dashboard" => {
            let views = VIEWS.map(|view| format!("{key}:{view}"));
            for view in &views {
                s.cache.admin().forget_local(view);
            }
            let requests = views.iter().map(|view| (view.as_str(), &s.untagged));
            let views = s
                .cache
                .fetch_many(requests, |_: Vec<String>| async {
                    Err::<Vec<(String, Payload)>, _>(std::io::Error::other("the views are in L2"))
                })
                .await;
            for view in views {
                black_box(view.unwrap());
            }
        }
        "raw_dashboard" => {
            let mut pipe = redis::pipe();
            for view in VIEWS {
                pipe.cmd("GET").arg(format!("{raw_key}:{view}"));
            }
            let replies: Vec<Vec<u8>> = pipe.query_async(&mut s.raw.clone()).await.unwrap();
            for bytes in replies {
                black_box(decode(&bytes));
            }
        }
        other => panic!(
            "unknown path {other}: use l1, l1_get_or_load, l2, l2_tagged, forget, raw, miss, naive_miss, moka, moka_sync, dashboard or raw_dashboard"
        ),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "l2".to_owned());
    let iterations: u32 = args.next().map_or(20_000, |s| s.parse().unwrap());
    let size: usize = args.next().map_or(1024, |s| s.parse().unwrap());
    let in_flight: u32 = args.next().map_or(1, |s| s.parse().unwrap());
    if let Ok(level) = std::env::var("HIT_PATH_SUBSCRIBER") {
        let level: tracing_subscriber::filter::LevelFilter = level.parse().unwrap();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::sink)
            .init();
        println!("subscriber: fmt at {level}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = RedisServer::start().unwrap();
    rt.block_on(async {
        let mut raw = raw_connection(&redis.url()).await;
        let setup = Arc::new(Setup {
            cache: node(&redis.url(), "profile").await,
            raw: raw.clone(),
            moka: moka::future::Cache::new(1 << 20),
            moka_sync: moka::sync::Cache::new(1 << 20),
            value: Arc::new(Payload::of_size(size)),
            opts: EntryOptions::new(Duration::from_hours(1)).with_tags(["profile"]),
            untagged: EntryOptions::new(Duration::from_hours(1)),
            misses: std::sync::atomic::AtomicU64::new(0),
        });
        for i in 0..in_flight {
            setup
                .cache
                .set(&format!("warm{i}"), Payload::clone(&setup.value), &setup.opts)
                .await
                .unwrap();
            setup
                .moka
                .insert(format!("warm{i}"), Arc::new(Payload::clone(&setup.value)))
                .await;
            setup
                .moka_sync
                .insert(format!("warm{i}"), Arc::new(Payload::clone(&setup.value)));
            let () = redis::cmd("SET")
                .arg(format!("raw{i}"))
                .arg(encode(&setup.value))
                .query_async(&mut raw)
                .await
                .unwrap();
        }
        // Each task's own seven views, as each caller of the dashboard bench has its own.
        for (i, view) in (0..in_flight).flat_map(|i| VIEWS.map(|view| (i, view))) {
            let value = Payload::clone(&setup.value);
            let key = format!("warm{i}:{view}");
            setup.cache.set(&key, value, &setup.untagged).await.unwrap();
            let () = redis::cmd("SET")
                .arg(format!("raw{i}:{view}"))
                .arg(encode(&setup.value))
                .query_async(&mut raw)
                .await
                .unwrap();
        }
        let () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut raw)
            .await
            .unwrap();
        let started = Instant::now();
        let tasks: Vec<_> = (0..in_flight)
            .map(|i| {
                let (setup, path) = (setup.clone(), path.clone());
                tokio::spawn(async move {
                    let (key, raw_key) = (format!("warm{i}"), format!("raw{i}"));
                    for _ in 0..iterations / in_flight {
                        one_call(&setup, &path, &key, &raw_key).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let per_call = started.elapsed() / iterations;
        println!(
            "{path}: {iterations} calls, {in_flight} in flight, {per_call:?} per call (wall, single thread)"
        );
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut raw)
            .await
            .unwrap();
        for line in stats.lines().filter(|l| l.starts_with("cmdstat_")) {
            println!("  redis {line}");
        }
        println!("{:?}", setup.cache.stats());
    });
}
