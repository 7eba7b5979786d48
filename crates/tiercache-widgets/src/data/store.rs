//! [`DonationStore`]: the one interface between the widget layer and the database that holds the
//! donations, so another database can stand in for SQLite.

use super::import::ImportRow;
use super::model::{Campaign, NewCampaign, NewDonation, OrganizationEntry, WidgetData};
use super::outbox::{Change, PendingChange};
pub use super::queries::Giver;
use crate::error::WidgetError;
use crate::events::DomainEvent;
use crate::{WidgetFilters, WidgetType};

/// How a store answers a widget query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AggregatePath {
    /// From the rollups the store keeps beside the donations (raw rows only for what they do not
    /// carry): cost follows the calendar, not the number of donations. What the service uses.
    #[default]
    Rollups,
    /// From every matching donation row: the reference the rollups are held equal to, and the
    /// baseline the benches compare with.
    RawRows,
}

/// A database of organisations, campaigns, employees and donations, with the widget aggregates.
///
/// Every method blocks; [`WidgetDataAggregationService`](crate::WidgetDataAggregationService) calls
/// them off the async runtime. A write, the rollups it changes and its outbox row (the cache work it
/// calls for) commit in one transaction, so a reader sees all or none, and no committed change can
/// lose its invalidation.
///
/// ```no_run
/// # fn run() -> Result<(), tiercache_widgets::WidgetError> {
/// use tiercache_widgets::{AggregatePath, DonationStore, SqliteStore, WidgetFilters, WidgetType};
/// let store = SqliteStore::open("demo.sqlite3")?;
/// let (start, end) = (1_764_547_200, 1_767_225_600); // December 2025, UTC
/// let fast = store.compute(WidgetType::TopDonors, &WidgetFilters::new(), start, end, AggregatePath::Rollups)?;
/// let slow = store.compute(WidgetType::TopDonors, &WidgetFilters::new(), start, end, AggregatePath::RawRows)?;
/// assert_eq!(fast, slow);
/// # Ok(()) }
/// ```
pub trait DonationStore: Send + Sync + 'static {
    /// Writes `rows` into a database with no donations yet, all or none, without outbox rows (no
    /// cache holds views of an empty database). Returns the donations written: 0, and nothing
    /// read from `rows`, when donations already exist.
    fn import_if_empty(
        &self,
        rows: &mut dyn Iterator<Item = ImportRow>,
    ) -> Result<i64, WidgetError>;

    /// Runs `read` against one consistent view of the store: everything it reads through the
    /// [`StoreSnapshot`] sees the same committed changes, the last of which
    /// [`StoreSnapshot::last_change`] names. A dispatcher brings cached views forward in one.
    fn read_snapshot(
        &self,
        read: &mut dyn FnMut(&dyn StoreSnapshot) -> Result<(), WidgetError>,
    ) -> Result<(), WidgetError>;

    /// The data of `widget` over `[start, end)` (Unix seconds) for `filters`.
    fn compute(
        &self,
        widget: WidgetType,
        filters: &WidgetFilters,
        start: i64,
        end: i64,
        path: AggregatePath,
    ) -> Result<WidgetData, WidgetError>;

    /// Records a completed donation with its rollups and its outbox row; returns the change.
    fn record_donation(&self, donation: NewDonation) -> Result<Change, WidgetError>;

    /// Marks a completed donation refunded and takes it out of the rollups, with its outbox row; the
    /// event carries the donation's original date.
    fn refund_donation(&self, donation_id: i64) -> Result<Change, WidgetError>;

    /// Creates a campaign, with its outbox row.
    fn create_campaign(&self, campaign: NewCampaign) -> Result<(Campaign, Change), WidgetError>;

    /// Claims up to `limit` outbox rows that are due (not dispatched, not claimed, their retry time
    /// passed) for `claim_ms` milliseconds, oldest first.
    fn claim_changes(&self, limit: usize, claim_ms: i64)
        -> Result<Vec<PendingChange>, WidgetError>;

    /// Marks outbox rows dispatched (and drops those dispatched over an hour ago).
    fn changes_dispatched(&self, ids: &[i64]) -> Result<(), WidgetError>;

    /// Records a failed try of outbox rows; they are due again in `retry_in_ms`.
    fn changes_failed(&self, ids: &[i64], error: &str, retry_in_ms: i64)
        -> Result<(), WidgetError>;

    /// Outbox rows not dispatched yet, and the commit time of the oldest (Unix milliseconds).
    fn change_backlog(&self) -> Result<(i64, Option<i64>), WidgetError>;

    /// Every organisation with its employee count and campaigns, ordered by id.
    fn directory(&self) -> Result<Vec<OrganizationEntry>, WidgetError>;

    /// The currencies donations are made in.
    fn currencies(&self) -> Result<Vec<String>, WidgetError>;

    /// Every organisation an employee's figures count in.
    fn organizations_of_employee(&self, employee_id: i64) -> Result<Vec<i64>, WidgetError>;

    /// The organisation a campaign belongs to, if the campaign exists.
    fn organization_of(&self, campaign_id: i64) -> Result<Option<i64>, WidgetError>;
}

/// One consistent read of a [`DonationStore`] (a read transaction): the changes committed up to
/// [`StoreSnapshot::last_change`], and nothing committed after.
pub trait StoreSnapshot {
    /// The outbox id of the last change this snapshot sees, 0 when none. Ids grow in commit order.
    fn last_change(&self) -> Result<i64, WidgetError>;

    /// The changes with outbox ids in `(after, upto]`, in id order; `None` when one of them is no
    /// longer kept or cannot be read.
    fn changes_between(
        &self,
        after: i64,
        upto: i64,
    ) -> Result<Option<Vec<(i64, DomainEvent)>>, WidgetError>;

    /// The data of `widget` over `[start, end)` for `filters`, as [`DonationStore::compute`] gives
    /// it on the rollups.
    fn compute(
        &self,
        widget: WidgetType,
        filters: &WidgetFilters,
        start: i64,
        end: i64,
    ) -> Result<WidgetData, WidgetError>;

    /// The sum (cents) and count of `giver`'s completed donations in `[start, end)` for `filters`,
    /// reading at most `cap` donations (the count then stops at `cap`).
    fn giver_donations(
        &self,
        filters: &WidgetFilters,
        start: i64,
        end: i64,
        giver: Giver<'_>,
        cap: i64,
    ) -> Result<(i64, i64), WidgetError>;
}
