//! Stampede: 4 nodes × 1,000 concurrent callers on a cold key, loader = 50 ms. Loader calls and caller
//! latency for tiercache (fleet-wide lease), per-node coalescing only, and naive cache-aside, same run.
#![allow(clippy::unwrap_used, missing_docs, clippy::print_stdout)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tiercache::{Cache, EntryOptions};
use tiercache_benches::{
    decode, encode, micros, node, node_without_locking, quantile, raw_connection, raw_set_ex,
    runtime, Payload, Table,
};
use tiercache_testkit::RedisServer;

const NODES: usize = 4;
const CALLERS_PER_NODE: usize = 1_000;
const ROUNDS: usize = 3;
const LOAD_TIME: Duration = Duration::from_millis(50);

async fn expensive_query(calls: Arc<AtomicUsize>) -> Result<Payload, std::io::Error> {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(LOAD_TIME).await;
    Ok(Payload::of_size(1024))
}

type Call = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs every caller at once; returns each caller's latency.
async fn storm(make: impl Fn(usize) -> Call) -> Vec<Duration> {
    let barrier = Arc::new(tokio::sync::Barrier::new(NODES * CALLERS_PER_NODE));
    let mut tasks = Vec::with_capacity(NODES * CALLERS_PER_NODE);
    for i in 0..NODES * CALLERS_PER_NODE {
        let (call, barrier) = (make(i % NODES), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let started = Instant::now();
            call.await;
            started.elapsed()
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn tiercache_round(nodes: &[Cache], key: &str, calls: &Arc<AtomicUsize>) -> Vec<Duration> {
    let opts = EntryOptions::new(Duration::from_mins(10));
    storm(|n| {
        let (cache, calls, opts, key) = (
            nodes[n].clone(),
            calls.clone(),
            opts.clone(),
            key.to_owned(),
        );
        Box::pin(async move {
            cache
                .get_or_load(&key, &opts, move || expensive_query(calls))
                .await
                .unwrap();
        })
    })
    .await
}

async fn naive_round(
    conns: &[redis::aio::MultiplexedConnection],
    key: &str,
    calls: &Arc<AtomicUsize>,
) -> Vec<Duration> {
    storm(|n| {
        let (mut conn, calls, key) = (conns[n].clone(), calls.clone(), key.to_owned());
        Box::pin(async move {
            let cached: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            if let Some(bytes) = cached {
                std::hint::black_box(decode(&bytes));
                return;
            }
            let value = expensive_query(calls).await.unwrap();
            raw_set_ex(&mut conn, &key, &encode(&value), 600).await;
        })
    })
    .await
}

fn report(t: &mut Table, name: &str, loads: &[usize], mut latencies: Vec<Duration>) {
    let p50 = quantile(&mut latencies, 0.5);
    let p99 = quantile(&mut latencies, 0.99);
    let max = latencies.last().copied().unwrap_or_default();
    t.line(format!(
        "| {name} | {loads:?} | {} | {} | {} |",
        micros(p50),
        micros(p99),
        micros(max)
    ));
}

fn main() {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let mut t = Table::new("stampede");
    t.line(format!(
        "stampede: {NODES} nodes × {CALLERS_PER_NODE} concurrent callers on a cold key, loader {LOAD_TIME:?}, {ROUNDS} rounds"
    ));
    t.line("| strategy | loader calls per round | p50 | p99 | max |");
    t.line("|---|---|---|---|---|");
    rt.block_on(async {
        for (name, namespace, locking) in [
            ("tiercache (fleet lease)", "stampede-lease", true),
            ("per-node coalescing only", "stampede-local", false),
        ] {
            let mut nodes = Vec::new();
            for _ in 0..NODES {
                nodes.push(if locking {
                    node(&url, namespace).await
                } else {
                    node_without_locking(&url, namespace).await
                });
            }
            let (mut loads, mut latencies) = (Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                let calls = Arc::new(AtomicUsize::new(0));
                latencies.extend(tiercache_round(&nodes, &format!("cold:{round}"), &calls).await);
                loads.push(calls.load(Ordering::SeqCst));
            }
            report(&mut t, name, &loads, latencies);
        }
        let mut conns = Vec::new();
        for _ in 0..NODES {
            conns.push(raw_connection(&url).await);
        }
        let (mut loads, mut latencies) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let calls = Arc::new(AtomicUsize::new(0));
            latencies.extend(naive_round(&conns, &format!("naive:{round}"), &calls).await);
            loads.push(calls.load(Ordering::SeqCst));
        }
        report(
            &mut t,
            "naive cache-aside (GET, load, SET)",
            &loads,
            latencies,
        );
    });
    t.finish();
}
