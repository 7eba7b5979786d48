//! Runs one hot path many times in a single-threaded runtime, for a profiler.
//!
//! ```text
//! cargo build --release -p tiercache-benches --example hit_path_profile
//! valgrind --tool=callgrind target/release/examples/hit_path_profile l2 20000 1024
//! ```
//!
//! Paths: `l1` (`get` from L1), `l2` (`forget_local` + `get`), `l2_tagged` (`forget_local` +
//! `get_or_load` naming the entry's tag, the pipelined read), `raw` (raw `GET` + bincode decode),
//! `forget` (`forget_local` alone, to subtract it from `l2`). It prints the mean wall time per call and
//! Redis's own per-command CPU time, so client and server cost can be told apart.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use tiercache::EntryOptions;
use tiercache_benches::{decode, encode, node, raw_connection, Payload};
use tiercache_testkit::RedisServer;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "l2".to_owned());
    let iterations: u32 = args.next().map_or(20_000, |s| s.parse().unwrap());
    let size: usize = args.next().map_or(1024, |s| s.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = RedisServer::start().unwrap();
    rt.block_on(async {
        let cache = node(&redis.url(), "profile").await;
        let mut raw = raw_connection(&redis.url()).await;
        let value = Payload::of_size(size);
        let opts = EntryOptions::new(Duration::from_hours(1)).with_tags(["profile"]);
        cache.set("warm", value.clone(), &opts).await.unwrap();
        let () = redis::cmd("SET")
            .arg("raw")
            .arg(encode(&value))
            .query_async(&mut raw)
            .await
            .unwrap();
        let () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut raw)
            .await
            .unwrap();
        let started = Instant::now();
        for _ in 0..iterations {
            match path.as_str() {
                "l1" => {
                    black_box(cache.get::<Payload>("warm").await.unwrap());
                }
                "l2" => {
                    cache.forget_local("warm").await;
                    black_box(cache.get::<Payload>("warm").await.unwrap());
                }
                "l2_tagged" => {
                    cache.forget_local("warm").await;
                    let v = value.clone();
                    black_box(
                        cache
                            .get_or_load(
                                "warm",
                                &opts,
                                || async move { Ok::<_, std::io::Error>(v) },
                            )
                            .await
                            .unwrap(),
                    );
                }
                "forget" => cache.forget_local("warm").await,
                "raw" => {
                    let bytes: Vec<u8> = redis::cmd("GET")
                        .arg("raw")
                        .query_async(&mut raw)
                        .await
                        .unwrap();
                    black_box(decode(&bytes));
                }
                other => panic!("unknown path {other}: use l1, l2, l2_tagged, forget or raw"),
            }
        }
        let per_call = started.elapsed() / iterations;
        println!("{path}: {iterations} calls, {per_call:?} per call (wall, single thread)");
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut raw)
            .await
            .unwrap();
        for line in stats.lines().filter(|l| l.starts_with("cmdstat_")) {
            println!("  redis {line}");
        }
        println!("{:?}", cache.stats());
    });
}
