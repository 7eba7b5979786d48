//! L2 hit (L1 cold) beside raw Redis `GET` + decode, interleaved so both see the same machine.
//!
//! Criterion measures one function after another; on a shared VM the loopback round trip drifts by
//! tens of percent between them, which swamps a 1.3× target. Here the variants take turns in short
//! phases (A B C D A B C D …), each phase with `concurrency` tasks in flight on their own keys, and
//! every call's latency is kept, so p50/p99 and the ratios compare like with like.
//!
//! Variants, all on one private redis-server, 2 worker threads:
//! - `tiercache get`: `forget_local` + `Cache::get` (one `GET` in entry layout 2, the entry's tag vouched by the node).
//! - `tiercache get_or_load`: `forget_local` + `get_or_load` naming the entry's tag (the same read;
//!   the loader never runs).
//! - `raw GET + decode`: naive cache-aside's hit.
//! - `raw GET + guarded decode`: the same with bincode's own size limit, which tiercache used before
//!   its `decode_guard`.
#![allow(clippy::unwrap_used, missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use tiercache::{Cache, EntryOptions};
use tiercache_benches::{
    decode, decode_with_limit, encode, interleaved_tasks, node, ratio_rows, raw_connection,
    runtime, store_both, Payload, Table,
};
use tiercache_testkit::RedisServer;

const SIZES: [usize; 3] = [100, 1024, 64 * 1024];
const CONCURRENCY: [usize; 3] = [1, 64, 1024];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    TiercacheGet,
    TiercacheGetOrLoad,
    RawGet,
    RawGetGuarded,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::TiercacheGet,
        Variant::TiercacheGetOrLoad,
        Variant::RawGet,
        Variant::RawGetGuarded,
    ];

    fn label(self) -> &'static str {
        match self {
            Variant::TiercacheGet => "tiercache `get`",
            Variant::TiercacheGetOrLoad => "tiercache `get_or_load`",
            Variant::RawGet => "raw `GET` + decode",
            Variant::RawGetGuarded => "raw `GET` + guarded decode",
        }
    }
}

struct Target {
    cache: Cache,
    raw: redis::aio::MultiplexedConnection,
    opts: EntryOptions,
    /// Shared, so building the loader costs an `Arc` clone: a loader that never runs must not charge
    /// a copy of the value (64 KiB in the largest rows) to tiercache's side.
    value: Arc<Payload>,
}

async fn one_call(target: &Target, variant: Variant, i: usize) {
    let key = format!("k{i}");
    match variant {
        Variant::TiercacheGet => {
            target.cache.admin().forget_local(&key);
            black_box(target.cache.get::<Payload>(&key).await.unwrap().unwrap());
        }
        Variant::TiercacheGetOrLoad => {
            target.cache.admin().forget_local(&key);
            let value = Arc::clone(&target.value);
            black_box(
                target
                    .cache
                    .get_or_load(&key, &target.opts, move || async move {
                        // Never reached in this bench: every key is in L2.
                        Ok::<_, std::io::Error>(Payload::clone(&value))
                    })
                    .await
                    .unwrap(),
            );
        }
        Variant::RawGet | Variant::RawGetGuarded => {
            let bytes: Vec<u8> = redis::cmd("GET")
                .arg(format!("raw:{key}"))
                .query_async(&mut target.raw.clone())
                .await
                .unwrap();
            if variant == Variant::RawGet {
                black_box(decode(&bytes));
            } else {
                black_box(decode_with_limit(&bytes));
            }
        }
    }
}

fn main() {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let mut table = Table::new("l2_interleaved");
    table.line("| value | in flight | path | p50 | p99 | calls/s | p50 ratio to raw |");
    table.line("|---|---|---|---|---|---|---|");
    for size in SIZES {
        for concurrency in CONCURRENCY {
            let target = rt.block_on(async {
                let cache = node(&redis.url(), &format!("l2i-{size}-{concurrency}")).await;
                let mut raw = raw_connection(&redis.url()).await;
                let value = Payload::of_size(size);
                let opts = EntryOptions::new(Duration::from_hours(1)).with_tags(["widgets"]);
                let bytes = encode(&value);
                for i in 0..concurrency {
                    let keys = (format!("k{i}"), format!("raw:k{i}"));
                    let (keys, value) = (
                        (keys.0.as_str(), keys.1.as_str()),
                        (&value, bytes.as_slice()),
                    );
                    store_both(&cache, &mut raw, keys, value, &opts).await;
                }
                Arc::new(Target {
                    cache,
                    raw,
                    opts,
                    value: Arc::new(value),
                })
            });
            let call = move |target: Arc<Target>, variant, i| async move {
                one_call(&target, variant, i).await;
            };
            let mut samples = interleaved_tasks(&rt, &target, (&Variant::ALL, concurrency), call);
            let cells = format!("{} | {concurrency}", human_size(size));
            let rows: Vec<_> = Variant::ALL
                .iter()
                .map(|v| (cells.as_str(), v.label()))
                .collect();
            let raw_slot = Variant::ALL
                .iter()
                .position(|v| *v == Variant::RawGet)
                .unwrap();
            ratio_rows(&mut table, &rows, raw_slot, &mut samples);
            let stats = target.cache.stats();
            assert_eq!(stats.loads, 0, "every key was in L2: no load may run");
        }
    }
    table.finish();
}

fn human_size(bytes: usize) -> String {
    if bytes >= 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}
