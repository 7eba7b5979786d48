//! `GET /api/status`: one JSON document with the node's health, hit rates, response times, lock
//! figures and Redis memory.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use tiercache_widgets::MetricsSnapshot;

use super::health::{assess, HealthAnswer};
use crate::node::Node;

/// The status document.
#[derive(Debug, Serialize)]
pub struct StatusAnswer {
    /// Health score, level and alerts.
    pub health: HealthAnswer,
    /// Per-widget figures and Redis figures; absent with `--no-cache`.
    pub metrics: Option<MetricsSnapshot>,
    /// Entries in this node's L1.
    pub l1_entries: u64,
}

/// The node's status now.
pub async fn status(State(node): State<Arc<Node>>) -> Json<StatusAnswer> {
    let health = assess(&node).await;
    let (metrics, l1_entries) = match &node.cached {
        Some(cached) => {
            let cache = cached.widgets.cache();
            (
                Some(cached.metrics.snapshot(cache).await),
                cache.l1_entry_count(),
            )
        }
        None => (None, 0),
    };
    Json(StatusAnswer {
        health,
        metrics,
        l1_entries,
    })
}
