//! Invalidation by dated events and by scope tags, across three nodes: the views whose figures
//! change are refreshed everywhere, and the others stay in L1.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Duration, Utc};
use common::{fleet, read, read_cached, total, wait_until_gone, Fleet, DEADLINE};
use tiercache_testkit::eventually;
use tiercache_widgets::{NewDonation, TimeRange, WidgetFilters, WidgetType};

const W: WidgetType = WidgetType::TotalDonations;

fn filters(pairs: &[(&str, &str)]) -> WidgetFilters {
    WidgetFilters::from_pairs(pairs.iter().copied()).unwrap()
}

/// Waits until every node shows `expected` for a view.
async fn every_node_shows(f: &Fleet, r: TimeRange, filt: &WidgetFilters, expected: i64) {
    for (i, node) in f.nodes.iter().enumerate() {
        eventually(
            DEADLINE,
            &format!("node {i} shows {expected} for {r} {filt:?}"),
            || async { total(&*read(node, W, r, filt).await) == expected },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_dated_donation_and_its_refund_refresh_the_closed_range_they_fall_in() {
    let f = fleet("back-dated").await;
    let now = Utc::now();
    let (start, end) = TimeRange::LastMonth.resolve(now);
    let in_last_month = start + (end - start) / 2;
    let all = WidgetFilters::new();
    let campaign5 = filters(&[("campaign_id", "5")]);
    let mut before = Vec::new();
    for node in &f.nodes {
        before.push(total(&*read(node, W, TimeRange::LastMonth, &all).await));
        read(node, W, TimeRange::ThisMonth, &all).await;
        read(node, W, TimeRange::LastMonth, &campaign5).await;
    }
    let was = before[0];

    // A donation to campaign 1 (organisation 1) recorded late, dated in the middle of last month.
    let event = f
        .data
        .record_donation(NewDonation {
            campaign_id: 1,
            employee_id: None,
            donor: "Grace Hopper".into(),
            amount_cents: 98_765,
            currency: "EUR".into(),
            created_at: in_last_month.timestamp(),
        })
        .await
        .unwrap()
        .event;
    f.invalidation.invalidate_for_event(&event).await.unwrap();
    every_node_shows(&f, TimeRange::LastMonth, &all, was + 98_765).await;
    for (i, node) in f.nodes.iter().enumerate() {
        let what = format!("node {i}: this month does not contain the donation");
        read_cached(node, (W, TimeRange::ThisMonth, &all), &what).await;
        let what = format!("node {i}: campaign 5's last month");
        read_cached(node, (W, TimeRange::LastMonth, &campaign5), &what).await;
    }

    // Refunded: the event carries the original date, so last month is refreshed again.
    let tiercache_widgets::DomainEvent::DonationCompleted(facts) = &event else {
        panic!("a new donation's event: {event:?}")
    };
    let refund = f
        .data
        .refund_donation(facts.donation_id)
        .await
        .unwrap()
        .event;
    f.invalidation.invalidate_for_event(&refund).await.unwrap();
    every_node_shows(&f, TimeRange::LastMonth, &all, was).await;
    for (i, node) in f.nodes.iter().enumerate() {
        let what = format!("node {i}: this month after the refund");
        read_cached(node, (W, TimeRange::ThisMonth, &all), &what).await;
    }
    assert!(
        in_last_month < now - Duration::days(1),
        "the donation is dated in a closed range"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_tags_refresh_every_view_that_includes_the_scope_and_no_other() {
    let f = fleet("scope-tags").await;
    // Campaigns 1-4 and employees 1-20 belong to organisation 1; campaigns 5-8 and employees 21-40
    // to organisation 2.
    let views = [
        ("all", filters(&[])),
        ("org 1", filters(&[("organization_id", "1")])),
        ("campaign 1", filters(&[("campaign_id", "1")])),
        ("campaign 2", filters(&[("campaign_id", "2")])),
        ("campaign 5", filters(&[("campaign_id", "5")])),
        ("org 2", filters(&[("organization_id", "2")])),
        ("employee 3", filters(&[("employee_id", "3")])),
        (
            "employee 4",
            filters(&[("employee_id", "4"), ("organization_id", "1")]),
        ),
        ("EUR", filters(&[("currency", "EUR")])),
    ];
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "campaign:1",
            &["all", "org 1", "campaign 1", "employee 3", "EUR"],
            &["campaign 2", "campaign 5", "org 2"],
        ),
        (
            "organization:1",
            &[
                "all",
                "org 1",
                "campaign 1",
                "campaign 2",
                "employee 3",
                "employee 4",
                "EUR",
            ],
            &["campaign 5", "org 2"],
        ),
        (
            "employee:3",
            &[
                "all",
                "org 1",
                "campaign 1",
                "campaign 2",
                "employee 3",
                "EUR",
            ],
            &["campaign 5", "org 2", "employee 4"],
        ),
    ];
    let range = TimeRange::ThisYear;
    for (tag, refreshed, kept) in cases {
        for node in &f.nodes {
            for (_, filt) in &views {
                read(node, W, range, filt).await;
            }
        }
        f.invalidation.invalidate_by_tags([tag]).await.unwrap();
        let view = |name: &str| &views.iter().find(|(n, _)| *n == name).unwrap().1;
        for node in &f.nodes {
            for name in refreshed {
                wait_until_gone(node, W, range, view(name)).await;
            }
        }
        for (i, node) in f.nodes.iter().enumerate() {
            for name in kept {
                let what = format!("{tag}: node {i}, {name}");
                read_cached(node, (W, range, view(name)), &what).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_event_naming_the_wrong_organisation_still_reaches_its_campaigns_views() {
    let f = fleet("wrong-org").await;
    // Campaign 5 belongs to organisation 2; its views carry organisation 2.
    let campaign5 = filters(&[("campaign_id", "5")]);
    for node in &f.nodes {
        read(node, W, TimeRange::Today, &campaign5).await;
    }
    let events = serde_json::json!({"donation_created":
        {"campaign_id": 5, "organization_id": 1, "currency": "EUR", "amount": 10}});
    f.invalidation.smart_invalidation(&events).await.unwrap();
    for node in &f.nodes {
        wait_until_gone(node, W, TimeRange::Today, &campaign5).await;
    }
}
