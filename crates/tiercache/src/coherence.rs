//! What this node knows about the validity of its L1 without asking Redis: the tag versions it has seen
//! and whether it may have missed an invalidation (suspect).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;

use crate::l1::L1Entry;

/// Above this many distinct tags the node forgets the ones no L1 entry carries (and, if that is not
/// enough, some that do), rather than grow without bound.
pub(crate) const MAX_KNOWN_TAGS: usize = 1_000_000;

/// The node-local view of tag versions and trust.
pub(crate) struct Coherence {
    started: Instant,
    /// The most tag versions kept ([`MAX_KNOWN_TAGS`] outside tests).
    max_tags: usize,
    tags: RwLock<HashMap<Arc<str>, u64, ahash::RandomState>>,
    /// Counts the changes to `tags` that can make an entry untrusted (a known version replaced, or
    /// the map cleared). It moves under the write lock, before the map does. An entry whose tags were
    /// found current at the count that still holds is current now, so an L1 hit can skip the read
    /// lock, whose shared lock word every core would otherwise write on every tagged hit.
    changes: AtomicU64,
    /// Nanoseconds after `started` at which the node became suspect; 0 when it is not.
    suspect_since: AtomicU64,
}

/// What [`Coherence::trust`] decided about an L1 entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Trust {
    Trusted,
    /// Possibly stale: the node may have missed its invalidation. Only a fail-safe fallback.
    Suspect,
    /// A tag moved on: known stale.
    Invalid,
}

/// What [`Coherence::admit`] decided about filling L1.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The tag versions agree with what the node knows: fill L1.
    Admit,
    /// The node knows a different version for a tag: the value may be stale here, do not fill.
    Refuse,
    /// Too many tags: the node must forget some ([`Coherence::forget_all_but`]) before it learns more.
    Overflow,
}

impl Coherence {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::with_max_tags(MAX_KNOWN_TAGS)
    }

    pub(crate) fn with_max_tags(max_tags: usize) -> Self {
        Coherence {
            started: Instant::now(),
            max_tags,
            tags: RwLock::new(HashMap::default()),
            changes: AtomicU64::new(0),
            suspect_since: AtomicU64::new(0),
        }
    }

    /// Whether an L1 entry may be served: every tag still has the version it was loaded under, and the
    /// entry is not older than the moment the node became suspect.
    pub(crate) fn trust(&self, entry: &L1Entry) -> Trust {
        if !entry.tags.is_empty() {
            let changes = self.change_count();
            if entry.tags_current_at.load(Ordering::Relaxed) != changes {
                let known = self.tags.read();
                if !entry
                    .tags
                    .iter()
                    .all(|(tag, version)| known.get(tag) == Some(version))
                {
                    return Trust::Invalid;
                }
                // Read before the lock was taken, so never newer than the map just checked.
                entry.tags_current_at.store(changes, Ordering::Relaxed);
            }
        }
        let since = self.suspect_since.load(Ordering::Acquire);
        if since != 0 && entry.inserted_at <= self.started + std::time::Duration::from_nanos(since)
        {
            return Trust::Suspect;
        }
        Trust::Trusted
    }

    /// The current change count; read it before checking an entry's tags, and record it with them.
    pub(crate) fn change_count(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Whether the node can vouch that `tag` is still at `version` without asking Redis: it knows that
    /// version and has missed no bus message since (not suspect). It is the rule [`Coherence::trust`]
    /// applies to L1 entries, so an L2 entry accepted by it is exactly as fresh as an L1 hit. When it
    /// can, it returns its own copy of the tag name, which an L1 entry can share without allocating.
    pub(crate) fn vouches(&self, tag: &str, version: u64) -> Option<Arc<str>> {
        if self.is_suspect() {
            return None;
        }
        match self.tags.read().get_key_value(tag) {
            Some((name, known)) if *known == version => Some(name.clone()),
            _ => None,
        }
    }

    /// Records the versions of a freshly read entry's tags. A tag the node has never seen is learned; a
    /// tag whose known version differs refuses the fill (versions are nonces, not ordered, so the node
    /// cannot tell which is newer; the bus will settle it).
    pub(crate) fn admit(&self, tags: &[(Arc<str>, u64)]) -> Admission {
        if tags.is_empty() {
            return Admission::Admit;
        }
        {
            let known = self.tags.read();
            let mut all_known = true;
            for (tag, version) in tags {
                match known.get(tag) {
                    Some(v) if v != version => return Admission::Refuse,
                    Some(_) => {}
                    None => all_known = false,
                }
            }
            if all_known {
                return Admission::Admit;
            }
        }
        let mut known = self.tags.write();
        if known.len() + tags.len() > self.max_tags {
            return Admission::Overflow;
        }
        for (tag, version) in tags {
            match known.get(tag) {
                Some(v) if v != version => return Admission::Refuse,
                Some(_) => {}
                None => {
                    known.insert(tag.clone(), *version);
                }
            }
        }
        Admission::Admit
    }

    /// Applies a tag version announced by the bus (always wins: it is the newest the fleet knows).
    /// Returns true when the node now knows more tags than its bound and must forget some.
    pub(crate) fn set_tag_version(&self, tag: &str, version: u64) -> bool {
        let mut known = self.tags.write();
        if let Some(v) = known.get_mut(tag) {
            if *v != version {
                self.changes.fetch_add(1, Ordering::AcqRel);
                *v = version;
            }
        } else {
            // No entry can be trusted under a tag the map lacks, so learning one changes nothing.
            // It is remembered so that a fill read before this version cannot teach the old one.
            known.insert(Arc::from(tag), version);
        }
        known.len() > self.max_tags
    }

    /// Forgets every tag version but those `in_use` names (the tags of entries in L1), then, if that
    /// still leaves more than half the bound, arbitrary ones down to half: an entry under a forgotten
    /// tag is distrusted (and so goes), every other entry stays. The caller must first poison the
    /// flights running, since a fill read before a forgotten tag's last version could otherwise
    /// teach the node an older one. Returns how many were forgotten.
    pub(crate) fn forget_all_but(&self, in_use: &std::collections::HashSet<&str>) -> usize {
        let mut known = self.tags.write();
        self.changes.fetch_add(1, Ordering::AcqRel);
        let before = known.len();
        known.retain(|tag, _| in_use.contains(&**tag));
        let keep = self.max_tags / 2;
        if known.len() > keep {
            let excess: Vec<Arc<str>> = known.keys().take(known.len() - keep).cloned().collect();
            for tag in &excess {
                known.remove(tag);
            }
        }
        before - known.len()
    }

    /// How many tag versions the node knows.
    pub(crate) fn known_tags(&self) -> usize {
        self.tags.read().len()
    }

    /// Forgets every tag version (after an L1 drop).
    pub(crate) fn forget_tags(&self) {
        let mut known = self.tags.write();
        self.changes.fetch_add(1, Ordering::AcqRel);
        known.clear();
    }

    /// Marks the node suspect from now on, unless it already is. Returns true if it was not suspect.
    pub(crate) fn become_suspect(&self) -> bool {
        let now = (self.started.elapsed().as_nanos() as u64).max(1);
        self.suspect_since
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Ends suspicion; returns how long it lasted, if it was suspect.
    pub(crate) fn trust_again(&self) -> Option<std::time::Duration> {
        let since = self.suspect_since.swap(0, Ordering::AcqRel);
        (since != 0).then(|| {
            self.started
                .elapsed()
                .saturating_sub(std::time::Duration::from_nanos(since))
        })
    }

    pub(crate) fn is_suspect(&self) -> bool {
        self.suspect_since.load(Ordering::Acquire) != 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn entry(coherence: &Coherence, tags: &[(&str, u64)]) -> L1Entry {
        L1Entry::for_test(Duration::from_secs(60), tags, coherence.change_count())
    }

    #[test]
    fn a_tag_change_reaches_entries_already_trusted_without_the_lock() {
        let coherence = Coherence::new();
        let e = entry(&coherence, &[("a", 1), ("b", 2)]);
        assert_eq!(
            coherence.admit(&e.tags),
            Admission::Admit,
            "first sight of a and b"
        );
        assert_eq!(coherence.trust(&e), Trust::Trusted);
        assert_eq!(
            coherence.trust(&e),
            Trust::Trusted,
            "again, on the fast path"
        );
        coherence.set_tag_version("b", 3);
        assert_eq!(coherence.trust(&e), Trust::Invalid);
        assert_eq!(coherence.trust(&e), Trust::Invalid, "and stays so");
    }

    #[test]
    fn an_unrelated_change_costs_one_full_check_then_the_fast_path_again() {
        let coherence = Coherence::new();
        let e = entry(&coherence, &[("a", 1)]);
        coherence.admit(&e.tags);
        coherence.set_tag_version("other", 7);
        coherence.set_tag_version("other", 8);
        let before = e.tags_current_at.load(Ordering::Relaxed);
        assert_eq!(coherence.trust(&e), Trust::Trusted);
        let after = e.tags_current_at.load(Ordering::Relaxed);
        assert!(after > before, "re-stamped at the current count");
        assert_eq!(after, coherence.change_count());
        coherence.set_tag_version("a", 1);
        assert_eq!(
            coherence.change_count(),
            after,
            "setting a known tag to the version it has is no change"
        );
    }

    #[test]
    fn past_its_bound_the_tag_map_keeps_the_tags_in_use() {
        let coherence = Coherence::with_max_tags(4);
        let kept = entry(&coherence, &[("a", 1)]);
        let unused = entry(&coherence, &[("b", 1), ("c", 1), ("d", 1)]);
        assert_eq!(coherence.admit(&kept.tags), Admission::Admit);
        assert_eq!(coherence.admit(&unused.tags), Admission::Admit);
        let more = entry(&coherence, &[("e", 1)]);
        assert_eq!(
            coherence.admit(&more.tags),
            Admission::Overflow,
            "a fifth tag is over the bound"
        );
        let in_use = ["a"].into_iter().collect();
        assert_eq!(coherence.forget_all_but(&in_use), 3);
        assert_eq!(coherence.trust(&kept), Trust::Trusted, "its tag was kept");
        assert_eq!(
            coherence.trust(&unused),
            Trust::Invalid,
            "entries under forgotten tags go"
        );
        assert_eq!(coherence.admit(&more.tags), Admission::Admit);
        assert_eq!(coherence.known_tags(), 2);
    }

    #[test]
    fn tags_in_use_past_half_the_bound_are_forgotten_too() {
        let coherence = Coherence::with_max_tags(4);
        let e = entry(&coherence, &[("a", 1), ("b", 1), ("c", 1), ("d", 1)]);
        assert_eq!(coherence.admit(&e.tags), Admission::Admit);
        let in_use = ["a", "b", "c", "d"].into_iter().collect();
        assert_eq!(coherence.forget_all_but(&in_use), 2);
        assert_eq!(coherence.known_tags(), 2);
        assert_eq!(coherence.trust(&e), Trust::Invalid);
    }

    #[test]
    fn the_bus_says_when_the_map_is_over_its_bound() {
        let coherence = Coherence::with_max_tags(2);
        assert!(!coherence.set_tag_version("a", 1));
        assert!(!coherence.set_tag_version("b", 1));
        assert!(coherence.set_tag_version("c", 1));
    }

    #[test]
    fn forgetting_every_tag_distrusts_every_tagged_entry() {
        let coherence = Coherence::new();
        let tagged = entry(&coherence, &[("a", 1)]);
        let untagged = entry(&coherence, &[]);
        coherence.admit(&tagged.tags);
        assert_eq!(coherence.trust(&tagged), Trust::Trusted);
        coherence.forget_tags();
        assert_eq!(coherence.trust(&tagged), Trust::Invalid);
        assert_eq!(coherence.trust(&untagged), Trust::Trusted);
    }
}
