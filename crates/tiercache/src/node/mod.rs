//! One cache node's shared state, and how it applies changes to its L1.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub(crate) mod bus_side;
pub(crate) mod bus_state;
pub(crate) mod flights;
pub(crate) mod l1_side;
pub(crate) mod l2_side;
pub(crate) mod outbox;
pub(crate) mod pending;

use crate::breaker::Transition;
use crate::config::Config;
use crate::error::Error;
use crate::keys::KeySpace;
use crate::message::Event;
use crate::metrics::{NodeState, Recorder};
use bus_side::BusSide;
use l1_side::L1Side;
use l2_side::L2Side;

/// Everything a node's tasks share, in three parts ([`L1Side`], [`L2Side`], [`BusSide`]) and what
/// all of them use. `Cache` is a handle to one of these.
pub(crate) struct Node {
    pub(crate) config: Config,
    pub(crate) id: u64,
    pub(crate) keys: KeySpace,
    pub(crate) stats: Recorder,
    /// The entries in process, their coherence and the loads filling them.
    pub(crate) l1: L1Side,
    /// Redis and what guards its use.
    pub(crate) l2: L2Side,
    /// The invalidation bus's bookkeeping and outbox.
    pub(crate) bus: BusSide,
    pub(crate) fills: tokio::sync::broadcast::Sender<Arc<crate::message::FillNotice>>,
    /// One bit per kind of bookkeeping ever repaired, so each kind is logged as a warning once.
    pub(crate) repairs_logged: std::sync::atomic::AtomicU16,
    /// Set when the last `Cache` handle is dropped: background work of a dead node must stop (a lease
    /// extender that outlived its node would keep its lease forever).
    pub(crate) shut_down: AtomicBool,
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

    /// Hands the recorder what the counters gained and sets the gauges to what the node is now.
    pub(crate) fn publish_metrics(&self) {
        self.stats.publish();
        self.stats.state(&NodeState {
            l1_entries: self.l1.entries.entry_count(),
            l1_bytes: self.l1.entries.weighed_bytes(),
            pending_invalidations: self.l2.pending.len() as u64,
            suspect: self.l1.coherence.is_suspect(),
            breaker_open: self.l2.breaker.is_open(),
        });
    }

    /// Applies one change to this node's L1 (own or another node's).
    pub(crate) fn apply_event(&self, event: &Event) {
        match event {
            Event::Key(key) => {
                // Poison first: a flight that fills after this point removes its own fill.
                self.l1.flights.poison(key);
                self.l1.entries.remove(key);
            }
            Event::Tag { tag, version } => {
                if self.l1.coherence.set_tag_version(tag, *version) {
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
        self.l2.suspected();
        let newly = self.l1.coherence.become_suspect();
        self.l1.flights.poison_all();
        newly
    }

    /// Waits for a recovery to check Redis's position: `Ok` once one did, the error of a recovery
    /// that failed meanwhile, or [`Error::Unavailable`] after the response timeout, so a read with a
    /// loader at hand still answers in time.
    async fn position_known(self: &Arc<Self>) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + self.config.response_timeout;
        let since = self.l2.position_wait();
        // Coalesced: a recovery already running runs once more, covering suspicions that came
        // after it began (some paths mark the node suspect without asking for a recovery).
        self.spawn_recovery("checking where Redis stands before using L2");
        self.l2.position_known(since, deadline).await
    }

    /// Brings the tag versions this node knows back under their bound: it keeps those of the
    /// entries in L1 and forgets the rest, so many distinct tags cost a pass over L1, never L1
    /// itself. Running flights are poisoned first: one that read a forgotten tag's older version
    /// must not teach it back.
    pub(crate) fn forget_unused_tags(&self) {
        self.l1.flights.poison_all();
        let entries = self.l1.entries.entries();
        let in_use: std::collections::HashSet<&str> = entries
            .iter()
            .flat_map(|entry| entry.tags.iter().map(|(tag, _)| &**tag))
            .collect();
        let forgotten = self.l1.coherence.forget_all_but(&in_use);
        self.stats.tags_forgotten(forgotten as u64);
        tracing::debug!(namespace = %self.config.namespace, forgotten, "forgot tag versions no L1 entry uses");
    }

    /// Drops the whole L1 and everything it was trusted by.
    pub(crate) fn drop_l1(&self, reason: &str) {
        self.l1.flights.poison_all();
        self.l1.coherence.forget_tags();
        self.l1.entries.clear();
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
        if !self.l2.joined.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::unavailable(
                "not connected to Redis yet; reconnecting in the background",
            ));
        }
        if self.l2.pending.has_work() {
            return Err(Error::unavailable(
                "invalidations wait for Redis; L2 is not used until they are replayed",
            ));
        }
        // Held to the end: a probe that ends without moving the breaker lets the next call probe.
        let Some(_admission) = self.l2.breaker.admit() else {
            return Err(Error::unavailable("Redis circuit breaker is open"));
        };
        // The call runs beside the position check rather than after it, so the check costs no round
        // trip of its own; its answer is used only once the check has passed. What a call may have
        // written meanwhile is harmless: a store is fenced, and a Redis found to have gone back
        // loses every entry anyway.
        let (checked, outcome) = if self.l2.position_unchecked() {
            tokio::join!(self.position_known(), call)
        } else {
            (Ok(()), call.await)
        };
        // The breaker hears whether Redis answered the call itself: a check that gave up waiting
        // for a recovery says nothing about reaching Redis.
        match &outcome {
            Ok(_) => {
                if self.l2.breaker.success() == Transition::Closed {
                    self.redis_returned();
                }
            }
            Err(e) => {
                self.stats.redis_errors(1);
                if is_connection_trouble(e) && self.l2.breaker.failure() == Transition::Opened {
                    self.stats.breaker_opened(1);
                    self.bus.state.mark_replay_from_here();
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
        self.l1
            .degraded_fills
            .store(false, std::sync::atomic::Ordering::Release);
        self.drop_l1("values cached before Redis was reachable");
        self.l2.breaker.success();
        self.l2
            .joined
            .store(true, std::sync::atomic::Ordering::Release);
        tracing::info!(namespace = %self.config.namespace, "Redis reachable; the node joined the fleet");
    }

    /// The replay of queued invalidations reached Redis: close the breaker if it was open and
    /// resynchronise as after any outage.
    pub(crate) fn l2_answered(self: &Arc<Self>) {
        if self.l2.breaker.success() == Transition::Closed {
            self.redis_returned();
        } else {
            // L2 was not used while the queue waited; what the bus said meanwhile is in the stream.
            self.gap_detected("queued invalidations replayed");
        }
    }

    /// Redis answers again: forget what L1 took while it was away, and catch up on the bus.
    fn redis_returned(self: &Arc<Self>) {
        if self
            .l1
            .degraded_fills
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            self.drop_l1("values cached while Redis was unreachable");
        }
        tracing::info!(namespace = %self.config.namespace, "Redis reachable again; resynchronising");
        self.gap_detected("Redis reachable again");
    }
}
