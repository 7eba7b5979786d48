//! `GET /health`: the health score and alerts; 503 when an alert is critical.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use tiercache_widgets::{evaluate_alerts, health_score, Alert, Severity};

use crate::node::Node;

/// How the node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// No alert.
    Healthy,
    /// Alerts, none critical; or Redis is away and the node serves from L1 and the database.
    Warning,
    /// A critical alert: users are affected.
    Critical,
}

/// The answer of `/health`.
#[derive(Debug, Serialize)]
pub struct HealthAnswer {
    /// healthy, warning or critical.
    pub status: Level,
    /// 0–100 (see the widget crate's `health_score`).
    pub score: u8,
    /// Alerts now firing.
    pub alerts: Vec<Alert>,
    /// Whether the node talks to Redis.
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
}

/// The health of `node` now.
pub async fn assess(node: &Node) -> HealthAnswer {
    let Some(cached) = &node.cached else {
        return HealthAnswer {
            status: Level::Healthy,
            score: 100,
            alerts: Vec::new(),
            redis: RedisState {
                cache: "disabled",
                available: false,
                suspect: false,
            },
            node: node.name,
        };
    };
    let cache = cached.widgets.cache();
    let snapshot = cached.metrics.snapshot(cache).await;
    let alerts = evaluate_alerts(&snapshot, &cached.thresholds);
    let redis = RedisState {
        cache: "enabled",
        available: !cache.is_redis_unavailable(),
        suspect: cache.is_suspect(),
    };
    let status = if alerts.iter().any(|a| a.severity == Severity::Critical) {
        Level::Critical
    } else if !alerts.is_empty() || !redis.available {
        Level::Warning
    } else {
        Level::Healthy
    };
    HealthAnswer {
        status,
        score: health_score(&snapshot, &cached.targets),
        alerts,
        redis,
        node: node.name,
    }
}

/// 200 unless an alert is critical (503), so a load balancer can take the node out.
pub async fn health(State(node): State<Arc<Node>>) -> (StatusCode, Json<HealthAnswer>) {
    let answer = assess(&node).await;
    let code = if answer.status == Level::Critical {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(answer))
}
