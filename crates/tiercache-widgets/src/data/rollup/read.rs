//! The widget queries answered from the rollups, with the raw rows for a range's partial edge days
//! and for the filters the rollups do not carry.

use std::collections::{BTreeMap, HashMap, HashSet};

use std::hash::Hash;

use rusqlite::types::FromSql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::calendar::{cover, Bucket, Cover};
use super::Scope;
use crate::data::model::{
    CampaignRow, DonorRow, OrganizationStats, Participation, TotalDonations, TrendBucket,
    WidgetData,
};
use crate::data::queries::{
    self, active_campaigns, donation_scope, employee_count, per_mille, Asked, DEFAULT_LIMIT,
};
use crate::{WidgetFilters, WidgetType};

/// Runs the query of the widget `asked` for, from the rollups where they carry
/// the filters and from the raw rows where they do not. Equal to [`queries::run`] in every case.
pub(crate) fn run(conn: &Connection, asked: Asked<'_>) -> rusqlite::Result<WidgetData> {
    let filters = asked.filters;
    // One employee's donations are few and indexed; the rollups do not count per employee.
    if filters.employee_id().is_some() {
        return queries::run(conn, asked);
    }
    let Some(scope) = totals_scope(conn, filters)? else {
        // A campaign outside the organisation asked for: nothing matches, and the raw rows say so cheaply.
        return queries::run(conn, asked);
    };
    // Per-donor and per-employee rows are kept for the whole dataset and each organisation, in all
    // currencies; narrower scopes are few rows through the campaign and time indexes.
    let people = filters.currency().is_none() && filters.campaign_id().is_none();
    let read = Read {
        conn,
        filters,
        scope,
        cover: cover(asked.start, asked.end),
        start: asked.start,
        end: asked.end,
    };
    match asked.widget {
        WidgetType::TotalDonations => read.total_donations(),
        WidgetType::CampaignPerformance => read.campaign_performance(),
        WidgetType::DonationTrends => read.donation_trends(),
        WidgetType::TopDonors if people => read.top_donors(),
        WidgetType::OrganizationStats if people => read.organization_stats(),
        WidgetType::EmployeeParticipation if people => read.employee_participation(),
        _ => queries::run(conn, asked),
    }
}

/// The scope whose totals answer `filters`, or `None` when the campaign asked for is not in the
/// organisation asked for.
fn totals_scope(conn: &Connection, filters: &WidgetFilters) -> rusqlite::Result<Option<Scope>> {
    Ok(match (filters.campaign_id(), filters.organization_id()) {
        (Some(campaign), Some(organization)) => {
            let owner: Option<i64> = conn
                .prepare_cached("SELECT organization_id FROM campaigns WHERE id = ?1")?
                .query_row([campaign], |r| r.get(0))
                .optional()?;
            (owner == Some(organization)).then_some(Scope::Campaign(campaign))
        }
        (Some(campaign), None) => Some(Scope::Campaign(campaign)),
        (None, Some(organization)) => Some(Scope::Organization(organization)),
        (None, None) => Some(Scope::Global),
    })
}

/// One widget read over the rollups.
struct Read<'a> {
    conn: &'a Connection,
    filters: &'a WidgetFilters,
    scope: Scope,
    cover: Cover,
    start: i64,
    end: i64,
}

impl Read<'_> {
    fn limit(&self) -> i64 {
        self.filters.limit().unwrap_or(DEFAULT_LIMIT)
    }

    fn currency(&self) -> Option<&str> {
        self.filters.currency()
    }

    /// The bucket the whole range is, when it is exactly one.
    fn single_bucket(&self) -> Option<Bucket> {
        match (self.cover.buckets.as_slice(), self.cover.edges.is_empty()) {
            ([only], true) => Some(*only),
            _ => None,
        }
    }

    /// Feeds `row` every row of `bucket_sql` over each whole bucket of the range (its parameters
    /// from `bucket_params`), then every row of `edge_sql` over each partial edge
    /// ([`Read::each_edge`]).
    fn each_part<P: rusqlite::Params>(
        &self,
        (bucket_sql, bucket_params): (&str, impl Fn(&Bucket) -> P),
        edge_sql: &str,
        mut row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(bucket_sql)?;
        for bucket in &self.cover.buckets {
            let mut rows = stmt.query(bucket_params(bucket))?;
            while let Some(r) = rows.next()? {
                row(r)?;
            }
        }
        self.each_edge(edge_sql, row)
    }

    /// Runs `sql` over the raw donations of each partial edge of the range; `sql` holds `{scope}`
    /// where the donation filter goes.
    fn each_edge(
        &self,
        sql: &str,
        mut row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        for &(a, b) in &self.cover.edges {
            let scope = donation_scope(self.filters, a, b);
            let sql = sql.replace("{scope}", &scope.sql);
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(&scope.params))?;
            while let Some(r) = rows.next()? {
                row(r)?;
            }
        }
        Ok(())
    }

    /// The first `limit` rows (the filter, or the default ten).
    fn keep_limit<T>(&self, rows: &mut Vec<T>) {
        rows.truncate(usize::try_from(self.limit()).unwrap_or(usize::MAX));
    }

    /// Sum and count of the donations in scope.
    fn sums(&self) -> rusqlite::Result<(i64, i64)> {
        let (s, id) = self.scope.columns();
        let (mut total, mut count) = (0i64, 0i64);
        self.each_part(
            (
                "SELECT COALESCE(SUM(total_cents), 0), COALESCE(SUM(donations), 0) FROM rollup_totals
                 WHERE scope = ?1 AND scope_id = ?2 AND grain = ?3 AND bucket = ?4 AND (?5 IS NULL OR currency = ?5)",
                |b: &Bucket| (s, id, b.grain.code(), b.start, self.currency()),
            ),
            "SELECT COALESCE(SUM(d.amount_cents), 0), COUNT(*) FROM donations d WHERE {scope}",
            |r| {
                total += r.get::<_, i64>(0)?;
                count += r.get::<_, i64>(1)?;
                Ok(())
            },
        )?;
        Ok((total, count))
    }

    fn total_donations(&self) -> rusqlite::Result<WidgetData> {
        let (total_cents, count) = self.sums()?;
        Ok(WidgetData::TotalDonations(TotalDonations {
            total_cents,
            count,
            average_cents: if count > 0 { total_cents / count } else { 0 },
        }))
    }

    fn campaign_performance(&self) -> rusqlite::Result<WidgetData> {
        let mut raised: HashMap<i64, (i64, i64)> = HashMap::new();
        self.each_part(
            (
                "SELECT scope_id, SUM(total_cents), SUM(donations) FROM rollup_totals
                 WHERE scope = 2 AND grain = ?1 AND bucket = ?2 AND (?3 IS NULL OR scope_id = ?3)
                   AND (?4 IS NULL OR currency = ?4)
                 GROUP BY scope_id",
                |b: &Bucket| {
                    (
                        b.grain.code(),
                        b.start,
                        self.filters.campaign_id(),
                        self.currency(),
                    )
                },
            ),
            "SELECT d.campaign_id, SUM(d.amount_cents), COUNT(*) FROM donations d WHERE {scope}
             GROUP BY d.campaign_id",
            |r| {
                let sums = raised.entry(r.get(0)?).or_default();
                sums.0 += r.get::<_, i64>(1)?;
                sums.1 += r.get::<_, i64>(2)?;
                Ok(())
            },
        )?;
        let mut campaigns = self.conn.prepare_cached(
            "SELECT id, name, goal_cents FROM campaigns
             WHERE (?1 IS NULL OR organization_id = ?1) AND (?2 IS NULL OR id = ?2)",
        )?;
        let mut rows: Vec<CampaignRow> = campaigns
            .query_map(
                params![self.filters.organization_id(), self.filters.campaign_id()],
                |r| {
                    let id: i64 = r.get(0)?;
                    let goal: i64 = r.get(2)?;
                    let (raised, donations) = raised.get(&id).copied().unwrap_or_default();
                    Ok(CampaignRow {
                        campaign_id: id,
                        name: r.get(1)?,
                        goal_cents: goal,
                        raised_cents: raised,
                        donations,
                        goal_permille: per_mille(raised, goal),
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        // The raw query's order: most raised first, then by id.
        rows.sort_by(|a, b| {
            b.raised_cents
                .cmp(&a.raised_cents)
                .then(a.campaign_id.cmp(&b.campaign_id))
        });
        self.keep_limit(&mut rows);
        Ok(WidgetData::CampaignPerformance(rows))
    }

    fn donation_trends(&self) -> rusqlite::Result<WidgetData> {
        let mut days: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        if let (Some(first), Some(last)) = (self.cover.buckets.first(), self.cover.buckets.last()) {
            let (s, id) = self.scope.columns();
            let mut stmt = self.conn.prepare_cached(
                "SELECT bucket, SUM(total_cents), SUM(donations) FROM rollup_totals
                 WHERE scope = ?1 AND scope_id = ?2 AND grain = 0 AND bucket >= ?3 AND bucket < ?4
                   AND (?5 IS NULL OR currency = ?5)
                 GROUP BY bucket",
            )?;
            let mut rows = stmt.query(params![
                s,
                id,
                first.start,
                last.grain.next_bucket(last.start),
                self.currency()
            ])?;
            while let Some(r) = rows.next()? {
                let day = r.get::<_, i64>(0)?.div_euclid(86_400);
                days.insert(day, (r.get(1)?, r.get(2)?));
            }
        }
        self.each_edge(
            "SELECT d.created_at / 86400, SUM(d.amount_cents), COUNT(*) FROM donations d WHERE {scope}
             GROUP BY 1",
            |r| {
                let sums = days.entry(r.get(0)?).or_default();
                sums.0 += r.get::<_, i64>(1)?;
                sums.1 += r.get::<_, i64>(2)?;
                Ok(())
            },
        )?;
        Ok(WidgetData::DonationTrends(
            days.into_iter()
                .map(|(day, (total_cents, count))| TrendBucket {
                    day,
                    total_cents,
                    count,
                })
                .collect(),
        ))
    }

    fn top_donors(&self) -> rusqlite::Result<WidgetData> {
        let (s, id) = self.scope.columns();
        if let Some(b) = self.single_bucket() {
            // The index keeps each bucket's donors by total: the answer is its first rows.
            let mut stmt = self.conn.prepare_cached(
                "SELECT donor, total_cents, donations FROM rollup_donors
                 WHERE scope = ?1 AND scope_id = ?2 AND grain = ?3 AND bucket = ?4
                 ORDER BY total_cents DESC, donor LIMIT ?5",
            )?;
            let rows =
                stmt.query_map(params![s, id, b.grain.code(), b.start, self.limit()], |r| {
                    Ok(DonorRow {
                        donor: r.get(0)?,
                        total_cents: r.get(1)?,
                        donations: r.get(2)?,
                    })
                })?;
            return Ok(WidgetData::TopDonors(
                rows.collect::<rusqlite::Result<_>>()?,
            ));
        }
        let mut donors: HashMap<String, (i64, i64)> = HashMap::new();
        self.each_part(
            (
                "SELECT donor, total_cents, donations FROM rollup_donors
                 WHERE scope = ?1 AND scope_id = ?2 AND grain = ?3 AND bucket = ?4",
                |b: &Bucket| (s, id, b.grain.code(), b.start),
            ),
            "SELECT d.donor, SUM(d.amount_cents), COUNT(*) FROM donations d WHERE {scope} GROUP BY d.donor",
            |r| {
                let sums = donors.entry(r.get(0)?).or_default();
                sums.0 += r.get::<_, i64>(1)?;
                sums.1 += r.get::<_, i64>(2)?;
                Ok(())
            },
        )?;
        let mut rows: Vec<DonorRow> = donors
            .into_iter()
            .map(|(donor, (total_cents, donations))| DonorRow {
                donor,
                total_cents,
                donations,
            })
            .collect();
        // The raw query's order: largest total first, then by name (byte order, as SQLite's BINARY).
        rows.sort_by(|a, b| {
            b.total_cents
                .cmp(&a.total_cents)
                .then(a.donor.cmp(&b.donor))
        });
        self.keep_limit(&mut rows);
        Ok(WidgetData::TopDonors(rows))
    }

    /// Distinct donors (`donors`) or distinct giving employees (`participants`) in scope.
    fn distinct(&self, people: People) -> rusqlite::Result<i64> {
        let (s, id) = self.scope.columns();
        if let Some(b) = self.single_bucket() {
            let sql = match people {
                People::Donors => "SELECT donors FROM rollup_distinct WHERE scope = ?1 AND scope_id = ?2 AND grain = ?3 AND bucket = ?4",
                People::Participants => "SELECT participants FROM rollup_distinct WHERE scope = ?1 AND scope_id = ?2 AND grain = ?3 AND bucket = ?4",
            };
            return Ok(self
                .conn
                .prepare_cached(sql)?
                .query_row(params![s, id, b.grain.code(), b.start], |r| r.get(0))
                .optional()?
                .unwrap_or(0));
        }
        match people {
            People::Donors => self.union_count::<String>(
                "SELECT donor FROM rollup_donors WHERE scope = ?1 AND scope_id = ?2 AND grain = ?3 AND bucket = ?4",
                "SELECT DISTINCT d.donor FROM donations d WHERE {scope}",
            ),
            People::Participants => self.union_count::<i64>(
                "SELECT employee_id FROM rollup_participants WHERE scope = ?1 AND scope_id = ?2 AND grain = ?3 AND bucket = ?4",
                "SELECT DISTINCT d.employee_id FROM donations d WHERE {scope} AND d.employee_id IS NOT NULL",
            ),
        }
    }

    /// How many distinct values `sql` (per bucket) and `edge_sql` (per raw edge) give together.
    fn union_count<T: FromSql + Hash + Eq>(
        &self,
        sql: &str,
        edge_sql: &str,
    ) -> rusqlite::Result<i64> {
        let (s, id) = self.scope.columns();
        let mut seen: HashSet<T> = HashSet::new();
        self.each_part(
            (sql, |b: &Bucket| (s, id, b.grain.code(), b.start)),
            edge_sql,
            |r| {
                seen.insert(r.get(0)?);
                Ok(())
            },
        )?;
        Ok(seen.len() as i64)
    }

    fn organization_stats(&self) -> rusqlite::Result<WidgetData> {
        let (raised_cents, donations) = self.sums()?;
        Ok(WidgetData::OrganizationStats(OrganizationStats {
            active_campaigns: active_campaigns(self.conn, self.filters, self.start, self.end)?,
            employees: employee_count(self.conn, self.filters)?,
            donations,
            raised_cents,
            donors: self.distinct(People::Donors)?,
        }))
    }

    fn employee_participation(&self) -> rusqlite::Result<WidgetData> {
        let employees = employee_count(self.conn, self.filters)?;
        let participants = self.distinct(People::Participants)?;
        Ok(WidgetData::EmployeeParticipation(Participation {
            employees,
            participants,
            rate_permille: per_mille(participants, employees),
        }))
    }
}

/// Whom [`Read::distinct`] counts.
#[derive(Debug, Clone, Copy)]
enum People {
    Donors,
    Participants,
}
