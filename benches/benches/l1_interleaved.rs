//! L1 hit beside raw moka lookups, interleaved so all see the same machine.
//!
//! On this VM the second vCPU comes and goes: the same 2-thread raw moka lookup measured 125 ns in
//! one criterion run and 490 ns in the next, depending on whether both threads really ran at once
//! (and bounced the hot entry's cache lines). Criterion times one function after another, so its
//! 2-thread ratios compare different machines. Here the variants take turns in short phases
//! (A B C A B C …), each phase running `threads` OS threads that look up for the phase's length,
//! and the table gives each variant's median phase, so a ratio compares like with like.
//!
//! Variants: tiercache `get` (no recorder), tiercache `get_or_load` on a key in L1 (what a service
//! calls), tiercache `get` on a node built with a Prometheus recorder installed, and raw
//! `moka::future::Cache::get` and `moka::sync::Cache::get` with moka's defaults. The sync lookup is
//! the baseline: it is what a user who wants only an in-process cache would pick, and the fastest
//! lookup moka has.
#![allow(clippy::unwrap_used, missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tiercache::{Cache, EntryOptions};
use tiercache_benches::{
    assert_all_in_l1, assert_every_l1_hit_exported, metered_node, node, runtime, Payload, Table,
};
use tiercache_testkit::RedisServer;

const ROUNDS: usize = 8;
const PHASE: Duration = Duration::from_millis(200);
/// Lookups between two looks at the clock, so reading it costs nothing measurable.
const BATCH: usize = 256;
const LARGE_SET: usize = 100_000;
/// A dashboard's working set: more keys than one hot entry, few enough to stay in the CPU caches.
const MIDDLE_SET: usize = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Tiercache,
    TiercacheGetOrLoad,
    TiercacheMetered,
    MokaFuture,
    /// The baseline; last in [`Variant::ALL`].
    MokaSync,
}

impl Variant {
    const ALL: [Variant; 5] = [
        Variant::Tiercache,
        Variant::TiercacheGetOrLoad,
        Variant::TiercacheMetered,
        Variant::MokaFuture,
        Variant::MokaSync,
    ];

    fn label(self) -> &'static str {
        match self {
            Variant::Tiercache => "tiercache `get`",
            Variant::TiercacheGetOrLoad => "tiercache `get_or_load`",
            Variant::TiercacheMetered => "tiercache `get`, Prometheus recorder",
            Variant::MokaFuture => "`moka::future::Cache::get`",
            Variant::MokaSync => "`moka::sync::Cache::get`",
        }
    }
}

struct Target {
    cache: Cache,
    metered: Cache,
    moka: moka::future::Cache<String, Arc<Payload>>,
    moka_sync: moka::sync::Cache<String, Arc<Payload>>,
}

/// Looks up `keys` (a coprime stride from `start`) until `end`; returns how many lookups it made.
async fn look_up(
    target: &Target,
    variant: Variant,
    keys: &[String],
    opts: &EntryOptions,
    start: usize,
    end: Instant,
) -> u64 {
    let n = keys.len();
    let mut i = start % n;
    let mut done = 0;
    loop {
        for _ in 0..BATCH {
            i = (i + 40_503) % n;
            let key = keys[i].as_str();
            match variant {
                Variant::Tiercache => {
                    black_box(target.cache.get::<Payload>(key).await.unwrap().unwrap());
                }
                Variant::TiercacheGetOrLoad => {
                    black_box(
                        target
                            .cache
                            .get_or_load(key, opts, || async {
                                Err::<Payload, _>(std::io::Error::other("every key is in L1"))
                            })
                            .await
                            .unwrap(),
                    );
                }
                Variant::TiercacheMetered => {
                    black_box(target.metered.get::<Payload>(key).await.unwrap().unwrap());
                }
                Variant::MokaFuture => {
                    black_box(target.moka.get(key).await.unwrap());
                }
                Variant::MokaSync => {
                    black_box(target.moka_sync.get(key).unwrap());
                }
            }
        }
        done += BATCH as u64;
        if Instant::now() >= end {
            return done;
        }
    }
}

/// One phase: `threads` OS threads look up at once; returns wall nanoseconds per lookup.
fn phase(
    rt: &tokio::runtime::Runtime,
    target: &Target,
    variant: Variant,
    keys: &[String],
    opts: &EntryOptions,
    threads: usize,
) -> f64 {
    let start_line = Barrier::new(threads + 1);
    let (started, lookups) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (handle, start_line) = (rt.handle().clone(), &start_line);
                scope.spawn(move || {
                    start_line.wait();
                    let end = Instant::now() + PHASE;
                    handle.block_on(look_up(target, variant, keys, opts, t * 7919, end))
                })
            })
            .collect();
        start_line.wait();
        let started = Instant::now();
        let lookups: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        (started, lookups)
    });
    started.elapsed().as_nanos() as f64 / lookups as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let (metered, prometheus) = metered_node(&rt, &redis.url(), "l1i-metered");
    let target = Target {
        cache: rt.block_on(node(&redis.url(), "l1i")),
        metered,
        moka: moka::future::Cache::new(2 * (LARGE_SET + MIDDLE_SET) as u64),
        moka_sync: moka::sync::Cache::new(2 * (LARGE_SET + MIDDLE_SET) as u64),
    };
    let value = Payload::of_size(1024);
    let plain = EntryOptions::new(Duration::from_hours(1));
    let tagged = plain
        .clone()
        .with_tags((0..10).map(|i| format!("widget-tag:{i}")));
    let key_sets: [(&str, Vec<String>, &EntryOptions); 4] = [
        ("hot", vec!["hot".to_owned()], &plain),
        ("hot, 10 tags", vec!["tagged".to_owned()], &tagged),
        (
            "10k keys",
            (0..MIDDLE_SET).map(|i| format!("panel:{i}")).collect(),
            &plain,
        ),
        (
            "100k keys",
            (0..LARGE_SET).map(|i| format!("widget:{i}")).collect(),
            &plain,
        ),
    ];
    rt.block_on(async {
        for (_, keys, opts) in &key_sets {
            futures_util::stream::StreamExt::for_each_concurrent(
                futures_util::stream::iter(keys),
                64,
                |key| {
                    let (target, value) = (&target, &value);
                    async move {
                        target.cache.set(key, value.clone(), opts).await.unwrap();
                        target.metered.set(key, value.clone(), opts).await.unwrap();
                        target
                            .moka
                            .insert(key.clone(), Arc::new(value.clone()))
                            .await;
                        target
                            .moka_sync
                            .insert(key.clone(), Arc::new(value.clone()));
                    }
                },
            )
            .await;
        }
    });

    let entries = key_sets.iter().map(|(_, keys, _)| keys.len() as u64).sum();
    for node in [&target.cache, &target.metered] {
        assert_all_in_l1(node, entries);
    }

    let mut table = Table::new("l1_interleaved");
    table.line(
        "| keys | threads | path | ns per lookup (median phase) | ratio to `moka::sync::Cache::get` |",
    );
    table.line("|---|---|---|---|---|");
    for (set_name, keys, opts) in &key_sets {
        for threads in [1, 2] {
            let mut per_lookup: Vec<Vec<f64>> = vec![Vec::new(); Variant::ALL.len()];
            // One untimed phase each to fault in the working set.
            for variant in Variant::ALL {
                phase(&rt, &target, variant, keys, opts, threads);
            }
            for _ in 0..ROUNDS {
                for (slot, variant) in Variant::ALL.into_iter().enumerate() {
                    per_lookup[slot].push(phase(&rt, &target, variant, keys, opts, threads));
                }
            }
            let medians: Vec<f64> = per_lookup.iter_mut().map(|v| median(v)).collect();
            let raw = medians[Variant::ALL.len() - 1];
            for (variant, ns) in Variant::ALL.into_iter().zip(&medians) {
                let bold = if matches!(variant, Variant::MokaFuture | Variant::MokaSync) {
                    ""
                } else {
                    "**"
                };
                table.line(format!(
                    "| {set_name} | {threads} | {} | {ns:.0} | {bold}{:.2}×{bold} |",
                    variant.label(),
                    ns / raw
                ));
            }
        }
    }
    table.finish();
    assert_every_l1_hit_exported(&target.metered, "l1i-metered", &prometheus);
}
