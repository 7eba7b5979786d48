//! The deploy kit (`deploy/`) holds to what the service really is: every metric the Grafana
//! dashboard and the Prometheus rules query is one the core or the widget layer declares, the Redis
//! configuration starts a server that runs with what the file says, and the systemd unit's command
//! line is one the demo accepts.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;
use tiercache::CacheStats;
use tiercache_demo::Settings;
use tiercache_testkit::RedisServer;
use tiercache_widgets::WidgetCacheMetricsService;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

fn read(file: &str) -> String {
    let path = deploy(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metrics the service declares, read from the tables docs/OPERATIONS.md is rendered from, so
/// the kit is held to the declarations rather than to a list of its own.
struct Declared {
    names: BTreeSet<String>,
    histograms: BTreeSet<String>,
}

impl Declared {
    fn load() -> Declared {
        let mut declared = Declared {
            names: BTreeSet::new(),
            histograms: BTreeSet::new(),
        };
        let tables =
            CacheStats::metrics_markdown() + &WidgetCacheMetricsService::metrics_markdown();
        for line in tables.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // A row is `| `name` | kind or field | ...`; the header and rule rows have no backticks.
            let Some(name) = cells
                .get(1)
                .and_then(|c| c.strip_prefix('`')?.strip_suffix('`'))
            else {
                continue;
            };
            if cells.get(2) == Some(&"histogram") {
                declared.histograms.insert(name.to_owned());
            }
            declared.names.insert(name.to_owned());
        }
        // The parse must have found the core's declarations, or every name would look undeclared
        // for the wrong reason.
        for name in tiercache::COUNTER_NAMES
            .iter()
            .chain(tiercache::HISTOGRAM_NAMES)
        {
            assert!(declared.names.contains(*name), "{name} not in the tables");
        }
        for name in tiercache::HISTOGRAM_NAMES {
            assert!(
                declared.histograms.contains(*name),
                "{name} not a histogram"
            );
        }
        for name in [
            "tiercache_pending_invalidations",
            "widget_cache_requests_total",
        ] {
            assert!(declared.names.contains(name), "{name} not in the tables");
        }
        assert!(declared
            .histograms
            .contains("widget_cache_response_seconds"));
        declared
    }

    /// Whether `series` is exported: a declared name, or a histogram's `_bucket`, `_sum` or
    /// `_count` series.
    fn exports(&self, series: &str) -> bool {
        self.names.contains(series)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                series
                    .strip_suffix(suffix)
                    .is_some_and(|h| self.histograms.contains(h))
            })
    }

    /// What is wrong with `expr` (`what` says where it is): it names no metric of ours, or one that
    /// is not exported.
    fn problems(&self, what: &str, expr: &str) -> Vec<String> {
        let names = metric_names(expr);
        if names.is_empty() {
            return vec![format!(
                "{what}: names no tiercache_ or widget_ metric: {expr}"
            )];
        }
        names
            .into_iter()
            .filter(|n| !self.exports(n))
            .map(|n| format!("{what}: {n} is not a metric the service exports"))
            .collect()
    }
}

/// The identifiers of `expr` that name a metric of ours (`tiercache_…`, `widget_…`), outside
/// quoted label values.
fn metric_names(expr: &str) -> Vec<String> {
    let mut unquoted = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in expr.chars() {
        match (quoted, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, true, _) => escaped = false,
            (_, false, '"') => {
                quoted = !quoted;
                unquoted.push(' ');
            }
            (false, _, c) => unquoted.push(c),
            (true, false, _) => {}
        }
    }
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("tiercache_") || t.starts_with("widget_"))
        .map(str::to_owned)
        .collect()
}

/// Every `expr` string in `value`, wherever the panels nest it (rows hold panels), with the title
/// of the panel it belongs to.
fn exprs<'a>(value: &'a Value, title: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match value {
        Value::Object(map) => {
            let title = map.get("title").and_then(Value::as_str).unwrap_or(title);
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(expr)) => out.push((title, expr)),
                    _ => exprs(v, title, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, title, out)),
        _ => {}
    }
}

fn dashboard() -> Value {
    serde_json::from_str(&read("grafana/tiercache.json")).expect("the dashboard is JSON")
}

#[test]
fn every_dashboard_query_names_metrics_the_service_exports() {
    let declared = Declared::load();
    let dashboard = dashboard();
    let mut problems = Vec::new();

    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queried = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let targets = panel["targets"].as_array().map_or(&[][..], Vec::as_slice);
        if targets.is_empty() {
            problems.push(format!("panel {title:?}: no query"));
        }
        for target in targets {
            let Some(expr) = target["expr"].as_str() else {
                problems.push(format!("panel {title:?}: a target without expr"));
                continue;
            };
            if target["datasource"]["uid"] != "${datasource}" {
                problems.push(format!(
                    "panel {title:?}: not on the ${{datasource}} variable"
                ));
            }
            problems.extend(declared.problems(&format!("panel {title:?}"), expr));
            queried += 1;
        }
    }
    // Nested panels (a collapsed row's) are queries too.
    let mut all = Vec::new();
    exprs(&dashboard["panels"], "", &mut all);
    assert_eq!(all.len(), queried, "queries outside a top-level panel");

    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    let names: Vec<&str> = variables
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for wanted in ["datasource", "namespace", "node"] {
        assert!(names.contains(&wanted), "no ${wanted} variable: {names:?}");
    }
    for variable in variables.iter().filter(|v| v["type"] == "query") {
        let query = variable["query"]["query"]
            .as_str()
            .or_else(|| variable["query"].as_str())
            .expect("a query variable's query");
        problems.extend(declared.problems(&format!("variable {}", variable["name"]), query));
    }

    assert!(
        queried >= 15,
        "only {queried} queries: the dashboard lost panels"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_alert_rule_names_metrics_the_service_exports() {
    let declared = Declared::load();
    let rules = read("prometheus/tiercache-alerts.yml");
    let mut problems = Vec::new();
    let mut alert = "(before the first alert)";
    let (mut alerts, mut expressions, mut severities) = (0, 0, 0);
    for (n, line) in rules.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- alert:") {
            alert = name.trim();
            alerts += 1;
        } else if line.starts_with("severity:") {
            severities += 1;
        } else if let Some(expr) = line.strip_prefix("expr:") {
            // Read by lines: an expression continued on the next ones would go unchecked.
            let expr = expr.trim();
            if expr.is_empty() || expr.starts_with(['|', '>']) {
                problems.push(format!("line {}: {alert}: expr is not on one line", n + 1));
                continue;
            }
            let expr = expr
                .strip_prefix('"')
                .and_then(|e| e.strip_suffix('"'))
                .or_else(|| expr.strip_prefix('\'')?.strip_suffix('\''))
                .unwrap_or(expr);
            expressions += 1;
            problems.extend(declared.problems(&format!("line {}: {alert}", n + 1), expr));
        }
    }
    assert!(alerts >= 10, "only {alerts} alerts");
    assert_eq!(expressions, alerts, "an alert without a one-line expr");
    assert_eq!(severities, alerts, "an alert without a severity label");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `value` as `CONFIG GET` prints it: unquoted, a size in bytes (Redis's units: `k` is 1000,
/// `kb` 1024).
fn as_redis_prints(value: &str) -> String {
    let value = value.trim_matches('"');
    let lower = value.to_ascii_lowercase();
    let units: [(&str, u64); 6] = [
        ("kb", 1 << 10),
        ("mb", 1 << 20),
        ("gb", 1 << 30),
        ("k", 1_000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
    ];
    units
        .iter()
        .find_map(|(unit, factor)| {
            let n: u64 = lower.strip_suffix(unit)?.parse().ok()?;
            Some((n * factor).to_string())
        })
        .unwrap_or_else(|| value.to_owned())
}

#[test]
fn redis_runs_with_what_the_deploy_config_says() {
    let path = deploy("redis/redis.conf");
    let server = RedisServer::start_with_config(&path).expect("redis-server starts with the file");

    // The settings docs/OPERATIONS.md asks for, so removing a line from the file fails here too.
    assert_eq!(
        server.config_get("maxmemory-policy").unwrap(),
        "allkeys-lru"
    );
    assert_eq!(server.config_get("save").unwrap(), "");
    assert_eq!(server.config_get("appendonly").unwrap(), "no");
    assert_ne!(
        server.config_get("maxmemory").unwrap(),
        "0",
        "without maxmemory the memory alert never fires"
    );

    // And every line of the file reads back as written, but those the test gives over it.
    let overridden = ["port", "dir", "logfile", "daemonize"];
    let mut checked = 0;
    for line in read("redis/redis.conf").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once(' ').unwrap_or((line, ""));
        if overridden.contains(&name) {
            continue;
        }
        assert_eq!(
            server.config_get(name).unwrap(),
            as_redis_prints(value.trim()),
            "{name} as {} reads it",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} settings checked");
}

#[test]
fn the_systemd_unit_runs_the_demo_with_flags_it_accepts() {
    let unit = read("systemd/tiercache-demo.service");
    let setting = |key: &str| -> Vec<&str> {
        unit.lines()
            .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .collect()
    };
    let exec = setting("ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart: {exec:?}");
    // systemd's %S is the state directories' root; the rest is split on spaces as systemd does
    // for arguments without quotes.
    let args: Vec<String> = exec[0]
        .split_whitespace()
        .map(|a| a.replace("%S", "/var/lib"))
        .collect();
    assert_eq!(args[0], "/usr/local/bin/tiercache-demo");
    assert!(
        !exec[0].contains('"'),
        "quoted arguments: split them here as systemd does"
    );
    let settings = Settings::try_parse_from(&args).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        settings.no_embedded_redis,
        "a service must not start a redis-server of its own"
    );
    assert_eq!(
        settings.db,
        Path::new("/var/lib/tiercache-demo/tiercache-demo.sqlite"),
        "the database lives in the StateDirectory"
    );
    assert_eq!(setting("StateDirectory"), ["tiercache-demo"]);

    let environment = setting("Environment");
    assert!(
        environment
            .iter()
            .any(|e| e.starts_with("REDIS_URL=redis://")),
        "{environment:?}"
    );
    for hardening in ["DynamicUser", "NoNewPrivileges"] {
        assert_eq!(setting(hardening), ["yes"], "{hardening}");
    }
    assert_eq!(setting("ProtectSystem"), ["strict"]);
    assert_eq!(setting("Restart"), ["on-failure"]);
}
