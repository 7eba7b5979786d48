//! What a node says of its own coherence: its facts now (suspect, Redis unavailable, invalidations
//! waiting) and its invalidation and recovery counters. Both the metrics snapshot and the status
//! document carry them, so they sit below both.

use serde::{Deserialize, Serialize};
use tiercache::{Cache, CacheStats};

/// Invalidations of this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidationStatus {
    /// Invalidation events this node applied to Redis and published.
    pub sent: u64,
    /// Invalidation events from other nodes applied to this node's L1.
    pub received: u64,
}

/// Whether the node may have missed invalidations, and how it recovered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoherenceStatus {
    /// Times the node found it may have missed invalidations.
    pub gaps_detected: u64,
    /// Recoveries that replayed the missed invalidations from the stream.
    pub replays: u64,
    /// Recoveries that had to drop the whole L1.
    pub l1_drops: u64,
    /// The node distrusts part of its L1 right now.
    pub suspect: bool,
    /// Redis is unreachable right now (circuit breaker open): L1 and loaders answer alone.
    pub redis_unavailable: bool,
    /// Invalidation operations Redis has not taken yet (unreachable, out of memory), kept and
    /// replayed in order; other nodes may serve the old values meanwhile.
    #[serde(default)]
    pub pending_invalidations: usize,
}

impl InvalidationStatus {
    /// The invalidation counters of a node's stats.
    pub(crate) fn of(stats: &CacheStats) -> Self {
        InvalidationStatus {
            sent: stats.invalidations_sent,
            received: stats.invalidations_received,
        }
    }
}

impl CoherenceStatus {
    /// The recovery counters of a node's stats, with what `node` says of it now.
    pub(crate) fn of(stats: &CacheStats, node: &NodeFacts<'_>) -> Self {
        CoherenceStatus {
            gaps_detected: stats.gaps_detected,
            replays: stats.replays,
            l1_drops: stats.l1_drops,
            suspect: node.suspect,
            redis_unavailable: node.redis_unavailable,
            pending_invalidations: node.pending_invalidations,
        }
    }
}

/// What the status says about the node itself, apart from its counters.
#[derive(Debug, Clone, Copy)]
pub struct NodeFacts<'a> {
    /// The cache namespace.
    pub namespace: &'a str,
    /// The node id.
    pub node_id: u64,
    /// Whether the node distrusts part of its L1.
    pub suspect: bool,
    /// Whether the circuit breaker is open.
    pub redis_unavailable: bool,
    /// Invalidation operations waiting for Redis to take them.
    pub pending_invalidations: usize,
}

impl<'a> NodeFacts<'a> {
    /// The facts of `cache` now.
    pub fn of(cache: &'a Cache) -> Self {
        NodeFacts {
            namespace: &cache.config().namespace,
            node_id: cache.admin().node_id(),
            suspect: cache.admin().is_suspect(),
            redis_unavailable: cache.admin().is_redis_unavailable(),
            pending_invalidations: cache.admin().pending_invalidations(),
        }
    }
}
