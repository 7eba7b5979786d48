//! A dashboard of seven views read in one `fetch_many` call, beside what a service does without it,
//! interleaved (A B C A B C …) so every variant sees the same machine; every call's latency is kept.
//!
//! - All seven in L1 (one node): `fetch_many` against seven `get_or_load` calls one after another
//!   (the baseline: what the dashboard endpoint did before `fetch_many`), and seven
//!   `moka::sync::Cache::get` lookups (the floor: a lookup per view with nothing around it).
//! - L1 cold, all seven in L2: `forget_local` ×7 then `fetch_many`, against seven raw `GET`s
//!   pipelined on one connection and decoded (the baseline: the fewest round trips and the least
//!   work a hand-written cache-aside read of seven keys can do), and seven `get_or_load` calls in
//!   flight together (what a service would write with `join_all`).
//!
//! Values of 1 KiB (a widget view's size), tagged as widget views are; 2 worker threads, one
//! private redis-server.
#![allow(clippy::unwrap_used, missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tiercache::{Cache, EntryOptions};
use tiercache_benches::{
    decode, encode, interleaved_tasks, node, ratio_rows, raw_connection, runtime, store_both,
    Payload, Table,
};
use tiercache_testkit::RedisServer;

const VIEWS: usize = 7;
const SIZE: usize = 1024;
const CONCURRENCY: [usize; 2] = [1, 64];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    MokaGets,
    FetchMany,
    Sequential,
    Concurrent,
    RawPipelined,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::MokaGets => "7 × `moka::sync::Cache::get`",
            Variant::FetchMany => "`fetch_many` of 7",
            Variant::Sequential => "7 × `get_or_load`, one after another",
            Variant::Concurrent => "7 × `get_or_load`, `join_all`",
            Variant::RawPipelined => "7 raw `GET`s pipelined + decode",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    L1,
    L2,
}

struct Target {
    cache: Cache,
    /// The same values in a plain moka cache, under the same keys.
    moka: moka::sync::Cache<String, Arc<Payload>>,
    raw: redis::aio::MultiplexedConnection,
    opts: EntryOptions,
    /// Each task's seven keys, and their raw twins.
    keys: Vec<Vec<String>>,
    raw_keys: Vec<Vec<String>>,
}

/// What the never-called batch loader answers with.
type NoValues = std::future::Ready<Result<Vec<(String, Payload)>, std::io::Error>>;

/// A batch loader that is never called: every key is cached.
fn unused_loader() -> impl Fn(Vec<String>) -> NoValues + Send + Sync + 'static {
    |_keys: Vec<String>| std::future::ready(Ok(Vec::new()))
}

async fn one_call(target: &Target, tier: Tier, variant: Variant, task: usize) {
    let keys = &target.keys[task];
    if tier == Tier::L2 && variant != Variant::RawPipelined {
        for key in keys {
            target.cache.admin().forget_local(key);
        }
    }
    match variant {
        Variant::MokaGets => {
            for key in keys {
                black_box(target.moka.get(key).unwrap());
            }
        }
        Variant::FetchMany => {
            let answers = target
                .cache
                .fetch_many(
                    keys.iter().map(|k| (k.as_str(), &target.opts)),
                    unused_loader(),
                )
                .await;
            for answer in answers {
                black_box(answer.unwrap());
            }
        }
        Variant::Sequential => {
            for key in keys {
                black_box(
                    target
                        .cache
                        .get_or_load(key, &target.opts, || async {
                            Ok::<_, std::io::Error>(Payload::of_size(0))
                        })
                        .await
                        .unwrap(),
                );
            }
        }
        Variant::Concurrent => {
            let calls = keys.iter().map(|key| {
                target.cache.get_or_load(key, &target.opts, || async {
                    Ok::<_, std::io::Error>(Payload::of_size(0))
                })
            });
            for answer in join_all(calls).await {
                black_box(answer.unwrap());
            }
        }
        Variant::RawPipelined => {
            let mut pipe = redis::pipe();
            for key in &target.raw_keys[task] {
                pipe.cmd("GET").arg(key);
            }
            let values: Vec<Vec<u8>> = pipe.query_async(&mut target.raw.clone()).await.unwrap();
            for bytes in values {
                black_box(decode(&bytes));
            }
        }
    }
}

fn main() {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let mut table = Table::new("dashboard");
    table.line(
        "| views cached in | callers | path | p50 | p99 | dashboards/s | p50 ratio to baseline |",
    );
    table.line("|---|---|---|---|---|---|---|");
    for (tier, variants) in [
        (
            Tier::L1,
            vec![Variant::Sequential, Variant::FetchMany, Variant::MokaGets],
        ),
        (
            Tier::L2,
            vec![
                Variant::RawPipelined,
                Variant::FetchMany,
                Variant::Concurrent,
            ],
        ),
    ] {
        for tasks in CONCURRENCY {
            let tier_name = if tier == Tier::L1 { "l1" } else { "l2" };
            let target = rt.block_on(async {
                let cache = node(&redis.url(), &format!("dash-{tier_name}-{tasks}")).await;
                let mut raw = raw_connection(&redis.url()).await;
                let value = Payload::of_size(SIZE);
                let opts = EntryOptions::new(Duration::from_hours(1)).with_tags(["widgets"]);
                let bytes = encode(&value);
                let keys: Vec<Vec<String>> = (0..tasks)
                    .map(|t| (0..VIEWS).map(|v| format!("dash:{t}:{v}")).collect())
                    .collect();
                let moka = moka::sync::Cache::new(10_000);
                let shared = Arc::new(value.clone());
                for key in keys.iter().flatten() {
                    moka.insert(key.clone(), shared.clone());
                }
                let raw_keys: Vec<Vec<String>> = keys
                    .iter()
                    .map(|ks| ks.iter().map(|k| format!("raw:{k}")).collect())
                    .collect();
                for (ks, raws) in keys.iter().zip(&raw_keys) {
                    for (key, raw_key) in ks.iter().zip(raws) {
                        let (value, keys) =
                            ((&value, bytes.as_slice()), (key.as_str(), raw_key.as_str()));
                        store_both(&cache, &mut raw, keys, value, &opts).await;
                    }
                }
                Arc::new(Target {
                    cache,
                    moka,
                    raw,
                    opts,
                    keys,
                    raw_keys,
                })
            });
            let call = move |target: Arc<Target>, variant, task| async move {
                one_call(&target, tier, variant, task).await;
            };
            let mut samples = interleaved_tasks(&rt, &target, (&variants, tasks), call);
            let tier = if tier == Tier::L1 { "L1" } else { "L2 only" };
            let cells = format!("{tier} | {tasks}");
            let rows: Vec<_> = variants
                .iter()
                .map(|v| (cells.as_str(), v.label()))
                .collect();
            // The first variant of each tier is its baseline.
            ratio_rows(&mut table, &rows, 0, &mut samples);
            let stats = target.cache.stats();
            assert_eq!(stats.loads, 0, "every view was cached: no load may run");
        }
    }
    table.finish();
}
