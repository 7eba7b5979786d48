//! Alerts raised from a metrics snapshot.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::metrics::MetricsSnapshot;
use crate::ServiceTargets;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Info,
    /// Degraded; act soon.
    Warning,
    /// Users are affected now.
    Critical,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Hit rate under the minimum.
    LowHitRate,
    /// Mean response time over the maximum.
    SlowResponses,
    /// Redis memory near `maxmemory`.
    RedisMemory,
    /// Too many lock or lease calls fail (time out or error); waiting for another node's load is
    /// contention, not failure, and never raises this.
    LockFailures,
    /// Too many requests fail.
    Errors,
    /// Invalidations wait for Redis to take them (it is unreachable or out of memory): other
    /// nodes may serve the values they remove until it does.
    PendingInvalidations,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// What.
    pub kind: AlertKind,
    /// How urgent.
    pub severity: Severity,
    /// For people.
    pub message: String,
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:?}] {}", self.severity, self.message)
    }
}

/// Alert thresholds; the defaults are the seed's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Hit rate below this warns (default 0.90, `WIDGET_CACHE_MIN_HIT_RATE`).
    pub min_hit_rate: f64,
    /// Mean response above this warns (default 500 ms, `WIDGET_CACHE_MAX_RESPONSE_TIME`).
    pub max_response_ms: f64,
    /// Error rate above this is critical (default 0.01, `WIDGET_CACHE_MAX_ERROR_RATE`).
    pub max_error_rate: f64,
    /// Redis `used_memory / maxmemory` above this warns (default 0.8).
    pub redis_memory_ratio: f64,
    /// Lock failure rate (failed / (acquired + contended + failed)) above this warns (default 0.5:
    /// most lock calls timing out or erroring means Redis trouble or holders that never finish).
    pub max_lock_failure_rate: f64,
}

impl Thresholds {
    /// The thresholds of a cache configuration.
    pub fn from_targets(targets: &ServiceTargets) -> Self {
        Thresholds {
            min_hit_rate: targets.min_hit_rate,
            max_response_ms: targets.max_response_time.as_secs_f64() * 1000.0,
            max_error_rate: targets.max_error_rate,
            ..Thresholds::default()
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_hit_rate: 0.90,
            max_response_ms: 500.0,
            max_error_rate: 0.01,
            redis_memory_ratio: 0.8,
            max_lock_failure_rate: 0.5,
        }
    }
}

/// The alerts `snapshot` raises, judging its last minute ([`MetricsSnapshot::judged`]) and Redis now.
/// Hit-rate and response-time alerts need [`crate::health::MIN_REQUESTS_TO_JUDGE`] reads in that
/// minute, error alerts any; memory needs a `maxmemory`.
pub fn evaluate(snapshot: &MetricsSnapshot, t: &Thresholds) -> Vec<Alert> {
    let judged = snapshot.judged();
    let (requests, locks) = (&judged.requests, &judged.locks);
    let mut out = Vec::new();
    let mut raise = |kind, severity, message: String| {
        out.push(Alert {
            kind,
            severity,
            message,
        });
    };
    // Hit rate and response time of a handful of reads (a cold start) are noise, not a trend.
    let enough = requests.requests >= crate::health::MIN_REQUESTS_TO_JUDGE;
    if requests.requests > 0 {
        if enough && requests.hit_rate < t.min_hit_rate {
            let severity = if requests.hit_rate < t.min_hit_rate - 0.2 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            raise(
                AlertKind::LowHitRate,
                severity,
                format!(
                    "hit rate {:.1}% is below {:.1}%",
                    requests.hit_rate * 100.0,
                    t.min_hit_rate * 100.0
                ),
            );
        }
        if enough && requests.mean_response_ms > t.max_response_ms {
            let severity = if requests.mean_response_ms > 2.0 * t.max_response_ms {
                Severity::Critical
            } else {
                Severity::Warning
            };
            raise(
                AlertKind::SlowResponses,
                severity,
                format!(
                    "mean response {:.0} ms is above {:.0} ms",
                    requests.mean_response_ms, t.max_response_ms
                ),
            );
        }
        if requests.error_rate > t.max_error_rate {
            raise(
                AlertKind::Errors,
                Severity::Critical,
                format!(
                    "error rate {:.2}% is above {:.2}%",
                    requests.error_rate * 100.0,
                    t.max_error_rate * 100.0
                ),
            );
        }
    }
    if locks.failure_rate > t.max_lock_failure_rate {
        raise(
            AlertKind::LockFailures,
            Severity::Warning,
            format!(
                "{:.0}% of lock calls fail (timed out or errored)",
                locks.failure_rate * 100.0
            ),
        );
    }
    let pending = snapshot.coherence.pending_invalidations;
    if pending > 0 {
        raise(
            AlertKind::PendingInvalidations,
            Severity::Warning,
            format!(
                "{pending} invalidation(s) wait for Redis to take them (unreachable or out of memory); other nodes may serve what they remove until it does"
            ),
        );
    }
    if let Some(redis) = snapshot.redis.as_ref().filter(|r| r.maxmemory > 0) {
        let ratio = redis.used_memory as f64 / redis.maxmemory as f64;
        if ratio > t.redis_memory_ratio {
            let severity = if ratio > 0.95 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            raise(
                AlertKind::RedisMemory,
                severity,
                format!("Redis uses {:.0}% of maxmemory", ratio * 100.0),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidations_waiting_for_redis_warn() {
        let mut s = MetricsSnapshot::default();
        assert!(evaluate(&s, &Thresholds::default()).is_empty());
        s.coherence.pending_invalidations = 3;
        let alerts = evaluate(&s, &Thresholds::default());
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::PendingInvalidations);
        assert_eq!(alerts[0].severity, Severity::Warning);
        assert!(
            alerts[0].message.starts_with("3 invalidation(s)"),
            "{}",
            alerts[0]
        );
    }
    use crate::metrics::{LockFigures, RedisFigures, RequestFigures};

    /// A snapshot whose last minute has 100 reads with `change` applied.
    fn minute(change: impl FnOnce(&mut RequestFigures, &mut LockFigures)) -> MetricsSnapshot {
        let mut s = MetricsSnapshot::default();
        s.last_1m.requests = RequestFigures {
            requests: 100,
            hit_rate: 0.99,
            mean_response_ms: 10.0,
            ..Default::default()
        };
        change(&mut s.last_1m.requests, &mut s.last_1m.locks);
        s
    }

    fn kinds(s: &MetricsSnapshot) -> Vec<(AlertKind, Severity)> {
        evaluate(s, &Thresholds::default())
            .into_iter()
            .map(|a| (a.kind, a.severity))
            .collect()
    }

    #[test]
    fn each_threshold_fires_just_past_its_edge() {
        assert!(kinds(&minute(|_, _| {})).is_empty());
        assert!(
            kinds(&minute(|r, _| r.hit_rate = 0.90)).is_empty(),
            "at the edge: quiet"
        );
        assert_eq!(
            kinds(&minute(|r, _| r.hit_rate = 0.899)),
            [(AlertKind::LowHitRate, Severity::Warning)]
        );
        assert_eq!(
            kinds(&minute(|r, _| r.hit_rate = 0.5)),
            [(AlertKind::LowHitRate, Severity::Critical)]
        );
        assert!(kinds(&minute(|r, _| r.mean_response_ms = 500.0)).is_empty());
        assert_eq!(
            kinds(&minute(|r, _| r.mean_response_ms = 501.0)),
            [(AlertKind::SlowResponses, Severity::Warning)]
        );
        assert_eq!(
            kinds(&minute(|r, _| r.error_rate = 0.011)),
            [(AlertKind::Errors, Severity::Critical)]
        );
        assert_eq!(
            kinds(&minute(|_, l| l.failure_rate = 0.6)),
            [(AlertKind::LockFailures, Severity::Warning)]
        );
        assert!(
            kinds(&minute(|_, l| {
                l.contended = 1000;
                l.acquired = 10;
            }))
            .is_empty(),
            "contention alone is healthy"
        );
        let memory = |used| MetricsSnapshot {
            redis: Some(RedisFigures {
                used_memory: used,
                maxmemory: 1000,
                ..Default::default()
            }),
            ..minute(|_, _| {})
        };
        assert!(kinds(&memory(800)).is_empty());
        assert_eq!(
            kinds(&memory(810)),
            [(AlertKind::RedisMemory, Severity::Warning)]
        );
        assert_eq!(
            kinds(&memory(990)),
            [(AlertKind::RedisMemory, Severity::Critical)]
        );
        let unlimited = MetricsSnapshot {
            redis: Some(RedisFigures {
                used_memory: 10_000,
                maxmemory: 0,
                ..Default::default()
            }),
            ..minute(|_, _| {})
        };
        assert!(
            kinds(&unlimited).is_empty(),
            "no maxmemory, no memory alert"
        );
        let mut idle = MetricsSnapshot::default();
        idle.last_1m.requests.hit_rate = 0.0;
        assert!(kinds(&idle).is_empty(), "no traffic, no rate alerts");
        let mut bad_hour = minute(|_, _| {});
        bad_hour.total.requests = RequestFigures {
            requests: 100_000,
            hit_rate: 0.1,
            error_rate: 0.5,
            ..Default::default()
        };
        assert!(kinds(&bad_hour).is_empty(), "only the last minute counts");
    }

    #[test]
    fn a_cold_start_is_not_a_hit_rate_or_latency_alert_but_errors_still_are() {
        let cold = minute(|r, _| {
            (r.requests, r.hit_rate, r.mean_response_ms) = (3, 0.0, 900.0);
        });
        assert_eq!(kinds(&cold), []);
        let targets = crate::ServiceTargets::default();
        assert_eq!(crate::health_score(&cold, &targets), 100);
        let failing = minute(|r, _| {
            (r.requests, r.hit_rate, r.error_rate) = (3, 0.0, 0.5);
        });
        assert_eq!(kinds(&failing), [(AlertKind::Errors, Severity::Critical)]);
        assert!(crate::health_score(&failing, &targets) < 100);
        let warm = minute(|r, _| {
            (r.requests, r.hit_rate) = (crate::health::MIN_REQUESTS_TO_JUDGE, 0.0);
        });
        assert_eq!(kinds(&warm), [(AlertKind::LowHitRate, Severity::Critical)]);
    }
}
