//! The widget layer end to end: SQLite data, three cache nodes on a private Redis, domain events.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::{fleet, l1_hits as hits, read, read_cached, total, wait_until_gone, DEADLINE};
use tiercache_testkit::eventually;
use tiercache_widgets::{NewDonation, TimeRange, WidgetFilters, WidgetType};

fn now() -> DateTime<Utc> {
    Utc::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_widget_type_computes_and_is_cached() {
    let f = fleet("all").await;
    let filters = WidgetFilters::new().with("organization_id", "1").unwrap();
    for w in WidgetType::ALL {
        let first = read(&f.nodes[0], w, TimeRange::Last30Days, &filters).await;
        assert_eq!(first.widget(), w);
        let direct = f
            .data
            .compute(w, TimeRange::Last30Days, filters.clone(), now())
            .await
            .unwrap();
        assert_eq!(*first, direct, "{w}: cached data equals a direct query");
        let before = hits(&f.nodes[0]);
        let again = read(&f.nodes[0], w, TimeRange::Last30Days, &filters).await;
        assert!(
            Arc::ptr_eq(&first, &again) && hits(&f.nodes[0]) == before + 1,
            "{w}: second read is an L1 hit"
        );
    }
    let totals = f
        .data
        .compute(
            WidgetType::TotalDonations,
            TimeRange::LastYear,
            WidgetFilters::new(),
            now(),
        )
        .await
        .unwrap();
    assert!(total(&totals) > 0, "the generated data is not empty");
}

/// A dashboard's seven views in one call: computed in one load on one node, answered from L2 on
/// another, from L1 on the next call, each equal to a direct query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_in_one_call_is_computed_in_one_load() {
    let f = fleet("dashboard").await;
    let filters = WidgetFilters::new().with("organization_id", "2").unwrap();
    let views: Vec<_> = WidgetType::ALL
        .iter()
        .map(|&w| (w, TimeRange::Last30Days, filters.clone()))
        .collect();
    let sources = |answers: &[Result<tiercache::Fetched<_>, _>]| -> Vec<tiercache::Source> {
        answers.iter().map(|a| a.as_ref().unwrap().source).collect()
    };
    let first = f.nodes[0].fetch_views(&views).await;
    assert_eq!(sources(&first), vec![tiercache::Source::Loaded; 7]);
    let stats = f.nodes[0].cache().stats();
    assert_eq!((stats.batch_loads, stats.batch_loaded_keys), (1, 7));
    for ((w, r, filters), answer) in views.iter().zip(&first) {
        let value = &answer.as_ref().unwrap().value;
        assert_eq!(value.widget(), *w);
        let direct = f
            .data
            .compute(*w, *r, filters.clone(), now())
            .await
            .unwrap();
        assert_eq!(**value, direct, "{w}: equal to a direct query");
    }
    let elsewhere = f.nodes[1].fetch_views(&views).await;
    assert_eq!(sources(&elsewhere), vec![tiercache::Source::L2; 7]);
    let again = f.nodes[0].fetch_views(&views).await;
    assert_eq!(sources(&again), vec![tiercache::Source::L1; 7]);
    assert_eq!(f.nodes[1].cache().stats().batch_loads, 0);
    // The single-view read finds what the batch stored.
    let one = read_cached(
        &f.nodes[0],
        (WidgetType::TopDonors, TimeRange::Last30Days, &filters),
        "top donors",
    )
    .await;
    assert_eq!(one.widget(), WidgetType::TopDonors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_donation_refreshes_affected_views_on_every_node_and_leaves_others_cached() {
    let f = fleet("donation").await;
    // Campaign 1 belongs to organisation 1; campaign 5 to organisation 2 (4 campaigns per organisation).
    let org1 = WidgetFilters::new().with("organization_id", "1").unwrap();
    let camp1 = WidgetFilters::new().with("campaign_id", "1").unwrap();
    let camp5 = WidgetFilters::new().with("campaign_id", "5").unwrap();
    let all = WidgetFilters::new();
    let views = [
        (TimeRange::ThisMonth, all.clone()),
        (TimeRange::ThisMonth, org1.clone()),
        (TimeRange::ThisMonth, camp1.clone()),
        (TimeRange::ThisMonth, camp5.clone()),
        (TimeRange::LastYear, all.clone()),
    ];
    let mut before = Vec::new();
    for node in &f.nodes {
        for (r, filt) in &views {
            before.push(total(
                &*read(node, WidgetType::TotalDonations, *r, filt).await,
            ));
        }
    }

    let event = f
        .data
        .record_donation(NewDonation {
            campaign_id: 1,
            employee_id: None,
            donor: "Ada Lovelace".into(),
            amount_cents: 123_456,
            currency: "EUR".into(),
            created_at: now().timestamp(),
        })
        .await
        .unwrap()
        .event;
    f.invalidation.invalidate_for_event(&event).await.unwrap();

    for (i, node) in f.nodes.iter().enumerate() {
        for (v, (r, filt)) in views.iter().enumerate() {
            let was = before[i * views.len() + v];
            if v < 3 {
                let expected = was + 123_456;
                let direct = f
                    .data
                    .compute(WidgetType::TotalDonations, *r, filt.clone(), now())
                    .await
                    .unwrap();
                assert_eq!(
                    total(&direct),
                    expected,
                    "the direct query sees the donation"
                );
                eventually(
                    DEADLINE,
                    &format!("node {i} shows the new figure for {r} {filt:?}"),
                    || async {
                        total(&*read(node, WidgetType::TotalDonations, *r, filt).await) == expected
                    },
                )
                .await;
            } else {
                let what = format!("node {i}: untouched {r} {filt:?}");
                let now_value =
                    read_cached(node, (WidgetType::TotalDonations, *r, filt), &what).await;
                assert_eq!(total(&now_value), was);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_widget_clears_every_filter_variant_and_nothing_else() {
    let f = fleet("widget").await;
    let variants = [
        WidgetFilters::new(),
        WidgetFilters::new().with("organization_id", "2").unwrap(),
        WidgetFilters::new()
            .with("campaign_id", "3")
            .unwrap()
            .with("currency", "EUR")
            .unwrap(),
    ];
    for filt in &variants {
        read(
            &f.nodes[1],
            WidgetType::TopDonors,
            TimeRange::ThisYear,
            filt,
        )
        .await;
    }
    read(
        &f.nodes[1],
        WidgetType::TopDonors,
        TimeRange::LastYear,
        &variants[0],
    )
    .await;

    f.nodes[0]
        .invalidate_widget(WidgetType::TopDonors, TimeRange::ThisYear)
        .await
        .unwrap();
    for filt in &variants {
        wait_until_gone(
            &f.nodes[1],
            WidgetType::TopDonors,
            TimeRange::ThisYear,
            filt,
        )
        .await;
    }
    let other_range = (WidgetType::TopDonors, TimeRange::LastYear, &variants[0]);
    read_cached(&f.nodes[1], other_range, "another range of the same widget").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_shaped_events_are_narrowed_with_the_directory_and_unknown_names_are_refused() {
    let f = fleet("smart").await;
    let camp1 = WidgetFilters::new().with("campaign_id", "1").unwrap();
    let camp5 = WidgetFilters::new().with("campaign_id", "5").unwrap();
    read(
        &f.nodes[2],
        WidgetType::TotalDonations,
        TimeRange::Today,
        &camp1,
    )
    .await;
    read(
        &f.nodes[2],
        WidgetType::TotalDonations,
        TimeRange::Today,
        &camp5,
    )
    .await;

    let events =
        serde_json::json!({"donation_created": {"campaign_id": 1, "employee_id": 4, "amount": 50}});
    let tags = f.invalidation.smart_invalidation(&events).await.unwrap();
    assert!(tags > 0);
    wait_until_gone(
        &f.nodes[2],
        WidgetType::TotalDonations,
        TimeRange::Today,
        &camp1,
    )
    .await;
    let camp5_view = (WidgetType::TotalDonations, TimeRange::Today, &camp5);
    read_cached(&f.nodes[2], camp5_view, "campaign 5's view").await;

    let err = f
        .invalidation
        .smart_invalidation(&serde_json::json!({"donation_exploded": {}}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("donation_created"), "{err}");
}
