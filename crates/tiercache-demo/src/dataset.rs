//! The demo's synthetic dataset: organisations, campaigns, employees and a year's donations,
//! deterministic (the same seed and size give the same rows), bulk loaded through
//! [`WidgetDataAggregationService::import_if_empty`].
//!
//! It lives with the demo, the one program that runs on it; the CLI's and the benches' tests use it
//! through this crate. The widget crate's own tests include this file by path (their crate cannot
//! depend on the demo, which depends on it), so it names nothing of the demo crate.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tiercache_widgets::{
    Campaign, ImportRow, NewCampaign, NewDonation, WidgetDataAggregationService, WidgetError,
};

/// How much data to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetSize {
    /// Organisations.
    pub organizations: i64,
    /// Campaigns per organisation.
    pub campaigns_per_organization: i64,
    /// Employees per organisation.
    pub employees_per_organization: i64,
    /// Donations in all, spread over the 400 days before `now`.
    pub donations: i64,
}

impl DatasetSize {
    /// The demo's size: 1M donations, large enough that an uncached aggregate takes milliseconds.
    pub fn demo() -> Self {
        DatasetSize {
            organizations: 20,
            campaigns_per_organization: 25,
            employees_per_organization: 500,
            donations: 1_000_000,
        }
    }

    /// A small dataset for tests.
    pub fn small() -> Self {
        DatasetSize {
            organizations: 3,
            campaigns_per_organization: 4,
            employees_per_organization: 20,
            donations: 3_000,
        }
    }
}

const DAY: i64 = 86_400;
const SPAN_DAYS: i64 = 400;

/// Fills `data` with the dataset of `size` and `seed` ending at `now`, unless donations already
/// exist. Returns the donations written: 0 when there were some.
///
/// ```no_run
/// # async fn run() -> Result<(), tiercache_widgets::WidgetError> {
/// use tiercache_demo::dataset::{generate_if_empty, DatasetSize};
/// let data = tiercache_widgets::WidgetDataAggregationService::open("demo.sqlite3")?;
/// generate_if_empty(&data, DatasetSize::small(), 42, chrono::Utc::now()).await?;
/// # Ok(()) }
/// ```
pub async fn generate_if_empty(
    data: &WidgetDataAggregationService,
    size: DatasetSize,
    seed: u64,
    now: DateTime<Utc>,
) -> Result<i64, WidgetError> {
    data.import_if_empty(rows(size, seed, now.timestamp()))
        .await
}

/// The dataset's rows, in the order a bulk load takes them; `now` in Unix seconds.
pub fn rows(size: DatasetSize, seed: u64, now: i64) -> Rows {
    Rows {
        rng: StdRng::seed_from_u64(seed),
        size,
        now,
        next: Next::Organization(1),
    }
}

/// The rows of [`rows`], drawn one at a time so a million donations never sit in memory together.
#[derive(Debug)]
pub struct Rows {
    rng: StdRng,
    size: DatasetSize,
    now: i64,
    next: Next,
}

/// The row [`Rows`] yields next: an organisation, then its campaigns and employees, then every
/// donation.
#[derive(Debug, Clone, Copy)]
enum Next {
    Organization(i64),
    Campaign { organization: i64, index: i64 },
    Employee { organization: i64, index: i64 },
    Donation(i64),
}

impl Iterator for Rows {
    type Item = ImportRow;

    fn next(&mut self) -> Option<ImportRow> {
        let size = self.size;
        loop {
            match self.next {
                Next::Organization(o) if o > size.organizations => {
                    self.next = Next::Donation(0);
                }
                Next::Organization(o) => {
                    self.next = Next::Campaign {
                        organization: o,
                        index: 0,
                    };
                    let name = format!("Organization {o}");
                    return Some(ImportRow::Organization { id: o, name });
                }
                Next::Campaign {
                    organization,
                    index,
                } if index >= size.campaigns_per_organization => {
                    self.next = Next::Employee {
                        organization,
                        index: 0,
                    };
                }
                Next::Campaign {
                    organization,
                    index,
                } => {
                    self.next = Next::Campaign {
                        organization,
                        index: index + 1,
                    };
                    return Some(self.campaign(organization, index));
                }
                Next::Employee {
                    organization,
                    index,
                } if index >= size.employees_per_organization => {
                    self.next = Next::Organization(organization + 1);
                }
                Next::Employee {
                    organization,
                    index,
                } => {
                    self.next = Next::Employee {
                        organization,
                        index: index + 1,
                    };
                    let id = (organization - 1) * size.employees_per_organization + index + 1;
                    return Some(ImportRow::Employee {
                        id,
                        organization_id: organization,
                        name: format!("Employee {id}"),
                    });
                }
                Next::Donation(i) if i >= size.donations => return None,
                Next::Donation(i) => {
                    self.next = Next::Donation(i + 1);
                    return Some(self.donation());
                }
            }
        }
    }
}

impl Rows {
    /// Campaign `index` of `organization`: started 30 to 400 days ago, running 30 to 365 days.
    fn campaign(&mut self, organization: i64, index: i64) -> ImportRow {
        let id = (organization - 1) * self.size.campaigns_per_organization + index + 1;
        let starts_at = self.now - self.rng.random_range(30..SPAN_DAYS) * DAY;
        let ends_at = starts_at + self.rng.random_range(30..365) * DAY;
        let goal_cents = self.rng.random_range(10..500) * 100_000;
        ImportRow::Campaign(Campaign {
            id,
            fields: NewCampaign {
                organization_id: organization,
                name: format!("Campaign {id}"),
                goal_cents,
                starts_at,
                ends_at,
            },
        })
    }

    /// A donation to any campaign within the last 400 days, 60 % of them attributed to an employee
    /// of the campaign's organisation, 3 % refunded since.
    fn donation(&mut self) -> ImportRow {
        let size = self.size;
        let rng = &mut self.rng;
        let donors = (size.donations / 20).max(10);
        let campaigns = size.organizations * size.campaigns_per_organization;
        let campaign_id = rng.random_range(1..=campaigns);
        let organization_id = (campaign_id - 1) / size.campaigns_per_organization + 1;
        let employee_id = rng.random_bool(0.6).then(|| {
            (organization_id - 1) * size.employees_per_organization
                + rng.random_range(1..=size.employees_per_organization)
        });
        // Log-uniform between 5.00 and 1,000.00.
        let amount_cents = (500.0 * 200f64.powf(rng.random::<f64>())) as i64;
        let currency = match rng.random_range(0..20) {
            0..=15 => "EUR",
            16..=18 => "USD",
            _ => "GBP",
        };
        let created_at = self.now - rng.random_range(0..SPAN_DAYS * DAY);
        let refunded = rng.random_bool(0.03);
        let donor = format!("Donor {:05}", rng.random_range(0..donors));
        ImportRow::Donation {
            donation: NewDonation {
                campaign_id,
                employee_id,
                donor,
                amount_cents,
                currency: currency.to_owned(),
                created_at,
            },
            refunded,
        }
    }
}
