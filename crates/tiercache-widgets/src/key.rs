//! The cache key of one widget view.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{TimeRange, WidgetFilters, WidgetType};

/// One widget view: type, range and filters.
///
/// ```
/// use tiercache_widgets::{TimeRange, WidgetFilters, WidgetKey, WidgetType};
/// let key = WidgetKey::new(WidgetType::TotalDonations, TimeRange::ThisMonth, WidgetFilters::new());
/// assert_eq!(key.to_string(), "total_donations:this_month:f=cbf29ce48422");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WidgetKey {
    /// The widget.
    pub widget: WidgetType,
    /// Its period.
    pub range: TimeRange,
    /// Its filters.
    pub filters: WidgetFilters,
}

impl WidgetKey {
    /// A key for this view.
    pub fn new(widget: WidgetType, range: TimeRange, filters: WidgetFilters) -> Self {
        WidgetKey {
            widget,
            range,
            filters,
        }
    }
}

impl fmt::Display for WidgetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:f={}",
            self.widget,
            self.range,
            self.filters.digest()
        )
    }
}
