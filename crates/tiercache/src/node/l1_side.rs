//! The L1 side of a node: the entries this process holds, what they are trusted by, and the loads
//! that are filling them.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::coherence::Coherence;
use crate::l1::L1;
use crate::node::flights::Flights;

/// What a node keeps in process. The flights sit here rather than in the read path because an
/// invalidation must reach them exactly as it reaches an entry: a load that fills after the
/// invalidation would otherwise bring the old value back.
pub(crate) struct L1Side {
    /// The decoded values.
    pub(crate) entries: L1,
    /// The tag versions and the suspect moment the entries are checked against.
    pub(crate) coherence: Coherence,
    /// One leader per key: the loads running on this node.
    pub(crate) flights: Arc<Flights>,
    /// Set when L1 took values while Redis was unreachable; they are dropped when Redis returns.
    pub(crate) degraded_fills: AtomicBool,
}

impl L1Side {
    /// An empty L1 of at most `max_bytes`, knowing at most `max_tags` tag versions.
    pub(crate) fn new(max_bytes: u64, max_tags: usize) -> Self {
        Self {
            entries: L1::new(max_bytes),
            coherence: Coherence::with_max_tags(max_tags),
            flights: Arc::new(Flights::default()),
            degraded_fills: AtomicBool::new(false),
        }
    }
}
