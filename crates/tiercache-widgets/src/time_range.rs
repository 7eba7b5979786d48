//! Named and custom time ranges, resolved to concrete UTC bounds for a given clock.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::WidgetError;

/// A period a widget covers. Named ranges move with the clock; `Custom` is fixed.
///
/// Bounds are half-open `[start, end)` in UTC; weeks start on Monday.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use tiercache_widgets::TimeRange;
///
/// let now = Utc.with_ymd_and_hms(2025, 5, 14, 10, 0, 0).unwrap();
/// let (start, end) = "this_month".parse::<TimeRange>().unwrap().resolve(now);
/// assert_eq!(start, Utc.with_ymd_and_hms(2025, 5, 1, 0, 0, 0).unwrap());
/// assert_eq!(end, Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap());
/// let custom: TimeRange = "2025-01-01..2025-02-01".parse().unwrap();
/// assert!(custom.is_closed(now));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeRange {
    /// Since midnight.
    Today,
    /// The day before today.
    Yesterday,
    /// Since Monday.
    ThisWeek,
    /// The previous Monday-to-Monday week.
    LastWeek,
    /// Since the 1st.
    ThisMonth,
    /// The previous calendar month.
    LastMonth,
    /// Since the start of the calendar quarter.
    ThisQuarter,
    /// Since 1 January.
    ThisYear,
    /// The 30 days up to the end of today.
    Last30Days,
    /// The previous calendar year.
    LastYear,
    /// Fixed dates, `start` inclusive, `end` exclusive.
    Custom {
        /// First day.
        start: NaiveDate,
        /// The day after the last.
        end: NaiveDate,
    },
}

const NAMED: [(TimeRange, &str); 10] = [
    (TimeRange::Today, "today"),
    (TimeRange::Yesterday, "yesterday"),
    (TimeRange::ThisWeek, "this_week"),
    (TimeRange::LastWeek, "last_week"),
    (TimeRange::ThisMonth, "this_month"),
    (TimeRange::LastMonth, "last_month"),
    (TimeRange::ThisQuarter, "this_quarter"),
    (TimeRange::ThisYear, "this_year"),
    (TimeRange::Last30Days, "last_30_days"),
    (TimeRange::LastYear, "last_year"),
];

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    // Month arithmetic below keeps `month` in 1..=12, so the date exists.
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default()
}

fn next_month(d: NaiveDate) -> NaiveDate {
    if d.month() == 12 {
        first_of_month(d.year() + 1, 1)
    } else {
        first_of_month(d.year(), d.month() + 1)
    }
}

impl TimeRange {
    /// Every named range.
    pub fn named() -> impl Iterator<Item = TimeRange> {
        NAMED.into_iter().map(|(r, _)| r)
    }

    /// The `[start, end)` bounds at `now`.
    pub fn resolve(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let today = now.date_naive();
        let day = Duration::days(1);
        let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        let this_month = first_of_month(today.year(), today.month());
        let (start, end) = match *self {
            TimeRange::Today => (today, today + day),
            TimeRange::Yesterday => (today - day, today),
            TimeRange::ThisWeek => (monday, monday + Duration::days(7)),
            TimeRange::LastWeek => (monday - Duration::days(7), monday),
            TimeRange::ThisMonth => (this_month, next_month(this_month)),
            TimeRange::LastMonth => {
                let prev = (this_month - day).with_day(1).unwrap_or(this_month);
                (prev, this_month)
            }
            TimeRange::ThisQuarter => {
                let q_start = first_of_month(today.year(), (today.month0() / 3) * 3 + 1);
                (q_start, next_month(next_month(next_month(q_start))))
            }
            TimeRange::ThisYear => (
                first_of_month(today.year(), 1),
                first_of_month(today.year() + 1, 1),
            ),
            TimeRange::Last30Days => (today - Duration::days(29), today + day),
            TimeRange::LastYear => (
                first_of_month(today.year() - 1, 1),
                first_of_month(today.year(), 1),
            ),
            TimeRange::Custom { start, end } => (start, end),
        };
        (midnight(start), midnight(end))
    }

    /// The first instant after `now` at which this range resolves to other bounds: the next midnight for
    /// `today`, `yesterday` and `last_30_days`, the next Monday for the weeks, the next 1st for the
    /// months, the next quarter and the next 1 January. `None` for a custom range, which never moves.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use tiercache_widgets::TimeRange;
    /// let now = Utc.with_ymd_and_hms(2025, 5, 14, 10, 0, 0).unwrap();
    /// assert_eq!(TimeRange::LastMonth.next_rollover(now), Some(Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap()));
    /// assert_eq!(TimeRange::Yesterday.next_rollover(now), Some(Utc.with_ymd_and_hms(2025, 5, 15, 0, 0, 0).unwrap()));
    /// ```
    pub fn next_rollover(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let current = match *self {
            TimeRange::Today | TimeRange::Yesterday | TimeRange::Last30Days => TimeRange::Today,
            TimeRange::ThisWeek | TimeRange::LastWeek => TimeRange::ThisWeek,
            TimeRange::ThisMonth | TimeRange::LastMonth => TimeRange::ThisMonth,
            TimeRange::ThisQuarter => TimeRange::ThisQuarter,
            TimeRange::ThisYear | TimeRange::LastYear => TimeRange::ThisYear,
            TimeRange::Custom { .. } => return None,
        };
        // Each named range moves exactly when the calendar unit it counts from ends.
        Some(current.resolve(now).1)
    }

    /// The first instant after `now` at which a view of this range must be looked at again: its next
    /// rollover, or, for a custom range, its start or end when either is still ahead (the range opens
    /// or closes then). `None` when nothing about the range changes any more.
    pub fn next_boundary(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_rollover(now).or_else(|| {
            let (start, end) = self.resolve(now);
            [start, end].into_iter().find(|t| *t > now)
        })
    }

    /// Whether the range includes `now` (its figures can still change as events arrive).
    pub fn contains_now(&self, now: DateTime<Utc>) -> bool {
        let (start, end) = self.resolve(now);
        start <= now && now < end
    }

    /// Whether the range lies entirely in the past at `now` (its figures only change on corrections).
    pub fn is_closed(&self, now: DateTime<Utc>) -> bool {
        self.resolve(now).1 <= now
    }

    fn valid_names() -> String {
        NAMED.map(|(_, n)| n).join(", ")
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeRange::Custom { start, end } => write!(f, "{start}..{end}"),
            named => f.write_str(
                NAMED
                    .iter()
                    .find(|(r, _)| r == named)
                    .map_or("", |(_, n)| n),
            ),
        }
    }
}

/// The earliest start and the latest end a custom range may name: 1970-01-01 and 2200-01-01.
fn custom_bounds() -> (NaiveDate, NaiveDate) {
    // Both are valid dates: `from_ymd_opt` only fails on impossible ones.
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN);
    (day(1970, 1, 1), day(2200, 1, 1))
}

impl FromStr for TimeRange {
    type Err = WidgetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| WidgetError::InvalidTimeRange {
            given: s.to_owned(),
            reason,
            valid: TimeRange::valid_names(),
        };
        let wanted = s.trim().to_ascii_lowercase();
        if let Some((range, _)) = NAMED.iter().find(|(_, n)| *n == wanted) {
            return Ok(*range);
        }
        let Some((a, b)) = wanted.split_once("..") else {
            return Err(bad("not a named range".into()));
        };
        let date = |d: &str| {
            NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                .map_err(|e| bad(format!("{d:?} is not a date: {e}")))
        };
        let (start, end) = (date(a)?, date(b)?);
        if end <= start {
            return Err(bad(format!("the end {end} is not after the start {start}")));
        }
        // Donations are Unix seconds, and a range of centuries is no dashboard's: the bounds keep
        // a request from asking the store to walk year 1 to 9999.
        let (earliest, latest) = custom_bounds();
        if start < earliest || end > latest {
            return Err(bad(format!(
                "custom dates must lie between {earliest} and {latest}"
            )));
        }
        Ok(TimeRange::Custom { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 15, 30, 0).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn custom_ranges_are_bounded() {
        let err = "0001-01-01..9999-12-31".parse::<TimeRange>().unwrap_err();
        assert!(
            err.to_string()
                .contains("between 1970-01-01 and 2200-01-01"),
            "{err}"
        );
        assert!("1969-12-31..1970-02-01".parse::<TimeRange>().is_err());
        assert!("1970-01-01..2200-01-01".parse::<TimeRange>().is_ok());
    }

    #[test]
    fn ranges_resolve_at_calendar_boundaries() {
        // Wednesday 1 January 2025.
        let now = at(2025, 1, 1);
        let nov = at(2025, 11, 30);
        let (leap_day, march_end) = (at(2024, 2, 29), at(2024, 3, 31));
        // Each range at an instant, and the first and last-plus-one day it resolves to.
        let cases = [
            (TimeRange::Today, now, (2025, 1, 1), (2025, 1, 2)),
            (TimeRange::Yesterday, now, (2024, 12, 31), (2025, 1, 1)),
            (TimeRange::ThisWeek, now, (2024, 12, 30), (2025, 1, 6)),
            (TimeRange::LastWeek, now, (2024, 12, 23), (2024, 12, 30)),
            (TimeRange::LastMonth, now, (2024, 12, 1), (2025, 1, 1)),
            (TimeRange::ThisQuarter, now, (2025, 1, 1), (2025, 4, 1)),
            (TimeRange::LastYear, now, (2024, 1, 1), (2025, 1, 1)),
            (TimeRange::Last30Days, now, (2024, 12, 3), (2025, 1, 2)),
            (TimeRange::ThisQuarter, nov, (2025, 10, 1), (2026, 1, 1)),
            (TimeRange::ThisMonth, leap_day, (2024, 2, 1), (2024, 3, 1)),
            (TimeRange::LastMonth, march_end, (2024, 2, 1), (2024, 3, 1)),
        ];
        for (range, instant, (y0, m0, d0), (y1, m1, d1)) in cases {
            let resolved = (day(y0, m0, d0), day(y1, m1, d1));
            assert_eq!(range.resolve(instant), resolved, "{range} at {instant}");
        }
    }

    #[test]
    fn each_range_rolls_over_exactly_at_its_next_rollover() {
        // Hour by hour over two years from a Sunday night before a quarter's end: every rollover of
        // every named range is crossed, and nothing moves in between.
        let start = Utc.with_ymd_and_hms(2024, 3, 30, 20, 0, 0).unwrap();
        for range in TimeRange::named() {
            let mut now = start;
            let mut rollovers = 0;
            while now < start + Duration::days(731) {
                let next = range.next_rollover(now).unwrap();
                assert!(next > now, "{range} at {now}: {next} is not ahead");
                assert_eq!(
                    range.resolve(next - Duration::seconds(1)),
                    range.resolve(now),
                    "{range} moved before {next}"
                );
                assert_ne!(
                    range.resolve(next),
                    range.resolve(now),
                    "{range} did not move at {next}"
                );
                if next - now <= Duration::hours(1) {
                    rollovers += 1;
                }
                now += Duration::hours(1);
            }
            assert!(rollovers >= 2, "{range} rolled over {rollovers} times");
        }
        let custom: TimeRange = "2025-01-01..2025-02-01".parse().unwrap();
        assert_eq!(custom.next_rollover(at(2025, 1, 5)), None);
        assert_eq!(custom.next_boundary(at(2024, 12, 5)), Some(day(2025, 1, 1)));
        assert_eq!(custom.next_boundary(at(2025, 1, 5)), Some(day(2025, 2, 1)));
        assert_eq!(custom.next_boundary(at(2025, 3, 5)), None);
    }

    #[test]
    fn open_and_closed_ranges() {
        let now = at(2025, 6, 15);
        assert!(TimeRange::ThisMonth.contains_now(now));
        assert!(!TimeRange::ThisMonth.is_closed(now));
        assert!(TimeRange::LastMonth.is_closed(now));
        assert!(!TimeRange::Yesterday.contains_now(now));
    }

    #[test]
    fn parsing_rejects_bad_input_with_the_valid_forms() {
        for bad in [
            "next_month",
            "2025-02-01..2025-01-01",
            "2025-13-01..2025-14-01",
            "2025-01-01",
        ] {
            let msg = bad.parse::<TimeRange>().unwrap_err().to_string();
            assert!(
                msg.contains("this_month") && msg.contains("YYYY-MM-DD"),
                "{bad}: {msg}"
            );
        }
        for r in TimeRange::named() {
            assert_eq!(r.to_string().parse::<TimeRange>().unwrap(), r);
        }
        let custom = TimeRange::Custom {
            start: day(2025, 1, 1).date_naive(),
            end: day(2025, 2, 1).date_naive(),
        };
        assert_eq!(custom.to_string().parse::<TimeRange>().unwrap(), custom);
    }
}
