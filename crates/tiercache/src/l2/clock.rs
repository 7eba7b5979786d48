//! This node's reading of Redis's clock, so that a write can carry a deadline Redis itself checks.
//!
//! A `set` whose call timed out is reported pending: only the key's invalidation is queued. But its
//! command may still be on its way (a slow link, a stalled connection) and reach Redis after another
//! node's invalidation of the key was acknowledged; written then, every node would read the older
//! value until the queued invalidation is replayed. So a write carries the moment, on Redis's own
//! clock (`TIME`), at which its caller stops waiting for it, and the script that writes it keeps only
//! the key's invalidation when it runs later than that.
//!
//! The deadline errs early, never late: a write refused while its caller still waited costs a miss
//! (the key is invalidated, its value not cached), a write accepted after its caller gave up can be
//! a stale value served by every node. The node's clock need not agree with Redis's: every epoch read
//! (at start and with each heartbeat) also reads Redis's clock, and the node keeps the difference as
//! a lower bound (off by at most that reading's round trip, so the reading with the shortest round
//! trip of the last half minute is kept). Until the first reading, writes carry no deadline.

use std::time::Duration;

use parking_lot::Mutex;

/// Taken off every deadline: the two clocks drifting apart since the reading (NTP slews a clock by
/// at most 0.5 ms per second; a reading is at most [`KEEP_BEST_FOR`] old) and, on a cluster, its
/// masters' clocks differing from the one read.
const DRIFT_ALLOWANCE: Duration = Duration::from_millis(20);

/// How long a reading is kept against later ones with longer round trips.
const KEEP_BEST_FOR: Duration = Duration::from_secs(30);

/// One reading of Redis's clock.
#[derive(Clone, Copy)]
struct Reading {
    /// Redis's clock minus this node's, µs: a lower bound, since Redis read its clock before the
    /// answer arrived.
    ahead: i64,
    /// The reading's round trip, µs: how much `ahead` may fall short.
    round_trip: u64,
    /// When it was taken (this node's wall clock, µs).
    taken_at: u64,
}

/// How far Redis's clock is ahead of this node's.
#[derive(Default)]
pub(crate) struct RedisClock {
    /// The reading deadlines are set from; `None` until the first.
    best: Mutex<Option<Reading>>,
}

impl RedisClock {
    /// Records Redis's clock, `redis_us`, read by a call sent at `sent_us` and answered at
    /// `received_us` (this node's wall clock, µs since the epoch). Kept when its round trip is no
    /// longer than the kept reading's, or that one is older than half a minute.
    pub(crate) fn observe(&self, sent_us: u64, redis_us: u64, received_us: u64) {
        // A reading that came back before it was sent (the node's clock stepped back) says nothing.
        let Some(round_trip_us) = received_us.checked_sub(sent_us) else {
            return;
        };
        let reading = Reading {
            ahead: i64::try_from(redis_us)
                .unwrap_or(i64::MAX)
                .saturating_sub(i64::try_from(received_us).unwrap_or(i64::MAX)),
            round_trip: round_trip_us,
            taken_at: received_us,
        };
        let mut best = self.best.lock();
        let replace = best.is_none_or(|kept| {
            round_trip_us <= kept.round_trip
                || received_us.saturating_sub(kept.taken_at) > KEEP_BEST_FOR.as_micros() as u64
        });
        if replace {
            *best = Some(reading);
        }
    }

    /// The deadline, in ms on Redis's clock, of a command sent at `now_us` (this node's wall clock,
    /// µs) whose caller waits at most `waits` for it; 0 (none) before Redis's clock was read.
    pub(crate) fn deadline_ms(&self, now_us: u64, waits: Duration) -> u64 {
        let Some(reading) = *self.best.lock() else {
            return 0;
        };
        let waits_us = i64::try_from(waits.as_micros()).unwrap_or(i64::MAX);
        let drift_us = DRIFT_ALLOWANCE.as_micros() as i64;
        let deadline_us = i64::try_from(now_us)
            .unwrap_or(i64::MAX)
            .saturating_add(reading.ahead)
            .saturating_add(waits_us)
            .saturating_sub(drift_us);
        // Never 0 (which means none) nor negative, whatever the clocks say: at worst in the past,
        // which refuses the write (a miss).
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
    fn a_deadline_is_on_redis_clock_and_errs_early() {
        let clock = RedisClock::default();
        // Redis is 2 s ahead; the reading took 10 ms, Redis read its clock at the midpoint.
        clock.observe(1_000_000_000, 1_002_005_000, 1_000_010_000);
        let deadline = clock.deadline_ms(1_000_100_000, Duration::from_millis(500));
        // Sent at node 1,000,100 ms = Redis 1,002,100 ms; its caller stops waiting at Redis
        // 1,002,600 ms. Early by at most the reading's round trip and the drift allowance.
        let exact = 1_002_600;
        assert!(deadline <= exact, "{deadline}");
        assert!(
            deadline >= exact - 10 - DRIFT_ALLOWANCE.as_millis() as u64,
            "{deadline}"
        );
    }

    #[test]
    fn the_reading_with_the_shortest_round_trip_is_kept_for_half_a_minute() {
        let clock = RedisClock::default();
        let second = 1_000_000;
        clock.observe(100 * second, 102 * second, 100 * second + 1_000);
        // A slow reading (300 ms) says Redis is less far ahead: it is not kept...
        clock.observe(101 * second, 102 * second, 101 * second + 300_000);
        let deadline = clock.deadline_ms(110 * second, Duration::ZERO);
        assert_eq!(deadline, (112 * second - 1_000 - 20_000) / 1000);
        // ...until the kept one is older than half a minute.
        clock.observe(140 * second, 141 * second, 140 * second + 300_000);
        let deadline = clock.deadline_ms(150 * second, Duration::ZERO);
        assert_eq!(deadline, (151 * second - 300_000 - 20_000) / 1000);
    }

    #[test]
    fn a_deadline_before_redis_epoch_is_in_the_past_not_none() {
        let clock = RedisClock::default();
        // Redis's clock reads near its epoch; then this node's clock steps far back.
        clock.observe(9_000_000_000_000, 1_000, 9_000_000_000_100);
        assert_eq!(clock.deadline_ms(1_000_000, Duration::ZERO), 1);
    }
}
