//! The demo's errors: [`DemoError`] for start-up, [`ApiError`] for answers, each turned into a status
//! and a JSON body in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tiercache_widgets::WidgetError;

/// Why the service could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A flag or environment variable is not usable.
    #[error("configuration: {0}")]
    Config(String),
    /// No Redis answered and none could be started.
    #[error("Redis: {0}")]
    Redis(String),
    /// The cache could not be built.
    #[error("cache: {0}")]
    Cache(#[from] tiercache::Error),
    /// The database could not be opened or filled.
    #[error("database: {0}")]
    Data(#[from] WidgetError),
    /// A listener could not be bound or served.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The Prometheus recorder could not be installed.
    #[error("metrics recorder: {0}")]
    Metrics(String),
}

/// An error answer: `{"error": "...", "valid": [...]}` with the status that fits it.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

/// The JSON of an error answer.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// The field or parameter at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The values that would have been accepted, when there is a list of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<Vec<String>>,
}

impl ApiError {
    /// A 400 about `field`.
    pub fn bad_request(field: &str, error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(field), error)
    }

    /// A 422: well-formed, but not acceptable (an amount of zero, an unknown campaign).
    pub fn unprocessable(field: &str, error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, Some(field), error)
    }

    /// Any status, with an optional field.
    pub fn new(status: StatusCode, field: Option<&str>, error: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                field: field.map(str::to_owned),
                valid: None,
            },
        }
    }

    /// The answer, with `Retry-After: 1`: for a 503 the client should simply try again (on this
    /// node in a moment, or on another).
    pub fn retry_after_a_second(self) -> Response {
        let mut response = self.into_response();
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        response
    }

    /// Adds the accepted values.
    #[must_use]
    pub fn with_valid<I, S>(mut self, valid: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.body.valid = Some(valid.into_iter().map(Into::into).collect());
        self
    }
}

impl From<WidgetError> for ApiError {
    fn from(e: WidgetError) -> Self {
        let message = e.to_string();
        match &e {
            WidgetError::UnknownWidgetType { valid, .. } => {
                ApiError::bad_request("widget", message).with_valid(split_list(valid))
            }
            WidgetError::InvalidTimeRange { valid, .. } => {
                ApiError::bad_request("range", message).with_valid(split_list(valid))
            }
            WidgetError::InvalidFilter { key, .. } => ApiError::bad_request(key, message),
            WidgetError::UnknownReference { what, .. } => {
                ApiError::unprocessable(&format!("{what}_id"), message)
            }
            WidgetError::Cache(cache) if cache.kind() == tiercache::ErrorKind::Timeout => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, message)
            }
            _ => {
                tracing::error!(error = %e, "request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, message)
            }
        }
    }
}

fn split_list(list: &str) -> Vec<String> {
    list.split(", ").map(str::to_owned).collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The most of a plain-text error body read to quote it in the JSON one; axum's own are one line.
const PLAIN_ERROR_BYTES: usize = 4096;

/// Middleware: an error answer (4xx, 5xx) that is not JSON becomes one in [`ErrorBody`]'s shape, so
/// a client reads every error the same way. The handlers' errors already are; these are axum's own
/// (405 for a method a route does not take, the 400 of a query that does not parse) and any a layer
/// writes. Headers are kept (`Allow`, `Retry-After`, `WWW-Authenticate`). Errors hyper answers before
/// a request reaches the router (a malformed request line, a header over its size limit) cannot be
/// reached here.
pub(crate) async fn error_bodies_as_json(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, PLAIN_ERROR_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let error = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed: Vec<String> = parts
            .headers
            .get(axum::http::header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').map(|m| m.trim().to_owned()).collect())
            .unwrap_or_default();
        ApiError::new(status, None, format!("{method} is not allowed on {path}"))
            .with_valid(allowed)
    } else if text.is_empty() {
        ApiError::new(status, None, status.canonical_reason().unwrap_or("error"))
    } else {
        ApiError::new(status, None, text)
    };
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let mut answer = error.into_response();
    answer.headers_mut().extend(parts.headers);
    answer
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
