//! A fleet for widget tests: SQLite data, three cache nodes on a private Redis, one invalidation service.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tiercache::Cache;
use tiercache_testkit::{eventually, RedisServer};
use tiercache_widgets::{
    Clock, DatasetSize, ManualClock, TimeRange, WidgetCacheMetricsService, WidgetCacheService,
    WidgetConfig, WidgetData, WidgetDataAggregationService, WidgetFilters,
    WidgetInvalidationService, WidgetKey, WidgetType,
};

pub const DEADLINE: Duration = Duration::from_secs(10);

pub struct Fleet {
    pub redis: RedisServer,
    dir: TempDir,
    pub data: WidgetDataAggregationService,
    pub nodes: Vec<WidgetCacheService>,
    pub invalidation: WidgetInvalidationService,
}

/// A temporary directory removed on drop (std only).
struct TempDir(std::path::PathBuf);

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
    let dir = std::env::temp_dir().join(format!("tiercache-widgets-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = WidgetDataAggregationService::open(dir.join("demo.sqlite3")).unwrap();
    data.generate_if_empty(DatasetSize::small(), 7, setup.data_until)
        .await
        .unwrap();
    let mut nodes = Vec::new();
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
        let node = WidgetCacheService::new(cache, WidgetCacheMetricsService::in_memory())
            .with_ttl_tiers(config.ttl_tiers)
            .with_directory(data.clone());
        nodes.push(match &setup.clock {
            Some(clock) => node.with_clock(clock.clone()),
            None => node,
        });
    }
    let invalidation = WidgetInvalidationService::new(nodes[0].cache().clone(), Some(data.clone()));
    let invalidation = match &setup.clock {
        Some(clock) => invalidation.with_clock(clock.clone()),
        None => invalidation,
    };
    Fleet {
        redis,
        dir: TempDir(dir),
        data,
        nodes,
        invalidation,
    }
}

/// Reads a view through `node`, computing it at the instant the node resolved the range at.
pub async fn read(
    node: &WidgetCacheService,
    data: &WidgetDataAggregationService,
    w: WidgetType,
    r: TimeRange,
    f: &WidgetFilters,
) -> Arc<WidgetData> {
    let (d, f2) = (data.clone(), f.clone());
    node.fetch_widget_data(w, r, f.clone(), move |now| async move {
        d.compute(w, r, f2, now).await
    })
    .await
    .unwrap()
    .value
}

/// Reads a view and asserts the read was an L1 hit.
pub async fn read_cached(
    node: &WidgetCacheService,
    data: &WidgetDataAggregationService,
    (w, r, f): (WidgetType, TimeRange, &WidgetFilters),
    what: &str,
) -> Arc<WidgetData> {
    let before = l1_hits(node);
    let value = read(node, data, w, r, f).await;
    assert_eq!(l1_hits(node), before + 1, "{what}: still an L1 hit");
    value
}

impl Fleet {
    /// The directory holding the fleet's database, `demo.sqlite3`.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir.0
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
