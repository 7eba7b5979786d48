//! [`Admin`]: what operators, dashboards and tests ask of a node, kept apart from the data methods
//! of [`crate::Cache`] so that its page lists what a service calls to read and write.
//!
//! Looking at this node: [`Admin::node_id`], [`Admin::serves_locally`], [`Admin::l1_entry_count`],
//! [`Admin::l1_weighed_bytes`], [`Admin::known_tags`], [`Admin::is_suspect`],
//! [`Admin::is_redis_unavailable`], [`Admin::pending_invalidations`]; acting on it:
//! [`Admin::forget_local`], [`Admin::publish_metrics`]. Looking at and tidying the namespace in
//! Redis: the methods in `ops/` (see its table).

use std::sync::Arc;

use crate::coherence::Trust;
use crate::node::Node;

/// A node's operator methods, borrowed from its [`crate::Cache`] by [`crate::Cache::admin`]: introspection of
/// this node, and looking at and tidying its namespace in Redis.
///
/// ```no_run
/// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
/// let admin = cache.admin();
/// println!("node {:016x}: {} entries in L1", admin.node_id(), admin.l1_entry_count());
/// for lease in admin.leases().await? {
///     println!("{} held by {:?}", lease.redis_key, lease.holder);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct Admin<'a> {
    node: &'a Arc<Node>,
}

impl std::fmt::Debug for Admin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("node_id", &format_args!("{:016x}", self.node.id))
            .field("namespace", &self.node.config.namespace)
            .finish()
    }
}

impl<'a> Admin<'a> {
    /// The operator methods of `node` ([`crate::Cache::admin`]).
    pub(crate) fn of(node: &'a Arc<Node>) -> Self {
        Admin { node }
    }

    pub(crate) fn node(self) -> &'a Arc<Node> {
        self.node
    }

    pub(crate) fn config(self) -> &'a crate::config::Config {
        &self.node.config
    }

    /// This node's id (random, unique per built `Cache`).
    pub fn node_id(&self) -> u64 {
        self.node().id
    }

    /// Drops `key` from this node's L1 only (L2 and other nodes keep it); the next read here goes to L2.
    pub fn forget_local(&self, key: &str) {
        self.node().l1.entries.remove(key);
    }

    /// Whether this node would answer `key` from its L1 now: it holds a value it trusts (unexpired,
    /// not invalidated, not waiting for a recovery). Looks at L1 only and counts nothing; for
    /// diagnostics and for timing how fast an invalidation reaches a node.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) {
    /// if cache.admin().serves_locally("total_donations:this_month") {
    ///     println!("answered from this process's memory");
    /// }
    /// # }
    /// ```
    pub fn serves_locally(&self, key: &str) -> bool {
        let node = self.node();
        node.l1
            .entries
            .get(key)
            .is_some_and(|entry| node.l1.coherence.trust(&entry) == Trust::Trusted)
    }

    /// Hands the `metrics` recorder every count made since the last hand-over. The node does this
    /// by itself every [`crate::PUBLISH_INTERVAL`] and when it is dropped; call it to export at a
    /// moment of your choosing, such as just before a scrape or a final flush.
    ///
    /// Hits count into per-thread stripes and reach the recorder in batches, so that serving L1
    /// hits from many cores never has them all write the recorder's one shared counter.
    pub fn publish_metrics(&self) {
        self.node().publish_metrics();
    }

    /// Bytes L1 holds by its weigher (encoded value size + key + overhead), after pending maintenance.
    /// Expired entries count until the next sweep (every 30 s) removes them.
    pub fn l1_weighed_bytes(&self) -> u64 {
        self.node().l1.entries.weighed_bytes()
    }

    /// How many distinct tag versions this node keeps in memory (bounded by
    /// [`crate::CacheBuilder::max_known_tags`]).
    pub fn known_tags(&self) -> usize {
        self.node().l1.coherence.known_tags()
    }

    /// Number of entries in L1 (approximate until maintenance runs), expired ones included until the
    /// next sweep.
    pub fn l1_entry_count(&self) -> u64 {
        self.node().l1.entries.entry_count()
    }

    /// Fault injection for tests (feature `fault-injection`, which the crate's own tests turn on): this
    /// node's next `batches` invalidation batches reach L2 and the replay stream but are not
    /// published, as if every subscriber had missed them.
    #[cfg(feature = "fault-injection")]
    pub fn fault_skip_publish(&self, batches: u32) {
        self.node()
            .bus
            .fault_skip_publish
            .store(batches, std::sync::atomic::Ordering::Release);
    }

    /// Whether this node is not using Redis now: the circuit breaker is open, or the node was built
    /// while Redis was unreachable and has not joined the fleet yet. L1 and loaders answer alone.
    pub fn is_redis_unavailable(&self) -> bool {
        let node = self.node();
        !node.l2.joined.load(std::sync::atomic::Ordering::Acquire) || node.l2.breaker.is_open()
    }

    /// Invalidation operations that could not reach Redis and wait to be replayed (0 normally).
    pub fn pending_invalidations(&self) -> usize {
        self.node().l2.pending.len()
    }

    /// Whether this node currently distrusts part of its L1 (it may have missed an invalidation).
    pub fn is_suspect(&self) -> bool {
        self.node().l1.coherence.is_suspect()
    }
}
