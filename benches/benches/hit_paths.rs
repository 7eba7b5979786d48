//! L1 hit and L2 hit, each beside its baseline in the same run.
//!
//! - L1 hit: `Cache::get` served from L1 vs raw `moka::future::Cache::get` vs `RwLock<HashMap>`, on
//!   one hot key, on one hot key carrying ten tags (a widget's share), and on a 100k-key working
//!   set, from 1 and from 2 threads at once; tiercache both bare and with a Prometheus recorder
//!   installed (`_metered`), as services run it.
//! - L2 hit (L1 cold): `Cache::get` after `forget_local` vs raw Redis `GET` + bincode decode.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::StreamExt;
use parking_lot::RwLock;
use tiercache::EntryOptions;
use tiercache_benches::{
    assert_all_in_l1, assert_every_l1_hit_exported, criterion_config, decode, encode, metered_node,
    node, raw_connection, runtime, Payload,
};
use tiercache_testkit::RedisServer;

/// Keys in the large L1 working set: far beyond the CPU caches, so a lookup pays for memory too.
const WORKING_SET: usize = 100_000;

/// The keys an L1 bench cycles through, built once so the timed loop formats nothing.
fn key_set(n: usize) -> Arc<Vec<String>> {
    key_set_named("widget", n)
}

fn key_set_named(prefix: &str, n: usize) -> Arc<Vec<String>> {
    Arc::new((0..n).map(|i| format!("{prefix}:{i}")).collect())
}

/// Benchmarks `$body` (a lookup of key `$k` in `$s`) as `iters` lookups split over `$threads` OS
/// threads, each walking the keys in its own scrambled order, timed by wall clock: with 2 threads
/// criterion's per-iteration figure is the cost per lookup while both cores look up at once. Each
/// thread drives its own lookups with `Handle::block_on`: tasks spawned on the runtime may share one
/// worker and take turns, which made the 2-thread figures swing by 3x from run to run. A macro
/// rather than a generic function so the lookup is not boxed: an allocation per call would swamp a
/// 20 ns lookup.
macro_rules! bench_lookups {
    ($group:expr, $rt:expr, $id:expr, $threads:expr, $keys:expr, $state:expr, |$s:ident, $k:ident| $body:expr) => {{
        let (keys, state, handle) = ($keys.clone(), $state.clone(), $rt.handle().clone());
        $group.bench_function($id, |b| {
            b.iter_custom(|iters| {
                let start_line = std::sync::Barrier::new($threads as usize + 1);
                std::thread::scope(|scope| {
                    for t in 0..$threads {
                        let (keys, $s, handle, start_line) =
                            (keys.clone(), state.clone(), handle.clone(), &start_line);
                        scope.spawn(move || {
                            start_line.wait();
                            handle.block_on(async move {
                                let n = keys.len();
                                // A step coprime with n visits every key in an order the
                                // prefetcher cannot follow.
                                let mut i = (t as usize * 7919) % n;
                                for _ in 0..iters / $threads {
                                    i = (i + 40_503) % n;
                                    let $k = keys[i].as_str();
                                    black_box($body);
                                }
                            });
                        });
                    }
                    start_line.wait();
                    // The threads start together; the clock stops when the scope has joined them.
                    std::time::Instant::now()
                })
                .elapsed()
            });
        });
    }};
}

fn l1_hit(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let cache = rt.block_on(node(&redis.url(), "bench-l1"));
    // The same node as most services run it: with a Prometheus recorder taking every hit's count.
    let (metered, prometheus) = metered_node(&rt, &redis.url(), "bench-l1-metered");
    let value = Payload::of_size(1024);
    let opts = EntryOptions::new(Duration::from_hours(1));
    let moka: moka::future::Cache<String, Arc<Payload>> =
        moka::future::Cache::new(2 * WORKING_SET as u64);
    let map: Arc<RwLock<HashMap<String, Arc<Payload>>>> = Arc::default();
    let all_keys = key_set(WORKING_SET);
    rt.block_on(async {
        // 64 writes in flight: 100k sequential round trips would dominate the bench's run time.
        futures_util::stream::iter(all_keys.iter())
            .for_each_concurrent(64, |key| {
                let (cache, metered, moka, map) = (&cache, &metered, &moka, &map);
                let (value, opts) = (&value, &opts);
                async move {
                    cache.set(key, value.clone(), opts).await.unwrap();
                    metered.set(key, value.clone(), opts).await.unwrap();
                    moka.insert(key.clone(), Arc::new(value.clone())).await;
                    map.write().insert(key.clone(), Arc::new(value.clone()));
                }
            })
            .await;
    });
    // A tagged hit checks the entry's tag versions against what the node knows.
    let tagged = key_set_named("tagged", 1);
    let tagged_opts = EntryOptions::new(Duration::from_hours(1))
        .with_tags((0..10).map(|i| format!("widget-tag:{i}")));
    rt.block_on(async {
        for node in [&cache, &metered] {
            node.set(&tagged[0], value.clone(), &tagged_opts)
                .await
                .unwrap();
        }
        moka.insert(tagged[0].clone(), Arc::new(value.clone()))
            .await;
        map.write()
            .insert(tagged[0].clone(), Arc::new(value.clone()));
    });
    for node in [&cache, &metered] {
        assert_all_in_l1(node, WORKING_SET as u64 + 1);
    }

    let mut group = c.benchmark_group("l1_hit");
    group.throughput(Throughput::Elements(1));
    for (set_name, keys) in [
        ("hot", key_set(1)),
        ("hot_10_tags", tagged),
        ("100k_keys", all_keys.clone()),
    ] {
        for threads in [1_u64, 2] {
            let param = format!("{set_name}/{threads}_threads");
            bench_lookups!(
                group,
                &rt,
                BenchmarkId::new("tiercache_get", &param),
                threads,
                keys,
                cache,
                |c, k| c.get::<Payload>(k).await.unwrap().unwrap()
            );
            bench_lookups!(
                group,
                &rt,
                BenchmarkId::new("tiercache_get_metered", &param),
                threads,
                keys,
                metered,
                |c, k| c.get::<Payload>(k).await.unwrap().unwrap()
            );
            bench_lookups!(
                group,
                &rt,
                BenchmarkId::new("raw_moka_get", &param),
                threads,
                keys,
                moka,
                |m, k| m.get(k).await.unwrap()
            );
            bench_lookups!(
                group,
                &rt,
                BenchmarkId::new("rwlock_hashmap_get", &param),
                threads,
                keys,
                map,
                |m, k| m.read().get(k).cloned().unwrap()
            );
        }
    }
    group.finish();
    assert_every_l1_hit_exported(&metered, "bench-l1-metered", &prometheus);
}

fn l2_hit(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let cache = rt.block_on(node(&redis.url(), "bench-l2"));
    let mut raw = rt.block_on(raw_connection(&redis.url()));
    let opts = EntryOptions::new(Duration::from_hours(1));
    let mut group = c.benchmark_group("l2_hit");
    for size in [100, 1024, 64 * 1024] {
        let value = Payload::of_size(size);
        rt.block_on(cache.set("warm", value.clone(), &opts))
            .unwrap();
        let bytes = encode(&value);
        rt.block_on(async {
            let () = redis::cmd("SET")
                .arg("raw")
                .arg(&bytes)
                .query_async(&mut raw)
                .await
                .unwrap();
        });
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("tiercache_get_cold_l1", size),
            &size,
            |b, _| {
                b.to_async(&rt).iter(|| async {
                    cache.admin().forget_local("warm");
                    black_box(cache.get::<Payload>("warm").await.unwrap().unwrap())
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("raw_redis_get_decode", size),
            &size,
            |b, _| {
                b.to_async(&rt).iter(|| {
                    let mut raw = raw.clone();
                    async move {
                        let bytes: Vec<u8> = redis::cmd("GET")
                            .arg("raw")
                            .query_async(&mut raw)
                            .await
                            .unwrap();
                        black_box(decode(&bytes))
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group! { name = benches; config = criterion_config(); targets = l1_hit, l2_hit }
criterion_main!(benches);
