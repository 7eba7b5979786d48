//! The command line: global flags, the four commands and their flags, with examples in `--help`.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use tiercache_widgets::{TimeRange, WidgetFilters, WidgetType};

/// The ops command line of a tiercache namespace.
#[derive(Debug, Parser)]
#[command(
    name = "tiercache",
    version,
    about = "Ops for a tiercache namespace: warm it, read its nodes' health, clean it up, inspect an entry.",
    long_about = "Ops for a tiercache namespace: warm it, read its nodes' health, clean it up, inspect an entry.\n\n\
        Reaches Redis only through the tiercache core, with the configuration the service nodes use: every \
        TIERCACHE_* and WIDGET_CACHE_* variable, REDIS_URL and REDIS_CACHE_DB are read as WidgetConfig::from_env \
        reads them. The defaults (namespace `demo`, database file tiercache-demo.sqlite) are the demo \
        service's, so `tiercache cache-status` works against `cargo run -p tiercache-demo` as it is.",
    after_help = TOP_HELP
)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level help's examples and the exit codes of every command.
const TOP_HELP: &str = "Examples:
  tiercache cache-status                         the health of every node of namespace `demo`
  tiercache cache-status --json | jq .level       the same as a document
  tiercache warm-cache --parallel                every widget view, as many at once as there are cores
  tiercache cache-cleanup --dry-run              what would go: abandoned leases, expired entries
  tiercache inspect --widget total_donations --time-range this_month
  tiercache --redis-url redis://10.0.0.5:6379/2 --namespace dash cache-status

Exit codes:
  0   done; cache-status: healthy
  1   warning: cache-status: warning; warm-cache / cache-cleanup: something failed or was declined;
      inspect: the key is not in L2
  2   cache-status: critical
  3   unknown: Redis unreachable (any command); cache-status: also no node of the namespace has
      stored a metrics snapshot yet
  64  bad input: unknown flag, widget type or time range, malformed Redis URL or variable, or
      cache-cleanup --force without --yes and without a terminal to confirm on";

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Redis URL, redis://[user:pass@]host:port[/db] [default: REDIS_URL, else
    /// redis://127.0.0.1:6379; database REDIS_CACHE_DB, else 1]
    #[arg(long, global = true, value_name = "URL")]
    pub redis_url: Option<String>,

    /// Cache namespace; the demo service's is `demo`.
    #[arg(
        long,
        global = true,
        env = "TIERCACHE_NAMESPACE",
        default_value = "demo",
        value_name = "NS"
    )]
    pub namespace: String,

    /// SQLite file the widgets are computed from (warm-cache): the demo service's.
    #[arg(
        long,
        global = true,
        env = "DEMO_DB",
        default_value = "tiercache-demo.sqlite",
        value_name = "PATH"
    )]
    pub db: PathBuf,

    /// Print nothing but errors and --json documents; the exit code says how it went.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail: every item warmed or removed; -vv also logs the cache's own lines to stderr.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute widget views from the database and store them on every node, skipping fresh ones.
    #[command(
        long_about = "Compute widget views from the SQLite database (--db) and store them in both tiers on \
            every node, for every selected widget type and time range (all of them when none is named), \
            with no filters: the views a dashboard opens first. A view that is fresh in Redis is skipped \
            unless --force. Prints a summary per widget type; exits 1 when any view failed.",
        after_help = "Examples:
  tiercache warm-cache                                      all 7 types x 10 ranges, one at a time
  tiercache warm-cache --type top_donors --type total_donations --time-range this_month
  tiercache warm-cache --parallel 4 --force                 recompute everything, 4 at once
  tiercache warm-cache --db /srv/dash.sqlite -q             no output; the exit code says how it went"
    )]
    WarmCache(WarmArgs),

    /// Health, hit rates, response times, locks, invalidations, Redis memory and alerts of every node.
    #[command(
        long_about = "Health of the namespace's service nodes. The CLI serves no traffic, so it reads what the \
            nodes store: each node records a metrics snapshot every DEMO_SNAPSHOT_INTERVAL (60 s) into the \
            namespace's history; the newest of each running node is shown (nodes that stopped are left \
            out), with the fleet's figures added together. Health and alerts judge each node's last \
            minute; the figures in the tables are since each node started. Redis figures are read now.\n\n\
            --json prints the status document of GET /api/status (tiercache_widgets::CacheStatus) when \
            one node reports, and a FleetStatus {taken_at, namespace, level, fleet, nodes} when several do. \
            With no level to report it still prints one document, {taken_at, namespace, level: \"unknown\", \
            cause, reason}: cause is no_snapshot (no running node has stored one), redis_unreachable, \
            bad_input or failed, reason the sentence stderr carries; the exit code is the same as without \
            --json.",
        after_help = "Examples:
  tiercache cache-status                        fleet, nodes and widget types at a glance
  tiercache cache-status --detailed             and each node's 1/5/15 minute windows, coherence, Redis
  tiercache cache-status --widget top_donors    only those widget types' rows
  tiercache cache-status --alerts -q; echo $?   for a monitor: 0 healthy, 1 warning, 2 critical, 3 unknown
  tiercache cache-status --json | jq '.nodes[].health'"
    )]
    CacheStatus(StatusArgs),

    /// Remove abandoned leases and expired entries, or (--force) every cache key of the namespace.
    #[command(
        long_about = "Remove what the namespace no longer needs. Keys are found with SCAN and a MATCH pattern \
            built from the key layout, so keys of other namespaces and other programs in the same database \
            are never touched.\n\n\
            --locks removes load leases and named locks whose holder is gone. A lease token names its \
            holder's node id; every running node renews a presence key every heartbeat interval \
            (TIERCACHE_HEARTBEAT_INTERVAL, 1 s) that expires after three. A holder is gone when no node of \
            the namespace with its id is present; a lease without expiry or with a value that is no token \
            is removed too. Each removal is compare-and-delete: a lease taken again since is kept.\n\n\
            --expired-only removes entries past their logical expiry, kept only as the fail-safe fallback; \
            an entry refreshed since is kept, and every node is told to drop its L1 copy.\n\n\
            Without either, both. --force instead removes every cache key of the namespace (entries, \
            generations, leases, tag versions, replay stream, named locks; not the nodes' presence keys, \
            the locks' fencing counters nor the metrics history) and tells every node to drop its L1; it \
            asks first, unless --yes, and refuses without a terminal to ask on. --dry-run lists what \
            would go and changes nothing.",
        after_help = "Examples:
  tiercache cache-cleanup --dry-run -v          list every lease and entry that would go
  tiercache cache-cleanup --locks               only leases and locks whose holder is gone
  tiercache cache-cleanup --expired-only
  tiercache cache-cleanup --force               asks: remove every cache key of the namespace?
  tiercache cache-cleanup --force --yes         no question (scripts)"
    )]
    CacheCleanup(CleanupArgs),

    /// Where an entry is and how it stands: state, generation, tags, age, TTL, fail-safe, size, lease.
    #[command(
        long_about = "Everything Redis knows about one entry: whether it is there and fresh, its generation, \
            the tags it was stored under and whether each is still current, its age, logical TTL left, \
            fail-safe time left, size, and whether a node holds its load lease (and which). Which nodes \
            hold it in L1 is not knowable from outside them: each node's L1 is private to its process. \
            The key is given as it is, or built from widget parameters (the service's key function). \
            Exits 1 when the key is not in Redis.",
        after_help = "Examples:
  tiercache inspect --widget total_donations --time-range this_month
  tiercache inspect --widget top_donors --time-range last_month --organization-id 3 --limit 5
  tiercache inspect 'total_donations:this_month@2025-05-01..2025-06-01:f=cbf29ce48422' --json"
    )]
    Inspect(InspectArgs),
}

/// `warm-cache`.
#[derive(Debug, Args)]
pub struct WarmArgs {
    /// Widget type to warm; repeat for several [default: all seven].
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_widget)]
    pub types: Vec<WidgetType>,

    /// Time range to warm; repeat for several [default: all ten named ranges].
    #[arg(long = "time-range", value_name = "RANGE", value_parser = parse_range)]
    pub ranges: Vec<TimeRange>,

    /// Warm N views at once; --parallel alone means one per core [default without it: 1].
    #[arg(
        long,
        value_name = "N",
        num_args = 0..=1,
        default_missing_value = "0",
        value_parser = clap::value_parser!(u16).range(0..=256)
    )]
    pub parallel: Option<u16>,

    /// Recompute views that are fresh in Redis too.
    #[arg(long)]
    pub force: bool,
}

/// `cache-status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Also each node's 1, 5 and 15 minute windows, per-widget figures, coherence and Redis details.
    #[arg(long)]
    pub detailed: bool,

    /// Only the alerts (the exit code is the same).
    #[arg(long, conflicts_with = "detailed")]
    pub alerts: bool,

    /// Show only these widget types' rows; repeat for several (JSON keeps every type).
    #[arg(long, value_name = "TYPE", value_parser = parse_widget)]
    pub widget: Vec<WidgetType>,

    /// Print the status document as JSON; one document in every outcome (level "unknown" and the
    /// reason when there is no level to report).
    #[arg(long)]
    pub json: bool,
}

/// `cache-cleanup`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // five independent switches, as the command line has them
pub struct CleanupArgs {
    /// Remove load leases and named locks whose holder is gone.
    #[arg(long, conflicts_with = "force")]
    pub locks: bool,

    /// Remove entries past their logical expiry, kept only for fail-safe.
    #[arg(long, conflicts_with = "force")]
    pub expired_only: bool,

    /// List what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Remove every cache key of the namespace (asks first).
    #[arg(long)]
    pub force: bool,

    /// Do not ask before --force.
    #[arg(long, requires = "force")]
    pub yes: bool,
}

/// `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The cache key as the service stores it.
    #[arg(required_unless_present = "widget", conflicts_with = "widget")]
    pub key: Option<String>,

    /// Build the key of this widget type's view instead.
    #[arg(long, value_name = "TYPE", value_parser = parse_widget)]
    pub widget: Option<WidgetType>,

    /// The view's time range, resolved now.
    #[arg(
        long,
        value_name = "RANGE",
        value_parser = parse_range,
        requires = "widget",
        default_value = "this_month"
    )]
    pub time_range: TimeRange,

    /// The view's organization_id filter.
    #[arg(long, value_name = "ID", requires = "widget")]
    pub organization_id: Option<String>,

    /// The view's campaign_id filter.
    #[arg(long, value_name = "ID", requires = "widget")]
    pub campaign_id: Option<String>,

    /// The view's employee_id filter.
    #[arg(long, value_name = "ID", requires = "widget")]
    pub employee_id: Option<String>,

    /// The view's currency filter (three letters).
    #[arg(long, value_name = "CODE", requires = "widget")]
    pub currency: Option<String>,

    /// The view's limit parameter (rows).
    #[arg(long, value_name = "N", requires = "widget")]
    pub limit: Option<String>,

    /// Print the report as JSON (tiercache::EntryReport).
    #[arg(long)]
    pub json: bool,
}

impl InspectArgs {
    /// The view's filters, checked by the widget layer (which names what is wrong).
    pub fn filters(&self) -> Result<WidgetFilters, tiercache_widgets::WidgetError> {
        let given = [
            ("organization_id", &self.organization_id),
            ("campaign_id", &self.campaign_id),
            ("employee_id", &self.employee_id),
            ("currency", &self.currency),
            ("limit", &self.limit),
        ];
        WidgetFilters::from_pairs(
            given
                .iter()
                .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))),
        )
    }
}

/// The widget layer's parser, whose error lists the valid types.
fn parse_widget(text: &str) -> Result<WidgetType, String> {
    text.parse()
        .map_err(|e: tiercache_widgets::WidgetError| e.to_string())
}

/// The widget layer's parser, whose error lists the valid ranges.
fn parse_range(text: &str) -> Result<TimeRange, String> {
    text.parse()
        .map_err(|e: tiercache_widgets::WidgetError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parallel_alone_means_one_per_core() {
        let cli = Cli::try_parse_from(["tiercache", "warm-cache", "--parallel"]).expect("parses");
        let Command::WarmCache(args) = cli.command else {
            panic!("warm-cache")
        };
        assert_eq!(args.parallel, Some(0));
    }
}
