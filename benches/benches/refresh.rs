//! Refresh-ahead modes side by side: a hot key read continuously by 3 nodes across several TTLs.
//! Reports loader calls and how long callers waited, for no refresh-ahead, the 0.8 threshold and XFetch.
#![allow(clippy::unwrap_used, missing_docs, clippy::print_stdout)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tiercache::{Cache, EntryOptions, RefreshMode};
use tiercache_benches::{micros, quantile, runtime, Payload, Table};
use tiercache_testkit::RedisServer;

const NODES: usize = 3;
const READERS_PER_NODE: usize = 16;
const TTL: Duration = Duration::from_secs(2);
const LOAD_TIME: Duration = Duration::from_millis(100);
const RUN_FOR: Duration = Duration::from_secs(7);

async fn nodes(url: &str, namespace: &str, refresh_ahead: bool, mode: RefreshMode) -> Vec<Cache> {
    let mut out = Vec::new();
    for _ in 0..NODES {
        let base = Cache::builder()
            .redis_url(url)
            .namespace(namespace)
            .build()
            .await
            .unwrap();
        let mut config = base.config().clone();
        config.refresh_ahead = refresh_ahead;
        config.refresh_mode = mode;
        out.push(Cache::builder().config(config).build().await.unwrap());
    }
    out
}

async fn run(nodes: &[Cache]) -> (usize, Vec<Duration>) {
    let loads = Arc::new(AtomicUsize::new(0));
    let opts = EntryOptions::new(TTL);
    let deadline = Instant::now() + RUN_FOR;
    let mut readers = Vec::new();
    for node in nodes {
        for _ in 0..READERS_PER_NODE {
            let (node, loads, opts) = (node.clone(), loads.clone(), opts.clone());
            readers.push(tokio::spawn(async move {
                let mut waits = Vec::new();
                while Instant::now() < deadline {
                    let loads = loads.clone();
                    let started = Instant::now();
                    node.get_or_load("hot", &opts, move || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(LOAD_TIME).await;
                        Ok::<_, std::io::Error>(Payload::of_size(1024))
                    })
                    .await
                    .unwrap();
                    waits.push(started.elapsed());
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                waits
            }));
        }
    }
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.unwrap());
    }
    (loads.load(Ordering::SeqCst), all)
}

fn main() {
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let mut t = Table::new("refresh");
    t.line(format!(
        "refresh-ahead: {NODES} nodes × {READERS_PER_NODE} readers on one hot key for {RUN_FOR:?}, TTL {TTL:?}, loader {LOAD_TIME:?}"
    ));
    t.line("| mode | loader calls | reads | reads that waited > 50 ms | p99 | max |");
    t.line("|---|---|---|---|---|---|");
    let modes = [
        (
            "no refresh-ahead (expire, then load)",
            false,
            RefreshMode::Threshold,
        ),
        ("threshold 0.8", true, RefreshMode::Threshold),
        ("XFetch β = 1", true, RefreshMode::XFetch { beta: 1.0 }),
    ];
    for (i, (name, on, mode)) in modes.into_iter().enumerate() {
        let (loads, mut waits) = rt.block_on(async {
            let nodes = nodes(&url, &format!("refresh-{i}"), on, mode).await;
            run(&nodes).await
        });
        let slow = waits
            .iter()
            .filter(|w| **w > Duration::from_millis(50))
            .count();
        let p99 = quantile(&mut waits, 0.99);
        let max = waits.last().copied().unwrap_or_default();
        t.line(format!(
            "| {name} | {loads} | {} | {slow} | {} | {} |",
            waits.len(),
            micros(p99),
            micros(max)
        ));
    }
    t.finish();
}
