//! The wall clock named time ranges resolve against: the system's, or one a test moves by hand.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;

/// A source of "now" for resolving time ranges.
///
/// The widget services read it once per call, so a view's key, its TTL and the instant its provider
/// computes at all agree even when the call straddles midnight.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until it is set or advanced; clones share one time.
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use tiercache_widgets::{Clock, ManualClock};
/// let clock = ManualClock::new(Utc.with_ymd_and_hms(2025, 1, 31, 23, 59, 59).unwrap());
/// let shared = clock.clone();
/// clock.advance(Duration::seconds(2));
/// assert_eq!(shared.now(), Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 1).unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<RwLock<DateTime<Utc>>>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(RwLock::new(start)))
    }

    /// Shows `now` from now on.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.write() = now;
    }

    /// Moves the time by `by` (backwards when negative).
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.write();
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.read()
    }
}
