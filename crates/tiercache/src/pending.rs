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
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::bus::Op;
use crate::error::Error;
use crate::node::Node;

/// The first pause between two replay attempts; it doubles up to [`MAX_REPLAY_BACKOFF`].
const FIRST_REPLAY_BACKOFF: Duration = Duration::from_millis(50);
const MAX_REPLAY_BACKOFF: Duration = Duration::from_secs(2);
/// Operations replayed in one batch (one script call).
const REPLAY_BATCH_OPS: usize = 2048;

/// The queue of one node.
pub(crate) struct PendingInvalidations {
    state: parking_lot::Mutex<State>,
    /// Whether the queue holds anything or a replay runs: the L2 gate reads this one flag.
    has_work: AtomicBool,
    max_ops: usize,
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
enum Step {
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
    fn push(&self, ops: Vec<Op>) -> (usize, bool, bool) {
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

    fn next_step(&self) -> Step {
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
    fn sent(&self, n: usize) {
        let mut state = self.state.lock();
        let n = n.min(state.ops.len());
        state.ops.drain(..n);
    }

    /// The namespace was cleared: it covers everything queued before, so the queue starts over.
    fn cleared(&self) {
        let mut state = self.state.lock();
        state.overflowed = false;
        state.ops.clear();
    }
}

impl Node {
    /// Keeps a batch that could not reach Redis; returns the error its callers get.
    pub(crate) fn queue_for_replay(self: &Arc<Self>, ops: Vec<Op>) -> Error {
        let n = ops.len() as u64;
        let (waiting, overflowed_now, start) = self.pending.push(ops);
        self.stats.invalidations_queued(n);
        if overflowed_now {
            self.stats.pending_overflows(1);
            tracing::warn!(namespace = %self.config.namespace, bound = self.pending.max_ops, "too many invalidations wait for Redis; the namespace will be cleared when Redis answers");
        }
        if start {
            tokio::spawn(replay(Arc::downgrade(self)));
        }
        Error::Pending {
            waiting,
            namespace_clear: self.pending.overflowed(),
        }
    }
}

/// Replays the queue with backoff until it is empty, then lets the node use L2 again.
async fn replay(node: Weak<Node>) {
    let mut backoff = FIRST_REPLAY_BACKOFF;
    loop {
        let Some(n) = node.upgrade() else { return };
        if n.shut_down.load(Ordering::Acquire) {
            return;
        }
        let result = match n.pending.next_step() {
            Step::Done => {
                tracing::info!(namespace = %n.config.namespace, "queued invalidations replayed");
                n.l2_answered();
                return;
            }
            Step::Send(ops) => {
                let count = ops.len();
                let sent = crate::bus::replay_batch(&n, ops).await;
                if sent.is_ok() {
                    n.pending.sent(count);
                    n.stats.invalidations_replayed(count as u64);
                }
                sent
            }
            Step::ClearNamespace => {
                let cleared = clear_namespace(&n).await;
                if cleared.is_ok() {
                    n.pending.cleared();
                }
                cleared
            }
        };
        match result {
            Ok(()) => backoff = FIRST_REPLAY_BACKOFF,
            Err(e) => {
                tracing::debug!(namespace = %n.config.namespace, error = %e, "replay of queued invalidations failed; retrying");
                drop(n);
                tokio::time::sleep(crate::backoff::jitter(backoff)).await;
                backoff = (backoff * 2).min(MAX_REPLAY_BACKOFF);
            }
        }
    }
}

/// The overflow fallback: deletes every entry of the namespace from L2 (generations, tag versions and
/// leases stay), then tells every node to drop its L1.
async fn clear_namespace(node: &Arc<Node>) -> Result<(), Error> {
    let conn = &node.l2.conn;
    let patterns = [node.keys.entry_pattern()];
    let mut pages = conn.scan(&patterns);
    while let Some(keys) = pages.next_page().await? {
        let names: Vec<&str> = keys
            .iter()
            .filter_map(|k| std::str::from_utf8(k).ok())
            .collect();
        conn.unlink(&names).await?;
    }
    crate::bus::replay_batch(node, vec![Op::ClearNamespace]).await
}
