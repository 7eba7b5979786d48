//! Which TTL tier a widget view gets.
//!
//! | view | tier | why |
//! |---|---|---|
//! | `recent_activities`, any range containing now | realtime (60 s) | a feed: users expect new rows at once |
//! | any widget, `today` | realtime (60 s) | today's figures move with every donation |
//! | `top_donors` / `campaign_performance`, range containing now | medium (900 s) | rankings are stable minute to minute |
//! | closed range ended less than 7 days ago | long (3600 s) | late corrections (refunds) still happen |
//! | closed range ended 7 days ago or more | daily (24 h) | history does not move |
//! | any other view: open ranges of the other widgets, ranges not begun yet | none: `WIDGET_CACHE_DEFAULT_TTL` (900 s) | the operator's one knob for the bulk of views |
//!
//! Events invalidate affected views at once whatever their tier; the TTL only bounds how long a view can
//! be wrong if an event is lost outside the cache (a write that emitted none). Overrides replace a row
//! for one widget type.
//!
//! Whatever the tier, a view's lifetime ends at its range's next boundary
//! ([`TimeRange::next_boundary`]): at midnight `today` becomes `yesterday`'s period, on the 1st
//! `last_month` names another month. The key names the period too, so the boundary is where the old
//! entry stops being read; ending its life there keeps it from lingering in memory afterwards.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tiercache::Config;

use crate::{TimeRange, TtlTier, TtlTiers, WidgetType};

/// Maps a widget view to a TTL tier, and the tier to its duration.
#[derive(Debug, Clone, Default)]
pub struct TtlStrategy {
    overrides: HashMap<WidgetType, TtlTier>,
    tiers: TtlTiers,
}

impl TtlStrategy {
    /// The documented table, with the tiers' default durations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives the tiers these durations (`WIDGET_CACHE_*_TTL`, read by
    /// [`crate::WidgetConfig::from_env`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tiercache_widgets::{TtlStrategy, TtlTiers};
    /// let tiers = TtlTiers { realtime: Duration::from_secs(30), ..TtlTiers::default() };
    /// assert_eq!(TtlStrategy::new().with_tiers(tiers).tiers().realtime, Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn with_tiers(mut self, tiers: TtlTiers) -> Self {
        self.tiers = tiers;
        self
    }

    /// The durations of the tiers.
    pub fn tiers(&self) -> &TtlTiers {
        &self.tiers
    }

    /// Always uses `tier` for `widget`.
    #[must_use]
    pub fn with_override(mut self, widget: WidgetType, tier: TtlTier) -> Self {
        self.overrides.insert(widget, tier);
        self
    }

    /// The tier of a view at `now`; `None` for the views the table names no tier for, which live for
    /// the configured default TTL.
    ///
    /// ```
    /// use chrono::Utc;
    /// use tiercache_widgets::{TimeRange, TtlStrategy, TtlTier, WidgetType};
    /// let s = TtlStrategy::new();
    /// assert_eq!(s.tier(WidgetType::RecentActivities, &TimeRange::ThisMonth, Utc::now()), Some(TtlTier::Realtime));
    /// assert_eq!(s.tier(WidgetType::TotalDonations, &TimeRange::LastYear, Utc::now()), Some(TtlTier::Daily));
    /// assert_eq!(s.tier(WidgetType::TotalDonations, &TimeRange::ThisYear, Utc::now()), None);
    /// ```
    pub fn tier(
        &self,
        widget: WidgetType,
        range: &TimeRange,
        now: DateTime<Utc>,
    ) -> Option<TtlTier> {
        if let Some(tier) = self.overrides.get(&widget) {
            return Some(*tier);
        }
        let (start, end) = range.resolve(now);
        if end <= now {
            return Some(if now - end < Duration::days(7) {
                TtlTier::Long
            } else {
                TtlTier::Daily
            });
        }
        if start > now {
            return None;
        }
        match (widget, range) {
            (WidgetType::RecentActivities, _) | (_, TimeRange::Today) => Some(TtlTier::Realtime),
            (WidgetType::TopDonors | WidgetType::CampaignPerformance, _) => Some(TtlTier::Medium),
            _ => None,
        }
    }

    /// How long a view computed at `now` may be cached: its tier's TTL (or the cache's
    /// `config.default_ttl`, `WIDGET_CACHE_DEFAULT_TTL`, when the table names no tier), cut at the
    /// range's next boundary.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use std::time::Duration;
    /// use tiercache_widgets::{TimeRange, TtlStrategy, WidgetType};
    /// let config = tiercache::Config::default();
    /// let before_midnight = Utc.with_ymd_and_hms(2025, 5, 14, 23, 59, 30).unwrap();
    /// let ttl = TtlStrategy::new().ttl(WidgetType::TotalDonations, &TimeRange::Yesterday, before_midnight, &config);
    /// assert_eq!(ttl, Duration::from_secs(30), "the long tier, cut at midnight");
    /// ```
    pub fn ttl(
        &self,
        widget: WidgetType,
        range: &TimeRange,
        now: DateTime<Utc>,
        config: &Config,
    ) -> StdDuration {
        let ttl = self
            .tier(widget, range, now)
            .map_or(config.default_ttl, |tier| self.tiers.ttl(tier));
        match range.next_boundary(now) {
            // A boundary is ahead of `now` by construction, so the difference is positive.
            Some(boundary) => (boundary - now)
                .to_std()
                .map_or(ttl, |left| ttl.min(left.max(MIN_TTL))),
            None => ttl,
        }
    }
}

/// The shortest lifetime given, so an entry computed in the last instant of a period is still stored.
const MIN_TTL: StdDuration = StdDuration::from_millis(1);

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
            Some(TtlTier::Realtime)
        );
        assert_eq!(
            s.tier(WidgetType::TotalDonations, &TimeRange::ThisMonth, now),
            None
        );
        assert_eq!(
            s.tier(WidgetType::TopDonors, &TimeRange::ThisMonth, now),
            Some(TtlTier::Medium)
        );
        assert_eq!(
            s.tier(WidgetType::TotalDonations, &TimeRange::Yesterday, now),
            Some(TtlTier::Long)
        );
        assert_eq!(
            s.tier(WidgetType::TotalDonations, &TimeRange::LastMonth, now),
            Some(TtlTier::Daily)
        );
        let not_begun: TimeRange = "2025-07-01..2025-08-01".parse().unwrap();
        assert_eq!(s.tier(WidgetType::RecentActivities, &not_begun, now), None);
        let s = s.with_override(WidgetType::TotalDonations, TtlTier::Long);
        assert_eq!(
            s.tier(WidgetType::TotalDonations, &TimeRange::Today, now),
            Some(TtlTier::Long)
        );
    }

    #[test]
    fn views_without_a_tier_live_for_the_default_ttl() {
        let now = Utc.with_ymd_and_hms(2025, 6, 15, 12, 0, 0).unwrap();
        let config = Config {
            default_ttl: StdDuration::from_secs(123),
            ..Config::default()
        };
        let s = TtlStrategy::new();
        for range in [
            TimeRange::ThisMonth,
            TimeRange::ThisYear,
            TimeRange::Last30Days,
        ] {
            assert_eq!(
                s.ttl(WidgetType::TotalDonations, &range, now, &config),
                StdDuration::from_secs(123),
                "{range}"
            );
        }
        assert_eq!(
            s.ttl(WidgetType::TopDonors, &TimeRange::ThisYear, now, &config),
            TtlTiers::default().medium,
            "a named tier wins"
        );
    }

    #[test]
    fn no_lifetime_crosses_the_next_boundary() {
        let config = Config::default();
        let s = TtlStrategy::new();
        // Seconds before a day, a week (Monday 2 June), a month, a quarter and a year begin.
        for boundary in [
            Utc.with_ymd_and_hms(2025, 5, 15, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2025, 6, 2, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2025, 5, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2025, 7, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        ] {
            let now = boundary - Duration::seconds(20);
            for range in TimeRange::named() {
                for widget in WidgetType::ALL {
                    let ttl = s.ttl(widget, &range, now, &config);
                    let until = range.next_rollover(now).unwrap() - now;
                    assert!(
                        ttl <= until.to_std().unwrap(),
                        "{widget} {range} at {now}: {ttl:?} crosses the rollover"
                    );
                    let tier = s
                        .tier(widget, &range, now)
                        .map_or(config.default_ttl, |t| s.tiers().ttl(t));
                    if range.next_rollover(now) == Some(boundary) {
                        assert_eq!(ttl, StdDuration::from_secs(20), "{widget} {range}");
                    } else {
                        assert_eq!(ttl, tier, "{widget} {range}: far from its rollover");
                    }
                }
            }
        }
    }
}
