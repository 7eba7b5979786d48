//! Auto-recovery of invalidations: what could not reach Redis is kept and replayed, in order, before
//! the node uses L2 again.
//!
//! An `invalidate`, `invalidate_tags` or `set` whose batch fails (Redis unreachable, breaker open, a
//! timeout) is queued here and the call returns [`crate::Error::Pending`]. While the queue holds
//! anything the node reads and writes no L2 (its own L1 already applied the invalidation; other
//! nodes and L2 may still hold the old value), and later batches queue behind it, so the fleet sees
//! them in the order they were made. A background task replays the queue with backoff; when it is
//! empty, the node closes its breaker and resynchronises as after any outage.
//!
//! The queue is bounded ([`crate::Config::max_pending_invalidations`] operations). Past the bound
//! it is dropped for one coarser operation: when Redis answers, every entry of the namespace is
//! deleted from L2 and every node is told to drop its L1.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use super::outbox::Op;

/// Operations replayed in one batch (one script call).
const REPLAY_BATCH_OPS: usize = 2048;

/// The queue of one node.
pub(crate) struct PendingInvalidations {
    state: parking_lot::Mutex<State>,
    /// Whether the queue holds anything or a replay runs: the L2 gate reads this one flag.
    has_work: AtomicBool,
    pub(crate) max_ops: usize,
}

#[derive(Default)]
struct State {
    ops: VecDeque<Op>,
    /// The bound was passed: the queue was dropped and the namespace must be cleared instead.
    overflowed: bool,
    /// A replay task runs.
    replaying: bool,
}

/// What the replay does next.
pub(crate) enum Step {
    Send(Vec<Op>),
    ClearNamespace,
    Done,
}

impl PendingInvalidations {
    pub(crate) fn new(max_ops: usize) -> Self {
        PendingInvalidations {
            state: parking_lot::Mutex::new(State::default()),
            has_work: AtomicBool::new(false),
            max_ops,
        }
    }

    /// Whether anything waits to reach Redis (or is being replayed).
    pub(crate) fn has_work(&self) -> bool {
        self.has_work.load(Ordering::Acquire)
    }

    /// Operations waiting; after an overflow, those queued since.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().ops.len()
    }

    /// Whether the queue overflowed and waits to clear the namespace.
    pub(crate) fn overflowed(&self) -> bool {
        self.state.lock().overflowed
    }

    /// Queues `ops`. Returns how many operations wait, whether the bound was passed just now, and
    /// whether the caller must start the replay task.
    pub(crate) fn push(&self, ops: Vec<Op>) -> (usize, bool, bool) {
        let mut state = self.state.lock();
        let mut overflowed_now = false;
        if state.overflowed {
            // The coming clear of the namespace covers these too.
        } else if state.ops.len() + ops.len() > self.max_ops {
            state.ops.clear();
            state.overflowed = true;
            overflowed_now = true;
        } else {
            state.ops.extend(ops);
        }
        self.has_work.store(true, Ordering::Release);
        let start = !state.replaying;
        state.replaying = true;
        (state.ops.len(), overflowed_now, start)
    }

    pub(crate) fn next_step(&self) -> Step {
        let mut state = self.state.lock();
        if state.overflowed {
            return Step::ClearNamespace;
        }
        if state.ops.is_empty() {
            state.replaying = false;
            self.has_work.store(false, Ordering::Release);
            return Step::Done;
        }
        let n = state.ops.len().min(REPLAY_BATCH_OPS);
        Step::Send(state.ops.iter().take(n).cloned().collect())
    }

    /// The first `n` operations reached Redis.
    pub(crate) fn sent(&self, n: usize) {
        let mut state = self.state.lock();
        let n = n.min(state.ops.len());
        state.ops.drain(..n);
    }

    /// The namespace was cleared: it covers everything queued before, so the queue starts over.
    pub(crate) fn cleared(&self) {
        let mut state = self.state.lock();
        state.overflowed = false;
        state.ops.clear();
    }
}
