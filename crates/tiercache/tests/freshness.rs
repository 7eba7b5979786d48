//! Refresh-ahead and fail-safe.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{builder, eventually, nodes, server, DEADLINE};
use tiercache::{Cache, EntryOptions, ErrorKind};

/// When each load started: the value a load returns is its place in this list.
type Starts = Arc<parking_lot::Mutex<Vec<Instant>>>;

/// A loader that notes when it started, takes 300 ms, and returns how many loads started before it.
fn slow_loader(
    starts: Starts,
) -> impl FnOnce() -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<u64, std::io::Error>> + Send>,
> + Send
       + 'static {
    move || {
        Box::pin(async move {
            let n = {
                let mut starts = starts.lock();
                starts.push(Instant::now());
                starts.len() as u64 - 1
            };
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(n)
        })
    }
}

/// Loads `k` = 1 with `opts` and waits until it has expired: what a fail-safe test starts from.
async fn load_and_let_expire(cache: &tiercache::Cache, opts: &EntryOptions) {
    cache
        .get_or_load("k", opts, || async { Ok::<_, std::io::Error>(1_u64) })
        .await
        .unwrap();
    eventually(DEADLINE, "the entry expires", || async {
        cache.get::<u64>("k").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_refreshes_once_per_threshold_crossing_and_nobody_waits() {
    let redis = server();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(common::node(&redis, "refresh").await);
    }
    let ttl = Duration::from_secs(2);
    let opts = EntryOptions::new(ttl);
    let starts = Starts::default();
    for n in &nodes {
        assert_eq!(
            *n.get_or_load("k", &opts, slow_loader(starts.clone()))
                .await
                .unwrap(),
            0
        );
    }
    assert_eq!(starts.lock().len(), 1);
    // Past 0.8 of the TTL, hits keep answering at once with the current value and start one refresh.
    tokio::time::sleep(ttl.mul_f64(0.85)).await;
    let crossed = Instant::now();
    for _ in 0..5 {
        for n in &nodes {
            let started = Instant::now();
            let v = n
                .get_or_load("k", &opts, slow_loader(starts.clone()))
                .await
                .unwrap();
            assert!(
                started.elapsed() < Duration::from_millis(150),
                "a hit never waits on the loader"
            );
            assert!(*v <= 1);
        }
    }
    // A refreshed value is itself refreshed 0.8 TTL after it was stored, so on a slow machine the
    // check below may meet a later refresh's value: any refreshed value counts.
    eventually(DEADLINE, "every node sees a refreshed value", || async {
        let mut all = true;
        for n in &nodes {
            all &= *n
                .get_or_load("k", &opts, slow_loader(starts.clone()))
                .await
                .unwrap()
                >= 1;
        }
        all
    })
    .await;
    // The crossing's refresh stored its value no earlier than the crossing plus the loader's 300 ms,
    // so no later crossing comes within 0.8 TTL of this one: every load that started in that window
    // was the crossing's refresh.
    let window_ends = crossed + ttl.mul_f64(0.8);
    let refreshes = starts
        .lock()
        .iter()
        .filter(|at| (crossed..window_ends).contains(*at))
        .count();
    assert_eq!(refreshes, 1, "one refresh for the fleet");
}

/// XFetch draws on every hit whether to refresh, more often as expiry nears and the slower the
/// value was to load; a hit far from expiry decides without drawing. Either way a slow value is
/// refreshed by a hit before it expires, so no caller waits for its loader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xfetch_refreshes_a_slow_value_before_it_expires() {
    let redis = server();
    let config = tiercache::Config {
        refresh_mode: tiercache::RefreshMode::XFetch { beta: 1.0 },
        ..tiercache::Config::default()
    };
    let node = Cache::builder()
        .config(config)
        .redis_url(&redis.url())
        .namespace("xfetch")
        .build()
        .await
        .unwrap();
    let ttl = Duration::from_secs(3);
    let opts = EntryOptions::new(ttl);
    let started_at = Starts::default();
    assert_eq!(
        *node
            .get_or_load("k", &opts, slow_loader(started_at.clone()))
            .await
            .unwrap(),
        0
    );
    let filled = Instant::now();
    eventually(DEADLINE, "a hit refreshed the value", || async {
        *node
            .get_or_load("k", &opts, slow_loader(started_at.clone()))
            .await
            .unwrap()
            == 1
    })
    .await;
    let starts = started_at.lock().clone();
    assert_eq!(starts.len(), 2, "one refresh");
    assert!(
        starts[1] < filled + ttl,
        "the refresh started {:?} after the fill, past the {ttl:?} TTL",
        starts[1] - filled
    );
}

#[tokio::test]
async fn fail_safe_serves_the_stale_value_when_the_loader_fails_and_throttles_retries() {
    let redis = server();
    let cache = builder(&redis, "failsafe").build().await.unwrap();
    let opts = EntryOptions::new(Duration::from_millis(300));
    load_and_let_expire(&cache, &opts).await;

    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let calls = calls.clone();
        let v = cache
            .get_or_load::<u64, _, _, _>("k", &opts, move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(std::io::Error::other("database down"))
            })
            .await
            .unwrap();
        assert_eq!(*v, 1, "the stale value is served");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "later attempts are throttled"
    );
    assert_eq!(cache.stats().stale_served, 1);

    let no_fail_safe = opts.clone().with_fail_safe(false);
    let other = builder(&redis, "failsafe").build().await.unwrap();
    let err = other
        .get_or_load::<u64, _, _, _>("k", &no_fail_safe, || async {
            Err(std::io::Error::other("down"))
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Loader,
        "without fail-safe the error is returned"
    );
}

#[tokio::test]
async fn a_soft_timeout_serves_stale_and_the_slow_load_still_lands() {
    let redis = server();
    let cache = builder(&redis, "soft").build().await.unwrap();
    let opts =
        EntryOptions::new(Duration::from_millis(300)).with_soft_timeout(Duration::from_millis(50));
    load_and_let_expire(&cache, &opts).await;

    let long = opts.clone().with_soft_timeout(Duration::from_millis(50));
    let fresh_opts =
        EntryOptions::new(Duration::from_secs(60)).with_soft_timeout(Duration::from_millis(50));
    let started = Instant::now();
    let v = cache
        .get_or_load("k", &fresh_opts, || async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok::<_, std::io::Error>(2_u64)
        })
        .await
        .unwrap();
    assert_eq!(*v, 1, "stale value after the soft timeout");
    assert!(started.elapsed() < Duration::from_millis(350));
    let _ = long;
    let reader = builder(&redis, "soft").build().await.unwrap();
    eventually(
        DEADLINE,
        "the slow load finishes in the background and is stored",
        || async { reader.get::<u64>("k").await.unwrap().as_deref() == Some(&2) },
    )
    .await;
}

#[tokio::test]
async fn a_hard_timeout_with_nothing_stale_is_an_error() {
    let redis = server();
    let cache = builder(&redis, "hard").build().await.unwrap();
    let opts =
        EntryOptions::new(Duration::from_secs(60)).with_hard_timeout(Duration::from_millis(100));
    let err = cache
        .get_or_load("k", &opts, || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, std::io::Error>(1_u64)
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn lock_api_gives_mutual_exclusion_and_refuses_release_by_a_stale_holder() {
    let redis = server();
    let a = builder(&redis, "locks").build().await.unwrap();
    let b = builder(&redis, "locks").build().await.unwrap();
    let opts = tiercache::LockOptions {
        timeout: Duration::from_millis(200),
        retries: 2,
        lease: Duration::from_millis(300),
    };
    let held = a.lock("job", opts).await.unwrap();
    let refused = b.lock("job", opts).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Lock);
    // Let a's lease run out; b takes the lock; a's late release must not free b's lock.
    let patient = tiercache::LockOptions {
        timeout: Duration::from_secs(5),
        retries: 50,
        lease: Duration::from_secs(30),
    };
    let b_guard = b.lock("job", patient).await.unwrap();
    assert!(
        !held.release().await.unwrap(),
        "a stale holder's release is refused"
    );
    assert_eq!(
        a.lock("job", opts).await.unwrap_err().kind(),
        ErrorKind::Lock,
        "b still holds it"
    );
    assert!(b_guard.release().await.unwrap());
    a.lock("job", opts).await.unwrap().release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contended_lock_admits_one_holder_at_a_time() {
    let redis = server();
    let nodes: Vec<Cache> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(builder(&redis, "mutex").build().await.unwrap());
        }
        v
    };
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let opts = tiercache::LockOptions {
        timeout: Duration::from_secs(20),
        retries: 10_000,
        lease: Duration::from_secs(10),
    };
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (node, inside, max_inside) = (nodes[i % 3].clone(), inside.clone(), max_inside.clone());
        tasks.push(tokio::spawn(async move {
            let guard = node.lock("counter", opts).await.unwrap();
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            max_inside.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            assert!(guard.release().await.unwrap());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(max_inside.load(Ordering::SeqCst), 1);
}

/// `serves_locally` is L1 alone: true once a load filled it, false once another node's invalidation
/// reached this one, or after `forget_local`; it never reads Redis or counts a hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_locally_tells_what_l1_would_answer() {
    let redis = server();
    let fleet = nodes(&redis, "local", 2).await;
    let opts = EntryOptions::new(Duration::from_secs(600));
    assert!(!fleet[0].admin().serves_locally("k"));
    fleet[0]
        .get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(1_u64) })
        .await
        .unwrap();
    let hits = fleet[0].stats().l1_hits;
    assert!(fleet[0].admin().serves_locally("k"));
    assert_eq!(fleet[0].stats().l1_hits, hits, "nothing counted");
    fleet[1].invalidate("k").await.unwrap();
    eventually(DEADLINE, "the invalidation reaches node 0", || async {
        !fleet[0].admin().serves_locally("k")
    })
    .await;
    fleet[0]
        .get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(2_u64) })
        .await
        .unwrap();
    assert!(fleet[0].admin().serves_locally("k"));
    fleet[0].admin().forget_local("k");
    assert!(!fleet[0].admin().serves_locally("k"));
}
