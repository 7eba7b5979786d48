//! [`WidgetCacheMetricsService`]: per-widget hit/miss/latency, lock success, Redis memory, and minute
//! snapshots kept in Redis for trends.
//!
//! Metric names (label `widget`): `widget_cache_requests_total{outcome="hit"|"miss"|"error"}`,
//! `widget_cache_response_seconds`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tiercache::Cache;

use crate::error::WidgetError;
use crate::WidgetType;

/// How many per-minute snapshots are kept in Redis (one day).
pub const SNAPSHOTS_KEPT: isize = 1440;

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    response_micros_total: AtomicU64,
    response_micros_max: AtomicU64,
}

/// Per-widget figures in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WidgetFigures {
    /// Served from either tier.
    pub hits: u64,
    /// Computed by the provider.
    pub misses: u64,
    /// Failed.
    pub errors: u64,
    /// Mean response time, ms.
    pub mean_response_ms: f64,
    /// Slowest response, ms.
    pub max_response_ms: f64,
}

/// Redis memory and keyspace figures from `INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisFigures {
    /// `used_memory`, bytes.
    pub used_memory: u64,
    /// `maxmemory`, bytes (0 = unlimited).
    pub maxmemory: u64,
    /// `evicted_keys`.
    pub evicted_keys: u64,
    /// `keyspace_hits`.
    pub keyspace_hits: u64,
    /// `keyspace_misses`.
    pub keyspace_misses: u64,
}

/// Everything health and alerts look at, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Unix seconds.
    pub taken_at: i64,
    /// Per widget type (snake_case name).
    pub widgets: HashMap<String, WidgetFigures>,
    /// All widget requests.
    pub requests: u64,
    /// hits / (hits + misses); 1 when there were none.
    pub hit_rate: f64,
    /// errors / requests; 0 when there were none.
    pub error_rate: f64,
    /// Mean response time over all widgets, ms.
    pub mean_response_ms: f64,
    /// Failed lease attempts / all lease attempts of this node; 0 when there were none.
    pub lock_failure_rate: f64,
    /// Redis, when it could be read.
    pub redis: Option<RedisFigures>,
}

/// Collects widget metrics. Cheap to clone; clones share the counters.
#[derive(Clone)]
pub struct WidgetCacheMetricsService {
    counters: Arc<[Counters; 7]>,
    redis: Option<redis::aio::ConnectionManager>,
    snapshot_key: String,
}

impl std::fmt::Debug for WidgetCacheMetricsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidgetCacheMetricsService")
            .field("snapshot_key", &self.snapshot_key)
            .finish_non_exhaustive()
    }
}

fn index(widget: WidgetType) -> usize {
    WidgetType::ALL
        .iter()
        .position(|w| *w == widget)
        .unwrap_or(0)
}

fn info_field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

impl WidgetCacheMetricsService {
    /// Counters only (no Redis figures, no stored snapshots).
    pub fn in_memory() -> Self {
        WidgetCacheMetricsService {
            counters: Arc::new(Default::default()),
            redis: None,
            snapshot_key: String::new(),
        }
    }

    /// Counters plus Redis `INFO` and snapshots stored under `widgets:metrics:<namespace>`.
    pub async fn with_redis(redis_url: &str, namespace: &str) -> Result<Self, WidgetError> {
        let conn = redis::Client::open(redis_url)?
            .get_connection_manager()
            .await?;
        Ok(WidgetCacheMetricsService {
            counters: Arc::new(Default::default()),
            redis: Some(conn),
            snapshot_key: format!("widgets:metrics:{namespace}"),
        })
    }

    /// Records one widget request.
    pub fn record(&self, widget: WidgetType, hit: bool, elapsed: Duration, error: bool) {
        let c = &self.counters[index(widget)];
        let outcome = if error {
            c.errors.fetch_add(1, Ordering::Relaxed);
            "error"
        } else if hit {
            c.hits.fetch_add(1, Ordering::Relaxed);
            "hit"
        } else {
            c.misses.fetch_add(1, Ordering::Relaxed);
            "miss"
        };
        let micros = elapsed.as_micros() as u64;
        c.response_micros_total.fetch_add(micros, Ordering::Relaxed);
        c.response_micros_max.fetch_max(micros, Ordering::Relaxed);
        metrics::counter!("widget_cache_requests_total", "widget" => widget.as_str(), "outcome" => outcome).increment(1);
        metrics::histogram!("widget_cache_response_seconds", "widget" => widget.as_str())
            .record(elapsed.as_secs_f64());
    }

    /// The figures now, with the cache's lock counters and (if configured) Redis `INFO`.
    pub async fn snapshot(&self, cache: &Cache) -> MetricsSnapshot {
        let mut snap = MetricsSnapshot {
            taken_at: chrono::Utc::now().timestamp(),
            ..MetricsSnapshot::default()
        };
        let (mut hits, mut misses, mut errors, mut micros) = (0u64, 0u64, 0u64, 0u64);
        for widget in WidgetType::ALL {
            let c = &self.counters[index(widget)];
            let f = (
                c.hits.load(Ordering::Relaxed),
                c.misses.load(Ordering::Relaxed),
                c.errors.load(Ordering::Relaxed),
                c.response_micros_total.load(Ordering::Relaxed),
            );
            let n = f.0 + f.1 + f.2;
            snap.widgets.insert(
                widget.to_string(),
                WidgetFigures {
                    hits: f.0,
                    misses: f.1,
                    errors: f.2,
                    mean_response_ms: if n == 0 {
                        0.0
                    } else {
                        f.3 as f64 / n as f64 / 1000.0
                    },
                    max_response_ms: c.response_micros_max.load(Ordering::Relaxed) as f64 / 1000.0,
                },
            );
            (hits, misses, errors, micros) = (hits + f.0, misses + f.1, errors + f.2, micros + f.3);
        }
        snap.requests = hits + misses + errors;
        snap.hit_rate = if hits + misses == 0 {
            1.0
        } else {
            hits as f64 / (hits + misses) as f64
        };
        snap.error_rate = if snap.requests == 0 {
            0.0
        } else {
            errors as f64 / snap.requests as f64
        };
        snap.mean_response_ms = if snap.requests == 0 {
            0.0
        } else {
            micros as f64 / snap.requests as f64 / 1000.0
        };
        let stats = cache.stats();
        let attempts = stats.lock_acquired + stats.lock_failed;
        snap.lock_failure_rate = if attempts == 0 {
            0.0
        } else {
            stats.lock_failed as f64 / attempts as f64
        };
        snap.redis = self.redis_figures().await.ok();
        snap
    }

    async fn redis_figures(&self) -> Result<RedisFigures, WidgetError> {
        let Some(conn) = &self.redis else {
            return Err(WidgetError::Task("no Redis configured for metrics".into()));
        };
        let info: String = redis::cmd("INFO").query_async(&mut conn.clone()).await?;
        Ok(RedisFigures {
            used_memory: info_field(&info, "used_memory"),
            maxmemory: info_field(&info, "maxmemory"),
            evicted_keys: info_field(&info, "evicted_keys"),
            keyspace_hits: info_field(&info, "keyspace_hits"),
            keyspace_misses: info_field(&info, "keyspace_misses"),
        })
    }

    /// Stores a snapshot in Redis (newest first, capped at [`SNAPSHOTS_KEPT`]); call once a minute.
    pub async fn record_snapshot(&self, snapshot: &MetricsSnapshot) -> Result<(), WidgetError> {
        let Some(conn) = &self.redis else {
            return Ok(());
        };
        let json = serde_json::to_string(snapshot).map_err(|e| WidgetError::Task(e.to_string()))?;
        let () = redis::pipe()
            .cmd("LPUSH")
            .arg(&self.snapshot_key)
            .arg(json)
            .ignore()
            .cmd("LTRIM")
            .arg(&self.snapshot_key)
            .arg(0)
            .arg(SNAPSHOTS_KEPT - 1)
            .ignore()
            .query_async(&mut conn.clone())
            .await?;
        Ok(())
    }

    /// The newest `n` stored snapshots, newest first; unreadable ones are skipped.
    pub async fn history(&self, n: usize) -> Result<Vec<MetricsSnapshot>, WidgetError> {
        let Some(conn) = &self.redis else {
            return Ok(Vec::new());
        };
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(&self.snapshot_key)
            .arg(0)
            .arg(n.saturating_sub(1) as isize)
            .query_async(&mut conn.clone())
            .await?;
        Ok(raw
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_read_by_name_not_prefix() {
        let info = "used_memory:1000\r\nused_memory_human:1K\r\nmaxmemory:4000\r\n";
        assert_eq!(info_field(info, "used_memory"), 1000);
        assert_eq!(info_field(info, "maxmemory"), 4000);
        assert_eq!(info_field(info, "evicted_keys"), 0);
    }
}
