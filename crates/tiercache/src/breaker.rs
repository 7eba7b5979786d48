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
}

impl Breaker {
    pub(crate) fn new() -> Self {
        Breaker {
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Whether a Redis call may be made now. While open, no; once the open period is over, one caller
    /// is let through as the probe.
    pub(crate) fn allow(&self) -> bool {
        let mut state = self.state.lock();
        let (probe_due, next_open) = match *state {
            State::Closed { .. } => return true,
            State::Open { until, next_open } => (Instant::now() >= until, next_open),
            // A probe that never reported back (its task was cancelled) must not wedge the breaker.
            State::HalfOpen {
                probe_started,
                next_open,
            } => (probe_started.elapsed() > next_open * 4, next_open),
        };
        if probe_due {
            *state = State::HalfOpen {
                probe_started: Instant::now(),
                next_open,
            };
        }
        probe_due
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
        assert!(!b.allow(), "open: no calls");
        *b.state.lock() = State::Open {
            until: Instant::now(),
            next_open: FIRST_OPEN,
        };
        assert!(b.allow(), "the probe goes through");
        assert!(!b.allow(), "only one probe");
        assert_eq!(b.success(), Transition::Closed);
        assert!(b.allow());
    }

    #[test]
    fn a_failed_probe_reopens_for_longer() {
        let b = Breaker::new();
        *b.state.lock() = State::HalfOpen {
            probe_started: Instant::now(),
            next_open: FIRST_OPEN * 2,
        };
        b.failure();
        let State::Open { next_open, .. } = *b.state.lock() else {
            panic!("open")
        };
        assert_eq!(next_open, FIRST_OPEN * 4);
    }
}
