//! The bus side of a node: what the sender, the receiver and recovery share.

use std::sync::atomic::AtomicBool;

use crate::node::bus_state::BusState;
use crate::node::outbox::Outbox;

/// The node's bookkeeping of the invalidation bus and the outbox its invalidations leave through.
pub(crate) struct BusSide {
    /// Sequence numbers, the stream position applied, what each sender sent.
    pub(crate) state: BusState,
    /// Where invalidations and fills queue for the flusher.
    pub(crate) outbox: Outbox,
    /// Whether a recovery task runs now (at most one does).
    pub(crate) recovering: AtomicBool,
    /// Whether a recovery was asked for while one ran: it runs once more, covering what came after
    /// it began.
    pub(crate) recovery_requested: AtomicBool,
    /// Fault injection: this many coming batches are written to the stream but not published.
    #[cfg(feature = "fault-injection")]
    pub(crate) fault_skip_publish: std::sync::atomic::AtomicU32,
}

impl BusSide {
    /// Fresh bookkeeping around `outbox`.
    pub(crate) fn new(outbox: Outbox) -> Self {
        Self {
            state: BusState::new(),
            outbox,
            recovering: AtomicBool::new(false),
            recovery_requested: AtomicBool::new(false),
            #[cfg(feature = "fault-injection")]
            fault_skip_publish: std::sync::atomic::AtomicU32::new(0),
        }
    }
}
