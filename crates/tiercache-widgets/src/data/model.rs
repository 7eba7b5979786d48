//! The typed results of widget queries (what the cache stores).

use serde::{Deserialize, Serialize};

use crate::WidgetType;

/// Sum, count and average of donations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalDonations {
    /// Sum in cents.
    pub total_cents: i64,
    /// Number of donations.
    pub count: i64,
    /// Average in cents (0 when there are none).
    pub average_cents: i64,
}

/// One campaign's performance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRow {
    /// Campaign id.
    pub campaign_id: i64,
    /// Name.
    pub name: String,
    /// Goal in cents.
    pub goal_cents: i64,
    /// Raised in the range, in cents.
    pub raised_cents: i64,
    /// Donations in the range.
    pub donations: i64,
    /// Raised as per-mille of the goal (1000 = reached).
    pub goal_permille: i64,
}

/// Donations of one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendBucket {
    /// Days since the Unix epoch.
    pub day: i64,
    /// Sum in cents.
    pub total_cents: i64,
    /// Number of donations.
    pub count: i64,
}

impl TrendBucket {
    /// One bucket per day of `days` (days since the Unix epoch, end excluded), in order: the one of
    /// `buckets` for that day, or a zero bucket for a day without donations. A trend view holds only
    /// the days that had some, so a chart that places its buckets side by side would close the gaps;
    /// this puts every day of the period where it belongs. `buckets` must be in day order, as every
    /// trend view is; buckets outside `days` are left out.
    ///
    /// ```
    /// use tiercache_widgets::TrendBucket;
    /// let held = [TrendBucket { day: 11, total_cents: 500, count: 2 }];
    /// let days: Vec<(i64, i64)> = TrendBucket::every_day(&held, 10..13).map(|b| (b.day, b.count)).collect();
    /// assert_eq!(days, [(10, 0), (11, 2), (12, 0)]);
    /// ```
    pub fn every_day(
        buckets: &[TrendBucket],
        days: std::ops::Range<i64>,
    ) -> impl Iterator<Item = TrendBucket> + '_ {
        let mut held = buckets.iter().peekable();
        days.map(move |day| {
            while held.next_if(|b| b.day < day).is_some() {}
            held.next_if(|b| b.day == day)
                .cloned()
                .unwrap_or(TrendBucket {
                    day,
                    total_cents: 0,
                    count: 0,
                })
        })
    }
}

/// One donor's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonorRow {
    /// Donor name.
    pub donor: String,
    /// Sum in cents.
    pub total_cents: i64,
    /// Number of donations.
    pub donations: i64,
}

/// An organisation-level summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationStats {
    /// Campaigns running during the range.
    pub active_campaigns: i64,
    /// Employees in scope.
    pub employees: i64,
    /// Donations in the range.
    pub donations: i64,
    /// Raised in the range, in cents.
    pub raised_cents: i64,
    /// Distinct donors in the range.
    pub donors: i64,
}

/// One recent donation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRow {
    /// Donation id.
    pub donation_id: i64,
    /// Donor name.
    pub donor: String,
    /// Amount in cents.
    pub amount_cents: i64,
    /// Currency.
    pub currency: String,
    /// Campaign id.
    pub campaign_id: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// Share of employees who donated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participation {
    /// Employees in scope.
    pub employees: i64,
    /// Of those, how many donated in the range.
    pub participants: i64,
    /// participants / employees in per-mille.
    pub rate_permille: i64,
}

/// The data of one widget view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WidgetData {
    /// [`WidgetType::TotalDonations`]
    TotalDonations(TotalDonations),
    /// [`WidgetType::CampaignPerformance`]
    CampaignPerformance(Vec<CampaignRow>),
    /// [`WidgetType::DonationTrends`]
    DonationTrends(Vec<TrendBucket>),
    /// [`WidgetType::TopDonors`]
    TopDonors(Vec<DonorRow>),
    /// [`WidgetType::OrganizationStats`]
    OrganizationStats(OrganizationStats),
    /// [`WidgetType::RecentActivities`]
    RecentActivities(Vec<ActivityRow>),
    /// [`WidgetType::EmployeeParticipation`]
    EmployeeParticipation(Participation),
}

impl WidgetData {
    /// The widget type this data belongs to.
    pub fn widget(&self) -> WidgetType {
        match self {
            WidgetData::TotalDonations(_) => WidgetType::TotalDonations,
            WidgetData::CampaignPerformance(_) => WidgetType::CampaignPerformance,
            WidgetData::DonationTrends(_) => WidgetType::DonationTrends,
            WidgetData::TopDonors(_) => WidgetType::TopDonors,
            WidgetData::OrganizationStats(_) => WidgetType::OrganizationStats,
            WidgetData::RecentActivities(_) => WidgetType::RecentActivities,
            WidgetData::EmployeeParticipation(_) => WidgetType::EmployeeParticipation,
        }
    }
}

/// A donation to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDonation {
    /// The campaign given to.
    pub campaign_id: i64,
    /// The employee it is attributed to, if any.
    pub employee_id: Option<i64>,
    /// Donor name.
    pub donor: String,
    /// Amount in cents (positive).
    pub amount_cents: i64,
    /// ISO currency code.
    pub currency: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A campaign to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCampaign {
    /// The organisation running it.
    pub organization_id: i64,
    /// Name.
    pub name: String,
    /// Goal in cents (positive).
    pub goal_cents: i64,
    /// Unix seconds.
    pub starts_at: i64,
    /// Unix seconds, after `starts_at`.
    pub ends_at: i64,
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    /// Its id.
    pub id: i64,
    /// What was stored.
    #[serde(flatten)]
    pub fields: NewCampaign,
}

/// An organisation and its campaigns, for pickers and load generators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationEntry {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Employees on its payroll.
    pub employees: i64,
    /// Its campaigns, by id.
    pub campaigns: Vec<CampaignEntry>,
}

/// A campaign's id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignEntry {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::TrendBucket;

    fn bucket(day: i64, count: i64) -> TrendBucket {
        TrendBucket {
            day,
            total_cents: count * 100,
            count,
        }
    }

    #[test]
    fn every_day_of_the_period_is_there_once_with_zeros_between_the_held_days() {
        let held = [bucket(3, 1), bucket(5, 2), bucket(6, 4), bucket(20, 9)];
        let days: Vec<TrendBucket> = TrendBucket::every_day(&held, 4..9).collect();
        assert_eq!(
            days,
            [
                bucket(4, 0),
                bucket(5, 2),
                bucket(6, 4),
                bucket(7, 0),
                bucket(8, 0)
            ],
            "days outside the period are left out, the ones inside kept as they were"
        );
        assert_eq!(TrendBucket::every_day(&[], 0..3).count(), 3);
        assert_eq!(TrendBucket::every_day(&held, 5..5).count(), 0);
    }
}
