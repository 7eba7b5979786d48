//! One aggregate query per widget type over the raw donation rows, scoped by the time range and the
//! filters: the reference the rollups are held equal to, and the answer for filters they do not carry.

use std::fmt::Write as _;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

use super::model::{
    ActivityRow, CampaignRow, DonorRow, OrganizationStats, Participation, TotalDonations,
    TrendBucket, WidgetData,
};
use crate::{WidgetFilters, WidgetType};

/// Default row count of list widgets.
pub(crate) const DEFAULT_LIMIT: i64 = 10;

/// A WHERE fragment on donations (alias `d`) with its parameters.
pub(crate) struct DonationScope {
    pub(crate) sql: String,
    pub(crate) params: Vec<Value>,
}

pub(crate) fn donation_scope(filters: &WidgetFilters, start: i64, end: i64) -> DonationScope {
    let mut sql = String::from("d.status = 'completed' AND d.created_at >= ? AND d.created_at < ?");
    let mut params = vec![Value::Integer(start), Value::Integer(end)];
    for (column, value) in [
        ("organization_id", filters.organization_id()),
        ("campaign_id", filters.campaign_id()),
        ("employee_id", filters.employee_id()),
    ] {
        if let Some(v) = value {
            let _ = write!(sql, " AND d.{column} = ?");
            params.push(Value::Integer(v));
        }
    }
    if let Some(c) = filters.currency() {
        sql.push_str(" AND d.currency = ?");
        params.push(Value::Text(c.to_owned()));
    }
    DonationScope { sql, params }
}

pub(crate) fn per_mille(part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        0
    } else {
        part.saturating_mul(1000) / whole
    }
}

/// What every widget query needs.
struct Query<'a> {
    filters: &'a WidgetFilters,
    scope: DonationScope,
    limit: i64,
    start: i64,
    end: i64,
}

/// A widget asked for: its type and filters over `[start, end)` (Unix seconds). The rollups and
/// the raw rows answer the same question, and the rollups hand it on whole where they fall back.
#[derive(Clone, Copy)]
pub(crate) struct Asked<'a> {
    pub(crate) widget: WidgetType,
    pub(crate) filters: &'a WidgetFilters,
    pub(crate) start: i64,
    pub(crate) end: i64,
}

/// Runs the query of the widget `asked` for.
pub(crate) fn run(conn: &Connection, asked: Asked<'_>) -> rusqlite::Result<WidgetData> {
    let filters = asked.filters;
    let q = Query {
        filters,
        scope: donation_scope(filters, asked.start, asked.end),
        limit: filters.limit().unwrap_or(DEFAULT_LIMIT),
        start: asked.start,
        end: asked.end,
    };
    match asked.widget {
        WidgetType::TotalDonations => total_donations(conn, &q),
        WidgetType::CampaignPerformance => campaign_performance(conn, &q),
        WidgetType::DonationTrends => donation_trends(conn, &q),
        WidgetType::TopDonors => top_donors(conn, &q),
        WidgetType::OrganizationStats => organization_stats(conn, &q),
        WidgetType::RecentActivities => recent_activities(conn, &q),
        WidgetType::EmployeeParticipation => employee_participation(conn, &q),
    }
}

fn total_donations(conn: &Connection, q: &Query<'_>) -> rusqlite::Result<WidgetData> {
    let sql = format!(
        "SELECT COALESCE(SUM(d.amount_cents), 0), COUNT(*) FROM donations d WHERE {}",
        q.scope.sql
    );
    let (total, count): (i64, i64) = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(&q.scope.params), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok(WidgetData::TotalDonations(TotalDonations {
        total_cents: total,
        count,
        average_cents: if count > 0 { total / count } else { 0 },
    }))
}

fn campaign_performance(conn: &Connection, q: &Query<'_>) -> rusqlite::Result<WidgetData> {
    let mut params = q.scope.params.clone();
    let mut campaign_filter = String::new();
    if let Some(o) = q.filters.organization_id() {
        campaign_filter.push_str(" AND c.organization_id = ?");
        params.push(Value::Integer(o));
    }
    if let Some(c) = q.filters.campaign_id() {
        campaign_filter.push_str(" AND c.id = ?");
        params.push(Value::Integer(c));
    }
    params.push(Value::Integer(q.limit));
    let sql = format!(
        "SELECT c.id, c.name, c.goal_cents, COALESCE(SUM(d.amount_cents), 0), COUNT(d.id)
         FROM campaigns c LEFT JOIN donations d ON d.campaign_id = c.id AND {}
         WHERE 1 = 1 {campaign_filter}
         GROUP BY c.id ORDER BY 4 DESC, c.id LIMIT ?",
        q.scope.sql
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(&params), |r| {
        let (goal, raised): (i64, i64) = (r.get(2)?, r.get(3)?);
        Ok(CampaignRow {
            campaign_id: r.get(0)?,
            name: r.get(1)?,
            goal_cents: goal,
            raised_cents: raised,
            donations: r.get(4)?,
            goal_permille: per_mille(raised, goal),
        })
    })?;
    Ok(WidgetData::CampaignPerformance(
        rows.collect::<rusqlite::Result<_>>()?,
    ))
}

fn donation_trends(conn: &Connection, q: &Query<'_>) -> rusqlite::Result<WidgetData> {
    let sql = format!(
        "SELECT d.created_at / 86400 AS day, SUM(d.amount_cents), COUNT(*) FROM donations d WHERE {} GROUP BY day ORDER BY day",
        q.scope.sql
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(&q.scope.params), |r| {
        Ok(TrendBucket {
            day: r.get(0)?,
            total_cents: r.get(1)?,
            count: r.get(2)?,
        })
    })?;
    Ok(WidgetData::DonationTrends(
        rows.collect::<rusqlite::Result<_>>()?,
    ))
}

fn top_donors(conn: &Connection, q: &Query<'_>) -> rusqlite::Result<WidgetData> {
    let mut params = q.scope.params.clone();
    params.push(Value::Integer(q.limit));
    let sql = format!(
        "SELECT d.donor, SUM(d.amount_cents) AS total, COUNT(*) FROM donations d WHERE {}
         GROUP BY d.donor ORDER BY total DESC, d.donor LIMIT ?",
        q.scope.sql
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(&params), |r| {
        Ok(DonorRow {
            donor: r.get(0)?,
            total_cents: r.get(1)?,
            donations: r.get(2)?,
        })
    })?;
    Ok(WidgetData::TopDonors(
        rows.collect::<rusqlite::Result<_>>()?,
    ))
}

fn organization_stats(conn: &Connection, q: &Query<'_>) -> rusqlite::Result<WidgetData> {
    let sql = format!(
        "SELECT COUNT(*), COALESCE(SUM(d.amount_cents), 0), COUNT(DISTINCT d.donor) FROM donations d WHERE {}",
        q.scope.sql
    );
    let (donations, raised, donors): (i64, i64, i64) = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(&q.scope.params), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let active_campaigns = active_campaigns(conn, q.filters, q.start, q.end)?;
    let employees = employee_count(conn, q.filters)?;
    Ok(WidgetData::OrganizationStats(OrganizationStats {
        active_campaigns,
        employees,
        donations,
        raised_cents: raised,
        donors,
    }))
}

/// Campaigns in the filters' scope that run at some point of `[start, end)`.
pub(crate) fn active_campaigns(
    conn: &Connection,
    filters: &WidgetFilters,
    start: i64,
    end: i64,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM campaigns WHERE (?1 IS NULL OR organization_id = ?1) AND (?2 IS NULL OR id = ?2)
         AND starts_at < ?4 AND ends_at > ?3",
    )?
    .query_row(
        rusqlite::params![filters.organization_id(), filters.campaign_id(), start, end],
        |r| r.get(0),
    )
}

fn recent_activities(conn: &Connection, q: &Query<'_>) -> rusqlite::Result<WidgetData> {
    let mut params = q.scope.params.clone();
    params.push(Value::Integer(q.limit));
    let sql = format!(
        "SELECT d.id, d.donor, d.amount_cents, d.currency, d.campaign_id, d.created_at FROM donations d WHERE {}
         ORDER BY d.created_at DESC, d.id DESC LIMIT ?",
        q.scope.sql
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(&params), |r| {
        Ok(ActivityRow {
            donation_id: r.get(0)?,
            donor: r.get(1)?,
            amount_cents: r.get(2)?,
            currency: r.get(3)?,
            campaign_id: r.get(4)?,
            created_at: r.get(5)?,
        })
    })?;
    Ok(WidgetData::RecentActivities(
        rows.collect::<rusqlite::Result<_>>()?,
    ))
}

fn employee_participation(conn: &Connection, q: &Query<'_>) -> rusqlite::Result<WidgetData> {
    let sql = format!(
        "SELECT COUNT(DISTINCT d.employee_id) FROM donations d WHERE {} AND d.employee_id IS NOT NULL",
        q.scope.sql
    );
    let participants: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(&q.scope.params), |r| r.get(0))?;
    let employees = employee_count(conn, q.filters)?;
    Ok(WidgetData::EmployeeParticipation(Participation {
        employees,
        participants,
        rate_permille: per_mille(participants, employees),
    }))
}

pub(crate) fn employee_count(conn: &Connection, filters: &WidgetFilters) -> rusqlite::Result<i64> {
    let org = filters.organization_id().or_else(|| {
        // A campaign filter narrows employees to the campaign's organisation.
        filters.campaign_id().and_then(|c| {
            conn.query_row(
                "SELECT organization_id FROM campaigns WHERE id = ?1",
                [c],
                |r| r.get::<_, i64>(0),
            )
            .ok()
        })
    });
    conn.prepare_cached("SELECT COUNT(*) FROM employees WHERE (?1 IS NULL OR organization_id = ?1) AND (?2 IS NULL OR id = ?2)")?
        .query_row(rusqlite::params![org, filters.employee_id()], |r| r.get(0))
}

/// Whose donations a point lookup counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Giver<'a> {
    /// A donor, by name.
    Donor(&'a str),
    /// An employee, by id.
    Employee(i64),
}

/// The sum and count of `giver`'s donations in scope, reading at most `cap` of them (the count then
/// stops at `cap`, the sum covers those read): a catch-up asks whether a donor or an employee had
/// donated before a change, which needs only a few rows, and a donor's exact total, which is a few
/// rows too. The index is named because the planner, without statistics, may prefer the scope's.
/// `INDEXED BY` is a SQLite hint; a PostgreSQL store drops it and relies on its statistics.
pub(crate) fn giver_donations(
    conn: &Connection,
    filters: &WidgetFilters,
    start: i64,
    end: i64,
    giver: Giver<'_>,
    cap: i64,
) -> rusqlite::Result<(i64, i64)> {
    let scope = donation_scope(filters, start, end);
    let (index, column, who) = match giver {
        Giver::Donor(name) => ("donations_by_donor", "donor", Value::Text(name.to_owned())),
        Giver::Employee(id) => ("donations_by_employee", "employee_id", Value::Integer(id)),
    };
    let mut params = vec![who];
    params.extend(scope.params);
    params.push(Value::Integer(cap.max(0)));
    let sql = format!(
        "SELECT COALESCE(SUM(amount_cents), 0), COUNT(*) FROM (
             SELECT d.amount_cents FROM donations d INDEXED BY {index}
             WHERE d.{column} = ? AND {} LIMIT ?)",
        scope.sql
    );
    conn.prepare_cached(&sql)?
        .query_row(params_from_iter(&params), |r| Ok((r.get(0)?, r.get(1)?)))
}
