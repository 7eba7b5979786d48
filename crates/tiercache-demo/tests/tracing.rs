//! The spans a request makes through the cache, as an OTLP collector would receive them: the demo's
//! request span and trace layer over a real cache, with an in-memory exporter in the collector's
//! place.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tiercache::{Cache, EntryOptions};
use tiercache_demo::telemetry::{http_trace_layer, trace_layer, DEFAULT_TRACE_FILTER};
use tiercache_testkit::{eventually, RedisServer};
use tower::ServiceExt;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// A key that holds what a user typed: no span may carry it.
const KEY: &str = "total:user-42@example.org";

async fn total(State(cache): State<Cache>) -> Result<String, StatusCode> {
    let opts = EntryOptions::new(Duration::from_secs(60));
    // Made when the loader runs, as a loader's own query span would be.
    let total = cache
        .get_or_load(KEY, &opts, || {
            async { Ok::<_, std::io::Error>(42_u64) }.instrument(tracing::info_span!("query"))
        })
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(total.to_string())
}

async fn broken(State(cache): State<Cache>) -> Result<String, StatusCode> {
    let opts = EntryOptions::new(Duration::from_secs(60));
    cache
        .get_or_load::<u64, _, _, _>("broken", &opts, || async {
            Err(std::io::Error::other("the database is away"))
        })
        .await
        .map(|v| v.to_string())
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

async fn request(app: &Router, path: &str) -> StatusCode {
    let request = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// The one span named `name` whose parent is `parent`.
fn child<'a>(spans: &'a [SpanData], name: &str, parent: &SpanData) -> &'a SpanData {
    let found: Vec<_> = named(spans, name)
        .into_iter()
        .filter(|s| s.parent_span_id == parent.span_context.span_id())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} under {}: {:#?}",
        parent.name,
        names(spans)
    );
    found[0]
}

fn names(spans: &[SpanData]) -> Vec<(String, String, Option<String>)> {
    spans
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                s.parent_span_id.to_string(),
                attribute(s, "outcome"),
            )
        })
        .collect()
}

// Current-thread: the subscriber is this thread's default, and every task of the test runs here.
#[tokio::test]
async fn a_requests_span_parents_the_cache_spans_its_handler_makes() {
    let redis = RedisServer::start().unwrap();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber =
        tracing_subscriber::registry().with(trace_layer(&provider, DEFAULT_TRACE_FILTER).unwrap());
    let _default = tracing::subscriber::set_default(subscriber);
    let cache = Cache::builder()
        .redis_url(&redis.url())
        .namespace("traced")
        .build()
        .await
        .unwrap();
    let app = Router::new()
        .route("/total", get(total))
        .route("/broken", get(broken))
        .with_state(cache.clone())
        .layer(http_trace_layer("node-0"));

    assert_eq!(request(&app, "/total").await, StatusCode::OK, "a miss");
    assert_eq!(request(&app, "/total").await, StatusCode::OK, "an L1 hit");
    assert_eq!(
        request(&app, "/broken").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // A call's span ends once the task it handed the load to has ended too.
    eventually(
        Duration::from_secs(10),
        "three requests' calls are exported",
        || {
            let exporter = exporter.clone();
            async move {
                let spans = exporter.get_finished_spans().unwrap();
                named(&spans, "tiercache.get_or_load").len() == 3
                    && named(&spans, "request").len() == 3
            }
        },
    )
    .await;
    let spans = exporter.get_finished_spans().unwrap();

    let requests = named(&spans, "request");
    for request in &requests {
        assert_eq!(
            request.parent_span_id,
            SpanId::INVALID,
            "a request is a root"
        );
        assert_eq!(attribute(request, "node").as_deref(), Some("node-0"));
        assert_eq!(
            attribute(request, "http.request.method").as_deref(),
            Some("GET")
        );
    }
    let calls: Vec<&SpanData> = requests
        .iter()
        .map(|r| child(&spans, "tiercache.get_or_load", r))
        .collect();
    let outcomes: Vec<Option<String>> = calls.iter().map(|c| attribute(c, "outcome")).collect();
    assert_eq!(
        outcomes,
        [
            Some("loaded".into()),
            Some("l1_hit".into()),
            Some("error".into())
        ],
        "in request order (requests end in order)"
    );
    for call in &calls {
        assert_eq!(attribute(call, "namespace").as_deref(), Some("traced"));
    }

    the_miss_shows_each_step(&spans, calls[0], requests[0]);
    // The hit: nothing under it.
    assert!(
        spans
            .iter()
            .all(|s| s.parent_span_id != calls[1].span_context.span_id()),
        "{:#?}",
        names(&spans)
    );
    the_failure_is_marked(&spans, calls[2], requests[2]);
    no_span_names_the_key(&spans);
    cache.shutdown().await.unwrap();
}

/// L2 read, then the loader (and what it traced), then the store, all under the call and in the
/// request's trace.
fn the_miss_shows_each_step(spans: &[SpanData], miss: &SpanData, request: &SpanData) {
    let read = child(spans, "tiercache.l2_read", miss);
    assert_eq!(attribute(read, "outcome").as_deref(), Some("miss"));
    let loader = child(spans, "tiercache.loader", miss);
    assert_eq!(attribute(loader, "outcome").as_deref(), Some("ok"));
    child(spans, "query", loader);
    let store = child(spans, "tiercache.store", miss);
    assert_eq!(attribute(store, "outcome").as_deref(), Some("stored"));
    for span in [read, loader, store] {
        assert_eq!(
            span.span_context.trace_id(),
            request.span_context.trace_id(),
            "{} is in the request's trace",
            span.name
        );
    }
}

/// A loader's error marks its span, the call's and the request's.
fn the_failure_is_marked(spans: &[SpanData], call: &SpanData, request: &SpanData) {
    assert_eq!(attribute(call, "error").as_deref(), Some("loader"));
    assert!(matches!(call.status, Status::Error { .. }));
    assert_eq!(
        attribute(child(spans, "tiercache.loader", call), "outcome").as_deref(),
        Some("error")
    );
    assert_eq!(
        attribute(request, "http.response.status_code").as_deref(),
        Some("500")
    );
    assert!(matches!(request.status, Status::Error { .. }));
}

fn no_span_names_the_key(spans: &[SpanData]) {
    for span in spans {
        for kv in &span.attributes {
            assert!(
                !kv.value.as_str().contains("user-42"),
                "{} carries the key in {}",
                span.name,
                kv.key
            );
        }
    }
}
