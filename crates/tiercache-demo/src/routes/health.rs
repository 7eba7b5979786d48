//! `GET /health`: the health score, level and alerts; 503 when an alert is critical.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use tiercache_widgets::{Alert, HealthLevel, Severity};

use crate::node::Node;

/// The answer of `/health`.
#[derive(Debug, Serialize)]
pub struct HealthAnswer {
    /// `healthy`, `warning` or `critical`: the status document's level, and at least `warning`
    /// while Redis is unreachable (the node then serves from L1 and the database alone).
    pub status: HealthLevel,
    /// 0–100, judged over the last minute.
    pub score: u8,
    /// Alerts now firing, most urgent first.
    pub alerts: Vec<Alert>,
    /// The cache as this node sees it.
    pub redis: RedisState,
    /// The node that answered.
    pub node: &'static str,
}

/// Redis as this node sees it.
#[derive(Debug, Serialize)]
pub struct RedisState {
    /// `enabled`, or `disabled` with `--no-cache`.
    pub cache: &'static str,
    /// Redis answers (the circuit breaker is closed).
    pub available: bool,
    /// The node may have missed invalidations and is recovering.
    pub suspect: bool,
    /// Invalidations Redis has not taken yet (unreachable, out of memory): kept and replayed in
    /// order; until then other nodes may serve the values they remove. Any makes the level at least
    /// `warning`.
    pub pending_invalidations: usize,
}

/// 200 unless an alert is critical (503), so a load balancer can take the node out.
pub async fn health(State(node): State<Arc<Node>>) -> (StatusCode, Json<HealthAnswer>) {
    let Some(cached) = &node.cached else {
        let answer = HealthAnswer {
            status: HealthLevel::Healthy,
            score: 100,
            alerts: Vec::new(),
            redis: RedisState {
                cache: "disabled",
                available: false,
                suspect: false,
                pending_invalidations: 0,
            },
            node: node.name,
        };
        return (StatusCode::OK, Json(answer));
    };
    let status = super::status::of(cached).await;
    let redis = RedisState {
        cache: "enabled",
        available: !status.coherence.redis_unavailable,
        suspect: status.coherence.suspect,
        pending_invalidations: status.coherence.pending_invalidations,
    };
    let mut level = status.health.level;
    if !redis.available || redis.pending_invalidations > 0 {
        level = level.max(HealthLevel::Warning);
    }
    let code = if status
        .alerts
        .iter()
        .any(|a| a.severity == Severity::Critical)
    {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let answer = HealthAnswer {
        status: level,
        score: status.health.score,
        alerts: status.alerts,
        redis,
        node: node.name,
    };
    (code, Json(answer))
}
