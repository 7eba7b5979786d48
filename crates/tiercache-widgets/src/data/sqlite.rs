//! [`SqliteStore`]: the donations, their rollups and the widget queries in one SQLite file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::import::{self, ImportRow};
use super::model::{
    Campaign, CampaignEntry, NewCampaign, NewDonation, OrganizationEntry, WidgetData,
};
use super::outbox::{self, Change, PendingChange};
use super::queries::{self, Asked};
use super::rollup::{self, Counted};
use super::schema::{SCHEMA, WRITER_PRAGMAS};
use super::store::{AggregatePath, DonationStore, Giver, StoreSnapshot};
use crate::error::WidgetError;
use crate::events::{CampaignFacts, DomainEvent, DonationFacts};
use crate::{WidgetFilters, WidgetType};

/// Read connections kept open; SQLite in WAL mode lets them read while the writer writes.
const READERS: usize = 4;

/// A SQLite file in WAL mode: one writer connection and a few readers that read while it writes.
///
/// At open it creates the schema and, when the rollups are missing or of another version (a file
/// made before them), rebuilds them from the donations in one transaction.
///
/// ```no_run
/// # fn run() -> Result<(), tiercache_widgets::WidgetError> {
/// use tiercache_widgets::{DonationStore, ImportRow, SqliteStore};
/// let store = SqliteStore::open("demo.sqlite3")?;
/// let rows = [ImportRow::Organization { id: 1, name: "Acme".into() }];
/// store.import_if_empty(&mut rows.into_iter())?;
/// # Ok(()) }
/// ```
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    observer: Option<Box<dyn Fn(SnapshotQuery) + Send + Sync>>,
}

/// A query a [`SqliteStore`] runs inside a read snapshot ([`DonationStore::read_snapshot`]), as the
/// observer set with [`SqliteStore::observing`] is told of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotQuery {
    /// A widget's computation ([`StoreSnapshot::compute`]): a reader's load or a dispatcher's
    /// recompute.
    Compute,
    /// A giver's donations ([`StoreSnapshot::giver_donations`]): a catch-up's point lookup.
    GiverDonations,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// A free read connection, looking from the next one round robin; only when all are busy does
    /// it wait, on that next one. Plain round robin queued a 0.2 ms query behind a 100 ms aggregate
    /// while other connections sat idle, which showed as the p99 of cheap widgets in the load test.
    fn reader(&self) -> parking_lot::MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let order = (start..self.readers.len()).chain(0..start);
        for i in order {
            if let Some(free) = self.readers[i].try_lock() {
                return free;
            }
        }
        self.readers[start].lock()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its schema, and builds the rollups when the
    /// file has none of this version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WidgetError> {
        let path = path.as_ref().to_path_buf();
        let mut writer = Connection::open(&path)?;
        writer.execute_batch(WRITER_PRAGMAS)?;
        writer.execute_batch(SCHEMA)?;
        writer.execute_batch(rollup::SCHEMA)?;
        writer.execute_batch(outbox::SCHEMA)?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        if rollup::ensure_built(&mut writer)? {
            tracing::info!(path = %path.display(), "rollups built from the donations");
        }
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            reader.busy_timeout(std::time::Duration::from_secs(5))?;
            readers.push(Mutex::new(reader));
        }
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            observer: None,
        })
    }

    /// Calls `observer` before each query a read snapshot runs, on the thread that runs it, so a
    /// test (or a probe) can count, slow or hold them without a store of its own in between.
    ///
    /// ```no_run
    /// # fn run() -> Result<(), tiercache_widgets::WidgetError> {
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use tiercache_widgets::{SnapshotQuery, SqliteStore};
    /// static COMPUTED: AtomicUsize = AtomicUsize::new(0);
    /// let store = SqliteStore::open("demo.sqlite3")?.observing(|query| {
    ///     if query == SnapshotQuery::Compute {
    ///         COMPUTED.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// });
    /// # let _ = store; Ok(()) }
    /// ```
    #[must_use]
    pub fn observing(mut self, observer: impl Fn(SnapshotQuery) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// The file it reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A read transaction of a [`SqliteStore`].
struct SqliteSnapshot<'a> {
    conn: &'a Connection,
    observer: Option<&'a (dyn Fn(SnapshotQuery) + Send + Sync)>,
}

impl SqliteSnapshot<'_> {
    fn observe(&self, query: SnapshotQuery) {
        if let Some(observer) = self.observer {
            observer(query);
        }
    }
}

impl StoreSnapshot for SqliteSnapshot<'_> {
    fn last_change(&self) -> Result<i64, WidgetError> {
        outbox::last_change(self.conn)
    }

    fn changes_between(
        &self,
        after: i64,
        upto: i64,
    ) -> Result<Option<Vec<(i64, DomainEvent)>>, WidgetError> {
        outbox::changes_between(self.conn, after, upto)
    }

    fn compute(
        &self,
        widget: WidgetType,
        filters: &WidgetFilters,
        start: i64,
        end: i64,
    ) -> Result<WidgetData, WidgetError> {
        self.observe(SnapshotQuery::Compute);
        Ok(rollup::run(
            self.conn,
            Asked {
                widget,
                filters,
                start,
                end,
            },
        )?)
    }

    fn giver_donations(
        &self,
        filters: &WidgetFilters,
        start: i64,
        end: i64,
        giver: Giver<'_>,
        cap: i64,
    ) -> Result<(i64, i64), WidgetError> {
        self.observe(SnapshotQuery::GiverDonations);
        Ok(queries::giver_donations(
            self.conn, filters, start, end, giver, cap,
        )?)
    }
}

/// The organisation of `campaign_id`, or the error naming it.
fn campaign_organization(conn: &Connection, campaign_id: i64) -> Result<i64, WidgetError> {
    conn.query_row(
        "SELECT organization_id FROM campaigns WHERE id = ?1",
        [campaign_id],
        |r| r.get(0),
    )
    .optional()?
    .ok_or(WidgetError::UnknownReference {
        what: "campaign",
        id: campaign_id,
        context: String::new(),
    })
}

impl DonationStore for SqliteStore {
    fn import_if_empty(
        &self,
        rows: &mut dyn Iterator<Item = ImportRow>,
    ) -> Result<i64, WidgetError> {
        let mut conn = self.writer.lock();
        let existing: i64 = conn.query_row("SELECT COUNT(*) FROM donations", [], |r| r.get(0))?;
        if existing > 0 {
            return Ok(0);
        }
        import::import(&mut conn, rows)
    }

    fn read_snapshot(
        &self,
        read: &mut dyn FnMut(&dyn StoreSnapshot) -> Result<(), WidgetError>,
    ) -> Result<(), WidgetError> {
        let conn = self.reader();
        // A deferred transaction takes its snapshot at its first read and keeps it to the end.
        let tx = conn.unchecked_transaction()?;
        read(&SqliteSnapshot {
            conn: &tx,
            observer: self.observer.as_deref(),
        })?;
        tx.commit()?;
        Ok(())
    }

    fn compute(
        &self,
        widget: WidgetType,
        filters: &WidgetFilters,
        start: i64,
        end: i64,
        path: AggregatePath,
    ) -> Result<WidgetData, WidgetError> {
        let conn = self.reader();
        let asked = Asked {
            widget,
            filters,
            start,
            end,
        };
        Ok(match path {
            AggregatePath::Rollups => rollup::run(&conn, asked)?,
            AggregatePath::RawRows => queries::run(&conn, asked)?,
        })
    }

    fn record_donation(&self, donation: NewDonation) -> Result<Change, WidgetError> {
        let mut conn = self.writer.lock();
        // Every write transaction here is IMMEDIATE: it takes the write lock before its first read,
        // so a writer in another process makes it wait out the busy timeout. A deferred one that
        // read first fails at once with SQLITE_BUSY when that writer commits in between.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let organization_id = campaign_organization(&tx, donation.campaign_id)?;
        if let Some(employee_id) = donation.employee_id {
            let employer: Option<i64> = tx
                .query_row(
                    "SELECT organization_id FROM employees WHERE id = ?1",
                    [employee_id],
                    |r| r.get(0),
                )
                .optional()?;
            if employer != Some(organization_id) {
                return Err(WidgetError::UnknownReference {
                    what: "employee",
                    id: employee_id,
                    context: format!(
                        " in organization {organization_id}, which runs campaign {}",
                        donation.campaign_id
                    ),
                });
            }
        }
        let currency = donation.currency.to_ascii_uppercase();
        tx.execute(
            "INSERT INTO donations (campaign_id, organization_id, employee_id, donor, amount_cents, currency, created_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'completed')",
            params![
                donation.campaign_id,
                organization_id,
                donation.employee_id,
                donation.donor,
                donation.amount_cents,
                currency,
                donation.created_at
            ],
        )?;
        let donation_id = tx.last_insert_rowid();
        rollup::add(
            &tx,
            &Counted {
                organization_id,
                campaign_id: donation.campaign_id,
                employee_id: donation.employee_id,
                donor: &donation.donor,
                currency: &currency,
                amount_cents: donation.amount_cents,
                created_at: donation.created_at,
            },
            1,
        )?;
        let change = outbox::record(
            &tx,
            DomainEvent::DonationCompleted(DonationFacts {
                donation_id,
                campaign_id: donation.campaign_id,
                organization_id,
                employee_id: donation.employee_id,
                amount_cents: donation.amount_cents,
                currency,
                created_at: Some(donation.created_at),
                donor: Some(donation.donor.clone()),
            }),
        )?;
        tx.commit()?;
        Ok(change)
    }

    fn refund_donation(&self, donation_id: i64) -> Result<Change, WidgetError> {
        let mut conn = self.writer.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let refunded = tx
            .query_row(
                "UPDATE donations SET status = 'refunded' WHERE id = ?1 AND status = 'completed'
                 RETURNING campaign_id, organization_id, employee_id, amount_cents, currency, created_at, donor",
                [donation_id],
                |r| {
                    Ok((
                        DonationFacts {
                            donation_id,
                            campaign_id: r.get(0)?,
                            organization_id: r.get(1)?,
                            employee_id: r.get(2)?,
                            amount_cents: r.get(3)?,
                            currency: r.get(4)?,
                            created_at: Some(r.get(5)?),
                            donor: Some(r.get(6)?),
                        },
                        r.get::<_, String>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((facts, donor)) = refunded else {
            return Err(WidgetError::InvalidEvent {
                event: "donation_refunded".into(),
                reason: format!("donation {donation_id} does not exist or is already refunded"),
            });
        };
        rollup::add(
            &tx,
            &Counted {
                organization_id: facts.organization_id,
                campaign_id: facts.campaign_id,
                employee_id: facts.employee_id,
                donor: &donor,
                currency: &facts.currency,
                amount_cents: facts.amount_cents,
                created_at: facts.created_at.unwrap_or_default(),
            },
            -1,
        )?;
        let change = outbox::record(&tx, DomainEvent::DonationRefunded(facts))?;
        tx.commit()?;
        Ok(change)
    }

    fn create_campaign(&self, campaign: NewCampaign) -> Result<(Campaign, Change), WidgetError> {
        let mut conn = self.writer.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let organization: Option<i64> = tx
            .query_row(
                "SELECT id FROM organizations WHERE id = ?1",
                [campaign.organization_id],
                |r| r.get(0),
            )
            .optional()?;
        if organization.is_none() {
            return Err(WidgetError::UnknownReference {
                what: "organization",
                id: campaign.organization_id,
                context: String::new(),
            });
        }
        tx.execute(
            "INSERT INTO campaigns (organization_id, name, goal_cents, starts_at, ends_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                campaign.organization_id,
                campaign.name,
                campaign.goal_cents,
                campaign.starts_at,
                campaign.ends_at
            ],
        )?;
        let id = tx.last_insert_rowid();
        let change = outbox::record(
            &tx,
            DomainEvent::CampaignCreated(CampaignFacts {
                campaign_id: id,
                organization_id: campaign.organization_id,
            }),
        )?;
        tx.commit()?;
        Ok((
            Campaign {
                id,
                fields: campaign,
            },
            change,
        ))
    }

    fn claim_changes(
        &self,
        limit: usize,
        claim_ms: i64,
    ) -> Result<Vec<PendingChange>, WidgetError> {
        outbox::claim(&self.writer.lock(), limit, claim_ms)
    }

    fn changes_dispatched(&self, ids: &[i64]) -> Result<(), WidgetError> {
        outbox::dispatched(&self.writer.lock(), ids)
    }

    fn changes_failed(
        &self,
        ids: &[i64],
        error: &str,
        retry_in_ms: i64,
    ) -> Result<(), WidgetError> {
        outbox::failed(&self.writer.lock(), ids, error, retry_in_ms)
    }

    fn change_backlog(&self) -> Result<(i64, Option<i64>), WidgetError> {
        outbox::backlog(&self.reader())
    }

    fn directory(&self) -> Result<Vec<OrganizationEntry>, WidgetError> {
        let conn = self.reader();
        let mut organizations: Vec<OrganizationEntry> = conn
            .prepare_cached(
                "SELECT o.id, o.name, (SELECT COUNT(*) FROM employees e WHERE e.organization_id = o.id)
                 FROM organizations o ORDER BY o.id",
            )?
            .query_map([], |r| {
                Ok(OrganizationEntry {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    employees: r.get(2)?,
                    campaigns: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = conn.prepare_cached(
            "SELECT organization_id, id, name FROM campaigns ORDER BY organization_id, id",
        )?;
        let campaigns = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                CampaignEntry {
                    id: r.get(1)?,
                    name: r.get(2)?,
                },
            ))
        })?;
        for campaign in campaigns {
            let (organization_id, entry) = campaign?;
            if let Ok(i) = organizations.binary_search_by_key(&organization_id, |o| o.id) {
                organizations[i].campaigns.push(entry);
            }
        }
        Ok(organizations)
    }

    fn currencies(&self) -> Result<Vec<String>, WidgetError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare_cached("SELECT DISTINCT currency FROM donations ORDER BY currency")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    fn organizations_of_employee(&self, employee_id: i64) -> Result<Vec<i64>, WidgetError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT organization_id FROM employees WHERE id = ?1
             UNION SELECT DISTINCT organization_id FROM donations WHERE employee_id = ?1
             ORDER BY 1",
        )?;
        let rows = stmt.query_map([employee_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
    }

    fn organization_of(&self, campaign_id: i64) -> Result<Option<i64>, WidgetError> {
        let conn = self.reader();
        Ok(conn
            .query_row(
                "SELECT organization_id FROM campaigns WHERE id = ?1",
                [campaign_id],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file of its own, removed with its WAL files when dropped.
    struct ScratchDb(PathBuf);

    impl ScratchDb {
        fn new() -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            ScratchDb(std::env::temp_dir().join(format!(
                "tiercache-readers-{}-{nanos}.sqlite",
                std::process::id()
            )))
        }
    }

    impl Drop for ScratchDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.0.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    #[test]
    fn a_query_takes_a_free_reader_rather_than_queueing_behind_a_busy_one() {
        let db = ScratchDb::new();
        let inner =
            std::sync::Arc::new(SqliteStore::open(&db.0).expect("open the scratch database"));
        // Every reader but the last is busy, and round robin points at the first.
        let busy: Vec<_> = inner.readers[..READERS - 1]
            .iter()
            .map(|r| r.lock())
            .collect();
        inner.next_reader.store(0, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::channel();
        let picker = inner.clone();
        std::thread::spawn(move || {
            let reader = picker.reader();
            let _ = tx.send(std::ptr::from_ref::<Connection>(&reader) as usize);
        });
        let picked = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("reader() waited on a busy connection while one was free");
        let free = std::ptr::from_ref::<Connection>(&inner.readers[READERS - 1].lock()) as usize;
        assert_eq!(picked, free, "the free reader was not the one handed out");
        drop(busy);
    }

    /// `synchronous` is per connection: every open sets FULL on its writer, whatever an earlier
    /// connection to the file set (the write bench opens bare writers with NORMAL beside it).
    #[test]
    fn the_writer_syncs_every_commit_so_a_201_survives_a_power_cut() {
        let db = ScratchDb::new();
        let other = Connection::open(&db.0).expect("open the scratch database");
        other
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .expect("set NORMAL on another connection");
        let store = SqliteStore::open(&db.0).expect("open the scratch database");
        let synchronous: i64 = store
            .writer
            .lock()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("read synchronous");
        assert_eq!(synchronous, 2, "2 is FULL (1 is NORMAL)");
        let mode: String = store
            .writer
            .lock()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("read journal_mode");
        assert_eq!(mode, "wal");
    }
}
