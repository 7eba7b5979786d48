//! This node's reading of Redis's clock, so that a write can carry a deadline Redis itself checks.
//!
//! A `set` whose call timed out is reported pending: only the key's invalidation is queued. But its
//! command may still be on its way (a slow link, a stalled connection) and reach Redis after another
//! node's invalidation of the key was acknowledged; written then, every node would read the older
//! value until the queued invalidation is replayed. So a write carries the latest moment, on Redis's
//! own clock (`TIME`), at which its caller can still be waiting for it, and the script that writes it
//! keeps only the key's invalidation when it runs later than that.
//!
//! The node's clock need not agree with Redis's: every epoch read (at start and with each heartbeat)
//! also reads Redis's clock, and the node keeps the difference, taken so that a deadline errs late
//! (by at most that read's round trip), never early. Until the first read, writes carry no deadline.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Room for the two clocks drifting apart between readings (a heartbeat apart; NTP slews a clock by
/// at most 0.5 ms per second) and, on a cluster, for its masters' clocks differing from the one read.
const DRIFT_ALLOWANCE: Duration = Duration::from_millis(20);

/// Not read yet.
const UNREAD: i64 = i64::MIN;

/// How far Redis's clock is ahead of this node's.
pub(crate) struct RedisClock {
    /// Redis's clock minus this node's, µs, as an upper bound (see [`RedisClock::observe`]);
    /// [`UNREAD`] until the first reading.
    ahead_us: AtomicI64,
}

impl Default for RedisClock {
    fn default() -> Self {
        RedisClock {
            ahead_us: AtomicI64::new(UNREAD),
        }
    }
}

impl RedisClock {
    /// Records Redis's clock, `redis_us`, read by a call sent at `sent_us` and answered at
    /// `received_us` (this node's wall clock, µs since the epoch).
    pub(crate) fn observe(&self, sent_us: u64, redis_us: u64, received_us: u64) {
        // Redis read its clock somewhere between `sent_us` and `received_us`; taking the start makes
        // the offset, and so every deadline, err late (by at most the round trip) rather than early.
        // A reading that came back before it was sent (the node's clock stepped back) is dropped.
        if received_us < sent_us {
            return;
        }
        let ahead = i64::try_from(redis_us)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(sent_us).unwrap_or(i64::MAX));
        self.ahead_us
            .store(ahead.max(UNREAD + 1), Ordering::Relaxed);
    }

    /// The deadline, in ms on Redis's clock, of a command sent at `now_us` (this node's wall clock,
    /// µs) whose caller waits at most `waits` for it; 0 (none) before Redis's clock was read.
    pub(crate) fn deadline_ms(&self, now_us: u64, waits: Duration) -> u64 {
        let ahead = self.ahead_us.load(Ordering::Relaxed);
        if ahead == UNREAD {
            return 0;
        }
        let slack = i64::try_from((waits + DRIFT_ALLOWANCE).as_micros()).unwrap_or(i64::MAX);
        let deadline_us = i64::try_from(now_us)
            .unwrap_or(i64::MAX)
            .saturating_add(ahead)
            .saturating_add(slack);
        // Never 0 (which means none) nor negative, whatever the clocks say.
        u64::try_from(deadline_us / 1000).unwrap_or(0).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_deadline_before_the_first_reading() {
        assert_eq!(
            RedisClock::default().deadline_ms(5_000_000, Duration::from_millis(500)),
            0
        );
    }

    #[test]
    fn a_deadline_is_on_redis_clock_and_errs_late() {
        let clock = RedisClock::default();
        // Redis is 2 s ahead; the reading took 10 ms, Redis read its clock at the midpoint.
        clock.observe(1_000_000_000, 1_002_005_000, 1_000_010_000);
        let deadline = clock.deadline_ms(1_000_100_000, Duration::from_millis(500));
        // Sent at node 1,000,100 ms = Redis 1,002,100 ms, waited for until Redis 1,002,600 ms at the
        // latest: late by at most the reading's round trip and the drift allowance, never early.
        let exact = 1_002_600;
        assert!(deadline >= exact, "{deadline}");
        assert!(
            deadline <= exact + 10 + DRIFT_ALLOWANCE.as_millis() as u64,
            "{deadline}"
        );
    }

    #[test]
    fn a_deadline_before_redis_epoch_is_in_the_past_not_none() {
        let clock = RedisClock::default();
        // Redis's clock reads near its epoch; then this node's clock steps far back.
        clock.observe(9_000_000_000_000, 1_000, 9_000_000_000_100);
        assert_eq!(clock.deadline_ms(1_000_000, Duration::ZERO), 1);
    }
}
