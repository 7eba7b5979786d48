//! [`RecentLatency`]: one node's widget and dashboard reads of the last minute, counted in the buckets of
//! `http_request_duration_seconds`, and their percentiles.
//!
//! The `/ops` page used to fetch `/metrics` and diff histogram scrapes in the browser for these
//! figures; the node now answers them itself (`GET /api/status/latency`), so every client reads the
//! same numbers and none parses Prometheus text.
//!
//! A request costs one relaxed atomic add. Once a second the first request of that second also
//! keeps a copy of the counts (when nobody else holds the list; it never waits), and the figures
//! of the last minute are the counts now less the oldest copy of that minute.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The buckets of `http_request_duration_seconds` and of these figures, in seconds: 50 µs (a widget
/// from L1) to 10 s (a stuck query). One list, so the page's percentiles and a Prometheus
/// `histogram_quantile` over a minute agree to the bucket.
pub(crate) const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Counts per bucket, then past the last bound.
const SLOTS: usize = LATENCY_BUCKETS.len() + 1;

/// The window the figures cover.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The percentiles answered.
const QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

/// The counts as they stood at the start of a second (every request before it).
#[derive(Debug)]
struct CountsAt {
    second: u64,
    counts: [u64; SLOTS],
}

/// One node's widget reads of the last minute, by latency bucket.
#[derive(Debug)]
pub struct RecentLatency {
    started: Instant,
    counts: [AtomicU64; SLOTS],
    /// The second of the newest copy, plus one (0: none yet), read by every request without the lock.
    copied: AtomicU64,
    copies: Mutex<VecDeque<CountsAt>>,
}

/// One percentile of the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Percentile {
    /// 0.5, 0.95 or 0.99.
    pub quantile: f64,
    /// The bound of the bucket it falls in, in milliseconds: this share of the reads took at most
    /// this long. `None` when it falls past the largest bound (`largest_bound_ms`).
    pub at_most_ms: Option<f64>,
}

/// The answer of `GET /api/status/latency`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyFigures {
    /// The node that answered.
    pub node: &'static str,
    /// The routes measured.
    pub routes: [&'static str; 2],
    /// The seconds covered: the last minute, or since the node started when that is shorter.
    pub window_seconds: f64,
    /// Requests answered in the window.
    pub requests: u64,
    /// p50, p95 and p99; empty when there were no requests.
    pub percentiles: Vec<Percentile>,
    /// The largest bucket bound, in milliseconds.
    pub largest_bound_ms: f64,
}

/// The routes whose latency is kept: one widget's read, and a whole dashboard's (what the page
/// sends), so the figures follow what readers wait for whichever way they ask.
pub const READ_ROUTES: [&str; 2] = ["/api/widgets/{widget}", "/api/dashboard"];

impl Default for RecentLatency {
    fn default() -> Self {
        RecentLatency::new(Instant::now())
    }
}

impl RecentLatency {
    fn new(started: Instant) -> Self {
        RecentLatency {
            started,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            copied: AtomicU64::new(0),
            copies: Mutex::new(VecDeque::new()),
        }
    }

    /// Counts a request that took `elapsed` and ended at `now`.
    pub fn record(&self, elapsed: Duration, now: Instant) {
        let second = now.saturating_duration_since(self.started).as_secs();
        if self.copied.load(Ordering::Relaxed) != second + 1 {
            self.keep_copy(second);
        }
        let seconds = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(SLOTS - 1);
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps the counts as the start of `second` (this request not yet counted), unless another
    /// thread holds the list: a request never waits for it, and the next one of the second tries.
    fn keep_copy(&self, second: u64) {
        let Ok(mut copies) = self.copies.try_lock() else {
            return;
        };
        if copies.back().is_some_and(|c| c.second >= second) {
            return;
        }
        copies.push_back(CountsAt {
            second,
            counts: self.read(),
        });
        forget_before(&mut copies, second);
        self.copied.store(second + 1, Ordering::Relaxed);
    }

    fn read(&self) -> [u64; SLOTS] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }

    /// The figures of the last minute at `now`.
    pub fn figures(&self, node: &'static str, now: Instant) -> LatencyFigures {
        let since_start = now.saturating_duration_since(self.started);
        let second = since_start.as_secs();
        let now_counts = self.read();
        let in_window = {
            let mut copies = self
                .copies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            forget_before(&mut copies, second);
            // The oldest copy of the minute holds every request before it. Without one, no request
            // started a second in the minute, so none was answered in it.
            copies.front().map_or([0; SLOTS], |oldest| {
                std::array::from_fn(|i| now_counts[i].saturating_sub(oldest.counts[i]))
            })
        };
        let requests = in_window.iter().sum();
        LatencyFigures {
            node,
            routes: READ_ROUTES,
            window_seconds: since_start.min(WINDOW).as_secs_f64(),
            requests,
            percentiles: if requests == 0 {
                Vec::new()
            } else {
                QUANTILES
                    .iter()
                    .map(|&q| Percentile {
                        quantile: q,
                        at_most_ms: bound_of(&in_window, requests, q).map(|s| s * 1000.0),
                    })
                    .collect()
            },
            largest_bound_ms: LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1] * 1000.0,
        }
    }
}

/// Drops the copies older than the window ending in `second`: the figures never reach back past
/// them again.
fn forget_before(copies: &mut VecDeque<CountsAt>, second: u64) {
    let oldest = second.saturating_sub(WINDOW.as_secs());
    while copies.front().is_some_and(|c| c.second < oldest) {
        copies.pop_front();
    }
}

/// The bound of the first bucket by which `quantile` of the `total` requests had answered; `None`
/// past the last bound.
#[allow(clippy::cast_precision_loss)] // request counts stay far below 2^52
fn bound_of(counts: &[u64; SLOTS], total: u64, quantile: f64) -> Option<f64> {
    let wanted = quantile * total as f64;
    let mut seen = 0;
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        seen += counts[i];
        if seen as f64 >= wanted {
            return Some(*bound);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: f64) -> Duration {
        Duration::from_secs_f64(n / 1000.0)
    }

    fn at_most(figures: &LatencyFigures) -> Vec<Option<f64>> {
        figures.percentiles.iter().map(|p| p.at_most_ms).collect()
    }

    #[test]
    fn percentiles_are_the_bounds_of_the_buckets_they_fall_in() {
        let start = Instant::now();
        let recent = RecentLatency::new(start);
        let at = start + Duration::from_millis(1500);
        // 90 fast reads, 9 of about 20 ms, 1 of 30 s.
        for _ in 0..90 {
            recent.record(ms(0.07), at);
        }
        for _ in 0..9 {
            recent.record(ms(20.0), at);
        }
        recent.record(Duration::from_secs(30), at);
        let figures = recent.figures("node-0", at);
        assert_eq!(figures.requests, 100);
        assert_eq!(at_most(&figures), [Some(0.1), Some(25.0), Some(25.0)]);
        assert!((figures.window_seconds - 1.5).abs() < 1e-9);

        recent.record(Duration::from_secs(30), at);
        recent.record(Duration::from_secs(30), at);
        assert_eq!(
            at_most(&recent.figures("node-0", at)),
            [Some(0.1), Some(25.0), None],
            "past the largest bound"
        );
    }

    #[test]
    fn reads_older_than_a_minute_leave_the_figures() {
        let start = Instant::now();
        let recent = RecentLatency::new(start);
        assert!(recent.figures("node-0", start).percentiles.is_empty());
        for _ in 0..10 {
            recent.record(ms(3.0), start + Duration::from_secs(5));
        }
        recent.record(ms(0.04), start + Duration::from_secs(40));
        let later = |s| recent.figures("node-0", start + Duration::from_secs(s));
        assert_eq!(later(50).requests, 11);
        assert_eq!(at_most(&later(50)), [Some(5.0), Some(5.0), Some(5.0)]);
        assert_eq!(later(70).requests, 1, "the reads of second 5 are past");
        assert_eq!(at_most(&later(70)), [Some(0.05), Some(0.05), Some(0.05)]);
        assert_eq!(later(200).requests, 0);
        assert!(later(200).percentiles.is_empty());
        assert!((later(200).window_seconds - 60.0).abs() < 1e-9);
    }
}
