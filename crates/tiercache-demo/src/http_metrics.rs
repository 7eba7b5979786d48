//! HTTP request counts and latency by node, route, method and status.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `http_requests_total` | counter | `node`, `route`, `method`, `status` |
//! | `http_request_duration_seconds` | histogram | `node`, `route`, `method` |
//!
//! `route` is the route's pattern (`/api/widgets/{widget}`), never the raw path, so a client cannot
//! create series by inventing URLs; unmatched paths count as `unmatched`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::node::Node;

/// Counts and times one request.
pub async fn track(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed();
    if crate::recent_latency::READ_ROUTES.contains(&route.as_str()) {
        node.widget_latency.record(elapsed, Instant::now());
    }
    metrics::counter!("http_requests_total", "node" => node.name, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "node" => node.name, "route" => route, "method" => method)
        .record(elapsed.as_secs_f64());
    response
}

/// Standard methods by name; anything else is `other`, so a client cannot create series with
/// invented methods.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
