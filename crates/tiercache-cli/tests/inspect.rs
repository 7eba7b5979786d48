//! `tiercache inspect`: one entry, by raw key or by widget parameters.
#![allow(clippy::unwrap_used)]

mod common;

use common::Fixture;
use serde_json::Value;
use tiercache_widgets::{TimeRange, WidgetFilters, WidgetKey, WidgetType};

#[tokio::test]
async fn a_warmed_view_is_found_by_its_parameters_and_its_raw_key() {
    let f = Fixture::with_data().await;
    let warm = f.run(
        "insp",
        &[
            "warm-cache",
            "--type",
            "total_donations",
            "--time-range",
            "this_month",
        ],
    );
    assert_eq!(warm.code, 0, "{warm:?}");
    let run = f.run(
        "insp",
        &[
            "inspect",
            "--widget",
            "total_donations",
            "--time-range",
            "this_month",
        ],
    );
    run.assert_stdout(
        0,
        &[
            "yes, fresh",
            "not knowable from outside the nodes",
            "generation",
            "donation ",
            "current",
            "fail-safe",
            "size",
            "none: no node is loading it",
        ],
    );
    let key = WidgetKey::new(
        WidgetType::TotalDonations,
        TimeRange::ThisMonth,
        WidgetFilters::new(),
        chrono::Utc::now(),
    )
    .to_string();
    let json = f.run("insp", &["inspect", &key, "--json"]);
    assert_eq!(json.code, 0, "{json:?}");
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["key"], key.as_str());
    assert_eq!(report["state"], "fresh");
    assert!(report["size_bytes"].as_u64().unwrap() > 36);
    assert!(report["fresh_for_ms"].as_i64().unwrap() > 0);
    assert!(report["lease"].is_null());
    let tags = report["tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["tag"] == "donation" && t["current"] == true),
        "{tags:?}"
    );
}

#[tokio::test]
async fn a_missing_key_exits_1_and_bad_filters_are_bad_input() {
    let f = Fixture::redis_only();
    let top_donors = |args: &[&str]| {
        let command = ["inspect", "--widget", "top_donors"];
        f.run("insp", &[&command[..], args].concat())
    };
    let run = top_donors(&["--time-range", "last_month", "--organization-id", "3"]);
    run.assert_stdout(1, &["no: nothing is stored", "top_donors:last_month@"]);

    let bad = top_donors(&["--organization-id", "x"]);
    bad.assert_stderr(64, &["organization_id"]);
    let neither = f.run("insp", &["inspect"]);
    assert_eq!(neither.code, 64, "{neither:?}");
}
