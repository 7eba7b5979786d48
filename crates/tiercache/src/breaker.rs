//! The Redis circuit breaker: after consecutive failures, stop calling Redis for a while, then let one
//! probe through; its success closes the breaker.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Consecutive failures that open the breaker.
const FAILURES_TO_OPEN: u32 = 3;
/// How long the breaker stays open before a probe; doubles while probes fail, up to [`MAX_OPEN`].
const FIRST_OPEN: Duration = Duration::from_millis(250);
const MAX_OPEN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
        next_open: Duration,
    },
    HalfOpen {
        probe_started: Instant,
        next_open: Duration,
        /// Which probe holds the breaker, so a probe that settled long ago cannot release a later one.
        probe: u64,
    },
}

/// What a state change means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    Opened,
    Closed,
}

/// The breaker of one node.
pub(crate) struct Breaker {
    state: Mutex<State>,
    /// Numbers the probes.
    probes: std::sync::atomic::AtomicU64,
}

/// Leave to call Redis, from [`Breaker::admit`]. A probe must settle the breaker: dropped before
/// [`Breaker::success`] or [`Breaker::failure`] moved it (its call was cancelled, or ended in an
/// error that says nothing about reaching Redis), it lets the next call probe at once. Otherwise
/// every caller would be refused until the wedge timeout, up to four open periods, although
/// nothing showed Redis was away.
pub(crate) struct Admission<'a> {
    breaker: &'a Breaker,
    probe: Option<u64>,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(probe) = self.probe {
            self.breaker.probe_unsettled(probe);
        }
    }
}

impl Breaker {
    pub(crate) fn new() -> Self {
        Breaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            probes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether a Redis call may be made now: `None` while open; once the open period is over, one
    /// caller is let through as the probe.
    pub(crate) fn admit(&self) -> Option<Admission<'_>> {
        let mut state = self.state.lock();
        let (probe_due, next_open) = match *state {
            State::Closed { .. } => {
                return Some(Admission {
                    breaker: self,
                    probe: None,
                })
            }
            State::Open { until, next_open } => (Instant::now() >= until, next_open),
            // Last resort, should a probe's admission leak: it must not wedge the breaker.
            State::HalfOpen {
                probe_started,
                next_open,
                ..
            } => (probe_started.elapsed() > next_open * 4, next_open),
        };
        if !probe_due {
            return None;
        }
        let probe = self
            .probes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *state = State::HalfOpen {
            probe_started: Instant::now(),
            next_open,
            probe,
        };
        Some(Admission {
            breaker: self,
            probe: Some(probe),
        })
    }

    /// Probe `probe` ended without moving the breaker: the next call probes.
    fn probe_unsettled(&self, probe: u64) {
        let mut state = self.state.lock();
        if let State::HalfOpen {
            next_open,
            probe: holder,
            ..
        } = *state
        {
            if holder == probe {
                *state = State::Open {
                    until: Instant::now(),
                    next_open,
                };
            }
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        !matches!(*self.state.lock(), State::Closed { .. })
    }

    pub(crate) fn success(&self) -> Transition {
        let mut state = self.state.lock();
        let was_closed = matches!(*state, State::Closed { .. });
        *state = State::Closed { failures: 0 };
        if was_closed {
            Transition::None
        } else {
            Transition::Closed
        }
    }

    pub(crate) fn failure(&self) -> Transition {
        let mut state = self.state.lock();
        match *state {
            State::Closed { failures } if failures + 1 >= FAILURES_TO_OPEN => {
                *state = State::Open {
                    until: Instant::now() + FIRST_OPEN,
                    next_open: FIRST_OPEN * 2,
                };
                Transition::Opened
            }
            State::Closed { failures } => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                Transition::None
            }
            State::HalfOpen { next_open, .. } | State::Open { next_open, .. } => {
                *state = State::Open {
                    until: Instant::now() + next_open,
                    next_open: (next_open * 2).min(MAX_OPEN),
                };
                Transition::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_closes_after_a_successful_probe() {
        let b = Breaker::new();
        assert_eq!(b.failure(), Transition::None);
        assert_eq!(b.success(), Transition::None, "a success resets the count");
        for _ in 0..FAILURES_TO_OPEN - 1 {
            assert_eq!(b.failure(), Transition::None);
        }
        assert_eq!(b.failure(), Transition::Opened);
        assert!(b.admit().is_none(), "open: no calls");
        *b.state.lock() = State::Open {
            until: Instant::now(),
            next_open: FIRST_OPEN,
        };
        let probe = b.admit().expect("the probe goes through");
        assert!(b.admit().is_none(), "only one probe");
        assert_eq!(b.success(), Transition::Closed);
        drop(probe);
        assert!(b.admit().is_some());
        assert!(
            !b.is_open(),
            "a settled probe's admission changes nothing when dropped"
        );
    }

    #[test]
    fn a_probe_that_ends_unsettled_lets_the_next_call_probe() {
        let b = Breaker::new();
        *b.state.lock() = State::Open {
            until: Instant::now(),
            next_open: FIRST_OPEN * 2,
        };
        let probe = b.admit().expect("the probe goes through");
        assert!(b.admit().is_none(), "only one probe");
        drop(probe);
        let next = b.admit().expect("the next call probes at once");
        assert!(b.is_open(), "still open until a probe succeeds");
        assert_eq!(b.failure(), Transition::None);
        drop(next);
        assert!(b.admit().is_none(), "a failed probe reopens the breaker");
    }

    #[test]
    fn a_failed_probe_reopens_for_longer() {
        let b = Breaker::new();
        *b.state.lock() = State::HalfOpen {
            probe_started: Instant::now(),
            next_open: FIRST_OPEN * 2,
            probe: 0,
        };
        b.failure();
        let State::Open { next_open, .. } = *b.state.lock() else {
            panic!("open")
        };
        assert_eq!(next_open, FIRST_OPEN * 4);
    }
}
