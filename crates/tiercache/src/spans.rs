//! What the cache's spans record once a call or a step has ended (docs/OPERATIONS.md, "Tracing").
//!
//! Each span is made by a [`debug_span!`] where its call or step starts, so each has a callsite of
//! its own that a subscriber can turn on or off; while none takes DEBUG, making one costs a load and
//! a compare and recording into it nothing (BENCHMARKS.md, "Tracing spans on the L1 hit"). A span names
//! the cache's namespace, never a key: keys may hold what users typed.

use tracing::Span;

/// `tracing::debug_span!`, but a plain [`Span::none`] while no subscriber takes DEBUG. tracing's own
/// macro, built with its `log` feature (axum's default features turn it on in a service's build),
/// records a disabled span's fields for the `log` crate until some subscriber is set: nearly a third
/// of an L1 hit (BENCHMARKS.md, "Tracing spans on the L1 hit").
macro_rules! debug_span {
    ($($args:tt)*) => {
        if tracing::Level::DEBUG <= tracing::level_filters::STATIC_MAX_LEVEL
            && tracing::Level::DEBUG <= tracing::level_filters::LevelFilter::current()
        {
            tracing::debug_span!($($args)*)
        } else {
            tracing::Span::none()
        }
    };
}
pub(crate) use debug_span;

/// The span of a public call: [`debug_span!`] with the fields every call records (`namespace`, and
/// `outcome`, `error` and `otel.status_code` filled in when it ends), then any of its own.
macro_rules! call_span {
    ($name:literal, $namespace:expr $(, $($field:tt)+)?) => {
        $crate::spans::debug_span!(
            $name,
            namespace = %$namespace,
            outcome = tracing::field::Empty,
            error = tracing::field::Empty,
            otel.status_code = tracing::field::Empty
            $(, $($field)+)?
        )
    };
}
pub(crate) use call_span;

/// The `outcome` of handing invalidations or writes to Redis: sent, queued for replay, or failed.
pub(crate) fn sent_outcome(sent: &Result<(), Error>) -> &'static str {
    match sent {
        Ok(()) => "sent",
        Err(e) if e.is_pending() => "pending",
        Err(_) => "error",
    }
}

use crate::error::{Error, ErrorKind};
use crate::fetched::{Fetched, Source};

/// The `outcome` of a read answered from `source`.
pub(crate) fn source_outcome(source: Source) -> &'static str {
    match source {
        Source::L1 => "l1_hit",
        Source::L2 => "l2_hit",
        Source::Loaded => "loaded",
        Source::Stale => "stale",
    }
}

/// The `error` field: the error's kind, in the words of [`ErrorKind`] (an error's message may quote
/// the key).
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Config => "config",
        ErrorKind::InvalidKey => "invalid_key",
        ErrorKind::InvalidTag => "invalid_tag",
        ErrorKind::Redis => "redis",
        ErrorKind::Encode => "encode",
        ErrorKind::Loader => "loader",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Lock => "lock",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Pending => "pending",
    }
}

/// Records `e` on a call's span (`outcome = "error"`, or `"pending"` for an invalidation queued for
/// replay, which is no failure of the call) and hands it back.
pub(crate) fn failed(span: &Span, e: Error) -> Error {
    if span.is_disabled() {
        return e;
    }
    if e.is_pending() {
        span.record("outcome", "pending");
    } else {
        span.record("outcome", "error");
        span.record("otel.status_code", "ERROR");
    }
    span.record("error", kind_name(e.kind()));
    e
}

/// Records how a call ended: `ok` when it succeeded, else as [`failed`] says.
pub(crate) fn ended<T>(
    span: &Span,
    result: Result<T, Error>,
    ok: &'static str,
) -> Result<T, Error> {
    match result {
        Ok(value) => {
            span.record("outcome", ok);
            Ok(value)
        }
        Err(e) => Err(failed(span, e)),
    }
}

/// Records how a read that could load ended: the tier that answered, or the error.
pub(crate) fn fetched<T>(
    span: &Span,
    result: Result<Fetched<T>, Error>,
) -> Result<Fetched<T>, Error> {
    match result {
        Ok(fetched) => {
            span.record("outcome", source_outcome(fetched.source));
            Ok(fetched)
        }
        Err(e) => Err(failed(span, e)),
    }
}

/// As [`fetched`], for a call that took another call's result on this node (`outcome =
/// "coalesced"`, whichever tier answered that call).
pub(crate) fn coalesced<T>(
    span: &Span,
    result: Result<Fetched<T>, Error>,
) -> Result<Fetched<T>, Error> {
    ended(span, result, "coalesced")
}
