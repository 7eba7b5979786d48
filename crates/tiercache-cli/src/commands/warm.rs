//! `tiercache warm-cache`: compute the selected widget views and store them on every node.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tiercache::EntryState;
use tiercache_widgets::{
    TimeRange, WidgetCacheMetricsService, WidgetCacheService, WidgetDataAggregationService,
    WidgetFilters, WidgetKey, WidgetType,
};

use super::say;
use crate::cli::{Global, WarmArgs};
use crate::connect::{connect, Connected};
use crate::error::CliError;
use crate::exit::Exit;
use crate::format::{millis, Table};

/// How warming one view ended.
enum Outcome {
    /// Computed and stored, in this long.
    Warmed(Duration),
    /// Fresh in Redis already.
    Skipped,
    /// The error, after this long.
    Failed(String, Duration),
}

/// Per widget type: views warmed, skipped and failed, and the time spent computing them.
#[derive(Default)]
struct Tally {
    warmed: u64,
    skipped: u64,
    failed: u64,
    time: Duration,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Warmed(t) => {
                self.warmed += 1;
                self.time += *t;
            }
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed(_, t) => {
                self.failed += 1;
                self.time += *t;
            }
        }
    }

    fn cells(&self, name: &str) -> Vec<String> {
        let computed = self.warmed + self.failed;
        let mean = (self.time.as_millis() as u64)
            .checked_div(computed)
            .map_or_else(|| "-".to_owned(), millis);
        vec![
            name.to_owned(),
            self.warmed.to_string(),
            self.skipped.to_string(),
            self.failed.to_string(),
            millis(self.time.as_millis() as u64),
            mean,
        ]
    }
}

pub async fn run(global: &Global, args: &WarmArgs) -> Result<Exit, CliError> {
    if !global.db.exists() {
        return Err(CliError::Refused(format!(
            "no database at {} (the demo service creates and fills it: cargo run -p tiercache-demo; or --db PATH)",
            global.db.display()
        )));
    }
    let data = WidgetDataAggregationService::open(&global.db)?;
    let node = connect(global).await?;
    let outcome = warm(global, args, &data, &node).await;
    node.finish(outcome).await
}

async fn warm(
    global: &Global,
    args: &WarmArgs,
    data: &WidgetDataAggregationService,
    node: &Connected,
) -> Result<Exit, CliError> {
    // Views filtered by a campaign carry its organisation's tags (looked up in `data`), as the
    // service's do, and live as long as the service's views do.
    let service = WidgetCacheService::new(
        node.cache.clone(),
        data.clone(),
        WidgetCacheMetricsService::in_memory(),
    )
    .with_ttl_tiers(node.config.ttl_tiers);
    let types = if args.types.is_empty() {
        WidgetType::ALL.to_vec()
    } else {
        args.types.clone()
    };
    let ranges: Vec<TimeRange> = if args.ranges.is_empty() {
        TimeRange::named().collect()
    } else {
        args.ranges.clone()
    };
    let views: Vec<(WidgetType, TimeRange)> = types
        .iter()
        .flat_map(|w| ranges.iter().map(move |r| (*w, *r)))
        .collect();
    let parallel = match args.parallel {
        None => 1,
        Some(0) => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        Some(n) => usize::from(n),
    };
    let bar = progress_bar(global, views.len() as u64);
    let started = Instant::now();
    let outcomes: Vec<((WidgetType, TimeRange), Outcome)> = futures_util::stream::iter(views)
        .map(|(widget, range)| {
            let (service, bar) = (&service, &bar);
            async move {
                let outcome = warm_one(service, node, widget, range, args.force).await;
                bar.inc(1);
                ((widget, range), outcome)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    bar.finish_and_clear();
    let mut tallies: BTreeMap<WidgetType, Tally> = BTreeMap::new();
    let mut all = Tally::default();
    for ((widget, range), outcome) in &outcomes {
        tallies.entry(*widget).or_default().add(outcome);
        all.add(outcome);
        match outcome {
            Outcome::Failed(e, _) => eprintln!("failed: {widget} {range}: {e}"),
            Outcome::Warmed(t) if global.verbose > 0 => {
                say!(
                    global,
                    "warmed {widget} {range} in {}",
                    millis(t.as_millis() as u64)
                );
            }
            Outcome::Skipped if global.verbose > 0 => {
                say!(global, "skipped {widget} {range}: fresh in Redis");
            }
            _ => {}
        }
    }
    let mut table = Table::new(&["widget", "warmed", "skipped", "failed", "time", "mean"]);
    for (widget, tally) in &tallies {
        table.row(tally.cells(widget.as_str()));
    }
    table.row(all.cells("all"));
    say!(global, "{}", table.render().trim_end());
    say!(
        global,
        "{} views in {} ({} at once) into namespace {:?} at {}",
        outcomes.len(),
        millis(started.elapsed().as_millis() as u64),
        parallel,
        global.namespace,
        node.url
    );
    Ok(if all.failed > 0 {
        Exit::Warning
    } else {
        Exit::Ok
    })
}

/// Warms one view unless it is fresh in Redis (and `force` is off).
async fn warm_one(
    service: &WidgetCacheService,
    node: &Connected,
    widget: WidgetType,
    range: TimeRange,
    force: bool,
) -> Outcome {
    let started = Instant::now();
    if !force {
        let key = WidgetKey::new(widget, range, WidgetFilters::new(), service.now()).to_string();
        match node.cache.admin().inspect(&key).await {
            Ok(report) if report.state == EntryState::Fresh => return Outcome::Skipped,
            Ok(_) => {}
            Err(e) => return Outcome::Failed(node.error(e).to_string(), started.elapsed()),
        }
    }
    let warmed = service.warm_view(widget, range, WidgetFilters::new()).await;
    match warmed {
        Ok(()) => Outcome::Warmed(started.elapsed()),
        Err(e) => Outcome::Failed(e.to_string(), started.elapsed()),
    }
}

/// A bar on a terminal; nothing at all when stdout is a pipe or a file, or with `--quiet`.
fn progress_bar(global: &Global, len: u64) -> ProgressBar {
    if global.quiet || !std::io::stdout().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stdout());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} views  {elapsed} elapsed, {eta} left")
    {
        bar.set_style(style);
    }
    bar
}
