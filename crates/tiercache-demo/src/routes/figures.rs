//! [`Figures`]: a view's data as the API answers it — the widget crate's rows, with every amount in
//! cents also given in units (`total_cents: 1250` beside `total: 12.5`), so a page needs no
//! arithmetic.
//!
//! A trend answers every day of its period, a day without donations as a zero bucket: the view
//! holds only the days that had some, and a chart (or any client) placing them side by side would
//! show a month with twelve donation days as twelve adjacent bars. The cached view stays sparse.
//!
//! Written straight into the response by `Serialize`: on an L1 hit this is most of the request's
//! work, so no intermediate JSON tree is built.

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::ser::{Serialize, Serializer};
use serde::Serialize as Derive;
use tiercache_widgets::{
    ActivityRow, CampaignRow, DonorRow, OrganizationStats, TotalDonations, TrendBucket, WidgetData,
};

use crate::amount::cents_to_units;

/// The data of one view, serialized with units beside cents.
#[derive(Debug, Clone)]
pub struct Figures {
    data: Arc<WidgetData>,
    /// The period's days (since the Unix epoch, end excluded), which a trend answers one each.
    days: Range<i64>,
}

impl Figures {
    /// The figures of `data`, the view over the period `[start, end)`.
    pub fn new(data: Arc<WidgetData>, start: DateTime<Utc>, end: DateTime<Utc>) -> Figures {
        const DAY: i64 = 86_400;
        Figures {
            data,
            // Periods start and end at midnight UTC; a partial last day would still be a day.
            days: start.timestamp().div_euclid(DAY)..(end.timestamp() + DAY - 1).div_euclid(DAY),
        }
    }
}

#[derive(Derive)]
struct Totals {
    total_cents: i64,
    total: f64,
    count: i64,
    average_cents: i64,
    average: f64,
}

impl From<&TotalDonations> for Totals {
    fn from(d: &TotalDonations) -> Self {
        Totals {
            total_cents: d.total_cents,
            total: cents_to_units(d.total_cents),
            count: d.count,
            average_cents: d.average_cents,
            average: cents_to_units(d.average_cents),
        }
    }
}

#[derive(Derive)]
struct CampaignFigures<'a> {
    campaign_id: i64,
    name: &'a str,
    goal_cents: i64,
    goal: f64,
    raised_cents: i64,
    raised: f64,
    donations: i64,
    goal_permille: i64,
}

impl<'a> From<&'a CampaignRow> for CampaignFigures<'a> {
    fn from(r: &'a CampaignRow) -> Self {
        CampaignFigures {
            campaign_id: r.campaign_id,
            name: &r.name,
            goal_cents: r.goal_cents,
            goal: cents_to_units(r.goal_cents),
            raised_cents: r.raised_cents,
            raised: cents_to_units(r.raised_cents),
            donations: r.donations,
            goal_permille: r.goal_permille,
        }
    }
}

#[derive(Derive)]
struct Trend {
    day: i64,
    total_cents: i64,
    total: f64,
    count: i64,
}

impl From<&TrendBucket> for Trend {
    fn from(b: &TrendBucket) -> Self {
        Trend {
            day: b.day,
            total_cents: b.total_cents,
            total: cents_to_units(b.total_cents),
            count: b.count,
        }
    }
}

#[derive(Derive)]
struct DonorFigures<'a> {
    donor: &'a str,
    total_cents: i64,
    total: f64,
    donations: i64,
}

impl<'a> From<&'a DonorRow> for DonorFigures<'a> {
    fn from(r: &'a DonorRow) -> Self {
        DonorFigures {
            donor: &r.donor,
            total_cents: r.total_cents,
            total: cents_to_units(r.total_cents),
            donations: r.donations,
        }
    }
}

#[derive(Derive)]
struct Organization {
    active_campaigns: i64,
    employees: i64,
    donations: i64,
    raised_cents: i64,
    raised: f64,
    donors: i64,
}

impl From<&OrganizationStats> for Organization {
    fn from(s: &OrganizationStats) -> Self {
        Organization {
            active_campaigns: s.active_campaigns,
            employees: s.employees,
            donations: s.donations,
            raised_cents: s.raised_cents,
            raised: cents_to_units(s.raised_cents),
            donors: s.donors,
        }
    }
}

#[derive(Derive)]
struct Activity<'a> {
    donation_id: i64,
    donor: &'a str,
    amount_cents: i64,
    amount: f64,
    currency: &'a str,
    campaign_id: i64,
    created_at: i64,
}

impl<'a> From<&'a ActivityRow> for Activity<'a> {
    fn from(r: &'a ActivityRow) -> Self {
        Activity {
            donation_id: r.donation_id,
            donor: &r.donor,
            amount_cents: r.amount_cents,
            amount: cents_to_units(r.amount_cents),
            currency: &r.currency,
            campaign_id: r.campaign_id,
            created_at: r.created_at,
        }
    }
}

impl Serialize for Figures {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &*self.data {
            WidgetData::TotalDonations(d) => Totals::from(d).serialize(serializer),
            WidgetData::CampaignPerformance(rows) => {
                serializer.collect_seq(rows.iter().map(CampaignFigures::from))
            }
            WidgetData::DonationTrends(rows) => serializer.collect_seq(
                TrendBucket::every_day(rows, self.days.clone()).map(|b| Trend::from(&b)),
            ),
            WidgetData::TopDonors(rows) => {
                serializer.collect_seq(rows.iter().map(DonorFigures::from))
            }
            WidgetData::OrganizationStats(s) => Organization::from(s).serialize(serializer),
            WidgetData::RecentActivities(rows) => {
                serializer.collect_seq(rows.iter().map(Activity::from))
            }
            // No amounts: the widget crate's own form.
            WidgetData::EmployeeParticipation(p) => p.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use tiercache_widgets::Participation;

    /// Every field of the widget crate's row is kept, and each `x_cents` gains `x` = cents / 100.
    fn check_units<T: serde::Serialize>(row: &T, answered: &Value) {
        let original = serde_json::to_value(row).unwrap_or(Value::Null);
        let (Value::Object(original), Value::Object(answered)) = (original, answered) else {
            panic!("rows are objects: {answered}");
        };
        for (field, value) in &original {
            assert_eq!(answered.get(field), Some(value), "{field} kept");
            if let Some(name) = field.strip_suffix("_cents") {
                let units = answered[name].as_f64().unwrap_or(f64::NAN);
                let cents = value.as_i64().unwrap_or_default();
                assert!((units - cents as f64 / 100.0).abs() < 1e-9, "{name}");
            }
        }
        let expected = original.len() + original.keys().filter(|k| k.ends_with("_cents")).count();
        assert_eq!(answered.len(), expected, "no other fields: {answered:?}");
    }

    fn answered(data: WidgetData) -> Value {
        // 20,000 days after the epoch: the one day of the trend below.
        let start = DateTime::from_timestamp(20_000 * 86_400, 0).unwrap_or_default();
        let end = start + chrono::Duration::days(1);
        serde_json::to_value(Figures::new(Arc::new(data), start, end)).unwrap_or(Value::Null)
    }

    #[test]
    fn every_widget_keeps_its_fields_and_gains_units() {
        let totals = TotalDonations {
            total_cents: 1250,
            count: 2,
            average_cents: 625,
        };
        check_units(
            &totals,
            &answered(WidgetData::TotalDonations(totals.clone())),
        );
        let campaign = CampaignRow {
            campaign_id: 3,
            name: "Winter".into(),
            goal_cents: 100_000,
            raised_cents: 2_599,
            donations: 4,
            goal_permille: 25,
        };
        let v = answered(WidgetData::CampaignPerformance(vec![campaign.clone()]));
        check_units(&campaign, &v[0]);
        let bucket = TrendBucket {
            day: 20_000,
            total_cents: 101,
            count: 1,
        };
        check_units(
            &bucket,
            &answered(WidgetData::DonationTrends(vec![bucket.clone()]))[0],
        );
        let donor = DonorRow {
            donor: "Ada".into(),
            total_cents: 7,
            donations: 1,
        };
        check_units(
            &donor,
            &answered(WidgetData::TopDonors(vec![donor.clone()]))[0],
        );
        let stats = OrganizationStats {
            active_campaigns: 2,
            employees: 9,
            donations: 3,
            raised_cents: 45_678,
            donors: 2,
        };
        check_units(
            &stats,
            &answered(WidgetData::OrganizationStats(stats.clone())),
        );
        let activity = ActivityRow {
            donation_id: 1,
            donor: "Bo".into(),
            amount_cents: 1_999,
            currency: "EUR".into(),
            campaign_id: 3,
            created_at: 1_700_000_000,
        };
        check_units(
            &activity,
            &answered(WidgetData::RecentActivities(vec![activity.clone()]))[0],
        );
        let participation = Participation {
            employees: 10,
            participants: 4,
            rate_permille: 400,
        };
        check_units(
            &participation,
            &answered(WidgetData::EmployeeParticipation(participation.clone())),
        );
    }

    #[test]
    fn a_trend_answers_every_day_of_its_period_in_order() {
        let day = |d: i64| DateTime::from_timestamp(d * 86_400, 0).unwrap_or_default();
        let held = |d: i64, cents: i64| TrendBucket {
            day: d,
            total_cents: cents,
            count: 1,
        };
        let data = WidgetData::DonationTrends(vec![held(101, 250), held(104, 75)]);
        let v = serde_json::to_value(Figures::new(Arc::new(data), day(100), day(106)))
            .unwrap_or(Value::Null);
        let days: Vec<(i64, f64, i64)> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|b| {
                        let total = b["total"].as_f64().unwrap_or(f64::NAN);
                        (
                            b["day"].as_i64().unwrap_or(-1),
                            total,
                            b["count"].as_i64().unwrap_or(-1),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            days,
            [
                (100, 0.0, 0),
                (101, 2.5, 1),
                (102, 0.0, 0),
                (103, 0.0, 0),
                (104, 0.75, 1),
                (105, 0.0, 0)
            ]
        );
    }
}
