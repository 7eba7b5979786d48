//! [`LiveViews`]: the views readers are using, indexed by their tags, so a change can refresh them
//! in place instead of emptying them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::{TimeRange, WidgetData, WidgetFilters, WidgetType};

/// Views remembered at most. A new view that finds the registry full first sweeps out the views
/// not in use; past that it is not remembered (changes invalidate it instead of refreshing it).
const MAX_VIEWS: usize = 200_000;

/// A view is in use when it was read within this long. A change refreshes every view in use that it
/// reaches, and after its first refresh a view costs a change a few point lookups, not a query
/// (see [`catch_up`](crate::catch_up)): so views dashboards showed in the last minutes are kept
/// warm too, not only those on screen now, and a dashboard opened again finds them cached.
const IN_USE: Duration = Duration::from_secs(600);

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
    /// Its last answer computed in a snapshot, with the change it counts up to.
    known: Mutex<Option<Known>>,
}

/// A view's answer as of a change.
struct Known {
    as_of: i64,
    value: Arc<WidgetData>,
    /// What computing it took, for early refresh.
    load_time: Duration,
    /// When it was computed: about when it was stored, so its cache entry ends a lifetime later.
    at: Instant,
}

#[derive(Default)]
struct Registry {
    views: HashMap<String, Entry>,
    by_tag: HashMap<String, HashSet<String>>,
    /// When a full registry was last swept (seconds since it started), so a registry full of views
    /// in use is walked at most once per [`IN_USE`], not on every new view.
    swept_at: Option<u64>,
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
        if registry.views.contains_key(key) {
            return;
        }
        let sweep_due = registry
            .swept_at
            .is_none_or(|at| now >= at + IN_USE.as_secs());
        if registry.views.len() >= MAX_VIEWS && sweep_due {
            // Views of periods that moved on (yesterday's `today`) are never reached by a change
            // again: without this sweep they would fill the registry for good.
            registry.swept_at = Some(now);
            let idle: Vec<String> = registry
                .views
                .iter()
                .filter(|(_, e)| !self.in_use(e))
                .map(|(k, _)| k.clone())
                .collect();
            self.forget(&mut registry, &idle);
        }
        if registry.views.len() >= MAX_VIEWS {
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
                known: Mutex::new(None),
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

    /// Keeps `value` as `key`'s answer as of change `as_of` (computed in `load_time`), unless a
    /// later one is kept already; nothing when the view is not remembered.
    pub(crate) fn remember(
        &self,
        key: &str,
        as_of: i64,
        value: Arc<WidgetData>,
        load_time: Duration,
    ) {
        if let Some(entry) = self.registry.read().views.get(key) {
            let mut known = entry.known.lock();
            if known.as_ref().is_none_or(|k| k.as_of <= as_of) {
                *known = Some(Known {
                    as_of,
                    value,
                    load_time,
                    at: Instant::now(),
                });
            }
        }
    }

    /// `key`'s last kept answer: the change it counts up to, the answer, and what computing it took.
    pub(crate) fn known(&self, key: &str) -> Option<(i64, Arc<WidgetData>, Duration)> {
        let registry = self.registry.read();
        let known = registry.views.get(key)?.known.lock();
        known
            .as_ref()
            .map(|k| (k.as_of, k.value.clone(), k.load_time))
    }

    /// The views in use whose cache entry ends within `ahead` (computed a `lifetime(view)` ago or
    /// more, less `ahead`), or that have no answer kept yet; the most read lately first.
    pub(crate) fn due(
        &self,
        ahead: Duration,
        lifetime: impl Fn(&LiveView) -> Duration,
    ) -> Vec<LiveView> {
        let now = Instant::now();
        let registry = self.registry.read();
        let out: Vec<(u64, LiveView)> = registry
            .views
            .values()
            .filter(|e| self.in_use(e))
            .filter(|e| {
                e.known
                    .lock()
                    .as_ref()
                    .is_none_or(|k| k.at + lifetime(&e.view) <= now + ahead)
            })
            .map(|e| (e.reads.load(Ordering::Relaxed), e.view.clone()))
            .collect();
        drop(registry);
        hottest_first(out)
    }

    /// Whether `entry` was read within [`IN_USE`].
    fn in_use(&self, entry: &Entry) -> bool {
        entry.last_read.load(Ordering::Relaxed) >= self.now_s().saturating_sub(IN_USE.as_secs())
    }

    /// The views in use carrying any of `tags`, the most read lately first; views not in use are
    /// forgotten on the way.
    pub(crate) fn affected(&self, tags: &BTreeSet<String>) -> Vec<LiveView> {
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
                    if self.in_use(entry) {
                        out.push((entry.reads.load(Ordering::Relaxed), entry.view.clone()));
                    } else {
                        idle.push(key.clone());
                    }
                }
            }
        }
        if !idle.is_empty() {
            self.forget(&mut self.registry.write(), &idle);
        }
        hottest_first(out)
    }

    /// Forgets those of `keys` that are still not in use (one may have been read since it was
    /// found idle).
    fn forget(&self, registry: &mut Registry, keys: &[String]) {
        for key in keys {
            if registry.views.get(key).is_some_and(|e| self.in_use(e)) {
                continue;
            }
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

/// The views of `(reads, view)` pairs, the most read lately first.
fn hottest_first(mut views: Vec<(u64, LiveView)>) -> Vec<LiveView> {
    views.sort_by_key(|(reads, _)| std::cmp::Reverse(*reads));
    views.into_iter().map(|(_, view)| view).collect()
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
        let mut keys: Vec<String> = live.affected(&tags).into_iter().map(|v| v.key).collect();
        keys.sort();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(live.len(), 3);
    }
}
