//! `GET /api/status`: the node's status document (the one `tiercache cache-status --json` prints),
//! `GET /api/status/history`: the snapshots the node stored, and `GET /api/status/latency`: the
//! percentiles of this node's widget reads over the last minute.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tiercache_widgets::{CacheStatus, MetricsSnapshot};

use crate::error::ApiError;
use crate::node::{CachedNode, Node};
use crate::recent_latency::LatencyFigures;

/// The most snapshots one history call returns (a day at one a minute).
const MAX_HISTORY: usize = 1440;

fn cached(node: &Node) -> Result<&CachedNode, ApiError> {
    node.cached.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            None,
            "the service runs without a cache (--no-cache): there is no cache status",
        )
    })
}

/// The status of `node` now.
pub async fn of(cached: &CachedNode) -> CacheStatus {
    cached
        .metrics
        .status(cached.widgets.cache(), &cached.targets, &cached.thresholds)
        .await
}

/// `GET /api/status`.
pub async fn status(State(node): State<Arc<Node>>) -> Result<Json<CacheStatus>, ApiError> {
    Ok(Json(of(cached(&node)?).await))
}

/// Query of `GET /api/status/history`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// How many snapshots, newest first (default 60).
    snapshots: Option<usize>,
}

/// `GET /api/status/history?snapshots=60`: stored snapshots, newest first; unreadable ones skipped.
pub async fn history(
    State(node): State<Arc<Node>>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<MetricsSnapshot>>, ApiError> {
    let n = query.snapshots.unwrap_or(60).min(MAX_HISTORY);
    Ok(Json(cached(&node)?.metrics.history(n).await?))
}

/// `GET /api/status/latency`: p50, p95 and p99 of this node's widget reads over the last minute,
/// by the buckets of `http_request_duration_seconds`. Answered with or without a cache: the reads
/// are timed either way.
pub async fn latency(State(node): State<Arc<Node>>) -> Json<LatencyFigures> {
    Json(
        node.widget_latency
            .figures(node.name, std::time::Instant::now()),
    )
}
