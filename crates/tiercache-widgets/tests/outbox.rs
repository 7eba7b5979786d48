//! The outbox: a change committed without its invalidation (the request was cancelled, the process
//! died) is sent by the next dispatcher, and one whose dispatch meets Redis away is retried until it
//! lands. Three nodes over a private Redis.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{fleet, read, read_cached, total, Fleet, DEADLINE};
use std::sync::atomic::Ordering::SeqCst;
use tiercache_testkit::eventually;
use tiercache_widgets::{
    ChangeDispatcher, LiveViews, NewDonation, TimeRange, WidgetCacheService, WidgetFilters,
    WidgetType,
};

const W: WidgetType = WidgetType::TotalDonations;
const R: TimeRange = TimeRange::ThisMonth;

/// Every node has the global month total in L1; returns it.
async fn cache_everywhere(f: &Fleet) -> i64 {
    let all = WidgetFilters::new();
    let mut totals = Vec::new();
    for node in &f.nodes {
        totals.push(total(&*read(node, W, R, &all).await));
    }
    assert!(totals.windows(2).all(|w| w[0] == w[1]), "{totals:?}");
    totals[0]
}

async fn donate(f: &Fleet, cents: i64) -> i64 {
    f.data
        .record_donation(NewDonation {
            campaign_id: 2,
            employee_id: None,
            donor: "Outbox".into(),
            amount_cents: cents,
            currency: "EUR".into(),
            created_at: Utc::now().timestamp(),
        })
        .await
        .unwrap()
        .id
}

/// The fleet's nodes, each recording its reads in one shared registry, as a process's nodes do.
fn recording(f: &Fleet) -> (LiveViews, Vec<WidgetCacheService>) {
    let live = LiveViews::new();
    let nodes = f
        .nodes
        .iter()
        .cloned()
        .map(|n| n.with_live_views(live.clone()))
        .collect();
    (live, nodes)
}

async fn every_node_shows(f: &Fleet, expected: i64) {
    let all = WidgetFilters::new();
    for (i, node) in f.nodes.iter().enumerate() {
        eventually(DEADLINE, &format!("node {i} shows {expected}"), || async {
            total(&*read(node, W, R, &all).await) == expected
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_without_its_invalidation_is_sent_by_the_next_dispatcher() {
    let f = fleet("outbox-resume").await;
    let was = cache_everywhere(&f).await;
    // The state a cancelled request or a process killed after the commit leaves: the donation and
    // its outbox row are committed, nothing was sent.
    let id = donate(&f, 4_321).await;
    let all = WidgetFilters::new();
    for node in &f.nodes {
        let seen = read_cached(node, (W, R, &all), "before any dispatch").await;
        assert_eq!(total(&seen), was, "nothing invalidated the view yet");
    }
    assert_eq!(f.data.change_backlog().await.unwrap().0, 1);

    // A dispatcher starting (as the next process does) finds and sends it.
    let dispatcher = ChangeDispatcher::start(f.data.clone(), Some(f.invalidation.clone()));
    assert!(dispatcher.wait_dispatched(id, DEADLINE).await, "dispatched");
    every_node_shows(&f, was + 4_321).await;
    // Waiters hear first; the row's mark is committed just after (a synchronous commit of its own).
    eventually(DEADLINE, "the row is marked dispatched", || async {
        f.data.change_backlog().await.unwrap().0 == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_that_meets_redis_away_is_retried_until_it_lands() {
    let f = fleet("outbox-retry").await;
    let was = cache_everywhere(&f).await;
    let dispatcher = ChangeDispatcher::start(f.data.clone(), Some(f.invalidation.clone()));
    // Redis hangs (SIGSTOP) for a while: the first tries time out.
    f.redis.pause(Duration::from_secs(8));
    let id = donate(&f, 1_234).await;
    dispatcher.notify();
    assert!(
        !dispatcher.wait_dispatched(id, Duration::from_secs(2)).await,
        "nothing can be dispatched while Redis hangs"
    );
    assert_eq!(
        f.data.change_backlog().await.unwrap().0,
        1,
        "the change waits in the outbox"
    );
    // Redis comes back: the retries land, on every node.
    assert!(
        dispatcher.wait_dispatched(id, DEADLINE * 2).await,
        "dispatched after Redis came back"
    );
    every_node_shows(&f, was + 1_234).await;
}

/// Refresh, not empty: after a donation, the views readers use show the new figures on every node
/// without any reader loading them, and a view nobody reads through the registry is only invalidated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_refreshes_the_views_in_use_and_only_invalidates_the_others() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let f = fleet("outbox-refresh").await;
    let loads = Arc::new(AtomicUsize::new(0));
    // The fleet's nodes over a store counting its computations: one is a reader's miss. The
    // dispatcher below computes from the fleet's own store, so its refreshes are not counted.
    let counted = {
        let loads = loads.clone();
        f.hooked(
            move || {
                loads.fetch_add(1, Ordering::SeqCst);
            },
            || {},
        )
    };
    let live = LiveViews::new();
    let nodes: Vec<WidgetCacheService> = (0..f.nodes.len())
        .map(|i| {
            f.node_over(i, counted.clone())
                .with_live_views(live.clone())
        })
        .collect();
    let all = WidgetFilters::new();
    let read_counted = |node: &WidgetCacheService| {
        let (node, all) = (node.clone(), all.clone());
        async move { total(&*read(&node, W, R, &all).await) }
    };
    let mut was = 0;
    for node in &nodes {
        was = read_counted(node).await;
    }
    // Campaign 2's own month, read around the registry: cached, but in no one's use.
    let campaign2 = WidgetFilters::new().with("campaign_id", "2").unwrap();
    read(&f.nodes[0], W, R, &campaign2).await;
    assert!(common::is_cached(&f.nodes[1], W, R, &campaign2).await);

    let dispatcher = ChangeDispatcher::start_refreshing(
        f.data.clone(),
        f.invalidation.clone(),
        nodes[0].clone(),
        live.clone(),
    );
    let loads_before = loads.load(Ordering::SeqCst);
    let id = donate(&f, 777).await;
    dispatcher.notify();
    assert!(dispatcher.wait_dispatched(id, DEADLINE).await);
    for (i, node) in nodes.iter().enumerate() {
        eventually(
            DEADLINE,
            &format!("node {i} shows the donation"),
            || async { read_counted(node).await == was + 777 },
        )
        .await;
    }
    assert_eq!(
        loads.load(Ordering::SeqCst),
        loads_before,
        "no reader loaded the view in use: it was refreshed in place"
    );
    common::wait_until_gone(&f.nodes[1], W, R, &campaign2).await;
}

/// Donations faster than refreshes: they fold into the next batches, and once the last is
/// dispatched every node shows all of them (no refresh computed before a later donation outlives
/// it), still without a reader's load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn donations_faster_than_refreshes_fold_together_and_the_last_figures_win() {
    let f = fleet("outbox-burst").await;
    let (live, nodes) = recording(&f);
    let all = WidgetFilters::new();
    let mut was = 0;
    for node in &nodes {
        was = total(&*read(node, W, R, &all).await);
    }
    let dispatcher = ChangeDispatcher::start_refreshing(
        f.data.clone(),
        f.invalidation.clone(),
        nodes[0].clone(),
        live,
    );
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let (data, dispatcher) = (f.data.clone(), dispatcher.clone());
        writers.spawn(async move {
            let id = data
                .record_donation(NewDonation {
                    campaign_id: 1,
                    employee_id: None,
                    donor: "Burst".into(),
                    amount_cents: 100,
                    currency: "EUR".into(),
                    created_at: Utc::now().timestamp(),
                })
                .await
                .unwrap()
                .id;
            dispatcher.notify();
            id
        });
    }
    let ids: Vec<i64> = writers.join_all().await;
    for id in ids {
        assert!(
            dispatcher.wait_dispatched(id, DEADLINE).await,
            "change {id} dispatched"
        );
    }
    for (i, node) in nodes.iter().enumerate() {
        eventually(
            DEADLINE,
            &format!("node {i} shows all 30 donations"),
            || async { total(&*read(node, W, R, &all).await) == was + 3_000 },
        )
        .await;
    }
}

/// Once a batch has refreshed the views in use (or a reader's load kept its answer), the
/// next donation brings them forward with point lookups and no recompute, and every node shows what
/// a recompute shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_donation_brings_the_views_in_use_forward_without_a_recompute() {
    let f = fleet("outbox-catch-up").await;
    let (live, nodes) = recording(&f);
    let org = WidgetFilters::new().with("organization_id", "1").unwrap();
    let views = [
        (WidgetType::TotalDonations, WidgetFilters::new()),
        (WidgetType::TopDonors, WidgetFilters::new()),
        (WidgetType::DonationTrends, WidgetFilters::new()),
        (WidgetType::OrganizationStats, org.clone()),
        (WidgetType::RecentActivities, org),
    ];
    // Loaded by a node outside the registry, which keeps no answer of theirs: the registry's
    // nodes then read them in use from the cache, so the first batch has to recompute them.
    for (w, filters) in &views {
        read(&f.nodes[0], *w, R, filters).await;
    }
    for node in &nodes {
        for (w, filters) in &views {
            read(node, *w, R, filters).await;
        }
    }
    // One more view, loaded by the registry's nodes: its load is computed in a snapshot and kept,
    // so even the first batch brings it forward instead of recomputing it.
    let participation = (
        WidgetType::EmployeeParticipation,
        WidgetFilters::new().with("organization_id", "1").unwrap(),
    );
    for node in &nodes {
        let (w, filters) = participation.clone();
        node.fetch_view(w, R, filters).await.unwrap();
    }
    let computes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let lookups = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = {
        let (computes, lookups) = (computes.clone(), lookups.clone());
        f.hooked(
            move || {
                computes.fetch_add(1, SeqCst);
            },
            move || {
                lookups.fetch_add(1, SeqCst);
            },
        )
    };
    let dispatcher =
        ChangeDispatcher::start_refreshing(counted, f.invalidation.clone(), nodes[0].clone(), live);
    let first = donate(&f, 1_234).await;
    dispatcher.notify();
    assert!(dispatcher.wait_dispatched(first, DEADLINE).await);
    assert_eq!(
        computes.load(SeqCst),
        views.len(),
        "the first batch recomputes each view whose load kept no answer once; the one whose load kept its answer is brought forward"
    );
    let second = donate(&f, 4_321).await;
    dispatcher.notify();
    assert!(dispatcher.wait_dispatched(second, DEADLINE).await);
    assert_eq!(
        computes.load(SeqCst),
        views.len(),
        "the second batch recomputes nothing"
    );
    assert!(
        lookups.load(SeqCst) > 0,
        "donor lookups for top donors and distinct donors"
    );
    for (i, node) in nodes.iter().enumerate() {
        for (w, filters) in views.iter().chain([&participation]) {
            let recomputed = f
                .data
                .compute(*w, R, filters.clone(), Utc::now())
                .await
                .unwrap();
            let held = common::cached(node, *w, R, filters).await;
            assert_eq!(
                held.as_deref(),
                Some(&recomputed),
                "node {i}: {w} {filters:?}"
            );
        }
    }
}

/// A view in use outlives its cache lifetime without a reader loading it: the dispatcher stores it
/// again, brought to the last change, before it ends (a `today` view lives 21 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_in_use_is_stored_again_before_it_expires() {
    let f = common::fleet_with(
        "outbox-keep-warm",
        common::Setup {
            configure: |c| c.ttl_tiers.realtime = Duration::from_secs(21),
            ..common::Setup::default()
        },
    )
    .await;
    let (live, nodes) = recording(&f);
    let today = TimeRange::Today;
    let all = WidgetFilters::new();
    let loaded = tokio::time::Instant::now();
    for node in &nodes {
        node.fetch_view(W, today, all.clone()).await.unwrap();
    }
    let loads_before: u64 = nodes.iter().map(|n| n.cache().stats().loads).sum();
    let _dispatcher = ChangeDispatcher::start_refreshing(
        f.data.clone(),
        f.invalidation.clone(),
        nodes[0].clone(),
        live,
    );
    eventually(
        Duration::from_secs(60),
        "the view is still cached 25 s after its 21 s load",
        || async {
            let mut everywhere = true;
            for node in &nodes {
                everywhere &= common::cached(node, W, today, &all).await.is_some();
            }
            everywhere && loaded.elapsed() > Duration::from_secs(25)
        },
    )
    .await;
    let loads_after: u64 = nodes.iter().map(|n| n.cache().stats().loads).sum();
    assert_eq!(loads_after, loads_before, "no reader loaded it again");
}
