//! Load shedding: at most `--max-in-flight` requests in flight per node; past it a request is
//! answered 503 at once, with `Retry-After: 1`, and counted in `demo_requests_shed_total{node}`.
//!
//! At once rather than queued (tower's `ConcurrencyLimit` queues): a queued request waits while its
//! client's own timeout runs and is then computed for no one, and the queue makes every request
//! behind it slower. A prompt 503 tells the client, or a load balancer, to retry here in a moment
//! or on another node, and the node keeps its latency for the requests it took.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::node::Node;

/// Never shed: the probes are answered from memory, and a liveness probe that failed under load
/// would have the node restarted just when it is busiest.
const NEVER_SHED: &[&str] = &["/livez", "/readyz"];

/// Middleware: runs the request if the node has a slot free, else answers 503.
pub(crate) async fn shed_past_the_limit(
    State(node): State<Arc<Node>>,
    request: Request,
    next: Next,
) -> Response {
    if NEVER_SHED.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    // Held until the handler has answered (the body of an answer is written after).
    let Ok(_slot) = node.in_flight.try_acquire() else {
        metrics::counter!("demo_requests_shed_total", "node" => node.name).increment(1);
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            format!(
                "{} has {} requests in flight, its limit (--max-in-flight); retry in a moment or on another node",
                node.name, node.max_in_flight
            ),
        )
        .retry_after_a_second();
    };
    next.run(request).await
}
