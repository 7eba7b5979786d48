//! Two cache nodes in one process, showing L1/L2 hits, cross-node invalidation and load coalescing.
//!
//! Runs against `REDIS_URL` (default `redis://127.0.0.1:6379`), or a private `redis-server` it starts
//! itself when nothing answers there.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tiercache::{Cache, EntryOptions};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TotalDonations {
    total_cents: u64,
    donations: u32,
}

/// Stands in for an expensive aggregate query and counts how often it runs.
async fn aggregate(
    queries: Arc<AtomicUsize>,
    total_cents: u64,
) -> Result<TotalDonations, std::io::Error> {
    queries.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    Ok(TotalDonations {
        total_cents,
        donations: 1_234,
    })
}

async fn redis_answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), ping).await,
        Ok(Ok(_))
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    // Keep a private server alive for the whole run when we had to start one.
    let (_private, url) = if redis_answers(&url).await {
        (None, url)
    } else {
        println!("no Redis answers at {url}; starting a private redis-server");
        let server = tiercache_testkit::RedisServer::start()?;
        let url = server.url();
        (Some(server), url)
    };
    let namespace = format!("quickstart-{}", std::process::id());
    let node_a = Cache::builder()
        .redis_url(&url)
        .namespace(&namespace)
        .build()
        .await?;
    let node_b = Cache::builder()
        .redis_url(&url)
        .namespace(&namespace)
        .build()
        .await?;
    println!("two nodes on {url}, namespace {namespace}");

    let queries = Arc::new(AtomicUsize::new(0));
    let opts = EntryOptions::default_ttl().with_tags(["donation", "organization:1"]);
    let key = "total_donations:this_month:org=1";

    println!("\n1. cold key, 100 concurrent requests on each node (coalescing)");
    let started = Instant::now();
    let mut requests = Vec::new();
    for node in [&node_a, &node_b] {
        for _ in 0..100 {
            let (node, queries, opts) = (node.clone(), queries.clone(), opts.clone());
            requests.push(tokio::spawn(async move {
                node.get_or_load(key, &opts, move || aggregate(queries, 50_000))
                    .await
            }));
        }
    }
    for r in requests {
        r.await??;
    }
    println!(
        "   200 requests answered in {:?}; aggregate queries run: {}",
        started.elapsed(),
        queries.load(Ordering::SeqCst)
    );

    println!("\n2. warm key: L1 hits on both nodes");
    let started = Instant::now();
    for _ in 0..10_000 {
        node_b
            .get_or_load(key, &opts, {
                let q = queries.clone();
                move || aggregate(q, 0)
            })
            .await?;
    }
    println!("   10,000 reads on node B in {:?}", started.elapsed());

    println!("\n3. a donation arrives: node A invalidates the tag `organization:1`");
    node_a.invalidate_tags(["organization:1"]).await?;
    let started = Instant::now();
    while node_b.get::<TotalDonations>(key).await?.is_some() {
        tokio::task::yield_now().await;
    }
    println!("   node B dropped its copy after {:?}", started.elapsed());
    let fresh = node_b
        .get_or_load(key, &opts, {
            let q = queries.clone();
            move || aggregate(q, 52_500)
        })
        .await?;
    println!(
        "   node B reloads: total = {} cents; aggregate queries run: {}",
        fresh.total_cents,
        queries.load(Ordering::SeqCst)
    );

    for (name, node) in [("A", &node_a), ("B", &node_b)] {
        let s = node.stats();
        println!(
            "\nnode {name}: l1_hits={} l2_hits={} misses={} loads={} coalesced={} fleet_waits={} invalidations_sent={} invalidations_received={}",
            s.l1_hits, s.l2_hits, s.misses, s.loads, s.coalesced, s.fleet_waits, s.invalidations_sent, s.invalidations_received
        );
    }
    Ok(())
}
