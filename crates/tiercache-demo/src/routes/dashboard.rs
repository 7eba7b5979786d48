//! `GET /api/dashboard`: every widget of a dashboard in one answer, read through the cache in one
//! call (those in L1 at once, the rest from Redis together, those missing everywhere computed in
//! one snapshot, once for the fleet).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tiercache_widgets::{Clock, WidgetData, WidgetError, WidgetType};

use super::figures::Figures;
use super::widgets::{parse_query, rfc3339, Period, ViewQuery};
use crate::error::{ApiError, ErrorBody};
use crate::node::Node;

/// A dashboard, as the API answers it.
#[derive(Debug, Serialize)]
pub struct DashboardAnswer {
    /// The range as asked.
    pub range: String,
    /// The range resolved now: `[start, end)` in UTC.
    pub period: Period,
    /// The filters, canonical (sorted, currency upper case).
    pub filters: BTreeMap<String, String>,
    /// One entry per widget type, in the catalogue's order.
    pub widgets: Vec<WidgetPart>,
    /// The node that answered.
    pub node: &'static str,
    /// Time spent answering, in milliseconds.
    pub elapsed_ms: f64,
    /// When this answer was produced (RFC 3339, UTC).
    pub generated_at: String,
}

/// One widget of a dashboard: its figures and where they came from, or why it has none.
#[derive(Debug, Serialize)]
pub struct WidgetPart {
    /// The widget type.
    pub widget: WidgetType,
    /// `l1`, `l2`, `loaded`, `stale` or `database`, as for one widget's request; absent on error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    /// The figures; absent on error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Figures>,
    /// Why this widget has no figures, as one widget's request would have answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `GET /api/dashboard?range=&organization_id=&campaign_id=&employee_id=&currency=&limit=`: the
/// seven widgets with the same range and filters. 200 when every widget answered; otherwise the
/// status of the first widget's error, the body still holding every widget that answered.
pub async fn dashboard(
    State(node): State<Arc<Node>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let query = parse_query(params)?;
    let now = node.clock.now();
    let answers = figures(&node, &query, now).await;
    let (start, end) = query.range.resolve(now);
    let mut status = StatusCode::OK;
    let widgets = WidgetType::ALL
        .iter()
        .zip(answers)
        .map(|(&widget, answer)| match answer {
            Ok((data, source)) => WidgetPart {
                widget,
                source: Some(source),
                data: Some(Figures::new(data, start, end)),
                error: None,
            },
            Err(e) => {
                let e = ApiError::from(e);
                if status == StatusCode::OK {
                    status = e.status;
                }
                WidgetPart {
                    widget,
                    source: None,
                    data: None,
                    error: Some(e.body),
                }
            }
        })
        .collect();
    let answer = DashboardAnswer {
        range: query.range.to_string(),
        period: Period {
            start: rfc3339(start),
            end: rfc3339(end),
        },
        filters: query
            .filters
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        widgets,
        node: node.name,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        generated_at: rfc3339(node.clock.now()),
    };
    Ok((status, Json(answer)).into_response())
}

type Answer = Result<(Arc<WidgetData>, &'static str), WidgetError>;

/// Every widget's figures, in [`WidgetType::ALL`]'s order: through the node's cache in one call,
/// or straight from SQLite at `now` when the request bypasses the cache or the node has none.
async fn figures(
    node: &Node,
    query: &ViewQuery,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Answer> {
    if let (Some(cached), false) = (&node.cached, query.bypass_cache) {
        let views: Vec<_> = WidgetType::ALL
            .iter()
            .map(|&w| (w, query.range, query.filters.clone()))
            .collect();
        return cached
            .widgets
            .fetch_views(&views)
            .await
            .into_iter()
            .map(|answer| answer.map(|f| (f.value, f.source.as_str())))
            .collect();
    }
    let mut answers = Vec::with_capacity(WidgetType::ALL.len());
    for widget in WidgetType::ALL {
        let data = node
            .data
            .compute(widget, query.range, query.filters.clone(), now)
            .await;
        answers.push(data.map(|d| (Arc::new(d), "database")));
    }
    answers
}
