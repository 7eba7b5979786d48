//! `POST /api/donations`: record a donation in SQLite, then invalidate what it changes on every node.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tiercache_widgets::{Clock, DomainEvent, NewDonation, WidgetFilters};

use super::{parse_body, settle_after_commit, Invalidation};
use crate::amount::{cents_to_units, parse_cents};
use crate::error::ApiError;
use crate::node::Node;

/// Longest donor name kept.
const MAX_DONOR_CHARS: usize = 100;

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DonationRequest {
    campaign_id: i64,
    /// The decimal text as sent: a JSON number (`12.5`) or a string (`"12.50"`).
    amount: Box<RawValue>,
    currency: Option<String>,
    employee_id: Option<i64>,
    donor: Option<String>,
}

/// A stored donation, as answered.
#[derive(Debug, Serialize)]
pub struct DonationAnswer {
    /// Its id.
    pub id: i64,
    /// The campaign given to.
    pub campaign_id: i64,
    /// The campaign's organisation.
    pub organization_id: i64,
    /// The employee it is attributed to.
    pub employee_id: Option<i64>,
    /// Donor name.
    pub donor: String,
    /// Amount in units.
    pub amount: f64,
    /// Amount in cents.
    pub amount_cents: i64,
    /// ISO currency code.
    pub currency: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Whether every node has been told (`done`) or the cache could not be reached yet (`pending`).
    pub invalidation: Invalidation,
    /// The node that took it.
    pub node: &'static str,
}

/// The donation to store, dated `now`.
fn checked(request: DonationRequest, now: DateTime<Utc>) -> Result<NewDonation, ApiError> {
    let amount_text = request.amount.get();
    let amount_text = serde_json::from_str::<String>(amount_text).unwrap_or(amount_text.to_owned());
    let amount_cents =
        parse_cents(&amount_text).map_err(|e| ApiError::unprocessable("amount", e))?;
    if request.campaign_id <= 0 {
        return Err(ApiError::unprocessable(
            "campaign_id",
            format!(
                "campaign_id must be a positive id, not {}",
                request.campaign_id
            ),
        ));
    }
    let currency = request.currency.unwrap_or_else(|| "EUR".to_owned());
    // The filter's rule is the one rule for currency codes.
    let currency = WidgetFilters::new()
        .with("currency", currency)
        .map_err(|e| ApiError::unprocessable("currency", e.to_string()))?
        .currency()
        .map(str::to_owned)
        .unwrap_or_default();
    if let Some(e) = request.employee_id.filter(|e| *e <= 0) {
        return Err(ApiError::unprocessable(
            "employee_id",
            format!("employee_id must be a positive id, not {e}"),
        ));
    }
    let donor = request
        .donor
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "Anonymous".to_owned());
    if donor.chars().count() > MAX_DONOR_CHARS || donor.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "donor",
            format!("donor must be at most {MAX_DONOR_CHARS} printable characters"),
        ));
    }
    Ok(NewDonation {
        campaign_id: request.campaign_id,
        employee_id: request.employee_id,
        donor,
        amount_cents,
        currency,
        created_at: now.timestamp(),
    })
}

/// Commits the donation, then invalidates: a cache failure afterwards never loses it or turns the
/// answer into an error; the answer says the invalidation is pending instead.
pub async fn create(
    State(node): State<Arc<Node>>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<DonationAnswer>), ApiError> {
    let donation = checked(
        parse_body(&headers, body, node.body_read_timeout).await?,
        node.clock.now(),
    )?;
    let change = node.data.record_donation(donation.clone()).await?;
    let (id, organization_id) = match &change.event {
        DomainEvent::DonationCompleted(facts) => (facts.donation_id, facts.organization_id),
        other => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                format!(
                    "recording a donation produced an unexpected {:?} event",
                    other.kind()
                ),
            ))
        }
    };
    let invalidation = settle_after_commit(&node, change.id).await;
    Ok((
        StatusCode::CREATED,
        Json(DonationAnswer {
            id,
            campaign_id: donation.campaign_id,
            organization_id,
            employee_id: donation.employee_id,
            donor: donation.donor,
            amount: cents_to_units(donation.amount_cents),
            amount_cents: donation.amount_cents,
            currency: donation.currency,
            created_at: donation.created_at,
            invalidation,
            node: node.name,
        }),
    ))
}
