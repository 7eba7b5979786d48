//! The cache health score, 0–100.
//!
//! ```text
//! score = 50 × hit      where hit  = clamp((hit_rate − min_hit_rate) / (target_hit_rate − min_hit_rate), 0, 1)
//!       + 30 × speed    where speed = clamp((max_rt − mean_rt) / (max_rt − target_rt), 0, 1)
//!       + 20 × errors   where errors = clamp(1 − error_rate / max_error_rate, 0, 1)
//! ```
//!
//! At or above the target hit rate the hit part is full; at or below the minimum it is zero; linear in
//! between. Likewise response time between target (full) and maximum (zero), and error rate between 0
//! (full) and the maximum (zero). With no requests there is nothing to fault: 100. With fewer than
//! [`MIN_REQUESTS_TO_JUDGE`] in the minute, hit rate and response time count as full: a handful of
//! reads just after a start (all misses, all loads) says nothing about the cache; errors still count.
//!
//! The score judges the snapshot's last minute ([`MetricsSnapshot::judged`]), not the figures since
//! start: a bad minute shows at once, and a bad hour is forgotten a minute after it ends.

use crate::metrics::{MetricsSnapshot, RequestFigures};
use crate::ServiceTargets;

/// Fewer reads than this in the judged minute are too few to judge hit rate and response time by
/// (the score and the alerts both use it).
pub const MIN_REQUESTS_TO_JUDGE: u64 = 100;

fn ramp(value: f64, zero_at: f64, full_at: f64) -> f64 {
    if (full_at - zero_at).abs() < f64::EPSILON {
        return if value >= full_at { 1.0 } else { 0.0 };
    }
    ((value - zero_at) / (full_at - zero_at)).clamp(0.0, 1.0)
}

/// The score of a snapshot's last minute against the configured targets.
///
/// ```
/// use tiercache_widgets::{health_score, MetricsSnapshot, RequestFigures};
/// let mut perfect = MetricsSnapshot::default();
/// perfect.last_1m.requests = RequestFigures { requests: 100, hit_rate: 0.99, mean_response_ms: 5.0, ..Default::default() };
/// assert_eq!(health_score(&perfect, &tiercache_widgets::ServiceTargets::default()), 100);
/// ```
pub fn health_score(snapshot: &MetricsSnapshot, targets: &ServiceTargets) -> u8 {
    score(&snapshot.judged().requests, targets)
}

/// The score of request figures against the configured targets.
pub(crate) fn score(snapshot: &RequestFigures, targets: &ServiceTargets) -> u8 {
    if snapshot.requests == 0 {
        return 100;
    }
    let enough = snapshot.requests >= MIN_REQUESTS_TO_JUDGE;
    let hit = if enough {
        ramp(
            snapshot.hit_rate,
            targets.min_hit_rate,
            targets.target_hit_rate,
        )
    } else {
        1.0
    };
    let target_ms = targets.target_response_time.as_secs_f64() * 1000.0;
    let max_ms = targets.max_response_time.as_secs_f64() * 1000.0;
    // Faster is better, so the ramp runs from max (zero) down to target (full).
    let speed = if enough {
        ramp(-snapshot.mean_response_ms, -max_ms, -target_ms)
    } else {
        1.0
    };
    let errors = if targets.max_error_rate <= 0.0 {
        if snapshot.error_rate > 0.0 {
            0.0
        } else {
            1.0
        }
    } else {
        (1.0 - snapshot.error_rate / targets.max_error_rate).clamp(0.0, 1.0)
    };
    (50.0 * hit + 30.0 * speed + 20.0 * errors).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(hit_rate: f64, mean_response_ms: f64, error_rate: f64) -> MetricsSnapshot {
        let mut s = MetricsSnapshot::default();
        s.last_1m.requests = RequestFigures {
            requests: 1000,
            hit_rate,
            mean_response_ms,
            error_rate,
            ..Default::default()
        };
        s
    }

    #[test]
    fn edges_of_each_component() {
        let t = ServiceTargets::default(); // hit 95/90 %, 100/500 ms, 1 % errors
                                           // (hit rate, mean response ms, error rate), the score, why.
        let cases = [
            ((0.95, 100.0, 0.0), 100, "exactly on target"),
            (
                (0.90, 100.0, 0.0),
                50,
                "hit rate at the minimum: hit part zero",
            ),
            ((0.925, 100.0, 0.0), 75, "half way"),
            (
                (0.99, 500.0, 0.0),
                70,
                "response at the maximum: speed part zero",
            ),
            ((0.99, 300.0, 0.0), 85, "response half way"),
            ((0.99, 10.0, 0.01), 80, "error rate at the maximum"),
            ((0.99, 10.0, 0.005), 90, "error rate half way"),
            ((0.5, 2000.0, 0.5), 0, "everything bad"),
        ];
        for ((hit_rate, response_ms, error_rate), score, why) in cases {
            let snapshot = snap(hit_rate, response_ms, error_rate);
            assert_eq!(health_score(&snapshot, &t), score, "{why}");
        }
        assert_eq!(
            health_score(&MetricsSnapshot::default(), &t),
            100,
            "no traffic"
        );
        let mut bad_past = snap(0.99, 10.0, 0.0);
        bad_past.total.requests = RequestFigures {
            requests: 100_000,
            hit_rate: 0.2,
            error_rate: 0.5,
            mean_response_ms: 3000.0,
            ..Default::default()
        };
        assert_eq!(
            health_score(&bad_past, &t),
            100,
            "only the last minute counts"
        );
    }
}
