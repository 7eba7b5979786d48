//! [`WidgetCacheService`]: widget views through the two-tier cache.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tiercache::{Cache, EntryOptions, Fetched};

use crate::data::WidgetData;
use crate::error::WidgetError;
use crate::metrics::WidgetCacheMetricsService;
use crate::tags::{tags_for_entry, widget_range_tag};
use crate::{TimeRange, TtlStrategy, WidgetFilters, WidgetKey, WidgetType};

/// Serves widget views from the cache, computing them with a provider on a miss.
#[derive(Clone)]
pub struct WidgetCacheService {
    cache: Cache,
    ttl: TtlStrategy,
    metrics: WidgetCacheMetricsService,
}

impl std::fmt::Debug for WidgetCacheService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidgetCacheService")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl WidgetCacheService {
    /// A service over `cache` with the documented TTL table, recording into `metrics`.
    pub fn new(cache: Cache, metrics: WidgetCacheMetricsService) -> Self {
        WidgetCacheService {
            cache,
            ttl: TtlStrategy::new(),
            metrics,
        }
    }

    /// Replaces the TTL strategy.
    #[must_use]
    pub fn with_ttl_strategy(mut self, ttl: TtlStrategy) -> Self {
        self.ttl = ttl;
        self
    }

    /// The cache underneath.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The metrics this service records into.
    pub fn metrics(&self) -> &WidgetCacheMetricsService {
        &self.metrics
    }

    fn key(widget: WidgetType, range: &TimeRange, filters: &WidgetFilters) -> String {
        WidgetKey::new(widget, *range, filters.clone()).to_string()
    }

    /// TTL tier and tags of a view: a dozen formatted strings and a calendar lookup, so reads build
    /// them only when the cache needs them (a miss or a refresh), not on every L1 hit.
    fn entry_options(
        &self,
        widget: WidgetType,
        range: &TimeRange,
        filters: &WidgetFilters,
    ) -> EntryOptions {
        let now = Utc::now();
        let tier = self.ttl.tier(widget, range, now);
        EntryOptions::tier(tier).with_tags(tags_for_entry(widget, range, filters, now))
    }

    /// The data of one view: from L1, L2, or `provider` (once for the fleet) on a miss.
    pub async fn get_widget_data<P, Fut>(
        &self,
        widget: WidgetType,
        range: TimeRange,
        filters: WidgetFilters,
        provider: P,
    ) -> Result<Arc<WidgetData>, WidgetError>
    where
        P: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<WidgetData, WidgetError>> + Send + 'static,
    {
        Ok(self
            .fetch_widget_data(widget, range, filters, provider)
            .await?
            .value)
    }

    /// [`WidgetCacheService::get_widget_data`] that also says which tier answered (L1, L2, a load on
    /// this node, or a stale fail-safe value), for dashboards that show where a figure came from.
    pub async fn fetch_widget_data<P, Fut>(
        &self,
        widget: WidgetType,
        range: TimeRange,
        filters: WidgetFilters,
        provider: P,
    ) -> Result<Fetched<WidgetData>, WidgetError>
    where
        P: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<WidgetData, WidgetError>> + Send + 'static,
    {
        let key = Self::key(widget, &range, &filters);
        // A miss is a call whose own provider ran: callers that shared another's load cost no query.
        let computed = Arc::new(AtomicBool::new(false));
        let flag = computed.clone();
        let started = Instant::now();
        let result = self
            .cache
            .fetch_with(
                &key,
                || self.entry_options(widget, &range, &filters),
                move || async move {
                    flag.store(true, Ordering::Relaxed);
                    checked(widget, provider().await)
                },
            )
            .await;
        self.metrics.record(
            widget,
            !computed.load(Ordering::Relaxed),
            started.elapsed(),
            result.is_err(),
        );
        Ok(result?)
    }

    /// Computes a view now and stores it in both tiers on every node, whatever was cached.
    pub async fn warmup_widget<P, Fut>(
        &self,
        widget: WidgetType,
        range: TimeRange,
        filters: WidgetFilters,
        provider: P,
    ) -> Result<(), WidgetError>
    where
        P: FnOnce() -> Fut,
        Fut: Future<Output = Result<WidgetData, WidgetError>>,
    {
        let (key, opts) = (
            Self::key(widget, &range, &filters),
            self.entry_options(widget, &range, &filters),
        );
        let data = checked(widget, provider().await)?;
        self.cache.set(&key, data, &opts).await?;
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
