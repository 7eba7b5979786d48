//! Bulk loading: rows written into an empty database in one transaction.
//!
//! The rollups are built once from the rows at the end rather than kept row by row (seconds instead
//! of minutes for a million donations), and no outbox rows are written: no cache can hold a view of
//! a database that was empty.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::model::{Campaign, NewDonation};
use crate::error::WidgetError;

/// One row of a bulk load ([`DonationStore::import_if_empty`](crate::DonationStore::import_if_empty)).
/// Rows are written in the order given: an organisation before its campaigns and employees, a
/// campaign before the donations given to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportRow {
    /// An organisation.
    Organization {
        /// Its id.
        id: i64,
        /// Its name.
        name: String,
    },
    /// A campaign of an organisation imported before it.
    Campaign(Campaign),
    /// An employee of an organisation imported before it.
    Employee {
        /// Its id.
        id: i64,
        /// The organisation employing them.
        organization_id: i64,
        /// Their name.
        name: String,
    },
    /// A donation to a campaign imported before it; its organisation is the campaign's.
    Donation {
        /// What was given.
        donation: NewDonation,
        /// Whether it was refunded since (it then counts in no figure).
        refunded: bool,
    },
}

/// Writes `rows` into the empty tables of `conn` and builds the rollups from them, all in one
/// transaction; returns the donations written.
pub(crate) fn import(
    conn: &mut Connection,
    rows: &mut dyn Iterator<Item = ImportRow>,
) -> Result<i64, WidgetError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut donations = 0;
    {
        let mut organization =
            tx.prepare("INSERT INTO organizations (id, name) VALUES (?1, ?2)")?;
        let mut campaign = tx.prepare(
            "INSERT INTO campaigns (id, organization_id, name, goal_cents, starts_at, ends_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut employee =
            tx.prepare("INSERT INTO employees (id, organization_id, name) VALUES (?1, ?2, ?3)")?;
        let mut donation = tx.prepare(
            "INSERT INTO donations (campaign_id, organization_id, employee_id, donor, amount_cents, currency, created_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        // The donations table carries each donation's organisation; the campaigns imported say it
        // without a query per donation.
        let mut organization_of: HashMap<i64, i64> = HashMap::new();
        for row in rows {
            match row {
                ImportRow::Organization { id, name } => {
                    organization.execute(params![id, name])?;
                }
                ImportRow::Campaign(Campaign { id, fields: c }) => {
                    campaign.execute(params![
                        id,
                        c.organization_id,
                        c.name,
                        c.goal_cents,
                        c.starts_at,
                        c.ends_at
                    ])?;
                    organization_of.insert(id, c.organization_id);
                }
                ImportRow::Employee {
                    id,
                    organization_id,
                    name,
                } => {
                    employee.execute(params![id, organization_id, name])?;
                }
                ImportRow::Donation {
                    donation: d,
                    refunded,
                } => {
                    let Some(organization_id) = organization_of.get(&d.campaign_id) else {
                        return Err(WidgetError::UnknownReference {
                            what: "campaign",
                            id: d.campaign_id,
                            context: "not imported before a donation to it".into(),
                        });
                    };
                    let status = if refunded { "refunded" } else { "completed" };
                    donation.execute(params![
                        d.campaign_id,
                        organization_id,
                        d.employee_id,
                        d.donor,
                        d.amount_cents,
                        d.currency,
                        d.created_at,
                        status
                    ])?;
                    donations += 1;
                }
            }
        }
    }
    super::rollup::rebuild(&tx)?;
    tx.commit()?;
    Ok(donations)
}
