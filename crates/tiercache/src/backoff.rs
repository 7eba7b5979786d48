//! Retry delays: callers that failed together must not retry together.

use std::time::Duration;

/// A delay in `[d/2, d]`, so contenders that failed together do not retry together.
pub(crate) fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    half + half.mul_f64(rand::random::<f64>())
}
