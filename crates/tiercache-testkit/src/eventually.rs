//! Polling with a deadline, instead of sleeping and hoping.

use std::future::Future;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(5);

/// Polls `check` until it returns true; panics naming `what` when `deadline` passes first.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            started.elapsed() < deadline,
            "timed out after {:?} waiting until {what}",
            started.elapsed()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Blocking variant of [`eventually`].
pub fn eventually_sync(deadline: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < deadline,
            "timed out after {:?} waiting until {what}",
            started.elapsed()
        );
        std::thread::sleep(POLL);
    }
}
