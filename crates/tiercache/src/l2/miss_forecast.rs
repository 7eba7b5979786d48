//! Whether a `get_or_load`'s cold read is likely to find no entry in Redis.
//!
//! A cold read first tries the one-command hit read (`GET`, batchable, 0.3 µs of Redis CPU). When it
//! finds nothing, the fenced read follows (a script: the entry again, the generation, the lease), so
//! a miss costs two round trips before its load. Misses come in runs: a cold start, or the reads
//! after an invalidation (which deleted the entry in Redis, so every node's next read of it misses).
//! While most recent cold reads needed the fenced read anyway, a cold read goes to it directly: one
//! round trip for a miss, and a hit still answered by it at the cost of a script instead of a `GET`.
//! Hits move the average back and the hit read returns.

use std::sync::atomic::{AtomicU32, Ordering};

/// The running share of cold reads that needed the fenced read, in 1/65,536ths.
const ONE: u32 = 1 << 16;

/// Each cold read moves the average this fraction of the way (1/8): about six misses in a row
/// switch a node that was hitting to the fenced read first, about six hits switch it back.
const STEP_SHIFT: u32 = 3;

/// The recent share of one node's cold `get_or_load` reads that found no usable entry.
#[derive(Default)]
pub(crate) struct MissForecast {
    missed: AtomicU32,
}

impl MissForecast {
    /// Whether most recent cold reads needed the fenced read.
    pub(crate) fn likely(&self) -> bool {
        self.missed.load(Ordering::Relaxed) > ONE / 2
    }

    /// Counts one cold read: whether it needed the fenced read (no entry, or one that could not be
    /// served from the hit read alone).
    pub(crate) fn record(&self, missed: bool) {
        // A plain load and store, not a compare-and-swap: two reads recorded at the same instant may
        // lose one of the two steps, which only slows the average; it stays within 0..=ONE.
        let average = self.missed.load(Ordering::Relaxed);
        let next = if missed {
            average + ((ONE - average) >> STEP_SHIFT)
        } else {
            average - (average >> STEP_SHIFT)
        };
        self.missed.store(next, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_misses_switches_and_a_run_of_hits_after_many_misses_switches_back() {
        let forecast = MissForecast::default();
        assert!(!forecast.likely(), "a new node starts with the hit read");
        let mut misses = 0;
        while !forecast.likely() {
            forecast.record(true);
            misses += 1;
            assert!(misses <= 10, "ten misses in a row did not switch");
        }
        assert!(misses >= 3, "one or two misses must not switch ({misses})");
        for _ in 0..20 {
            forecast.record(true);
        }
        let mut hits = 0;
        while forecast.likely() {
            forecast.record(false);
            hits += 1;
            assert!(hits <= 10, "ten hits in a row did not switch back");
        }
        assert!(hits >= 3, "one or two hits must not switch back ({hits})");
    }

    #[test]
    fn the_average_stays_in_range_after_long_runs() {
        let forecast = MissForecast::default();
        for _ in 0..10_000 {
            forecast.record(true);
        }
        assert!(forecast.missed.load(Ordering::Relaxed) <= ONE);
        assert!(forecast.likely());
        for _ in 0..10_000 {
            forecast.record(false);
        }
        assert!(!forecast.likely());
    }
}
