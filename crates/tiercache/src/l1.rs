//! L1: the in-process moka cache holding decoded values.
//!
//! A hit is a moka lookup and an `Arc` clone: no I/O, no decoding. Entries are weighed by their encoded
//! size (plus the key and a fixed overhead) so `l1_max_bytes` bounds memory.
//!
//! Expiry is tiercache's own: a lookup ignores an entry past its `fresh_until`, and a sweep every
//! [`SWEEP_INTERVAL`] removes such entries so their memory returns. moka's per-entry expiry would do
//! both, but it converts and compares instants on every hit, about 15% of an L1 hit's instructions
//! (callgrind); here a hit pays for one read of the coarse clock (about 9 ns here, against 27 ns for
//! std's `Instant::now`), read without updating coarsetime's process-wide "recent" value, which every
//! core would otherwise write on every hit.
//!
//! The store is `moka::sync::Cache`: its `get` is a plain function call, where the future cache's
//! builds and polls a future on every hit (about 300 of an L1 hit's 1,450 instructions, callgrind).
//! Its writes may run moka's maintenance inline on the calling thread, as the future cache's do; the
//! sweep, which walks every entry, runs on the blocking pool instead of an async worker.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use moka::sync::Cache as MokaCache;

/// How often expired entries are removed. Until then they are never served, but they still count
/// toward `l1_max_bytes` and the entry count, and take part in eviction. A sweep walks every entry
/// once, off the request path.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// The furthest ahead `fresh_until` is set: coarse instants are 32.32 fixed-point seconds since boot,
/// so a "never expires" TTL would overflow them. A value this old is simply read from L2 again.
const COARSE_HORIZON: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Now on the coarse clock, without writing coarsetime's shared "recent" cell.
pub(crate) fn coarse_now() -> coarsetime::Instant {
    coarsetime::Instant::now_without_cache_update()
}

/// The coarse instant `fresh_for` from now.
pub(crate) fn fresh_until(fresh_for: Duration) -> coarsetime::Instant {
    coarse_now() + coarsetime::Duration::from(fresh_for.min(COARSE_HORIZON))
}

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
    /// Before this coarse instant no refresh-ahead can be due, so a hit decides "no refresh" with the
    /// coarse clock alone, without reading std's clock or drawing a random number.
    pub(crate) refresh_from: coarsetime::Instant,
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

    pub(crate) fn get(&self, key: &str) -> Option<Arc<L1Entry>> {
        self.cache
            .get(key)
            .filter(|entry| entry.fresh_until > coarse_now())
    }

    pub(crate) fn insert(&self, key: Arc<str>, entry: L1Entry) {
        if entry.expires_at <= Instant::now() {
            return;
        }
        self.cache.insert(key, Arc::new(entry));
    }

    pub(crate) fn remove(&self, key: &str) {
        self.cache.invalidate(key);
    }

    /// Every entry held now (a snapshot; for walks over L1 that are rare).
    pub(crate) fn entries(&self) -> Vec<Arc<L1Entry>> {
        self.cache.iter().map(|(_, entry)| entry).collect()
    }

    /// Removes the entries expired at `now`; returns how many.
    pub(crate) fn sweep_expired(&self, now: Instant) -> usize {
        let mut removed = 0;
        for key in self.expired_keys(now) {
            if self.remove_if_expired(&key, now) {
                removed += 1;
            }
        }
        removed
    }

    fn expired_keys(&self, now: Instant) -> Vec<Arc<str>> {
        self.cache
            .iter()
            .filter(|(_, entry)| entry.expires_at <= now)
            .map(|(key, _)| Arc::clone(&*key))
            .collect()
    }

    /// Removes `key` if the entry it holds now is expired at `now`. A fill that replaced the expired
    /// entry since the walk saw it is kept, unless it lands between this check and the removal (moka
    /// does not serialise a plain insert against it): then the next read goes to L2, never stale.
    fn remove_if_expired(&self, key: &Arc<str>, now: Instant) -> bool {
        let outcome = self
            .cache
            .entry_by_ref(key)
            .and_compute_with(|current| match current {
                Some(entry) if entry.value().expires_at <= now => Op::Remove,
                _ => Op::Nop,
            });
        matches!(outcome, moka::ops::compute::CompResult::Removed(_))
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
                let sweeping = l1.clone();
                // A failed sweep (it panicked) leaves entries for the next one; nothing to report.
                let _ = tokio::task::spawn_blocking(move || sweeping.sweep_expired(Instant::now()))
                    .await;
            }
        })
    }

    /// Drops every entry. moka makes them invisible at once and frees them during maintenance.
    pub(crate) fn clear(&self) {
        self.cache.invalidate_all();
    }

    /// Runs moka's pending maintenance (evictions; expiry is the sweep's) and reports the weighed size.
    pub(crate) fn weighed_bytes(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}

#[cfg(test)]
impl L1Entry {
    /// An entry of `()` with `tags`, fresh for `expires_in`, for unit tests.
    pub(crate) fn for_test(
        expires_in: Duration,
        tags: &[(&str, u64)],
        tags_current_at: u64,
    ) -> Self {
        let now = Instant::now();
        L1Entry {
            value: Arc::new(()),
            weight: 10,
            created_at: now,
            created_at_ms: 0,
            expires_at: now + expires_in,
            fresh_until: fresh_until(expires_in),
            refresh_from: fresh_until(expires_in),
            inserted_at: now,
            load_time: Duration::ZERO,
            tags: tags.iter().map(|(t, v)| (Arc::from(*t), *v)).collect(),
            tags_current_at: std::sync::atomic::AtomicU64::new(tags_current_at),
            refresh_claimed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(expires_in: Duration) -> L1Entry {
        L1Entry::for_test(expires_in, &[], 0)
    }

    #[tokio::test]
    async fn an_entry_is_served_until_it_expires_and_never_after() {
        let l1 = L1::new(1 << 20);
        // Long enough that a stalled VM cannot expire it before the first read.
        let life = Duration::from_secs(1);
        let inserted = Instant::now();
        l1.insert(Arc::from("short"), entry(life));
        assert!(l1.get("short").is_some(), "fresh right after the fill");
        let deadline = inserted + Duration::from_secs(10);
        while l1.get("short").is_some() {
            assert!(Instant::now() < deadline, "still served long after expiry");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The coarse clock may stop serving it up to one tick (at most 10 ms) early.
        assert!(
            inserted.elapsed() >= life.saturating_sub(Duration::from_millis(10)),
            "stopped after {:?} of a {life:?} life",
            inserted.elapsed()
        );
        assert!(l1.cache.get("short").is_some(), "hidden, not yet swept");
    }

    #[test]
    fn a_sweep_removes_what_expired_and_keeps_the_rest() {
        let l1 = L1::new(1 << 20);
        l1.insert(Arc::from("soon"), entry(Duration::from_secs(1)));
        l1.insert(Arc::from("later"), entry(Duration::from_secs(3600)));
        assert_eq!(l1.sweep_expired(Instant::now()), 0);
        let after_the_first = Instant::now() + Duration::from_secs(2);
        assert_eq!(l1.sweep_expired(after_the_first), 1);
        l1.cache.run_pending_tasks();
        assert_eq!(l1.entry_count(), 1);
        assert!(l1.get("later").is_some());
        assert!(l1.cache.get("soon").is_none(), "gone, not just hidden");
    }

    #[test]
    fn a_fill_after_the_walk_survives_the_sweep() {
        let l1 = L1::new(1 << 20);
        l1.insert(Arc::from("k"), entry(Duration::from_secs(1)));
        let later = Instant::now() + Duration::from_secs(2);
        let expired = l1.expired_keys(later);
        assert_eq!(expired.len(), 1);
        // Refilled between the walk and the removal.
        l1.insert(Arc::from("k"), entry(Duration::from_secs(3600)));
        assert!(!l1.remove_if_expired(&expired[0], later));
        assert!(l1.get("k").is_some());
    }

    #[test]
    fn a_ttl_beyond_the_horizon_neither_overflows_nor_expires() {
        let forever = fresh_until(Duration::MAX);
        assert!(forever > coarse_now() + coarsetime::Duration::from_secs(3600));
    }
}
