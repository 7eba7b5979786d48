//! tiercache beside its peer two-tier caches from crates.io, on the same workloads, in one run,
//! against one private redis-server.
//!
//! - `peers_l1_hit`: a 1 KiB value read from the in-process tier.
//! - `peers_l2_hit`: the same value read while it is in Redis but not in this process's tier.
//! - `peers_miss`: get-or-compute with a trivial loader on a key in neither tier.
//!
//! Each library is set up the way its docs intend for a two-tier cache with cross-node
//! invalidation (tiercache's bus, multi-tier-cache's invalidation subscriber, amalgam's backplane
//! and distributed locker), with a 1 h TTL and its most compact binary codec. Each gets its own
//! Redis database so no key or value written by one is ever read by another.
#![allow(clippy::unwrap_used, missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tiercache::EntryOptions;
use tiercache_benches::{criterion_config, node, runtime, Payload};
use tiercache_testkit::RedisServer;

const TTL: Duration = Duration::from_hours(1);

type MultiTier = multi_tier_cache::CacheManager;
type Amalgam = amalgam::Cache<Arc<Payload>>;

/// The three caches under test, all on one redis-server.
struct Peers {
    tiercache: tiercache::Cache,
    multi_tier: Arc<MultiTier>,
    // Held apart from the manager because its API has no "drop from L1 only" call: removing from
    // the L1 backend directly is the equivalent of `forget_local`.
    multi_tier_l1: Arc<multi_tier_cache::L1Cache>,
    amalgam: Amalgam,
}

impl Peers {
    async fn start(redis: &RedisServer) -> Self {
        let tiercache = node(&redis.url(), "bench-peers").await;

        let url = redis.url_db(2);
        // Their defaults: 5,000 entries, 1 h TTL, 2 min idle; the hot key never idles out.
        let multi_tier_l1 = Arc::new(
            multi_tier_cache::L1Cache::new(multi_tier_cache::MokaCacheConfig::default()).unwrap(),
        );
        let l2 = Arc::new(multi_tier_cache::L2Cache::with_url(&url).await.unwrap());
        let mut multi_tier = MultiTier::new_with_invalidation(
            Arc::clone(&multi_tier_l1),
            l2,
            &url,
            multi_tier_cache::InvalidationConfig::default(),
        )
        .await
        .unwrap();
        // JSON is their default; MessagePack is their most compact codec (small integers in one
        // byte, like our bincode varints), which keeps the codec from dominating the comparison.
        multi_tier.set_serializer(multi_tier_cache::CacheSerializer::MsgPack(
            multi_tier_cache::serialization::MsgPackSerializer,
        ));

        let url = redis.url_db(3);
        let l2 = amalgam::provider::RedisDistributedCache::connect(url.clone())
            .await
            .unwrap();
        let backplane = amalgam::provider::RedisBackplane::connect(url.clone())
            .await
            .unwrap();
        let locker = amalgam::provider::RedisDistributedLocker::connect(url)
            .await
            .unwrap();
        // `Arc<Payload>` as the value type so an L1 hit clones an Arc, as tiercache's does; with
        // plain `Payload` every hit would deep-copy the 1 KiB value.
        let amalgam = Amalgam::builder()
            .distributed(Arc::new(l2))
            .serializer(Arc::new(amalgam::provider::PostcardSerializer))
            .backplane(Arc::new(backplane))
            .distributed_locker(Arc::new(locker))
            .default_options(amalgam::EntryOptions::new(TTL))
            .try_build_ready()
            .await
            .unwrap();

        Peers {
            tiercache,
            multi_tier: Arc::new(multi_tier),
            multi_tier_l1,
            amalgam,
        }
    }

    /// Stores `value` under `key` in both tiers of every cache.
    async fn seed(&self, key: &str, value: &Payload) {
        self.tiercache
            .set(key, value.clone(), &EntryOptions::new(TTL))
            .await
            .unwrap();
        let v = value.clone();
        self.multi_tier
            .get_or_compute_typed(
                key,
                multi_tier_cache::CacheStrategy::Custom(TTL),
                || async move { Ok(v) },
            )
            .await
            .unwrap();
        self.amalgam
            .set(key, Arc::new(value.clone()))
            .await
            .unwrap();
    }

    async fn multi_tier_forget_local(&self, key: &str) {
        multi_tier_cache::CacheBackend::remove(&*self.multi_tier_l1, key)
            .await
            .unwrap();
    }

    async fn amalgam_forget_local(&self, key: &str) {
        // A remove that skips the L2 write and the backplane touches this process's L1 only.
        self.amalgam
            .remove(key)
            .options(|o| {
                o.with_skip_distributed(true, true)
                    .with_skip_backplane_notifications(true)
            })
            .await
            .unwrap();
    }
}

fn l1_hit(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let peers = rt.block_on(Peers::start(&redis));
    rt.block_on(peers.seed("hot", &Payload::of_size(1024)));

    let mut group = c.benchmark_group("peers_l1_hit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tiercache", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                peers
                    .tiercache
                    .get::<Payload>(black_box("hot"))
                    .await
                    .unwrap()
                    .unwrap(),
            )
        });
    });
    group.bench_function("multi_tier_cache", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                peers
                    .multi_tier
                    .get_typed::<Payload>(black_box("hot"))
                    .await
                    .unwrap()
                    .unwrap(),
            )
        });
    });
    group.bench_function("amalgam_cache", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                peers
                    .amalgam
                    .try_get(black_box("hot"))
                    .await
                    .unwrap()
                    .unwrap(),
            )
        });
    });
    group.finish();
}

fn l2_hit(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let peers = rt.block_on(Peers::start(&redis));
    rt.block_on(peers.seed("warm", &Payload::of_size(1024)));

    // Each iteration includes the L1 removal, the same for all three: it is local work only.
    let mut group = c.benchmark_group("peers_l2_hit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tiercache", |b| {
        b.to_async(&rt).iter(|| async {
            peers.tiercache.admin().forget_local("warm");
            black_box(
                peers
                    .tiercache
                    .get::<Payload>("warm")
                    .await
                    .unwrap()
                    .unwrap(),
            )
        });
    });
    group.bench_function("multi_tier_cache", |b| {
        b.to_async(&rt).iter(|| async {
            peers.multi_tier_forget_local("warm").await;
            black_box(
                peers
                    .multi_tier
                    .get_typed::<Payload>("warm")
                    .await
                    .unwrap()
                    .unwrap(),
            )
        });
    });
    group.bench_function("amalgam_cache", |b| {
        b.to_async(&rt).iter(|| async {
            peers.amalgam_forget_local("warm").await;
            black_box(peers.amalgam.try_get("warm").await.unwrap().unwrap())
        });
    });
    group.finish();
}

fn miss(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let peers = rt.block_on(Peers::start(&redis));
    let value = Payload::of_size(1024);
    let opts = EntryOptions::new(TTL);
    // One counter for all three so no key is reused by any of them across warm-up and samples.
    let n = AtomicU64::new(0);
    let fresh = || format!("miss:{}", n.fetch_add(1, Ordering::Relaxed));

    let mut group = c.benchmark_group("peers_miss");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tiercache", |b| {
        b.to_async(&rt).iter(|| async {
            let v = value.clone();
            black_box(
                peers
                    .tiercache
                    .get_or_load(
                        &fresh(),
                        &opts,
                        move || async move { Ok::<_, Infallible>(v) },
                    )
                    .await
                    .unwrap(),
            )
        });
    });
    group.bench_function("multi_tier_cache", |b| {
        b.to_async(&rt).iter(|| async {
            let v = value.clone();
            black_box(
                peers
                    .multi_tier
                    .get_or_compute_typed(
                        &fresh(),
                        multi_tier_cache::CacheStrategy::Custom(TTL),
                        || async move { Ok(v) },
                    )
                    .await
                    .unwrap(),
            )
        });
    });
    group.bench_function("amalgam_cache", |b| {
        b.to_async(&rt).iter(|| async {
            let v = Arc::new(value.clone());
            black_box(
                peers
                    .amalgam
                    .get_or_set(fresh(), move |_| async move { Ok::<_, Infallible>(v) })
                    .await
                    .unwrap(),
            )
        });
    });
    group.finish();
}

criterion_group! { name = benches; config = criterion_config(); targets = l1_hit, l2_hit, miss }
criterion_main!(benches);
