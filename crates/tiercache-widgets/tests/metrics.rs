//! The metrics service against a real Redis: INFO figures, snapshots stored and read back.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tiercache::Cache;
use tiercache_testkit::RedisServer;
use tiercache_widgets::{
    evaluate_alerts, health_score, AlertKind, Thresholds, WidgetCacheMetricsService, WidgetType,
};

#[tokio::test]
async fn snapshots_carry_redis_memory_and_are_kept_newest_first() {
    let redis =
        RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"])
            .unwrap();
    let cache = Cache::builder()
        .redis_url(&redis.url())
        .namespace("m")
        .build()
        .await
        .unwrap();
    let metrics = WidgetCacheMetricsService::with_redis(&redis.url(), "m")
        .await
        .unwrap();
    for _ in 0..9 {
        metrics.record(WidgetType::TopDonors, true, Duration::from_millis(2), false);
    }
    metrics.record(
        WidgetType::TopDonors,
        false,
        Duration::from_millis(40),
        false,
    );

    let first = metrics.snapshot(&cache).await;
    assert_eq!(first.requests, 10);
    assert!((first.hit_rate - 0.9).abs() < 1e-9);
    let redis_figures = first.redis.clone().expect("INFO was read");
    assert_eq!(redis_figures.maxmemory, 2 * 1024 * 1024);
    assert!(redis_figures.used_memory > 0);
    assert_eq!(first.widgets["top_donors"].misses, 1);
    metrics.record_snapshot(&first).await.unwrap();

    metrics.record(
        WidgetType::TopDonors,
        false,
        Duration::from_millis(40),
        true,
    );
    let second = metrics.snapshot(&cache).await;
    metrics.record_snapshot(&second).await.unwrap();
    let history = metrics.history(10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].requests, 11, "newest first");
    assert_eq!(history[1], first);

    let alerts = evaluate_alerts(&second, &Thresholds::default());
    assert!(
        alerts.iter().any(|a| a.kind == AlertKind::Errors),
        "{alerts:?}"
    );
    assert!(health_score(&second, &cache.config().targets) < 100);
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

#[tokio::test]
async fn the_status_document_has_its_documented_fields() {
    let redis =
        RedisServer::start_with(&["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"])
            .unwrap();
    let cache = Cache::builder()
        .redis_url(&redis.url())
        .namespace("status")
        .build()
        .await
        .unwrap();
    let metrics = WidgetCacheMetricsService::with_redis(&redis.url(), "status")
        .await
        .unwrap();
    metrics.record(WidgetType::TopDonors, true, Duration::from_millis(2), false);
    metrics.record(
        WidgetType::TopDonors,
        false,
        Duration::from_millis(30),
        true,
    );

    let targets = cache.config().targets;
    let status = metrics
        .status(&cache, &targets, &Thresholds::from_targets(&targets))
        .await;
    let json = serde_json::to_value(&status).unwrap();

    assert_eq!(
        keys(&json),
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
            "widgets"
        ]
    );
    assert_eq!(keys(&json["health"]), ["level", "score"]);
    let request_fields = [
        "errors",
        "hit_rate",
        "hits",
        "max_response_ms",
        "mean_response_ms",
        "misses",
        "requests",
    ];
    let with_error_rate: Vec<&str> = {
        let mut v = request_fields.to_vec();
        v.push("error_rate");
        v.sort_unstable();
        v
    };
    assert_eq!(keys(&json["requests"]), with_error_rate);
    assert_eq!(keys(&json["widgets"]["top_donors"]), with_error_rate);
    assert_eq!(
        keys(&json["widgets"]).len(),
        WidgetType::ALL.len(),
        "every widget type is listed"
    );
    assert_eq!(keys(&json["locks"]), ["acquired", "failed", "failure_rate"]);
    assert_eq!(keys(&json["invalidations"]), ["received", "sent"]);
    assert_eq!(
        keys(&json["coherence"]),
        [
            "gaps_detected",
            "l1_drops",
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

    assert_eq!(json["namespace"], "status");
    assert_eq!(json["node_id"].as_str().unwrap().len(), 16);
    assert_eq!(json["requests"]["requests"], 2);
    assert_eq!(json["widgets"]["top_donors"]["errors"], 1);
    assert_eq!(json["redis"]["maxmemory"], 4 * 1024 * 1024);
    assert_eq!(json["alerts"][0]["kind"], "errors", "50 % errors alert");
    assert_eq!(json["alerts"][0]["severity"], "critical");
    assert_eq!(json["health"]["level"], "critical");
    let back: tiercache_widgets::CacheStatus = serde_json::from_value(json).unwrap();
    assert_eq!(back, status, "the document reads back");
}
