//! Start-up warming: before the service reports ready, node 0 loads the views dashboards open first,
//! so the first dashboards after a (re)start answer from the cache instead of all computing at once.
//!
//! The views are built from the query a dashboard sends and loaded with the function a request loads
//! with ([`crate::routes::parse_request`], `ViewRequest::fetch`): the keys warming fills
//! are the keys requests read. A view already in Redis (a restart over a kept cache) costs node 0 one
//! L2 read, not a query.

use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use tiercache_widgets::{TimeRange, WidgetCacheService, WidgetType};

use crate::routes::parse_request;

/// Loads in flight at once: enough to overlap one view's Redis round trips with another's query,
/// few enough that warming does not take every SQLite reader and core while it runs.
const IN_FLIGHT: usize = 4;

/// Failed views named one by one in the log; the rest are only counted.
const FAILURES_NAMED: usize = 5;

/// One view to warm: a widget type and the query parameters a dashboard sends for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FirstView {
    /// The widget type.
    pub widget: WidgetType,
    /// `range`, and `organization_id` for an organisation's dashboard.
    pub query: Vec<(String, String)>,
}

/// The views dashboards open first: every widget type and named range, for everything, for each of
/// `organizations` and for each of `campaigns` (given with `--warm-campaigns`: there are hundreds of
/// campaigns, each opened far less often than its organisation).
pub(crate) fn first_views(organizations: &[i64], campaigns: &[i64]) -> Vec<FirstView> {
    let scopes: Vec<Option<(&str, i64)>> = std::iter::once(None)
        .chain(organizations.iter().map(|&o| Some(("organization_id", o))))
        .chain(campaigns.iter().map(|&c| Some(("campaign_id", c))))
        .collect();
    let mut views = Vec::new();
    for widget in WidgetType::ALL {
        for range in TimeRange::named() {
            for scope in &scopes {
                let mut query = vec![("range".to_owned(), range.to_string())];
                if let Some((key, id)) = scope {
                    query.push(((*key).to_owned(), id.to_string()));
                }
                views.push(FirstView { widget, query });
            }
        }
    }
    views
}

/// What a warm-up did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Warmed {
    /// Views now in the cache (loaded, or found there already).
    pub views: usize,
    /// Views that could not be loaded; each was logged as a warning (the first few by name).
    pub failed: usize,
    /// Wall time of the whole warm-up.
    pub elapsed: Duration,
}

/// Loads every view of [`first_views`] through `widgets` (misses computed from their data), a few
/// at a time. Never fails: a view that cannot be loaded is a warning, and requests load it later.
pub(crate) async fn warm(widgets: &WidgetCacheService, with_campaigns: bool) -> Warmed {
    let started = Instant::now();
    let directory = match widgets.data().directory().await {
        Ok(directory) => directory,
        Err(e) => {
            tracing::warn!(error = %e, "warming: could not list the organisations; warming the global views only");
            Vec::new()
        }
    };
    let organizations: Vec<i64> = directory.iter().map(|o| o.id).collect();
    let campaigns: Vec<i64> = if with_campaigns {
        directory
            .iter()
            .flat_map(|o| o.campaigns.iter().map(|c| c.id))
            .collect()
    } else {
        Vec::new()
    };
    let views = first_views(&organizations, &campaigns);
    let outcomes: Vec<Result<(), String>> = stream::iter(views)
        .map(|view| async move {
            let label = describe(&view);
            let request = parse_request(view.widget.as_str(), view.query)
                .map_err(|e| format!("{label}: {}", e.body.error))?;
            request
                .fetch(widgets)
                .await
                .map(|_| ())
                .map_err(|e| format!("{label}: {e}"))
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut failed = 0;
    for error in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        if failed < FAILURES_NAMED {
            tracing::warn!(view = %error, "warming: a view could not be loaded; requests will load it");
        }
        failed += 1;
    }
    if failed > FAILURES_NAMED {
        tracing::warn!(
            more = failed - FAILURES_NAMED,
            "warming: more views could not be loaded"
        );
    }
    Warmed {
        views: outcomes.len() - failed,
        failed,
        elapsed: started.elapsed(),
    }
}

/// `total_donations?range=this_month&organization_id=3`, for the log.
fn describe(view: &FirstView) -> String {
    let query: Vec<String> = view.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}?{}", view.widget, query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_views_cover_every_type_and_range_for_everything_and_each_organisation() {
        let views = first_views(&[1, 2], &[]);
        let ranges = TimeRange::named().count();
        assert_eq!(views.len(), WidgetType::ALL.len() * ranges * 3);
        let global = views.iter().filter(|v| v.query.len() == 1).count();
        assert_eq!(global, WidgetType::ALL.len() * ranges);
        for view in &views {
            if let Err(e) = parse_request(view.widget.as_str(), view.query.clone()) {
                panic!("{} is not a request: {}", describe(view), e.body.error);
            }
        }
        assert_eq!(
            describe(&views[1]),
            "total_donations?range=today&organization_id=1"
        );
        let with_campaigns = first_views(&[1], &[7, 8]);
        assert_eq!(with_campaigns.len(), WidgetType::ALL.len() * ranges * 4);
        assert_eq!(
            describe(&with_campaigns[2]),
            "total_donations?range=today&campaign_id=7"
        );
    }
}
