//! The task that replays queued invalidations, in order and with backoff, until the queue is empty
//! and the node may use L2 again.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::sender::replay_batch;
use crate::error::Error;
use crate::node::outbox::Op;
use crate::node::pending::Step;
use crate::node::Node;

/// The first pause between two replay attempts; it doubles up to [`MAX_REPLAY_BACKOFF`].
const FIRST_REPLAY_BACKOFF: Duration = Duration::from_millis(50);
const MAX_REPLAY_BACKOFF: Duration = Duration::from_secs(2);

impl Node {
    /// Keeps a batch that could not reach Redis (`cause` says why); returns the error its callers get.
    pub(crate) fn queue_for_replay(self: &Arc<Self>, ops: Vec<Op>, cause: &Error) -> Error {
        let ops: Vec<Op> = ops.into_iter().map(Op::for_replay).collect();
        let n = ops.len() as u64;
        let (waiting, overflowed_now, start) = self.l2.pending.push(ops);
        self.stats.invalidations_queued(n);
        if overflowed_now {
            self.stats.pending_overflows(1);
            tracing::warn!(namespace = %self.config.namespace, bound = self.l2.pending.max_ops, "too many invalidations wait for Redis; the namespace will be cleared when Redis answers");
        }
        let reason = if cause.is_out_of_memory() {
            "Redis is out of memory (maxmemory reached, and its policy evicts nothing): the entries and \
             tag versions were deleted and the listening nodes told, but the replay stream could not \
             record it"
                .to_owned()
        } else {
            format!("Redis did not take it ({cause})")
        };
        if start {
            tracing::warn!(namespace = %self.config.namespace, waiting, reason, "invalidations queued for replay until Redis takes them");
            tokio::spawn(replay(Arc::downgrade(self)));
        }
        Error::Pending {
            waiting,
            namespace_clear: self.l2.pending.overflowed(),
            reason,
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
        let result = match n.l2.pending.next_step() {
            Step::Done => {
                tracing::info!(namespace = %n.config.namespace, "queued invalidations replayed");
                n.l2_answered();
                return;
            }
            Step::Send(ops) => {
                let count = ops.len();
                let sent = replay_batch(&n, ops).await;
                if sent.is_ok() {
                    n.l2.pending.sent(count);
                    n.stats.invalidations_replayed(count as u64);
                }
                sent
            }
            Step::ClearNamespace => {
                let cleared = clear_namespace(&n).await;
                if cleared.is_ok() {
                    n.l2.pending.cleared();
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

/// Deletes every entry of the namespace from L2 (generations, tag versions and leases stay), then
/// tells every node to drop its L1: the overflow fallback, and what a rollback of Redis calls for.
pub(super) async fn clear_namespace(node: &Arc<Node>) -> Result<(), Error> {
    node.l2.redis.unlink_all_entries().await?;
    replay_batch(node, vec![Op::ClearNamespace]).await
}
