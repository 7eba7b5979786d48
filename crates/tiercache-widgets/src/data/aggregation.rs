//! [`WidgetDataAggregationService`]: the widget queries and writes of a [`DonationStore`], run off
//! the async runtime.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::import::ImportRow;
use super::model::{Campaign, NewCampaign, NewDonation, OrganizationEntry, WidgetData};
use super::outbox::{Change, PendingChange};
use super::sqlite::SqliteStore;
use super::store::{AggregatePath, DonationStore};
use crate::error::WidgetError;
use crate::{TimeRange, WidgetFilters, WidgetType};

/// The most changes a view is brought forward over; a view known longer ago is recomputed.
const MAX_CATCH_UP: i64 = 20_000;

/// A view to bring to the store's last change.
pub(crate) struct CatchUpJob {
    pub(crate) widget: WidgetType,
    pub(crate) filters: WidgetFilters,
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// Its answer as of a change id, when known.
    pub(crate) known: Option<(i64, Arc<WidgetData>)>,
}

/// A job's answer at the snapshot's last change.
pub(crate) enum CaughtUp {
    /// Brought forward from the known answer.
    Forward(WidgetData),
    /// Recomputed, in this long.
    Computed(WidgetData, std::time::Duration),
    /// Left: the budget was spent.
    Left,
}

/// Computes widget data from a store and records donations.
///
/// ```no_run
/// # async fn run() -> Result<(), tiercache_widgets::WidgetError> {
/// use tiercache_widgets::{TimeRange, WidgetDataAggregationService, WidgetFilters, WidgetType};
/// let data = WidgetDataAggregationService::open("demo.sqlite3")?;
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

    /// Writes `rows` into the store unless donations already exist
    /// ([`DonationStore::import_if_empty`]). Returns donations written.
    pub async fn import_if_empty(
        &self,
        rows: impl Iterator<Item = ImportRow> + Send + 'static,
    ) -> Result<i64, WidgetError> {
        let mut rows = rows;
        self.blocking(move |store| store.import_if_empty(&mut rows))
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

    /// `widget`'s answer over `range` at `now` for `filters`, computed in one snapshot: the change
    /// id it counts up to, the answer, and what computing it took.
    pub(crate) async fn compute_as_of(
        &self,
        widget: WidgetType,
        range: TimeRange,
        filters: WidgetFilters,
        now: DateTime<Utc>,
    ) -> Result<(i64, WidgetData, std::time::Duration), WidgetError> {
        let (as_of, answers) = self
            .compute_many_as_of(vec![(widget, range, filters)], now)
            .await?;
        match answers.into_iter().next() {
            Some((value, took)) => Ok((as_of, value, took)),
            None => Err(WidgetError::Task("the snapshot computed nothing".into())),
        }
    }

    /// Each of `views` at `now`, all computed in one snapshot of the store (one dashboard's views
    /// count the same donations): the change id they count up to, and each answer with what
    /// computing it took, in the order asked.
    pub(crate) async fn compute_many_as_of(
        &self,
        views: Vec<(WidgetType, TimeRange, WidgetFilters)>,
        now: DateTime<Utc>,
    ) -> Result<(i64, Vec<(WidgetData, std::time::Duration)>), WidgetError> {
        let asked = views.len();
        let jobs = views
            .into_iter()
            .map(|(widget, range, filters)| {
                let (start, end) = range.resolve(now);
                CatchUpJob {
                    widget,
                    filters,
                    start: start.timestamp(),
                    end: end.timestamp(),
                    known: None,
                }
            })
            .collect();
        let (as_of, answers) = self.catch_up_views(jobs, std::time::Duration::MAX).await?;
        // With nothing known and no budget to spend, every job is computed.
        let computed: Vec<_> = answers
            .into_iter()
            .filter_map(|answer| match answer {
                CaughtUp::Computed(value, took) => Some((value, took)),
                CaughtUp::Forward(_) | CaughtUp::Left => None,
            })
            .collect();
        if computed.len() != asked {
            return Err(WidgetError::Task(
                "the snapshot left views uncomputed".into(),
            ));
        }
        Ok((as_of, computed))
    }

    /// Brings each of `jobs` to the store's last change in one snapshot: forward over the changes
    /// since the one it was known at ([`catch_up`](crate::catch_up)), or, where that cannot be
    /// done (unknown, too old, a change catch-up cannot follow), recomputed while `budget` lasts
    /// and left after it. Returns the last change the answers count and one answer per job.
    pub(crate) async fn catch_up_views(
        &self,
        jobs: Vec<CatchUpJob>,
        budget: std::time::Duration,
    ) -> Result<(i64, Vec<CaughtUp>), WidgetError> {
        self.blocking(move |store| {
            let started = std::time::Instant::now();
            let mut out = (0, Vec::with_capacity(jobs.len()));
            store.read_snapshot(&mut |snapshot| {
                out.1.clear();
                let last = snapshot.last_change()?;
                out.0 = last;
                // Views known longer ago than this many changes are recomputed: reading every
                // change since would cost more than a recompute.
                let floor = jobs
                    .iter()
                    .filter_map(|j| j.known.as_ref().map(|(as_of, _)| *as_of))
                    .filter(|as_of| *as_of <= last && last - *as_of <= MAX_CATCH_UP)
                    .min();
                let changes = match floor {
                    Some(floor) => snapshot.changes_between(floor, last)?.map(|c| (floor, c)),
                    None => None,
                };
                for job in &jobs {
                    let since = match (&job.known, &changes) {
                        (Some((as_of, _)), Some((floor, changes))) if as_of >= floor => {
                            // Ids are contiguous from `floor`: the change after `as_of` is here.
                            usize::try_from(as_of - floor).ok().and_then(|i| changes.get(i..))
                        }
                        _ => None,
                    };
                    if let (Some((_, value)), Some(since)) = (&job.known, since) {
                        let forward = crate::catch_up::catch_up(
                            snapshot,
                            job.widget,
                            &job.filters,
                            job.start,
                            job.end,
                            value.as_ref(),
                            since,
                        )?;
                        if let Some(forward) = forward {
                            out.1.push(CaughtUp::Forward(forward));
                            continue;
                        }
                    }
                    if started.elapsed() >= budget {
                        out.1.push(CaughtUp::Left);
                        continue;
                    }
                    metrics::counter!("widget_data_queries_total", "widget" => job.widget.as_str())
                        .increment(1);
                    let computing = std::time::Instant::now();
                    let value = snapshot.compute(job.widget, &job.filters, job.start, job.end)?;
                    let took = computing.elapsed();
                    metrics::histogram!("widget_data_query_seconds", "widget" => job.widget.as_str())
                        .record(took.as_secs_f64());
                    out.1.push(CaughtUp::Computed(value, took));
                }
                Ok(())
            })?;
            Ok(out)
        })
        .await
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
