//! The write and miss paths beside the naive Redis code a service would otherwise write, taking turns
//! in short phases, round after round, so the VM's drift falls on both sides alike (criterion's `ops`
//! group measures one function after another, and its ratios for the same code moved by 1.75× to 2.75×
//! between two runs on one day). One call in flight, 1 KiB values, one private redis-server.
//!
//! - miss: `get_or_load` of a key in neither tier against `GET` (nil) + encode + `SET EX`.
//! - set: `Cache::set` against encode + `SET EX`.
//! - invalidate: `Cache::invalidate` of a key just written (the write untimed) against pipelined `DEL`
//!   + `PUBLISH` to one subscriber (tiercache's own node listens on its channel too).
#![allow(clippy::unwrap_used, missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tiercache::{Cache, EntryOptions};
use tiercache_benches::{
    encode, micros, naive_miss, node, quantile, raw_connection, raw_del_publish, raw_set_ex,
    runtime, Payload, Table,
};
use tiercache_testkit::RedisServer;

const TTL_SECS: u64 = 3600;
const RAW_CHANNEL: &str = "raw-invalidations";
const PHASE: Duration = Duration::from_millis(250);
const ROUNDS: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Miss,
    Set,
    Invalidate,
}

impl Path {
    const ALL: [Path; 3] = [Path::Miss, Path::Set, Path::Invalidate];

    fn label(self) -> &'static str {
        match self {
            Path::Miss => "miss: `get_or_load` / `GET` + `SET EX`",
            Path::Set => "`set` / `SET EX`",
            Path::Invalidate => "`invalidate` / `DEL` + `PUBLISH`",
        }
    }
}

struct Target {
    cache: Cache,
    raw: redis::aio::MultiplexedConnection,
    value: Payload,
    opts: EntryOptions,
}

/// One call of `path` on tiercache's side (`ours`) or the baseline's; returns its timed part. `n`
/// makes each miss's key new.
async fn one_call(t: &Target, path: Path, ours: bool, n: u64) -> Duration {
    let mut raw = t.raw.clone();
    match (path, ours) {
        (Path::Miss, true) => {
            // The loader owns what it returns: the copy is the trivial loader's work, as on the
            // baseline's side the encode is.
            let loaded = t.value.clone();
            let started = Instant::now();
            black_box(
                t.cache
                    .get_or_load(&format!("miss:{n}"), &t.opts, move || async move {
                        Ok::<_, std::convert::Infallible>(loaded)
                    })
                    .await
                    .unwrap(),
            );
            started.elapsed()
        }
        (Path::Miss, false) => {
            let key = format!("raw:miss:{n}");
            let started = Instant::now();
            naive_miss(&mut raw, &key, &t.value, TTL_SECS).await;
            started.elapsed()
        }
        (Path::Set, true) => {
            let value = t.value.clone();
            let started = Instant::now();
            t.cache.set("written", value, &t.opts).await.unwrap();
            started.elapsed()
        }
        (Path::Set, false) => {
            let started = Instant::now();
            raw_set_ex(&mut raw, "raw:written", &encode(&t.value), TTL_SECS).await;
            started.elapsed()
        }
        (Path::Invalidate, true) => {
            t.cache
                .set("doomed", t.value.clone(), &t.opts)
                .await
                .unwrap();
            let started = Instant::now();
            t.cache.invalidate("doomed").await.unwrap();
            started.elapsed()
        }
        (Path::Invalidate, false) => {
            raw_set_ex(&mut raw, "raw:doomed", &encode(&t.value), TTL_SECS).await;
            let started = Instant::now();
            let deleted = raw_del_publish(&mut raw, "raw:doomed", RAW_CHANNEL).await;
            let took = started.elapsed();
            assert!(deleted);
            took
        }
    }
}

/// Calls one side of `path` back to back for a phase; returns each call's timed part.
async fn phase(t: &Target, path: Path, ours: bool, next_key: &mut u64) -> Vec<Duration> {
    let end = Instant::now() + PHASE;
    let mut samples = Vec::with_capacity(4096);
    while Instant::now() < end {
        samples.push(one_call(t, path, ours, *next_key).await);
        *next_key += 1;
    }
    samples
}

fn main() {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let (target, subscriber) = rt.block_on(async {
        // The baseline's PUBLISH reaches one subscriber, as tiercache's reaches its own node:
        // publishing to nobody would flatter it.
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.subscribe(RAW_CHANNEL).await.unwrap();
        let mut messages = pubsub.into_on_message();
        let subscriber = tokio::spawn(async move { while messages.next().await.is_some() {} });
        let target = Target {
            cache: node(&url, "ops-interleaved").await,
            raw: raw_connection(&url).await,
            value: Payload::of_size(1024),
            opts: EntryOptions::new(Duration::from_secs(TTL_SECS)),
        };
        (target, subscriber)
    });
    // [path][0 = tiercache, 1 = baseline]
    let mut samples: Vec<[Vec<Duration>; 2]> =
        Path::ALL.iter().map(|_| Default::default()).collect();
    let mut next_key = 0;
    // One untimed round warms connections, scripts and the allocator.
    for round in 0..=ROUNDS {
        for (slot, path) in Path::ALL.into_iter().enumerate() {
            for (side, ours) in [true, false].into_iter().enumerate() {
                let got = rt.block_on(phase(&target, path, ours, &mut next_key));
                if round > 0 {
                    samples[slot][side].extend(got);
                }
            }
        }
    }
    let stats = target.cache.stats();
    assert_eq!(
        stats.loads, stats.misses,
        "every miss loaded once: {stats:?}"
    );
    subscriber.abort();

    let mut table = Table::new("ops_interleaved");
    table.line(
        "| path: tiercache / baseline | tiercache p50 | baseline p50 | p50 ratio | tiercache p99 | baseline p99 | mean ratio | calls (each side) |",
    );
    table.line("|---|---|---|---|---|---|---|---|");
    for (slot, path) in Path::ALL.into_iter().enumerate() {
        let [ours, baseline] = &mut samples[slot];
        let (o50, b50) = (quantile(ours, 0.5), quantile(baseline, 0.5));
        let (o99, b99) = (quantile(ours, 0.99), quantile(baseline, 0.99));
        // The mean carries the tail that a median ignores (criterion's figure is a mean).
        let mean =
            |s: &[Duration]| s.iter().sum::<Duration>().as_secs_f64() / s.len().max(1) as f64;
        table.line(format!(
            "| {} | {} | {} | **{:.2}×** | {} | {} | {:.2}× | {} / {} |",
            path.label(),
            micros(o50),
            micros(b50),
            o50.as_secs_f64() / b50.as_secs_f64(),
            micros(o99),
            micros(b99),
            mean(ours) / mean(baseline),
            ours.len(),
            baseline.len(),
        ));
    }
    table.finish();
}
