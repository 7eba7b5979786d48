//! A Redis Cluster beside a single server, interleaved so both see the same machine: what each of the
//! cache's Redis paths costs when its keys are spread over slots and masters.
//!
//! Backends, both private and on this machine: one `redis-server`, and a cluster of three masters
//! with one replica each (`TIERCACHE_REPLICA_ACKS` at its cluster default, 1). Each operation runs in
//! short phases that alternate between the backends (server, cluster, server, cluster …), one task in
//! flight unless the row says otherwise, and every call's latency is kept:
//! - `raw GET`: a plain `GET` of a small string, the floor of a round trip to either backend.
//! - `get` (L2 hit): `forget_local` + `Cache::get` of a tagged entry, one `HMGET`.
//! - `get_or_load` miss: a key never seen, one tag: the read with its fence (on a cluster the tag
//!   versions are in the namespace's slot: a second pipeline), the loader, the fenced store (on a
//!   cluster the versions are checked apart first).
//! - `set` with one tag: the versions script, then the entry.
//! - `invalidate` one key: on a cluster the key's slot, `WAIT` for the replicas of every master, the
//!   namespace's slot (stream + `SPUBLISH`), `WAIT` again.
#![allow(clippy::unwrap_used, missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tiercache::{Cache, EntryOptions};
use tiercache_benches::{micros, quantile, runtime, timed_phase, Payload, Table};
use tiercache_testkit::{RedisCluster, RedisServer};

const ROUNDS: usize = 6;
const PHASE: Duration = Duration::from_millis(250);
const KEYS: usize = 64;
// One key per task of the widest row, so no task refills another's key between forget and read.
const _: () = assert!(KEYS >= 64);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    RawGet,
    Get,
    Miss,
    Set,
    Invalidate,
}

impl Op {
    /// Each operation with the tasks in flight it runs at.
    const ROWS: [(Op, usize); 6] = [
        (Op::RawGet, 1),
        (Op::Get, 1),
        (Op::Get, 64),
        (Op::Miss, 1),
        (Op::Set, 1),
        (Op::Invalidate, 1),
    ];

    fn label(self) -> &'static str {
        match self {
            Op::RawGet => "raw `GET`",
            Op::Get => "`get`, L2 hit",
            Op::Miss => "`get_or_load` miss, 1 tag",
            Op::Set => "`set`, 1 tag",
            Op::Invalidate => "`invalidate` one key",
        }
    }
}

struct Backend {
    cache: Cache,
    raw: redis::aio::ConnectionManager,
    raw_cluster: Option<redis::cluster_async::ClusterConnection>,
    opts: EntryOptions,
    value: Payload,
    fresh: AtomicUsize,
}

async fn one_call(b: &Backend, op: Op, task: usize, n: usize) {
    let key = format!("k{}", (task * 7 + n) % KEYS);
    match op {
        Op::RawGet => {
            let get = redis::cmd("GET").arg(format!("raw:{key}")).clone();
            let v: Option<Vec<u8>> = match &b.raw_cluster {
                Some(c) => get.query_async(&mut c.clone()).await.unwrap(),
                None => get.query_async(&mut b.raw.clone()).await.unwrap(),
            };
            black_box(v);
        }
        Op::Get => {
            // A key of this task's own: another task's read must not refill it in between.
            let key = format!("k{}", task % KEYS);
            b.cache.admin().forget_local(&key);
            black_box(b.cache.get::<Payload>(&key).await.unwrap().unwrap());
        }
        Op::Miss => {
            let fresh = format!("miss{}", b.fresh.fetch_add(1, Ordering::Relaxed));
            let value = b.value.clone();
            black_box(
                b.cache
                    .get_or_load(&fresh, &b.opts, move || async move {
                        Ok::<_, std::io::Error>(value)
                    })
                    .await
                    .unwrap(),
            );
        }
        Op::Set => {
            b.cache.set(&key, b.value.clone(), &b.opts).await.unwrap();
        }
        Op::Invalidate => {
            b.cache.invalidate(&format!("gone{n}")).await.unwrap();
        }
    }
}

async fn phase(b: &Arc<Backend>, op: Op, in_flight: usize) -> Vec<Duration> {
    let b = b.clone();
    timed_phase(in_flight, PHASE, move |task, n| {
        let b = b.clone();
        async move { one_call(&b, op, task, n).await }
    })
    .await
}

async fn backend(
    cache: Cache,
    server_url: Option<String>,
    cluster: Option<Vec<String>>,
) -> Backend {
    let opts = EntryOptions::new(Duration::from_hours(1)).with_tags(["widgets"]);
    let value = Payload::of_size(100);
    // The raw baseline: a connection manager to the server, or the redis crate's cluster client.
    let seed = server_url
        .clone()
        .or_else(|| cluster.as_ref().map(|c| c[0].clone()))
        .unwrap();
    let raw = redis::aio::ConnectionManager::new(redis::Client::open(seed).unwrap())
        .await
        .unwrap();
    let raw_cluster = match &cluster {
        Some(urls) => Some(
            redis::cluster::ClusterClient::new(urls.clone())
                .unwrap()
                .get_async_connection()
                .await
                .unwrap(),
        ),
        None => None,
    };
    for i in 0..KEYS {
        let key = format!("k{i}");
        cache.set(&key, value.clone(), &opts).await.unwrap();
        let set = redis::cmd("SET").arg(format!("raw:{key}")).arg("x").clone();
        let () = match &raw_cluster {
            Some(c) => set.query_async(&mut c.clone()).await.unwrap(),
            None => set.query_async(&mut raw.clone()).await.unwrap(),
        };
    }
    Backend {
        cache,
        raw,
        raw_cluster,
        opts,
        value,
        fresh: AtomicUsize::new(0),
    }
}

fn main() {
    let rt = runtime();
    let server = RedisServer::start().unwrap();
    let cluster = RedisCluster::start_with_replicas(3, 1).unwrap();
    let backends: [Arc<Backend>; 2] = rt.block_on(async {
        let on_server = Cache::builder()
            .redis_url(&server.url())
            .namespace("cluster-bench")
            .build()
            .await
            .unwrap();
        let on_cluster = Cache::builder()
            .cluster_urls(cluster.urls())
            .namespace("cluster-bench")
            .build()
            .await
            .unwrap();
        [
            Arc::new(backend(on_server, Some(format!("{}/1", server.url())), None).await),
            Arc::new(backend(on_cluster, None, Some(cluster.urls())).await),
        ]
    });
    let mut table = Table::new("cluster_interleaved");
    table.line("| path | in flight | server p50 | server p99 | cluster p50 | cluster p99 | cluster ÷ server, p50 | server calls/s | cluster calls/s |");
    table.line("|---|---|---|---|---|---|---|---|---|");
    for (op, in_flight) in Op::ROWS {
        let mut samples: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        // One untimed phase each: connections, scripts, slot maps.
        for b in &backends {
            rt.block_on(phase(b, op, in_flight));
        }
        for _ in 0..ROUNDS {
            for (i, b) in backends.iter().enumerate() {
                let got = rt.block_on(phase(b, op, in_flight));
                samples[i].extend(got);
            }
        }
        let seconds = PHASE.as_secs_f64() * ROUNDS as f64;
        let rates = [
            samples[0].len() as f64 / seconds,
            samples[1].len() as f64 / seconds,
        ];
        let [server_s, cluster_s] = &mut samples;
        let (sp50, sp99) = (quantile(server_s, 0.5), quantile(server_s, 0.99));
        let (cp50, cp99) = (quantile(cluster_s, 0.5), quantile(cluster_s, 0.99));
        table.line(format!(
            "| {} | {in_flight} | {} | {} | {} | {} | **{:.2}×** | {:.0} | {:.0} |",
            op.label(),
            micros(sp50),
            micros(sp99),
            micros(cp50),
            micros(cp99),
            cp50.as_secs_f64() / sp50.as_secs_f64(),
            rates[0],
            rates[1],
        ));
    }
    let unreplicated = backends[1].cache.stats().unreplicated_invalidations;
    table.line("");
    table.line(format!(
        "Cluster invalidations that fell short of `TIERCACHE_REPLICA_ACKS`: {unreplicated}."
    ));
    table.finish();
    rt.block_on(model_figures());
}

/// Redis's own CPU time per call of `command` since the last `CONFIG RESETSTAT` (µs).
async fn usec_per_call(conn: &mut redis::aio::ConnectionManager, command: &str) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    let prefix = format!("cmdstat_{command}:");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|fields| {
            fields
                .split(',')
                .find_map(|f| f.strip_prefix("usec_per_call="))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

async fn resetstat(conn: &mut redis::aio::ConnectionManager) {
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await
        .unwrap();
}

async fn used_memory(conn: &mut redis::aio::ConnectionManager) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// The figures the fleet model of docs/OPERATIONS.md rests on, measured on a fresh private server:
/// what one invalidation costs Redis, what each subscriber adds to a publish, and what an entry
/// occupies.
async fn model_figures() {
    let server = RedisServer::start().unwrap();
    let url = server.url();
    let mut admin = redis::aio::ConnectionManager::new(redis::Client::open(url.as_str()).unwrap())
        .await
        .unwrap();
    let mut table = Table::new("bus_model");
    table.line("| figure | value |");
    table.line("|---|---|");
    // Fan-out: Redis CPU per PUBLISH of a 200-byte message to 1 and to 100 subscribers.
    let mut per_publish = Vec::new();
    for subscribers in [1usize, 100] {
        let mut held = Vec::with_capacity(subscribers);
        for _ in 0..subscribers {
            let mut pubsub = redis::Client::open(url.as_str())
                .unwrap()
                .get_async_pubsub()
                .await
                .unwrap();
            pubsub.subscribe("fanout").await.unwrap();
            // Drained so the server never waits on a full socket.
            held.push(tokio::spawn(async move {
                let mut messages = pubsub.into_on_message();
                while futures_util::StreamExt::next(&mut messages).await.is_some() {}
            }));
        }
        resetstat(&mut admin).await;
        let message = vec![b'x'; 200];
        for _ in 0..5000 {
            let _: i64 = redis::cmd("PUBLISH")
                .arg("fanout")
                .arg(&message)
                .query_async(&mut admin)
                .await
                .unwrap();
        }
        let cost = usec_per_call(&mut admin, "publish").await;
        per_publish.push(cost);
        table.line(format!(
            "| Redis CPU per `PUBLISH` (200 B) to {subscribers} subscriber(s) | {cost:.2} µs |"
        ));
        for task in held {
            task.abort();
        }
    }
    table.line(format!(
        "| Redis CPU each subscriber adds to a publish | {:.3} µs |",
        (per_publish[1] - per_publish[0]) / 99.0
    ));
    // One invalidation of one key, as the script runs it (entry, generation, stream, publish to the
    // nodes subscribed: two here), one call at a time so nothing is batched.
    let writer = Cache::builder()
        .redis_url(&url)
        .namespace("model")
        .build()
        .await
        .unwrap();
    let _other = Cache::builder()
        .redis_url(&url)
        .namespace("model")
        .build()
        .await
        .unwrap();
    resetstat(&mut admin).await;
    for i in 0..2000 {
        writer.invalidate(&format!("k{i}")).await.unwrap();
    }
    table.line(format!(
        "| Redis CPU per `invalidate` batch of one key (script, `XADD`, publish to 2 nodes) | {:.2} µs |",
        usec_per_call(&mut admin, "evalsha").await
    ));
    // Memory: 10,000 entries of 1 KiB with one tag, written by `set` (entry hash + generation).
    let before = used_memory(&mut admin).await;
    let opts = EntryOptions::new(Duration::from_hours(1)).with_tags(["widgets"]);
    let value = Payload::of_size(1024);
    for i in 0..10_000 {
        writer
            .set(&format!("m{i}"), value.clone(), &opts)
            .await
            .unwrap();
    }
    let after = used_memory(&mut admin).await;
    table.line(format!(
        "| Redis memory per 1 KiB entry with one tag (entry + generation) | {:.0} B |",
        (after.saturating_sub(before)) as f64 / 10_000.0
    ));
    table.finish();
}
