//! Domain events and the one table that says which widgets each affects.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::WidgetType;

/// Something that happened in the domain and may change widget figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DomainEvent {
    /// A donation was completed (counts in the periods containing its date).
    DonationCompleted(DonationFacts),
    /// A donation was refunded or corrected (changes the periods containing its original date).
    DonationRefunded(DonationFacts),
    /// A campaign was created.
    CampaignCreated(CampaignFacts),
    /// A campaign's name, goal or dates changed.
    CampaignUpdated(CampaignFacts),
    /// A campaign ended.
    CampaignCompleted(CampaignFacts),
    /// An employee joined an organisation.
    EmployeeJoined {
        /// The employee.
        employee_id: i64,
        /// Their organisation.
        organization_id: i64,
    },
    /// An organisation's details changed.
    OrganizationUpdated {
        /// The organisation.
        organization_id: i64,
    },
}

/// What invalidation needs to know about a donation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonationFacts {
    /// The donation.
    pub donation_id: i64,
    /// Its campaign.
    pub campaign_id: i64,
    /// The campaign's organisation.
    pub organization_id: i64,
    /// The employee it is attributed to, if any.
    pub employee_id: Option<i64>,
    /// Amount in cents.
    pub amount_cents: i64,
    /// ISO currency code.
    pub currency: String,
    /// When the donation was made (Unix seconds): the periods whose figures it counts in. For a
    /// refund or correction, the original donation's date. `None` means now for a new donation and
    /// "any period" for a refund or correction.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// The donor's name, when known: with it (and the date) a dispatcher brings a cached top-donors
    /// or distinct-donors view forward without recomputing it. Rows written before it existed lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub donor: Option<String>,
}

/// What invalidation needs to know about a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignFacts {
    /// The campaign.
    pub campaign_id: i64,
    /// Its organisation.
    pub organization_id: i64,
}

/// The kind of a [`DomainEvent`], for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// [`DomainEvent::DonationCompleted`]
    DonationCompleted,
    /// [`DomainEvent::DonationRefunded`]
    DonationRefunded,
    /// [`DomainEvent::CampaignCreated`]
    CampaignCreated,
    /// [`DomainEvent::CampaignUpdated`]
    CampaignUpdated,
    /// [`DomainEvent::CampaignCompleted`]
    CampaignCompleted,
    /// [`DomainEvent::EmployeeJoined`]
    EmployeeJoined,
    /// [`DomainEvent::OrganizationUpdated`]
    OrganizationUpdated,
}

use WidgetType as W;

/// Every widget reads donations, so a donation (made or refunded) can move any of them.
const DONATION_WIDGETS: &[WidgetType] = &[
    W::TotalDonations,
    W::DonationTrends,
    W::TopDonors,
    W::CampaignPerformance,
    W::OrganizationStats,
    W::RecentActivities,
    W::EmployeeParticipation,
];

/// Which widgets each event kind affects — the only place this is decided.
///
/// The seed mapped `DonationCompleted` to total_donations, donation_trends and top_donors and
/// `CampaignCreated` to campaign_performance and organization_stats. We keep those and add the widgets the
/// seed forgot: a donation also moves a campaign's raised amount (campaign_performance), an organisation's
/// totals (organization_stats), the feed (recent_activities) and who has given (employee_participation).
pub const AFFECTS: &[(EventKind, &[WidgetType])] = &[
    (EventKind::DonationCompleted, DONATION_WIDGETS),
    (EventKind::DonationRefunded, DONATION_WIDGETS),
    (
        EventKind::CampaignCreated,
        &[W::CampaignPerformance, W::OrganizationStats],
    ),
    (
        EventKind::CampaignUpdated,
        &[W::CampaignPerformance, W::OrganizationStats],
    ),
    (
        EventKind::CampaignCompleted,
        &[W::CampaignPerformance, W::OrganizationStats],
    ),
    (
        EventKind::EmployeeJoined,
        &[W::EmployeeParticipation, W::OrganizationStats],
    ),
    (EventKind::OrganizationUpdated, &[W::OrganizationStats]),
];

impl EventKind {
    /// Every event kind.
    pub const ALL: [EventKind; 7] = [
        EventKind::DonationCompleted,
        EventKind::DonationRefunded,
        EventKind::CampaignCreated,
        EventKind::CampaignUpdated,
        EventKind::CampaignCompleted,
        EventKind::EmployeeJoined,
        EventKind::OrganizationUpdated,
    ];

    /// The widgets this kind of event affects.
    pub fn affects(self) -> &'static [WidgetType] {
        AFFECTS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or(&[], |(_, w)| w)
    }

    /// Whether an event of this kind without a date can change figures of closed past ranges: a
    /// donation made now cannot; a refund, a correction or a campaign change can. Dated donations
    /// reach exactly the ranges containing their date, past or present ([`crate::tags_for_event`]).
    pub fn touches_history(self) -> bool {
        !matches!(self, EventKind::DonationCompleted)
    }
}

impl DomainEvent {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            DomainEvent::DonationCompleted(_) => EventKind::DonationCompleted,
            DomainEvent::DonationRefunded(_) => EventKind::DonationRefunded,
            DomainEvent::CampaignCreated(_) => EventKind::CampaignCreated,
            DomainEvent::CampaignUpdated(_) => EventKind::CampaignUpdated,
            DomainEvent::CampaignCompleted(_) => EventKind::CampaignCompleted,
            DomainEvent::EmployeeJoined { .. } => EventKind::EmployeeJoined,
            DomainEvent::OrganizationUpdated { .. } => EventKind::OrganizationUpdated,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
