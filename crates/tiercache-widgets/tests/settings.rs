//! The seed's settings as a user sets them: the default TTL, warm-up's load time, load timeouts.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{fleet_with, key_of, read, Setup, DEADLINE};
use tiercache_testkit::eventually;
use tiercache_widgets::{TimeRange, WidgetData, WidgetFilters, WidgetType};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_no_tier_names_live_for_widget_cache_default_ttl() {
    let f = fleet_with(
        "default-ttl",
        Setup {
            configure: |c| c.default_ttl = Duration::from_secs(1),
            ..Setup::default()
        },
    )
    .await;
    let (node, all) = (&f.nodes[0], WidgetFilters::new());
    // total_donations over this year has no tier of its own; top_donors has the medium tier.
    read(
        node,
        &f.data,
        WidgetType::TotalDonations,
        TimeRange::ThisYear,
        &all,
    )
    .await;
    read(
        node,
        &f.data,
        WidgetType::TopDonors,
        TimeRange::ThisYear,
        &all,
    )
    .await;
    let untiered = key_of(node, WidgetType::TotalDonations, TimeRange::ThisYear, &all);
    eventually(DEADLINE, "the untiered view expires after 1 s", || async {
        node.cache()
            .get::<WidgetData>(&untiered)
            .await
            .unwrap()
            .is_none()
    })
    .await;
    let tiered = key_of(node, WidgetType::TopDonors, TimeRange::ThisYear, &all);
    assert!(
        node.cache()
            .get::<WidgetData>(&tiered)
            .await
            .unwrap()
            .is_some(),
        "a view with a tier keeps the tier's TTL"
    );
}
