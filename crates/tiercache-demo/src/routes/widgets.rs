//! `GET /api/widgets/{type}`: one widget view, through the cache (or straight from SQLite).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tiercache::Fetched;
use tiercache_widgets::{
    Clock, TimeRange, WidgetCacheService, WidgetData, WidgetError, WidgetFilters, WidgetType,
    PARAMETER_KEYS, SCOPE_KEYS,
};

use super::figures::Figures;
use crate::error::ApiError;
use crate::node::Node;

/// Query parameters that are not filters.
const RANGE: &str = "range";
const BYPASS_CACHE: &str = "bypass_cache";

/// One view, as the API answers it.
#[derive(Debug, Serialize)]
pub struct WidgetAnswer {
    /// The widget type.
    pub widget: WidgetType,
    /// The range as asked (`this_month`, or `2025-01-01..2025-02-01`).
    pub range: String,
    /// The range resolved now: `[start, end)` in UTC.
    pub period: Period,
    /// The filters, canonical (sorted, currency upper case).
    pub filters: BTreeMap<String, String>,
    /// The figures; amounts in cents (`*_cents`) and in units beside them.
    pub data: Figures,
    /// `l1`, `l2`, `loaded` (computed for this request or one it waited with), `stale` (fail-safe)
    /// or `database` (the cache was bypassed).
    pub source: &'static str,
    /// The node that answered.
    pub node: &'static str,
    /// Time spent answering, in milliseconds.
    pub elapsed_ms: f64,
    /// When this answer was produced (RFC 3339, UTC).
    pub generated_at: String,
}

/// A resolved period.
#[derive(Debug, Serialize)]
pub struct Period {
    /// First instant included.
    pub start: String,
    /// First instant after the period.
    pub end: String,
}

/// The widget types, ranges and filters the API accepts.
#[derive(Debug, Serialize)]
pub struct Catalogue {
    widgets: Vec<&'static str>,
    ranges: Vec<String>,
    filters: Vec<&'static str>,
}

/// `GET /api/widgets`: what can be asked for.
pub async fn catalogue() -> Json<Catalogue> {
    Json(Catalogue {
        widgets: WidgetType::ALL.iter().map(|w| w.as_str()).collect(),
        ranges: TimeRange::named().map(|r| r.to_string()).collect(),
        filters: SCOPE_KEYS.iter().chain(&PARAMETER_KEYS).copied().collect(),
    })
}

/// What a widget request asks for, parsed and checked.
pub(crate) struct ViewRequest {
    widget: WidgetType,
    range: TimeRange,
    filters: WidgetFilters,
    bypass_cache: bool,
}

/// A request's query: the range, the filters, and whether to bypass the cache. One widget's
/// request and a whole dashboard's take the same parameters.
pub(crate) struct ViewQuery {
    pub(crate) range: TimeRange,
    pub(crate) filters: WidgetFilters,
    pub(crate) bypass_cache: bool,
}

/// Parses a request's widget type and query parameters. Start-up warming builds its views with this
/// too, from the query a dashboard sends, so its filters are exactly a request's.
pub(crate) fn parse_request(
    widget: &str,
    params: Vec<(String, String)>,
) -> Result<ViewRequest, ApiError> {
    let widget: WidgetType = widget.parse()?;
    let ViewQuery {
        range,
        filters,
        bypass_cache,
    } = parse_query(params)?;
    Ok(ViewRequest {
        widget,
        range,
        filters,
        bypass_cache,
    })
}

/// Parses the query parameters of a view or a dashboard, naming the parameter at fault.
pub(crate) fn parse_query(params: Vec<(String, String)>) -> Result<ViewQuery, ApiError> {
    let mut range = TimeRange::ThisMonth;
    let mut bypass_cache = false;
    let mut filters = WidgetFilters::new();
    for (key, value) in params {
        match key.as_str() {
            RANGE => range = value.parse()?,
            BYPASS_CACHE => {
                bypass_cache = match value.as_str() {
                    "" | "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(ApiError::bad_request(
                            BYPASS_CACHE,
                            format!("{BYPASS_CACHE}={value:?} must be true or false"),
                        )
                        .with_valid(["true", "false"]))
                    }
                }
            }
            // Empty values are what a form sends for "no filter".
            _ if value.is_empty() && SCOPE_KEYS.contains(&key.as_str()) => {}
            _ if SCOPE_KEYS.contains(&key.as_str()) || PARAMETER_KEYS.contains(&key.as_str()) => {
                filters = filters.with(&key, value)?;
            }
            _ => {
                let valid: Vec<&str> = [RANGE, BYPASS_CACHE]
                    .into_iter()
                    .chain(SCOPE_KEYS)
                    .chain(PARAMETER_KEYS)
                    .collect();
                return Err(ApiError::bad_request(
                    &key,
                    format!(
                        "unknown parameter {key:?}; valid parameters: {}",
                        valid.join(", ")
                    ),
                )
                .with_valid(valid));
            }
        }
    }
    Ok(ViewQuery {
        range,
        filters,
        bypass_cache,
    })
}

impl ViewRequest {
    /// Loads the view through `widgets` (computed from their data on a miss), the way a request
    /// does. Start-up warming loads through this too, so the keys it fills are the keys requests
    /// read.
    pub(crate) async fn fetch(
        &self,
        widgets: &WidgetCacheService,
    ) -> Result<Fetched<WidgetData>, WidgetError> {
        widgets
            .fetch_view(self.widget, self.range, self.filters.clone())
            .await
    }

    /// The view's figures and where they came from: through the node's cache, or straight from
    /// SQLite at `now` when the request bypasses the cache or the node has none.
    async fn figures(
        &self,
        node: &Node,
        now: DateTime<Utc>,
    ) -> Result<(Arc<WidgetData>, &'static str), WidgetError> {
        if let (Some(cached), false) = (&node.cached, self.bypass_cache) {
            let fetched = self.fetch(&cached.widgets).await?;
            Ok((fetched.value, fetched.source.as_str()))
        } else {
            let filters = self.filters.clone();
            let data = node.data.compute(self.widget, self.range, filters, now);
            Ok((Arc::new(data.await?), "database"))
        }
    }
}

/// `GET /api/widgets/{widget}?range=&organization_id=&campaign_id=&employee_id=&currency=&limit=`.
pub async fn view(
    State(node): State<Arc<Node>>,
    Path(widget): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<WidgetAnswer>, ApiError> {
    let started = Instant::now();
    let request = parse_request(&widget, params)?;
    let now = node.clock.now();
    let (data, source) = request.figures(&node, now).await?;
    let (start, end) = request.range.resolve(now);
    Ok(Json(WidgetAnswer {
        widget: request.widget,
        range: request.range.to_string(),
        period: Period {
            start: rfc3339(start),
            end: rfc3339(end),
        },
        filters: request
            .filters
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        data: Figures::new(data, start, end),
        source,
        node: node.name,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        generated_at: rfc3339(node.clock.now()),
    }))
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_name_the_valid_ones() {
        let Err(err) = parse_request("total_donations", vec![("colour".into(), "red".into())])
        else {
            panic!("an unknown parameter is refused");
        };
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(
            err.body.error.contains("organization_id"),
            "{}",
            err.body.error
        );
        let ok = parse_request(
            "top-donors",
            vec![
                ("range".into(), "last_month".into()),
                ("campaign_id".into(), String::new()),
                ("currency".into(), "eur".into()),
            ],
        )
        .unwrap_or_else(|e| panic!("accepted: {:?}", e.body));
        assert_eq!(ok.widget, WidgetType::TopDonors);
        assert_eq!(ok.filters.currency(), Some("EUR"));
        assert_eq!(ok.filters.campaign_id(), None);
    }
}
