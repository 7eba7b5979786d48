//! `POST /api/campaigns`: create a campaign, then invalidate the views that list campaigns.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tiercache_widgets::{Clock, NewCampaign};

use super::{parse_body, settle_after_commit, Invalidation};
use crate::amount::{cents_to_units, parse_cents};
use crate::error::ApiError;
use crate::node::Node;

/// Longest campaign name kept.
const MAX_NAME_CHARS: usize = 200;
/// A campaign runs 90 days unless told otherwise.
const DEFAULT_DAYS: i64 = 90;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignRequest {
    organization_id: i64,
    name: String,
    /// The decimal text as sent, like a donation's amount.
    goal: Box<RawValue>,
    /// `YYYY-MM-DD`; default today.
    starts_on: Option<String>,
    /// `YYYY-MM-DD`, after `starts_on`; default 90 days later.
    ends_on: Option<String>,
}

/// A stored campaign, as answered.
#[derive(Debug, Serialize)]
pub struct CampaignAnswer {
    /// Its id.
    pub id: i64,
    /// The organisation running it.
    pub organization_id: i64,
    /// Name.
    pub name: String,
    /// Goal in units.
    pub goal: f64,
    /// Goal in cents.
    pub goal_cents: i64,
    /// Unix seconds.
    pub starts_at: i64,
    /// Unix seconds.
    pub ends_at: i64,
    /// Whether every node has been told.
    pub invalidation: Invalidation,
    /// The node that took it.
    pub node: &'static str,
}

fn day(field: &str, text: Option<&str>, default: NaiveDate) -> Result<i64, ApiError> {
    let date = match text {
        None => default,
        Some(t) => NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").map_err(|e| {
            ApiError::unprocessable(
                field,
                format!("{field}={t:?} is not a date YYYY-MM-DD: {e}"),
            )
        })?,
    };
    Ok(date
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp())
}

/// The campaign to store; its dates default to `today` and 90 days later.
fn checked(request: &CampaignRequest, today: NaiveDate) -> Result<NewCampaign, ApiError> {
    let goal_text = request.goal.get();
    let goal_text = serde_json::from_str::<String>(goal_text).unwrap_or(goal_text.to_owned());
    let goal_cents = parse_cents(&goal_text).map_err(|e| ApiError::unprocessable("goal", e))?;
    let name = request.name.trim().to_owned();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::unprocessable(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    let starts_at = day("starts_on", request.starts_on.as_deref(), today)?;
    let ends_at = day(
        "ends_on",
        request.ends_on.as_deref(),
        today + chrono::Duration::days(DEFAULT_DAYS),
    )?;
    if ends_at <= starts_at {
        return Err(ApiError::unprocessable(
            "ends_on",
            "ends_on must be after starts_on",
        ));
    }
    Ok(NewCampaign {
        organization_id: request.organization_id,
        name,
        goal_cents,
        starts_at,
        ends_at,
    })
}

/// Commits the campaign, then invalidates campaign_performance and organization_stats everywhere.
pub async fn create(
    State(node): State<Arc<Node>>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<CampaignAnswer>), ApiError> {
    let campaign = checked(
        &parse_body(&headers, body, node.body_read_timeout).await?,
        node.clock.now().date_naive(),
    )?;
    let (stored, change) = node.data.create_campaign(campaign).await?;
    let invalidation = settle_after_commit(&node, change.id).await;
    let f = stored.fields;
    Ok((
        StatusCode::CREATED,
        Json(CampaignAnswer {
            id: stored.id,
            organization_id: f.organization_id,
            name: f.name,
            goal: cents_to_units(f.goal_cents),
            goal_cents: f.goal_cents,
            starts_at: f.starts_at,
            ends_at: f.ends_at,
            invalidation,
            node: node.name,
        }),
    ))
}
