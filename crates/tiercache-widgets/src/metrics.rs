//! [`WidgetCacheMetricsService`]: per-widget reads by the tier that answered, response times, lock
//! figures and Redis memory — since start and over the last 1, 5 and 15 minutes, like a load average —
//! and snapshots kept in Redis for trends.
//!
//! Windows come from samples of the cumulative counters: a window's figures are what the counters
//! gained since the newest sample at least that old (or since start, for a younger service; each
//! window says how many seconds it covers). [`crate::WidgetCacheService::with_snapshots`] samples every
//! [`SAMPLE_EVERY`]; every [`WidgetCacheMetricsService::snapshot`] samples too.
//!
//! Metric names (label `widget`): `widget_cache_requests_total{outcome="hit"|"miss"|"error"}`,
//! `widget_cache_hits_total{tier="l1"|"l2"|"stale"}`, `widget_cache_response_seconds`,
//! `widget_cache_history_skipped_total` (no label). Every metric of the widget layer (these, the
//! aggregate queries', the outbox's and the refresh's) is declared once in this module, with its
//! unit, meaning and buckets: [`WidgetCacheMetricsService::describe_metrics`] tells the recorder, and
//! docs/OPERATIONS.md holds the table rendered from it.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tiercache::{show_buckets, Cache, CacheStats, MetricKind, Source};

use crate::clock::{Clock, SystemClock};
use crate::error::WidgetError;
use crate::node_facts::{CoherenceStatus, InvalidationStatus, NodeFacts};
use crate::WidgetType;

/// How many snapshots are kept in Redis: a day at the default one-minute interval.
pub const SNAPSHOTS_KEPT: usize = 1440;

/// How often a service with a snapshot schedule samples the counters, so windows end within this of
/// their nominal length.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Samples closer together than this are merged, so frequent snapshots do not grow the sample ring.
const SAMPLE_SPACING: chrono::Duration = chrono::Duration::seconds(1);

/// The windows, shortest first: their names in snapshots and their lengths.
pub const WINDOWS: [(&str, Duration); 3] = [
    ("last_1m", Duration::from_secs(60)),
    ("last_5m", Duration::from_secs(300)),
    ("last_15m", Duration::from_secs(900)),
];

/// Counters of one widget type.
#[derive(Default)]
struct Counters {
    l1: AtomicU64,
    l2: AtomicU64,
    stale: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    response_micros_total: AtomicU64,
    response_micros_max: AtomicU64,
    /// The slowest response since the last sample (taken to zero by each sample).
    response_micros_max_recent: AtomicU64,
}

/// Cumulative counts of one widget type at a sample.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    l1: u64,
    l2: u64,
    stale: u64,
    misses: u64,
    errors: u64,
    micros_total: u64,
    /// The slowest response: since start in totals, since the previous sample in a sample.
    micros_max: u64,
}

impl Counts {
    fn since(self, base: Counts) -> Counts {
        Counts {
            l1: self.l1.saturating_sub(base.l1),
            l2: self.l2.saturating_sub(base.l2),
            stale: self.stale.saturating_sub(base.stale),
            misses: self.misses.saturating_sub(base.misses),
            errors: self.errors.saturating_sub(base.errors),
            micros_total: self.micros_total.saturating_sub(base.micros_total),
            micros_max: self.micros_max,
        }
    }

    fn add(self, o: Counts) -> Counts {
        Counts {
            l1: self.l1 + o.l1,
            l2: self.l2 + o.l2,
            stale: self.stale + o.stale,
            misses: self.misses + o.misses,
            errors: self.errors + o.errors,
            micros_total: self.micros_total + o.micros_total,
            micros_max: self.micros_max.max(o.micros_max),
        }
    }
}

/// The node's lock counters at a sample.
#[derive(Debug, Clone, Copy, Default)]
struct LockCounts {
    acquired: u64,
    contended: u64,
    failed: u64,
}

impl LockCounts {
    fn of(stats: &CacheStats) -> Self {
        LockCounts {
            acquired: stats.lock_acquired,
            contended: stats.lock_contended,
            failed: stats.lock_failed,
        }
    }
}

/// The counters at one instant.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: DateTime<Utc>,
    widgets: [Counts; 7],
    locks: LockCounts,
}

/// Request figures of widget reads, over a window or since start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestFigures {
    /// Reads (hits + misses + errors).
    pub requests: u64,
    /// Reads answered from the cache: `l1_hits + l2_hits + stale_hits`.
    pub hits: u64,
    /// Answered from this node's L1.
    pub l1_hits: u64,
    /// Answered from Redis (stored earlier, or by another node's load this read waited for).
    pub l2_hits: u64,
    /// Answered with a value past its expiry because the load failed or was too slow (fail-safe).
    pub stale_hits: u64,
    /// Reads that ran the provider on this node (or shared such a load).
    pub misses: u64,
    /// Reads that failed.
    pub errors: u64,
    /// hits / (hits + misses); 1 when there were none.
    pub hit_rate: f64,
    /// l1_hits / (hits + misses); 1 when there were none.
    pub l1_hit_rate: f64,
    /// errors / requests; 0 when there were none.
    pub error_rate: f64,
    /// Mean response time, ms; 0 when there were no reads.
    pub mean_response_ms: f64,
    /// Slowest response, ms.
    pub max_response_ms: f64,
}

/// The request figures of one widget type (the same shape as the figures of all of them).
pub type WidgetFigures = RequestFigures;

fn rate(part: u64, whole: u64, when_none: f64) -> f64 {
    if whole == 0 {
        when_none
    } else {
        part as f64 / whole as f64
    }
}

impl RequestFigures {
    fn of(c: Counts) -> Self {
        let hits = c.l1 + c.l2 + c.stale;
        let requests = hits + c.misses + c.errors;
        RequestFigures {
            requests,
            hits,
            l1_hits: c.l1,
            l2_hits: c.l2,
            stale_hits: c.stale,
            misses: c.misses,
            errors: c.errors,
            hit_rate: rate(hits, hits + c.misses, 1.0),
            l1_hit_rate: rate(c.l1, hits + c.misses, 1.0),
            error_rate: rate(c.errors, requests, 0.0),
            mean_response_ms: rate(c.micros_total, requests, 0.0) / 1000.0,
            max_response_ms: c.micros_max as f64 / 1000.0,
        }
    }
}

impl RequestFigures {
    /// The figures of several nodes' reads taken as one: counts added, rates and the mean response
    /// recomputed from the sums, the slowest response the slowest of all.
    pub fn combined<'a>(all: impl IntoIterator<Item = &'a RequestFigures>) -> RequestFigures {
        let mut c = Counts::default();
        let mut micros_total = 0.0;
        for f in all {
            c = c.add(Counts {
                l1: f.l1_hits,
                l2: f.l2_hits,
                stale: f.stale_hits,
                misses: f.misses,
                errors: f.errors,
                micros_total: 0,
                micros_max: (f.max_response_ms * 1000.0).round() as u64,
            });
            micros_total += f.mean_response_ms * 1000.0 * f.requests as f64;
        }
        c.micros_total = micros_total.round() as u64;
        RequestFigures::of(c)
    }
}

/// Load leases and named locks of the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockFigures {
    /// Leases and locks taken.
    pub acquired: u64,
    /// Calls that found the lease held by another node and waited for its load (healthy).
    pub contended: u64,
    /// Calls that did not get what they waited for: a lock that timed out, a lease wait that gave
    /// up, a Redis error.
    pub failed: u64,
    /// failed / (acquired + contended + failed); 0 when there were none. Contention is not failure.
    pub failure_rate: f64,
}

impl LockFigures {
    fn of(l: LockCounts) -> Self {
        LockFigures {
            acquired: l.acquired,
            contended: l.contended,
            failed: l.failed,
            failure_rate: rate(l.failed, l.acquired + l.contended + l.failed, 0.0),
        }
    }
}

impl LockFigures {
    /// Several nodes' lock figures taken as one: counts added, the failure rate recomputed.
    pub fn combined<'a>(all: impl IntoIterator<Item = &'a LockFigures>) -> LockFigures {
        let sum = all
            .into_iter()
            .fold(LockCounts::default(), |s, l| LockCounts {
                acquired: s.acquired + l.acquired,
                contended: s.contended + l.contended,
                failed: s.failed + l.failed,
            });
        LockFigures::of(sum)
    }
}

/// Everything measured over one span of time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// The seconds the figures cover: the window's length, or less for a service younger than it.
    pub seconds: f64,
    /// All widget reads.
    pub requests: RequestFigures,
    /// The same per widget type (snake_case name); every type is listed.
    pub widgets: BTreeMap<String, RequestFigures>,
    /// The node's leases and locks.
    pub locks: LockFigures,
}

impl Figures {
    fn of(seconds: f64, widgets: &[Counts; 7], locks: LockCounts) -> Self {
        let all = widgets.iter().fold(Counts::default(), |a, c| a.add(*c));
        Figures {
            seconds,
            requests: RequestFigures::of(all),
            widgets: WidgetType::ALL
                .iter()
                .zip(widgets)
                .map(|(w, c)| (w.to_string(), RequestFigures::of(*c)))
                .collect(),
            locks: LockFigures::of(locks),
        }
    }
}

impl Figures {
    /// Several nodes' figures over the same window taken as one: reads and locks added per widget and
    /// in all; `seconds` is the longest any of them covers.
    pub fn combined(all: &[&Figures]) -> Figures {
        let mut names: Vec<&String> = all.iter().flat_map(|f| f.widgets.keys()).collect();
        names.sort();
        names.dedup();
        Figures {
            seconds: all.iter().map(|f| f.seconds).fold(0.0, f64::max),
            requests: RequestFigures::combined(all.iter().map(|f| &f.requests)),
            widgets: names
                .into_iter()
                .map(|name| {
                    let figures =
                        RequestFigures::combined(all.iter().filter_map(|f| f.widgets.get(name)));
                    (name.clone(), figures)
                })
                .collect(),
            locks: LockFigures::combined(all.iter().map(|f| &f.locks)),
        }
    }
}

/// Redis memory and keyspace figures from `INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisFigures {
    /// `used_memory`, bytes.
    pub used_memory: u64,
    /// `maxmemory`, bytes (0 = unlimited).
    pub maxmemory: u64,
    /// `evicted_keys`.
    pub evicted_keys: u64,
    /// `keyspace_hits`.
    pub keyspace_hits: u64,
    /// `keyspace_misses`.
    pub keyspace_misses: u64,
}

/// The figures at one moment: over the last 1, 5 and 15 minutes and since start.
///
/// Health and alerts judge [`MetricsSnapshot::judged`], the last minute: they see a bad minute at once
/// and forget it a minute after it ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Unix seconds.
    pub taken_at: i64,
    /// The last minute.
    pub last_1m: Figures,
    /// The last five minutes.
    pub last_5m: Figures,
    /// The last fifteen minutes.
    pub last_15m: Figures,
    /// Since the metrics service started.
    pub total: Figures,
    /// Redis, when it could be read.
    pub redis: Option<RedisFigures>,
    /// The node that took the snapshot, as 16 hex digits; empty in snapshots stored before nodes
    /// said who they are. Nodes of one namespace share one history: this tells them apart.
    #[serde(default)]
    pub node_id: String,
    /// Invalidations the node sent and received since it was built.
    #[serde(default)]
    pub invalidations: InvalidationStatus,
    /// Whether the node may have missed invalidations, and how it recovered.
    #[serde(default)]
    pub coherence: CoherenceStatus,
}

impl MetricsSnapshot {
    /// The name of the window health and alerts judge.
    pub const JUDGED: &'static str = WINDOWS[0].0;

    /// The figures health and alerts judge: the last minute.
    pub fn judged(&self) -> &Figures {
        &self.last_1m
    }

    /// Several nodes' snapshots taken as the snapshot of one fleet: each window's figures added
    /// ([`Figures::combined`]), invalidations and recoveries added, suspect or cut off when any node
    /// is, the newest time and Redis figures. Its `node_id` is empty: it is no node's.
    ///
    /// ```
    /// use tiercache_widgets::{MetricsSnapshot, RequestFigures};
    /// let mut a = MetricsSnapshot::default();
    /// a.last_1m.requests = RequestFigures { requests: 10, hits: 9, l1_hits: 9, misses: 1, ..Default::default() };
    /// let fleet = MetricsSnapshot::combined(&[a.clone(), a]);
    /// assert_eq!(fleet.last_1m.requests.requests, 20);
    /// assert!((fleet.last_1m.requests.hit_rate - 0.9).abs() < 1e-9);
    /// ```
    pub fn combined(snapshots: &[MetricsSnapshot]) -> MetricsSnapshot {
        let window = |pick: fn(&MetricsSnapshot) -> &Figures| {
            Figures::combined(&snapshots.iter().map(pick).collect::<Vec<_>>())
        };
        let newest = snapshots.iter().max_by_key(|s| s.taken_at);
        let sum = |pick: fn(&MetricsSnapshot) -> u64| snapshots.iter().map(pick).sum::<u64>();
        MetricsSnapshot {
            taken_at: newest.map_or(0, |s| s.taken_at),
            last_1m: window(|s| &s.last_1m),
            last_5m: window(|s| &s.last_5m),
            last_15m: window(|s| &s.last_15m),
            total: window(|s| &s.total),
            redis: newest.and_then(|s| s.redis.clone()),
            node_id: String::new(),
            invalidations: InvalidationStatus {
                sent: sum(|s| s.invalidations.sent),
                received: sum(|s| s.invalidations.received),
            },
            coherence: CoherenceStatus {
                gaps_detected: sum(|s| s.coherence.gaps_detected),
                replays: sum(|s| s.coherence.replays),
                l1_drops: sum(|s| s.coherence.l1_drops),
                suspect: snapshots.iter().any(|s| s.coherence.suspect),
                redis_unavailable: snapshots.iter().any(|s| s.coherence.redis_unavailable),
                pending_invalidations: snapshots
                    .iter()
                    .map(|s| s.coherence.pending_invalidations)
                    .sum(),
            },
        }
    }
}

/// The newest `n` stored snapshots and how many stored items could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Readable snapshots, newest first.
    pub snapshots: Vec<MetricsSnapshot>,
    /// Items skipped because they were not snapshots (bad bytes, another format).
    pub skipped: usize,
}

struct Shared {
    counters: [Counters; 7],
    samples: Mutex<VecDeque<Sample>>,
    clock: Arc<dyn Clock>,
    started: DateTime<Utc>,
    history_skipped: AtomicU64,
}

/// Collects widget metrics for one cache node. Cheap to clone; clones share the counters.
#[derive(Clone)]
pub struct WidgetCacheMetricsService {
    shared: Arc<Shared>,
    /// Where Redis `INFO` comes from and snapshots are kept ([`WidgetCacheMetricsService::for_cache`]):
    /// the node itself, so metrics go through the core's one Redis layer (its breaker, timeouts, key
    /// space and database) rather than a client of their own. `None`: counters only.
    cache: Option<Cache>,
}

/// The record list of a namespace that holds its metrics snapshots ([`tiercache::Admin::push_record`]).
pub const SNAPSHOT_RECORDS: &str = "metrics";

impl std::fmt::Debug for WidgetCacheMetricsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let namespace = self.cache.as_ref().map(|c| &c.config().namespace);
        f.debug_struct("WidgetCacheMetricsService")
            .field("namespace", &namespace)
            .finish_non_exhaustive()
    }
}

fn index(widget: WidgetType) -> usize {
    WidgetType::ALL
        .iter()
        .position(|w| *w == widget)
        .unwrap_or(0)
}

fn shared(clock: Arc<dyn Clock>) -> Arc<Shared> {
    Arc::new(Shared {
        counters: Default::default(),
        samples: Mutex::default(),
        started: clock.now(),
        clock,
        history_skipped: AtomicU64::new(0),
    })
}

impl WidgetCacheMetricsService {
    /// Counters only (no Redis figures, no stored snapshots).
    pub fn in_memory() -> Self {
        WidgetCacheMetricsService {
            shared: shared(Arc::new(SystemClock)),
            cache: None,
        }
    }

    /// Counters plus Redis `INFO` and snapshots, both through `cache` (the core's one Redis layer):
    /// snapshots go to the namespace's record list [`SNAPSHOT_RECORDS`] in the cache's database,
    /// where the ops CLI (`tiercache cache-status`) reads every node's newest one. The service holds a
    /// clone of `cache`, so the node runs as long as the service or one of its clones does.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) {
    /// let metrics = tiercache_widgets::WidgetCacheMetricsService::for_cache(&cache);
    /// # drop(metrics); }
    /// ```
    pub fn for_cache(cache: &Cache) -> Self {
        WidgetCacheMetricsService {
            shared: shared(Arc::new(SystemClock)),
            cache: Some(cache.clone()),
        }
    }

    /// Measures windows and stamps snapshots with `clock` instead of the system clock; counting
    /// starts afresh.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.shared = shared(Arc::new(clock));
        self
    }

    /// Records one widget read: the tier that answered, or `None` when it failed.
    pub fn record(&self, widget: WidgetType, source: Option<Source>, elapsed: Duration) {
        let c = &self.shared.counters[index(widget)];
        let (counter, outcome, tier) = match source {
            None => (&c.errors, "error", None),
            Some(Source::L1) => (&c.l1, "hit", Some("l1")),
            Some(Source::L2) => (&c.l2, "hit", Some("l2")),
            Some(Source::Stale) => (&c.stale, "hit", Some("stale")),
            Some(_) => (&c.misses, "miss", None),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        c.response_micros_total.fetch_add(micros, Ordering::Relaxed);
        c.response_micros_max.fetch_max(micros, Ordering::Relaxed);
        c.response_micros_max_recent
            .fetch_max(micros, Ordering::Relaxed);
        metrics::counter!("widget_cache_requests_total", "widget" => widget.as_str(), "outcome" => outcome).increment(1);
        if let Some(tier) = tier {
            metrics::counter!("widget_cache_hits_total", "widget" => widget.as_str(), "tier" => tier).increment(1);
        }
        metrics::histogram!("widget_cache_response_seconds", "widget" => widget.as_str())
            .record(elapsed.as_secs_f64());
    }

    fn totals(&self) -> [Counts; 7] {
        self.shared.counters.each_ref().map(|c| Counts {
            l1: c.l1.load(Ordering::Relaxed),
            l2: c.l2.load(Ordering::Relaxed),
            stale: c.stale.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            micros_total: c.response_micros_total.load(Ordering::Relaxed),
            micros_max: c.response_micros_max.load(Ordering::Relaxed),
        })
    }

    /// Samples the counters now (the windows are measured between samples). A service with a snapshot
    /// schedule calls this every [`SAMPLE_EVERY`]; call it yourself when you schedule snapshots.
    pub fn sample(&self, cache: &Cache) {
        self.take_sample(&cache.stats());
    }

    fn take_sample(&self, stats: &CacheStats) -> Sample {
        let at = self.shared.clock.now();
        let mut widgets = self.totals();
        for (counts, c) in widgets.iter_mut().zip(&self.shared.counters) {
            counts.micros_max = c.response_micros_max_recent.swap(0, Ordering::Relaxed);
        }
        let sample = Sample {
            at,
            widgets,
            locks: LockCounts::of(stats),
        };
        let mut samples = self.shared.samples.lock();
        match samples.back_mut() {
            Some(last) if (at - last.at) < SAMPLE_SPACING && at >= last.at => {
                let recent_max = last.widgets.map(|c| c.micros_max);
                *last = sample;
                for (c, max) in last.widgets.iter_mut().zip(recent_max) {
                    c.micros_max = c.micros_max.max(max);
                }
            }
            _ => samples.push_back(sample),
        }
        // Keep the newest sample at least as old as the longest window: it is that window's base.
        let longest = chrono::Duration::from_std(WINDOWS[2].1).unwrap_or_default();
        while samples.len() > 2 && samples[1].at <= at - longest {
            samples.pop_front();
        }
        sample
    }

    /// The figures of one window ending at `now`, with `current` the sample just taken.
    fn window(&self, samples: &VecDeque<Sample>, length: Duration, current: &Sample) -> Figures {
        let now = current.at;
        let from = now - chrono::Duration::from_std(length).unwrap_or_default();
        let base = samples.iter().rev().find(|s| s.at <= from);
        let (base_at, base_widgets, base_locks) = match base {
            Some(b) => (b.at, b.widgets, b.locks),
            None => (
                self.shared.started,
                [Counts::default(); 7],
                LockCounts::default(),
            ),
        };
        let mut widgets = [Counts::default(); 7];
        for (i, w) in widgets.iter_mut().enumerate() {
            *w = current.widgets[i].since(base_widgets[i]);
            w.micros_max = samples
                .iter()
                .filter(|s| s.at > base_at)
                .map(|s| s.widgets[i].micros_max)
                .max()
                .unwrap_or(0);
        }
        let locks = LockCounts {
            acquired: current.locks.acquired.saturating_sub(base_locks.acquired),
            contended: current.locks.contended.saturating_sub(base_locks.contended),
            failed: current.locks.failed.saturating_sub(base_locks.failed),
        };
        let seconds = (now - base_at).num_milliseconds().max(0) as f64 / 1000.0;
        Figures::of(seconds, &widgets, locks)
    }

    /// The figures now, with the cache's lock counters and (if configured) Redis `INFO`.
    pub async fn snapshot(&self, cache: &Cache) -> MetricsSnapshot {
        let stats = cache.stats();
        let current = self.take_sample(&stats);
        let (last_1m, last_5m, last_15m) = {
            let samples = self.shared.samples.lock();
            (
                self.window(&samples, WINDOWS[0].1, &current),
                self.window(&samples, WINDOWS[1].1, &current),
                self.window(&samples, WINDOWS[2].1, &current),
            )
        };
        let since_start =
            (current.at - self.shared.started).num_milliseconds().max(0) as f64 / 1000.0;
        MetricsSnapshot {
            taken_at: current.at.timestamp(),
            last_1m,
            last_5m,
            last_15m,
            total: Figures::of(since_start, &self.totals(), LockCounts::of(&stats)),
            redis: self.redis_figures().await,
            node_id: format!("{:016x}", cache.admin().node_id()),
            invalidations: InvalidationStatus::of(&stats),
            coherence: CoherenceStatus::of(&stats, &NodeFacts::of(cache)),
        }
    }

    /// Redis figures through the node; `None` for counters only, or when Redis does not answer (the
    /// breaker is open, a timeout): a snapshot says it could not read them rather than failing.
    async fn redis_figures(&self) -> Option<RedisFigures> {
        let info = self.cache.as_ref()?.admin().server_info().await.ok()?;
        // Prometheus alerts on Redis memory from these, read as often as snapshots are taken.
        metrics::gauge!("widget_redis_used_memory_bytes").set(info.used_memory as f64);
        metrics::gauge!("widget_redis_maxmemory_bytes").set(info.maxmemory as f64);
        Some(RedisFigures {
            used_memory: info.used_memory,
            maxmemory: info.maxmemory,
            evicted_keys: info.evicted_keys,
            keyspace_hits: info.keyspace_hits,
            keyspace_misses: info.keyspace_misses,
        })
    }

    /// Stores a snapshot in Redis (newest first, capped at [`SNAPSHOTS_KEPT`]). A service with a
    /// snapshot schedule ([`crate::WidgetCacheService::with_snapshots`]) does this by itself.
    pub async fn record_snapshot(&self, snapshot: &MetricsSnapshot) -> Result<(), WidgetError> {
        let Some(cache) = &self.cache else {
            // Counters only: there is nowhere to keep it.
            return Ok(());
        };
        let json = serde_json::to_string(snapshot).map_err(|e| WidgetError::Task(e.to_string()))?;
        cache
            .admin()
            .push_record(SNAPSHOT_RECORDS, json.as_bytes(), SNAPSHOTS_KEPT)
            .await?;
        Ok(())
    }

    /// The newest `n` stored snapshots, newest first. Items that are not snapshots (bad bytes,
    /// another format) are skipped and counted ([`WidgetCacheMetricsService::history_skipped`]).
    pub async fn history(&self, n: usize) -> Result<Vec<MetricsSnapshot>, WidgetError> {
        Ok(self.history_with_skipped(n).await?.snapshots)
    }

    /// [`WidgetCacheMetricsService::history`] that also says how many items it skipped.
    pub async fn history_with_skipped(&self, n: usize) -> Result<History, WidgetError> {
        let Some(cache) = &self.cache else {
            return Ok(History::default());
        };
        // Bytes, not strings: one item that is not UTF-8 must not fail the whole read.
        let raw: Vec<Vec<u8>> = cache.admin().records(SNAPSHOT_RECORDS, n).await?;
        let total = raw.len();
        let snapshots: Vec<MetricsSnapshot> = raw
            .iter()
            .filter_map(|item| serde_json::from_slice(item).ok())
            .collect();
        let skipped = total - snapshots.len();
        if skipped > 0 {
            self.shared
                .history_skipped
                .fetch_add(skipped as u64, Ordering::Relaxed);
            metrics::counter!("widget_cache_history_skipped_total").increment(skipped as u64);
            let namespace = &cache.config().namespace;
            tracing::warn!(%namespace, list = SNAPSHOT_RECORDS, skipped, "skipped unreadable metrics snapshots");
        }
        Ok(History { snapshots, skipped })
    }

    /// History items skipped as unreadable since this service started.
    pub fn history_skipped(&self) -> u64 {
        self.shared.history_skipped.load(Ordering::Relaxed)
    }
}

/// One metric of the widget layer: what the recorder is told and what the docs' table says.
struct Described {
    name: &'static str,
    kind: MetricKind,
    unit: metrics::Unit,
    /// The labels it carries, for the docs.
    labels: &'static str,
    help: &'static str,
    /// A histogram's bucket upper bounds, in `unit`; empty for the others.
    buckets: &'static [f64],
}

/// Widget reads and aggregate queries: 50 µs (an L1 hit) to 10 s (a stuck query).
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

const fn counter(name: &'static str, labels: &'static str, help: &'static str) -> Described {
    Described {
        name,
        kind: MetricKind::Counter,
        unit: metrics::Unit::Count,
        labels,
        help,
        buckets: &[],
    }
}

/// Every metric the widget layer records, wherever it records it.
const METRICS: &[Described] = &[
    counter(
        "widget_cache_requests_total",
        "`widget`, `outcome`",
        "Widget reads by type and outcome: `hit` (answered from the cache), `miss` (computed on this node, or a load of it shared) or `error`.",
    ),
    counter(
        "widget_cache_hits_total",
        "`widget`, `tier`",
        "Widget reads answered from the cache, by type and tier: `l1`, `l2` or `stale` (past expiry, because the load failed or was too slow).",
    ),
    Described {
        name: "widget_cache_response_seconds",
        kind: MetricKind::Histogram,
        unit: metrics::Unit::Seconds,
        labels: "`widget`",
        help: "Time to answer a widget read, by type, whichever tier or load answered it.",
        buckets: LATENCY_BUCKETS,
    },
    counter(
        "widget_cache_history_skipped_total",
        "—",
        "Metrics snapshots of the namespace's history that could not be read (another version's, or damaged) and were skipped.",
    ),
    counter(
        "widget_data_queries_total",
        "`widget`",
        "Aggregate queries run against SQLite, by widget type: the reads the cache did not save.",
    ),
    Described {
        name: "widget_data_query_seconds",
        kind: MetricKind::Histogram,
        unit: metrics::Unit::Seconds,
        labels: "`widget`",
        help: "Time of one aggregate query, by widget type.",
        buckets: LATENCY_BUCKETS,
    },
    counter(
        "widget_outbox_dispatched_total",
        "—",
        "Committed changes whose invalidation reached Redis.",
    ),
    counter(
        "widget_outbox_failed_total",
        "—",
        "Tries to send committed changes' invalidation that did not reach Redis, per change (each is retried with backoff).",
    ),
    Described {
        name: "widget_outbox_delay_seconds",
        kind: MetricKind::Histogram,
        unit: metrics::Unit::Seconds,
        labels: "—",
        help: "A change's commit to its invalidation reaching Redis.",
        // Milliseconds when Redis answers; minutes while the outbox retries through an outage.
        buckets: &[
            0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            60.0, 300.0,
        ],
    },
    Described {
        name: "widget_redis_used_memory_bytes",
        kind: MetricKind::Gauge,
        unit: metrics::Unit::Bytes,
        labels: "—",
        help: "Redis's used_memory, as the last metrics snapshot read it (INFO memory).",
        buckets: &[],
    },
    Described {
        name: "widget_redis_maxmemory_bytes",
        kind: MetricKind::Gauge,
        unit: metrics::Unit::Bytes,
        labels: "—",
        help: "Redis's maxmemory (0: no limit), as the last metrics snapshot read it.",
        buckets: &[],
    },
    Described {
        name: "widget_outbox_backlog",
        kind: MetricKind::Gauge,
        unit: metrics::Unit::Count,
        labels: "—",
        help: "Committed changes whose invalidation has not reached Redis yet, as last polled.",
        buckets: &[],
    },
    counter(
        "widget_refresh_caught_up_total",
        "—",
        "Views in use brought forward over new donations without a recompute.",
    ),
    counter(
        "widget_refresh_recomputed_total",
        "—",
        "Views in use a change's refresh computed again (no answer of theirs kept to bring forward).",
    ),
    counter(
        "widget_refresh_lookups_total",
        "—",
        "Point lookups the catch-ups read (one donor's or employee's rows, one campaign's total), never an aggregate.",
    ),
    counter(
        "widget_refresh_views_total",
        "—",
        "Views a change's refresh stored on every node, with its invalidation or reloaded in the background after it.",
    ),
    counter(
        "widget_refresh_kept_total",
        "—",
        "Views in use stored again before they expire, with no reader asking.",
    ),
    counter(
        "widget_refresh_failed_total",
        "—",
        "Views a refresh could not bring forward or store: only invalidated, their next readers load them.",
    ),
];

impl WidgetCacheMetricsService {
    /// Tells the installed [`metrics`] recorder what every metric of the widget layer means and in
    /// which unit (a Prometheus exporter prints it as `# HELP`). Call it once, after installing the
    /// recorder, beside [`CacheStats::describe_metrics`].
    ///
    /// ```
    /// // With no recorder installed, the descriptions go nowhere: nothing fails.
    /// tiercache_widgets::WidgetCacheMetricsService::describe_metrics();
    /// ```
    pub fn describe_metrics() {
        for m in METRICS {
            m.kind.describe(m.name, m.unit, m.help);
        }
    }

    /// Each histogram's name and bucket upper bounds (seconds), for a recorder that needs them
    /// before the first value (`metrics-exporter-prometheus`: `set_buckets_for_metric`).
    ///
    /// ```
    /// use tiercache_widgets::WidgetCacheMetricsService;
    ///
    /// assert!(WidgetCacheMetricsService::histogram_buckets()
    ///     .any(|(name, _)| name == "widget_cache_response_seconds"));
    /// ```
    pub fn histogram_buckets() -> impl Iterator<Item = (&'static str, &'static [f64])> {
        METRICS
            .iter()
            .filter(|m| m.kind == MetricKind::Histogram)
            .map(|m| (m.name, m.buckets))
    }

    /// The markdown table of the widget layer's metrics that docs/OPERATIONS.md holds, rendered
    /// from the declarations the recorder is told.
    ///
    /// ```
    /// use tiercache_widgets::WidgetCacheMetricsService;
    ///
    /// assert!(WidgetCacheMetricsService::metrics_markdown().contains("| `widget_outbox_backlog` |"));
    /// ```
    pub fn metrics_markdown() -> String {
        let mut out = String::from(
            "| metric | kind | unit | labels | buckets (upper bounds) | meaning |\n|---|---|---|---|---|---|\n",
        );
        for m in METRICS {
            let kind = m.kind.as_str();
            let buckets = show_buckets(m.buckets);
            let _ = writeln!(
                out,
                "| `{}` | {kind} | {} | {} | {buckets} | {} |",
                m.name,
                m.unit.as_str(),
                m.labels,
                m.help
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_hold_the_rendered_metrics_table() {
        let docs = include_str!("../../../docs/OPERATIONS.md");
        let table = WidgetCacheMetricsService::metrics_markdown();
        assert!(
            docs.contains(&table),
            "docs/OPERATIONS.md must hold the widget layer's metrics table as rendered:\n{table}"
        );
    }

    #[test]
    fn every_histogram_has_rising_buckets() {
        for m in METRICS {
            assert_eq!(
                m.kind == MetricKind::Histogram,
                !m.buckets.is_empty(),
                "{}",
                m.name
            );
            assert!(m.buckets.windows(2).all(|w| w[0] < w[1]), "{}", m.name);
        }
    }

    #[test]
    fn figures_split_hits_by_tier_and_rate_locks_by_failure_only() {
        let counts = Counts {
            l1: 6,
            l2: 2,
            stale: 1,
            misses: 1,
            errors: 2,
            micros_total: 24_000,
            micros_max: 9_000,
        };
        let f = RequestFigures::of(counts);
        assert_eq!((f.requests, f.hits), (12, 9));
        assert!((f.hit_rate - 0.9).abs() < 1e-9);
        assert!((f.l1_hit_rate - 0.6).abs() < 1e-9);
        assert!((f.mean_response_ms - 2.0).abs() < 1e-9);
        assert!((f.max_response_ms - 9.0).abs() < 1e-9);
        let locks = LockFigures::of(LockCounts {
            acquired: 10,
            contended: 90,
            failed: 0,
        });
        assert!(
            locks.failure_rate.abs() < f64::EPSILON,
            "contention is healthy"
        );
        let locks = LockFigures::of(LockCounts {
            acquired: 2,
            contended: 1,
            failed: 1,
        });
        assert!((locks.failure_rate - 0.25).abs() < 1e-9);
    }
}
