//! L1: the in-process moka cache holding decoded values.
//!
//! A hit is a moka lookup and an `Arc` clone: no I/O, no decoding. Entries are weighed by their encoded
//! size (plus the key and a fixed overhead) so `l1_max_bytes` bounds memory, and each entry expires at its
//! own logical expiry through moka's [`Expiry`].

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache as MokaCache;
use moka::Expiry;

/// Bookkeeping bytes charged per entry on top of the encoded value and the key.
const ENTRY_OVERHEAD_BYTES: u64 = 96;

/// A decoded value with what is needed to decide, without I/O, whether it may still be served.
pub(crate) struct L1Entry {
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    /// Bytes charged against `l1_max_bytes`.
    pub(crate) weight: u32,
    /// When the value was produced (by its loader, on whichever node).
    pub(crate) created_at: Instant,
    /// The same moment on the wall clock (ms since the Unix epoch), comparable across nodes.
    pub(crate) created_at_ms: u64,
    /// When the value stops being fresh.
    pub(crate) expires_at: Instant,
    /// When this node put it in L1; a suspect node distrusts entries inserted before it became suspect.
    pub(crate) inserted_at: Instant,
    /// How long the value took to load, for probabilistic early refresh.
    pub(crate) load_time: Duration,
    /// Tags with the version they had when the value was loaded.
    pub(crate) tags: Box<[(Arc<str>, u64)]>,
    /// The [`crate::coherence::Coherence`] change count at which `tags` were last found current.
    pub(crate) tags_current_at: std::sync::atomic::AtomicU64,
    /// Set by the first hit that starts a refresh from this entry, so later hits do not start more.
    pub(crate) refresh_claimed: std::sync::atomic::AtomicBool,
}

impl L1Entry {
    /// The fraction of its lifetime this entry has lived at `now` (0 fresh, 1 expired).
    pub(crate) fn age_fraction(&self, now: Instant) -> f64 {
        let life = self.expires_at.saturating_duration_since(self.created_at);
        if life.is_zero() {
            return 1.0;
        }
        now.saturating_duration_since(self.created_at).as_secs_f64() / life.as_secs_f64()
    }
}

struct PerEntryExpiry;

impl Expiry<Arc<str>, Arc<L1Entry>> for PerEntryExpiry {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        entry: &Arc<L1Entry>,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _key: &Arc<str>,
        entry: &Arc<L1Entry>,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(updated_at))
    }
}

/// The L1 store of one node.
#[derive(Clone)]
pub(crate) struct L1 {
    cache: MokaCache<Arc<str>, Arc<L1Entry>, ahash::RandomState>,
}

impl L1 {
    pub(crate) fn new(max_bytes: u64) -> Self {
        let cache = MokaCache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &Arc<str>, entry: &Arc<L1Entry>| {
                let bytes = u64::from(entry.weight) + key.len() as u64 + ENTRY_OVERHEAD_BYTES;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryExpiry)
            .build_with_hasher(ahash::RandomState::new());
        L1 { cache }
    }

    pub(crate) async fn get(&self, key: &str) -> Option<Arc<L1Entry>> {
        self.cache.get(key).await
    }

    pub(crate) async fn insert(&self, key: Arc<str>, entry: L1Entry) {
        if entry.expires_at <= Instant::now() {
            return;
        }
        self.cache.insert(key, Arc::new(entry)).await;
    }

    pub(crate) async fn remove(&self, key: &str) {
        self.cache.invalidate(key).await;
    }

    /// Drops every entry. moka makes them invisible at once and frees them during maintenance.
    pub(crate) fn clear(&self) {
        self.cache.invalidate_all();
    }

    /// Runs moka's pending maintenance (evictions, expirations) and reports the weighed size.
    pub(crate) async fn weighed_bytes(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.weighted_size()
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}
