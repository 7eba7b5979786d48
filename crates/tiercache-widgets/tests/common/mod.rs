//! A fleet for widget tests: SQLite data, three cache nodes on a private Redis, one invalidation service.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tiercache::Cache;
use tiercache_testkit::{eventually, RedisServer};
use tiercache_widgets::{
    Clock, ManualClock, SnapshotQuery, SqliteStore, TimeRange, TtlTiers, WidgetCacheMetricsService,
    WidgetCacheService, WidgetConfig, WidgetData, WidgetDataAggregationService, WidgetFilters,
    WidgetInvalidationService, WidgetKey, WidgetType,
};

// The demo's dataset, its source included by path: this crate cannot depend on the demo crate,
// which depends on it.
#[path = "../../../tiercache-demo/src/dataset.rs"]
pub mod dataset;
use dataset::DatasetSize;

pub const DEADLINE: Duration = Duration::from_secs(10);

pub struct Fleet {
    pub redis: RedisServer,
    dir: TempDir,
    pub data: WidgetDataAggregationService,
    pub nodes: Vec<WidgetCacheService>,
    pub invalidation: WidgetInvalidationService,
    /// What every node was built with, for [`Fleet::node_over`].
    tiers: TtlTiers,
    clock: Option<ManualClock>,
}

/// A temporary directory removed on drop (std only).
pub struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to build a fleet.
pub struct Setup {
    /// The clock every node and the invalidation service read; `None` for the system clock.
    pub clock: Option<ManualClock>,
    /// The instant the synthetic data is generated up to (it spans the 400 days before).
    pub data_until: DateTime<Utc>,
    /// Changes each node's configuration (the cache's, the TTL tiers, ...).
    pub configure: fn(&mut WidgetConfig),
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            clock: None,
            data_until: Utc::now(),
            configure: |_| {},
        }
    }
}

pub async fn fleet(name: &str) -> Fleet {
    fleet_with(name, Setup::default()).await
}

pub async fn fleet_with(name: &str, setup: Setup) -> Fleet {
    let redis = RedisServer::start().unwrap();
    let (dir, data) = empty_data(name);
    dataset::generate_if_empty(&data, DatasetSize::small(), 7, setup.data_until)
        .await
        .unwrap();
    let mut nodes = Vec::new();
    let mut tiers = TtlTiers::default();
    for _ in 0..3 {
        let mut config = WidgetConfig {
            cache: tiercache::Config {
                redis_url: redis.url(),
                namespace: "widgets".into(),
                heartbeat_interval: Duration::from_millis(100),
                ..tiercache::Config::default()
            },
            ..WidgetConfig::default()
        };
        (setup.configure)(&mut config);
        let cache = Cache::builder().config(config.cache).build().await.unwrap();
        tiers = config.ttl_tiers;
        nodes.push(node(cache, data.clone(), tiers, setup.clock.as_ref()));
    }
    let invalidation = WidgetInvalidationService::new(nodes[0].cache().clone(), Some(data.clone()));
    let invalidation = match &setup.clock {
        Some(clock) => invalidation.with_clock(clock.clone()),
        None => invalidation,
    };
    Fleet {
        redis,
        dir,
        data,
        nodes,
        invalidation,
        tiers,
        clock: setup.clock,
    }
}

/// An empty database, `demo.sqlite3` in a directory of its own that is removed when dropped.
pub fn empty_data(name: &str) -> (TempDir, WidgetDataAggregationService) {
    let dir = std::env::temp_dir().join(format!("tiercache-widgets-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = WidgetDataAggregationService::open(dir.join("demo.sqlite3")).unwrap();
    (TempDir(dir), data)
}

/// A node over `cache` computing from `data`, as the fleet builds them.
fn node(
    cache: Cache,
    data: WidgetDataAggregationService,
    tiers: TtlTiers,
    clock: Option<&ManualClock>,
) -> WidgetCacheService {
    let node = WidgetCacheService::new(cache, data, WidgetCacheMetricsService::in_memory())
        .with_ttl_tiers(tiers);
    match clock {
        Some(clock) => node.with_clock(clock.clone()),
        None => node,
    }
}

/// Reads a view through `node`, computed from its data on a miss.
pub async fn read(
    node: &WidgetCacheService,
    w: WidgetType,
    r: TimeRange,
    f: &WidgetFilters,
) -> Arc<WidgetData> {
    node.fetch_view(w, r, f.clone()).await.unwrap().value
}

/// Reads a view and asserts the read was an L1 hit.
pub async fn read_cached(
    node: &WidgetCacheService,
    (w, r, f): (WidgetType, TimeRange, &WidgetFilters),
    what: &str,
) -> Arc<WidgetData> {
    let before = l1_hits(node);
    let value = read(node, w, r, f).await;
    assert_eq!(l1_hits(node), before + 1, "{what}: still an L1 hit");
    value
}

impl Fleet {
    /// The directory holding the fleet's database, `demo.sqlite3`.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir.0
    }

    /// A node over node `i`'s cache, configured as the fleet's nodes are, that computes views from
    /// `data` instead of the fleet's.
    pub fn node_over(&self, i: usize, data: WidgetDataAggregationService) -> WidgetCacheService {
        let cache = self.nodes[i].cache().clone();
        node(cache, data, self.tiers, self.clock.as_ref())
    }

    /// The fleet's database, its widget computations waiting for `gate` to open.
    pub fn gated(&self, gate: &Gate) -> WidgetDataAggregationService {
        let gate = gate.clone();
        self.hooked(move || gate.wait(), || {})
    }

    /// The fleet's database with hooks: `on_compute` runs before each widget computation in a
    /// snapshot (a reader's load or a dispatcher's recompute), `on_lookup` before each donor lookup
    /// of a catch-up. Tests count, slow down or hold the queries with them.
    pub fn hooked(
        &self,
        on_compute: impl Fn() + Send + Sync + 'static,
        on_lookup: impl Fn() + Send + Sync + 'static,
    ) -> WidgetDataAggregationService {
        let store = SqliteStore::open(self.dir().join("demo.sqlite3")).unwrap();
        WidgetDataAggregationService::over(store.observing(move |query| match query {
            SnapshotQuery::Compute => on_compute(),
            SnapshotQuery::GiverDonations => on_lookup(),
            _ => {}
        }))
    }
}

/// A gate blocking threads wait at until the test opens it. Any handle dropped opens it too: a
/// test that ends (or fails) cannot leave a thread of the runtime's blocking pool waiting for ever,
/// which would keep the runtime from shutting down.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// Blocks the calling thread until the gate is open.
    pub fn wait(&self) {
        let (open, opened) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = opened.wait(open).unwrap();
        }
    }

    pub fn open(&self) {
        let (open, opened) = &*self.0;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.open();
    }
}

/// The cached value of a view on `node` (L1 or L2), without loading it.
pub async fn cached(
    node: &WidgetCacheService,
    w: WidgetType,
    r: TimeRange,
    f: &WidgetFilters,
) -> Option<Arc<WidgetData>> {
    let key = key_of(node, w, r, f);
    node.cache().get::<WidgetData>(&key).await.unwrap()
}

/// The cache key of a view on `node` now.
pub fn key_of(node: &WidgetCacheService, w: WidgetType, r: TimeRange, f: &WidgetFilters) -> String {
    WidgetKey::new(w, r, f.clone(), node.now()).to_string()
}

/// Whether a view is cached on `node` (L1 or L2), without loading it.
pub async fn is_cached(
    node: &WidgetCacheService,
    w: WidgetType,
    r: TimeRange,
    f: &WidgetFilters,
) -> bool {
    let key = key_of(node, w, r, f);
    node.cache()
        .get::<WidgetData>(&key)
        .await
        .unwrap()
        .is_some()
}

/// Waits until a view is no longer cached on `node`.
pub async fn wait_until_gone(
    node: &WidgetCacheService,
    w: WidgetType,
    r: TimeRange,
    f: &WidgetFilters,
) {
    let what = format!("{} is gone", key_of(node, w, r, f));
    eventually(DEADLINE, &what, || async {
        !is_cached(node, w, r, f).await
    })
    .await;
}

pub fn l1_hits(node: &WidgetCacheService) -> u64 {
    node.cache().stats().l1_hits
}

pub fn total(d: &WidgetData) -> i64 {
    match d {
        WidgetData::TotalDonations(t) => t.total_cents,
        other => panic!("not a total: {other:?}"),
    }
}

/// The instant `clock` shows (the system clock's when there is none).
pub fn now_of(clock: Option<&ManualClock>) -> DateTime<Utc> {
    clock.map_or_else(Utc::now, Clock::now)
}
