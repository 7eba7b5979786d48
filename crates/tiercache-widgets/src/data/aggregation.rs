//! [`WidgetDataAggregationService`]: the widget queries and writes of a [`DonationStore`], run off
//! the async runtime.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::generator::DatasetSize;
use super::model::{Campaign, NewCampaign, NewDonation, OrganizationEntry, WidgetData};
use super::outbox::{Change, PendingChange};
use super::sqlite::SqliteStore;
use super::store::{AggregatePath, DonationStore};
use crate::error::WidgetError;
use crate::{TimeRange, WidgetFilters, WidgetType};

/// Computes widget data from a store and records donations.
///
/// ```no_run
/// # async fn run() -> Result<(), tiercache_widgets::WidgetError> {
/// use tiercache_widgets::{DatasetSize, TimeRange, WidgetDataAggregationService, WidgetFilters, WidgetType};
/// let data = WidgetDataAggregationService::open("demo.sqlite3")?;
/// data.generate_if_empty(DatasetSize::small(), 42, chrono::Utc::now()).await?;
/// let total = data.compute(WidgetType::TotalDonations, TimeRange::ThisMonth, WidgetFilters::new(), chrono::Utc::now()).await?;
/// # let _ = total; Ok(()) }
/// ```
#[derive(Clone)]
pub struct WidgetDataAggregationService {
    store: Arc<dyn DonationStore>,
}

impl std::fmt::Debug for WidgetDataAggregationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidgetDataAggregationService")
            .finish_non_exhaustive()
    }
}

impl WidgetDataAggregationService {
    /// Opens (creating if needed) a SQLite database file, its schema and its rollups.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, WidgetError> {
        Ok(Self::over(SqliteStore::open(path)?))
    }

    /// A service over any store.
    pub fn over(store: impl DonationStore) -> Self {
        WidgetDataAggregationService {
            store: Arc::new(store),
        }
    }

    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn DonationStore) -> Result<R, WidgetError> + Send + 'static,
    ) -> Result<R, WidgetError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| WidgetError::Task(e.to_string()))?
    }

    /// Generates the synthetic dataset, ending at `now`, unless donations already exist. Returns
    /// donations written.
    pub async fn generate_if_empty(
        &self,
        size: DatasetSize,
        seed: u64,
        now: DateTime<Utc>,
    ) -> Result<i64, WidgetError> {
        self.blocking(move |store| store.generate_if_empty(size, seed, now.timestamp()))
            .await
    }

    /// Computes one widget view at `now`, from the rollups.
    pub async fn compute(
        &self,
        widget: WidgetType,
        range: TimeRange,
        filters: WidgetFilters,
        now: DateTime<Utc>,
    ) -> Result<WidgetData, WidgetError> {
        self.compute_by(widget, range, filters, now, AggregatePath::Rollups)
            .await
    }

    /// Computes one widget view at `now` the way `path` says (the raw rows are the reference).
    pub async fn compute_by(
        &self,
        widget: WidgetType,
        range: TimeRange,
        filters: WidgetFilters,
        now: DateTime<Utc>,
        path: AggregatePath,
    ) -> Result<WidgetData, WidgetError> {
        let (start, end) = range.resolve(now);
        // Counted per query run, so a service can show how many aggregates the cache saved.
        metrics::counter!("widget_data_queries_total", "widget" => widget.as_str()).increment(1);
        let started = std::time::Instant::now();
        let result = self
            .blocking(move |store| {
                store.compute(widget, &filters, start.timestamp(), end.timestamp(), path)
            })
            .await;
        metrics::histogram!("widget_data_query_seconds", "widget" => widget.as_str())
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Writes a donation, its rollups and its outbox row in one transaction and returns the change
    /// (the event to invalidate with and the outbox row that carries it).
    pub async fn record_donation(&self, donation: NewDonation) -> Result<Change, WidgetError> {
        self.blocking(move |store| store.record_donation(donation))
            .await
    }

    /// Creates a campaign and returns it with the event to invalidate with.
    pub async fn create_campaign(
        &self,
        campaign: NewCampaign,
    ) -> Result<(Campaign, Change), WidgetError> {
        self.blocking(move |store| store.create_campaign(campaign))
            .await
    }

    /// Every organisation with its employee count and campaigns, ordered by id.
    pub async fn directory(&self) -> Result<Vec<OrganizationEntry>, WidgetError> {
        self.blocking(DonationStore::directory).await
    }

    /// Marks a completed donation refunded and returns the event to invalidate with: it carries the
    /// donation's original date, so the periods it counted in are the ones refreshed.
    pub async fn refund_donation(&self, donation_id: i64) -> Result<Change, WidgetError> {
        self.blocking(move |store| store.refund_donation(donation_id))
            .await
    }

    /// Claims due outbox rows (see [`DonationStore::claim_changes`]).
    pub async fn claim_changes(
        &self,
        limit: usize,
        claim_ms: i64,
    ) -> Result<Vec<PendingChange>, WidgetError> {
        self.blocking(move |store| store.claim_changes(limit, claim_ms))
            .await
    }

    /// Marks outbox rows dispatched.
    pub async fn changes_dispatched(&self, ids: Vec<i64>) -> Result<(), WidgetError> {
        self.blocking(move |store| store.changes_dispatched(&ids))
            .await
    }

    /// Records a failed try of outbox rows, due again in `retry_in_ms`.
    pub async fn changes_failed(
        &self,
        ids: Vec<i64>,
        error: String,
        retry_in_ms: i64,
    ) -> Result<(), WidgetError> {
        self.blocking(move |store| store.changes_failed(&ids, &error, retry_in_ms))
            .await
    }

    /// Outbox rows not dispatched yet, and the commit time of the oldest (Unix milliseconds).
    pub async fn change_backlog(&self) -> Result<(i64, Option<i64>), WidgetError> {
        self.blocking(DonationStore::change_backlog).await
    }

    /// The currencies donations are made in.
    pub async fn currencies(&self) -> Result<Vec<String>, WidgetError> {
        self.blocking(DonationStore::currencies).await
    }

    /// Every organisation an employee's figures count in: their own, and those of the campaigns they
    /// gave to. Empty when the employee does not exist and never gave.
    pub async fn organizations_of_employee(
        &self,
        employee_id: i64,
    ) -> Result<Vec<i64>, WidgetError> {
        self.blocking(move |store| store.organizations_of_employee(employee_id))
            .await
    }

    /// The organisation a campaign belongs to, if the campaign exists.
    pub async fn organization_of(&self, campaign_id: i64) -> Result<Option<i64>, WidgetError> {
        self.blocking(move |store| store.organization_of(campaign_id))
            .await
    }
}
