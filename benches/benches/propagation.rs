//! Invalidation propagation between two nodes, beside raw `PUBLISH` → receive, in one run.
//!
//! Both sides are measured the same way: the sender stamps the message with its wall clock just before
//! publishing and the receiver subtracts on arrival (tiercache records this itself in
//! `tiercache_invalidation_propagation_seconds`, read here through a debugging recorder). The
//! end-to-end `invalidate()` call time (L2 change + stream + publish, one round trip) is reported too.
//!
//! The whole path is timed as a user sees it, too: from the start of `invalidate` on node A until node
//! B no longer serves the key from its L1 (`Admin::serves_locally`, checked in a loop on a thread of
//! its own that yields the CPU between checks), beside raw: from the start of a `PUBLISH` until a
//! subscriber has the message, seen by the same kind of loop.
#![allow(clippy::unwrap_used, missing_docs, clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tiercache_benches::{micros, node, quantile, runtime, Table};
use tiercache_testkit::RedisServer;

const MESSAGES: usize = 2_000;
/// Invalidations timed over the whole path (each first loads the key into B's L1).
const WHOLE_PATH: usize = 1_000;

/// Spins (yielding the CPU between checks) until `done`; how long since `started`.
fn until(started: Instant, done: impl Fn() -> bool) -> Duration {
    while !done() {
        std::thread::yield_now();
    }
    started.elapsed()
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn main() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let rt = runtime();
    let redis = RedisServer::start().unwrap();
    let url = redis.url();

    let (mut call_times, mut tiercache_delays) = rt.block_on(async {
        let sender = node(&url, "prop").await;
        let receiver = node(&url, "prop").await;
        let mut call_times = Vec::with_capacity(MESSAGES);
        for i in 0..MESSAGES {
            let started = Instant::now();
            sender.invalidate(&format!("widget:{i}")).await.unwrap();
            call_times.push(started.elapsed());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while receiver.stats().invalidations_received < MESSAGES as u64 && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let delays: Vec<Duration> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == "tiercache_invalidation_propagation_seconds")
            .flat_map(|(.., value)| match value {
                DebugValue::Histogram(v) => v
                    .into_iter()
                    .map(|f| Duration::from_secs_f64(f.0))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        (call_times, delays)
    });

    let mut raw_delays = rt.block_on(async {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut subscriber = client.get_async_pubsub().await.unwrap();
        subscriber.subscribe("raw-bench").await.unwrap();
        let mut stream = subscriber.into_on_message();
        let collector = tokio::spawn(async move {
            let mut delays = Vec::with_capacity(MESSAGES);
            while delays.len() < MESSAGES {
                let Some(msg) = stream.next().await else {
                    break;
                };
                let sent: u64 = msg.get_payload().unwrap();
                delays.push(Duration::from_micros(now_micros().saturating_sub(sent)));
            }
            delays
        });
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for _ in 0..MESSAGES {
            let _: i64 = redis::cmd("PUBLISH")
                .arg("raw-bench")
                .arg(now_micros())
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        collector.await.unwrap()
    });

    let (mut whole_raw, whole_tiercache) = whole_path(&rt, &url);

    let t50 = quantile(&mut tiercache_delays, 0.5);
    let t99 = quantile(&mut tiercache_delays, 0.99);
    let r50 = quantile(&mut raw_delays, 0.5);
    let r99 = quantile(&mut raw_delays, 0.99);
    let c50 = quantile(&mut call_times, 0.5);
    let c99 = quantile(&mut call_times, 0.99);
    let mut t = Table::new("propagation");
    t.line(format!(
        "invalidation propagation, {MESSAGES} sequential messages, two nodes in one process"
    ));
    t.line("| path | samples | p50 | p99 |");
    t.line("|---|---|---|---|");
    t.line(format!(
        "| raw PUBLISH → receive | {} | {} | {} |",
        raw_delays.len(),
        micros(r50),
        micros(r99)
    ));
    t.line(format!(
        "| tiercache publish → apply on other node | {} | {} | {} |",
        tiercache_delays.len(),
        micros(t50),
        micros(t99)
    ));
    t.line(format!(
        "| tiercache `invalidate()` call (L2 + stream + publish) | {} | {} | {} |",
        call_times.len(),
        micros(c50),
        micros(c99)
    ));
    t.line(format!(
        "ratio tiercache/raw: p50 {:.2}x, p99 {:.2}x",
        t50.as_secs_f64() / r50.as_secs_f64().max(1e-9),
        t99.as_secs_f64() / r99.as_secs_f64().max(1e-9)
    ));
    whole_path_rows(&mut t, &mut whole_raw, &whole_tiercache);
    t.finish();
}

fn whole_path_rows(t: &mut Table, raw: &mut [Duration], tiercache: &[WholePath]) {
    t.line("");
    t.line(format!(
        "whole path, {WHOLE_PATH} sequential invalidations: call start on one side → the other side has it"
    ));
    t.line("| path | samples | p50 | p99 | max |");
    t.line("|---|---|---|---|---|");
    let mut seen: Vec<Duration> = tiercache.iter().map(|w| w.seen).collect();
    let mut returned: Vec<Duration> = tiercache.iter().map(|w| w.returned).collect();
    for (name, samples) in [
        ("raw `PUBLISH` start → subscriber has it", raw),
        (
            "tiercache `invalidate` start on A → B no longer serves the key",
            &mut seen[..],
        ),
        (
            "(the same calls: `invalidate` start → it returns on A)",
            &mut returned[..],
        ),
    ] {
        let (p50, p99) = (quantile(samples, 0.5), quantile(samples, 0.99));
        let max = samples.iter().max().copied().unwrap_or_default();
        t.line(format!(
            "| {name} | {} | {} | {} | {} |",
            samples.len(),
            micros(p50),
            micros(p99),
            micros(max)
        ));
    }
    // Where the slowest 1 % lost their time: before A's call returned (the flusher, the script, Redis)
    // or after it (the subscriber, the receiver task).
    let mut slowest = tiercache.to_vec();
    slowest.sort_unstable_by_key(|w| std::cmp::Reverse(w.seen));
    slowest.truncate((tiercache.len() / 100).max(1));
    let mut seen_before_return = 0;
    let mut slow_calls: Vec<Duration> = Vec::with_capacity(slowest.len());
    for w in &slowest {
        if w.seen <= w.returned {
            seen_before_return += 1;
        }
        slow_calls.push(w.returned);
    }
    t.line(format!(
        "slowest {} of the tiercache whole path: A's call had returned at a median of {} (B saw it first in {})",
        slowest.len(),
        micros(quantile(&mut slow_calls, 0.5)),
        seen_before_return
    ));
}

/// The whole path, raw and tiercache, timed from the caller's side.
fn whole_path(rt: &tokio::runtime::Runtime, url: &str) -> (Vec<Duration>, Vec<WholePath>) {
    let client = redis::Client::open(url).unwrap();
    let received = Arc::new(AtomicU64::new(u64::MAX));
    let (conn, _collector) = rt.block_on(async {
        let mut subscriber = client.get_async_pubsub().await.unwrap();
        subscriber.subscribe("raw-whole").await.unwrap();
        let mut stream = subscriber.into_on_message();
        let received = received.clone();
        let collector = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let i: u64 = msg.get_payload().unwrap();
                received.store(i, Ordering::Release);
            }
        });
        (
            client.get_multiplexed_async_connection().await.unwrap(),
            collector,
        )
    });
    let (a, b) = rt.block_on(async { (node(url, "whole").await, node(url, "whole").await) });
    let opts = tiercache::EntryOptions::new(Duration::from_mins(10));
    let mut raw = Vec::with_capacity(WHOLE_PATH);
    let mut tiercache = Vec::with_capacity(WHOLE_PATH);
    // Raw and tiercache take turns, one invalidation each, so the VM's moods fall on both alike.
    for i in 0..WHOLE_PATH {
        let started = Instant::now();
        let mut publish = conn.clone();
        rt.spawn(async move {
            let _: i64 = redis::cmd("PUBLISH")
                .arg("raw-whole")
                .arg(i as u64)
                .query_async(&mut publish)
                .await
                .unwrap();
        });
        raw.push(until(started, || {
            received.load(Ordering::Acquire) == i as u64
        }));

        let key = format!("widget:{i}");
        rt.block_on(b.get_or_load(&key, &opts, move || async move {
            Ok::<_, std::io::Error>(i as u64)
        }))
        .unwrap();
        assert!(
            b.admin().serves_locally(&key),
            "B holds the key before the invalidation"
        );
        let started = Instant::now();
        let (sender, sent_key) = (a.clone(), key.clone());
        let call = rt.spawn(async move {
            let result = sender.invalidate(&sent_key).await;
            (result, started.elapsed())
        });
        let seen = until(started, || !b.admin().serves_locally(&key));
        let (result, returned) = rt.block_on(call).unwrap();
        result.unwrap();
        tiercache.push(WholePath { seen, returned });
    }
    (raw, tiercache)
}

/// One invalidation timed over the whole path: when B stopped serving the key and when A's call
/// returned (Redis had run the script), both from the call's start. Which of the two is late in the
/// slow samples tells the sending side's delays from the receiving side's.
#[derive(Clone, Copy)]
struct WholePath {
    seen: Duration,
    returned: Duration,
}
