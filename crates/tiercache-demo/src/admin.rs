//! What the admin token (`crate::admin_token`) protects. When it is set, the writes
//! (`POST /api/donations`, `POST /api/campaigns`) and the status API (`/api/status*`, the data of the
//! `/ops` page) ask for `Authorization: Bearer <token>`: none is a 401 with
//! `WWW-Authenticate: Bearer`, a wrong one a 403. Widget reads, the pages, the probes, `/health` and
//! `/metrics` stay open (`/metrics` is for a scraper on the operators' network, as is usual for
//! Prometheus). Unset, everything is open, as before.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::node::Node;

/// Middleware on the routes the token protects; passes everything when no token is set.
pub(crate) async fn require_admin_token(
    State(node): State<Arc<Node>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &node.admin_token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    match given {
        Some(given) if token.matches(given) => next.run(request).await,
        Some(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            Some("authorization"),
            "the admin token was refused",
        )
        .into_response(),
        None => {
            let mut refused = ApiError::new(
                StatusCode::UNAUTHORIZED,
                Some("authorization"),
                "this node asks for its admin token: send Authorization: Bearer <DEMO_ADMIN_TOKEN>",
            )
            .into_response();
            refused.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tiercache-demo\""),
            );
            refused
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case, RFC 9110).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer("bearer  s3cret "), Some("s3cret"));
        assert_eq!(bearer("Basic czNjcmV0"), None);
    }
}
