//! What the property tests over the store share: a small generated dataset in a scratch file,
//! random donations and refunds, and random views (widget, filters, window).
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use tiercache_testkit::ScratchDatabase;
use tiercache_widgets::{
    DonationStore, NewCampaign, NewDonation, SqliteStore, TimeRange, WidgetFilters,
};

// The demo's dataset, its source included by path: this crate cannot depend on the demo crate,
// which depends on it.
#[path = "../../../tiercache-demo/src/dataset.rs"]
pub mod dataset;
pub use dataset::DatasetSize;

pub const DAY: i64 = 86_400;

/// 30 December 2026, noon UTC: the generated data spans the 400 days before.
pub fn now() -> i64 {
    Utc.with_ymd_and_hms(2026, 12, 30, 12, 0, 0)
        .unwrap()
        .timestamp()
}

pub const SIZE: DatasetSize = DatasetSize {
    organizations: 3,
    campaigns_per_organization: 3,
    employees_per_organization: 4,
    donations: 300,
};
pub const CAMPAIGNS: i64 = SIZE.organizations * SIZE.campaigns_per_organization;
pub const EMPLOYEES: i64 = SIZE.organizations * SIZE.employees_per_organization;
pub const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];

/// A database file of its own (removed with its WAL files when dropped) holding the dataset of
/// [`SIZE`] and `seed` up to [`now`], and the store over it.
pub fn generated_store(seed: u64) -> (ScratchDatabase, SqliteStore) {
    let db = ScratchDatabase::new("tiercache-rollups");
    let store = SqliteStore::open(db.path()).unwrap();
    store
        .import_if_empty(&mut dataset::rows(SIZE, seed, now()))
        .unwrap();
    (db, store)
}

/// A change to the data.
#[derive(Debug, Clone)]
pub enum Change {
    Donate {
        campaign: i64,
        employee: Option<i64>,
        donor: u8,
        cents: i64,
        currency: usize,
        /// Seconds before now: up to two years back, so donations land in closed months and years.
        ago: i64,
    },
    /// Refunds the donation with this id, if it is still completed.
    Refund(i64),
    /// Creates a campaign of an organisation, running from `starts` days before now for `days`.
    Campaign {
        organization: i64,
        starts: i64,
        days: i64,
    },
}

pub fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (1..=CAMPAIGNS, prop::option::of(0..SIZE.employees_per_organization), 0u8..8,
              prop_oneof![Just(500i64), Just(1_000), 1..20_000i64], 0..CURRENCIES.len(),
              prop_oneof![0..DAY, 0..800 * DAY, Just(0)])
            .prop_map(|(campaign, employee, donor, cents, currency, ago)| Change::Donate {
                campaign, employee, donor, cents, currency, ago,
            }),
        1 => (1..=(SIZE.donations + 60)).prop_map(Change::Refund),
        1 => (1..=SIZE.organizations, 0..400i64, 1..120i64)
            .prop_map(|(organization, starts, days)| Change::Campaign { organization, starts, days }),
    ]
}

/// Where a view looks.
#[derive(Debug, Clone)]
pub enum Window {
    /// A named range at `ago` seconds before now.
    Named(usize, i64),
    /// Custom dates: a start day (before now) and a length in days.
    Custom(i64, i64),
    /// Any seconds: a start before now and a length; a time zone's day is such a window.
    Seconds(i64, i64),
}

pub fn window() -> impl Strategy<Value = Window> {
    prop_oneof![
        (0..10usize, prop_oneof![Just(0i64), 0..500 * DAY])
            .prop_map(|(r, ago)| Window::Named(r, ago)),
        (0..500i64, 1..400i64).prop_map(|(start, len)| Window::Custom(start, len)),
        (
            0..500 * DAY,
            prop_oneof![1..DAY, 1..120 * DAY, Just(DAY), Just(7 * DAY)]
        )
            .prop_map(|(start, len)| Window::Seconds(start, len)),
    ]
}

impl Window {
    pub fn bounds(&self) -> (i64, i64) {
        match *self {
            Window::Named(r, ago) => {
                let range = TimeRange::named().nth(r).unwrap();
                let at = DateTime::from_timestamp(now() - ago, 0).unwrap();
                let (start, end) = range.resolve(at);
                (start.timestamp(), end.timestamp())
            }
            Window::Custom(start, len) => {
                let start = (now() / DAY - start) * DAY;
                (start, start + len * DAY)
            }
            Window::Seconds(start, len) => (now() - start, now() - start + len),
        }
    }
}

#[derive(Debug, Clone)]
pub struct View {
    pub widget: usize,
    pub organization: Option<i64>,
    pub campaign: Option<i64>,
    pub employee: Option<i64>,
    pub currency: Option<usize>,
    pub limit: Option<i64>,
    pub window: Window,
}

pub fn view() -> impl Strategy<Value = View> {
    (
        0..7usize,
        prop::option::weighted(0.4, 1..=SIZE.organizations),
        prop::option::weighted(0.3, 1..=CAMPAIGNS),
        prop::option::weighted(0.1, 1..=EMPLOYEES),
        prop::option::weighted(0.2, 0..CURRENCIES.len()),
        prop::option::weighted(0.3, 1..30i64),
        window(),
    )
        .prop_map(
            |(widget, organization, campaign, employee, currency, limit, window)| View {
                widget,
                organization,
                campaign,
                employee,
                currency,
                limit,
                window,
            },
        )
}

impl View {
    pub fn filters(&self) -> WidgetFilters {
        let mut f = WidgetFilters::new();
        for (key, value) in [
            ("organization_id", self.organization),
            ("campaign_id", self.campaign),
            ("employee_id", self.employee),
            ("limit", self.limit),
        ] {
            if let Some(v) = value {
                f = f.with(key, v.to_string()).unwrap();
            }
        }
        if let Some(c) = self.currency {
            f = f.with("currency", CURRENCIES[c]).unwrap();
        }
        f
    }
}

pub fn apply(store: &SqliteStore, change: &Change) {
    match *change {
        Change::Donate {
            campaign,
            employee,
            donor,
            cents,
            currency,
            ago,
        } => {
            let organization = (campaign - 1) / SIZE.campaigns_per_organization + 1;
            let employee =
                employee.map(|e| (organization - 1) * SIZE.employees_per_organization + e + 1);
            store
                .record_donation(NewDonation {
                    campaign_id: campaign,
                    employee_id: employee,
                    donor: format!("Donor {donor:05}"),
                    amount_cents: cents,
                    currency: CURRENCIES[currency].to_owned(),
                    created_at: now() - ago,
                })
                .unwrap();
        }
        Change::Refund(id) => {
            // Refused when the donation does not exist or is refunded already: nothing changes.
            let _ = store.refund_donation(id);
        }
        Change::Campaign {
            organization,
            starts,
            days,
        } => {
            let starts_at = now() - starts * DAY;
            store
                .create_campaign(NewCampaign {
                    organization_id: organization,
                    name: format!("Campaign from {starts} days ago"),
                    goal_cents: 1_000_000,
                    starts_at,
                    ends_at: starts_at + days * DAY,
                })
                .unwrap();
        }
    }
}
