//! A deterministic synthetic dataset: the same seed and size give the same rows.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection};

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

/// Fills empty tables and their rollups; returns the number of donations written.
pub(crate) fn generate(
    conn: &mut Connection,
    size: DatasetSize,
    seed: u64,
    now: i64,
) -> rusqlite::Result<i64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut org = tx.prepare("INSERT INTO organizations (id, name) VALUES (?1, ?2)")?;
        let mut campaign = tx.prepare(
            "INSERT INTO campaigns (id, organization_id, name, goal_cents, starts_at, ends_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut employee =
            tx.prepare("INSERT INTO employees (id, organization_id, name) VALUES (?1, ?2, ?3)")?;
        let mut donation = tx.prepare(
            "INSERT INTO donations (campaign_id, organization_id, employee_id, donor, amount_cents, currency, created_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for o in 1..=size.organizations {
            org.execute(params![o, format!("Organization {o}")])?;
            for c in 0..size.campaigns_per_organization {
                let id = (o - 1) * size.campaigns_per_organization + c + 1;
                let starts = now - rng.random_range(30..SPAN_DAYS) * DAY;
                let ends = starts + rng.random_range(30..365) * DAY;
                let goal = rng.random_range(10..500) * 100_000;
                campaign.execute(params![id, o, format!("Campaign {id}"), goal, starts, ends])?;
            }
            for e in 0..size.employees_per_organization {
                let id = (o - 1) * size.employees_per_organization + e + 1;
                employee.execute(params![id, o, format!("Employee {id}")])?;
            }
        }
        let donors = (size.donations / 20).max(10);
        let campaigns = size.organizations * size.campaigns_per_organization;
        for _ in 0..size.donations {
            let campaign_id = rng.random_range(1..=campaigns);
            let organization_id = (campaign_id - 1) / size.campaigns_per_organization + 1;
            let employee_id = rng.random_bool(0.6).then(|| {
                (organization_id - 1) * size.employees_per_organization
                    + rng.random_range(1..=size.employees_per_organization)
            });
            // Log-uniform between 5.00 and 1,000.00.
            let amount = (500.0 * 200f64.powf(rng.random::<f64>())) as i64;
            let currency = match rng.random_range(0..20) {
                0..=15 => "EUR",
                16..=18 => "USD",
                _ => "GBP",
            };
            let created_at = now - rng.random_range(0..SPAN_DAYS * DAY);
            let status = if rng.random_bool(0.03) {
                "refunded"
            } else {
                "completed"
            };
            let donor = format!("Donor {:05}", rng.random_range(0..donors));
            donation.execute(params![
                campaign_id,
                organization_id,
                employee_id,
                donor,
                amount,
                currency,
                created_at,
                status
            ])?;
        }
    }
    // The rollups are computed once from the rows rather than donation by donation: a few seconds
    // instead of minutes for a million donations.
    super::rollup::rebuild(&tx)?;
    tx.commit()?;
    Ok(size.donations)
}
