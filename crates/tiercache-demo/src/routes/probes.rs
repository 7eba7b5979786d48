//! `GET /livez` and `GET /readyz`: the probes of an orchestrator or load balancer. Neither does I/O.
//!
//! `/readyz` does not look at Redis: with Redis down a node still answers, from L1 and SQLite, and
//! every node shares that Redis, so taking nodes out when it blinks would turn a cache outage into a
//! full outage. `/health` is the health score, not a probe.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::node::Node;
use crate::readiness::Stage;

/// The answer of both probes.
#[derive(Debug, Serialize)]
pub struct ProbeAnswer {
    /// `alive` for `/livez`; `ready`, `starting` or `stopping` for `/readyz`.
    pub status: &'static str,
    /// Why the node is not ready, in the shape of every error answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The node that answered.
    pub node: &'static str,
}

/// `GET /livez`: 200 while the process serves.
pub async fn livez(State(node): State<Arc<Node>>) -> Json<ProbeAnswer> {
    Json(ProbeAnswer {
        status: "alive",
        error: None,
        node: node.name,
    })
}

/// `GET /readyz`: 200 once warming is done, 503 before it and from the stop signal on.
pub async fn readyz(State(node): State<Arc<Node>>) -> (StatusCode, Json<ProbeAnswer>) {
    let (code, status, error) = match node.readiness.stage() {
        Stage::Ready => (StatusCode::OK, "ready", None),
        Stage::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            Some("starting: the node is loading the views dashboards open first"),
        ),
        Stage::Stopping => (
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            Some("stopping: the process was told to stop and is draining"),
        ),
    };
    (
        code,
        Json(ProbeAnswer {
            status,
            error,
            node: node.name,
        }),
    )
}
