//! One node of the demo: what its HTTP handlers share.

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tiercache_widgets::{
    ChangeDispatcher, OffsetClock, ServiceTargets, Thresholds, WidgetCacheMetricsService,
    WidgetCacheService, WidgetDataAggregationService, WidgetInvalidationService,
};

/// The state behind one node's listener. Handlers hold it in an `Arc`.
#[derive(Debug)]
pub struct Node {
    /// 0 for the first node; node k listens on port + k.
    pub index: usize,
    /// `node-<index>`: in answers and as the `node` label of HTTP metrics. Static so a label costs
    /// no allocation per request; a process has a handful of nodes, each named once.
    pub name: &'static str,
    /// The SQLite source of truth, shared by every node of the process.
    pub data: WidgetDataAggregationService,
    /// The cache side; `None` with `--no-cache`.
    pub cached: Option<CachedNode>,
    /// Every node of the process (this one included), for the pages' links between nodes.
    pub peers: Vec<Peer>,
    /// Renders the process's Prometheus text.
    pub prometheus: PrometheusHandle,
    /// How long a cache write after a committed donation may take before the answer goes out
    /// saying the invalidation is still pending.
    pub invalidation_timeout: Duration,
    /// The service's "now": the system clock, or the one `--now` started. Handlers date what they
    /// write and resolve what they read with it, and the widget services read the same clock, so
    /// a donation's date and the periods its invalidation refreshes agree with the views' keys.
    pub clock: OffsetClock,
    /// Sends the cache work of committed changes from the outbox (one dispatcher per process).
    pub changes: ChangeDispatcher,
    /// How long a POST's body may take to arrive before the answer is 408 (`--header-read-timeout`).
    pub body_read_timeout: Duration,
    /// Starting, ready or stopping: shared by every node of the process.
    pub readiness: crate::readiness::Readiness,
    /// One permit per request in flight on this node (`--max-in-flight`); a request that finds
    /// none is shed.
    pub in_flight: tokio::sync::Semaphore,
    /// The permits `in_flight` started with, for the shed answer.
    pub max_in_flight: usize,
    /// When set, writes and the status API ask for it (`crate::admin`).
    pub admin_token: Option<crate::admin_token::AdminToken>,
    /// This node's widget reads of the last minute by latency, for `/ops`'s percentiles.
    pub widget_latency: crate::recent_latency::RecentLatency,
}

/// A node of this process, for the pages' "view on the other node" links.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Peer {
    /// `node-<index>`.
    pub name: &'static str,
    /// The port it listens on; the page keeps the host it was loaded from.
    pub port: u16,
}

/// A node's cache and the widget services over it.
#[derive(Debug)]
pub struct CachedNode {
    /// Widget views through the cache.
    pub widgets: WidgetCacheService,
    /// Domain events to tag invalidations.
    pub invalidation: WidgetInvalidationService,
    /// Hit/miss/latency per widget, Redis figures.
    pub metrics: WidgetCacheMetricsService,
    /// Targets the health score is measured against.
    pub targets: ServiceTargets,
    /// When alerts fire.
    pub thresholds: Thresholds,
}

/// The static name of node `index`.
pub fn node_name(index: usize) -> &'static str {
    Box::leak(format!("node-{index}").into_boxed_str())
}
