//! Calendar rollovers: a view read after a boundary shows the new period, on every node, and a view
//! computed just before its boundary does not outlive it.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{fleet_with, is_cached, l1_hits, read, total, wait_until_gone, Setup};
use tiercache_widgets::{ManualClock, TimeRange, WidgetFilters, WidgetType};

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_range_shows_its_new_period_right_after_each_calendar_boundary() {
    // The data spans the 400 days up to 10 July 2025, covering every boundary below.
    let clock = ManualClock::new(utc(2025, 7, 10));
    let f = fleet_with(
        "calendar",
        Setup {
            clock: Some(clock.clone()),
            data_until: utc(2025, 7, 10),
            ..Setup::default()
        },
    )
    .await;
    let all = WidgetFilters::new();
    let w = WidgetType::TotalDonations;
    let boundaries = [
        ("day", utc(2025, 5, 15)),    // Thursday
        ("week", utc(2025, 6, 2)),    // Monday
        ("month", utc(2025, 5, 1)),   // Thursday
        ("quarter", utc(2025, 4, 1)), // Tuesday
        ("year", utc(2025, 1, 1)),    // Wednesday
    ];
    for (what, boundary) in boundaries {
        let (before, after) = (
            boundary - Duration::seconds(1),
            boundary + Duration::seconds(1),
        );
        clock.set(before);
        for node in &f.nodes {
            for r in TimeRange::named() {
                let direct = f.data.compute(w, r, all.clone(), before).await.unwrap();
                let cached = read(node, w, r, &all).await;
                assert_eq!(*cached, direct, "{what}: {r} before the boundary");
            }
        }

        clock.set(after);
        for (i, node) in f.nodes.iter().enumerate() {
            for r in TimeRange::named() {
                let moved = r.resolve(before) != r.resolve(after);
                let direct = f.data.compute(w, r, all.clone(), after).await.unwrap();
                let hits = l1_hits(node);
                let cached = read(node, w, r, &all).await;
                assert_eq!(
                    *cached, direct,
                    "{what}: node {i} shows {r} for the period at {after}"
                );
                if moved {
                    let old = f.data.compute(w, r, all.clone(), before).await.unwrap();
                    assert_ne!(
                        total(&old),
                        total(&direct),
                        "{what}: {r} has other figures in its new period (the test would prove nothing)"
                    );
                } else {
                    assert_eq!(
                        l1_hits(node),
                        hits + 1,
                        "{what}: {r} did not move: still an L1 hit"
                    );
                }
            }
        }
        let moved: Vec<String> = TimeRange::named()
            .filter(|r| r.resolve(before) != r.resolve(after))
            .map(|r| r.to_string())
            .collect();
        let expected: &[&str] = match what {
            "day" => &["today", "yesterday", "last_30_days"],
            "week" => &[
                "today",
                "yesterday",
                "this_week",
                "last_week",
                "last_30_days",
            ],
            "month" => &[
                "today",
                "yesterday",
                "this_month",
                "last_month",
                "last_30_days",
            ],
            "quarter" => &[
                "today",
                "yesterday",
                "this_month",
                "last_month",
                "this_quarter",
                "last_30_days",
            ],
            _ => &[
                "today",
                "yesterday",
                "this_month",
                "last_month",
                "this_quarter",
                "this_year",
                "last_30_days",
                "last_year",
            ],
        };
        assert_eq!(moved, expected, "{what}: the ranges that roll over");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_computed_just_before_its_rollover_expires_at_it() {
    let clock = ManualClock::new(utc(2025, 5, 15) - Duration::seconds(2));
    let f = fleet_with(
        "rollover-ttl",
        Setup {
            clock: Some(clock.clone()),
            data_until: utc(2025, 7, 10),
            ..Setup::default()
        },
    )
    .await;
    let (w, all) = (WidgetType::TotalDonations, WidgetFilters::new());
    let node = &f.nodes[0];
    // `yesterday` has the long tier (an hour), `this_year` the default TTL (15 minutes): only the
    // rollover two seconds ahead can end the first so soon.
    read(node, w, TimeRange::Yesterday, &all).await;
    read(node, w, TimeRange::ThisYear, &all).await;
    wait_until_gone(node, w, TimeRange::Yesterday, &all).await;
    assert!(
        is_cached(node, w, TimeRange::ThisYear, &all).await,
        "a view far from its rollover keeps its tier's lifetime"
    );
}
