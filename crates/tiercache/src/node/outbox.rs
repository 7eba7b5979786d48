//! The outbox's handle: what callers ask the bus to do, and the queue to the flusher.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::error::Error;
use crate::l2::{nonce, EntryWrite};
use crate::message::Event;

/// What the outbox is asked to do to L2 before announcing.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Delete the key's value and bump its generation.
    InvalidateKey(String),
    /// Only announce that the key changed (L2 was already written).
    AnnounceKey(String),
    /// Write the key's entry under a new generation (deleting both layouts' copies first) and
    /// announce it: a `set` on one server. Queued for replay, it becomes [`Op::InvalidateKey`]: by
    /// then the value may be older than what others wrote.
    Put(String, Arc<EntryWrite>, Option<Arc<LocalFill>>),
    /// Give the tag a new version.
    InvalidateTag(String),
    /// Give the tag this new version, chosen by the caller so that entries written later in the
    /// same batch can carry it (they are valid the moment the batch lands, never missing between).
    InvalidateTagTo(String, u64),
    /// Only announce a tag version that L2 already has (a version recreated after eviction).
    AnnounceTag(String, u64),
    /// Tell every node to drop its L1 (after the namespace's entries were deleted from L2).
    ClearNamespace,
}

/// A `set`'s fill of this node's L1, run once by the flusher where it applies the batch here: right
/// after the write's own removal of the key, before any later change (so an invalidation of the key
/// that Redis applied after the write also wins in this node's L1). Not run when the batch fails.
pub(crate) struct LocalFill(parking_lot::Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl LocalFill {
    pub(crate) fn new(fill: impl FnOnce() + Send + 'static) -> Arc<Self> {
        Arc::new(LocalFill(parking_lot::Mutex::new(Some(Box::new(fill)))))
    }

    /// Runs the fill, the first time only (a batch retried whole carries the same one).
    pub(crate) fn run(&self) {
        let fill = self.0.lock().take();
        if let Some(fill) = fill {
            fill();
        }
    }
}

impl std::fmt::Debug for LocalFill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalFill")
    }
}

/// Where a caller waits for its batch's outcome: every caller of one batch gets the same result (the
/// error cloned, source included).
pub(crate) type Reply = oneshot::Sender<Result<(), Error>>;

/// The sending half: queues operations for the group-commit flusher.
#[derive(Clone)]
pub(crate) struct Outbox {
    pub(crate) tx: mpsc::Sender<(Vec<Op>, Reply)>,
    /// Set by [`crate::Cache::shutdown`]: new work is refused, what is queued still goes out.
    pub(crate) closing: Arc<AtomicBool>,
}

/// Most operations in one batch (one script call, one message).
pub(crate) const MAX_BATCH_OPS: usize = 2048;
/// Calls waiting for the flusher at most; past it callers wait for room (backpressure) rather than
/// the queue growing without bound while Redis is slow.
pub(crate) const OUTBOX_CAPACITY: usize = 4096;

impl Outbox {
    /// Applies `ops` to L2 and announces them; returns when L2 has them.
    pub(crate) async fn send(&self, ops: Vec<Op>) -> Result<(), Error> {
        // The caller's wait: for the flusher, then for the one script call that writes, appends to
        // the stream and publishes the batch its ops joined (the flusher's own span is `bus_flush`).
        let span = crate::spans::debug_span!(
            "tiercache.bus_publish",
            ops = ops.len(),
            outcome = tracing::field::Empty,
        );
        if self.is_closed() {
            span.record("outcome", "refused");
            return Err(Error::unavailable(
                "the cache node is shutting down (Cache::shutdown was called)",
            ));
        }
        let sent = self.queue(ops).instrument(span.clone()).await;
        span.record("outcome", crate::spans::sent_outcome(&sent));
        sent
    }

    /// Refuses new work from now on.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Whether [`Outbox::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Returns once the flusher has handled everything queued before this call (an empty batch
    /// waits behind them: the queue is first in, first out).
    pub(crate) async fn drained(&self) {
        let _ = self.queue(Vec::new()).await;
    }

    async fn queue(&self, ops: Vec<Op>) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((ops, tx))
            .await
            .map_err(|_| Error::unavailable("the cache node is shutting down"))?;
        rx.await
            .map_err(|_| Error::unavailable("the cache node is shutting down"))?
    }
}

impl Op {
    /// What this node's own L1 applies for an operation that is queued without being sent. A tag
    /// gets a version of this node's own, which no entry carries, so every L1 entry under the tag is
    /// distrusted until the replay brings the real one.
    pub(crate) fn local_event(&self) -> Event {
        match self {
            Op::InvalidateKey(key) | Op::AnnounceKey(key) | Op::Put(key, ..) => {
                Event::Key(key.clone())
            }
            Op::AnnounceTag(tag, version) => Event::Tag {
                tag: tag.clone(),
                version: *version,
            },
            // Not the caller's version: the batch's writes become invalidations in the replay
            // queue, so no entry ever carries it, and nothing here may trust one that does.
            Op::InvalidateTag(tag) | Op::InvalidateTagTo(tag, _) => Event::Tag {
                tag: tag.clone(),
                version: nonce(),
            },
            Op::ClearNamespace => Event::Clear,
        }
    }

    /// The operation as the replay queue keeps it: a write becomes the key's invalidation, since a
    /// value replayed later could overwrite a newer one.
    pub(crate) fn for_replay(self) -> Op {
        match self {
            Op::Put(key, ..) => Op::InvalidateKey(key),
            other => other,
        }
    }
}
