//! The process's one Prometheus recorder: installed at start, every metric of the process described
//! (the core's, the widget layer's and the demo's own), and each histogram given buckets in its own
//! unit.

use std::time::Duration;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tiercache::CacheStats;
use tiercache_widgets::WidgetCacheMetricsService;

use crate::error::DemoError;
use crate::recent_latency::LATENCY_BUCKETS;

/// The demo's own metrics: name, unit, meaning. docs/DEMO.md ("`GET /metrics`") lists them too.
const DEMO_COUNTERS: &[(&str, &str)] = &[
    (
        "http_requests_total",
        "HTTP requests answered, by node, route pattern (`unmatched` for none), method and status.",
    ),
    (
        "demo_requests_shed_total",
        "Requests answered 503 at once because the node had --max-in-flight requests in flight, by node.",
    ),
    (
        "demo_invalidations_pending_total",
        "Writes answered before their invalidation reached Redis (the outbox keeps retrying), by node.",
    ),
];

/// The demo's histogram.
const HTTP_DURATION: &str = "http_request_duration_seconds";

/// Tells the recorder what the demo's own metrics mean; the meaning ends with the unit, as the
/// core's and the widget layer's do.
fn describe_demo_metrics() {
    for (name, help) in DEMO_COUNTERS {
        metrics::describe_counter!(*name, Unit::Count, format!("{help} Unit: count."));
    }
    metrics::describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by node, route pattern and method. Unit: seconds."
    );
}

/// Installs the recorder with every histogram's buckets, describes every metric and keeps the
/// histograms drained.
pub fn install() -> Result<PrometheusHandle, DemoError> {
    let buckets = CacheStats::histogram_buckets()
        .chain(WidgetCacheMetricsService::histogram_buckets())
        .chain([(HTTP_DURATION, LATENCY_BUCKETS)]);
    let mut builder = PrometheusBuilder::new();
    for (name, bounds) in buckets {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_owned()), bounds)
            .map_err(|e| DemoError::Metrics(e.to_string()))?;
    }
    let handle = builder
        .install_recorder()
        .map_err(|e| DemoError::Metrics(e.to_string()))?;
    CacheStats::describe_metrics();
    WidgetCacheMetricsService::describe_metrics();
    describe_demo_metrics();
    // Histograms are drained into the rendered form by upkeep; without it they grow until scraped.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
