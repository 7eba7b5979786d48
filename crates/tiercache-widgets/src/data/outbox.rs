//! The transactional outbox: a row per change to the data, written in the transaction that makes
//! the change, so the cache work it calls for is as durable as the change itself.
//!
//! A dispatcher ([`ChangeDispatcher`](crate::ChangeDispatcher)) claims due rows for a short while,
//! sends their invalidations, and marks them dispatched, or failed with the time of the next try.
//! A claim expires by itself, so a process that dies mid-dispatch only delays the row. Portable SQL:
//! PostgreSQL takes the same statements with `BIGSERIAL` for the id and `FOR UPDATE SKIP LOCKED` as
//! the natural way to claim.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::WidgetError;
use crate::events::DomainEvent;

/// The table, run with the rest of the schema.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cache_outbox (
    id INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    committed_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL DEFAULT 0,
    claimed_until_ms INTEGER NOT NULL DEFAULT 0,
    dispatched_at_ms INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS cache_outbox_due ON cache_outbox(dispatched_at_ms, next_attempt_at_ms);
";

/// A committed change to the data and the id of its outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The outbox row: wait for it with [`ChangeDispatcher::wait_dispatched`](crate::ChangeDispatcher::wait_dispatched).
    pub id: i64,
    /// What changed.
    pub event: DomainEvent,
}

/// An outbox row a dispatcher has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    /// The row.
    pub id: i64,
    /// What changed.
    pub event: DomainEvent,
    /// Earlier tries that failed.
    pub attempts: u32,
    /// When the change committed (Unix milliseconds).
    pub committed_at_ms: i64,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes `event`'s row; run it in the transaction of the change.
pub(crate) fn record(conn: &Connection, event: DomainEvent) -> Result<Change, WidgetError> {
    let text = serde_json::to_string(&event).map_err(|e| WidgetError::Task(e.to_string()))?;
    conn.prepare_cached("INSERT INTO cache_outbox (event, committed_at_ms) VALUES (?1, ?2)")?
        .execute(params![text, now_ms()])?;
    Ok(Change {
        id: conn.last_insert_rowid(),
        event,
    })
}

/// Claims up to `limit` due rows for `claim_ms` and returns them, oldest first.
pub(crate) fn claim(
    conn: &Connection,
    limit: usize,
    claim_ms: i64,
) -> Result<Vec<PendingChange>, WidgetError> {
    let now = now_ms();
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let rows: Vec<(i64, String, u32, i64)> = tx
        .prepare_cached(
            "SELECT id, event, attempts, committed_at_ms FROM cache_outbox
             WHERE dispatched_at_ms IS NULL AND next_attempt_at_ms <= ?1 AND claimed_until_ms <= ?1
             ORDER BY id LIMIT ?2",
        )?
        .query_map(params![now, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(rows.len());
    {
        let mut claim = tx.prepare_cached(
            "UPDATE cache_outbox SET claimed_until_ms = ?2 WHERE id = ?1 AND claimed_until_ms <= ?3",
        )?;
        let mut broken = tx.prepare_cached(
            "UPDATE cache_outbox SET dispatched_at_ms = ?2, last_error = ?3 WHERE id = ?1",
        )?;
        for (id, text, attempts, committed_at_ms) in rows {
            if claim.execute(params![id, now + claim_ms, now])? == 0 {
                continue;
            }
            match serde_json::from_str::<DomainEvent>(&text) {
                Ok(event) => out.push(PendingChange {
                    id,
                    event,
                    attempts,
                    committed_at_ms,
                }),
                Err(e) => {
                    // A row no version of this code can read would be retried forever: set it
                    // aside with the reason, where an operator finds it.
                    tracing::error!(id, error = %e, "outbox row is not a readable event; set aside");
                    broken.execute(params![id, now, format!("unreadable event: {e}")])?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

/// Marks rows dispatched.
pub(crate) fn dispatched(conn: &Connection, ids: &[i64]) -> Result<(), WidgetError> {
    let now = now_ms();
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE cache_outbox SET dispatched_at_ms = ?2, claimed_until_ms = 0 WHERE id = ?1",
        )?;
        for id in ids {
            stmt.execute(params![id, now])?;
        }
        // Dispatched rows are kept an hour for operators, then dropped, so the table stays small.
        // The newest row stays whatever its age: the next id is one past the largest left, and the
        // ids must only grow (a view brought forward names the last change it counts by its id).
        tx.prepare_cached(
            "DELETE FROM cache_outbox WHERE dispatched_at_ms < ?1
             AND id < (SELECT MAX(id) FROM cache_outbox)",
        )?
        .execute([now - 3_600_000])?;
    }
    tx.commit()?;
    Ok(())
}

/// The id of the last committed change, 0 when there is none. Ids grow in commit order: SQLite
/// has one writer at a time, and the newest row is never dropped (see [`dispatched`]).
pub(crate) fn last_change(conn: &Connection) -> Result<i64, WidgetError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM cache_outbox")?
        .query_row([], |r| r.get(0))?)
}

/// Every change with an id in `(after, upto]`, in id order, or `None` when one of them is gone
/// (dropped after its hour) or unreadable: then the caller cannot know what happened in between.
pub(crate) fn changes_between(
    conn: &Connection,
    after: i64,
    upto: i64,
) -> Result<Option<Vec<(i64, DomainEvent)>>, WidgetError> {
    let rows: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT id, event FROM cache_outbox WHERE id > ?1 AND id <= ?2 ORDER BY id",
        )?
        .query_map(params![after, upto], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if rows.len() as i64 != upto.saturating_sub(after).max(0) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(rows.len());
    for (id, text) in rows {
        match serde_json::from_str::<DomainEvent>(&text) {
            Ok(event) => out.push((id, event)),
            Err(_) => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Records a failed try of rows and when to try again.
pub(crate) fn failed(
    conn: &Connection,
    ids: &[i64],
    error: &str,
    retry_in_ms: i64,
) -> Result<(), WidgetError> {
    let now = now_ms();
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE cache_outbox SET attempts = attempts + 1, next_attempt_at_ms = ?2,
                 claimed_until_ms = 0, last_error = ?3
             WHERE id = ?1",
        )?;
        for id in ids {
            stmt.execute(params![id, now + retry_in_ms, error])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Rows not dispatched yet, and the commit time of the oldest (Unix milliseconds).
pub(crate) fn backlog(conn: &Connection) -> Result<(i64, Option<i64>), WidgetError> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*), MIN(committed_at_ms) FROM cache_outbox WHERE dispatched_at_ms IS NULL",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, None)))
}
