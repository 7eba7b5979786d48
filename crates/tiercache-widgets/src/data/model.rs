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
