//! `GET /metrics`: Prometheus text for the whole process.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::node::Node;

/// Every `tiercache_*`, `widget_cache_*`, `widget_data_*` and `http_*` series of the process. The
/// demo runs its nodes in one process with one recorder, so every node answers the same text;
/// series that differ by node carry a `node` label.
pub async fn render(State(node): State<Arc<Node>>) -> impl IntoResponse {
    if let Some(cached) = &node.cached {
        // Counters reach the recorder once a second; a scrape should not be a second behind.
        cached.widgets.cache().admin().publish_metrics();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.prometheus.render(),
    )
}
