//! Command-line flags, each with an environment fallback.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::admin_token::AdminToken;

/// Which spans are exported unless `--trace-filter` says otherwise: the requests (INFO) and every
/// span of the cache and the widget layer (DEBUG).
pub const DEFAULT_TRACE_FILTER: &str = "info,tiercache=debug,tiercache_widgets=debug";

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line a event, for people at a terminal.
    Text,
    /// One JSON object a line (`timestamp`, `level`, `target`, `fields`, and the spans the event
    /// happened in), for a log collector.
    Json,
}

/// How the demo runs. Every flag can also come from the environment variable named in `--help`.
// Each bool is an independent on/off flag of the command line, as clap spells them; an enum would
// only rename them.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "tiercache-demo",
    version,
    about = "Dashboard service over tiercache: N cache nodes in one process, one Redis, one SQLite file.",
    long_about = "Dashboard service over tiercache.\n\n\
        Starts N nodes in one process. Each node has its own cache (own L1, own Redis subscriber) and its own \
        HTTP listener; all share one Redis and one SQLite file, the source of truth. When no Redis URL is given \
        (neither --redis-url nor REDIS_URL), nothing answers at the default one and redis-server is on PATH, \
        a private redis-server is started on a free port (nothing on disk) and stopped on exit. When a URL is \
        given and nothing answers there, the nodes start without Redis and join when it answers. The \
        database is filled with generated donations when it is empty. \
        Before it reports ready, node 0 loads the views dashboards open first (every widget type and \
        named range, for everything and for each organisation) into the cache.",
    after_help = "Examples:\n  \
        tiercache-demo                                   two nodes on :8080 and :8081\n  \
        tiercache-demo --nodes 3 --port 9000             three nodes on :9000-9002\n  \
        tiercache-demo --redis-url redis://10.0.0.5:6379/2 --namespace dash\n  \
        tiercache-demo --no-cache --port 8090             every request computed from SQLite (baseline)\n  \
        tiercache-demo --port 0                          free ports, printed at start\n  \
        tiercache-demo --now 2026-12-30T12:00:00Z        the same calendar on every run (data ends there)\n\n\
        Then:\n  \
        curl 'http://127.0.0.1:8080/api/widgets/total_donations?range=this_month'\n  \
        curl -X POST http://127.0.0.1:8080/api/donations -H 'content-type: application/json' \\\n       \
        -d '{\"campaign_id\": 3, \"amount\": 12.5}'\n  \
        curl 'http://127.0.0.1:8081/api/widgets/total_donations?range=this_month'   # node 1 sees it"
)]
pub struct Settings {
    /// Nodes to run in this process, each with its own cache and listener.
    #[arg(long, env = "DEMO_NODES", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=32))]
    pub nodes: u16,

    /// Port of node 0; node k listens on PORT + k. 0 lets the system pick a free port per node.
    #[arg(long, env = "DEMO_PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, env = "DEMO_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Redis URL [default: REDIS_URL, else redis://127.0.0.1:6379; database REDIS_CACHE_DB, else 1].
    /// `--help` does not print the variable's value: it may hold a password.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Cache namespace: nodes of one namespace share entries and invalidations.
    #[arg(long, env = "TIERCACHE_NAMESPACE", default_value = "demo")]
    pub namespace: String,

    /// SQLite file holding organisations, campaigns, employees and donations (created if missing).
    #[arg(long, env = "DEMO_DB", default_value = "tiercache-demo.sqlite")]
    pub db: PathBuf,

    /// Donations to generate when the database has none.
    #[arg(long, env = "DEMO_DONATIONS", default_value_t = 200_000)]
    pub donations: u32,

    /// Seed of the generated data: the same seed and size give the same rows.
    #[arg(long, env = "DEMO_SEED", default_value_t = 42)]
    pub seed: u64,

    /// Serve every request straight from SQLite, with no cache and no Redis (the load test's baseline).
    #[arg(long, env = "DEMO_NO_CACHE")]
    pub no_cache: bool,

    /// A TOML file of cache and widget settings (`TIERCACHE_*`, `REDIS_*`, `WIDGET_CACHE_*` as keys,
    /// in either case); the environment wins over it.
    #[arg(long, env = "DEMO_CONFIG")]
    pub config: Option<std::path::PathBuf>,

    /// Never start a private redis-server: when Redis does not answer, the nodes start without it
    /// (serving from L1 and SQLite) and join the fleet when it does. The same happens without this
    /// flag whenever a Redis URL is given (--redis-url or REDIS_URL).
    #[arg(long, env = "DEMO_NO_EMBEDDED_REDIS", conflicts_with = "private_redis")]
    pub no_embedded_redis: bool,

    /// Always start a private redis-server, whatever answers at the Redis URL (load tests, so a
    /// run never shares a server with anything else).
    #[arg(long, env = "DEMO_PRIVATE_REDIS")]
    pub private_redis: bool,

    /// How long in-flight requests may take to finish after SIGINT/SIGTERM before the process exits.
    #[arg(long, env = "DEMO_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// After SIGINT/SIGTERM, how long the nodes keep serving, with /readyz answering 503, before
    /// the listeners close: long enough for a load balancer that polls /readyz to stop sending (a
    /// few of its polling intervals). 0 closes them at once.
    #[arg(long, env = "DEMO_SHUTDOWN_DRAIN", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_drain: Duration,

    /// How often each node stores a metrics snapshot in Redis (the history /ops charts); the 1, 5 and
    /// 15 minute windows are sampled every 5 s whatever this is.
    #[arg(long, env = "DEMO_SNAPSHOT_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub snapshot_interval: Duration,

    /// How long a widget request may take before it is answered 503 (a stuck query must not hold a
    /// connection forever).
    #[arg(long, env = "DEMO_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// When set, the writes (POST /api/donations, POST /api/campaigns) and the status API
    /// (/api/status, /api/status/history: the data of /ops) ask for Authorization: Bearer <token>
    /// (401 without, 403 when wrong); widget reads, the pages, the probes, /health and /metrics
    /// stay open. The pages ask for it when a call needs it. Never printed, by --help or logs.
    #[arg(long, env = "DEMO_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<AdminToken>,

    /// Requests one node handles at once; past it a request is answered 503 at once, with
    /// Retry-After: 1 (counted in demo_requests_shed_total), instead of queueing. /livez and /readyz
    /// are never shed. The load test's 20,000 users over two nodes each wait for their answer
    /// before the next request, so a node never has more than 10,000 in flight, and at their pace
    /// (7 widgets per dashboard every 20-40 s, about 2,300 requests a second per node) 4096 in flight
    /// would take a stall of nearly two seconds.
    #[arg(long, env = "DEMO_MAX_IN_FLIGHT", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_in_flight: u32,

    /// How long a client may take to send a request's header, counted from the connection's
    /// accept or from the first byte of a later request on it; past it the connection is closed.
    /// A client that sends half a header would otherwise hold its connection forever. A POST's body
    /// then gets as long again to arrive, or is answered 408.
    #[arg(long, env = "DEMO_HEADER_READ_TIMEOUT", default_value = "5s", value_parser = parse_positive_duration)]
    pub header_read_timeout: Duration,

    /// How long a keep-alive connection may wait, after an answer, for the first byte of its next
    /// request; past it the connection is closed. Clients reopen one when they need it.
    #[arg(long, env = "DEMO_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub idle_timeout: Duration,

    /// Run on a clock that starts at this RFC 3339 instant (e.g. 2026-12-30T12:00:00Z) and advances
    /// with real time: generated data ends there, named ranges resolve against it, new donations and
    /// campaigns are dated by it. A run is then reproducible whatever day it is. Default: the system
    /// clock.
    #[arg(long, env = "DEMO_NOW", value_name = "RFC3339", value_parser = parse_instant)]
    pub now: Option<DateTime<Utc>>,

    /// Start cold: do not load the views dashboards open first into the cache before reporting
    /// ready (by default node 0 loads every widget type and named range, for everything and for
    /// each organisation).
    #[arg(long, env = "DEMO_NO_WARM_CACHE")]
    pub no_warm_cache: bool,

    /// Warm every campaign's views too (every widget type and named range of each campaign: 35,000
    /// views over the demo's 500 campaigns), so a campaign dashboard's first read is a hit as well;
    /// the start takes a few seconds longer. The load test turns it on.
    #[arg(long, env = "DEMO_WARM_CAMPAIGNS", conflicts_with = "no_warm_cache")]
    pub warm_campaigns: bool,

    /// How log lines are written on standard error: `text`, one line a event, or `json`, one JSON
    /// object a line for a log collector. Which events: RUST_LOG (default warn). The start-up lines
    /// stay on standard output as text.
    #[arg(long, env = "DEMO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Export traces over OTLP (HTTP, protobuf) to the collector at this URL, such as
    /// http://127.0.0.1:4318 (plain HTTP); /v1/traces is appended, as OpenTelemetry says of the
    /// variable. Each HTTP request's span is the parent of the cache's spans of its calls. Unset:
    /// nothing is exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// Which spans are exported with --otlp-endpoint, in RUST_LOG's syntax: by default the
    /// requests (INFO) and every span of the cache and the widget layer (DEBUG), an L1 hit's
    /// included.
    #[arg(long, env = "DEMO_TRACE_FILTER", default_value = DEFAULT_TRACE_FILTER)]
    pub trace_filter: String,
}

/// An RFC 3339 instant such as `2026-12-30T12:00:00Z` or `2026-12-30T13:00:00+01:00`, in UTC.
fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "{text:?} is not an RFC 3339 time ({e}); expected the form 2026-12-30T12:00:00Z \
                 (date, 'T', time, then Z or an offset such as +01:00)"
            )
        })
}

/// `250ms`, `5s`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 250ms, 5s or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use ms, s or m"
            ))
        }
    };
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range (0 to 24 h)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// As [`parse_duration`], but not zero: a zero timeout would close every connection at once.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "{text:?} is zero; give a duration such as 250ms, 5s or 2m"
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn durations_take_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").unwrap_err().contains("250ms"));
        assert!(parse_duration("3h").unwrap_err().contains("unit"));
    }

    #[test]
    fn defaults_match_the_documentation() {
        let s = Settings::try_parse_from(["tiercache-demo"]).expect("defaults parse");
        assert_eq!((s.nodes, s.port, s.donations), (2, 8080, 200_000));
        assert!(!s.no_cache);
        let err = Settings::try_parse_from(["tiercache-demo", "--nodes", "0"])
            .expect_err("zero nodes is refused");
        assert!(err.to_string().contains("--nodes"), "{err}");
        assert_eq!(s.now, None, "the system clock unless told");
        assert!(!s.no_warm_cache, "warming is on unless turned off");
        assert_eq!(s.header_read_timeout, Duration::from_secs(5));
        assert_eq!(s.max_in_flight, 4096);
        assert_eq!(s.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(
            s.otlp_endpoint, None,
            "no export unless a collector is named"
        );
        let json = Settings::try_parse_from(["tiercache-demo", "--log-format", "json"])
            .expect("json is a format");
        assert_eq!(json.log_format, LogFormat::Json);
        let err = Settings::try_parse_from(["tiercache-demo", "--log-format", "yaml"])
            .expect_err("not a format");
        assert!(err.to_string().contains("json"), "{err}");
        let err = Settings::try_parse_from(["tiercache-demo", "--idle-timeout", "0"])
            .expect_err("a zero timeout is refused");
        assert!(err.to_string().contains("zero"), "{err}");
    }

    #[test]
    fn now_takes_rfc3339_in_any_offset_and_names_the_form_when_refused() {
        let s = Settings::try_parse_from(["tiercache-demo", "--now", "2026-12-30T12:00:00Z"])
            .expect("a UTC instant parses");
        let expected = DateTime::parse_from_rfc3339("2026-12-30T12:00:00Z")
            .expect("a valid literal")
            .with_timezone(&Utc);
        assert_eq!(s.now, Some(expected));
        let shifted =
            Settings::try_parse_from(["tiercache-demo", "--now", "2026-12-30T13:00:00+01:00"])
                .expect("an offset parses");
        assert_eq!(shifted.now, Some(expected), "the same instant, in UTC");
        for bad in [
            "2026-12-30",
            "tomorrow",
            "2026-12-30 12:00",
            "2026-13-01T00:00:00Z",
        ] {
            let err = Settings::try_parse_from(["tiercache-demo", "--now", bad])
                .expect_err("not RFC 3339");
            let text = err.to_string();
            assert!(text.contains("--now"), "{bad}: {text}");
            assert!(text.contains("2026-12-30T12:00:00Z"), "{bad}: {text}");
        }
        let cold = Settings::try_parse_from(["tiercache-demo", "--no-warm-cache"])
            .expect("the flag parses");
        assert!(cold.no_warm_cache);
    }
}
