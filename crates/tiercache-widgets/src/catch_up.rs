//! [`catch_up`]: brings a computed view forward over the donations committed after it, so a change
//! costs the views it touches a few point lookups instead of a recompute each.
//!
//! The rule that makes it exact: the view counts every change up to some outbox id, and it is
//! brought forward over every change after that id up to the snapshot's last one, reading any
//! figure it cannot derive (a donor's total, whether an employee had given before) from that same
//! snapshot. Where a figure would need rows the view never held (the eleventh campaign of a top
//! ten whose last row fell), it gives up and the caller recomputes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::data::{
    ActivityRow, CampaignRow, DonorRow, Giver, OrganizationStats, Participation, StoreSnapshot,
    TotalDonations, TrendBucket, WidgetData,
};
use crate::error::WidgetError;
use crate::events::{DomainEvent, DonationFacts};
use crate::{WidgetFilters, WidgetType};

/// Rows a list widget shows when its filters name no limit (as the queries do).
const DEFAULT_LIMIT: i64 = 10;

/// A donation counted (`sign` 1) or uncounted by a refund (`sign` -1) in a view's scope.
struct Gift<'a> {
    sign: i64,
    facts: &'a DonationFacts,
    created_at: i64,
    donor: &'a str,
}

/// Brings `view`, the answer of `widget` over `[start, end)` for `filters`, forward over `changes`
/// (in id order: every change after the last one the view counts, up to `snapshot`'s last), with
/// lookups read from `snapshot`. `None` when it cannot say the answer exactly without recomputing:
/// a change other than a donation or a refund, a change missing the donation's date or donor, or
/// a list whose next row the view never held.
///
/// ```no_run
/// # fn run(store: &dyn tiercache_widgets::DonationStore, cached: tiercache_widgets::WidgetData, as_of: i64) -> Result<(), tiercache_widgets::WidgetError> {
/// use tiercache_widgets::{catch_up, WidgetFilters, WidgetType};
/// let (start, end) = (1_764_547_200, 1_767_225_600);
/// let filters = WidgetFilters::new();
/// store.read_snapshot(&mut |snapshot| {
///     let last = snapshot.last_change()?;
///     let Some(changes) = snapshot.changes_between(as_of, last)? else { return Ok(()) };
///     let now = match catch_up(snapshot, WidgetType::TotalDonations, &filters, start, end, &cached, &changes)? {
///         Some(forward) => forward,
///         None => snapshot.compute(WidgetType::TotalDonations, &filters, start, end)?,
///     };
///     println!("as of change {last}: {now:?}");
///     Ok(())
/// })?;
/// # Ok(()) }
/// ```
pub fn catch_up(
    snapshot: &dyn StoreSnapshot,
    widget: WidgetType,
    filters: &WidgetFilters,
    start: i64,
    end: i64,
    view: &WidgetData,
    changes: &[(i64, DomainEvent)],
) -> Result<Option<WidgetData>, WidgetError> {
    if view.widget() != widget {
        return Ok(None);
    }
    let Some(gifts) = gifts_in_scope(changes, widget, filters, start, end) else {
        return Ok(None);
    };
    if gifts.is_empty() {
        return Ok(Some(view.clone()));
    }
    let limit = filters.limit().unwrap_or(DEFAULT_LIMIT).max(0) as usize;
    let lookups = Lookups {
        snapshot,
        filters,
        start,
        end,
    };
    Ok(match view {
        WidgetData::TotalDonations(t) => Some(WidgetData::TotalDonations(totals(t, &gifts))),
        WidgetData::DonationTrends(buckets) => {
            Some(WidgetData::DonationTrends(trends(buckets, &gifts)))
        }
        WidgetData::RecentActivities(rows) => {
            recent(rows, &gifts, limit).map(WidgetData::RecentActivities)
        }
        WidgetData::TopDonors(rows) => {
            top_donors(rows, &gifts, limit, &lookups)?.map(WidgetData::TopDonors)
        }
        WidgetData::CampaignPerformance(rows) => {
            campaigns(rows, &gifts, limit, &lookups)?.map(WidgetData::CampaignPerformance)
        }
        WidgetData::OrganizationStats(s) => Some(WidgetData::OrganizationStats(organization(
            s, &gifts, &lookups,
        )?)),
        WidgetData::EmployeeParticipation(p) => Some(WidgetData::EmployeeParticipation(
            participation(p, &gifts, &lookups)?,
        )),
    })
}

/// The donations and refunds among `changes` that fall in the view's scope, in order; `None` when
/// another change may move `widget`'s figures or a donation lacks what the scope test needs.
fn gifts_in_scope<'a>(
    changes: &'a [(i64, DomainEvent)],
    widget: WidgetType,
    filters: &WidgetFilters,
    start: i64,
    end: i64,
) -> Option<Vec<Gift<'a>>> {
    let mut gifts = Vec::new();
    for (_, event) in changes {
        let (sign, facts) = match event {
            DomainEvent::DonationCompleted(f) => (1, f),
            DomainEvent::DonationRefunded(f) => (-1, f),
            // A campaign's rows (name, goal, dates) show in campaign performance and in the active
            // campaigns an organisation counts; employees in the counts of both organisation-wide
            // widgets. Only those are recomputed; no widget shows an organisation's details.
            DomainEvent::CampaignCreated(_)
            | DomainEvent::CampaignUpdated(_)
            | DomainEvent::CampaignCompleted(_) => match widget {
                WidgetType::CampaignPerformance | WidgetType::OrganizationStats => return None,
                _ => continue,
            },
            DomainEvent::EmployeeJoined { .. } => match widget {
                WidgetType::OrganizationStats | WidgetType::EmployeeParticipation => return None,
                _ => continue,
            },
            DomainEvent::OrganizationUpdated { .. } => continue,
        };
        let created_at = facts.created_at?;
        let donor = facts.donor.as_deref()?;
        let in_scope = (start..end).contains(&created_at)
            && filters
                .organization_id()
                .is_none_or(|o| o == facts.organization_id)
            && filters.campaign_id().is_none_or(|c| c == facts.campaign_id)
            && filters
                .employee_id()
                .is_none_or(|e| Some(e) == facts.employee_id)
            && filters.currency().is_none_or(|c| c == facts.currency);
        if in_scope {
            gifts.push(Gift {
                sign,
                facts,
                created_at,
                donor,
            });
        }
    }
    Some(gifts)
}

/// Point lookups in the snapshot the view is brought forward to, each counted in
/// `widget_refresh_lookups_total`.
struct Lookups<'a> {
    snapshot: &'a dyn StoreSnapshot,
    filters: &'a WidgetFilters,
    start: i64,
    end: i64,
}

impl Lookups<'_> {
    /// `campaign`'s row in the view (none when the view's filters leave it out); `None` when the
    /// filters cannot name it.
    fn campaign(&self, campaign: i64) -> Result<Option<Vec<CampaignRow>>, WidgetError> {
        let Ok(one) = self
            .filters
            .clone()
            .with("campaign_id", campaign.to_string())
        else {
            return Ok(None);
        };
        metrics::counter!("widget_refresh_lookups_total").increment(1);
        match self
            .snapshot
            .compute(WidgetType::CampaignPerformance, &one, self.start, self.end)?
        {
            WidgetData::CampaignPerformance(found) => Ok(Some(found)),
            _ => Ok(None),
        }
    }

    fn giver(&self, giver: Giver<'_>, cap: i64) -> Result<(i64, i64), WidgetError> {
        metrics::counter!("widget_refresh_lookups_total").increment(1);
        self.snapshot
            .giver_donations(self.filters, self.start, self.end, giver, cap)
    }

    /// Whether `giver` counts in the view now, and whether it did before `gifts` (net count
    /// `net` of them), reading at most `net + 1` rows.
    fn counted(&self, giver: Giver<'_>, net: i64) -> Result<(bool, bool), WidgetError> {
        let (_, now) = self.giver(giver, net.max(0) + 1)?;
        Ok((now > 0, now > net))
    }
}

fn totals(t: &TotalDonations, gifts: &[Gift<'_>]) -> TotalDonations {
    let mut total_cents = t.total_cents;
    let mut count = t.count;
    for g in gifts {
        total_cents += g.sign * g.facts.amount_cents;
        count += g.sign;
    }
    TotalDonations {
        total_cents,
        count,
        average_cents: if count > 0 { total_cents / count } else { 0 },
    }
}

fn trends(buckets: &[TrendBucket], gifts: &[Gift<'_>]) -> Vec<TrendBucket> {
    let mut days: BTreeMap<i64, (i64, i64)> = buckets
        .iter()
        .map(|b| (b.day, (b.total_cents, b.count)))
        .collect();
    for g in gifts {
        // Integer division as the query's `created_at / 86400`.
        let day = days.entry(g.created_at / 86_400).or_default();
        day.0 += g.sign * g.facts.amount_cents;
        day.1 += g.sign;
    }
    days.into_iter()
        // A day whose donations were all refunded has no row.
        .filter(|(_, (_, count))| *count > 0)
        .map(|(day, (total_cents, count))| TrendBucket {
            day,
            total_cents,
            count,
        })
        .collect()
}

/// The newest first, as the query orders them.
fn activity_order(row: &ActivityRow) -> Reverse<(i64, i64)> {
    Reverse((row.created_at, row.donation_id))
}

fn recent(rows: &[ActivityRow], gifts: &[Gift<'_>], limit: usize) -> Option<Vec<ActivityRow>> {
    let mut rows = rows.to_vec();
    for g in gifts {
        let row = ActivityRow {
            donation_id: g.facts.donation_id,
            donor: g.donor.to_owned(),
            amount_cents: g.facts.amount_cents,
            currency: g.facts.currency.clone(),
            campaign_id: g.facts.campaign_id,
            created_at: g.created_at,
        };
        let full = rows.len() >= limit;
        let past_the_end = rows
            .last()
            .is_some_and(|last| activity_order(&row) > activity_order(last));
        if g.sign > 0 {
            if full && (past_the_end || limit == 0) {
                continue;
            }
            let at = rows.partition_point(|r| activity_order(r) < activity_order(&row));
            rows.insert(at, row);
            rows.truncate(limit);
        } else if let Some(at) = rows.iter().position(|r| r.donation_id == row.donation_id) {
            if full {
                // The row after the last is not known.
                return None;
            }
            rows.remove(at);
        } else if !(full && past_the_end) {
            // A refunded donation in scope that the list should have shown.
            return None;
        }
    }
    Some(rows)
}

/// Replaces the rows of `touched` in a list ordered by `order` with their figures `now` and says
/// whether the list is still exact: it is when every row it held was shown (fewer than `limit`),
/// or when its new last row still sorts no later than its old one, since every row it never held
/// sorted after that and none of those changed.
fn merge_top<R: Clone, K: Ord>(
    rows: &[R],
    touched: impl Fn(&R) -> bool,
    now: Vec<R>,
    limit: usize,
    order: impl Fn(&R) -> K,
) -> Option<Vec<R>> {
    let full = rows.len() >= limit;
    let old_last = rows.last().map(&order);
    let mut merged: Vec<R> = rows.iter().filter(|r| !touched(r)).cloned().collect();
    merged.extend(now);
    merged.sort_by_key(&order);
    merged.truncate(limit);
    if !full {
        return Some(merged);
    }
    match (merged.last().map(&order), old_last) {
        (Some(new_last), Some(old_last)) if merged.len() == limit && new_last <= old_last => {
            Some(merged)
        }
        _ if limit == 0 => Some(merged),
        _ => None,
    }
}

fn top_donors(
    rows: &[DonorRow],
    gifts: &[Gift<'_>],
    limit: usize,
    lookups: &Lookups<'_>,
) -> Result<Option<Vec<DonorRow>>, WidgetError> {
    let donors: BTreeSet<&str> = gifts.iter().map(|g| g.donor).collect();
    let mut now = Vec::with_capacity(donors.len());
    for donor in &donors {
        let (total_cents, donations) = lookups.giver(Giver::Donor(donor), i64::MAX)?;
        if donations > 0 {
            now.push(DonorRow {
                donor: (*donor).to_owned(),
                total_cents,
                donations,
            });
        }
    }
    Ok(merge_top(
        rows,
        |r| donors.contains(r.donor.as_str()),
        now,
        limit,
        |r| (Reverse(r.total_cents), r.donor.clone()),
    ))
}

fn campaigns(
    rows: &[CampaignRow],
    gifts: &[Gift<'_>],
    limit: usize,
    lookups: &Lookups<'_>,
) -> Result<Option<Vec<CampaignRow>>, WidgetError> {
    let touched: BTreeSet<i64> = gifts.iter().map(|g| g.facts.campaign_id).collect();
    let mut now = Vec::with_capacity(touched.len());
    for campaign in &touched {
        match lookups.campaign(*campaign)? {
            Some(found) => now.extend(found),
            None => return Ok(None),
        }
    }
    Ok(merge_top(
        rows,
        |r| touched.contains(&r.campaign_id),
        now,
        limit,
        |r| (Reverse(r.raised_cents), r.campaign_id),
    ))
}

/// The net count of `gifts` per giver.
fn net_by<'a, K: Ord>(
    gifts: &[Gift<'a>],
    key: impl Fn(&Gift<'a>) -> Option<K>,
) -> BTreeMap<K, i64> {
    let mut net = BTreeMap::new();
    for g in gifts {
        if let Some(k) = key(g) {
            *net.entry(k).or_default() += g.sign;
        }
    }
    net
}

fn organization(
    s: &OrganizationStats,
    gifts: &[Gift<'_>],
    lookups: &Lookups<'_>,
) -> Result<OrganizationStats, WidgetError> {
    let mut out = s.clone();
    for g in gifts {
        out.donations += g.sign;
        out.raised_cents += g.sign * g.facts.amount_cents;
    }
    for (donor, net) in net_by(gifts, |g| Some(g.donor)) {
        let (now, before) = lookups.counted(Giver::Donor(donor), net)?;
        out.donors += i64::from(now) - i64::from(before);
    }
    Ok(out)
}

fn participation(
    p: &Participation,
    gifts: &[Gift<'_>],
    lookups: &Lookups<'_>,
) -> Result<Participation, WidgetError> {
    let mut participants = p.participants;
    for (employee, net) in net_by(gifts, |g| g.facts.employee_id) {
        let (now, before) = lookups.counted(Giver::Employee(employee), net)?;
        participants += i64::from(now) - i64::from(before);
    }
    Ok(Participation {
        employees: p.employees,
        participants,
        rate_permille: crate::data::per_mille(participants, p.employees),
    })
}
