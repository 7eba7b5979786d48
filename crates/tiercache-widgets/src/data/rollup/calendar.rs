//! Calendar buckets of the rollups: which day, week, month, quarter and year an instant falls in,
//! and how a range of instants splits into whole buckets plus the raw seconds at its edges.
//!
//! Everything is computed here in Rust from Unix seconds, so the SQL that stores and reads the
//! rollups only compares integers and works the same on any database.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

const DAY: i64 = 86_400;

/// The size of a rollup bucket. Buckets are UTC and half-open; weeks start on Monday, as the named
/// ranges' weeks do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Grain {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Grain {
    /// Every grain, the largest first: the order a range is covered in.
    pub(crate) const LARGEST_FIRST: [Grain; 5] = [
        Grain::Year,
        Grain::Quarter,
        Grain::Month,
        Grain::Week,
        Grain::Day,
    ];

    /// The number stored in the rollup tables' `grain` column.
    pub(crate) fn code(self) -> i64 {
        match self {
            Grain::Day => 0,
            Grain::Week => 1,
            Grain::Month => 2,
            Grain::Quarter => 3,
            Grain::Year => 4,
        }
    }

    /// The start (Unix seconds) of the bucket of this grain that holds `at`.
    pub(crate) fn bucket_of(self, at: i64) -> i64 {
        let day_start = at.div_euclid(DAY) * DAY;
        let Some(date) = date_of(day_start) else {
            // Beyond chrono's calendar (hundreds of thousands of years away): the day is the bucket.
            return day_start;
        };
        let first = match self {
            Grain::Day => return day_start,
            Grain::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            Grain::Month => date.with_day(1).unwrap_or(date),
            Grain::Quarter => {
                NaiveDate::from_ymd_opt(date.year(), date.month0() / 3 * 3 + 1, 1).unwrap_or(date)
            }
            Grain::Year => NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date),
        };
        seconds_of(first)
    }

    /// The start of the bucket after the one starting at `start`.
    pub(crate) fn next_bucket(self, start: i64) -> i64 {
        let Some(date) = date_of(start) else {
            return start + DAY;
        };
        let months = |n: u32| {
            date.checked_add_months(chrono::Months::new(n))
                .map_or(start + DAY, seconds_of)
        };
        match self {
            Grain::Day => start + DAY,
            Grain::Week => start + 7 * DAY,
            Grain::Month => months(1),
            Grain::Quarter => months(3),
            Grain::Year => months(12),
        }
    }
}

fn date_of(seconds: i64) -> Option<NaiveDate> {
    DateTime::<Utc>::from_timestamp(seconds, 0).map(|t| t.date_naive())
}

fn seconds_of(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp())
}

/// A whole rollup bucket: its grain and its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub(crate) grain: Grain,
    pub(crate) start: i64,
}

/// A range `[start, end)` of instants split into what the rollups answer and what the raw rows must:
/// whole buckets in the middle, and at most one partial day at each edge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Cover {
    /// Whole buckets, in time order; together with `edges` they tile the range exactly once.
    pub(crate) buckets: Vec<Bucket>,
    /// Half-open spans of seconds shorter than a day, to be read from the raw rows.
    pub(crate) edges: Vec<(i64, i64)>,
}

/// Covers `[start, end)` with as few buckets as a left-to-right walk finds: at each point the largest
/// grain whose bucket starts there and ends inside the range. A year is one bucket, a quarter one,
/// `last_30_days` a few days, weeks and days.
pub(crate) fn cover(start: i64, end: i64) -> Cover {
    let mut cover = Cover::default();
    if end <= start {
        return cover;
    }
    let first_midnight = Grain::Day.bucket_of(start + DAY - 1);
    let last_midnight = Grain::Day.bucket_of(end);
    if first_midnight >= last_midnight {
        // No whole day inside: all of it is raw.
        cover.edges.push((start, end));
        return cover;
    }
    if start < first_midnight {
        cover.edges.push((start, first_midnight));
    }
    let mut at = first_midnight;
    while at < last_midnight {
        let grain = Grain::LARGEST_FIRST
            .into_iter()
            .find(|g| g.bucket_of(at) == at && g.next_bucket(at) <= last_midnight)
            .unwrap_or(Grain::Day);
        cover.buckets.push(Bucket { grain, start: at });
        at = grain.next_bucket(at);
    }
    if last_midnight < end {
        cover.edges.push((last_midnight, end));
    }
    cover
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(y: i32, m: u32, d: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap().timestamp()
    }

    #[test]
    fn buckets_follow_the_calendar() {
        // Wednesday 31 December 2025, 18:00.
        let at = t(2025, 12, 31) + 18 * 3600;
        assert_eq!(Grain::Day.bucket_of(at), t(2025, 12, 31));
        assert_eq!(Grain::Week.bucket_of(at), t(2025, 12, 29));
        assert_eq!(Grain::Month.bucket_of(at), t(2025, 12, 1));
        assert_eq!(Grain::Quarter.bucket_of(at), t(2025, 10, 1));
        assert_eq!(Grain::Year.bucket_of(at), t(2025, 1, 1));
        assert_eq!(Grain::Month.next_bucket(t(2024, 2, 1)), t(2024, 3, 1));
        assert_eq!(Grain::Quarter.next_bucket(t(2025, 10, 1)), t(2026, 1, 1));
        assert_eq!(Grain::Year.next_bucket(t(2024, 1, 1)), t(2025, 1, 1));
        assert_eq!(Grain::Week.next_bucket(t(2025, 12, 29)), t(2026, 1, 5));
    }

    #[test]
    fn a_cover_tiles_the_range_exactly_once() {
        let cases = [
            (t(2025, 1, 1), t(2026, 1, 1)),
            (t(2025, 11, 8), t(2025, 12, 8)),
            (t(2025, 3, 31) + 3600, t(2025, 7, 2) + 7200),
            (t(2025, 3, 31) + 3600, t(2025, 3, 31) + 7200),
            (t(2024, 12, 30), t(2025, 1, 6)),
        ];
        for (start, end) in cases {
            let c = cover(start, end);
            let mut pieces: Vec<(i64, i64)> = c
                .buckets
                .iter()
                .map(|b| (b.start, b.grain.next_bucket(b.start)))
                .chain(c.edges.iter().copied())
                .collect();
            pieces.sort_unstable();
            assert_eq!(pieces.first().map(|p| p.0), Some(start));
            assert_eq!(pieces.last().map(|p| p.1), Some(end));
            assert!(pieces.windows(2).all(|w| w[0].1 == w[1].0), "{pieces:?}");
            assert!(c.edges.iter().all(|(a, b)| b - a < DAY));
        }
        assert_eq!(cover(t(2025, 1, 1), t(2026, 1, 1)).buckets.len(), 1);
        // 8 November (a Saturday) to 8 December: two days, three weeks, then days.
        assert!(cover(t(2025, 11, 8), t(2025, 12, 8)).buckets.len() <= 12);
        // A range that is one bucket is covered by that bucket alone.
        for (start, end, grain) in [
            (t(2025, 10, 1), t(2026, 1, 1), Grain::Quarter),
            (t(2025, 12, 1), t(2026, 1, 1), Grain::Month),
            (t(2025, 12, 29), t(2026, 1, 5), Grain::Week),
            (t(2025, 12, 30), t(2025, 12, 31), Grain::Day),
        ] {
            assert_eq!(cover(start, end).buckets, vec![Bucket { grain, start }]);
        }
    }
}
