//! Which TTL tier a widget view gets.
//!
//! | view | tier | why |
//! |---|---|---|
//! | `recent_activities`, any range containing now | realtime (60 s) | a feed: users expect new rows at once |
//! | any widget, `today` | realtime (60 s) | today's figures move with every donation |
//! | any widget, another range containing now | short (300 s) | open ranges change, but slowly in proportion |
//! | `top_donors` / `campaign_performance`, range containing now | medium (900 s) | rankings are stable minute to minute |
//! | closed range ended less than 7 days ago | long (3600 s) | late corrections (refunds) still happen |
//! | closed range ended 7 days ago or more | daily (24 h) | history does not move |
//!
//! Events invalidate affected views at once whatever their tier; the TTL only bounds how long a view can
//! be wrong if an event is lost outside the cache (a write that emitted none). Overrides replace a row
//! for one widget type.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use tiercache::TtlTier;

use crate::{TimeRange, WidgetType};

/// Maps a widget view to a TTL tier.
#[derive(Debug, Clone, Default)]
pub struct TtlStrategy {
    overrides: HashMap<WidgetType, TtlTier>,
}

impl TtlStrategy {
    /// The documented table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Always uses `tier` for `widget`.
    #[must_use]
    pub fn with_override(mut self, widget: WidgetType, tier: TtlTier) -> Self {
        self.overrides.insert(widget, tier);
        self
    }

    /// The tier of a view at `now`.
    ///
    /// ```
    /// use chrono::Utc;
    /// use tiercache::TtlTier;
    /// use tiercache_widgets::{TimeRange, TtlStrategy, WidgetType};
    /// let s = TtlStrategy::new();
    /// assert_eq!(s.tier(WidgetType::RecentActivities, &TimeRange::ThisMonth, Utc::now()), TtlTier::Realtime);
    /// assert_eq!(s.tier(WidgetType::TotalDonations, &TimeRange::LastYear, Utc::now()), TtlTier::Daily);
    /// ```
    pub fn tier(&self, widget: WidgetType, range: &TimeRange, now: DateTime<Utc>) -> TtlTier {
        if let Some(tier) = self.overrides.get(&widget) {
            return *tier;
        }
        let (_, end) = range.resolve(now);
        if end <= now {
            return if now - end < Duration::days(7) {
                TtlTier::Long
            } else {
                TtlTier::Daily
            };
        }
        match (widget, range) {
            (WidgetType::RecentActivities, _) | (_, TimeRange::Today) => TtlTier::Realtime,
            (WidgetType::TopDonors | WidgetType::CampaignPerformance, _) => TtlTier::Medium,
            _ => TtlTier::Short,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn table_rows() {
        let now = Utc.with_ymd_and_hms(2025, 6, 15, 12, 0, 0).unwrap();
        let s = TtlStrategy::new();
        assert_eq!(
            s.tier(WidgetType::TotalDonations, &TimeRange::Today, now),
            TtlTier::Realtime
        );
        assert_eq!(
            s.tier(WidgetType::TotalDonations, &TimeRange::ThisMonth, now),
            TtlTier::Short
        );
        assert_eq!(
            s.tier(WidgetType::TopDonors, &TimeRange::ThisMonth, now),
            TtlTier::Medium
        );
        assert_eq!(
            s.tier(WidgetType::TotalDonations, &TimeRange::Yesterday, now),
            TtlTier::Long
        );
        assert_eq!(
            s.tier(WidgetType::TotalDonations, &TimeRange::LastMonth, now),
            TtlTier::Daily
        );
        let s = s.with_override(WidgetType::TotalDonations, TtlTier::Long);
        assert_eq!(
            s.tier(WidgetType::TotalDonations, &TimeRange::Today, now),
            TtlTier::Long
        );
    }
}
