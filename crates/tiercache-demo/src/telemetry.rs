//! Logs and traces: log lines on standard error, as text or one JSON object a line
//! (`--log-format`); spans exported over OTLP when a collector is named (`--otlp-endpoint`), each
//! HTTP request's span the parent of the cache's spans of the calls its handler makes
//! (docs/OPERATIONS.md, "Tracing").

use std::time::Duration;

use axum::http::{Request, Response};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, MakeSpan, OnResponse, TraceLayer};
use tracing::field::Empty;
use tracing::{Span, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::error::DemoError;
use crate::settings::Settings;
pub use crate::settings::{LogFormat, DEFAULT_TRACE_FILTER};

/// The service's name in every exported span (`service.name`), unless `OTEL_SERVICE_NAME` says
/// another.
pub const SERVICE_NAME: &str = "tiercache-demo";

/// What is logged when `RUST_LOG` is unset: warnings and errors.
const DEFAULT_LOG_FILTER: &str = "warn";

/// The process's logging and tracing, as installed; [`Telemetry::shutdown`] sends the spans still
/// buffered for export.
#[derive(Debug)]
#[must_use = "dropping it loses the spans still buffered; call shutdown before exit"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the process's subscriber: log lines as `--log-format` says, filtered by `RUST_LOG`
    /// (default `warn`), and with `--otlp-endpoint` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) the spans
    /// `--trace-filter` lets through, exported in batches from a thread of their own.
    pub fn install(settings: &Settings) -> Result<Telemetry, DemoError> {
        let log_filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
        let logs = log_layer(settings.log_format, std::io::stderr).with_filter(log_filter);
        let (provider, traces) = match &settings.otlp_endpoint {
            Some(endpoint) => {
                let provider = otlp_provider(endpoint)?;
                let traces = trace_layer(&provider, &settings.trace_filter)?;
                (Some(provider), Some(traces))
            }
            None => (None, None),
        };
        tracing_subscriber::registry()
            .with(logs)
            .with(traces)
            .try_init()
            .map_err(|e| DemoError::Config(format!("cannot install the log subscriber: {e}")))?;
        if let Some(endpoint) = &settings.otlp_endpoint {
            println!(
                "traces: OTLP over HTTP to {} (spans: {})",
                traces_url(endpoint),
                settings.trace_filter
            );
        }
        Ok(Telemetry { provider })
    }

    /// Sends the spans still buffered and stops the exporter; waits for the collector at most its
    /// export timeout. Blocking: call it outside the runtime's workers (`spawn_blocking`).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("tiercache-demo: spans still buffered may be lost: {e}");
            }
        }
    }
}

/// The log lines' layer, writing to `writer` in `format`.
pub fn log_layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .boxed(),
    }
}

/// The layer that makes OpenTelemetry spans of `provider`'s from the spans `filter` (in `RUST_LOG`'s
/// syntax) lets through.
pub fn trace_layer<S>(
    provider: &SdkTracerProvider,
    filter: &str,
) -> Result<Box<dyn Layer<S> + Send + Sync>, DemoError>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| DemoError::Config(format!("--trace-filter {filter:?}: {e}")))?;
    Ok(tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SERVICE_NAME))
        .with_filter(filter)
        .boxed())
}

/// The traces' URL at the collector `endpoint`: OTLP/HTTP's `/v1/traces` under it, as the
/// OpenTelemetry specification says of `OTEL_EXPORTER_OTLP_ENDPOINT` (which fills `--otlp-endpoint`).
fn traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

/// A tracer provider exporting to `endpoint` over OTLP/HTTP with protobuf bodies, in batches.
fn otlp_provider(endpoint: &str) -> Result<SdkTracerProvider, DemoError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .build()
        .map_err(|e| DemoError::Config(format!("--otlp-endpoint {endpoint:?}: {e}")))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build())
}

/// What every span says of the process: `service.name` (`tiercache-demo`, or `OTEL_SERVICE_NAME`),
/// its version, and what `OTEL_RESOURCE_ATTRIBUTES` adds. The node is no attribute of the process,
/// which runs several: each request's span names its own (`node`).
fn resource() -> Resource {
    let builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
        builder.build()
    } else {
        builder.with_service_name(SERVICE_NAME).build()
    }
}

/// The layer that gives each request of `node`'s router its span ([`RequestSpan`]), records its
/// status on it ([`RecordStatus`]), and logs server errors.
pub fn http_trace_layer(
    node: &'static str,
) -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, DefaultOnRequest, RecordStatus>
{
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan { node })
        .on_response(RecordStatus)
}

/// Makes a request's span, at INFO: `request`, with the node, method and path (not the query,
/// which may hold what a user typed), and the status once answered. Every span made while its
/// handler runs, the cache's included, is its child.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan {
    node: &'static str,
}

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        tracing::info_span!(
            "request",
            node = self.node,
            http.request.method = %request.method(),
            url.path = request.uri().path(),
            http.response.status_code = Empty,
            otel.kind = "server",
            otel.status_code = Empty,
        )
    }
}

/// Records a request's status on its span; a 5xx marks the span as failed.
#[derive(Debug, Clone, Copy)]
pub struct RecordStatus;

impl<B> OnResponse<B> for RecordStatus {
    fn on_response(self, response: &Response<B>, _latency: Duration, span: &Span) {
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Log lines written to memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Lines {
        type Writer = Lines;
        fn make_writer(&'w self) -> Lines {
            self.clone()
        }
    }

    #[test]
    fn json_log_lines_are_json_objects_naming_their_spans() {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry()
            .with(log_layer(LogFormat::Json, lines.clone()).with_filter(EnvFilter::new("info")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", node = "node-0");
            let _entered = span.enter();
            tracing::warn!(change_id = 7, "committed, \"quoted\"\nover two lines");
            tracing::info!("second");
            tracing::debug!("filtered out");
        });
        let text =
            String::from_utf8(lines.0.lock().expect("not poisoned").clone()).expect("UTF-8 lines");
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect();
        assert_eq!(parsed.len(), 2, "{text}");
        assert_eq!(parsed[0]["level"], "WARN");
        assert_eq!(
            parsed[0]["fields"]["message"],
            "committed, \"quoted\"\nover two lines"
        );
        assert_eq!(parsed[0]["fields"]["change_id"], 7);
        assert_eq!(parsed[0]["span"]["name"], "request");
        assert_eq!(parsed[0]["span"]["node"], "node-0");
        assert!(parsed[1]["timestamp"].is_string(), "{}", parsed[1]);
    }

    #[test]
    fn text_log_lines_stay_plain() {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry()
            .with(log_layer(LogFormat::Text, lines.clone()).with_filter(EnvFilter::new("warn")));
        tracing::subscriber::with_default(subscriber, || tracing::warn!("plain"));
        let text =
            String::from_utf8(lines.0.lock().expect("not poisoned").clone()).expect("UTF-8 lines");
        assert!(text.contains("WARN") && text.contains("plain"), "{text}");
        assert!(serde_json::from_str::<serde_json::Value>(text.trim()).is_err());
    }

    #[test]
    fn the_traces_url_is_under_the_endpoint() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
    }

    #[test]
    fn a_bad_trace_filter_is_a_configuration_error() {
        let provider = SdkTracerProvider::builder().build();
        let err = trace_layer::<tracing_subscriber::Registry>(&provider, "tiercache=loud")
            .err()
            .expect("not a filter");
        assert!(err.to_string().contains("--trace-filter"), "{err}");
    }
}
