//! The kinds of widget a dashboard shows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::WidgetError;

/// A dashboard widget.
///
/// ```
/// use tiercache_widgets::WidgetType;
/// let t: WidgetType = "top_donors".parse().unwrap();
/// assert_eq!(t.to_string(), "top_donors");
/// assert!("pie_chart".parse::<WidgetType>().unwrap_err().to_string().contains("total_donations"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WidgetType {
    /// Sum, count and average of donations.
    TotalDonations,
    /// Raised vs goal per campaign.
    CampaignPerformance,
    /// Donations per day.
    DonationTrends,
    /// The largest donors.
    TopDonors,
    /// Counts and totals of an organisation.
    OrganizationStats,
    /// The latest donations.
    RecentActivities,
    /// Share of employees who donated.
    EmployeeParticipation,
}

impl WidgetType {
    /// Every widget type.
    pub const ALL: [WidgetType; 7] = [
        WidgetType::TotalDonations,
        WidgetType::CampaignPerformance,
        WidgetType::DonationTrends,
        WidgetType::TopDonors,
        WidgetType::OrganizationStats,
        WidgetType::RecentActivities,
        WidgetType::EmployeeParticipation,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            WidgetType::TotalDonations => "total_donations",
            WidgetType::CampaignPerformance => "campaign_performance",
            WidgetType::DonationTrends => "donation_trends",
            WidgetType::TopDonors => "top_donors",
            WidgetType::OrganizationStats => "organization_stats",
            WidgetType::RecentActivities => "recent_activities",
            WidgetType::EmployeeParticipation => "employee_participation",
        }
    }

    pub(crate) fn valid_names() -> String {
        Self::ALL.map(WidgetType::as_str).join(", ")
    }
}

impl fmt::Display for WidgetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WidgetType {
    type Err = WidgetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == wanted)
            .ok_or_else(|| WidgetError::UnknownWidgetType {
                given: s.to_owned(),
                valid: Self::valid_names(),
            })
    }
}
