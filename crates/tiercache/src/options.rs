//! Per-entry options: lifetime, tags, and the fail-safe and timeout behaviour of its loads.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifetime {
    Fixed(Duration),
    /// The node's [`Config::default_ttl`], read when the entry is stored.
    ConfiguredDefault,
}

/// How one entry is cached.
///
/// ```
/// use std::time::Duration;
/// use tiercache::EntryOptions;
///
/// let opts = EntryOptions::new(Duration::from_secs(900)).with_tags(["donation", "campaign:123"]);
/// assert_eq!(opts.tags().len(), 2);
/// let usual = EntryOptions::default_ttl(); // as long as the node's TIERCACHE_DEFAULT_TTL
/// assert_eq!(usual.ttl(&tiercache::Config::default()), Duration::from_secs(900));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EntryOptions {
    lifetime: Lifetime,
    tags: Arc<[String]>,
    soft_timeout: Option<Duration>,
    hard_timeout: Option<Duration>,
    fail_safe: bool,
    load_time: Duration,
}

impl EntryOptions {
    /// An entry that is fresh for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        EntryOptions {
            lifetime: Lifetime::Fixed(ttl),
            tags: Arc::from(Vec::new()),
            soft_timeout: None,
            hard_timeout: None,
            fail_safe: true,
            load_time: Duration::ZERO,
        }
    }

    /// Options that `build` makes only when a read needs them: on a miss, or when an L1 hit is due
    /// for a refresh. For callers whose options cost something to build (a dozen formatted tags, a
    /// TTL from a calendar) and whose reads are nearly all L1 hits; pass the result where
    /// [`crate::Cache::get_or_load`] or [`crate::Cache::fetch`] take options.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// use tiercache::EntryOptions;
    /// let total = cache
    ///     .get_or_load(
    ///         "total_donations:this_month",
    ///         EntryOptions::lazy(|| EntryOptions::new(Duration::from_secs(900)).with_tags(["donation"])),
    ///         || async { Ok::<_, std::io::Error>(42_u64) },
    ///     )
    ///     .await?;
    /// assert_eq!(*total, 42);
    /// # Ok(()) }
    /// ```
    pub fn lazy<F>(build: F) -> LazyOptions<F>
    where
        F: FnOnce() -> EntryOptions,
    {
        LazyOptions(build)
    }

    /// An entry that is fresh for the cache's default TTL ([`Config::default_ttl`]), so one setting
    /// tunes every entry that has no lifetime of its own.
    pub fn default_ttl() -> Self {
        EntryOptions {
            lifetime: Lifetime::ConfiguredDefault,
            ..EntryOptions::new(Duration::ZERO)
        }
    }

    /// Attaches tags; [`crate::Cache::invalidate_tags`] on any of them invalidates the entry everywhere.
    ///
    /// Tags are hierarchical by convention — `organization:1`, `campaign:123`, `donation` — and an entry
    /// should carry every level it depends on, because invalidating `organization:1` does not reach entries
    /// that only carry `campaign:123`. Duplicate tags are removed.
    #[must_use]
    pub fn with_tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut all: Vec<String> = self
            .tags
            .iter()
            .cloned()
            .chain(tags.into_iter().map(Into::into))
            .collect();
        all.sort_unstable();
        all.dedup();
        self.tags = Arc::from(all);
        self
    }

    /// After `timeout`, a load that has a stale value to fall back on serves it and finishes in the
    /// background. Default: none.
    #[must_use]
    pub fn with_soft_timeout(mut self, timeout: Duration) -> Self {
        self.soft_timeout = Some(timeout);
        self
    }

    /// After `timeout`, a load with nothing stale to serve fails with [`crate::Error::LoaderTimeout`].
    /// Default: none (the loader decides).
    #[must_use]
    pub fn with_hard_timeout(mut self, timeout: Duration) -> Self {
        self.hard_timeout = Some(timeout);
        self
    }

    /// Whether an expired value may be served when the loader fails (default: true).
    #[must_use]
    pub fn with_fail_safe(mut self, enabled: bool) -> Self {
        self.fail_safe = enabled;
        self
    }

    /// How long the value given to [`crate::Cache::set`] took to compute (default: zero). It is stored
    /// with the value, as a load's own measured time is, so probabilistic early refresh
    /// ([`crate::RefreshMode::XFetch`]) starts refreshing a slow value early enough; with zero it never
    /// refreshes early. Loads measure their own time and ignore this.
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = tiercache::EntryOptions::new(Duration::from_secs(60)).with_load_time(Duration::from_millis(350));
    /// assert_eq!(opts.load_time(), Duration::from_millis(350));
    /// ```
    #[must_use]
    pub fn with_load_time(mut self, took: Duration) -> Self {
        self.load_time = took;
        self
    }

    /// The compute time [`crate::Cache::set`] stores with the value.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// The tags, sorted and without duplicates.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The soft timeout, if any.
    pub fn soft_timeout(&self) -> Option<Duration> {
        self.soft_timeout
    }

    /// The hard timeout, if any.
    pub fn hard_timeout(&self) -> Option<Duration> {
        self.hard_timeout
    }

    /// Whether fail-safe is on.
    pub fn fail_safe(&self) -> bool {
        self.fail_safe
    }

    /// The freshness lifetime on a node configured by `config`.
    pub fn ttl(&self, config: &Config) -> Duration {
        match self.lifetime {
            Lifetime::Fixed(d) => d,
            Lifetime::ConfiguredDefault => config.default_ttl,
        }
    }
}

/// Entry options built only when a read needs them; made by [`EntryOptions::lazy`].
#[must_use = "options do nothing until a read is given them"]
#[derive(Clone, Copy)]
pub struct LazyOptions<F>(F);

impl<F> std::fmt::Debug for LazyOptions<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyOptions(..)")
    }
}

/// What [`crate::Cache::get_or_load`] and [`crate::Cache::fetch`] take as the options a loaded
/// value is stored with: `&EntryOptions`, ready before the call, or [`LazyOptions`] from
/// [`EntryOptions::lazy`], built only on a miss or a refresh. Sealed: these two are the only ways.
pub trait IntoEntryOptions<'o>: sealed::Sealed {
    /// The options, built now if they were lazy.
    fn into_entry_options(self) -> Cow<'o, EntryOptions>;
}

impl<'o> IntoEntryOptions<'o> for &'o EntryOptions {
    fn into_entry_options(self) -> Cow<'o, EntryOptions> {
        Cow::Borrowed(self)
    }
}

impl<'o, F> IntoEntryOptions<'o> for LazyOptions<F>
where
    F: FnOnce() -> EntryOptions,
{
    fn into_entry_options(self) -> Cow<'o, EntryOptions> {
        Cow::Owned((self.0)())
    }
}

mod sealed {
    /// Keeps [`super::IntoEntryOptions`] to the implementations above, so it can change without
    /// breaking a caller.
    pub trait Sealed {}

    impl Sealed for &super::EntryOptions {}

    impl<F> Sealed for super::LazyOptions<F> {}
}
