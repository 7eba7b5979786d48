//! L1: the in-process moka cache holding decoded values.
//!
//! A hit is a moka lookup and an `Arc` clone: no I/O, no decoding. Entries are weighed by their encoded
//! size (plus the key and a fixed overhead) so `l1_max_bytes` bounds memory.
//!
//! Expiry is tiercache's own: a lookup ignores an entry past its `fresh_until`, and a sweep every
//! [`SWEEP_INTERVAL`] removes such entries so their memory returns. moka's per-entry expiry would do
//! both, but it converts and compares instants on every hit, about 15% of an L1 hit's instructions
//! (callgrind); here a hit pays for one read of the coarse clock (about 9 ns here, against 27 ns for
//! std's `Instant::now`).

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache as MokaCache;
use moka::ops::compute::Op;

/// How often expired entries are removed. Until then they cost memory (within `l1_max_bytes`) but are
/// never served. A sweep walks every entry once, off the request path.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

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
    /// `expires_at` on the coarse monotonic clock (a few ms resolution), which a hit reads in a third
    /// of the time std's clock takes; so a value may be served a tick past its expiry, or stop a
    /// tick early.
    pub(crate) fresh_until: coarsetime::Instant,
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
            .build_with_hasher(ahash::RandomState::new());
        L1 { cache }
    }

    pub(crate) async fn get(&self, key: &str) -> Option<Arc<L1Entry>> {
        self.cache
            .get(key)
            .await
            .filter(|entry| entry.fresh_until > coarsetime::Instant::now())
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

    /// Removes the entries expired at `now`; returns how many. An entry replaced by a fresh fill since
    /// the walk saw it is kept: the removal re-checks the entry it finds.
    pub(crate) async fn sweep_expired(&self, now: Instant) -> usize {
        let expired: Vec<Arc<str>> = self
            .cache
            .iter()
            .filter(|(_, entry)| entry.expires_at <= now)
            .map(|(key, _)| Arc::clone(&*key))
            .collect();
        let mut removed = 0;
        for key in expired {
            let outcome = self
                .cache
                .entry_by_ref(&key)
                .and_compute_with(|current| {
                    let op = match current {
                        Some(entry) if entry.value().expires_at <= now => Op::Remove,
                        _ => Op::Nop,
                    };
                    std::future::ready(op)
                })
                .await;
            if matches!(outcome, moka::ops::compute::CompResult::Removed(_)) {
                removed += 1;
            }
        }
        removed
    }

    /// Sweeps expired entries every [`SWEEP_INTERVAL`] until the task is aborted (when the cache is
    /// dropped).
    pub(crate) fn start_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let l1 = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                l1.sweep_expired(Instant::now()).await;
            }
        })
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64};

    use super::*;

    fn entry(expires_in: Duration) -> L1Entry {
        let now = Instant::now();
        L1Entry {
            value: Arc::new(()),
            weight: 10,
            created_at: now,
            created_at_ms: 0,
            expires_at: now + expires_in,
            fresh_until: coarsetime::Instant::now() + coarsetime::Duration::from(expires_in),
            inserted_at: now,
            load_time: Duration::ZERO,
            tags: Box::default(),
            tags_current_at: AtomicU64::new(0),
            refresh_claimed: AtomicBool::new(false),
        }
    }

    #[tokio::test]
    async fn an_expired_entry_is_never_served() {
        let l1 = L1::new(1 << 20);
        l1.insert(Arc::from("short"), entry(Duration::from_millis(20)))
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while l1.get("short").await.is_some() {
            assert!(Instant::now() < deadline, "still served long after expiry");
            tokio::task::yield_now().await;
        }
        let stored = l1.cache.get("short").await.expect("kept until a sweep");
        assert!(
            coarsetime::Instant::now() >= stored.fresh_until,
            "it stopped being served at its expiry, not before"
        );
    }

    #[tokio::test]
    async fn a_sweep_removes_what_expired_and_keeps_the_rest() {
        let l1 = L1::new(1 << 20);
        l1.insert(Arc::from("soon"), entry(Duration::from_secs(1)))
            .await;
        l1.insert(Arc::from("later"), entry(Duration::from_secs(3600)))
            .await;
        assert_eq!(l1.sweep_expired(Instant::now()).await, 0);
        let after_the_first = Instant::now() + Duration::from_secs(2);
        assert_eq!(l1.sweep_expired(after_the_first).await, 1);
        l1.cache.run_pending_tasks().await;
        assert_eq!(l1.entry_count(), 1);
        assert!(l1.get("later").await.is_some());
        assert!(
            l1.cache.get("soon").await.is_none(),
            "gone, not just hidden"
        );
    }
}
