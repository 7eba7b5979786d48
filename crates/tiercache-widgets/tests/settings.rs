//! The seed's settings as a user sets them: the default TTL, warm-up's load time, load timeouts.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{fleet_with, is_cached, read, wait_until_gone, Gate, Setup, DEADLINE};
use tiercache::{ErrorKind, RefreshMode, Source};
use tiercache_testkit::eventually;
use tiercache_widgets::{LoadTimeouts, TimeRange, WidgetError, WidgetFilters, WidgetType};

const QUICK: LoadTimeouts = LoadTimeouts {
    soft: Duration::from_millis(200),
    hard: Duration::from_millis(500),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_no_tier_names_live_for_widget_cache_default_ttl() {
    let f = fleet_with(
        "default-ttl",
        Setup {
            configure: |c| c.cache.default_ttl = Duration::from_secs(1),
            ..Setup::default()
        },
    )
    .await;
    let (node, all) = (&f.nodes[0], WidgetFilters::new());
    // total_donations over this year has no tier of its own; top_donors has the medium tier.
    read(node, WidgetType::TotalDonations, TimeRange::ThisYear, &all).await;
    read(node, WidgetType::TopDonors, TimeRange::ThisYear, &all).await;
    // Gone after the 1 s default, while the tiered view keeps its 15 minutes.
    wait_until_gone(node, WidgetType::TotalDonations, TimeRange::ThisYear, &all).await;
    assert!(
        is_cached(node, WidgetType::TopDonors, TimeRange::ThisYear, &all).await,
        "a view with a tier keeps the tier's TTL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warmed_view_records_its_load_time_so_xfetch_refreshes_it_early() {
    let f = fleet_with(
        "warmup-xfetch",
        Setup {
            configure: |c| {
                c.cache.default_ttl = Duration::from_secs(10);
                c.cache.refresh_mode = RefreshMode::XFetch { beta: 50.0 };
            },
            ..Setup::default()
        },
    )
    .await;
    // A slow aggregate: 200 ms stored with the value makes XFetch refresh it well before its 10 s
    // are up (a hit refreshes with probability e^-(time left / 10 s) at beta 50).
    let slow = f.hooked(|| std::thread::sleep(Duration::from_millis(200)), || {});
    let (node, w, r, all) = (
        &f.node_over(0, slow),
        WidgetType::TotalDonations,
        TimeRange::ThisYear,
        WidgetFilters::new(),
    );
    node.warm_view(w, r, all.clone()).await.unwrap();
    eventually(
        DEADLINE,
        "a hit on the warmed view refreshes it early",
        || async {
            read(node, w, r, &all).await;
            node.cache().stats().refreshes >= 1
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_load_fails_at_the_hard_timeout_instead_of_holding_its_callers() {
    let f = fleet_with("hard-timeout", Setup::default()).await;
    // The query hangs until the test ends.
    let gate = Gate::default();
    let hung_data = f.gated(&gate);
    let node = f.node_over(0, hung_data).with_load_timeouts(QUICK);
    let view = WidgetFilters::new().with("campaign_id", "3").unwrap();
    let hung = tokio::time::timeout(
        DEADLINE,
        node.fetch_view(WidgetType::TopDonors, TimeRange::ThisYear, view),
    )
    .await
    .expect("the call returns instead of waiting for the hung query");
    match hung {
        Err(WidgetError::Cache(e)) => assert_eq!(e.kind(), ErrorKind::Timeout, "{e}"),
        other => panic!("a timeout, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_load_serves_the_last_value_at_the_soft_timeout() {
    let f = fleet_with(
        "soft-timeout",
        Setup {
            configure: |c| c.cache.default_ttl = Duration::from_secs(1),
            ..Setup::default()
        },
    )
    .await;
    let (w, r, all) = (
        WidgetType::TotalDonations,
        TimeRange::ThisYear,
        WidgetFilters::new(),
    );
    let first = read(&f.nodes[0], w, r, &all).await;
    // The same cache, over a query that hangs until the test ends.
    let gate = Gate::default();
    let hung_data = f.gated(&gate);
    let node = f.node_over(0, hung_data).with_load_timeouts(QUICK);
    wait_until_gone(&node, w, r, &all).await; // expired after its 1 s
    let fetched = tokio::time::timeout(DEADLINE, node.fetch_view(w, r, all.clone()))
        .await
        .expect("the call returns instead of waiting for the hung query")
        .unwrap();
    assert_eq!(fetched.source, Source::Stale);
    assert_eq!(fetched.value, first, "the last value");
}
