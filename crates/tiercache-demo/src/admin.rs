//! The admin token (`--admin-token`, `DEMO_ADMIN_TOKEN`). When it is set, the writes
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

/// The token. Its `Debug` prints `***`, so no log of the settings can show it.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// clap's parser: takes any text, because clap quotes a value it refuses in its error and the
/// token must not be printed; [`AdminToken::check`] refuses an unusable one at start.
impl std::str::FromStr for AdminToken {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(AdminToken(text.to_owned()))
    }
}

impl AdminToken {
    /// Refuses a token no client could send in a header: empty, or with whitespace or control
    /// characters. The message never contains the token.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.0.is_empty() || self.0.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(
                "--admin-token / DEMO_ADMIN_TOKEN must be non-empty, without spaces or control \
                 characters (its value is not printed)"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Whether `given` is the token. Compared in constant time: `==` stops at the first byte that
    /// differs, so how long a refusal takes would tell a client how many leading bytes it has
    /// right, and it could find the token a byte at a time. Only the length can show (slices of
    /// different lengths are refused at once), which tells nothing of a long random token.
    pub(crate) fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

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
    fn a_token_matches_only_itself_and_never_shows_in_debug() {
        let token = AdminToken("s3cret".to_owned());
        assert!(token.matches("s3cret"));
        for wrong in ["", "s3cre", "s3cret!", "S3CRET", "s3cres"] {
            assert!(!token.matches(wrong), "{wrong}");
        }
        assert!(!format!("{token:?}").contains("s3cret"));
        assert_eq!(bearer("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer("bearer  s3cret "), Some("s3cret"));
        assert_eq!(bearer("Basic czNjcmV0"), None);
        assert!(AdminToken(String::new()).check().is_err());
        assert!(AdminToken("two words".to_owned()).check().is_err());
        assert!(token.check().is_ok());
    }
}
