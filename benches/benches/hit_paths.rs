//! L1 hit and L2 hit, each beside its baseline in the same run.
//!
//! - L1 hit: `Cache::get` served from L1 vs raw `moka::future::Cache::get` vs `RwLock<HashMap>`.
//! - L2 hit (L1 cold): `Cache::get` after `forget_local` vs raw Redis `GET` + bincode decode.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parking_lot::RwLock;
use tiercache::EntryOptions;
use tiercache_benches::{criterion_config, decode, encode, node, raw_connection, runtime, Payload};
use tiercache_testkit::RedisServer;

fn l1_hit(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let cache = rt.block_on(node(&redis.url(), "bench-l1"));
    let value = Payload::of_size(1024);
    let opts = EntryOptions::new(Duration::from_hours(1));
    rt.block_on(cache.set("hot", value.clone(), &opts)).unwrap();
    let moka: moka::future::Cache<String, Arc<Payload>> = moka::future::Cache::new(10_000);
    rt.block_on(moka.insert("hot".to_owned(), Arc::new(value.clone())));
    let map: RwLock<HashMap<String, Arc<Payload>>> =
        RwLock::new(HashMap::from([("hot".to_owned(), Arc::new(value))]));

    let mut group = c.benchmark_group("l1_hit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tiercache_get", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.get::<Payload>(black_box("hot")).await.unwrap()) });
    });
    group.bench_function("raw_moka_get", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(moka.get(black_box("hot")).await) });
    });
    group.bench_function("rwlock_hashmap_get", |b| {
        b.iter(|| black_box(map.read().get(black_box("hot")).cloned()));
    });
    group.finish();
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
                    cache.forget_local("warm").await;
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
