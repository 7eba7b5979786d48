//! The metrics service against a real Redis: tiers, windows, lock figures, the schedule, the stored
//! history and the status document.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{empty_data, fleet, read, Gate, DEADLINE};
use tiercache::{Cache, Source};
use tiercache_testkit::{eventually, RedisServer};
use tiercache_widgets::{
    evaluate_alerts, health_score, AlertKind, ManualClock, MetricsSnapshot, ServiceTargets,
    Thresholds, TimeRange, WidgetCacheMetricsService, WidgetCacheService, WidgetFilters,
    WidgetType, SNAPSHOTS_KEPT, SNAPSHOT_RECORDS,
};

async fn cache_on(redis: &RedisServer, namespace: &str) -> Cache {
    Cache::builder()
        .redis_url(&redis.url())
        .namespace(namespace)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn snapshots_carry_redis_memory_and_are_kept_newest_first() {
    let redis =
        RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"])
            .unwrap();
    let cache = cache_on(&redis, "m").await;
    let metrics = WidgetCacheMetricsService::for_cache(&cache);
    for _ in 0..9 {
        metrics.record(
            WidgetType::TopDonors,
            Some(Source::L1),
            Duration::from_millis(2),
        );
    }
    metrics.record(
        WidgetType::TopDonors,
        Some(Source::Loaded),
        Duration::from_millis(40),
    );

    let first = metrics.snapshot(&cache).await;
    assert_eq!(first.total.requests.requests, 10);
    assert!((first.total.requests.hit_rate - 0.9).abs() < 1e-9);
    assert_eq!(
        first.last_1m.requests.requests, 10,
        "a young service: since start"
    );
    let redis_figures = first.redis.clone().expect("INFO was read");
    assert_eq!(redis_figures.maxmemory, 2 * 1024 * 1024);
    assert!(redis_figures.used_memory > 0);
    assert_eq!(first.total.widgets["top_donors"].misses, 1);
    metrics.record_snapshot(&first).await.unwrap();

    metrics.record(WidgetType::TopDonors, None, Duration::from_millis(40));
    let second = metrics.snapshot(&cache).await;
    metrics.record_snapshot(&second).await.unwrap();
    let history = metrics.history(10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].total.requests.requests, 11, "newest first");
    assert_eq!(history[1], first);

    let alerts = evaluate_alerts(&second, &Thresholds::default());
    assert!(
        alerts.iter().any(|a| a.kind == AlertKind::Errors),
        "{alerts:?}"
    );
    assert!(health_score(&second, &ServiceTargets::default()) < 100);
}

#[tokio::test]
async fn health_and_alerts_see_a_bad_minute_and_forget_a_bad_hour() {
    let redis = RedisServer::start().unwrap();
    let cache = cache_on(&redis, "windows").await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap());
    let metrics = WidgetCacheMetricsService::in_memory().with_clock(clock.clone());
    let targets = ServiceTargets::default();
    let t = Thresholds::from_targets(&targets);
    let (w, ms) = (WidgetType::TotalDonations, Duration::from_millis(5));
    let judge = |s: &MetricsSnapshot| {
        (
            health_score(s, &targets),
            evaluate_alerts(s, &t)
                .into_iter()
                .map(|a| a.kind)
                .collect::<Vec<_>>(),
        )
    };

    // A bad hour: every read fails. Sampled at the end of each minute, as a schedule would.
    for _ in 0..60 {
        for _ in 0..100 {
            metrics.record(w, None, ms);
        }
        clock.advance(chrono::Duration::minutes(1));
        metrics.sample(&cache);
    }
    let bad = metrics.snapshot(&cache).await;
    assert_eq!(judge(&bad).1, [AlertKind::Errors], "the bad hour is seen");

    // Then two good minutes: the last minute is clean, whatever the hour before.
    for _ in 0..2 {
        for _ in 0..100 {
            metrics.record(w, Some(Source::L1), ms);
        }
        clock.advance(chrono::Duration::minutes(1));
        metrics.sample(&cache);
    }
    let recovered = metrics.snapshot(&cache).await;
    assert_eq!(judge(&recovered), (100, vec![]), "recovered a minute after");
    assert!(
        recovered.total.requests.error_rate > 0.9,
        "the totals still show the hour"
    );
    assert!((recovered.last_1m.seconds - 60.0).abs() < 1.0);
    assert_eq!(
        recovered.last_5m.requests.errors, 300,
        "5 minutes: three bad ones"
    );

    // Fourteen good minutes, then one bad one: the minute is seen, though 15 minutes look fine.
    for minute in 0..15 {
        for _ in 0..100 {
            if minute == 14 {
                metrics.record(w, None, ms);
            } else {
                metrics.record(w, Some(Source::L2), ms);
            }
        }
        clock.advance(chrono::Duration::minutes(1));
        metrics.sample(&cache);
    }
    let bad_minute = metrics.snapshot(&cache).await;
    let (score, alerts) = judge(&bad_minute);
    assert_eq!(alerts, [AlertKind::Errors], "a bad minute is seen");
    assert!(score <= 80, "{score}");
    assert!(bad_minute.last_15m.requests.error_rate < 0.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_counted_by_the_tier_that_answered() {
    let f = fleet("metrics-tiers").await;
    let (w, r, all) = (
        WidgetType::TopDonors,
        TimeRange::ThisYear,
        WidgetFilters::new(),
    );
    read(&f.nodes[0], w, r, &all).await; // loaded
    read(&f.nodes[0], w, r, &all).await; // L1
    read(&f.nodes[1], w, r, &all).await; // L2
    let first = f.nodes[0].metrics().snapshot(f.nodes[0].cache()).await;
    let second = f.nodes[1].metrics().snapshot(f.nodes[1].cache()).await;
    let (loader, reader) = (
        &first.total.widgets["top_donors"],
        &second.total.widgets["top_donors"],
    );
    assert_eq!(
        (loader.misses, loader.l1_hits, loader.l2_hits),
        (1, 1, 0),
        "{loader:?}"
    );
    assert_eq!(
        (reader.misses, reader.l1_hits, reader.l2_hits),
        (0, 0, 1),
        "{reader:?}"
    );
    assert!((loader.l1_hit_rate - 0.5).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_another_nodes_load_is_not_a_lock_failure() {
    let f = fleet("metrics-locks").await;
    let (w, r, all) = (
        WidgetType::TotalDonations,
        TimeRange::ThisYear,
        WidgetFilters::new(),
    );
    // Node 0's query waits for the gate.
    let gate = Gate::default();
    let gated = f.gated(&gate);
    let loading = {
        let (node, all) = (f.node_over(0, gated), all.clone());
        tokio::spawn(async move { node.fetch_view(w, r, all).await })
    };
    let node0 = f.nodes[0].clone();
    eventually(DEADLINE, "node 0 holds the lease", || async {
        node0.cache().stats().lock_acquired == 1
    })
    .await;
    let mut waiting = Vec::new();
    for node in &f.nodes[1..] {
        let (node, all) = (node.clone(), all.clone());
        waiting.push(tokio::spawn(async move { read(&node, w, r, &all).await }));
    }
    for node in &f.nodes[1..] {
        eventually(DEADLINE, "the other nodes wait for node 0", || async {
            node.cache().stats().fleet_waits == 1
        })
        .await;
    }
    gate.open();
    let loaded = loading.await.unwrap().unwrap().value;
    for wait in waiting {
        assert_eq!(wait.await.unwrap(), loaded);
    }
    for (i, node) in f.nodes.iter().enumerate() {
        let snapshot = node.metrics().snapshot(node.cache()).await;
        let locks = &snapshot.last_1m.locks;
        assert_eq!(locks.failed, 0, "node {i}: {locks:?}");
        assert_eq!(locks.contended, u64::from(i > 0), "node {i}: {locks:?}");
        let alerts = evaluate_alerts(&snapshot, &Thresholds::default());
        assert!(
            alerts.iter().all(|a| a.kind != AlertKind::LockFailures),
            "node {i}: {alerts:?}"
        );
    }
}

#[tokio::test]
async fn history_skips_and_counts_items_that_are_not_snapshots() {
    let redis = RedisServer::start().unwrap();
    let cache = cache_on(&redis, "h").await;
    let metrics = WidgetCacheMetricsService::for_cache(&cache);
    let good = metrics.snapshot(&cache).await;
    metrics.record_snapshot(&good).await.unwrap();
    // Items another program (or an older format) left in the list, planted through the core.
    for item in [
        &b"\xff\xfe not utf-8"[..],
        &br#"{"taken_at": "yesterday"}"#[..],
    ] {
        cache
            .admin()
            .push_record(SNAPSHOT_RECORDS, item, SNAPSHOTS_KEPT)
            .await
            .unwrap();
    }
    metrics.record_snapshot(&good).await.unwrap();

    let history = metrics.history_with_skipped(10).await.unwrap();
    assert_eq!(history.snapshots, [good.clone(), good]);
    assert_eq!(history.skipped, 2);
    assert_eq!(metrics.history(10).await.unwrap().len(), 2);
    assert_eq!(
        metrics.history_skipped(),
        4,
        "both reads counted what they skipped"
    );
}

#[tokio::test]
async fn the_service_records_snapshots_on_its_schedule_and_stops_when_dropped() {
    let redis = RedisServer::start().unwrap();
    let cache = cache_on(&redis, "schedule").await;
    let metrics = WidgetCacheMetricsService::for_cache(&cache);
    let (_dir, data) = empty_data("schedule");
    let service = WidgetCacheService::new(cache, data, metrics.clone())
        .with_snapshots(Duration::from_millis(100));
    let clone = service.clone();
    eventually(DEADLINE, "three snapshots recorded", || async {
        metrics.history(10).await.unwrap().len() >= 3
    })
    .await;
    drop(service);
    let pubsub_clients = || redis.clients("pubsub").unwrap();
    assert_eq!(
        pubsub_clients(),
        1,
        "a clone keeps the node and its schedule"
    );
    // The metrics hold the node too (they reach Redis through it).
    drop(metrics);
    assert_eq!(pubsub_clients(), 1, "the clone still runs");
    drop(clone);
    // The schedule held a clone of the cache: only once it stops can the node close its subscriber.
    eventually(DEADLINE, "the node (and its schedule) stopped", || async {
        pubsub_clients() == 0
    })
    .await;
}

/// The keys of a JSON object, sorted.
fn keys(v: &serde_json::Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// Every field of the status document, by name.
fn assert_field_names(json: &serde_json::Value) {
    assert_eq!(
        keys(json),
        [
            "alerts",
            "coherence",
            "health",
            "invalidations",
            "locks",
            "namespace",
            "node_id",
            "redis",
            "requests",
            "taken_at",
            "total_seconds",
            "widgets",
            "windows"
        ]
    );
    assert_eq!(keys(&json["health"]), ["level", "score", "window"]);
    let request_fields = [
        "error_rate",
        "errors",
        "hit_rate",
        "hits",
        "l1_hit_rate",
        "l1_hits",
        "l2_hits",
        "max_response_ms",
        "mean_response_ms",
        "misses",
        "requests",
        "stale_hits",
    ];
    assert_eq!(keys(&json["requests"]), request_fields);
    assert_eq!(keys(&json["widgets"]["top_donors"]), request_fields);
    assert_eq!(
        keys(&json["widgets"]).len(),
        WidgetType::ALL.len(),
        "every widget type is listed"
    );
    let lock_fields = ["acquired", "contended", "failed", "failure_rate"];
    assert_eq!(keys(&json["locks"]), lock_fields);
    assert_eq!(keys(&json["windows"]), ["last_15m", "last_1m", "last_5m"]);
    for window in ["last_1m", "last_5m", "last_15m"] {
        let w = &json["windows"][window];
        assert_eq!(
            keys(w),
            ["locks", "requests", "seconds", "widgets"],
            "{window}"
        );
        assert_eq!(keys(&w["requests"]), request_fields);
        assert_eq!(keys(&w["locks"]), lock_fields);
    }
    assert_eq!(keys(&json["invalidations"]), ["received", "sent"]);
    assert_eq!(
        keys(&json["coherence"]),
        [
            "gaps_detected",
            "l1_drops",
            "pending_invalidations",
            "redis_unavailable",
            "replays",
            "suspect"
        ]
    );
    assert_eq!(
        keys(&json["redis"]),
        [
            "evicted_keys",
            "keyspace_hits",
            "keyspace_misses",
            "maxmemory",
            "used_memory"
        ]
    );
    assert_eq!(keys(&json["alerts"][0]), ["kind", "message", "severity"]);
}

#[tokio::test]
async fn the_status_document_has_its_documented_fields() {
    let redis =
        RedisServer::start_with(&["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"])
            .unwrap();
    let cache = cache_on(&redis, "status").await;
    let metrics = WidgetCacheMetricsService::for_cache(&cache);
    metrics.record(
        WidgetType::TopDonors,
        Some(Source::L1),
        Duration::from_millis(2),
    );
    metrics.record(WidgetType::TopDonors, None, Duration::from_millis(30));

    let targets = ServiceTargets::default();
    let status = metrics
        .status(&cache, &targets, &Thresholds::from_targets(&targets))
        .await;
    let json = serde_json::to_value(&status).unwrap();
    assert_field_names(&json);

    assert_eq!(json["namespace"], "status");
    assert_eq!(json["node_id"].as_str().unwrap().len(), 16);
    assert_eq!(json["requests"]["requests"], 2);
    assert_eq!(json["requests"]["l1_hits"], 1);
    assert_eq!(json["widgets"]["top_donors"]["errors"], 1);
    assert_eq!(json["windows"]["last_1m"]["requests"]["errors"], 1);
    assert_eq!(json["redis"]["maxmemory"], 4 * 1024 * 1024);
    assert_eq!(json["alerts"][0]["kind"], "errors", "50 % errors alert");
    assert_eq!(json["alerts"][0]["severity"], "critical");
    assert_eq!(json["health"]["level"], "critical");
    assert_eq!(json["health"]["window"], "last_1m");
    let back: tiercache_widgets::CacheStatus = serde_json::from_value(json).unwrap();
    assert_eq!(back, status, "the document reads back");
}
