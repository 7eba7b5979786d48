//! L1 hit from async code, each call timed on its own, beside `moka::sync::Cache::get`.
//!
//! `l1_interleaved` divides a phase's wall time by its lookups, from OS threads that `block_on` a
//! loop; criterion (`hit_paths`) does the same in its own way. A service does neither: a request
//! handler is a task on a multi-thread runtime, it awaits `get_or_load` and its latency histogram
//! counts that one call. Here a task spawned on the bench's runtime does the same, reading
//! `Instant::now()` before and after every call, for every variant alike, so each row carries the
//! clock's cost too; the row "two clock reads" times nothing else, and the last column takes it out.
//!
//! Variants, taking turns in 200 ms phases (one untimed round, then eight, each starting one variant
//! later than the one before), every key in L1 and in a `moka::sync::Cache` with moka's defaults
//! (the same keys and 1 KiB values): tiercache `get_or_load` (its loader fails the call if it ever
//! runs), tiercache `get`, and `moka::sync::Cache::get`, the baseline. Working sets of 1, 10,000 and
//! 100,000 keys, read in one scrambled order.
#![allow(clippy::unwrap_used, missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tiercache::{Cache, EntryOptions};
use tiercache_benches::{assert_all_in_l1, node, quantile, runtime, Payload, Table};
use tiercache_testkit::RedisServer;

const ROUNDS: usize = 8;
const PHASE: Duration = Duration::from_millis(200);
const SIZE: usize = 1024;
const SETS: [usize; 3] = [1, 10_000, 100_000];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    GetOrLoad,
    Get,
    /// The baseline.
    MokaSync,
    /// The timing alone: what every other row pays on top of its call.
    Clock,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::GetOrLoad,
        Variant::Get,
        Variant::MokaSync,
        Variant::Clock,
    ];

    fn label(self) -> &'static str {
        match self {
            Variant::GetOrLoad => "tiercache `get_or_load`",
            Variant::Get => "tiercache `get`",
            Variant::MokaSync => "`moka::sync::Cache::get`",
            Variant::Clock => "two clock reads, no call",
        }
    }

    fn slot(self) -> usize {
        Variant::ALL.iter().position(|v| *v == self).unwrap()
    }
}

struct Target {
    cache: Cache,
    moka: moka::sync::Cache<String, Arc<Payload>>,
    opts: EntryOptions,
}

/// Times `$call` once per key of `$keys`, over and over until `$end`: `Instant::now()` before and
/// after, as a handler timing its own call would. A macro rather than a function taking a closure, so
/// no variant's call sits inside a future or closure the others do not have.
macro_rules! timed_calls {
    ($keys:expr, $end:expr, |$key:ident| $call:expr) => {{
        let mut samples = Vec::with_capacity(1 << 21);
        'phase: loop {
            for $key in $keys.iter().map(String::as_str) {
                let started = Instant::now();
                black_box($call);
                let finished = Instant::now();
                samples.push(finished - started);
                if finished >= $end {
                    break 'phase;
                }
            }
        }
        samples
    }};
}

/// One phase of `variant`, run by the task this is spawned as; returns every call's latency.
async fn phase(target: Arc<Target>, variant: Variant, keys: Arc<[String]>) -> Vec<Duration> {
    let (cache, opts, end) = (&target.cache, &target.opts, Instant::now() + PHASE);
    match variant {
        Variant::GetOrLoad => timed_calls!(keys, end, |key| cache
            .get_or_load(key, opts, || async {
                Err::<Payload, _>(std::io::Error::other("every key is in L1"))
            })
            .await
            .unwrap()),
        // `None` would mean the key left L1 and the call went to Redis.
        Variant::Get => timed_calls!(keys, end, |key| cache
            .get::<Payload>(key)
            .await
            .unwrap()
            .unwrap()),
        Variant::MokaSync => timed_calls!(keys, end, |key| target.moka.get(key).unwrap()),
        Variant::Clock => timed_calls!(keys, end, |key| key),
    }
}

/// [`tiercache_benches::interleaved_rounds`], but each round starts one variant later, so no variant
/// always follows the same one. In a fixed order, `get_or_load` (first, after the clock row) read
/// 1.66–1.92× at 10,000 keys in six runs out of six, against 1.19–1.29× where it ran second or
/// alone.
fn rotated_rounds(
    variants: usize,
    mut phase: impl FnMut(usize) -> Vec<Duration>,
) -> Vec<Vec<Duration>> {
    for slot in 0..variants {
        phase(slot);
    }
    let mut samples = vec![Vec::new(); variants];
    for round in 0..ROUNDS {
        for turn in 0..variants {
            let slot = (round + turn) % variants;
            samples[slot].extend(phase(slot));
        }
    }
    samples
}

/// The keys of a working set of `n`, in an order scrambled the same way in every run.
fn scrambled_keys(n: usize) -> Vec<String> {
    let mut keys: Vec<String> = if n == 1 {
        vec!["hot".to_owned()]
    } else {
        (0..n).map(|i| format!("set{n}:{i}")).collect()
    };
    // Fisher–Yates on xorshift64: no dependency, and one fixed order to compare runs by.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..keys.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        keys.swap(i, (state % (i as u64 + 1)) as usize);
    }
    keys
}

/// Puts every key of every set in the node (its L1, and Redis) and in the moka baseline.
async fn fill(target: &Target, sets: &[Arc<[String]>]) {
    let value = Payload::of_size(SIZE);
    let shared = Arc::new(value.clone());
    let keys = sets.iter().flat_map(|keys| keys.iter());
    futures_util::stream::StreamExt::for_each_concurrent(
        futures_util::stream::iter(keys),
        64,
        |key| {
            let (target, value, shared) = (target, &value, &shared);
            async move {
                target
                    .cache
                    .set(key, value.clone(), &target.opts)
                    .await
                    .unwrap();
                target.moka.insert(key.clone(), Arc::clone(shared));
            }
        },
    )
    .await;
}

/// A row of the table: p50 and p99 in ns, and the p50 ratio to the baseline's with and without the
/// clock reads every row pays.
fn row(table: &mut Table, cells: (usize, Variant), samples: &mut [Duration], base: (f64, f64)) {
    let ns = |d: Duration| d.as_nanos() as f64;
    let (p50, p99) = (ns(quantile(samples, 0.5)), ns(quantile(samples, 0.99)));
    let (base_p50, clock_p50) = base;
    let (keys, variant) = cells;
    let bold = if matches!(variant, Variant::MokaSync | Variant::Clock) {
        ""
    } else {
        "**"
    };
    let net = if variant == Variant::Clock {
        "–".to_owned()
    } else {
        format!("{:.2}×", (p50 - clock_p50) / (base_p50 - clock_p50))
    };
    table.line(format!(
        "| {keys} | {} | {p50:.0} ns | {p99:.0} ns | {:.0} | {bold}{:.2}×{bold} | {net} |",
        variant.label(),
        samples.len() as f64 / (PHASE.as_secs_f64() * ROUNDS as f64),
        p50 / base_p50,
    ));
}

fn main() {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let sets: Vec<Arc<[String]>> = SETS.iter().map(|&n| scrambled_keys(n).into()).collect();
    let entries: usize = SETS.iter().sum();
    let target = Arc::new(Target {
        cache: rt.block_on(node(&redis.url(), "l1a")),
        moka: moka::sync::Cache::new(2 * entries as u64),
        opts: EntryOptions::new(Duration::from_hours(1)),
    });
    rt.block_on(fill(&target, &sets));
    assert_all_in_l1(&target.cache, entries as u64);

    let mut table = Table::new("l1_async");
    table.line(
        "| keys | path | p50 | p99 | calls/s | p50 ratio to `moka::sync::Cache::get` | the same, clock reads taken out |",
    );
    table.line("|---|---|---|---|---|---|---|");
    for keys in &sets {
        let hits_before = target.cache.stats().l1_hits;
        let mut tiercache_calls = 0;
        let mut samples = rotated_rounds(Variant::ALL.len(), |slot| {
            let variant = Variant::ALL[slot];
            let task = rt.spawn(phase(target.clone(), variant, keys.clone()));
            let samples = rt.block_on(task).unwrap();
            if matches!(variant, Variant::GetOrLoad | Variant::Get) {
                tiercache_calls += samples.len() as u64;
            }
            samples
        });
        // Every tiercache call of the phases, the untimed ones too, was answered by L1.
        assert_eq!(target.cache.stats().l1_hits - hits_before, tiercache_calls);
        let base = (
            quantile(&mut samples[Variant::MokaSync.slot()], 0.5).as_nanos() as f64,
            quantile(&mut samples[Variant::Clock.slot()], 0.5).as_nanos() as f64,
        );
        for (variant, samples) in Variant::ALL.into_iter().zip(&mut samples) {
            row(&mut table, (keys.len(), variant), samples, base);
        }
    }
    assert_eq!(
        target.cache.stats().loads,
        0,
        "every key was in L1: no load may run"
    );
    table.finish();
}
