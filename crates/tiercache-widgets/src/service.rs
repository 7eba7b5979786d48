//! [`WidgetCacheService`]: widget views through the two-tier cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use tiercache::{Cache, EntryOptions, Fetched};

use crate::clock::{Clock, SystemClock};
use crate::data::{WidgetData, WidgetDataAggregationService};
use crate::error::WidgetError;
use crate::key::render_key;
use crate::live_views::{LiveView, LiveViews};
use crate::metrics::{WidgetCacheMetricsService, SAMPLE_EVERY};
use crate::tags::{tags_for_entry, widget_range_tag};
use crate::{LoadTimeouts, TimeRange, TtlStrategy, TtlTiers, WidgetFilters, WidgetType};

/// Serves widget views from the cache, computing them from its data source on a miss.
///
/// Each call reads the clock once: the view's range resolves at that instant, its key names the
/// resolved period, its lifetime ends at the range's next boundary, and a miss computes the view at
/// that same instant, so the figures belong to the period the key names even when the call
/// straddles a boundary.
#[derive(Clone)]
pub struct WidgetCacheService {
    cache: Cache,
    data: WidgetDataAggregationService,
    ttl: TtlStrategy,
    timeouts: LoadTimeouts,
    metrics: WidgetCacheMetricsService,
    clock: Arc<dyn Clock>,
    campaigns: CampaignOrganizations,
    schedule: Option<Arc<Schedule>>,
    live: Option<LiveViews>,
}

/// The snapshot task of a service; stopped when the last clone of the service is dropped.
struct Schedule(tokio::task::JoinHandle<()>);

impl Drop for Schedule {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How many campaigns' organisations a service remembers; past that it asks the database each time.
const CAMPAIGNS_KEPT: usize = 65_536;

/// The organisation of each campaign a view filters on, looked up once and kept: a campaign never
/// changes organisation, and knowing it lets organisation-wide invalidations pass other
/// organisations' campaign views by. A campaign not found is kept as unknown too (so asking for one
/// costs no query per read); its views carry no organisation and are refreshed by every
/// organisation-wide invalidation: wider, never missed.
#[derive(Clone)]
struct CampaignOrganizations {
    data: WidgetDataAggregationService,
    known: Arc<RwLock<HashMap<i64, Option<i64>>>>,
}

impl CampaignOrganizations {
    async fn of(&self, campaign_id: i64) -> Option<i64> {
        if let Some(org) = self.known.read().get(&campaign_id) {
            return *org;
        }
        match self.data.organization_of(campaign_id).await {
            Ok(org) => {
                let mut known = self.known.write();
                if known.len() < CAMPAIGNS_KEPT {
                    known.insert(campaign_id, org);
                }
                org
            }
            Err(e) => {
                // Without it the view's tags are only wider: correct, refreshed a little more often.
                tracing::warn!(campaign_id, error = %e, "could not look up a campaign's organisation");
                None
            }
        }
    }
}

impl std::fmt::Debug for WidgetCacheService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidgetCacheService")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl WidgetCacheService {
    /// Records every read in `live`, so a [`ChangeDispatcher`](crate::ChangeDispatcher) sharing it
    /// refreshes the views readers use when a change affects them, instead of emptying them.
    #[must_use]
    pub fn with_live_views(mut self, live: LiveViews) -> Self {
        self.live = Some(live);
        self
    }

    /// A service over `cache` that computes views from `data` on a miss, with the documented TTL
    /// table, recording into `metrics`.
    ///
    /// It also looks up in `data` the organisation of each campaign a view filters on, so that
    /// invalidating `organization:<id>` (or a change to another organisation) passes that
    /// campaign's views by when it belongs to another organisation.
    pub fn new(
        cache: Cache,
        data: WidgetDataAggregationService,
        metrics: WidgetCacheMetricsService,
    ) -> Self {
        WidgetCacheService {
            cache,
            campaigns: CampaignOrganizations {
                data: data.clone(),
                known: Arc::default(),
            },
            data,
            ttl: TtlStrategy::new(),
            timeouts: LoadTimeouts::default(),
            metrics,
            clock: Arc::new(SystemClock),
            schedule: None,
            live: None,
        }
    }

    /// Samples the metrics every [`SAMPLE_EVERY`] (or `interval`, if shorter) so their 1, 5 and
    /// 15 minute windows stay accurate, and records a snapshot into the metrics' history every
    /// `interval` (at least 1 ms). The task stops when the last clone of this service is dropped;
    /// calling this again replaces it.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache, data: tiercache_widgets::WidgetDataAggregationService) -> Result<(), tiercache_widgets::WidgetError> {
    /// use std::time::Duration;
    /// use tiercache_widgets::{WidgetCacheMetricsService, WidgetCacheService};
    /// let metrics = WidgetCacheMetricsService::for_cache(&cache);
    /// let widgets =
    ///     WidgetCacheService::new(cache, data, metrics).with_snapshots(Duration::from_secs(60));
    /// # drop(widgets); Ok(()) }
    /// ```
    #[must_use]
    pub fn with_snapshots(mut self, interval: Duration) -> Self {
        let interval = interval.max(Duration::from_millis(1));
        let (cache, metrics) = (self.cache.clone(), self.metrics.clone());
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SAMPLE_EVERY.min(interval));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next_record = tokio::time::Instant::now() + interval;
            loop {
                let now = ticks.tick().await;
                if now < next_record {
                    metrics.sample(&cache);
                    continue;
                }
                next_record = now + interval;
                let snapshot = metrics.snapshot(&cache).await;
                if let Err(e) = metrics.record_snapshot(&snapshot).await {
                    tracing::warn!(error = %e, "could not record a metrics snapshot");
                }
            }
        });
        self.schedule = Some(Arc::new(Schedule(task)));
        self
    }

    /// Resolves time ranges against `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The instant a call made now resolves its range at.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Replaces the load timeouts (default [`LoadTimeouts::default`]; an operator's come from
    /// [`LoadTimeouts::from_env`]).
    #[must_use]
    pub fn with_load_timeouts(mut self, timeouts: LoadTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Replaces the TTL strategy.
    #[must_use]
    pub fn with_ttl_strategy(mut self, ttl: TtlStrategy) -> Self {
        self.ttl = ttl;
        self
    }

    /// Gives the TTL tiers these durations (default [`TtlTiers::default`]; an operator's come from
    /// [`crate::WidgetConfig::from_env`]), keeping the strategy's overrides.
    #[must_use]
    pub fn with_ttl_tiers(mut self, tiers: TtlTiers) -> Self {
        self.ttl = self.ttl.with_tiers(tiers);
        self
    }

    /// The cache underneath.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The data source views are computed from.
    pub fn data(&self) -> &WidgetDataAggregationService {
        &self.data
    }

    /// The metrics this service records into.
    pub fn metrics(&self) -> &WidgetCacheMetricsService {
        &self.metrics
    }

    /// Lifetime, tags and load timeouts of a view: a dozen formatted strings and a calendar lookup, so
    /// reads build them only when the cache needs them (a miss or a refresh), not on every L1 hit.
    /// Fail-safe is on: past the soft timeout, or when the computation fails, the last value answers.
    fn entry_options(
        &self,
        widget: WidgetType,
        range: &TimeRange,
        filters: &WidgetFilters,
        campaign_organization: Option<i64>,
        now: DateTime<Utc>,
    ) -> EntryOptions {
        let ttl = self.ttl.ttl(widget, range, now, self.cache.config());
        EntryOptions::new(ttl)
            .with_tags(tags_for_entry(
                widget,
                range,
                filters,
                campaign_organization,
            ))
            .with_soft_timeout(self.timeouts.soft)
            .with_hard_timeout(self.timeouts.hard)
            .with_fail_safe(true)
    }

    /// The organisation the view's campaign filter implies, when the view names no organisation.
    async fn campaign_organization(&self, filters: &WidgetFilters) -> Option<i64> {
        match filters.campaign_id() {
            Some(c) if filters.organization_id().is_none() => self.campaigns.of(c).await,
            _ => None,
        }
    }

    /// One view: from L1, L2, or (once for the fleet) computed from the service's data on a miss,
    /// saying which tier answered (L1, L2, a load on this node, or a stale fail-safe value). A load
    /// computes the view in one snapshot of the store at the instant the range resolved at, and the
    /// live views (see [`WidgetCacheService::with_live_views`]) keep the answer with the change it
    /// counts up to, so a [`ChangeDispatcher`](crate::ChangeDispatcher) brings the view forward
    /// from it when a change reaches it instead of recomputing it.
    ///
    /// ```no_run
    /// # async fn run(widgets: tiercache_widgets::WidgetCacheService) -> Result<(), tiercache_widgets::WidgetError> {
    /// use tiercache_widgets::{TimeRange, WidgetFilters, WidgetType};
    /// let fetched = widgets
    ///     .fetch_view(WidgetType::TopDonors, TimeRange::ThisYear, WidgetFilters::new())
    ///     .await?;
    /// println!("{:?} from {}", fetched.value, fetched.source);
    /// # Ok(()) }
    /// ```
    pub async fn fetch_view(
        &self,
        widget: WidgetType,
        range: TimeRange,
        filters: WidgetFilters,
    ) -> Result<Fetched<WidgetData>, WidgetError> {
        let now = self.clock.now();
        let key = render_key(widget, &range, &filters, now);
        let started = Instant::now();
        let org = self.campaign_organization(&filters).await;
        if let Some(live) = &self.live {
            live.touch(&key, || {
                let tags = tags_for_entry(widget, &range, &filters, org);
                let view = LiveView {
                    key: key.clone(),
                    widget,
                    range,
                    filters: filters.clone(),
                };
                (view, tags)
            });
        }
        let result = self
            .load(
                &key,
                (widget, range, &filters),
                org,
                now,
                &self.data,
                self.live.as_ref(),
            )
            .await;
        self.metrics.record(
            widget,
            result.as_ref().ok().map(|f| f.source),
            started.elapsed(),
        );
        Ok(result?)
    }

    /// Many views in one call, as a dashboard opens them: those L1 holds at once, the rest read
    /// from L2 together, and those missing everywhere computed in one snapshot of the service's
    /// data, once for the fleet (see [`Cache::fetch_many`]). One clock reading for all, so every
    /// view names the same instant; each answer on its own, in the order asked.
    ///
    /// ```no_run
    /// # async fn run(widgets: tiercache_widgets::WidgetCacheService) {
    /// use tiercache_widgets::{TimeRange, WidgetFilters, WidgetType};
    /// let views: Vec<_> = WidgetType::ALL
    ///     .iter()
    ///     .map(|&widget| (widget, TimeRange::ThisMonth, WidgetFilters::new()))
    ///     .collect();
    /// for (view, answer) in views.iter().zip(widgets.fetch_views(&views).await) {
    ///     match answer {
    ///         Ok(fetched) => println!("{}: {:?} from {}", view.0, fetched.value, fetched.source),
    ///         Err(e) => println!("{}: {e}", view.0),
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn fetch_views(
        &self,
        views: &[(WidgetType, TimeRange, WidgetFilters)],
    ) -> Vec<Result<Fetched<WidgetData>, WidgetError>> {
        let now = self.clock.now();
        let started = Instant::now();
        let mut asked = Vec::with_capacity(views.len());
        let mut by_key = HashMap::with_capacity(views.len());
        for (widget, range, filters) in views {
            let key = render_key(*widget, range, filters, now);
            let org = self.campaign_organization(filters).await;
            if let Some(live) = &self.live {
                live.touch(&key, || {
                    let view = LiveView {
                        key: key.clone(),
                        widget: *widget,
                        range: *range,
                        filters: filters.clone(),
                    };
                    (view, tags_for_entry(*widget, range, filters, org))
                });
            }
            by_key.insert(key.clone(), (*widget, *range, filters.clone()));
            asked.push((key, org));
        }
        let (data, live, by_key) = (self.data.clone(), self.live.clone(), Arc::new(by_key));
        let loader = move |keys: Vec<String>| {
            let (data, live, by_key) = (data.clone(), live.clone(), by_key.clone());
            async move { compute_many_and_keep(&data, live.as_ref(), &by_key, keys, now).await }
        };
        let requests = asked.iter().zip(views).map(|((key, org), view)| {
            let (widget, range, filters) = view;
            let opts = move || self.entry_options(*widget, range, filters, *org, now);
            (key.as_str(), EntryOptions::lazy(opts))
        });
        let answers = self.cache.fetch_many(requests, loader).await;
        let took = started.elapsed();
        views
            .iter()
            .zip(answers)
            .map(|((widget, _, _), answer)| {
                self.metrics
                    .record(*widget, answer.as_ref().ok().map(|f| f.source), took);
                Ok(answer?)
            })
            .collect()
    }

    /// Computes a view now from the service's data and stores it in both tiers on every node,
    /// whatever was cached, with the time computing it took (so probabilistic early refresh treats
    /// it like a loaded view).
    pub async fn warm_view(
        &self,
        widget: WidgetType,
        range: TimeRange,
        filters: WidgetFilters,
    ) -> Result<(), WidgetError> {
        let now = self.clock.now();
        let key = render_key(widget, &range, &filters, now);
        let started = Instant::now();
        let value = compute_and_keep(
            &self.data,
            self.live.as_ref(),
            widget,
            range,
            filters.clone(),
            now,
        );
        let value = checked(widget, value.await)?;
        let view = LiveView {
            key: key.clone(),
            widget,
            range,
            filters,
        };
        let prepared = self.ready(&view, key, now, value, started.elapsed()).await;
        self.store(prepared).await
    }

    /// `view`'s key at `now`, when its period has not moved since it was read (otherwise that key
    /// is no one's now).
    fn current_key(view: &LiveView, now: DateTime<Utc>) -> Option<String> {
        let key = render_key(view.widget, &view.range, &view.filters, now);
        (key == view.key).then_some(key)
    }

    /// How long `view` stays cached when stored at `now`.
    pub(crate) fn lifetime(&self, view: &LiveView, now: DateTime<Utc>) -> Duration {
        self.ttl
            .ttl(view.widget, &view.range, now, self.cache.config())
    }

    /// `view`'s key and bounds (Unix seconds) at `now`; `None` when its period moved since it was
    /// read.
    pub(crate) fn current(view: &LiveView, now: DateTime<Utc>) -> Option<(String, i64, i64)> {
        let key = Self::current_key(view, now)?;
        let (start, end) = view.range.resolve(now);
        Some((key, start.timestamp(), end.timestamp()))
    }

    /// `value`, computed for `view` at `now` (its key `key`), with the lifetime and tags a read
    /// would give it and `load_time` (what a recompute of it takes, for early refresh).
    pub(crate) async fn ready(
        &self,
        view: &LiveView,
        key: String,
        now: DateTime<Utc>,
        value: WidgetData,
        load_time: Duration,
    ) -> PreparedView {
        let org = self.campaign_organization(&view.filters).await;
        let opts = self.entry_options(view.widget, &view.range, &view.filters, org, now);
        PreparedView {
            key,
            opts: opts.with_load_time(load_time),
            value,
        }
    }

    /// Loads `view` through the cache's load path, as a reader's miss would but without counting
    /// as a read: coalesced with readers' loads of it across the fleet, and not stored when an
    /// invalidation overtakes it. Nothing to do when it is cached again already, or when its period
    /// moved since it was read. What it computes is kept in `live` with the change id it counts up
    /// to, so the next batch brings the view forward.
    pub(crate) async fn reload(
        &self,
        view: &LiveView,
        data: &WidgetDataAggregationService,
        live: &LiveViews,
    ) -> Result<(), WidgetError> {
        let now = self.clock.now();
        let Some(key) = Self::current_key(view, now) else {
            return Ok(());
        };
        let org = self.campaign_organization(&view.filters).await;
        let view_of = (view.widget, view.range, &view.filters);
        self.load(&key, view_of, org, now, data, Some(live)).await?;
        Ok(())
    }

    /// Loads `key`, the view `(widget, range, filters)` at `now`, through the cache's load path:
    /// coalesced with every other load of it across the fleet, and on a miss computed in one
    /// snapshot of `data` and kept in `live` (when given) with the change id it counts up to.
    async fn load(
        &self,
        key: &str,
        (widget, range, filters): (WidgetType, TimeRange, &WidgetFilters),
        org: Option<i64>,
        now: DateTime<Utc>,
        data: &WidgetDataAggregationService,
        live: Option<&LiveViews>,
    ) -> Result<Fetched<WidgetData>, tiercache::Error> {
        let (data, live, owned) = (data.clone(), live.cloned(), filters.clone());
        self.cache
            .fetch(
                key,
                EntryOptions::lazy(|| self.entry_options(widget, &range, filters, org, now)),
                move || async move {
                    let value =
                        compute_and_keep(&data, live.as_ref(), widget, range, owned, now).await;
                    checked(widget, value)
                },
            )
            .await
    }

    /// Invalidates `tags` on every node and stores `prepared` in the same step (see
    /// [`Cache::invalidate_tags_and_set`]): no reader finds one of them empty in between. Returns
    /// how many were stored.
    pub(crate) async fn store_replacing(
        &self,
        tags: &std::collections::BTreeSet<String>,
        prepared: Vec<PreparedView>,
    ) -> Result<usize, WidgetError> {
        let tags: Vec<String> = tags.iter().cloned().collect();
        let entries = prepared
            .into_iter()
            .map(|p| (p.key, p.value, p.opts))
            .collect();
        Ok(self.cache.invalidate_tags_and_set(&tags, entries).await?)
    }

    /// Stores a prepared view in both tiers on every node (fencing loads of it still running).
    pub(crate) async fn store(&self, prepared: PreparedView) -> Result<(), WidgetError> {
        self.cache
            .set(&prepared.key, prepared.value, &prepared.opts)
            .await?;
        Ok(())
    }

    /// Invalidates every filter variant of one widget and range, on every node, with one tag.
    pub async fn invalidate_widget(
        &self,
        widget: WidgetType,
        range: TimeRange,
    ) -> Result<(), WidgetError> {
        self.cache
            .invalidate_tags([widget_range_tag(widget, &range)])
            .await?;
        Ok(())
    }
}

/// A view computed for a refresh, ready to store.
pub(crate) struct PreparedView {
    key: String,
    opts: EntryOptions,
    value: WidgetData,
}

/// `widget`'s answer over `range` at `now` for `filters`, computed in one snapshot of `data`, and
/// kept in `live` (when given) with the change id it counts up to, so a dispatcher brings the view
/// forward from it instead of recomputing it.
async fn compute_and_keep(
    data: &WidgetDataAggregationService,
    live: Option<&LiveViews>,
    widget: WidgetType,
    range: TimeRange,
    filters: WidgetFilters,
    now: DateTime<Utc>,
) -> Result<WidgetData, WidgetError> {
    let (as_of, value, took) = data
        .compute_as_of(widget, range, filters.clone(), now)
        .await?;
    if let Some(live) = live {
        let key = render_key(widget, &range, &filters, now);
        live.remember(&key, as_of, Arc::new(value.clone()), took);
    }
    Ok(value)
}

/// The views `keys` name (their descriptions in `views`), computed at `now` in one snapshot of
/// `data` and kept in `live` (when given) with the change id they count up to.
async fn compute_many_and_keep(
    data: &WidgetDataAggregationService,
    live: Option<&LiveViews>,
    views: &HashMap<String, (WidgetType, TimeRange, WidgetFilters)>,
    keys: Vec<String>,
    now: DateTime<Utc>,
) -> Result<Vec<(String, WidgetData)>, WidgetError> {
    // The cache asks only for keys it was given, each once; a key it did not get fails alone.
    let asked: Vec<(String, (WidgetType, TimeRange, WidgetFilters))> = keys
        .into_iter()
        .filter_map(|key| views.get(&key).cloned().map(|view| (key, view)))
        .collect();
    let jobs = asked.iter().map(|(_, view)| view.clone()).collect();
    let (as_of, computed) = data.compute_many_as_of(jobs, now).await?;
    let mut out = Vec::with_capacity(asked.len());
    for ((key, (widget, _, _)), (value, took)) in asked.into_iter().zip(computed) {
        let value = checked(widget, Ok(value))?;
        if let Some(live) = live {
            live.remember(&key, as_of, Arc::new(value.clone()), took);
        }
        out.push((key, value));
    }
    Ok(out)
}

fn checked(
    widget: WidgetType,
    data: Result<WidgetData, WidgetError>,
) -> Result<WidgetData, WidgetError> {
    let data = data?;
    if data.widget() == widget {
        Ok(data)
    } else {
        Err(WidgetError::WrongData {
            expected: widget.to_string(),
            got: data.widget().to_string(),
        })
    }
}
