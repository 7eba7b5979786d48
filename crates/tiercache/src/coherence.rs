//! What this node knows about the validity of its L1 without asking Redis: the tag versions it has seen
//! and whether it may have missed an invalidation (suspect).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;

use crate::l1::L1Entry;

/// Above this many distinct tags the node forgets them all (and drops L1), rather than grow without bound.
const MAX_KNOWN_TAGS: usize = 1_000_000;

/// The node-local view of tag versions and trust.
pub(crate) struct Coherence {
    started: Instant,
    tags: RwLock<HashMap<Arc<str>, u64, ahash::RandomState>>,
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
    /// Too many tags; the node cleared its view and must drop L1.
    Overflow,
}

impl Coherence {
    pub(crate) fn new() -> Self {
        Coherence {
            started: Instant::now(),
            tags: RwLock::new(HashMap::default()),
            suspect_since: AtomicU64::new(0),
        }
    }

    /// Whether an L1 entry may be served: every tag still has the version it was loaded under, and the
    /// entry is not older than the moment the node became suspect.
    pub(crate) fn trust(&self, entry: &L1Entry) -> Trust {
        if !entry.tags.is_empty() {
            let known = self.tags.read();
            if !entry
                .tags
                .iter()
                .all(|(tag, version)| known.get(tag) == Some(version))
            {
                return Trust::Invalid;
            }
        }
        let since = self.suspect_since.load(Ordering::Acquire);
        if since != 0 && entry.inserted_at <= self.started + std::time::Duration::from_nanos(since)
        {
            return Trust::Suspect;
        }
        Trust::Trusted
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
        if known.len() + tags.len() > MAX_KNOWN_TAGS {
            known.clear();
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
    pub(crate) fn set_tag_version(&self, tag: &str, version: u64) {
        let mut known = self.tags.write();
        if let Some(v) = known.get_mut(tag) {
            *v = version;
        } else {
            known.insert(Arc::from(tag), version);
        }
    }

    /// Forgets every tag version (after an L1 drop).
    pub(crate) fn forget_tags(&self) {
        self.tags.write().clear();
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
