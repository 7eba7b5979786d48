//! Shared pieces of the benchmarks: the payload, a private Redis, nodes, and percentile reporting.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A widget-like value of a chosen encoded size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// A figure.
    pub total_cents: u64,
    /// A label.
    pub label: String,
    /// The series that gives the value its size.
    pub series: Vec<u64>,
}

impl Payload {
    /// A payload whose bincode encoding is close to `bytes`.
    pub fn of_size(bytes: usize) -> Self {
        let label = "total_donations:this_month".to_owned();
        // Varint u64s below 251 take one byte each.
        let n = bytes.saturating_sub(label.len() + 8);
        Payload {
            total_cents: 1_234_567,
            label,
            series: (0..n as u64).map(|i| i % 200).collect(),
        }
    }
}

/// bincode 2 encoding as tiercache's naive baselines use it.
pub fn encode(p: &Payload) -> Vec<u8> {
    bincode::serde::encode_to_vec(p, bincode::config::standard()).unwrap()
}

/// bincode 2 decoding as tiercache's naive baselines use it.
pub fn decode(bytes: &[u8]) -> Payload {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .unwrap()
        .0
}

/// The criterion settings the micro-benchmarks share: short enough for `benches/run.sh` to stay
/// around a quarter of an hour on 2 cores, with 50 samples for a stable median.
pub fn criterion_config() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

/// A multi-threaded runtime sized for the 2-core bench machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A node on `url` (database 1) in `namespace`.
pub async fn node(url: &str, namespace: &str) -> tiercache::Cache {
    tiercache::Cache::builder()
        .redis_url(url)
        .namespace(namespace)
        .build()
        .await
        .unwrap()
}

/// A node built with a Prometheus recorder installed, as most services run it, and that recorder.
/// Handles are taken when a node is built, so the recorder need only be current then.
pub fn metered_node(
    rt: &tokio::runtime::Runtime,
    url: &str,
    namespace: &str,
) -> (
    tiercache::Cache,
    metrics_exporter_prometheus::PrometheusRecorder,
) {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let cache = metrics::with_local_recorder(&recorder, || rt.block_on(node(url, namespace)));
    (cache, recorder)
}

/// Asserts that `cache` holds `entries` entries in L1, so an "L1" row cannot silently measure L2.
pub fn assert_all_in_l1(cache: &tiercache::Cache, entries: u64) {
    // Weighing runs moka's pending bookkeeping, after which the entry count is exact.
    cache.admin().l1_weighed_bytes();
    assert_eq!(
        cache.admin().l1_entry_count(),
        entries,
        "the whole working set is in L1"
    );
}

/// Asserts that every L1 hit of `cache` (a node of `namespace` built with `recorder` installed)
/// reached the recorder: the metered rows only mean something if the hits were counted there.
pub fn assert_every_l1_hit_exported(
    cache: &tiercache::Cache,
    namespace: &str,
    recorder: &metrics_exporter_prometheus::PrometheusRecorder,
) {
    cache.admin().publish_metrics();
    let label = format!("namespace=\"{namespace}\"");
    let exported = recorder
        .handle()
        .render()
        .lines()
        .find(|l| l.starts_with("tiercache_l1_hits_total") && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .unwrap();
    assert_eq!(
        exported,
        cache.stats().l1_hits,
        "every metered hit is exported"
    );
}

/// A node with fleet-wide leases switched off (per-node coalescing only).
pub async fn node_without_locking(url: &str, namespace: &str) -> tiercache::Cache {
    let mut config = node(url, namespace).await.config().clone();
    config.locking_enabled = false;
    tiercache::Cache::builder()
        .config(config)
        .build()
        .await
        .unwrap()
}

/// A raw multiplexed connection to database 1.
pub async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("{url}/1"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Naive cache-aside's miss: `GET` finds nothing, then the value is encoded and stored with
/// [`raw_set_ex`]. Panics if the key was there: the bench would be timing a hit.
pub async fn naive_miss(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    value: &Payload,
    ttl_secs: u64,
) {
    let cached: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(conn).await.unwrap();
    assert!(cached.is_none(), "{key} should be a miss");
    raw_set_ex(conn, key, &encode(value), ttl_secs).await;
}

/// The naive baselines' write: `SET key bytes EX ttl_secs`, as cache-aside code stores a value.
pub async fn raw_set_ex(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    bytes: &[u8],
    ttl_secs: u64,
) {
    let () = redis::cmd("SET")
        .arg(key)
        .arg(bytes)
        .arg("EX")
        .arg(ttl_secs)
        .query_async(conn)
        .await
        .unwrap();
}

/// The naive baselines' invalidation: pipelined `DEL key` + `PUBLISH channel key`; returns whether
/// the key existed.
pub async fn raw_del_publish(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    channel: &str,
) -> bool {
    let (deleted, _receivers): (u64, u64) = redis::pipe()
        .del(key)
        .publish(channel, key)
        .query_async(conn)
        .await
        .unwrap();
    deleted == 1
}

/// Runs `tasks` tasks for `length`, each calling `call(task, n)` (its index and its call count) over
/// and over; returns every call's latency. One phase of an interleaved bench.
pub async fn timed_phase<F, Fut>(tasks: usize, length: Duration, call: F) -> Vec<Duration>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let end = std::time::Instant::now() + length;
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(256);
                let mut n = 0;
                while std::time::Instant::now() < end {
                    let started = std::time::Instant::now();
                    call(task, n).await;
                    samples.push(started.elapsed());
                    n += 1;
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    all
}

/// Stores `value` under `key` through `cache` and its encoding `bytes` under `raw_key` with a plain
/// `SET`: the same entry for tiercache and for a raw baseline to read.
pub async fn store_both(
    cache: &tiercache::Cache,
    raw: &mut redis::aio::MultiplexedConnection,
    (key, raw_key): (&str, &str),
    (value, bytes): (&Payload, &[u8]),
    opts: &tiercache::EntryOptions,
) {
    cache.set(key, value.clone(), opts).await.unwrap();
    let () = redis::cmd("SET")
        .arg(raw_key)
        .arg(bytes)
        .query_async(raw)
        .await
        .unwrap();
}

/// An interleaved measurement: one untimed phase of each of `variants` (connections, scripts and
/// the allocator warm up), then `rounds` rounds of one phase each, in turn (`phase(slot)` runs
/// variant `slot`'s phase and returns its calls' latencies). Returns each variant's latencies.
pub fn interleaved_rounds(
    variants: usize,
    rounds: usize,
    mut phase: impl FnMut(usize) -> Vec<Duration>,
) -> Vec<Vec<Duration>> {
    for slot in 0..variants {
        phase(slot);
    }
    let mut samples = vec![Vec::new(); variants];
    for _ in 0..rounds {
        for (slot, kept) in samples.iter_mut().enumerate() {
            kept.extend(phase(slot));
        }
    }
    samples
}

/// How the benches of calls over the network (`l2_interleaved`, `dashboard`) take turns: phases of
/// 250 ms, long enough for hundreds of round trips even at 1,024 in flight, and six timed rounds.
pub const NETWORK_ROUNDS: usize = 6;
/// See [`NETWORK_ROUNDS`].
pub const NETWORK_PHASE: Duration = Duration::from_millis(250);

/// An interleaved measurement of tasks in flight: `variants` take turns ([`interleaved_rounds`],
/// [`NETWORK_ROUNDS`] rounds of [`NETWORK_PHASE`]), each phase with `tasks` tasks calling
/// `call(target, variant, task)` over and over ([`timed_phase`]). Returns each variant's latencies.
pub fn interleaved_tasks<T, V, F, Fut>(
    rt: &tokio::runtime::Runtime,
    target: &std::sync::Arc<T>,
    (variants, tasks): (&[V], usize),
    call: F,
) -> Vec<Vec<Duration>>
where
    T: Send + Sync + 'static,
    V: Copy + Send + 'static,
    F: Fn(std::sync::Arc<T>, V, usize) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    interleaved_rounds(variants.len(), NETWORK_ROUNDS, |slot| {
        let (target, variant) = (target.clone(), variants[slot]);
        rt.block_on(timed_phase(tasks, NETWORK_PHASE, move |task, _| {
            call(target.clone(), variant, task)
        }))
    })
}

/// The rows of an [`interleaved_tasks`] measurement: `rows[slot]` is variant `slot`'s leading cells
/// and path, and its p50 is given as a ratio to variant `baseline`'s.
pub fn ratio_rows(
    table: &mut Table,
    rows: &[(&str, &str)],
    baseline: usize,
    samples: &mut [Vec<Duration>],
) {
    let seconds = NETWORK_PHASE.as_secs_f64() * NETWORK_ROUNDS as f64;
    let base_p50 = quantile(&mut samples[baseline], 0.5);
    for (slot, (&(cells, path), samples)) in rows.iter().zip(samples).enumerate() {
        ratio_row(
            table,
            (cells, path, slot == baseline),
            samples,
            base_p50,
            seconds,
        );
    }
}

/// One row of an interleaved table: the row's leading cells (`cells`, already `a | b`), the path,
/// p50, p99, calls per second over `seconds`, and p50 as a ratio to `base_p50`, in bold unless the
/// row is the `baseline` itself.
pub fn ratio_row(
    table: &mut Table,
    (cells, path, baseline): (&str, &str, bool),
    samples: &mut [Duration],
    base_p50: Duration,
    seconds: f64,
) {
    let (p50, p99) = (quantile(samples, 0.5), quantile(samples, 0.99));
    let ratio = p50.as_secs_f64() / base_p50.as_secs_f64();
    let bold = if baseline { "" } else { "**" };
    table.line(format!(
        "| {cells} | {path} | {} | {} | {:.0} | {bold}{ratio:.2}×{bold} |",
        micros(p50),
        micros(p99),
        samples.len() as f64 / seconds,
    ));
}

/// The value at quantile `q` (0..=1) of `samples`, sorted in place.
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let idx = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[idx]
}

/// Formats a duration in µs with one decimal.
pub fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// bincode 2 decoding with bincode's own size limit, the allocation guard tiercache used before
/// `decode_guard` (it is checked on every element): shows what that way of being safe costs.
pub fn decode_with_limit(bytes: &[u8]) -> Payload {
    bincode::serde::decode_from_slice(
        bytes,
        bincode::config::standard().with_limit::<{ 512 << 20 }>(),
    )
    .unwrap()
    .0
}

/// A results table that is printed as it grows and saved for `benches/run.sh` when finished.
pub struct Table {
    name: &'static str,
    text: String,
}

impl Table {
    /// An empty table saved as `target/bench-results/<name>.md`.
    pub fn new(name: &'static str) -> Self {
        Table {
            name,
            text: String::new(),
        }
    }

    /// Adds (and prints) one line.
    pub fn line(&mut self, line: impl std::fmt::Display) {
        println!("{line}");
        self.text.push_str(&line.to_string());
        self.text.push('\n');
    }

    /// Saves the table.
    pub fn finish(self) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{}.md", self.name)), self.text).unwrap();
    }
}
