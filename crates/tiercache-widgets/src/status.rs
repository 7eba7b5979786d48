//! [`CacheStatus`]: the one status document of a cache node, printed alike by a service's
//! `GET /api/status` and by the ops CLI's `cache-status --json`.
//!
//! Field names are a promise to dashboards and scripts: add fields, never rename or remove one. Every
//! figure says its unit in its name (`_ms`, `_bytes`) or is a count or a rate between 0 and 1.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tiercache::{Cache, CacheStats};

use crate::alerts::{evaluate, Alert, Severity, Thresholds};
use crate::health::health_score;
use crate::metrics::{
    Figures, LockFigures, MetricsSnapshot, RedisFigures, RequestFigures, WidgetCacheMetricsService,
};
use crate::node_facts::{CoherenceStatus, InvalidationStatus, NodeFacts};
use crate::ServiceTargets;

/// A score at or above this is healthy (unless an alert says otherwise).
pub const HEALTHY_SCORE: u8 = 80;
/// A score below this is critical.
pub const CRITICAL_SCORE: u8 = 50;

/// The status of one cache node, as `/api/status` and `cache-status --json` print it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheStatus {
    /// When the figures were read, Unix seconds (UTC).
    pub taken_at: i64,
    /// The cache namespace the node serves.
    pub namespace: String,
    /// The node's id as 16 hex digits (a string: JSON numbers lose digits past 2^53).
    pub node_id: String,
    /// The health score and the level it maps to, judged over `health.window`.
    pub health: HealthStatus,
    /// The alerts raised now (judged over the same window), most urgent first.
    pub alerts: Vec<Alert>,
    /// The seconds since the node's metrics started: the span `requests`, `widgets` and `locks` cover.
    pub total_seconds: f64,
    /// Every widget request of this node since it started.
    pub requests: RequestFigures,
    /// The same figures per widget type, keyed by its snake_case name; every type is listed.
    pub widgets: BTreeMap<String, RequestFigures>,
    /// Load leases and named locks since the node started.
    pub locks: LockStatus,
    /// The same figures over the last 1, 5 and 15 minutes.
    pub windows: StatusWindows,
    /// Invalidations this node sent and received.
    pub invalidations: InvalidationStatus,
    /// Whether this node may have missed invalidations, and how it recovered.
    pub coherence: CoherenceStatus,
    /// Redis memory and keyspace figures from `INFO`; `null` when they could not be read.
    pub redis: Option<RedisFigures>,
}

/// The health score (0–100, see [`health_score`]) and its level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// 0–100; 100 when there was no traffic to fault.
    pub score: u8,
    /// `healthy`, `warning` or `critical`: the worse of what the score and the alerts say.
    pub level: HealthLevel,
    /// The window score and alerts judge (`last_1m`).
    pub window: String,
}

/// Figures over the last 1, 5 and 15 minutes, each with the seconds it really covers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusWindows {
    /// The last minute.
    pub last_1m: Figures,
    /// The last five minutes.
    pub last_5m: Figures,
    /// The last fifteen minutes.
    pub last_15m: Figures,
}

/// How healthy a node is, for people and for load balancers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthLevel {
    /// Score at least [`HEALTHY_SCORE`] and no warning or critical alert.
    Healthy,
    /// Score below [`HEALTHY_SCORE`], or a warning alert.
    Warning,
    /// Score below [`CRITICAL_SCORE`], or a critical alert.
    Critical,
}

impl HealthLevel {
    /// The worse of what the score and the alerts say.
    pub fn of(score: u8, alerts: &[Alert]) -> HealthLevel {
        let by_score = if score < CRITICAL_SCORE {
            HealthLevel::Critical
        } else if score < HEALTHY_SCORE {
            HealthLevel::Warning
        } else {
            HealthLevel::Healthy
        };
        let by_alerts = alerts
            .iter()
            .map(|a| match a.severity {
                Severity::Info => HealthLevel::Healthy,
                Severity::Warning => HealthLevel::Warning,
                Severity::Critical => HealthLevel::Critical,
            })
            .max()
            .unwrap_or(HealthLevel::Healthy);
        by_score.max(by_alerts)
    }
}

/// Load leases and named locks of this node: acquired, contended (waited for another node's load:
/// healthy) and failed (timed out or errored), and the failure rate.
pub type LockStatus = LockFigures;

impl CacheStatus {
    /// The document for a snapshot and the node's counters, judged against `targets` and `thresholds`.
    pub fn from_parts(
        snapshot: &MetricsSnapshot,
        stats: &CacheStats,
        node: NodeFacts<'_>,
        targets: &ServiceTargets,
        thresholds: &Thresholds,
    ) -> CacheStatus {
        let score = health_score(snapshot, targets);
        let mut alerts = evaluate(snapshot, thresholds);
        alerts.sort_by_key(|a| std::cmp::Reverse(a.severity));
        let total = snapshot.total.clone();
        CacheStatus {
            taken_at: snapshot.taken_at,
            namespace: node.namespace.to_owned(),
            node_id: format!("{:016x}", node.node_id),
            health: HealthStatus {
                score,
                level: HealthLevel::of(score, &alerts),
                window: MetricsSnapshot::JUDGED.to_owned(),
            },
            alerts,
            total_seconds: total.seconds,
            requests: total.requests,
            widgets: total.widgets,
            locks: total.locks,
            windows: StatusWindows {
                last_1m: snapshot.last_1m.clone(),
                last_5m: snapshot.last_5m.clone(),
                last_15m: snapshot.last_15m.clone(),
            },
            invalidations: InvalidationStatus::of(stats),
            coherence: CoherenceStatus::of(stats, &node),
            redis: snapshot.redis.clone(),
        }
    }
}

impl CacheStatus {
    /// The document of a node from a snapshot it stored (see
    /// [`WidgetCacheMetricsService::record_snapshot`]), for a reader that is not that node, such as
    /// the ops CLI: node id, invalidations and coherence come from the snapshot itself.
    pub fn from_snapshot(
        snapshot: &MetricsSnapshot,
        namespace: &str,
        targets: &ServiceTargets,
        thresholds: &Thresholds,
    ) -> CacheStatus {
        let mut stats = CacheStats::default();
        stats.invalidations_sent = snapshot.invalidations.sent;
        stats.invalidations_received = snapshot.invalidations.received;
        stats.gaps_detected = snapshot.coherence.gaps_detected;
        stats.replays = snapshot.coherence.replays;
        stats.l1_drops = snapshot.coherence.l1_drops;
        let node = NodeFacts {
            namespace,
            node_id: u64::from_str_radix(&snapshot.node_id, 16).unwrap_or(0),
            suspect: snapshot.coherence.suspect,
            redis_unavailable: snapshot.coherence.redis_unavailable,
            pending_invalidations: snapshot.coherence.pending_invalidations,
        };
        CacheStatus::from_parts(snapshot, &stats, node, targets, thresholds)
    }
}

/// The status of every node of a namespace, as `cache-status --json` prints it when more than one
/// node reported (one node prints its [`CacheStatus`] alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetStatus {
    /// When the newest figures were taken, Unix seconds (UTC).
    pub taken_at: i64,
    /// The cache namespace.
    pub namespace: String,
    /// The worst level of the fleet and of any one node: what a monitor should act on.
    pub level: HealthLevel,
    /// Every node's figures added together and judged as one node ([`MetricsSnapshot::combined`]);
    /// its `node_id` is `"fleet"`.
    pub fleet: CacheStatus,
    /// Each node's own document, by node id.
    pub nodes: Vec<CacheStatus>,
}

impl FleetStatus {
    /// The fleet of the nodes whose newest snapshots are `snapshots`.
    pub fn from_snapshots(
        snapshots: &[MetricsSnapshot],
        namespace: &str,
        targets: &ServiceTargets,
        thresholds: &Thresholds,
    ) -> FleetStatus {
        let mut fleet = CacheStatus::from_snapshot(
            &MetricsSnapshot::combined(snapshots),
            namespace,
            targets,
            thresholds,
        );
        "fleet".clone_into(&mut fleet.node_id);
        let mut nodes: Vec<CacheStatus> = snapshots
            .iter()
            .map(|s| CacheStatus::from_snapshot(s, namespace, targets, thresholds))
            .collect();
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let level = nodes
            .iter()
            .map(|n| n.health.level)
            .fold(fleet.health.level, HealthLevel::max);
        FleetStatus {
            taken_at: fleet.taken_at,
            namespace: namespace.to_owned(),
            level,
            fleet,
            nodes,
        }
    }
}

impl WidgetCacheMetricsService {
    /// The status document of the node under `cache` now.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), Box<dyn std::error::Error>> {
    /// use tiercache_widgets::{ServiceTargets, Thresholds, WidgetCacheMetricsService};
    /// let metrics = WidgetCacheMetricsService::in_memory();
    /// let targets = ServiceTargets::default(); // or WidgetConfig::from_env()?.targets
    /// let status = metrics.status(&cache, &targets, &Thresholds::from_targets(&targets)).await;
    /// println!("{}", serde_json::to_string_pretty(&status)?);
    /// # Ok(()) }
    /// ```
    pub async fn status(
        &self,
        cache: &Cache,
        targets: &ServiceTargets,
        thresholds: &Thresholds,
    ) -> CacheStatus {
        let snapshot = self.snapshot(cache).await;
        CacheStatus::from_parts(
            &snapshot,
            &cache.stats(),
            NodeFacts::of(cache),
            targets,
            thresholds,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertKind;

    fn alert(severity: Severity) -> Alert {
        Alert {
            kind: AlertKind::Errors,
            severity,
            message: String::new(),
        }
    }

    #[test]
    fn level_is_the_worse_of_score_and_alerts() {
        assert_eq!(HealthLevel::of(100, &[]), HealthLevel::Healthy);
        assert_eq!(HealthLevel::of(HEALTHY_SCORE, &[]), HealthLevel::Healthy);
        assert_eq!(
            HealthLevel::of(HEALTHY_SCORE - 1, &[]),
            HealthLevel::Warning
        );
        assert_eq!(HealthLevel::of(CRITICAL_SCORE, &[]), HealthLevel::Warning);
        assert_eq!(
            HealthLevel::of(CRITICAL_SCORE - 1, &[]),
            HealthLevel::Critical
        );
        assert_eq!(
            HealthLevel::of(100, &[alert(Severity::Info)]),
            HealthLevel::Healthy
        );
        assert_eq!(
            HealthLevel::of(100, &[alert(Severity::Warning)]),
            HealthLevel::Warning
        );
        assert_eq!(
            HealthLevel::of(90, &[alert(Severity::Warning), alert(Severity::Critical)]),
            HealthLevel::Critical
        );
    }
}
