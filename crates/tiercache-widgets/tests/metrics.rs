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
