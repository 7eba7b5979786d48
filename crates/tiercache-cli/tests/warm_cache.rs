//! `tiercache warm-cache` against a private Redis and a small database.
#![allow(clippy::unwrap_used)]

mod common;

use common::Fixture;
use tiercache::EntryState;
use tiercache_widgets::{TimeRange, WidgetFilters, WidgetKey, WidgetType};

fn key(widget: WidgetType, range: TimeRange) -> String {
    WidgetKey::new(widget, range, WidgetFilters::new(), chrono::Utc::now()).to_string()
}

/// The row of `widget` in the summary table: warmed, skipped, failed.
fn row(stdout: &str, widget: &str) -> (u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(widget))
        .unwrap_or_else(|| panic!("no row {widget} in\n{stdout}"));
    let n: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(|c| c.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

#[tokio::test]
async fn warms_the_named_views_skips_fresh_ones_and_force_recomputes() {
    let f = Fixture::with_data().await;
    let args = [
        "warm-cache",
        "--type",
        "total_donations",
        "--type",
        "top-donors",
        "--time-range",
        "this_month",
        "--time-range",
        "last_month",
    ];
    let first = f.run("warm", &args);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(
        row(&first.stdout, "total_donations"),
        (2, 0, 0),
        "{first:?}"
    );
    assert_eq!(row(&first.stdout, "top_donors"), (2, 0, 0));
    assert_eq!(row(&first.stdout, "all"), (4, 0, 0));
    assert!(
        !first.stdout.contains('\r') && !first.stdout.contains("elapsed"),
        "no progress bar when stdout is not a terminal: {first:?}"
    );
    let node = f.node("warm").await;
    for w in [WidgetType::TotalDonations, WidgetType::TopDonors] {
        for r in [TimeRange::ThisMonth, TimeRange::LastMonth] {
            assert_eq!(
                node.admin().inspect(&key(w, r)).await.unwrap().state,
                EntryState::Fresh
            );
        }
    }
    let untouched = node
        .admin()
        .inspect(&key(WidgetType::TotalDonations, TimeRange::Today))
        .await
        .unwrap();
    assert_eq!(
        untouched.state,
        EntryState::Missing,
        "only the named ranges"
    );

    let again = f.run("warm", &args);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(row(&again.stdout, "all"), (0, 4, 0), "{again:?}");

    let before = node
        .admin()
        .inspect(&key(WidgetType::TopDonors, TimeRange::ThisMonth))
        .await
        .unwrap();
    let mut forced_args = args.to_vec();
    forced_args.push("--force");
    let forced = f.run("warm", &forced_args);
    assert_eq!(row(&forced.stdout, "all"), (4, 0, 0), "{forced:?}");
    let after = node
        .admin()
        .inspect(&key(WidgetType::TopDonors, TimeRange::ThisMonth))
        .await
        .unwrap();
    assert_ne!(before.generation, after.generation, "stored again");
}

#[tokio::test]
async fn every_view_of_a_type_in_parallel_and_quiet_prints_nothing() {
    let f = Fixture::with_data().await;
    let all = f.run(
        "par",
        &["warm-cache", "--type", "organization_stats", "--parallel"],
    );
    assert_eq!(all.code, 0, "{all:?}");
    let named = TimeRange::named().count() as u64;
    assert_eq!(row(&all.stdout, "organization_stats"), (named, 0, 0));
    assert!(all.stdout.contains("at once"), "{all:?}");

    let quiet = f.run(
        "par",
        &[
            "warm-cache",
            "--type",
            "recent_activities",
            "--parallel",
            "3",
            "-q",
        ],
    );
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert!(quiet.stdout.is_empty(), "{quiet:?}");
    let node = f.node("par").await;
    for r in TimeRange::named() {
        assert_eq!(
            node.admin()
                .inspect(&key(WidgetType::RecentActivities, r))
                .await
                .unwrap()
                .state,
            EntryState::Fresh,
            "{r}"
        );
    }

    let verbose = f.run("par", &["warm-cache", "--type", "recent_activities", "-v"]);
    assert!(
        verbose
            .stdout
            .contains("skipped recent_activities today: fresh in Redis"),
        "{verbose:?}"
    );
}

#[tokio::test]
async fn a_view_that_cannot_be_stored_fails_the_run_with_exit_1() {
    let f = Fixture::with_data().await;
    // Every variable the services read is honoured: a 64-byte value limit refuses these views.
    let run = f.run_env(
        "fail",
        &[
            "warm-cache",
            "--type",
            "recent_activities",
            "--time-range",
            "last_year",
        ],
        &[("TIERCACHE_MAX_VALUE_BYTES", "64")],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(row(&run.stdout, "recent_activities"), (0, 0, 1));
    assert!(
        run.stderr.contains("failed: recent_activities last_year") && run.stderr.contains("limit"),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_missing_database_or_an_unknown_type_or_range_is_bad_input() {
    let f = Fixture::redis_only();
    let run = f.run("bad", &["warm-cache"]);
    assert_eq!(run.code, 64, "{run:?}");
    assert!(run.stderr.contains("no database at"), "{run:?}");

    let run = f.run("bad", &["warm-cache", "--type", "pie_chart"]);
    assert_eq!(run.code, 64, "{run:?}");
    assert!(
        run.stderr.contains("pie_chart") && run.stderr.contains("employee_participation"),
        "the valid types are listed: {run:?}"
    );
    let run = f.run("bad", &["warm-cache", "--time-range", "fortnight"]);
    assert_eq!(run.code, 64, "{run:?}");
    assert!(
        run.stderr.contains("last_30_days"),
        "the valid ranges are listed: {run:?}"
    );
}
