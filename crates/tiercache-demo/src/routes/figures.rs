//! [`Figures`]: a view's data as the API answers it — the widget crate's rows, with every amount in
//! cents also given in units (`total_cents: 1250` beside `total: 12.5`), so a page needs no
//! arithmetic.
//!
//! Written straight into the response by `Serialize`: on an L1 hit this is most of the request's
//! work, so no intermediate JSON tree is built.

use std::sync::Arc;

use serde::ser::{Serialize, Serializer};
use serde::Serialize as Derive;
use tiercache_widgets::{
    ActivityRow, CampaignRow, DonorRow, OrganizationStats, TotalDonations, TrendBucket, WidgetData,
};

use crate::amount::cents_to_units;

/// The data of one view, serialized with units beside cents.
#[derive(Debug, Clone)]
pub struct Figures(pub Arc<WidgetData>);

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
        match &*self.0 {
            WidgetData::TotalDonations(d) => Totals::from(d).serialize(serializer),
            WidgetData::CampaignPerformance(rows) => {
                serializer.collect_seq(rows.iter().map(CampaignFigures::from))
            }
            WidgetData::DonationTrends(rows) => {
                serializer.collect_seq(rows.iter().map(Trend::from))
            }
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
        serde_json::to_value(Figures(Arc::new(data))).unwrap_or(Value::Null)
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
}
