//! Keeping the rollups exact: a delta per donation change inside its transaction, and a rebuild
//! from the raw rows for a new or older database.

use std::collections::HashMap;

use rusqlite::types::ToSql;
use rusqlite::{params, CachedStatement, Connection, OptionalExtension};

use super::calendar::Grain;
use super::Scope;

/// The version of the rollup tables' contents; a database holding another is rebuilt at open.
const VERSION: i64 = 1;

/// What the rollups need of a completed donation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counted<'a> {
    pub(crate) organization_id: i64,
    pub(crate) campaign_id: i64,
    pub(crate) employee_id: Option<i64>,
    pub(crate) donor: &'a str,
    pub(crate) currency: &'a str,
    pub(crate) amount_cents: i64,
    pub(crate) created_at: i64,
}

impl Counted<'_> {
    /// The scopes of the per-currency totals.
    fn total_scopes(&self) -> [Scope; 3] {
        [
            Scope::Global,
            Scope::Organization(self.organization_id),
            Scope::Campaign(self.campaign_id),
        ]
    }

    /// The scopes of the per-donor and per-employee rows.
    fn people_scopes(&self) -> [Scope; 2] {
        [Scope::Global, Scope::Organization(self.organization_id)]
    }
}

/// One per-bucket table of the rollups: its rows are keyed by scope, grain, bucket and `key` (no
/// more for `rollup_distinct`), and a change adds to its `sums`. The statements of every table are
/// written from this, so the four cannot drift apart in their keys or their arithmetic.
struct Counter {
    table: &'static str,
    key: Option<&'static str>,
    sums: &'static [&'static str],
}

const TOTALS: Counter = Counter {
    table: "rollup_totals",
    key: Some("currency"),
    sums: &["total_cents", "donations"],
};
const DONORS: Counter = Counter {
    table: "rollup_donors",
    key: Some("donor"),
    sums: &["total_cents", "donations"],
};
const PARTICIPANTS: Counter = Counter {
    table: "rollup_participants",
    key: Some("employee_id"),
    sums: &["donations"],
};
const DISTINCT: Counter = Counter {
    table: "rollup_distinct",
    key: None,
    sums: &["donors", "participants"],
};

impl Counter {
    /// The key columns, comma-separated.
    fn keys(&self) -> String {
        let mut keys = vec!["scope", "scope_id", "grain", "bucket"];
        keys.extend(self.key);
        keys.join(", ")
    }

    /// Inserts a row: the key columns, then the sums, as `?1`, `?2`, ...
    fn insert(&self) -> String {
        let count = 4 + usize::from(self.key.is_some()) + self.sums.len();
        let values: Vec<String> = (1..=count).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO {} ({}, {}) VALUES ({})",
            self.table,
            self.keys(),
            self.sums.join(", "),
            values.join(", ")
        )
    }

    /// [`Counter::insert`], adding to the sums of a row already there.
    fn upsert(&self) -> String {
        let add: Vec<String> = self
            .sums
            .iter()
            .map(|sum| format!("{sum} = {sum} + excluded.{sum}"))
            .collect();
        format!(
            "{} ON CONFLICT ({}) DO UPDATE SET {}",
            self.insert(),
            self.keys(),
            add.join(", ")
        )
    }

    /// A donation change's statements: [`Counter::upsert`] returning the row's donations left, and
    /// the delete of that row by its key (`?1` to `?5`) once none are.
    fn bump_statements<'c>(
        &self,
        conn: &'c Connection,
    ) -> rusqlite::Result<(CachedStatement<'c>, CachedStatement<'c>)> {
        let upsert = conn.prepare_cached(&format!("{} RETURNING donations", self.upsert()))?;
        let remove = conn.prepare_cached(&format!(
            "DELETE FROM {} WHERE scope = ?1 AND scope_id = ?2 AND grain = ?3 AND bucket = ?4 AND {} = ?5",
            self.table,
            self.key.unwrap_or_default()
        ))?;
        Ok((upsert, remove))
    }
}

/// Adds a donation to the rollups (`sign` 1: it was completed) or takes it out (`sign` -1: it was
/// refunded or removed). Run it in the transaction that changes the donation row.
pub(crate) fn add(conn: &Connection, d: &Counted<'_>, sign: i64) -> rusqlite::Result<()> {
    let mut totals = TOTALS.bump_statements(conn)?;
    let mut donors = DONORS.bump_statements(conn)?;
    let mut participants = PARTICIPANTS.bump_statements(conn)?;
    for grain in Grain::LARGEST_FIRST {
        let bucket = grain.bucket_of(d.created_at);
        let g = grain.code();
        for scope in d.total_scopes() {
            let (s, id) = scope.columns();
            bump(
                &mut totals,
                params![s, id, g, bucket, d.currency, sign * d.amount_cents, sign],
                params![s, id, g, bucket, d.currency],
                sign,
            )?;
        }
        for scope in d.people_scopes() {
            let (s, id) = scope.columns();
            let mut distinct = Distinct {
                donors: bump(
                    &mut donors,
                    params![s, id, g, bucket, d.donor, sign * d.amount_cents, sign],
                    params![s, id, g, bucket, d.donor],
                    sign,
                )?,
                participants: 0,
            };
            if let Some(employee) = d.employee_id {
                distinct.participants = bump(
                    &mut participants,
                    params![s, id, g, bucket, employee, sign],
                    params![s, id, g, bucket, employee],
                    sign,
                )?;
            }
            distinct.apply(conn, scope, grain, bucket)?;
        }
    }
    Ok(())
}

/// Applies `upsert` (which returns the row's donations left) to one row of a per-bucket table,
/// and `remove` when none are left. Returns what that did to the bucket's distinct count: 1 when
/// the row appeared (its first donation), -1 when it went, 0 otherwise.
fn bump(
    (upsert, remove): &mut (CachedStatement<'_>, CachedStatement<'_>),
    upsert_params: &[&dyn ToSql],
    key: &[&dyn ToSql],
    sign: i64,
) -> rusqlite::Result<i64> {
    let left: i64 = upsert.query_row(upsert_params, |r| r.get(0))?;
    if left <= 0 {
        remove.execute(key)?;
        Ok(-1)
    } else if sign > 0 && left == 1 {
        Ok(1)
    } else {
        Ok(0)
    }
}

/// A change to the distinct counts of one bucket: +1 when a donor's (employee's) first donation in
/// it arrives, -1 when their last leaves.
#[derive(Debug, Default, Clone, Copy)]
struct Distinct {
    donors: i64,
    participants: i64,
}

impl Distinct {
    fn apply(
        self,
        conn: &Connection,
        scope: Scope,
        grain: Grain,
        bucket: i64,
    ) -> rusqlite::Result<()> {
        if self.donors == 0 && self.participants == 0 {
            return Ok(());
        }
        let (s, id) = scope.columns();
        conn.prepare_cached(&DISTINCT.upsert())?.execute(params![
            s,
            id,
            grain.code(),
            bucket,
            self.donors,
            self.participants
        ])?;
        Ok(())
    }
}

/// Rebuilds the rollups when the tables hold another version than this code's (a database made
/// before rollups existed, or by another version). Returns whether it rebuilt.
pub(crate) fn ensure_built(conn: &mut Connection) -> rusqlite::Result<bool> {
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM rollup_state WHERE name = 'version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if version == Some(VERSION) {
        return Ok(false);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    rebuild(&tx)?;
    tx.commit()?;
    Ok(true)
}

/// Empties the rollups and computes them again from every completed donation, then records the
/// version. Run it inside a transaction.
///
/// The donations are read in time order, so each grain's current bucket is complete when the next
/// one starts and is written then: memory holds one bucket per grain, not the whole history.
pub(crate) fn rebuild(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM rollup_totals; DELETE FROM rollup_donors;
         DELETE FROM rollup_participants; DELETE FROM rollup_distinct;",
    )?;
    let mut open: Vec<OpenBucket> = Grain::LARGEST_FIRST
        .into_iter()
        .map(OpenBucket::new)
        .collect();
    let mut stmt = conn.prepare(
        "SELECT organization_id, campaign_id, employee_id, donor, currency, amount_cents, created_at
         FROM donations WHERE status = 'completed' ORDER BY created_at",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let donor: String = row.get(3)?;
        let currency: String = row.get(4)?;
        let counted = Counted {
            organization_id: row.get(0)?,
            campaign_id: row.get(1)?,
            employee_id: row.get(2)?,
            donor: &donor,
            currency: &currency,
            amount_cents: row.get(5)?,
            created_at: row.get(6)?,
        };
        for bucket in &mut open {
            bucket.count(conn, &counted)?;
        }
    }
    for bucket in &mut open {
        bucket.flush(conn)?;
    }
    conn.execute(
        "INSERT INTO rollup_state (name, value) VALUES ('version', ?1)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [VERSION],
    )?;
    Ok(())
}

/// One grain's bucket being summed during a rebuild.
struct OpenBucket {
    grain: Grain,
    start: Option<i64>,
    totals: HashMap<(Scope, String), (i64, i64)>,
    donors: HashMap<(Scope, String), (i64, i64)>,
    participants: HashMap<(Scope, i64), i64>,
}

impl OpenBucket {
    fn new(grain: Grain) -> Self {
        OpenBucket {
            grain,
            start: None,
            totals: HashMap::new(),
            donors: HashMap::new(),
            participants: HashMap::new(),
        }
    }

    fn count(&mut self, conn: &Connection, d: &Counted<'_>) -> rusqlite::Result<()> {
        let bucket = self.grain.bucket_of(d.created_at);
        if self.start != Some(bucket) {
            self.flush(conn)?;
            self.start = Some(bucket);
        }
        for scope in d.total_scopes() {
            let sums = self
                .totals
                .entry((scope, d.currency.to_owned()))
                .or_default();
            sums.0 += d.amount_cents;
            sums.1 += 1;
        }
        for scope in d.people_scopes() {
            let sums = self.donors.entry((scope, d.donor.to_owned())).or_default();
            sums.0 += d.amount_cents;
            sums.1 += 1;
            if let Some(employee) = d.employee_id {
                *self.participants.entry((scope, employee)).or_default() += 1;
            }
        }
        Ok(())
    }

    fn flush(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let Some(bucket) = self.start.take() else {
            return Ok(());
        };
        let g = self.grain.code();
        let mut totals = conn.prepare_cached(&TOTALS.insert())?;
        for ((scope, currency), (sum, count)) in self.totals.drain() {
            let (s, id) = scope.columns();
            totals.execute(params![s, id, g, bucket, currency, sum, count])?;
        }
        let mut distinct: HashMap<Scope, (i64, i64)> = HashMap::new();
        let mut donors = conn.prepare_cached(&DONORS.insert())?;
        for ((scope, donor), (sum, count)) in self.donors.drain() {
            let (s, id) = scope.columns();
            donors.execute(params![s, id, g, bucket, donor, sum, count])?;
            distinct.entry(scope).or_default().0 += 1;
        }
        let mut participants = conn.prepare_cached(&PARTICIPANTS.insert())?;
        for ((scope, employee), count) in self.participants.drain() {
            let (s, id) = scope.columns();
            participants.execute(params![s, id, g, bucket, employee, count])?;
            distinct.entry(scope).or_default().1 += 1;
        }
        let mut counts = conn.prepare_cached(&DISTINCT.insert())?;
        for (scope, (donors, participants)) in distinct {
            let (s, id) = scope.columns();
            counts.execute(params![s, id, g, bucket, donors, participants])?;
        }
        Ok(())
    }
}
