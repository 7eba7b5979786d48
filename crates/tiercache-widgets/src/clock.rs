//! The wall clock named time ranges resolve against: the system's, the system's moved to another
//! instant (a reproducible demo or load test), or one a test moves by hand.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
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

/// The system clock moved by a fixed offset: it shows the instant it was started at, then advances
/// with real time. A service run on one shows the same calendar (the same `this_month`, the same
/// `today`) whenever it is run, so figures measured on it can be compared run to run. The default
/// has no offset: it is the system clock.
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use tiercache_widgets::{Clock, OffsetClock};
/// let start = Utc.with_ymd_and_hms(2026, 12, 30, 12, 0, 0).unwrap();
/// let clock = OffsetClock::starting_at(start);
/// let now = clock.now();
/// assert!(now >= start && now - start < TimeDelta::seconds(5), "{now}");
/// assert!(OffsetClock::default().offset().is_zero());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffsetClock {
    offset: TimeDelta,
}

impl OffsetClock {
    /// A clock showing `start` now and advancing with the system clock from there.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        OffsetClock {
            offset: start.signed_duration_since(Utc::now()),
        }
    }

    /// The system clock moved by `offset` (back when negative).
    pub fn with_offset(offset: TimeDelta) -> Self {
        OffsetClock { offset }
    }

    /// How far this clock is ahead of the system clock (behind when negative).
    pub fn offset(&self) -> TimeDelta {
        self.offset
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        // Past chrono's range (year 262,143 either way) the clock stops at its end rather than
        // panicking in a request.
        now.checked_add_signed(self.offset)
            .unwrap_or(if self.offset < TimeDelta::zero() {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            })
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
