//! `tiercache cache-status`: the health of every node of the namespace, from the snapshots the nodes
//! store (the CLI serves no traffic, so its own counters would say nothing).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;

use tiercache::ServerInfo;
use tiercache_widgets::{
    Alert, CacheStatus, Figures, FleetStatus, HealthLevel, History, LockFigures, MetricsSnapshot,
    RedisFigures, RequestFigures, ServiceTargets, Thresholds, WidgetCacheMetricsService,
    WidgetType, SNAPSHOTS_KEPT,
};

use crate::cli::{Global, StatusArgs};
use crate::connect::connect;
use crate::error::CliError;
use crate::exit::Exit;
use crate::format::{bytes, count, millis, ms, percent, Table};

/// What the run found: the nodes' documents, and what was left out.
struct Found {
    /// Each reporting node's document, by node id.
    nodes: Vec<CacheStatus>,
    /// The fleet, when more than one node reports.
    fleet: Option<FleetStatus>,
    /// Nodes whose newest snapshot is in the history but that are no longer running.
    stopped: usize,
    /// Other running nodes that have stored no snapshot (ops tools such as this one, services
    /// without a snapshot schedule).
    silent: usize,
}

impl Found {
    fn level(&self) -> Option<HealthLevel> {
        match &self.fleet {
            Some(fleet) => Some(fleet.level),
            None => self.nodes.first().map(|n| n.health.level),
        }
    }
}

/// Why `--json` had no health to print: the `cause` field of [`Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Cause {
    /// Redis answered, but no running node of the namespace has stored a snapshot.
    NoSnapshot,
    /// Redis did not answer (exit 3).
    RedisUnreachable,
    /// A flag, URL or variable could not be used (exit 64).
    BadInput,
    /// Anything else that stopped the run (exit 1).
    Failed,
}

/// The document `--json` prints when there is no level to report, so a monitor that parses stdout
/// always finds one: `level` is `unknown` and `reason` the sentence stderr carries.
#[derive(Debug, Serialize)]
struct Unknown<'a> {
    /// When the run gave up, Unix seconds (UTC), as `taken_at` of the other documents.
    taken_at: i64,
    namespace: &'a str,
    level: &'static str,
    cause: Cause,
    reason: String,
}

impl<'a> Unknown<'a> {
    fn new(namespace: &'a str, cause: Cause, reason: String) -> Self {
        Unknown {
            taken_at: chrono::Utc::now().timestamp(),
            namespace,
            level: "unknown",
            cause,
            reason,
        }
    }

    fn emit(&self) -> Result<(), CliError> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        super::emit(&format!("{json}\n"));
        Ok(())
    }
}

pub async fn run(global: &Global, args: &StatusArgs) -> Result<Exit, CliError> {
    let outcome = status(global, args).await;
    if args.json {
        if let Err(e) = &outcome {
            let cause = match e.exit() {
                Exit::Unknown => Cause::RedisUnreachable,
                Exit::Usage => Cause::BadInput,
                Exit::Ok | Exit::Warning | Exit::Critical => Cause::Failed,
            };
            // The run already failed: its own error is the one to report, not the document's.
            let _ = Unknown::new(&global.namespace, cause, e.to_string()).emit();
        }
    }
    outcome
}

async fn status(global: &Global, args: &StatusArgs) -> Result<Exit, CliError> {
    let node = connect(global).await?;
    let cache = &node.cache;
    let server = cache
        .admin()
        .server_info()
        .await
        .map_err(|e| node.error(e))?;
    let running = cache.admin().nodes().await.map_err(|e| node.error(e))?;
    let me = format!("{:016x}", cache.admin().node_id());
    let running: HashSet<&str> = running
        .iter()
        .map(|n| n.node_id.as_str())
        .filter(|id| *id != me)
        .collect();
    let history = newest_snapshots(&WidgetCacheMetricsService::for_cache(cache), &running).await?;
    let targets = node.config.targets;
    let thresholds = Thresholds::from_targets(&targets);
    let found = judge(
        &history.snapshots,
        &running,
        &global.namespace,
        &targets,
        &thresholds,
        &redis_figures(&server),
    );
    let Some(level) = found.level() else {
        let reason = format!(
            "no running node of namespace {:?} has stored a metrics snapshot yet at {} \
             (service nodes store one every DEMO_SNAPSHOT_INTERVAL, 60 s by default)",
            global.namespace, node.url
        );
        if args.json {
            Unknown::new(&global.namespace, Cause::NoSnapshot, reason.clone()).emit()?;
        }
        if !global.quiet {
            eprintln!("{reason}");
        }
        return Ok(Exit::Unknown);
    };
    if args.json {
        let json = match (&found.fleet, found.nodes.first()) {
            (Some(fleet), _) => serde_json::to_string_pretty(fleet),
            (None, Some(one)) => serde_json::to_string_pretty(one),
            (None, None) => Ok(String::new()),
        };
        super::emit(&format!("{}\n", json.map_err(std::io::Error::other)?));
    } else if !global.quiet {
        let out = if args.alerts {
            render_alerts(&found)
        } else {
            render(&found, args, &server, &node.url, history.skipped)
        };
        super::emit(&out);
    }
    Ok(Exit::of_level(level))
}

/// Snapshots read first: a few per node of a usual fleet. The whole history (a day of every node's
/// snapshots) is read only when a running node has none among them.
const RECENT_SNAPSHOTS: usize = 64;

/// The newest part of the namespace's history that holds a snapshot of every running node, if any
/// does.
async fn newest_snapshots(
    metrics: &WidgetCacheMetricsService,
    running: &HashSet<&str>,
) -> Result<History, CliError> {
    let recent = metrics.history_with_skipped(RECENT_SNAPSHOTS).await?;
    let all_seen = running
        .iter()
        .all(|id| recent.snapshots.iter().any(|s| s.node_id == *id));
    if all_seen || recent.snapshots.len() + recent.skipped < RECENT_SNAPSHOTS {
        return Ok(recent);
    }
    Ok(metrics.history_with_skipped(SNAPSHOTS_KEPT).await?)
}

/// The newest snapshot of each running node, judged; the fleet when several report.
fn judge(
    snapshots: &[MetricsSnapshot],
    running: &HashSet<&str>,
    namespace: &str,
    targets: &ServiceTargets,
    thresholds: &Thresholds,
    redis_now: &RedisFigures,
) -> Found {
    // The history is newest first: the first of each node is its newest.
    let mut newest: BTreeMap<&str, &MetricsSnapshot> = BTreeMap::new();
    for s in snapshots {
        newest.entry(s.node_id.as_str()).or_insert(s);
    }
    // Snapshots from before nodes named themselves count only when nothing else does.
    if newest.len() > 1 {
        newest.remove("");
    }
    let stopped = newest
        .keys()
        .filter(|id| !id.is_empty() && !running.contains(**id))
        .count();
    let mut current: Vec<MetricsSnapshot> = newest
        .into_iter()
        .filter(|(id, _)| id.is_empty() || running.contains(id))
        .map(|(_, s)| {
            let mut s = s.clone();
            // Memory and evictions as Redis reports them now, not when the snapshot was taken.
            s.redis = Some(redis_now.clone());
            s
        })
        .collect();
    current.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    let silent = running
        .iter()
        .filter(|id| !current.iter().any(|s| s.node_id == **id))
        .count();
    let nodes = current
        .iter()
        .map(|s| CacheStatus::from_snapshot(s, namespace, targets, thresholds))
        .collect();
    let fleet = (current.len() > 1)
        .then(|| FleetStatus::from_snapshots(&current, namespace, targets, thresholds));
    Found {
        nodes,
        fleet,
        stopped,
        silent,
    }
}

fn redis_figures(s: &ServerInfo) -> RedisFigures {
    RedisFigures {
        used_memory: s.used_memory,
        maxmemory: s.maxmemory,
        evicted_keys: s.evicted_keys,
        keyspace_hits: s.keyspace_hits,
        keyspace_misses: s.keyspace_misses,
    }
}

fn level(level: HealthLevel) -> &'static str {
    match level {
        HealthLevel::Healthy => "healthy",
        HealthLevel::Warning => "warning",
        HealthLevel::Critical => "critical",
    }
}

fn age(taken_at: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    millis(u64::try_from(now - taken_at).unwrap_or(0) * 1000)
}

/// A node id as tables show it: the first 8 hex digits (what lease holders are named by).
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn request_cells(name: String, f: &RequestFigures) -> Vec<String> {
    if f.requests == 0 {
        // Rates of no reads are 1 by definition (nothing to fault); a table says there were none.
        let mut cells = vec![name, "0".to_owned()];
        cells.resize(REQUEST_HEADER.len(), "-".to_owned());
        return cells;
    }
    vec![
        name,
        count(f.requests),
        percent(f.hit_rate),
        percent(f.l1_hit_rate),
        percent(if f.hits + f.misses == 0 {
            0.0
        } else {
            f.l2_hits as f64 / (f.hits + f.misses) as f64
        }),
        count(f.stale_hits),
        count(f.errors),
        ms(f.mean_response_ms),
        ms(f.max_response_ms),
    ]
}

const REQUEST_HEADER: [&str; 9] = [
    "", "requests", "hit rate", "L1", "L2", "stale", "errors", "mean ms", "max ms",
];

fn header(first: &str) -> Vec<&str> {
    let mut h = REQUEST_HEADER.to_vec();
    h[0] = first;
    h
}

fn wanted(args: &StatusArgs, widget: &str) -> bool {
    args.widget.is_empty() || args.widget.iter().any(|w| w.as_str() == widget)
}

fn render(
    found: &Found,
    args: &StatusArgs,
    server: &ServerInfo,
    url: &str,
    skipped: usize,
) -> String {
    let overall = found
        .fleet
        .as_ref()
        .map_or_else(|| found.nodes[0].clone(), |f| f.fleet.clone());
    let mut out = headline(found, &overall, url, skipped);
    out.push('\n');
    out.push_str(&node_table(found).render());
    out.push('\n');
    let scope = if found.fleet.is_some() {
        "fleet"
    } else {
        "node"
    };
    let _ = writeln!(
        out,
        "widgets ({scope}, since start; hit rate = L1 + L2 + stale):"
    );
    out.push_str(&widget_table(&overall, args, "widget").render());
    out.push('\n');
    out.push_str(&totals(&overall));
    let _ = writeln!(out, "{}", redis_line(server));
    if args.detailed {
        out.push('\n');
        out.push_str(&detail(found, args, server));
    }
    out.push('\n');
    out.push_str(&render_alerts(found));
    out
}

/// Who reports, and the verdict.
fn headline(found: &Found, overall: &CacheStatus, url: &str, skipped: usize) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "namespace {:?} at {url}: {} node(s) reporting",
        overall.namespace,
        found.nodes.len()
    );
    if found.stopped > 0 {
        let _ = write!(out, ", {} stopped node(s) left out", found.stopped);
    }
    if skipped > 0 {
        let _ = write!(out, ", {skipped} unreadable snapshot(s) skipped");
    }
    let worst = found.level().unwrap_or(HealthLevel::Healthy);
    let _ = writeln!(
        out,
        "\nhealth: {} (score {} over the last minute{})",
        level(worst),
        overall.health.score,
        if found.fleet.is_some() { ", fleet" } else { "" }
    );
    out
}

fn node_row(name: String, n: &CacheStatus, snapshot: String) -> Vec<String> {
    vec![
        name,
        level(n.health.level).to_owned(),
        n.health.score.to_string(),
        snapshot,
        count(n.requests.requests),
        percent(n.requests.hit_rate),
        percent(n.requests.l1_hit_rate),
        ms(n.requests.mean_response_ms),
        lock_cell(&n.locks),
        format!("{}/{}", n.invalidations.sent, n.invalidations.received),
    ]
}

/// One row per node, and the fleet's.
fn node_table(found: &Found) -> Table {
    let mut nodes = Table::new(&[
        "node",
        "level",
        "score",
        "snapshot",
        "requests",
        "hit rate",
        "L1",
        "mean ms",
        "locks a/c/f",
        "inval s/r",
    ]);
    for n in &found.nodes {
        nodes.row(node_row(
            n.node_id.clone(),
            n,
            format!("{} ago", age(n.taken_at)),
        ));
    }
    if let Some(f) = &found.fleet {
        nodes.row(node_row("fleet".into(), &f.fleet, String::new()));
    }
    nodes
}

/// Locks, invalidations and coherence, in words.
fn totals(overall: &CacheStatus) -> String {
    let mut out = String::new();
    let l = &overall.locks;
    let _ = writeln!(
        out,
        "locks: {} acquired, {} contended (waited for another node's load), {} failed ({} failure rate)",
        count(l.acquired),
        count(l.contended),
        count(l.failed),
        percent(l.failure_rate)
    );
    let c = &overall.coherence;
    let _ = writeln!(
        out,
        "invalidations: {} sent, {} received{}; coherence: {} gaps, {} replays, {} L1 drops{}",
        count(overall.invalidations.sent),
        count(overall.invalidations.received),
        if c.pending_invalidations > 0 {
            format!(
                ", {} waiting for Redis",
                count(c.pending_invalidations as u64)
            )
        } else {
            String::new()
        },
        c.gaps_detected,
        c.replays,
        c.l1_drops,
        if c.suspect { ", suspect now" } else { "" }
    );
    out
}

fn widget_table(status: &CacheStatus, args: &StatusArgs, first: &str) -> Table {
    let mut table = Table::new(&header(first));
    for widget in WidgetType::ALL {
        if let Some(f) = status.widgets.get(widget.as_str()) {
            if wanted(args, widget.as_str()) {
                table.row(request_cells(widget.as_str().to_owned(), f));
            }
        }
    }
    if args.widget.is_empty() {
        table.row(request_cells("all".into(), &status.requests));
    }
    table
}

fn redis_line(s: &ServerInfo) -> String {
    let limit = if s.maxmemory == 0 {
        "(no maxmemory)".to_owned()
    } else {
        format!("of {} ({})", bytes(s.maxmemory), s.maxmemory_policy)
    };
    format!(
        "redis {}: {} used {limit}, {} evicted, keyspace hits {} / misses {}, {} clients, {} keys in db {}",
        s.version,
        bytes(s.used_memory),
        count(s.evicted_keys),
        count(s.keyspace_hits),
        count(s.keyspace_misses),
        s.connected_clients,
        count(s.database_keys),
        s.database
    )
}

/// Acquired, contended and failed locks, as the "locks a/c/f" columns show them.
fn lock_cell(locks: &LockFigures) -> String {
    format!("{}/{}/{}", locks.acquired, locks.contended, locks.failed)
}

fn window_cells(name: &str, f: &Figures) -> Vec<String> {
    let mut cells = request_cells(
        format!("{name} ({})", millis((f.seconds * 1000.0) as u64)),
        &f.requests,
    );
    cells.push(lock_cell(&f.locks));
    cells
}

fn detail(found: &Found, args: &StatusArgs, server: &ServerInfo) -> String {
    let mut out = String::new();
    for n in &found.nodes {
        let _ = writeln!(
            out,
            "node {} ({}, score {}, snapshot {} ago):",
            n.node_id,
            level(n.health.level),
            n.health.score,
            age(n.taken_at)
        );
        let mut h = header("window");
        h.push("locks a/c/f");
        let mut windows = Table::new(&h);
        windows.row(window_cells("last 1m", &n.windows.last_1m));
        windows.row(window_cells("last 5m", &n.windows.last_5m));
        windows.row(window_cells("last 15m", &n.windows.last_15m));
        let mut total = request_cells(
            format!("total ({})", millis((n.total_seconds * 1000.0) as u64)),
            &n.requests,
        );
        total.push(lock_cell(&n.locks));
        windows.row(total);
        out.push_str(&windows.render());
        out.push_str(&widget_table(n, args, "widget").render());
        let _ = writeln!(
            out,
            "coherence: {} gaps, {} replays, {} L1 drops, suspect {}, Redis unavailable {}, invalidations waiting {}; lock failure rate {}\n",
            n.coherence.gaps_detected,
            n.coherence.replays,
            n.coherence.l1_drops,
            n.coherence.suspect,
            n.coherence.redis_unavailable,
            n.coherence.pending_invalidations,
            percent(n.locks.failure_rate)
        );
    }
    let _ = writeln!(
        out,
        "redis: up {}, {} ops/s, {} commands, {} keys expired, {} clients",
        millis(server.uptime_seconds * 1000),
        count(server.ops_per_sec),
        count(server.total_commands_processed),
        count(server.expired_keys),
        server.connected_clients
    );
    if found.silent > 0 {
        let _ = writeln!(
            out,
            "{} other running node(s) store no snapshots (ops tools like this one; a stopped node is \
             forgotten three heartbeats after it stops)",
            found.silent
        );
    }
    out
}

fn render_alerts(found: &Found) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut add = |who: &str, alerts: &[Alert]| {
        for a in alerts {
            lines.push(format!("{who}: [{}] {}", severity(a), a.message));
        }
    };
    if let Some(f) = &found.fleet {
        add("fleet", &f.fleet.alerts);
    }
    for n in &found.nodes {
        add(&format!("node {}", short(&n.node_id)), &n.alerts);
    }
    if lines.is_empty() {
        "alerts: none\n".to_owned()
    } else {
        format!("alerts:\n  {}\n", lines.join("\n  "))
    }
}

fn severity(a: &Alert) -> &'static str {
    match a.severity {
        tiercache_widgets::Severity::Info => "info",
        tiercache_widgets::Severity::Warning => "warning",
        tiercache_widgets::Severity::Critical => "critical",
    }
}
