//! The cache key of one widget view.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{TimeRange, WidgetFilters, WidgetType};

/// One widget view: type, range resolved to its period, and filters.
///
/// The period is part of the key, so a named range such as `this_month` names another entry once the
/// calendar moves on: a read after midnight on the 1st can never be served the month before.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use tiercache_widgets::{TimeRange, WidgetFilters, WidgetKey, WidgetType};
/// let now = Utc.with_ymd_and_hms(2025, 5, 14, 10, 0, 0).unwrap();
/// let key = WidgetKey::new(WidgetType::TotalDonations, TimeRange::ThisMonth, WidgetFilters::new(), now);
/// assert_eq!(key.to_string(), "total_donations:this_month@2025-05-01..2025-06-01:f=cbf29ce48422");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WidgetKey {
    /// The widget.
    pub widget: WidgetType,
    /// Its range as asked for.
    pub range: TimeRange,
    /// The first day of the period the range resolved to.
    pub start: NaiveDate,
    /// The day after the period's last.
    pub end: NaiveDate,
    /// Its filters.
    pub filters: WidgetFilters,
}

impl WidgetKey {
    /// The key of this view with `range` resolved at `now`.
    pub fn new(
        widget: WidgetType,
        range: TimeRange,
        filters: WidgetFilters,
        now: DateTime<Utc>,
    ) -> Self {
        let (start, end) = range.resolve(now);
        WidgetKey {
            widget,
            range,
            start: start.date_naive(),
            end: end.date_naive(),
            filters,
        }
    }
}

/// The rendered key of a view without building a [`WidgetKey`] (no copy of the filters).
pub(crate) fn render_key(
    widget: WidgetType,
    range: &TimeRange,
    filters: &WidgetFilters,
    now: DateTime<Utc>,
) -> String {
    let (start, end) = range.resolve(now);
    render(widget, range, start.date_naive(), end.date_naive(), filters)
}

fn render(
    widget: WidgetType,
    range: &TimeRange,
    start: NaiveDate,
    end: NaiveDate,
    filters: &WidgetFilters,
) -> String {
    let digest = filters.digest();
    match range {
        // A custom range is its own period.
        TimeRange::Custom { .. } => format!("{widget}:{range}:f={digest}"),
        named => format!("{widget}:{named}@{start}..{end}:f={digest}"),
    }
}

impl fmt::Display for WidgetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(
            self.widget,
            &self.range,
            self.start,
            self.end,
            &self.filters,
        ))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_named_range_names_another_entry_once_its_period_moves() {
        let before = Utc.with_ymd_and_hms(2025, 1, 31, 23, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 0).unwrap();
        let f = WidgetFilters::new();
        let w = WidgetType::TotalDonations;
        for range in TimeRange::named() {
            let moved = range.resolve(before) != range.resolve(after);
            assert_eq!(
                render_key(w, &range, &f, before) != render_key(w, &range, &f, after),
                moved,
                "{range}"
            );
            assert_eq!(
                render_key(w, &range, &f, after),
                WidgetKey::new(w, range, f.clone(), after).to_string()
            );
        }
        let custom: TimeRange = "2025-01-01..2025-02-01".parse().unwrap();
        assert_eq!(
            render_key(w, &custom, &f, after),
            "total_donations:2025-01-01..2025-02-01:f=cbf29ce48422"
        );
    }
}
