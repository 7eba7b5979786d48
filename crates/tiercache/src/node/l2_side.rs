//! The L2 side of a node: Redis, the breaker in front of it, and what must hold before it is used.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::breaker::Breaker;
use crate::error::Error;
use crate::l2::L2;
use crate::node::pending::PendingInvalidations;

/// What stands between a call and Redis: the node must have joined the fleet, nothing may wait in
/// the queue of invalidations, the breaker must admit the call, and Redis's position must have been
/// checked since the node last became suspect.
pub(crate) struct L2Side {
    /// The Redis client and the scripts.
    pub(crate) redis: L2,
    /// Opens after consecutive connection failures; calls are refused while it is open.
    pub(crate) breaker: Breaker,
    /// Set once the node has subscribed to the bus and learned the epoch and the stream's position.
    /// Until then Redis is not used for reads or stores: nothing could tell this node's L1 what other
    /// nodes change (see [`crate::builder::CacheBuilder::require_redis_at_start`]).
    pub(crate) joined: AtomicBool,
    /// Invalidations that could not reach Redis, replayed before L2 is used again.
    pub(crate) pending: PendingInvalidations,
    /// Whether Redis's position was checked since the node last became suspect.
    position: PositionCheck,
}

/// Each time a node becomes suspect, L2 may have gone back in time (a restart from an older
/// snapshot, a failover) and hold entries an acknowledged invalidation removed, so L2 calls wait (at
/// most the response timeout) until a recovery that began after it has checked Redis's position
/// (see `bus/recovery.rs`).
#[derive(Default)]
struct PositionCheck {
    /// Counts the times the node became suspect.
    suspicions: AtomicU64,
    /// The count of suspicions the last position check covered.
    checked_at: AtomicU64,
    /// Wakes the calls waiting for a check, when one ends (or fails).
    ended: tokio::sync::Notify,
    /// Counts failed recoveries; the last one's error is what waiting calls get.
    failures: AtomicU64,
    /// Counts the times a check found Redis had gone back in time: a call that ran beside such a
    /// check may have read what the rollback brought back, so its answer is not used.
    rollbacks: AtomicU64,
    last_error: parking_lot::Mutex<Option<Error>>,
}

/// Where a wait for the position check stood when it began: what ended meanwhile is told apart
/// from what ended before.
pub(crate) struct PositionWait {
    failures: u64,
    rollbacks: u64,
}

impl L2Side {
    /// Redis behind a closed breaker, not joined yet, with room for `max_pending` queued
    /// invalidations.
    pub(crate) fn new(redis: L2, max_pending: usize) -> Self {
        Self {
            redis,
            breaker: Breaker::new(),
            joined: AtomicBool::new(false),
            pending: PendingInvalidations::new(max_pending),
            position: PositionCheck::default(),
        }
    }

    /// Counts one more suspicion: Redis's position must be checked again before L2 is used.
    pub(crate) fn suspected(&self) {
        self.position.suspicions.fetch_add(1, Ordering::AcqRel);
    }

    /// The suspicions counted so far: a recovery that begins now covers them once it has checked.
    pub(crate) fn suspicions(&self) -> u64 {
        self.position.suspicions.load(Ordering::Acquire)
    }

    /// Whether a suspicion came after the last check of Redis's position.
    pub(crate) fn position_unchecked(&self) -> bool {
        self.position.suspicions.load(Ordering::Acquire)
            != self.position.checked_at.load(Ordering::Acquire)
    }

    /// A recovery that began when `covers` suspicions had been counted found Redis where this node
    /// left it (or dealt with it): L2 may be used again, unless the node became suspect since.
    pub(crate) fn position_checked(&self, covers: u64) {
        self.position.checked_at.fetch_max(covers, Ordering::AcqRel);
        self.position.ended.notify_waiters();
    }

    /// A check found Redis had gone back in time (before it deals with it).
    pub(crate) fn went_back(&self) {
        self.position.rollbacks.fetch_add(1, Ordering::AcqRel);
    }

    /// A recovery failed with `error`: L2 calls waiting for its position check get it.
    pub(crate) fn recovery_failed(&self, error: Error) {
        *self.position.last_error.lock() = Some(error);
        self.position.failures.fetch_add(1, Ordering::AcqRel);
        self.position.ended.notify_waiters();
    }

    /// Marks the start of a wait for the position check (before the recovery that will end it is
    /// asked for).
    pub(crate) fn position_wait(&self) -> PositionWait {
        PositionWait {
            failures: self.position.failures.load(Ordering::Acquire),
            rollbacks: self.position.rollbacks.load(Ordering::Acquire),
        }
    }

    /// Waits until `deadline` for a recovery to check Redis's position: `Ok` once one did, the
    /// error of a recovery that failed meanwhile (Redis is what stands in the way, and the caller
    /// should hear why), or [`Error::Unavailable`] at the deadline.
    pub(crate) async fn position_known(
        &self,
        since: PositionWait,
        deadline: tokio::time::Instant,
    ) -> Result<(), Error> {
        loop {
            let notified = self.position.ended.notified();
            tokio::pin!(notified);
            // Registered before the checks, so a recovery ending in between still wakes us.
            notified.as_mut().enable();
            if !self.position_unchecked() {
                if self.position.rollbacks.load(Ordering::Acquire) != since.rollbacks {
                    return Err(Error::unavailable(
                        "Redis went back in time while this call ran; its answer is not used",
                    ));
                }
                return Ok(());
            }
            if self.position.failures.load(Ordering::Acquire) != since.failures {
                if let Some(e) = self.position.last_error.lock().clone() {
                    return Err(e);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::unavailable(
                    "checking that Redis did not go back in time since this node last saw it",
                ));
            }
        }
    }
}
