//! `tiercache-loadtest`: dashboard viewers and donors against the demo service, with a freshness
//! probe and a stale-view check. `loadtest/run.sh` starts the service and runs this.
//!
//! The last line printed is the summary:
//! `loadtest: users U requests R errors E rps X p50_ms A p95_ms B p99_ms C hit_rate H db_queries Q fresh_p99_ms F stale_views S`

mod plan;
mod probe;
mod scenarios;
mod scrape;
mod staleness;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::metrics::{GooseMetrics, GooseRequestMetricTimingData};
use goose::prelude::*;
use serde::Serialize;

use crate::plan::{Catalogue, Organization, Plan};
use crate::scrape::Scrape;

/// Load test of the tiercache demo service.
#[derive(Debug, Parser)]
#[command(
    name = "tiercache-loadtest",
    version,
    after_help = "Examples:\n  \
        tiercache-loadtest --node http://127.0.0.1:8080 --node http://127.0.0.1:8081 --users 20000\n  \
        tiercache-loadtest --node http://127.0.0.1:8080 --users 200 --run-time 20 --think-min 1 --think-max 2 --fail-on-error"
)]
struct Args {
    /// Base URL of a node of the service; repeat for each node. Users are spread over them.
    #[arg(long = "node", required = true)]
    nodes: Vec<String>,
    /// Concurrent users.
    #[arg(long, default_value_t = 20_000)]
    users: usize,
    /// Seconds over which users start [default: users / 400, at least 1].
    #[arg(long)]
    ramp: Option<f64>,
    /// Seconds to run once every user has started.
    #[arg(long, default_value_t = 120)]
    run_time: usize,
    /// Shortest think time between dashboard refreshes, seconds.
    #[arg(long, default_value_t = 20.0)]
    think_min: f64,
    /// Longest think time between dashboard refreshes, seconds.
    #[arg(long, default_value_t = 40.0)]
    think_max: f64,
    /// Share of users who donate, percent (0 to 50).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=50))]
    donor_percent: u8,
    /// Zipf exponent of which organisations, campaigns and ranges are opened.
    #[arg(long, default_value_t = 1.0)]
    skew: f64,
    /// Where goose's HTML and JSON reports and summary.json go.
    #[arg(long, default_value = "target/loadtest")]
    report_dir: PathBuf,
    /// A name for this run in summary.json (e.g. cached, no-cache).
    #[arg(long, default_value = "cached")]
    label: String,
    /// Skip the freshness probe.
    #[arg(long)]
    no_probe: bool,
    /// Skip the stale-view check.
    #[arg(long)]
    no_stale_check: bool,
    /// Exit 1 on any failed request, probe failure or stale view.
    #[arg(long)]
    fail_on_error: bool,
    /// How a viewer asks for a dashboard: `dashboard`, one `/api/dashboard` request as the page
    /// does; `per-widget`, one `/api/widgets/{type}` request per widget, as the page did before.
    #[arg(long, value_enum, default_value_t = plan::DashboardRequests::Dashboard)]
    requests: plan::DashboardRequests,
}

/// What summary.json holds: the summary line's figures and the details behind them.
#[derive(Debug, Serialize)]
struct Summary {
    label: String,
    users: usize,
    ramp_s: f64,
    measured_s: usize,
    requests: usize,
    errors: usize,
    rps: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Every widget read of the run, first reads of each view (and reads that failed) included:
    /// hits / reads, from `/metrics` before the first user and after the last.
    hit_rate: Option<f64>,
    /// The same from the scrape nearest the end of the ramp to the end, when most views have been
    /// read once already.
    hit_rate_steady: Option<f64>,
    /// Steady state, as `hit_rate_steady`.
    l1_share: Option<f64>,
    /// Steady state, as `hit_rate_steady`.
    requests_served: f64,
    /// Steady state, as `hit_rate_steady`.
    db_queries: f64,
    db_queries_whole_run: f64,
    /// Where the whole run's aggregate queries and misses came from (`/metrics` growth): readers'
    /// misses by widget, and the dispatcher's refresh (views recomputed, brought forward, point
    /// lookups, background reloads).
    behind_the_queries: BTreeMap<String, f64>,
    fresh_samples: usize,
    fresh_p50_ms: Option<f64>,
    fresh_p99_ms: Option<f64>,
    fresh_failures: Vec<String>,
    views_compared: usize,
    views_lagging: usize,
    stale_views: Vec<String>,
    check_errors: Vec<String>,
    per_request: BTreeMap<String, RequestFigures>,
}

#[derive(Debug, Serialize)]
struct RequestFigures {
    requests: usize,
    errors: usize,
    p50_ms: f64,
    p99_ms: f64,
}

/// The growth over the run of the series that say where aggregate queries came from.
fn behind_the_queries(before: &Scrape, after: &Scrape) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for widget in [
        "total_donations",
        "campaign_performance",
        "donation_trends",
        "top_donors",
        "organization_stats",
        "recent_activities",
        "employee_participation",
    ] {
        let label = format!("widget=\"{widget}\"");
        let misses = after.grew(
            before,
            "widget_cache_requests_total",
            &[&label, "outcome=\"miss\""],
        );
        out.insert(format!("reader_misses {widget}"), misses);
        let queries = after.grew(before, "widget_data_queries_total", &[&label]);
        out.insert(format!("queries {widget}"), queries);
    }
    for series in [
        "widget_refresh_recomputed_total",
        "widget_refresh_caught_up_total",
        "widget_refresh_lookups_total",
        "widget_refresh_views_total",
        "widget_refresh_kept_total",
        "widget_refresh_failed_total",
        "widget_outbox_dispatched_total",
    ] {
        out.insert(series.to_owned(), after.grew(before, series, &[]));
    }
    out
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Every request's times merged into one set of buckets.
fn all_requests(metrics: &GooseMetrics) -> GooseRequestMetricTimingData {
    let mut buckets: BTreeMap<u64, usize> = BTreeMap::new();
    let mut all = GooseRequestMetricTimingData::default();
    for aggregate in metrics.requests.values() {
        let t = &aggregate.raw_data;
        if t.counter == 0 {
            continue;
        }
        for (bucket, count) in t.times_us.iter() {
            *buckets.entry(*bucket).or_default() += count;
        }
        if all.counter == 0 || t.minimum_time_us < all.minimum_time_us {
            all.minimum_time_us = t.minimum_time_us;
        }
        all.maximum_time_us = all.maximum_time_us.max(t.maximum_time_us);
        all.total_time_us += t.total_time_us;
        all.counter += t.counter;
    }
    for (bucket, count) in buckets {
        all.times_us.insert(bucket, count);
    }
    all
}

/// Seconds from the first user's start to the last's, from goose's history.
fn ramp_seconds(metrics: &GooseMetrics) -> f64 {
    let mut steps = metrics.history.iter();
    match (steps.next(), steps.next()) {
        (Some(start), Some(maintain)) => {
            (maintain.timestamp - start.timestamp).num_milliseconds() as f64 / 1000.0
        }
        _ => 0.0,
    }
}

async fn fetch_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
) -> Result<T, String> {
    http.get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{url}: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Goose's attack future is large; on the heap it does not weigh on the stack.
    match Box::pin(run(args)).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tiercache-loadtest: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the test; `Ok(false)` when `--fail-on-error` found something.
async fn run(args: Args) -> Result<bool, String> {
    let nodes: Vec<String> = args
        .nodes
        .iter()
        .map(|n| n.trim_end_matches('/').to_owned())
        .collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let catalogue: Catalogue = fetch_json(&http, format!("{}/api/widgets", nodes[0])).await?;
    let directory: Vec<Organization> =
        fetch_json(&http, format!("{}/api/organizations", nodes[0])).await?;
    let plan = Plan::new(
        nodes.clone(),
        catalogue,
        &directory,
        args.skew,
        args.requests,
    )?;
    std::fs::create_dir_all(&args.report_dir)
        .map_err(|e| format!("{}: {e}", args.report_dir.display()))?;

    // The demo runs its nodes in one process with one recorder: node 0's /metrics covers them all.
    let before = Scrape::fetch(&http, &nodes[0]).await?;
    let stop_watchers = Arc::new(AtomicBool::new(false));
    let probe = (!args.no_probe && nodes.len() > 1).then(|| {
        tokio::spawn(probe::run(
            nodes[0].clone(),
            nodes[1].clone(),
            stop_watchers.clone(),
        ))
    });

    let scraper = tokio::spawn(scrape::during(
        http.clone(),
        nodes[0].clone(),
        stop_watchers.clone(),
    ));

    let metrics = Box::pin(attack(&args, &plan)).await?;

    stop_watchers.store(true, Ordering::Relaxed);
    let scrapes = scraper.await.map_err(|e| e.to_string())?;
    let steady_from = metrics
        .history
        .get(1)
        .map(|maintain| maintain.timestamp.timestamp_millis())
        .and_then(|at| scrape::nearest_after(&scrapes, at))
        .unwrap_or(&before)
        .clone();
    let freshness = match probe {
        Some(task) => task.await.map_err(|e| e.to_string())?,
        None => probe::Freshness::default(),
    };
    let after = Scrape::fetch(&http, &nodes[0]).await?;
    let staleness = if args.no_stale_check {
        staleness::Staleness::default()
    } else {
        let views: Vec<String> = plan.touched.lock().iter().cloned().collect();
        println!(
            "checking {} views on {} node(s) against the database",
            views.len(),
            nodes.len()
        );
        staleness::check(&http, &nodes, views).await
    };

    let summary = summarize(
        &args,
        &metrics,
        [&before, &steady_from, &after],
        &freshness,
        &staleness,
    );
    let path = args.report_dir.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    for failure in freshness.failures.iter().take(5) {
        println!("probe failure: {failure}");
    }
    for stale in summary.stale_views.iter().take(10) {
        println!("stale view: {stale}");
    }
    for error in summary.check_errors.iter().take(5) {
        println!("check error: {error}");
    }
    println!(
        "ramp: {} users started in {:.1} s; measured {} s after the ramp; summary in {}",
        summary.users,
        summary.ramp_s,
        summary.measured_s,
        path.display()
    );
    println!("{}", summary_line(&summary));
    let clean = summary.errors == 0
        && summary.stale_views.is_empty()
        && summary.check_errors.is_empty()
        && summary.fresh_failures.is_empty();
    Ok(clean || !args.fail_on_error)
}

async fn attack(args: &Args, plan: &Arc<Plan>) -> Result<GooseMetrics, String> {
    let ramp = args
        .ramp
        .unwrap_or((args.users as f64 / 400.0).ceil().max(1.0));
    let rate = format!("{:.3}", args.users as f64 / ramp);
    let think = (
        Duration::from_secs_f64(args.think_min),
        Duration::from_secs_f64(args.think_max.max(args.think_min)),
    );
    let mut config = GooseConfiguration::default();
    config.report_file = vec![
        args.report_dir.join("report.html").display().to_string(),
        args.report_dir.join("report.json").display().to_string(),
    ];
    let mut attack = GooseAttack::initialize_with_config(config)
        .map_err(|e| e.to_string())?
        // One client for every user: building a client per user is what makes goose slow to
        // start thousands of users (goose issue #666), and dashboards share no cookies.
        .set_client_builder_without_cookies(
            GooseClientBuilder::new()
                .without_cookies()
                .timeout(Duration::from_secs(30)),
        )
        .map_err(|e| e.to_string())?;
    for scenario in scenarios::scenarios(plan, think, usize::from(args.donor_percent))
        .map_err(|e| e.to_string())?
    {
        attack = attack.register_scenario(scenario);
    }
    attack
        .set_default(GooseDefault::Host, plan.nodes[0].as_str())
        .and_then(|a| a.set_default(GooseDefault::Users, args.users))
        .and_then(|a| a.set_default(GooseDefault::IncreaseRate, rate.as_str()))
        .and_then(|a| a.set_default(GooseDefault::RunTime, args.run_time))
        .and_then(|a| a.set_default(GooseDefault::NoTelnet, true))
        // One log line per user launched is 20,000 lines; keep warnings and the final tables.
        .and_then(|a| a.set_default(GooseDefault::Quiet, 1))
        .map_err(|e| e.to_string())
        .map(|a| Box::pin(a.execute()))?
        .await
        .map_err(|e| e.to_string())
}

fn summarize(
    args: &Args,
    metrics: &GooseMetrics,
    [before, steady, after]: [&Scrape; 3],
    freshness: &probe::Freshness,
    staleness: &staleness::Staleness,
) -> Summary {
    let all = all_requests(metrics);
    let errors: usize = metrics.requests.values().map(|a| a.fail_count).sum();
    // Every outcome in the denominator: a first read of a view is a miss, and a read that failed
    // was not answered by the cache either.
    let hit_rate = |from: &Scrape| {
        let hits = after.grew(from, "widget_cache_requests_total", &["outcome=\"hit\""]);
        let reads = after.grew(from, "widget_cache_requests_total", &[]);
        (reads > 0.0).then(|| hits / reads)
    };
    let served = after.grew(steady, "widget_cache_requests_total", &[]);
    let l1 = after.grew(steady, "tiercache_l1_hits_total", &[]);
    let l2 = after.grew(steady, "tiercache_l2_hits_total", &[]);
    let per_request = metrics
        .requests
        .values()
        .map(|a| {
            let name = format!("{} {}", a.method, a.path);
            let figures = RequestFigures {
                requests: a.raw_data.counter,
                errors: a.fail_count,
                p50_ms: ms(a.raw_data.percentile_us(0.50)),
                p99_ms: ms(a.raw_data.percentile_us(0.99)),
            };
            (name, figures)
        })
        .collect();
    Summary {
        label: args.label.clone(),
        users: metrics.maximum_users,
        ramp_s: ramp_seconds(metrics),
        measured_s: metrics.duration,
        requests: all.counter,
        errors,
        rps: if metrics.duration == 0 {
            0.0
        } else {
            all.counter as f64 / metrics.duration as f64
        },
        p50_ms: ms(all.percentile_us(0.50)),
        p95_ms: ms(all.percentile_us(0.95)),
        p99_ms: ms(all.percentile_us(0.99)),
        max_ms: ms(all.maximum_time_us),
        hit_rate: hit_rate(before),
        hit_rate_steady: hit_rate(steady),
        l1_share: (l1 + l2 > 0.0).then(|| l1 / (l1 + l2)),
        requests_served: served,
        db_queries: after.grew(steady, "widget_data_queries_total", &[]),
        db_queries_whole_run: after.grew(before, "widget_data_queries_total", &[]),
        behind_the_queries: behind_the_queries(before, after),
        fresh_samples: freshness.delays.len(),
        fresh_p50_ms: freshness.percentile_ms(0.50),
        fresh_p99_ms: freshness.percentile_ms(0.99),
        fresh_failures: freshness.failures.clone(),
        views_compared: staleness.compared,
        views_lagging: staleness.lagging,
        stale_views: staleness.stale.clone(),
        check_errors: staleness.errors.clone(),
        per_request,
    }
}

fn or_na(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
}

fn summary_line(s: &Summary) -> String {
    format!(
        "loadtest: users {} requests {} errors {} rps {:.0} p50_ms {:.2} p95_ms {:.2} p99_ms {:.2} hit_rate {} db_queries {:.0} fresh_p99_ms {} stale_views {}",
        s.users,
        s.requests,
        s.errors,
        s.rps,
        s.p50_ms,
        s.p95_ms,
        s.p99_ms,
        or_na(s.hit_rate, 4),
        s.db_queries,
        or_na(s.fresh_p99_ms, 1),
        s.stale_views.len()
    )
}
