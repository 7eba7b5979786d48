//! [`LiveViews`]: the views readers are using, indexed by their tags, so a change can refresh them
//! in place instead of emptying them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::{TimeRange, WidgetFilters, WidgetType};

/// Views remembered at most; past it new views are not remembered (they are invalidated, not
/// refreshed, by changes) until old ones are forgotten.
const MAX_VIEWS: usize = 200_000;

/// A view a reader asked for, as its key was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveView {
    /// The cache key it was read under (its period resolved when it was read).
    pub key: String,
    /// Its widget.
    pub widget: WidgetType,
    /// Its range.
    pub range: TimeRange,
    /// Its filters.
    pub filters: WidgetFilters,
}

struct Entry {
    view: LiveView,
    tags: Vec<String>,
    /// Seconds since the registry started, at the last read.
    last_read: AtomicU64,
    /// Reads since it was last refreshed, halved at each refresh: how hot it is lately.
    reads: AtomicU64,
}

#[derive(Default)]
struct Registry {
    views: HashMap<String, Entry>,
    by_tag: HashMap<String, HashSet<String>>,
}

/// The views this process's readers used lately, by key and by tag; clones share one registry.
///
/// [`WidgetCacheService::with_live_views`](crate::WidgetCacheService::with_live_views) records every
/// read in it (a lookup and a timestamp on a hit; the view's tags once, on its first read), and a
/// [`ChangeDispatcher`](crate::ChangeDispatcher) asks it which views a change affects.
///
/// ```
/// use tiercache_widgets::LiveViews;
/// let live = LiveViews::new();
/// assert!(live.is_empty());
/// ```
#[derive(Clone)]
pub struct LiveViews {
    registry: Arc<RwLock<Registry>>,
    started: Instant,
}

impl Default for LiveViews {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LiveViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveViews")
            .field("views", &self.len())
            .finish_non_exhaustive()
    }
}

impl LiveViews {
    /// An empty registry.
    pub fn new() -> Self {
        LiveViews {
            registry: Arc::new(RwLock::new(Registry::default())),
            started: Instant::now(),
        }
    }

    /// Views remembered now.
    pub fn len(&self) -> usize {
        self.registry.read().views.len()
    }

    /// Whether no view is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now_s(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Records a read of `key`; `describe` gives the view and its tags the first time.
    pub(crate) fn touch(&self, key: &str, describe: impl FnOnce() -> (LiveView, Vec<String>)) {
        let now = self.now_s();
        if let Some(entry) = self.registry.read().views.get(key) {
            entry.last_read.store(now, Ordering::Relaxed);
            entry.reads.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (view, tags) = describe();
        let mut registry = self.registry.write();
        if registry.views.len() >= MAX_VIEWS || registry.views.contains_key(key) {
            return;
        }
        for tag in &tags {
            registry
                .by_tag
                .entry(tag.clone())
                .or_default()
                .insert(key.to_owned());
        }
        registry.views.insert(
            key.to_owned(),
            Entry {
                view,
                tags,
                last_read: AtomicU64::new(now),
                reads: AtomicU64::new(1),
            },
        );
    }

    /// Halves `key`'s read count after a refresh, so the count follows how hot it is lately.
    pub(crate) fn refreshed(&self, key: &str) {
        if let Some(entry) = self.registry.read().views.get(key) {
            let reads = entry.reads.load(Ordering::Relaxed);
            entry.reads.store(reads / 2, Ordering::Relaxed);
        }
    }

    /// The views carrying any of `tags` that were read within `within`, the most read lately
    /// first; views not read for that long are forgotten on the way.
    pub(crate) fn affected(&self, tags: &BTreeSet<String>, within: Duration) -> Vec<LiveView> {
        let oldest = self.now_s().saturating_sub(within.as_secs());
        let mut keys: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        let mut idle = Vec::new();
        {
            let registry = self.registry.read();
            for tag in tags {
                let Some(tagged) = registry.by_tag.get(tag) else {
                    continue;
                };
                for key in tagged {
                    if !keys.insert(key) {
                        continue;
                    }
                    let Some(entry) = registry.views.get(key.as_str()) else {
                        continue;
                    };
                    if entry.last_read.load(Ordering::Relaxed) >= oldest {
                        out.push((entry.reads.load(Ordering::Relaxed), entry.view.clone()));
                    } else {
                        idle.push(key.clone());
                    }
                }
            }
        }
        if !idle.is_empty() {
            self.forget(&idle);
        }
        out.sort_by_key(|(reads, _)| std::cmp::Reverse(*reads));
        out.into_iter().map(|(_, view)| view).collect()
    }

    fn forget(&self, keys: &[String]) {
        let mut registry = self.registry.write();
        for key in keys {
            if let Some(entry) = registry.views.remove(key) {
                for tag in &entry.tags {
                    if let Some(tagged) = registry.by_tag.get_mut(tag) {
                        tagged.remove(key);
                        if tagged.is_empty() {
                            registry.by_tag.remove(tag);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(key: &str) -> LiveView {
        LiveView {
            key: key.into(),
            widget: WidgetType::TotalDonations,
            range: TimeRange::ThisMonth,
            filters: WidgetFilters::new(),
        }
    }

    #[test]
    fn a_change_finds_the_views_that_carry_its_tags_once_each() {
        let live = LiveViews::new();
        live.touch("a", || (view("a"), vec!["x".into(), "y".into()]));
        live.touch("b", || (view("b"), vec!["y".into()]));
        live.touch("c", || (view("c"), vec!["z".into()]));
        // A second read does not describe the view again.
        live.touch("a", || unreachable!("described once"));
        let tags: BTreeSet<String> = ["x".to_owned(), "y".to_owned()].into();
        let mut keys: Vec<String> = live
            .affected(&tags, Duration::from_secs(60))
            .into_iter()
            .map(|v| v.key)
            .collect();
        keys.sort();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(live.len(), 3);
    }
}
