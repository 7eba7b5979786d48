//! Counters for every cache decision: atomics for [`crate::Cache::stats`], handed on as `metrics`
//! counters (stable names, `namespace` label) to whatever recorder the service installs, beside the
//! histograms.
//!
//! A decision counts into its thread's stripe only: one relaxed add on a cache line that, with up to
//! [`STRIPES`] threads, no other thread writes. The recorder's counter is one atomic shared by every
//! core, so adding to it on each L1 hit would make every core write one line; instead
//! [`Recorder::publish`] hands it the stripes' growth since the last call, every
//! [`PUBLISH_INTERVAL`] and whenever the service asks.
//!
//! The names are a public promise. Each metric is declared once here, with its unit, its meaning and
//! (histograms) its buckets: [`CacheStats::describe_metrics`] tells the recorder, and docs/OPERATIONS.md
//! ("Metrics") holds the tables rendered from the same declarations (a test holds them equal).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::fmt::Write as _;

use metrics::{Counter, Gauge, Histogram, Label, Unit};

macro_rules! decisions {
    ($( $field:ident => $name:literal, $doc:literal; )*) => {
        /// A snapshot of a node's counters since it was built.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct CacheStats {
            $( #[doc = $doc] pub $field: u64, )*
        }

        /// Every counter name, for documentation and tests.
        pub const COUNTER_NAMES: &[&str] = &[$($name),*];

        /// Every counter, as the recorder and the docs are told about it.
        const COUNTERS: &[Described] = &[$(
            Described {
                name: $name,
                kind: MetricKind::Counter,
                unit: Unit::Count,
                field: Some(stringify!($field)),
                help: $doc,
                buckets: &[],
            },
        )*];

        /// One stripe of counters, on cache lines of its own.
        #[derive(Default)]
        #[repr(align(128))]
        struct Atomics { $( $field: AtomicU64, )* }

        struct Handles { $( $field: Counter, )* }

        impl Handles {
            fn register(labels: &[Label]) -> Self {
                Handles { $( $field: metrics::counter!($name, labels.to_vec()), )* }
            }
        }

        impl Recorder {
            $(
                #[doc = $doc]
                #[inline]
                pub(crate) fn $field(&self, n: u64) {
                    self.atomics[stripe()].$field.fetch_add(n, Ordering::Relaxed);
                }
            )*

            /// Hands the recorder what every counter gained since the last call.
            pub(crate) fn publish(&self) {
                let mut published = self.published.lock();
                let now = self.snapshot();
                $(
                    // Counters only grow, and `published` only ever holds an earlier snapshot.
                    let gained = now.$field.saturating_sub(published.$field);
                    if gained > 0 {
                        self.handles.$field.increment(gained);
                    }
                )*
                *published = now;
            }

            pub(crate) fn snapshot(&self) -> CacheStats {
                let mut stats = CacheStats::default();
                for stripe in self.atomics.iter() {
                    $( stats.$field += stripe.$field.load(Ordering::Relaxed); )*
                }
                stats
            }
        }
    };
}

decisions! {
    l1_hits => "tiercache_l1_hits_total", "Reads answered from L1.";
    l2_hits => "tiercache_l2_hits_total", "Reads answered from L2 (then copied into L1).";
    l2_batched_reads => "tiercache_l2_batched_reads_total", "L2 entry reads that shared one MGET with other cold reads in flight at the same moment, or with the other cold keys of a fetch_many call (entry layout 2 on one server).";
    fill_notice_hits => "tiercache_fill_notice_hits_total", "Waiters for another node's load answered by the entry its filled notice carried (entries up to 4 KiB), without reading Redis.";
    l2_fence_first_reads => "tiercache_l2_fence_first_reads_total", "Cold get_or_load reads sent straight to the fenced read (entry, generation and lease in one round trip) because most recent cold reads had missed.";
    misses => "tiercache_misses_total", "Reads that found no usable value in either tier.";
    loads => "tiercache_loads_total", "Loader runs started by this node.";
    load_errors => "tiercache_load_errors_total", "Loader runs that failed, panicked or timed out.";
    decode_errors => "tiercache_decode_errors_total", "L2 values that were corrupt, oversized, of an unknown version, of a value codec this build lacks or of another type (treated as misses and deleted).";
    coalesced => "tiercache_coalesced_total", "Calls that waited on a load already running on this node instead of starting one.";
    batch_calls => "tiercache_batch_calls_total", "fetch_many calls that went past L1 (some of their keys missed it).";
    batch_loads => "tiercache_batch_loads_total", "Calls of a fetch_many batch loader: one per fetch_many call whose keys needed loading, plus one per key that needed loading only after waiting on another node.";
    batch_loaded_keys => "tiercache_batch_loaded_keys_total", "Keys asked of batch loaders; divided by tiercache_batch_loads_total, the keys one call loads.";
    flights_overtaken => "tiercache_flights_overtaken_total", "Calls that stopped waiting on a load or read already running on this node because an invalidation of the key reached the node first, and read again (once per call at most).";
    type_mismatches => "tiercache_type_mismatches_total", "L1 entries of another type than the one asked for (treated as misses).";
    read_deadline_hits => "tiercache_read_deadline_hits_total", "Calls that stopped waiting for Redis at their read deadline (TIERCACHE_READ_DEADLINE): an L2 read or lease attempt cut short (the call loaded without them), or a store the call answered without (it lands later or fails). Redis was slow or unreachable.";
    fenced_writes => "tiercache_fenced_writes_total", "Loaded values not stored because an invalidation, restart or flush overlapped the load.";
    late_writes_refused => "tiercache_late_writes_refused_total", "Values of `set` that reached Redis after their deadline (when the caller could no longer be waiting) and were not written, their keys only invalidated; counted when the reply still reached this node.";
    encode_errors => "tiercache_encode_errors_total", "Loaded values not stored because they could not be encoded or were over the size limit.";
    redis_errors => "tiercache_redis_errors_total", "Redis calls that failed or timed out.";
    stale_served => "tiercache_stale_served_total", "Expired values served because the loader failed or was too slow (fail-safe).";
    refreshes => "tiercache_refreshes_total", "Background refreshes started ahead of expiry.";
    lock_acquired => "tiercache_lock_acquired_total", "Load leases or named locks acquired.";
    lock_contended => "tiercache_lock_contended_total", "Load leases or named locks found held by another holder, once per call: the call waited for another node's load (healthy coalescing) or retried.";
    lock_failed => "tiercache_lock_failed_total", "Load leases or named locks not obtained: a named lock that timed out, a lease wait that gave up after two lease times, or a Redis error while taking or waiting.";
    lease_takeovers => "tiercache_lease_takeovers_total", "Loads started after waiting out another holder's lease.";
    fleet_waits => "tiercache_fleet_waits_total", "Calls that waited for another node's load instead of loading.";
    invalidations_sent => "tiercache_invalidations_sent_total", "Invalidation events this node applied to L2 and published.";
    invalidations_received => "tiercache_invalidations_received_total", "Invalidation events from other nodes applied to this node's L1.";
    bus_messages_sent => "tiercache_bus_messages_sent_total", "Bus messages published (one per batch).";
    bus_messages_received => "tiercache_bus_messages_received_total", "Bus messages received from other nodes.";
    gaps_detected => "tiercache_gaps_detected_total", "Times this node found it may have missed invalidations.";
    replays => "tiercache_replays_total", "Recoveries that replayed the stream.";
    l1_drops => "tiercache_l1_drops_total", "Recoveries that had to drop the whole L1.";
    rollbacks_detected => "tiercache_rollbacks_detected_total", "Times this node found Redis had gone back in time behind invalidations it had seen (restored from an older snapshot, lost writes, a promoted replica that missed them) and deleted the namespace's entries from L2.";
    tags_forgotten => "tiercache_tags_forgotten_total", "Tag versions a node forgot because it knew more distinct tags than its bound (TIERCACHE_MAX_KNOWN_TAGS); entries in L1 keep theirs where the bound allows.";
    breaker_opened => "tiercache_breaker_opened_total", "Times the Redis circuit breaker opened.";
    invalidations_sent_without_stream => "tiercache_invalidations_sent_without_stream_total", "Invalidation events a Redis out of memory would not record (maxmemory with a policy that evicts nothing): their entries and tag versions were deleted and the message published without the replay stream; they stay queued until the stream takes them.";
    invalidations_queued => "tiercache_invalidations_queued_total", "Invalidation operations that could not reach Redis and were queued for replay.";
    invalidations_replayed => "tiercache_invalidations_replayed_total", "Queued invalidation operations replayed to Redis.";
    pending_overflows => "tiercache_pending_overflows_total", "Times the queue of invalidations waiting for Redis passed its bound (the namespace is cleared instead).";
    unreplicated_invalidations => "tiercache_unreplicated_invalidations_total", "Invalidations that fewer replicas acknowledged than TIERCACHE_REPLICA_ACKS asks, within the response timeout: a failover of that master now could lose them.";
    repairs => "tiercache_repairs_total", "Unreadable bookkeeping found in Redis (epoch, generation, tag version, lease, lock fencing counter, stream, entry of another type, bus message): treated as changed and rewritten.";
}

/// Counter stripes per node. Threads count into the stripe picked for them, so cores hitting L1 at
/// once do not bounce one cache line between them on every hit; a snapshot sums the stripes.
const STRIPES: usize = 16;

/// This thread's stripe: assigned round-robin on first use.
fn stripe() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

/// How often a node hands its counters to the recorder; a scrape sees them at most this late.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// The counters and histograms of one node.
pub(crate) struct Recorder {
    atomics: Box<[Atomics; STRIPES]>,
    handles: Handles,
    /// The totals last handed to `handles`.
    published: parking_lot::Mutex<CacheStats>,
    load_seconds: Histogram,
    l2_read_seconds: Histogram,
    propagation_seconds: Histogram,
    batch_size: Histogram,
    suspect_seconds: Histogram,
    /// In the order of [`GAUGES`].
    gauges: [Gauge; 5],
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // The node outlives its handle while spawned loads finish: hand over what they counted.
        self.publish();
    }
}

/// Histogram names, for documentation and tests.
pub const HISTOGRAM_NAMES: &[&str] = &histogram_names();

const fn histogram_names() -> [&'static str; HISTOGRAMS.len()] {
    let mut names = [""; HISTOGRAMS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = HISTOGRAMS[i].name;
        i += 1;
    }
    names
}

/// Whether a metric counts, measures or states: which `describe_*` a recorder is told, and the
/// word the docs' tables use. Public so that layers above the cache describe their metrics alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// A value as last set.
    Gauge,
    /// A distribution over buckets.
    Histogram,
}

impl MetricKind {
    /// The word the docs' tables use: `counter`, `gauge` or `histogram`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }

    /// Tells the installed [`metrics`] recorder what the metric `name` means (`help`) and in which
    /// `unit`. The unit is also written into the help text, since the Prometheus text format has no
    /// line of its own for it.
    ///
    /// ```
    /// // With no recorder installed, the description goes nowhere: nothing fails.
    /// tiercache::MetricKind::Counter.describe("app_jobs_total", metrics::Unit::Count, "Jobs run.");
    /// ```
    pub fn describe(self, name: &'static str, unit: Unit, help: &str) {
        let help = format!("{help} Unit: {}.", unit.as_str());
        match self {
            MetricKind::Counter => metrics::describe_counter!(name, unit, help),
            MetricKind::Gauge => metrics::describe_gauge!(name, unit, help),
            MetricKind::Histogram => metrics::describe_histogram!(name, unit, help),
        }
    }
}

/// A histogram's bucket upper bounds as the docs' tables show them (`0.001, 0.01, 0.1`), or `—`
/// for a metric without buckets.
///
/// ```
/// assert_eq!(tiercache::show_buckets(&[0.5, 1.0, 2.5]), "0.5, 1, 2.5");
/// assert_eq!(tiercache::show_buckets(&[]), "—");
/// ```
pub fn show_buckets(buckets: &[f64]) -> String {
    if buckets.is_empty() {
        return "—".to_owned();
    }
    let mut shown = String::new();
    for (i, bound) in buckets.iter().enumerate() {
        let _ = write!(shown, "{}{bound}", if i == 0 { "" } else { ", " });
    }
    shown
}

/// One metric: what the recorder is told about it (`describe_*`) and what the docs' tables say.
struct Described {
    name: &'static str,
    kind: MetricKind,
    unit: Unit,
    /// The [`CacheStats`] field that holds the same count (counters only).
    field: Option<&'static str>,
    help: &'static str,
    /// A histogram's bucket upper bounds, in `unit`; empty for the others.
    buckets: &'static [f64],
}

/// Latencies of Redis round trips and of the loaders behind them: 50 µs (a local Redis under no
/// load) to 10 s (far past any timeout a service should set).
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// The histograms, in the order [`HISTOGRAM_NAMES`] lists them ([`Recorder::new`] indexes it).
const HISTOGRAMS: &[Described; 5] = &[
    Described {
        name: "tiercache_load_duration_seconds",
        kind: MetricKind::Histogram,
        unit: Unit::Seconds,
        field: None,
        help: "Loader run time.",
        buckets: LATENCY_BUCKETS,
    },
    Described {
        name: "tiercache_l2_read_duration_seconds",
        kind: MetricKind::Histogram,
        unit: Unit::Seconds,
        field: None,
        help: "One L2 read round trip (value + validity + fence).",
        buckets: LATENCY_BUCKETS,
    },
    Described {
        name: "tiercache_invalidation_propagation_seconds",
        kind: MetricKind::Histogram,
        unit: Unit::Seconds,
        field: None,
        help: "Sender's publish to this node's apply (wall clocks, so skew between machines shows too).",
        buckets: LATENCY_BUCKETS,
    },
    Described {
        name: "tiercache_bus_batch_size",
        kind: MetricKind::Histogram,
        unit: Unit::Count,
        field: None,
        help: "Events per published bus message.",
        // Powers of two up to past the sender's bound of 2,048 operations per message.
        buckets: &[
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
        ],
    },
    Described {
        name: "tiercache_suspect_duration_seconds",
        kind: MetricKind::Histogram,
        unit: Unit::Seconds,
        field: None,
        help: "How long the node distrusted its L1 before recovering.",
        // A replay takes milliseconds; waiting out a Redis outage, minutes.
        buckets: &[
            0.001, 0.01, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
        ],
    },
];

/// Which tiercache the process runs.
const BUILD_INFO: &Described = &Described {
    name: "tiercache_build_info",
    kind: MetricKind::Gauge,
    unit: Unit::Count,
    field: None,
    help: "Always 1; the labels say which tiercache the process runs: `version` (of the tiercache crate) and `debug_assertions` (`true` in a debug build).",
    buckets: &[],
};

/// What a node is, stated every [`PUBLISH_INTERVAL`], in the order [`Recorder::state`] sets them.
const GAUGES: &[Described; 5] = &[
    Described {
        name: "tiercache_l1_entries",
        kind: MetricKind::Gauge,
        unit: Unit::Count,
        field: None,
        help: "Entries in L1 (expired ones until the next sweep).",
        buckets: &[],
    },
    Described {
        name: "tiercache_l1_bytes",
        kind: MetricKind::Gauge,
        unit: Unit::Bytes,
        field: None,
        help: "Bytes L1 holds by its weigher (encoded value size, key and overhead), against TIERCACHE_L1_MAX_BYTES.",
        buckets: &[],
    },
    Described {
        name: "tiercache_pending_invalidations",
        kind: MetricKind::Gauge,
        unit: Unit::Count,
        field: None,
        help: "Invalidation operations that could not reach Redis and wait to be replayed; L2 is not used while any wait.",
        buckets: &[],
    },
    Described {
        name: "tiercache_suspect",
        kind: MetricKind::Gauge,
        unit: Unit::Count,
        field: None,
        help: "1 while the node distrusts part of its L1 (it may have missed an invalidation), else 0.",
        buckets: &[],
    },
    Described {
        name: "tiercache_breaker_open",
        kind: MetricKind::Gauge,
        unit: Unit::Count,
        field: None,
        help: "1 while the circuit breaker in front of Redis is open (calls are refused), else 0.",
        buckets: &[],
    },
];

/// A node's state as its gauges say it.
pub(crate) struct NodeState {
    pub(crate) l1_entries: u64,
    pub(crate) l1_bytes: u64,
    pub(crate) pending_invalidations: u64,
    pub(crate) suspect: bool,
    pub(crate) breaker_open: bool,
}

impl Described {
    fn describe(&self) {
        self.kind.describe(self.name, self.unit, self.help);
    }
}

/// A markdown table row: cells between pipes.
fn row(cells: &[&str]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// A table's header row and the line under it.
fn header(cells: &[&str]) -> String {
    format!("{}|{}\n", row(cells), "---|".repeat(cells.len()))
}

impl CacheStats {
    /// Tells the installed [`metrics`] recorder what every metric of the core means and in which
    /// unit (a Prometheus exporter prints it as `# HELP`), and sets `tiercache_build_info` to 1.
    /// Call it once, after installing the recorder; the metrics of nodes built before or after it
    /// are described alike.
    ///
    /// ```
    /// // With no recorder installed, the descriptions go nowhere: nothing fails.
    /// tiercache::CacheStats::describe_metrics();
    /// ```
    pub fn describe_metrics() {
        for m in COUNTERS
            .iter()
            .chain(HISTOGRAMS)
            .chain(GAUGES)
            .chain([BUILD_INFO])
        {
            m.describe();
        }
        let debug_assertions = if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        };
        metrics::gauge!(
            BUILD_INFO.name,
            "version" => env!("CARGO_PKG_VERSION"),
            "debug_assertions" => debug_assertions
        )
        .set(1.0);
    }

    /// Each histogram's name and bucket upper bounds, for a recorder that needs them before the
    /// first value (`metrics-exporter-prometheus`: `set_buckets_for_metric` with `Matcher::Full`).
    /// The bounds are in the metric's unit: seconds, except `tiercache_bus_batch_size` (events).
    ///
    /// ```
    /// let (name, buckets) = tiercache::CacheStats::histogram_buckets()
    ///     .find(|(name, _)| *name == "tiercache_bus_batch_size")
    ///     .expect("the batch size is a histogram");
    /// assert_eq!(&buckets[..3], &[1.0, 2.0, 4.0]);
    /// # let _ = name;
    /// ```
    pub fn histogram_buckets() -> impl Iterator<Item = (&'static str, &'static [f64])> {
        HISTOGRAMS.iter().map(|h| (h.name, h.buckets))
    }

    /// The markdown tables of the core's metrics that docs/OPERATIONS.md ("Metrics") holds, rendered
    /// from the declarations the recorder is told: counters, then histograms and gauges.
    ///
    /// ```
    /// assert!(tiercache::CacheStats::metrics_markdown().contains("| `tiercache_l1_hits_total` |"));
    /// ```
    pub fn metrics_markdown() -> String {
        let mut out = header(&["metric", "`CacheStats` field", "meaning"]);
        for c in COUNTERS {
            let name = format!("`{}`", c.name);
            let field = format!("`{}`", c.field.unwrap_or_default());
            out.push_str(&row(&[&name, &field, c.help]));
        }
        out.push('\n');
        out.push_str(&header(&[
            "metric",
            "kind",
            "unit",
            "buckets (upper bounds)",
            "meaning",
        ]));
        for m in HISTOGRAMS.iter().chain(GAUGES).chain([BUILD_INFO]) {
            let name = format!("`{}`", m.name);
            let kind = m.kind.as_str();
            let buckets = show_buckets(m.buckets);
            out.push_str(&row(&[&name, kind, m.unit.as_str(), &buckets, m.help]));
        }
        out
    }
}

impl Recorder {
    /// The node's counters, histograms and gauges, labelled with its `namespace` and, when given,
    /// `node` ([`crate::CacheBuilder::node_label`]).
    pub(crate) fn new(namespace: &str, node_label: Option<&str>) -> Self {
        let mut labels = vec![Label::new("namespace", namespace.to_owned())];
        if let Some(node) = node_label {
            labels.push(Label::new("node", node.to_owned()));
        }
        let histogram = |i: usize| metrics::histogram!(HISTOGRAM_NAMES[i], labels.clone());
        let gauge = |i: usize| metrics::gauge!(GAUGES[i].name, labels.clone());
        Recorder {
            atomics: Box::default(),
            handles: Handles::register(&labels),
            published: parking_lot::Mutex::default(),
            load_seconds: histogram(0),
            l2_read_seconds: histogram(1),
            propagation_seconds: histogram(2),
            batch_size: histogram(3),
            suspect_seconds: histogram(4),
            gauges: [gauge(0), gauge(1), gauge(2), gauge(3), gauge(4)],
        }
    }

    /// Sets the gauges to what the node is now.
    pub(crate) fn state(&self, state: &NodeState) {
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52 are exact in an f64
        let values = [
            state.l1_entries as f64,
            state.l1_bytes as f64,
            state.pending_invalidations as f64,
            flag(state.suspect),
            flag(state.breaker_open),
        ];
        for (gauge, value) in self.gauges.iter().zip(values) {
            gauge.set(value);
        }
    }

    pub(crate) fn load_time(&self, d: Duration) {
        self.load_seconds.record(d.as_secs_f64());
    }

    pub(crate) fn l2_read_time(&self, d: Duration) {
        self.l2_read_seconds.record(d.as_secs_f64());
    }

    pub(crate) fn propagation(&self, d: Duration) {
        self.propagation_seconds.record(d.as_secs_f64());
    }

    pub(crate) fn batch(&self, events: usize) {
        self.batch_size.record(events as f64);
    }

    pub(crate) fn suspect_for(&self, d: Duration) {
        self.suspect_seconds.record(d.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    use super::*;

    /// L1 hits the recorder received since the last call (a snapshot resets debugging counters).
    fn exported_hits(snapshotter: &Snapshotter) -> u64 {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == "tiercache_l1_hits_total")
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => n,
                other => panic!("a counter, not {other:?}"),
            })
            .sum()
    }

    #[test]
    fn the_docs_hold_the_rendered_metrics_tables() {
        let docs = include_str!("../../../docs/OPERATIONS.md");
        let tables = CacheStats::metrics_markdown();
        assert!(
            docs.contains(&tables),
            "docs/OPERATIONS.md must hold the core's metrics tables as rendered:\n{tables}"
        );
    }

    #[test]
    fn every_metric_is_described_with_its_unit_and_every_histogram_has_rising_buckets() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            CacheStats::describe_metrics();
            let _registered = Recorder::new("unit", None);
        });
        let described: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, unit, help, _)| (key.key().name().to_owned(), unit, help))
            .collect();
        let names = COUNTER_NAMES
            .iter()
            .chain(HISTOGRAM_NAMES)
            .chain([&"tiercache_build_info"]);
        for name in names {
            let (_, unit, help) = described
                .iter()
                .find(|(n, ..)| n == name)
                .unwrap_or_else(|| panic!("{name} was not registered"));
            let help = help
                .as_ref()
                .unwrap_or_else(|| panic!("{name} has no description"));
            let unit = unit.unwrap_or_else(|| panic!("{name} has no unit"));
            assert!(
                help.ends_with(&format!(" Unit: {}.", unit.as_str())),
                "{name}: {help}"
            );
        }
        for h in HISTOGRAMS {
            assert!(
                !h.buckets.is_empty() && h.buckets.windows(2).all(|w| w[0] < w[1]),
                "{}: {:?}",
                h.name,
                h.buckets
            );
        }
    }

    #[test]
    fn counts_reach_the_recorder_when_published_never_twice_and_the_rest_on_drop() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let stats = metrics::with_local_recorder(&recorder, || Recorder::new("unit", None));
        stats.l1_hits(3);
        assert_eq!(
            exported_hits(&snapshotter),
            0,
            "a hit does not touch the recorder"
        );
        assert_eq!(stats.snapshot().l1_hits, 3, "but stats() sees it at once");
        stats.publish();
        assert_eq!(exported_hits(&snapshotter), 3);
        stats.publish();
        assert_eq!(
            exported_hits(&snapshotter),
            0,
            "nothing is handed over twice"
        );
        stats.l1_hits(2);
        drop(stats);
        assert_eq!(
            exported_hits(&snapshotter),
            2,
            "what is left goes with the node"
        );
    }
}
