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
