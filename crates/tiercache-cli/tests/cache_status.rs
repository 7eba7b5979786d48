//! `tiercache cache-status`: the figures the service nodes store, judged; its JSON and exit codes.
#![allow(clippy::unwrap_used)]

mod common;

use common::{report, stop_node, Fixture, Reads, DEADLINE};
use serde_json::Value;
use tiercache_widgets::{CacheStatus, FleetStatus, WidgetType};

fn healthy(widget: WidgetType) -> Reads {
    Reads {
        widget,
        hits: 150,
        misses: 2,
        errors: 0,
    }
}

#[tokio::test]
async fn one_healthy_node_prints_its_status_document_and_exits_0() {
    let f = Fixture::redis_only();
    let node = f.node("one").await;
    report(
        &node,
        &[
            healthy(WidgetType::TotalDonations),
            healthy(WidgetType::TopDonors),
        ],
    )
    .await;
    let id = format!("{:016x}", node.admin().node_id());

    let run = f.run("one", &["cache-status", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    // The document the demo's GET /api/status prints, field for field.
    let status: CacheStatus = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (status.namespace.as_str(), status.node_id.as_str()),
        ("one", id.as_str())
    );
    let raw: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(raw["health"]["level"], "healthy");
    assert_eq!(raw["health"]["window"], "last_1m");
    assert_eq!(
        raw["widgets"].as_object().unwrap().len(),
        7,
        "every type is listed"
    );
    assert_eq!(raw["widgets"]["top_donors"]["l1_hits"], 150);
    assert_eq!(raw["requests"]["requests"], 304);
    assert!(
        raw["redis"]["used_memory"].as_u64().unwrap() > 0,
        "Redis is read now"
    );
    for field in [
        "taken_at",
        "alerts",
        "total_seconds",
        "locks",
        "windows",
        "invalidations",
        "coherence",
    ] {
        assert!(raw.get(field).is_some(), "{field} missing");
    }

    let human = f.run("one", &["cache-status"]);
    assert_eq!(human.code, 0, "{human:?}");
    for expected in [
        id.as_str(),
        "healthy",
        "top_donors",
        "hit rate",
        "locks:",
        "invalidations:",
        "redis ",
        "alerts: none",
    ] {
        assert!(human.stdout.contains(expected), "{expected:?} in {human:?}");
    }
    let only = f.run("one", &["cache-status", "--widget", "top_donors"]);
    assert!(
        only.stdout.contains("top_donors") && !only.stdout.contains("total_donations"),
        "{only:?}"
    );

    let detailed = f.run("one", &["cache-status", "--detailed"]);
    for expected in [
        "last 1m",
        "last 5m",
        "last 15m",
        "total (",
        "coherence:",
        "ops/s",
    ] {
        assert!(
            detailed.stdout.contains(expected),
            "{expected:?} in {detailed:?}"
        );
    }
    let alerts = f.run("one", &["cache-status", "--alerts"]);
    assert_eq!(
        (alerts.code, alerts.stdout.as_str()),
        (0, "alerts: none\n"),
        "{alerts:?}"
    );
    let quiet = f.run("one", &["cache-status", "-q"]);
    assert_eq!((quiet.code, quiet.stdout.as_str()), (0, ""), "{quiet:?}");
    // The namespace comes from TIERCACHE_NAMESPACE too, as the services read it.
    let url = f.redis.url();
    let from_env = common::tiercache(
        &["--redis-url", &url, "cache-status", "--json"],
        &[("TIERCACHE_NAMESPACE", "one")],
    );
    assert_eq!(from_env.code, 0, "{from_env:?}");
    assert!(from_env.stdout.contains(&id), "{from_env:?}");
}

#[tokio::test]
async fn several_nodes_print_a_fleet_and_the_worst_level_sets_the_exit_code() {
    let f = Fixture::redis_only();
    let good = f.node("fleet").await;
    let slow = f.node("fleet").await;
    report(&good, &[healthy(WidgetType::TotalDonations)]).await;
    // 80 % hits over 100 reads: below the 90 % minimum, above 70 %: a warning.
    report(
        &slow,
        &[Reads {
            widget: WidgetType::DonationTrends,
            hits: 80,
            misses: 20,
            errors: 0,
        }],
    )
    .await;
    let run = f.run("fleet", &["cache-status", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let fleet: FleetStatus = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(fleet.nodes.len(), 2);
    assert_eq!(fleet.fleet.node_id, "fleet");
    assert_eq!(fleet.fleet.requests.requests, 252, "the nodes' reads added");
    let raw: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(raw["level"], "warning");
    let slow_id = format!("{:016x}", slow.admin().node_id());
    let slow_status = fleet.nodes.iter().find(|n| n.node_id == slow_id).unwrap();
    assert!(slow_status
        .alerts
        .iter()
        .any(|a| a.message.contains("hit rate")));

    let alerts = f.run("fleet", &["cache-status", "--alerts"]);
    assert_eq!(alerts.code, 1, "{alerts:?}");
    assert!(
        alerts.stdout.contains(&format!("node {}", &slow_id[..8])),
        "{alerts:?}"
    );

    // Errors are critical; the newest snapshot of each node is the one judged.
    report(
        &good,
        &[Reads {
            widget: WidgetType::TotalDonations,
            hits: 100,
            misses: 0,
            errors: 10,
        }],
    )
    .await;
    let run = f.run("fleet", &["cache-status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains("critical") && run.stdout.contains("error rate"),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_stopped_node_is_left_out_and_no_reporting_node_is_unknown() {
    let f = Fixture::redis_only();
    let none = f.run("quiet-ns", &["cache-status"]);
    assert_eq!(none.code, 3, "{none:?}");
    assert!(none.stderr.contains("no running node"), "{none:?}");

    let stays = f.node("stop").await;
    let goes = f.node("stop").await;
    report(&stays, &[healthy(WidgetType::TopDonors)]).await;
    report(&goes, &[healthy(WidgetType::TopDonors)]).await;
    assert_eq!(
        serde_json::from_str::<FleetStatus>(&f.run("stop", &["cache-status", "--json"]).stdout)
            .unwrap()
            .nodes
            .len(),
        2
    );
    stop_node(&stays, goes, DEADLINE).await;
    let run = f.run("stop", &["cache-status", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let one: CacheStatus = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(one.node_id, format!("{:016x}", stays.admin().node_id()));
    let human = f.run("stop", &["cache-status"]);
    assert!(
        human.stdout.contains("1 stopped node(s) left out"),
        "{human:?}"
    );
}

#[tokio::test]
async fn a_node_whose_newest_snapshot_lies_deep_in_the_history_is_still_found() {
    let f = Fixture::redis_only();
    let quiet = f.node("deep").await;
    let busy = f.node("deep").await;
    report(&quiet, &[healthy(WidgetType::TopDonors)]).await;
    // More snapshots of the busy node than the first read takes: the quiet node's lies beyond them.
    let metrics = report(&busy, &[healthy(WidgetType::TotalDonations)]).await;
    for _ in 0..80 {
        let snapshot = metrics.snapshot(&busy).await;
        metrics.record_snapshot(&snapshot).await.unwrap();
    }
    let run = f.run("deep", &["cache-status", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let fleet: FleetStatus = serde_json::from_str(&run.stdout).unwrap();
    let quiet_id = format!("{:016x}", quiet.admin().node_id());
    assert!(fleet.nodes.iter().any(|n| n.node_id == quiet_id), "{run:?}");
}

/// The document `--json` prints when there is no level: parsed, `level` unknown, with its cause and
/// a reason; returned for the caller's own checks.
fn unknown_document(run: &common::Run, cause: &str) -> Value {
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {run:?}"));
    assert_eq!(doc["level"], "unknown", "{run:?}");
    assert_eq!(doc["cause"], cause, "{run:?}");
    assert!(
        doc["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{run:?}"
    );
    assert!(doc["taken_at"].as_i64().unwrap() > 0, "{run:?}");
    doc
}

#[tokio::test]
async fn json_with_no_reporting_node_is_an_unknown_document_and_still_exit_3() {
    let f = Fixture::redis_only();
    // A node that runs but stores no snapshot, like the CLI itself: still nothing to judge.
    let _silent = f.node("unreported").await;
    let run = f.run("unreported", &["cache-status", "--json"]);
    assert_eq!(run.code, 3, "{run:?}");
    let doc = unknown_document(&run, "no_snapshot");
    assert_eq!(doc["namespace"], "unreported");
    assert!(
        doc["reason"].as_str().unwrap().contains("no running node"),
        "{run:?}"
    );
    assert!(run.stderr.contains("no running node"), "{run:?}");
    // --quiet silences stderr, not the document.
    let quiet = f.run("unreported", &["cache-status", "--json", "-q"]);
    assert_eq!(quiet.code, 3, "{quiet:?}");
    unknown_document(&quiet, "no_snapshot");
    assert_eq!(quiet.stderr, "", "{quiet:?}");
    // Without --json stdout stays empty, as before.
    let human = f.run("unreported", &["cache-status"]);
    assert_eq!((human.code, human.stdout.as_str()), (3, ""), "{human:?}");
}

#[tokio::test]
async fn json_with_redis_gone_is_an_unknown_document_and_still_exit_3() {
    let mut f = Fixture::redis_only();
    let node = f.node("gone").await;
    report(&node, &[healthy(WidgetType::TopDonors)]).await;
    assert_eq!(f.run("gone", &["cache-status", "--json"]).code, 0);
    drop(node);
    f.redis.kill();
    let run = f.run("gone", &["cache-status", "--json"]);
    assert_eq!(run.code, 3, "{run:?}");
    let doc = unknown_document(&run, "redis_unreachable");
    let reason = doc["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "unreachable at redis://127.0.0.1:{}",
            f.redis.port()
        )),
        "the reason names the URL: {run:?}"
    );
    // stderr says what it said before.
    assert!(run.stderr.contains(reason), "{run:?}");
    assert!(run.stderr.contains("(exit 3:"), "{run:?}");
}

#[test]
fn json_with_bad_input_is_an_unknown_document_and_still_exit_64() {
    let run = common::tiercache(
        &[
            "--redis-url",
            "redis://127.0.0.1:99999",
            "cache-status",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 64, "{run:?}");
    let doc = unknown_document(&run, "bad_input");
    assert!(doc["reason"].as_str().unwrap().contains("99999"), "{run:?}");
}
