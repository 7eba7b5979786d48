//! `GET /metrics` describes what it exports: every metric family has a `# HELP` line naming its
//! unit, `tiercache_build_info` says which tiercache runs, and each histogram is bucketed in its own
//! unit (the bus batch size in events, not seconds).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{client, donate, total, Demo, RedisServer, DEADLINE};

/// The Prometheus text of `url`.
async fn scrape(http: &reqwest::Client, url: &str) -> String {
    let response = http.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

/// The family a sample line belongs to: its name, less a histogram's or summary's suffix when the
/// family is declared under the shorter name.
fn family<'a>(sample: &'a str, declared: &BTreeMap<&str, &str>) -> &'a str {
    let name = sample.split(['{', ' ']).next().unwrap();
    if declared.contains_key(name) {
        return name;
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .filter(|short| declared.contains_key(short))
        .unwrap_or(name)
}

/// The `le` bounds of `name`'s buckets (one series of it), in order.
fn bucket_bounds(text: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}_bucket{{");
    let first_series = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .map(|l| l.split(",le=").next().unwrap().to_owned())
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(&first_series) && l.contains("le=\""))
        .map(|l| {
            l.split("le=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Redis memory, for the deploy kit's alert: what `INFO` said, and a limit (0 when none is set).
fn assert_redis_memory_gauges(text: &str) {
    let gauge = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(gauge("widget_redis_used_memory_bytes") > 0.0);
    assert!(gauge("widget_redis_maxmemory_bytes") >= 0.0);
}

/// The state gauges are there for each of the demo's two nodes, told apart by their `node` label,
/// and the breaker is closed while Redis answers.
fn assert_state_gauges_per_node(text: &str) {
    for node in ["node-0", "node-1"] {
        for gauge in [
            "tiercache_l1_entries",
            "tiercache_l1_bytes",
            "tiercache_pending_invalidations",
            "tiercache_suspect",
            "tiercache_breaker_open",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{gauge}{{"))
                    && l.contains(&format!("node=\"{node}\""))),
                "no {gauge} series for {node}"
            );
        }
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("tiercache_breaker_open{") && l.ends_with(" 0")),
        "Redis answers, so the breaker is closed"
    );
}

/// Each histogram has buckets in its own unit: the batch size counts events, latencies are seconds.
fn assert_histograms_are_bucketed_in_their_units(text: &str) {
    // The batch size counts events: powers of two, not the seconds of the latency histograms.
    let counts: Vec<String> = [
        "1", "2", "4", "8", "16", "32", "64", "128", "256", "512", "1024", "2048", "4096", "+Inf",
    ]
    .map(str::to_owned)
    .to_vec();
    assert_eq!(bucket_bounds(text, "tiercache_bus_batch_size"), counts);
    let latency = bucket_bounds(text, "tiercache_l2_read_duration_seconds");
    assert_eq!(
        (
            latency.first().map(String::as_str),
            latency.last().map(String::as_str)
        ),
        (Some("0.00005"), Some("+Inf")),
        "{latency:?}"
    );
}

#[tokio::test]
async fn every_metric_has_help_with_its_unit_build_info_and_buckets_in_its_unit() {
    let redis = RedisServer::start().unwrap();
    // Snapshots each second, so the Redis memory gauges they set show up soon.
    let args = [
        "--nodes",
        "2",
        "--redis-url",
        &redis.url(),
        "--snapshot-interval",
        "1s",
    ];
    let demo = Demo::start("metrics", &args);
    let http = client();
    let (a, b) = (&demo.urls[0], &demo.urls[1]);
    // A read on each node and a donation: loads, L2 reads, a bus message and its propagation.
    let _ = total(&http, a, "").await;
    let _ = total(&http, b, "").await;
    donate(&http, a, r#"{"campaign_id": 3, "amount": 5}"#).await;
    // Polled: counters reach the recorder when scraped, the bus message when the sender sends it.
    let started = Instant::now();
    let text = loop {
        let text = scrape(&http, a).await;
        if text.contains("tiercache_bus_batch_size_bucket")
            && text.contains("widget_redis_used_memory_bytes ")
        {
            break text;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no bus batch size or Redis memory in /metrics after {DEADLINE:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    assert_redis_memory_gauges(&text);

    // Every family is declared by TYPE and described by HELP, the HELP ending with its unit.
    let mut declared: BTreeMap<&str, &str> = BTreeMap::new();
    let mut helped: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            declared.insert(name, kind);
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            helped.insert(name, help);
        }
    }
    let families: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| family(l, &declared))
        .collect();
    for name in &families {
        let help = helped
            .get(name)
            .unwrap_or_else(|| panic!("{name} has no # HELP line:\n{text}"));
        let unit = if declared[name] == "counter" || name.ends_with("_info") {
            "count"
        } else if name.ends_with("_seconds") {
            "seconds"
        } else if name.ends_with("_bytes") {
            "bytes"
        } else {
            "count"
        };
        assert!(
            help.ends_with(&format!(" Unit: {unit}.")),
            "{name}'s help does not end with its unit ({unit}): {help}"
        );
        assert_ne!(
            declared[name], "summary",
            "{name} has no buckets of its own, so it fell back to a summary"
        );
    }
    // Every counter of the core is registered with each node, so each is there.
    for name in tiercache::COUNTER_NAMES {
        assert!(families.contains(name), "{name} missing from /metrics");
    }
    for name in [
        "tiercache_load_duration_seconds",
        "tiercache_l2_read_duration_seconds",
        "widget_cache_requests_total",
        "widget_cache_response_seconds",
        "http_requests_total",
        "http_request_duration_seconds",
    ] {
        assert!(families.contains(name), "{name} missing from /metrics");
    }

    let build_info: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tiercache_build_info{"))
        .collect();
    assert_eq!(build_info.len(), 1, "{text}");
    let expected_version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        build_info[0].contains(&expected_version) && build_info[0].ends_with(" 1"),
        "{build_info:?}"
    );
    assert_eq!(declared["tiercache_build_info"], "gauge");

    assert_state_gauges_per_node(&text);

    assert_histograms_are_bucketed_in_their_units(&text);
}
