//! One cache node's shared state, and how it applies changes to its L1.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::breaker::{Breaker, Transition};
use crate::bus::outbox::Outbox;
use crate::bus::state::BusState;
use crate::coherence::Coherence;
use crate::config::Config;
use crate::error::Error;
use crate::keys::KeySpace;
use crate::l1::L1;
use crate::l2::L2;
use crate::message::Event;
use crate::metrics::Recorder;
use crate::read::flight::Flights;

/// Everything a node's tasks share. `Cache` is a handle to one of these.
pub(crate) struct Node {
    pub(crate) config: Config,
    pub(crate) id: u64,
    pub(crate) keys: KeySpace,
    pub(crate) l1: L1,
    pub(crate) l2: L2,
    pub(crate) flights: Arc<Flights>,
    pub(crate) stats: Recorder,
    pub(crate) coherence: Coherence,
    pub(crate) bus: BusState,
    pub(crate) outbox: Outbox,
    pub(crate) recovering: AtomicBool,
    pub(crate) recovery_requested: AtomicBool,
    pub(crate) fills: tokio::sync::broadcast::Sender<Arc<crate::message::FillNotice>>,
    /// Fault injection: this many coming batches are written to the stream but not published.
    #[cfg(feature = "fault-injection")]
    pub(crate) fault_skip_publish: std::sync::atomic::AtomicU32,
    pub(crate) breaker: Breaker,
    /// Set when L1 took values while Redis was unreachable; they are dropped when Redis returns.
    pub(crate) degraded_fills: AtomicBool,
    /// Set once the node has subscribed to the bus and learned the epoch and the stream's position.
    /// Until then Redis is not used for reads or stores: nothing could tell this node's L1 what other
    /// nodes change (see [`crate::CacheBuilder::require_redis_at_start`]).
    pub(crate) joined: AtomicBool,
    /// Invalidations that could not reach Redis, replayed before L2 is used again.
    pub(crate) pending: crate::bus::pending::PendingInvalidations,
    /// One bit per kind of bookkeeping ever repaired, so each kind is logged as a warning once.
    pub(crate) repairs_logged: std::sync::atomic::AtomicU16,
    /// Set when the last `Cache` handle is dropped: background work of a dead node must stop (a lease
    /// extender that outlived its node would keep its lease forever).
    pub(crate) shut_down: AtomicBool,
    /// Whether Redis's position was checked since the node last became suspect.
    pub(crate) position: PositionCheck,
}

/// Each time a node becomes suspect, L2 may have gone back in time (a restart from an older
/// snapshot, a failover) and hold entries an acknowledged invalidation removed, so L2 calls wait (at
/// most the response timeout) until a recovery that began after it has checked Redis's position
/// (see `bus/recovery.rs`).
#[derive(Default)]
pub(crate) struct PositionCheck {
    /// Counts the times the node became suspect.
    suspicions: std::sync::atomic::AtomicU64,
    /// The count of suspicions the last position check covered.
    checked_at: std::sync::atomic::AtomicU64,
    /// Wakes the calls waiting for a check, when one ends (or fails).
    ended: tokio::sync::Notify,
    /// Counts failed recoveries; the last one's error is what waiting calls get.
    failures: std::sync::atomic::AtomicU64,
    /// Counts the times a check found Redis had gone back in time: a call that ran beside such a
    /// check may have read what the rollback brought back, so its answer is not used.
    rollbacks: std::sync::atomic::AtomicU64,
    last_error: parking_lot::Mutex<Option<Error>>,
}

fn is_connection_trouble(e: &Error) -> bool {
    match e {
        Error::Redis(r) => {
            r.is_io_error()
                || r.is_timeout()
                || r.is_connection_dropped()
                || r.is_connection_refusal()
                || r.is_unrecoverable_error()
        }
        _ => false,
    }
}

/// What the letters of a script's `repaired` string stand for (see `scripts/lib.lua`); `b` is a bus
/// message or stream entry the node could not decode.
fn bookkeeping_kind(letter: char) -> (u8, &'static str) {
    match letter {
        'e' => (0, "the namespace's epoch"),
        'g' => (1, "a key generation"),
        't' => (2, "a tag version"),
        'l' => (3, "a lease"),
        's' => (4, "the replay stream"),
        'd' => (5, "an entry of another type"),
        'b' => (6, "a bus message"),
        'f' => (7, "a lock's fencing counter"),
        _ => (8, "bookkeeping"),
    }
}

impl Node {
    /// Counts and logs bookkeeping found unreadable and rewritten (`kinds`: letters, one per repair).
    /// Each kind is a warning the first time, then a debug line: garbage written in a loop must not
    /// flood the log.
    pub(crate) fn repaired(&self, kinds: &str) {
        for letter in kinds.chars() {
            self.stats.repairs(1);
            let (bit, what) = bookkeeping_kind(letter);
            let first = self
                .repairs_logged
                .fetch_or(1 << bit, std::sync::atomic::Ordering::AcqRel)
                & (1 << bit)
                == 0;
            if first {
                tracing::warn!(namespace = %self.config.namespace, what, "unreadable bookkeeping in Redis treated as changed and rewritten (logged once per kind)");
            } else {
                tracing::debug!(namespace = %self.config.namespace, what, "unreadable bookkeeping in Redis rewritten");
            }
        }
    }

    /// Applies one change to this node's L1 (own or another node's).
    pub(crate) fn apply_event(&self, event: &Event) {
        match event {
            Event::Key(key) => {
                // Poison first: a flight that fills after this point removes its own fill.
                self.flights.poison(key);
                self.l1.remove(key);
            }
            Event::Tag { tag, version } => {
                if self.coherence.set_tag_version(tag, *version) {
                    self.forget_unused_tags();
                }
            }
            Event::Clear => self.drop_l1("namespace cleared"),
        }
    }

    /// Distrusts, from now on, what this node took in before: L1 entries (served again only after a
    /// recovery vouches for them) and running flights (poisoned, so their followers read again, since
    /// an invalidation this node missed may have overtaken them). Returns true if it was not suspect.
    pub(crate) fn become_suspect(&self) -> bool {
        self.position
            .suspicions
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let newly = self.coherence.become_suspect();
        self.flights.poison_all();
        newly
    }

    /// The suspicions counted so far: a recovery that begins now covers them once it has checked.
    pub(crate) fn suspicions(&self) -> u64 {
        self.position
            .suspicions
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether a suspicion came after the last check of Redis's position.
    pub(crate) fn position_unchecked(&self) -> bool {
        self.position
            .suspicions
            .load(std::sync::atomic::Ordering::Acquire)
            != self
                .position
                .checked_at
                .load(std::sync::atomic::Ordering::Acquire)
    }

    /// A recovery that began when `covers` suspicions had been counted found Redis where this node
    /// left it (or dealt with it): L2 may be used again, unless the node became suspect since.
    pub(crate) fn position_checked(&self, covers: u64) {
        self.position
            .checked_at
            .fetch_max(covers, std::sync::atomic::Ordering::AcqRel);
        self.position.ended.notify_waiters();
    }

    /// A check found Redis had gone back in time (before it deals with it).
    pub(crate) fn went_back(&self) {
        self.position
            .rollbacks
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// A recovery failed with `error`: L2 calls waiting for its position check get it.
    pub(crate) fn recovery_failed(&self, error: Error) {
        *self.position.last_error.lock() = Some(error);
        self.position
            .failures
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.position.ended.notify_waiters();
    }

    /// Waits for a recovery to check Redis's position: `Ok` once one did, the error of a recovery
    /// that failed meanwhile (Redis is what stands in the way, and the caller should hear why), or
    /// [`Error::Unavailable`] after the response timeout, so a read with a loader at hand still
    /// answers in time.
    async fn position_known(self: &Arc<Self>) -> Result<(), Error> {
        use std::sync::atomic::Ordering;
        let deadline = tokio::time::Instant::now() + self.config.response_timeout;
        let failures = self.position.failures.load(Ordering::Acquire);
        let rollbacks = self.position.rollbacks.load(Ordering::Acquire);
        // Coalesced: a recovery already running runs once more, covering suspicions that came
        // after it began (some paths mark the node suspect without asking for a recovery).
        self.spawn_recovery("checking where Redis stands before using L2");
        loop {
            let notified = self.position.ended.notified();
            tokio::pin!(notified);
            // Registered before the checks, so a recovery ending in between still wakes us.
            notified.as_mut().enable();
            if !self.position_unchecked() {
                if self.position.rollbacks.load(Ordering::Acquire) != rollbacks {
                    return Err(Error::unavailable(
                        "Redis went back in time while this call ran; its answer is not used",
                    ));
                }
                return Ok(());
            }
            if self.position.failures.load(Ordering::Acquire) != failures {
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

    /// Brings the tag versions this node knows back under their bound: it keeps those of the
    /// entries in L1 and forgets the rest, so many distinct tags cost a pass over L1, never L1
    /// itself. Running flights are poisoned first: one that read a forgotten tag's older version
    /// must not teach it back.
    pub(crate) fn forget_unused_tags(&self) {
        self.flights.poison_all();
        let entries = self.l1.entries();
        let in_use: std::collections::HashSet<&str> = entries
            .iter()
            .flat_map(|entry| entry.tags.iter().map(|(tag, _)| &**tag))
            .collect();
        let forgotten = self.coherence.forget_all_but(&in_use);
        self.stats.tags_forgotten(forgotten as u64);
        tracing::debug!(namespace = %self.config.namespace, forgotten, "forgot tag versions no L1 entry uses");
    }

    /// Drops the whole L1 and everything it was trusted by.
    pub(crate) fn drop_l1(&self, reason: &str) {
        self.flights.poison_all();
        self.coherence.forget_tags();
        self.l1.clear();
        self.stats.l1_drops(1);
        tracing::warn!(namespace = %self.config.namespace, reason, "dropped L1");
    }

    /// Another node stored `key`: wake anyone here waiting for it, with the entry when the notice
    /// carried one (`rest`, the bytes after the notice's message; read only when someone waits).
    pub(crate) fn filled(&self, key: String, rest: &[u8]) {
        if self.fills.receiver_count() > 0 {
            let entry = crate::message::filled_entry(rest);
            let _ = self
                .fills
                .send(Arc::new(crate::message::FillNotice { key, entry }));
        }
    }

    /// Runs a Redis call through the circuit breaker: refused at once while it is open, and its outcome
    /// (connection trouble or not) moves the breaker.
    pub(crate) async fn guarded<R>(
        self: &Arc<Self>,
        call: impl std::future::Future<Output = Result<R, Error>>,
    ) -> Result<R, Error> {
        if !self.joined.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::unavailable(
                "not connected to Redis yet; reconnecting in the background",
            ));
        }
        if self.pending.has_work() {
            return Err(Error::unavailable(
                "invalidations wait for Redis; L2 is not used until they are replayed",
            ));
        }
        // Held to the end: a probe that ends without moving the breaker lets the next call probe.
        let Some(_admission) = self.breaker.admit() else {
            return Err(Error::unavailable("Redis circuit breaker is open"));
        };
        // The call runs beside the position check rather than after it, so the check costs no round
        // trip of its own; its answer is used only once the check has passed. What a call may have
        // written meanwhile is harmless: a store is fenced, and a Redis found to have gone back
        // loses every entry anyway.
        let (checked, outcome) = if self.position_unchecked() {
            tokio::join!(self.position_known(), call)
        } else {
            (Ok(()), call.await)
        };
        // The breaker hears whether Redis answered the call itself: a check that gave up waiting
        // for a recovery says nothing about reaching Redis.
        match &outcome {
            Ok(_) => {
                if self.breaker.success() == Transition::Closed {
                    self.redis_returned();
                }
            }
            Err(e) => {
                self.stats.redis_errors(1);
                if is_connection_trouble(e) && self.breaker.failure() == Transition::Opened {
                    self.stats.breaker_opened(1);
                    self.bus.mark_replay_from_here();
                    // Invalidations cannot reach us while Redis is away: distrust L1 from now on.
                    self.become_suspect();
                    tracing::warn!(namespace = %self.config.namespace, error = %e, "Redis unreachable; circuit breaker open");
                }
            }
        }
        match (checked, outcome) {
            (Ok(()), outcome) => outcome,
            // The call's own failure says more (Redis's error, with its source).
            (Err(_), Err(e)) | (Err(e), Ok(_)) => Err(e),
        }
    }

    /// The first join of a node built while Redis was unreachable: what L1 took meanwhile was never
    /// covered by the bus, so it goes, and from now on L2 is used.
    pub(crate) fn joined_late(self: &Arc<Self>) {
        self.degraded_fills
            .store(false, std::sync::atomic::Ordering::Release);
        self.drop_l1("values cached before Redis was reachable");
        self.breaker.success();
        self.joined
            .store(true, std::sync::atomic::Ordering::Release);
        tracing::info!(namespace = %self.config.namespace, "Redis reachable; the node joined the fleet");
    }

    /// The replay of queued invalidations reached Redis: close the breaker if it was open and
    /// resynchronise as after any outage.
    pub(crate) fn l2_answered(self: &Arc<Self>) {
        if self.breaker.success() == Transition::Closed {
            self.redis_returned();
        } else {
            // L2 was not used while the queue waited; what the bus said meanwhile is in the stream.
            self.gap_detected("queued invalidations replayed");
        }
    }

    /// Redis answers again: forget what L1 took while it was away, and catch up on the bus.
    fn redis_returned(self: &Arc<Self>) {
        if self
            .degraded_fills
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            self.drop_l1("values cached while Redis was unreachable");
        }
        tracing::info!(namespace = %self.config.namespace, "Redis reachable again; resynchronising");
        self.gap_detected("Redis reachable again");
    }
}
