//! The HTTP API: one router per node, thin handlers, errors mapped in [`crate::error::ApiError`].

mod campaigns;
mod dashboard;
mod directory;
mod donations;
mod figures;
mod health;
mod metrics;
mod pages;
mod probes;
mod status;
mod widgets;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;
use crate::node::Node;

pub use figures::Figures;
pub(crate) use widgets::parse_request;

/// The routes of one node.
pub fn router(node: Arc<Node>, request_timeout: Duration) -> Router {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/assets/{file}", get(pages::asset))
        .route("/api/nodes", get(pages::nodes))
        .route("/api/widgets", get(widgets::catalogue))
        .route("/api/widgets/{widget}", get(widgets::view))
        .route("/api/dashboard", get(dashboard::dashboard))
        .route("/api/organizations", get(directory::organizations))
        .route("/ops", get(pages::ops))
        .route("/livez", get(probes::livez))
        .route("/readyz", get(probes::readyz))
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::render))
        .merge(
            // With an admin token set, these ask for it (`crate::admin`); without, they are open.
            Router::new()
                .route("/api/donations", post(donations::create))
                .route("/api/campaigns", post(campaigns::create))
                .route("/api/status", get(status::status))
                .route("/api/status/history", get(status::history))
                .route("/api/status/latency", get(status::latency))
                .route_layer(middleware::from_fn_with_state(
                    node.clone(),
                    crate::admin::require_admin_token,
                )),
        )
        .fallback(not_found)
        // Layers run outside in: the last added first.
        .layer(middleware::from_fn_with_state(
            request_timeout,
            within_request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            node.clone(),
            only_probes_while_starting,
        ))
        .layer(middleware::from_fn_with_state(
            node.clone(),
            crate::shed::shed_past_the_limit,
        ))
        // Outside the timeout, so a request that times out is counted with its 503.
        .layer(middleware::from_fn_with_state(
            node.clone(),
            crate::http_metrics::track,
        ))
        .layer(middleware::from_fn(crate::error::error_bodies_as_json))
        .layer(crate::telemetry::http_trace_layer(node.name))
        .with_state(node)
}

/// Middleware: a request still running after `--request-timeout` is dropped and answered 503 (a
/// stuck query must not hold a connection forever).
async fn within_request_timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            format!(
                "the request took longer than {} s (--request-timeout)",
                limit.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

/// What a node answers while it is starting: the probes, and the metrics (a scraper sees the start).
const SERVED_WHILE_STARTING: &[&str] = &["/livez", "/readyz", "/metrics"];

/// Middleware: until the process is ready (warming done), every other request is a 503 to retry,
/// so none meets a node half warm; `/readyz` says when to come back.
async fn only_probes_while_starting(
    State(node): State<Arc<Node>>,
    request: Request,
    next: Next,
) -> Response {
    if node.readiness.stage() == crate::readiness::Stage::Starting
        && !SERVED_WHILE_STARTING.contains(&request.uri().path())
    {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            format!(
                "{} is starting (loading the views dashboards open first); /readyz answers 200 once it serves",
                node.name
            ),
        )
        .retry_after_a_second();
    }
    next.run(request).await
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        None,
        format!("no route for {}", uri.path()),
    )
    .with_valid([
        "GET /",
        "GET /api/nodes",
        "GET /api/widgets",
        "GET /api/widgets/{widget}",
        "GET /api/organizations",
        "POST /api/donations",
        "POST /api/campaigns",
        "GET /ops",
        "GET /api/status",
        "GET /api/status/history",
        "GET /api/status/latency",
        "GET /livez",
        "GET /readyz",
        "GET /health",
        "GET /metrics",
    ])
}

/// The largest request body read: a donation or a campaign is a few hundred bytes.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Reads a POST's body: at most [`MAX_BODY_BYTES`] (413 past it) within `deadline` (408 after it: a
/// client that announces a body and sends it slowly, or never, must not hold a request open).
async fn read_body(body: Body, deadline: Duration) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if is_over_limit(&e) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            None,
            format!("the body could not be read: {e}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            None,
            format!(
                "the body did not arrive within {} s (--header-read-timeout)",
                deadline.as_secs_f64()
            ),
        )),
    }
}

/// Whether reading a body failed on the size limit (http-body-util's `LengthLimitError`, somewhere
/// in the chain axum wraps it in).
fn is_over_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// A JSON body, sent as JSON: another content type is a 415 (a cross-site HTML form can post
/// `text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data` in a user's name, but
/// not `application/json`, which needs the page's own script and so passes CORS). A syntax error is
/// a 400, a well-formed body with wrong or missing fields a 422; either way serde's message says
/// where.
/// The body is read only once the content type is right, within `deadline` ([`read_body`]).
async fn parse_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    deadline: Duration,
) -> Result<T, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" {
        let got = if content_type.is_empty() {
            "none".to_owned()
        } else {
            content_type.to_owned()
        };
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("content-type"),
            format!("the body must be JSON sent as Content-Type: application/json (got {got})"),
        ));
    }
    let body = read_body(body, deadline).await?;
    serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, None, format!("body: {e}"))
            }
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                StatusCode::BAD_REQUEST,
                None,
                format!("body is not valid JSON: {e}"),
            ),
        }
    })
}

/// What happened to the cache after a committed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalidation {
    /// Every affected view is invalid in Redis and the bus carries it to every node.
    Done,
    /// The cache could not be reached in time; the write and its cache work are committed, and
    /// the outbox dispatcher keeps sending the work until Redis takes it.
    Pending,
    /// The service runs without a cache (`--no-cache`): nothing to invalidate.
    NotCached,
}

/// Waits for the change with outbox row `change_id` to be dispatched, after the write it describes
/// was committed with it. Never fails the request: the data and its cache work are safe in the
/// database whatever Redis does, and the dispatcher sends the work whether or not this request is
/// still there to wait (a client that hangs up, a request that times out).
async fn settle_after_commit(node: &Node, change_id: i64) -> Invalidation {
    node.changes.notify();
    if node.cached.is_none() {
        return Invalidation::NotCached;
    }
    if node
        .changes
        .wait_dispatched(change_id, node.invalidation_timeout)
        .await
    {
        return Invalidation::Done;
    }
    tracing::warn!(
        node = node.name,
        change_id,
        "committed, but its invalidation has not reached Redis yet; the outbox keeps retrying"
    );
    ::metrics::counter!("demo_invalidations_pending_total", "node" => node.name).increment(1);
    Invalidation::Pending
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::{Readiness, Stage};
    use tiercache_testkit::ScratchDatabase;
    use tower::ServiceExt;

    /// A node without a cache over an empty database, as `--no-cache` runs it, in `readiness`.
    fn node(readiness: &Readiness) -> (Arc<Node>, ScratchDatabase) {
        let scratch = ScratchDatabase::new("tiercache-demo-routes");
        let data = tiercache_widgets::WidgetDataAggregationService::open(scratch.path())
            .expect("open the scratch database");
        let node = Node {
            index: 0,
            name: "node-0",
            data: data.clone(),
            cached: None,
            peers: Vec::new(),
            prometheus: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            invalidation_timeout: Duration::from_secs(2),
            clock: tiercache_widgets::OffsetClock::default(),
            changes: tiercache_widgets::ChangeDispatcher::start(data, None),
            body_read_timeout: Duration::from_secs(5),
            readiness: readiness.clone(),
            in_flight: tokio::sync::Semaphore::new(64),
            max_in_flight: 64,
            admin_token: None,
            widget_latency: crate::recent_latency::RecentLatency::default(),
        };
        (Arc::new(node), scratch)
    }

    /// GET `path`: the status, the `Retry-After` header and the JSON body.
    async fn get(app: &Router, path: &str) -> (u16, Option<String>, serde_json::Value) {
        let request = axum::http::Request::get(path)
            .body(Body::empty())
            .expect("a valid request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, retry, body)
    }

    #[tokio::test]
    async fn until_warmed_only_the_probes_answer_and_readyz_follows_the_stage() {
        let readiness = Readiness::default();
        let (node, _scratch) = node(&readiness);
        let app = router(node, Duration::from_secs(30));

        let (status, _, live) = get(&app, "/livez").await;
        assert_eq!((status, live["status"].as_str()), (200, Some("alive")));
        let (status, _, ready) = get(&app, "/readyz").await;
        assert_eq!((status, ready["status"].as_str()), (503, Some("starting")));
        assert!(ready["error"].is_string(), "{ready}");
        let (status, retry, refused) = get(&app, "/api/widgets").await;
        assert_eq!((status, retry.as_deref()), (503, Some("1")), "{refused}");
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|e| e.contains("starting")),
            "{refused}"
        );

        readiness.set(Stage::Ready);
        let (status, _, ready) = get(&app, "/readyz").await;
        assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
        assert_eq!(get(&app, "/api/widgets").await.0, 200);

        readiness.set(Stage::Stopping);
        let (status, _, ready) = get(&app, "/readyz").await;
        assert_eq!((status, ready["status"].as_str()), (503, Some("stopping")));
        assert_eq!(
            get(&app, "/api/widgets").await.0,
            200,
            "draining: still serving what arrives"
        );
        assert_eq!(get(&app, "/livez").await.0, 200);
    }
}
