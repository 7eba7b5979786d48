//! The write and miss paths, each beside the naive Redis code a service would otherwise write, in one run
//! on one private redis-server per group. Values are `Payload::of_size(1024)`.
//!
//! - `miss`: `get_or_load` of a key in neither tier vs `GET` (nil) + encode + `SET EX`.
//! - `set`: `Cache::set` vs encode + `SET EX`.
//! - `invalidate`: `Cache::invalidate` of an existing key vs pipelined `DEL` + `PUBLISH`.
//! - `invalidate_tags/N`: `invalidate_tags(["t"])` over N tagged keys vs a Laravel-style tag set
//!   (`SMEMBERS`, then pipelined `DEL` of the members and the set + `PUBLISH`).
//!
//! Where each iteration needs the key (or keys) to exist first, `iter_custom` re-creates them untimed and
//! only the invalidation is timed.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::StreamExt;
use tiercache::EntryOptions;
use tiercache_benches::{
    criterion_config, encode, naive_miss, node, raw_connection, raw_del_publish, raw_set_ex,
    runtime, Payload,
};
use tiercache_testkit::RedisServer;

const TTL_SECS: u64 = 3600;
const RAW_CHANNEL: &str = "raw-invalidations";

/// Subscribes to the baselines' channel and drains it, so a baseline `PUBLISH` delivers to one subscriber
/// as tiercache's does (its own node listens on its channel); publishing to nobody would flatter it.
async fn raw_subscriber(url: &str) -> tokio::task::JoinHandle<()> {
    let client = redis::Client::open(url).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(RAW_CHANNEL).await.unwrap();
    let mut messages = pubsub.into_on_message();
    tokio::spawn(async move { while messages.next().await.is_some() {} })
}

fn miss(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let cache = rt.block_on(node(&redis.url(), "bench-miss"));
    let raw = rt.block_on(raw_connection(&redis.url()));
    let value = Payload::of_size(1024);
    let opts = EntryOptions::new(Duration::from_secs(TTL_SECS));
    // Outside the routines: criterion calls them several times and a repeated key would be a hit.
    let counter = AtomicU64::new(0);

    let mut group = c.benchmark_group("miss");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tiercache_get_or_load", |b| {
        b.to_async(&rt).iter(|| {
            let key = format!("miss:{}", counter.fetch_add(1, Ordering::Relaxed));
            // The loader must own what it returns; the clone (~1 µs) is the trivial loader's work.
            let loaded = value.clone();
            let (cache, opts) = (&cache, &opts);
            async move {
                let got = cache
                    .get_or_load(&key, opts, move || async move {
                        Ok::<_, std::convert::Infallible>(loaded)
                    })
                    .await
                    .unwrap();
                black_box(got)
            }
        });
    });
    group.bench_function("naive_cache_aside", |b| {
        b.to_async(&rt).iter(|| {
            let key = format!("raw:miss:{}", counter.fetch_add(1, Ordering::Relaxed));
            let mut raw = raw.clone();
            let value = &value;
            async move {
                naive_miss(&mut raw, &key, value, TTL_SECS).await;
            }
        });
    });
    group.finish();
    // Every iteration above must have been a miss that stored; a hit would have measured the wrong path.
    let stats = cache.stats();
    assert_eq!(stats.loads, stats.misses, "{stats:?}");
}

fn set(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let cache = rt.block_on(node(&redis.url(), "bench-set"));
    let raw = rt.block_on(raw_connection(&redis.url()));
    let value = Payload::of_size(1024);
    let opts = EntryOptions::new(Duration::from_secs(TTL_SECS));

    let mut group = c.benchmark_group("set");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tiercache_set", |b| {
        // `set` takes the value by value; the clone is < 1 % of the call.
        b.to_async(&rt)
            .iter(|| async { cache.set("written", value.clone(), &opts).await.unwrap() });
    });
    group.bench_function("raw_set", |b| {
        b.to_async(&rt).iter(|| {
            let mut raw = raw.clone();
            let value = &value;
            async move {
                raw_set_ex(&mut raw, "raw:written", &encode(value), TTL_SECS).await;
            }
        });
    });
    group.finish();
}

fn invalidate(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let cache = rt.block_on(node(&redis.url(), "bench-invalidate"));
    let raw = rt.block_on(raw_connection(&redis.url()));
    let subscriber = rt.block_on(raw_subscriber(&redis.url()));
    let value = Payload::of_size(1024);
    let bytes = encode(&value);
    let opts = EntryOptions::new(Duration::from_secs(TTL_SECS));

    // Timing an invalidation that leaves the value readable would measure nothing.
    rt.block_on(async {
        cache.set("doomed", value.clone(), &opts).await.unwrap();
        cache.invalidate("doomed").await.unwrap();
        assert!(cache.get::<Payload>("doomed").await.unwrap().is_none());
    });

    let mut group = c.benchmark_group("invalidate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tiercache_invalidate", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (cache, value, opts) = (&cache, &value, &opts);
            async move {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    cache.set("doomed", value.clone(), opts).await.unwrap();
                    let started = Instant::now();
                    cache.invalidate("doomed").await.unwrap();
                    timed += started.elapsed();
                }
                timed
            }
        });
    });
    group.bench_function("raw_del_publish", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let mut raw = raw.clone();
            let bytes = &bytes;
            async move {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    raw_set_ex(&mut raw, "raw:doomed", bytes, TTL_SECS).await;
                    let started = Instant::now();
                    let deleted = raw_del_publish(&mut raw, "raw:doomed", RAW_CHANNEL).await;
                    timed += started.elapsed();
                    assert!(deleted);
                }
                timed
            }
        });
    });
    group.finish();
    subscriber.abort();
}

/// Tiercache's tag invalidation is O(1): it bumps the tag's version and entries are checked against it
/// lazily on read, so its time should stay flat as N grows. The Laravel-style baseline must read and
/// delete every member, so its time grows with N.
fn invalidate_tags(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let cache = rt.block_on(node(&redis.url(), "bench-tags"));
    let raw = rt.block_on(raw_connection(&redis.url()));
    let subscriber = rt.block_on(raw_subscriber(&redis.url()));
    let value = Payload::of_size(1024);
    let bytes = encode(&value);
    let opts = EntryOptions::new(Duration::from_secs(TTL_SECS)).with_tags(["t"]);

    let mut group = c.benchmark_group("invalidate_tags");
    for n in [1_usize, 10, 100] {
        let keys: Vec<String> = (0..n).map(|i| format!("tagged:{i}")).collect();
        let raw_keys: Vec<String> = (0..n).map(|i| format!("raw:tagged:{i}")).collect();
        // Concurrent sets only to keep the untimed setup short; tiercache group-commits them.
        let tag_keys = || {
            futures_util::future::try_join_all(
                keys.iter().map(|k| cache.set(k, value.clone(), &opts)),
            )
        };

        rt.block_on(async {
            tag_keys().await.unwrap();
            cache.invalidate_tags(["t"]).await.unwrap();
            for k in &keys {
                assert!(
                    cache.get::<Payload>(k).await.unwrap().is_none(),
                    "{k} survived invalidate_tags"
                );
            }
        });

        group.bench_with_input(BenchmarkId::new("tiercache", n), &n, |b, _| {
            b.to_async(&rt).iter_custom(|iters| {
                let (cache, tag_keys) = (&cache, &tag_keys);
                async move {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        tag_keys().await.unwrap();
                        let started = Instant::now();
                        cache.invalidate_tags(["t"]).await.unwrap();
                        timed += started.elapsed();
                    }
                    timed
                }
            });
        });
        group.bench_with_input(BenchmarkId::new("naive_tag_set", n), &n, |b, _| {
            b.to_async(&rt).iter_custom(|iters| {
                let mut raw = raw.clone();
                let (bytes, raw_keys) = (&bytes, &raw_keys);
                async move {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let mut write = redis::pipe();
                        for k in raw_keys {
                            write
                                .cmd("SET")
                                .arg(k)
                                .arg(bytes)
                                .arg("EX")
                                .arg(TTL_SECS)
                                .ignore()
                                .sadd("tagset:t", k)
                                .ignore();
                        }
                        let () = write.query_async(&mut raw).await.unwrap();

                        let started = Instant::now();
                        let members: Vec<String> = redis::cmd("SMEMBERS")
                            .arg("tagset:t")
                            .query_async(&mut raw)
                            .await
                            .unwrap();
                        let (deleted, _receivers): (u64, u64) = redis::pipe()
                            .del(&members)
                            .ignore()
                            .del("tagset:t")
                            .publish(RAW_CHANNEL, "t")
                            .query_async(&mut raw)
                            .await
                            .unwrap();
                        timed += started.elapsed();
                        assert_eq!(deleted, 1);
                    }
                    timed
                }
            });
        });
    }
    group.finish();
    subscriber.abort();
}

criterion_group! { name = benches; config = criterion_config(); targets = miss, set, invalidate, invalidate_tags }
criterion_main!(benches);
