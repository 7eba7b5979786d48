//! Rollups: per-bucket aggregates of the completed donations, kept exact in the transaction that
//! changes a donation, so a widget over a year reads a handful of rows instead of every donation.
//!
//! Three kinds of rows, each per [`Scope`] and per calendar bucket (day, week, month, quarter, year;
//! see [`calendar`]):
//! - `rollup_totals`: sum and count per currency (whole dataset, each organisation, each campaign).
//!   They answer total donations, campaign performance, trends and the sums of organisation stats.
//! - `rollup_donors` and `rollup_participants`: one row per donor and per employee who gave in the
//!   bucket (whole dataset and each organisation, all currencies), with `rollup_distinct` counting
//!   them. They answer top donors, distinct donors and participation.
//!
//! A range is covered by whole buckets plus at most a partial day at each edge, which the raw rows
//! answer ([`calendar::cover`]). Filters the rollups do not carry (an employee; a currency or a
//! campaign for the per-donor widgets) are answered from the raw rows, which the indexes keep cheap
//! for such narrow scopes. The raw queries stay the reference: a property test holds the two equal.
//!
//! Portability: the SQL is plain `INSERT … ON CONFLICT … DO UPDATE … RETURNING`, integer
//! comparisons and `GROUP BY`, which PostgreSQL runs as written; `WITHOUT ROWID` is SQLite's storage
//! hint and is dropped there. Buckets are computed in Rust, never with a database's date functions.

pub(crate) mod calendar;
mod maintain;
mod read;

pub(crate) use maintain::{add, ensure_built, rebuild, Counted};
pub(crate) use read::run;

/// Whose donations a rollup row counts; the number is the `scope` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    Global,
    Organization(i64),
    Campaign(i64),
}

impl Scope {
    /// The `(scope, scope_id)` columns.
    pub(crate) fn columns(self) -> (i64, i64) {
        match self {
            Scope::Global => (0, 0),
            Scope::Organization(id) => (1, id),
            Scope::Campaign(id) => (2, id),
        }
    }
}

/// The table definitions, run with the rest of the schema.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rollup_totals (
    scope INTEGER NOT NULL,
    scope_id INTEGER NOT NULL,
    grain INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    currency TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    donations INTEGER NOT NULL,
    PRIMARY KEY (scope, scope_id, grain, bucket, currency)
) WITHOUT ROWID;
-- Campaign performance reads every campaign of one bucket.
CREATE INDEX IF NOT EXISTS rollup_totals_by_bucket
    ON rollup_totals(scope, grain, bucket, scope_id, currency, total_cents, donations);
CREATE TABLE IF NOT EXISTS rollup_donors (
    scope INTEGER NOT NULL,
    scope_id INTEGER NOT NULL,
    grain INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    donor TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    donations INTEGER NOT NULL,
    PRIMARY KEY (scope, scope_id, grain, bucket, donor)
) WITHOUT ROWID;
-- Top donors of one bucket are the first rows of this index.
CREATE INDEX IF NOT EXISTS rollup_donors_by_total
    ON rollup_donors(scope, scope_id, grain, bucket, total_cents DESC, donor, donations);
CREATE TABLE IF NOT EXISTS rollup_participants (
    scope INTEGER NOT NULL,
    scope_id INTEGER NOT NULL,
    grain INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    employee_id INTEGER NOT NULL,
    donations INTEGER NOT NULL,
    PRIMARY KEY (scope, scope_id, grain, bucket, employee_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_distinct (
    scope INTEGER NOT NULL,
    scope_id INTEGER NOT NULL,
    grain INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    donors INTEGER NOT NULL,
    participants INTEGER NOT NULL,
    PRIMARY KEY (scope, scope_id, grain, bucket)
) WITHOUT ROWID;
-- Which version of the rollups the tables hold; another version (or none) is rebuilt at open.
CREATE TABLE IF NOT EXISTS rollup_state (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";
