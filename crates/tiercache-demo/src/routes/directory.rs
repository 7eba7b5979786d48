//! `GET /api/organizations`: the organisations and their campaigns, for pickers and load tests.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use tiercache_widgets::OrganizationEntry;

use crate::error::ApiError;
use crate::node::Node;

/// Every organisation with its employee count and campaigns. Read from SQLite each time: it is
/// asked for once per page load, not per widget.
pub async fn organizations(
    State(node): State<Arc<Node>>,
) -> Result<Json<Vec<OrganizationEntry>>, ApiError> {
    Ok(Json(node.data.directory().await?))
}
