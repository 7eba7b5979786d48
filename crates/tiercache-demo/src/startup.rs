//! Start-up and shut-down: recorder, data, Redis (a private one when none answers and no URL was
//! given), nodes, listeners, and a graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tiercache::{Cache, ErrorKind};
use tiercache_widgets::{
    ChangeDispatcher, Clock, LiveViews, LoadTimeouts, OffsetClock, ServiceTargets, Thresholds,
    TtlTiers, WidgetCacheMetricsService, WidgetCacheService, WidgetConfig,
    WidgetDataAggregationService, WidgetInvalidationService,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::dataset::{generate_if_empty, DatasetSize};
use crate::error::DemoError;
use crate::node::{node_name, CachedNode, Node, Peer};
use crate::private_redis::PrivateRedis;
use crate::readiness::{Readiness, Stage};
use crate::serve::ConnectionTimeouts;
use crate::settings::Settings;

/// How long a committed write waits for its invalidation before answering "pending".
const INVALIDATION_TIMEOUT: Duration = Duration::from_secs(2);

/// The data's shape; `--donations` sets the number of donations.
fn dataset(donations: u32) -> DatasetSize {
    DatasetSize {
        donations: i64::from(donations),
        ..DatasetSize::demo()
    }
}

/// Runs the service until `shutdown` completes, then lets in-flight requests finish (up to
/// `--shutdown-grace`) and stops everything it started.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    if let Some(token) = &settings.admin_token {
        token.check().map_err(DemoError::Config)?;
        println!("admin token set: writes and /api/status* ask for Authorization: Bearer <token>");
    }
    let prometheus = crate::recorder::install()?;
    let clock = service_clock(&settings);
    let (data, written) = open_data(&settings, clock).await?;
    // --no-cache reads none of the cache's variables: one it does not use cannot stop it.
    let (redis, caches, config) = if settings.no_cache {
        println!("cache disabled (--no-cache): every request is computed from SQLite");
        (None, Vec::new(), WidgetConfig::default())
    } else {
        build_caches(&settings).await?
    };
    if let (Some(first), true) = (caches.first(), written > 0) {
        forget_views_of_earlier_runs(first).await?;
    }
    let views = ViewSettings {
        timeouts: LoadTimeouts::from_env().map_err(|e| DemoError::Config(e.to_string()))?,
        tiers: config.ttl_tiers,
    };
    // The views this process's readers use: a donation refreshes them in place.
    let live = LiveViews::new();
    let changes = start_dispatcher(&data, caches.first(), views, clock, &live).await;
    // Bound before the nodes are made, so every node knows every port.
    let mut listeners = Vec::new();
    for index in 0..usize::from(settings.nodes) {
        let listener = bind(&settings, index).await?;
        let addr = listener.local_addr().map_err(|source| DemoError::Io {
            context: "reading a listener's address".into(),
            source,
        })?;
        listeners.push((listener, addr));
    }
    let peers: Vec<Peer> = listeners
        .iter()
        .enumerate()
        .map(|(index, (_, addr))| Peer {
            name: node_name(index),
            port: addr.port(),
        })
        .collect();
    let readiness = Readiness::default();
    let mut nodes = Vec::new();
    for (index, peer) in peers.iter().enumerate() {
        let cached = caches.get(index).map(|cache| {
            cached_node(
                cache.clone(),
                &data,
                &settings,
                views,
                clock,
                &live,
                config.targets,
            )
        });
        nodes.push(Arc::new(Node {
            index,
            name: peer.name,
            data: data.clone(),
            cached,
            peers: peers.clone(),
            prometheus: prometheus.clone(),
            invalidation_timeout: INVALIDATION_TIMEOUT,
            clock,
            changes: changes.clone(),
            body_read_timeout: settings.header_read_timeout,
            readiness: readiness.clone(),
            in_flight: tokio::sync::Semaphore::new(settings.max_in_flight as usize),
            max_in_flight: settings.max_in_flight as usize,
            admin_token: settings.admin_token.clone(),
            widget_latency: crate::recent_latency::RecentLatency::default(),
        }));
    }
    let (stop, stopped) = watch::channel(false);
    let mut servers = Vec::new();
    for (node, (listener, addr)) in nodes.iter().zip(listeners) {
        println!("{}: http://{addr}", node.name);
        let app = crate::routes::router(node.clone(), settings.request_timeout);
        servers.push(tokio::spawn(crate::serve::serve(
            listener,
            app,
            timeouts_of(&settings),
            stopped.clone(),
        )));
    }
    if let Some(first) = caches.first() {
        // The listeners answer the probes meanwhile, and every other request a 503 to retry: no
        // request meets a node half warm.
        warm_cache(first, &data, &settings, views, clock, &live).await;
    }
    readiness.set(Stage::Ready);
    println!("ready: {} node(s); Ctrl-C stops", nodes.len());
    shutdown.await;
    stop_serving(&settings, &readiness, &stop, servers).await;
    drop(nodes);
    shut_down_caches(caches).await;
    if let Some(redis) = redis {
        drop(redis);
        println!("stopped the private redis-server");
    }
    println!("stopped");
    Ok(())
}

/// Sends what each node still queues for Redis (invalidations made while it was away) before the
/// process goes, or says how much could not be.
async fn shut_down_caches(caches: Vec<Cache>) {
    for (index, cache) in caches.iter().enumerate() {
        match cache.shutdown().await {
            Ok(done) if done.sent > 0 => {
                println!(
                    "node {index}: sent {} queued invalidation(s) before stopping",
                    done.sent
                );
            }
            Ok(_) => {}
            Err(e) => eprintln!("node {index}: {e}"),
        }
    }
}

/// After the stop signal: `/readyz` turns 503 and the nodes serve `--shutdown-drain` more, then
/// the listeners close and in-flight requests get up to `--shutdown-grace` to finish.
async fn stop_serving(
    settings: &Settings,
    readiness: &Readiness,
    stop: &watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
) {
    readiness.set(Stage::Stopping);
    if !settings.shutdown_drain.is_zero() {
        println!(
            "stopping: /readyz answers 503; serving {:.1} s more before the listeners close (--shutdown-drain)",
            settings.shutdown_drain.as_secs_f64()
        );
        tokio::time::sleep(settings.shutdown_drain).await;
    }
    println!("stopping: letting in-flight requests finish");
    let _ = stop.send(true);
    let deadline = tokio::time::Instant::now() + settings.shutdown_grace;
    for server in servers {
        match tokio::time::timeout_at(deadline, server).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "a listener task failed"),
            Err(_) => {
                tracing::warn!("requests still running after the grace period; stopping anyway");
                break;
            }
        }
    }
}

fn timeouts_of(settings: &Settings) -> ConnectionTimeouts {
    ConnectionTimeouts {
        header_read: settings.header_read_timeout,
        idle: settings.idle_timeout,
    }
}

/// The system clock, or one that starts at `--now` and advances with real time; said at start so
/// figures measured on the run can be quoted with it.
fn service_clock(settings: &Settings) -> OffsetClock {
    if let Some(start) = settings.now {
        println!(
            "clock: starts at {} (--now) and advances with real time",
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        OffsetClock::starting_at(start)
    } else {
        let clock = OffsetClock::default();
        println!(
            "clock: system (at start {})",
            clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        clock
    }
}

/// Opens the database, generating its data (ending at `clock`'s now) when it has none. Returns it
/// and the number of donations generated: 0 when the data was already there.
async fn open_data(
    settings: &Settings,
    clock: OffsetClock,
) -> Result<(WidgetDataAggregationService, i64), DemoError> {
    let data = WidgetDataAggregationService::open(&settings.db)?;
    let started = Instant::now();
    let size = dataset(settings.donations);
    let written = generate_if_empty(&data, size, settings.seed, clock.now()).await?;
    if written > 0 {
        println!(
            "database {}: generated {written} donations in {:.1} s",
            settings.db.display(),
            started.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "database {}: using the data already there",
            settings.db.display()
        );
    }
    Ok((data, written))
}

/// Node `index` of `config` over `url` (or the configured URL). With `require_redis`, fails when
/// Redis does not answer instead of starting without it: that is how the demo asks whether anything
/// answers. Its metrics carry `node="<its name>"`, since the demo's nodes share one process and one
/// `/metrics` would otherwise merge them.
async fn build_cache(
    settings: &Settings,
    config: &tiercache::Config,
    url: Option<&str>,
    require_redis: bool,
    index: usize,
) -> Result<Cache, tiercache::Error> {
    let mut builder = Cache::builder()
        .config(config.clone())
        .namespace(&settings.namespace)
        .node_label(crate::node::node_name(index));
    if require_redis {
        builder = builder.require_redis_at_start(true);
    }
    if let Some(url) = url {
        builder = builder.redis_url(url);
    }
    builder.build().await
}

/// What the demo does when nothing answers at the Redis URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenRedisIsSilent {
    /// Start a private redis-server and use it.
    StartPrivate,
    /// Start the nodes without Redis: they serve from L1 and SQLite and join when it answers.
    StartWithout,
}

/// A private server only when no URL was given (`REDIS_URL` or `--redis-url`): the first command of
/// README.md relies on it (docs/DEMO.md states the rule). A URL that was given names the Redis this
/// fleet shares; a node that started a server of its own instead would cache and invalidate apart
/// from every other node, and keep doing so after the named Redis comes back.
fn when_redis_is_silent(settings: &Settings) -> WhenRedisIsSilent {
    if settings.no_embedded_redis || settings.redis_url.is_some() {
        WhenRedisIsSilent::StartWithout
    } else {
        WhenRedisIsSilent::StartPrivate
    }
}

/// The configuration (`REDIS_URL`, `TIERCACHE_*`, `WIDGET_CACHE_*`, `REDIS_CACHE_DB`) and one cache
/// per node. With `--private-redis`, or when nothing answers and no Redis URL was given (see
/// [`when_redis_is_silent`]), a private server is started and returned: it lives as long as the
/// caller keeps it.
async fn build_caches(
    settings: &Settings,
) -> Result<(Option<PrivateRedis>, Vec<Cache>, WidgetConfig), DemoError> {
    // A bad variable is a cache error, as it was when the cache's builder read the environment.
    let config = match &settings.config {
        Some(file) => {
            let mut config = WidgetConfig::from_toml_file(file).map_err(tiercache::Error::from)?;
            config
                .apply_vars(|name| std::env::var(name).ok())
                .map_err(tiercache::Error::from)?;
            config
        }
        None => WidgetConfig::from_env().map_err(tiercache::Error::from)?,
    };
    let cache_config = &config.cache;
    let wanted = settings.redis_url.as_deref();
    let (redis, first) = if settings.private_redis {
        println!("--private-redis: starting a private redis-server");
        let server = start_private_redis().await?;
        let cache = build_cache(settings, cache_config, Some(&server.url()), false, 0).await?;
        (Some(server), cache)
    } else {
        match build_cache(settings, cache_config, wanted, true, 0).await {
            Ok(cache) => (None, cache),
            Err(e) if matches!(e.kind(), ErrorKind::Redis | ErrorKind::Unavailable) => {
                match when_redis_is_silent(settings) {
                    WhenRedisIsSilent::StartWithout => {
                        // Redis down never keeps the service down: the nodes serve from L1 and
                        // SQLite and join the fleet when Redis answers.
                        let cache = build_cache(settings, cache_config, wanted, false, 0).await?;
                        let why = if settings.no_embedded_redis {
                            "--no-embedded-redis"
                        } else {
                            "a Redis URL was given"
                        };
                        println!(
                            "no Redis answers at {} ({e}); starting without it ({why}: no private \
                             redis-server), the nodes join when it answers",
                            cache.config().display_url()
                        );
                        (None, cache)
                    }
                    WhenRedisIsSilent::StartPrivate => {
                        println!("no Redis answers ({e}); no Redis URL was given: starting a private redis-server");
                        let server = start_private_redis().await?;
                        let cache =
                            build_cache(settings, cache_config, Some(&server.url()), false, 0)
                                .await?;
                        (Some(server), cache)
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    let url = first.config().redis_url.clone();
    println!(
        "Redis {}, namespace {:?}",
        first.config().display_url(),
        settings.namespace
    );
    let mut caches = vec![first];
    for index in 1..settings.nodes {
        caches.push(
            build_cache(
                settings,
                cache_config,
                Some(&url),
                false,
                usize::from(index),
            )
            .await?,
        );
    }
    Ok((redis, caches, config))
}

async fn start_private_redis() -> Result<PrivateRedis, DemoError> {
    let server = tokio::task::spawn_blocking(PrivateRedis::start)
        .await
        .map_err(|e| DemoError::Redis(e.to_string()))?
        .map_err(|e| DemoError::Redis(format!("could not start redis-server: {e}")))?;
    println!(
        "private redis-server at {} (nothing on disk; stopped on exit)",
        server.url()
    );
    Ok(server)
}

/// Starts the process's outbox dispatcher (through node 0's cache) and gives it a few seconds to send
/// what an earlier process committed but did not send (it crashed, or Redis was away), so no node
/// serves a view without those changes once the service is ready. The wait outlasts a row's claim
/// (10 s), which a process killed in the middle of a try may have left.
async fn start_dispatcher(
    data: &WidgetDataAggregationService,
    cache: Option<&Cache>,
    views: ViewSettings,
    clock: OffsetClock,
    live: &LiveViews,
) -> ChangeDispatcher {
    let backlog = data.change_backlog().await.map_or(0, |(rows, _)| rows);
    let changes = match cache {
        Some(cache) => ChangeDispatcher::start_refreshing(
            data.clone(),
            WidgetInvalidationService::new(cache.clone(), Some(data.clone())).with_clock(clock),
            // Counters of its own: a refresh is no reader's request.
            widget_service(
                cache.clone(),
                WidgetCacheMetricsService::in_memory(),
                data,
                views,
                clock,
            ),
            live.clone(),
        ),
        None => ChangeDispatcher::start(data.clone(), None),
    };
    if backlog > 0 {
        let deadline = Instant::now() + Duration::from_secs(12);
        let mut left = backlog;
        while left > 0 && Instant::now() < deadline {
            changes.notify();
            tokio::time::sleep(Duration::from_millis(50)).await;
            left = data.change_backlog().await.map_or(left, |(rows, _)| rows);
        }
        println!(
            "outbox: {backlog} change(s) left undispatched by an earlier run; {left} still waiting (retried in the background)"
        );
    }
    changes
}

/// Loads the views dashboards open first through `cache` (node 0's) and says how many and how long;
/// nothing with `--no-warm-cache`.
async fn warm_cache(
    cache: &Cache,
    data: &WidgetDataAggregationService,
    settings: &Settings,
    views: ViewSettings,
    clock: OffsetClock,
    live: &LiveViews,
) {
    if settings.no_warm_cache {
        return;
    }
    // Counters of its own: warm loads are no one's reads, and some 1,500 misses in node 0's last
    // minute would raise its low-hit-rate alert (a 503 from /health) just after the start. The
    // process's Prometheus series (widget_cache_requests_total) still count them.
    // Recorded in the live views, with what each load computed and the change it counts up to:
    // the dispatcher then brings a warmed view forward when a donation reaches it, and keeps it
    // from expiring, instead of recomputing it on its first donation.
    let warming = widget_service(
        cache.clone(),
        WidgetCacheMetricsService::in_memory(),
        data,
        views,
        clock,
    )
    .with_live_views(live.clone());
    let warmed = crate::warm::warm(&warming, settings.warm_campaigns).await;
    let failed = if warmed.failed > 0 {
        format!(" ({} failed; see the warnings)", warmed.failed)
    } else {
        String::new()
    };
    println!(
        "warmed {} views in {:.1} s through node-0's cache{failed}",
        warmed.views,
        warmed.elapsed.as_secs_f64()
    );
}

/// Called when this start generated the database: views cached in Redis by an earlier run were
/// computed over another database, so none of them is right for this one. Every widget entry
/// carries the `donation` tag, so one tag invalidation retires them all, on every node.
///
/// A start over existing data keeps the cache: the fleet's other nodes are serving it, every write
/// through the service invalidated what it changed, and a rolling restart must not cold-start the
/// whole fleet. (An edit made to the file by hand while no node ran is no write the service saw:
/// the views it changes stay until their TTL.)
async fn forget_views_of_earlier_runs(cache: &Cache) -> Result<(), DemoError> {
    match cache.invalidate_tags(["donation"]).await {
        // Without Redis it waits in the node's queue and is applied before L2 is used again.
        Err(e) if e.is_pending() => Ok(()),
        other => Ok(other?),
    }
}

fn cached_node(
    cache: Cache,
    data: &WidgetDataAggregationService,
    settings: &Settings,
    views: ViewSettings,
    clock: OffsetClock,
    live: &LiveViews,
    targets: ServiceTargets,
) -> CachedNode {
    // Snapshots through the cache: every node's land in the namespace's record list, where
    // `tiercache cache-status` reads them. The metrics keep the system clock: their windows and
    // snapshot times are about when the process ran, and readers (the CLI's snapshot age, /ops)
    // compare them with their own clock.
    let metrics = WidgetCacheMetricsService::for_cache(&cache);
    let widgets = widget_service(cache.clone(), metrics.clone(), data, views, clock)
        .with_snapshots(settings.snapshot_interval)
        .with_live_views(live.clone());
    CachedNode {
        widgets,
        // The service's clock judges which named ranges a donation's date falls in, so a donation
        // dated by it refreshes the periods the views' keys name.
        invalidation: WidgetInvalidationService::new(cache, Some(data.clone())).with_clock(clock),
        metrics,
        targets,
        thresholds: Thresholds::from_targets(&targets),
    }
}

/// How every widget service of the process times its loads and sizes its views' lifetimes.
#[derive(Debug, Clone, Copy)]
struct ViewSettings {
    /// `WIDGET_CACHE_SOFT_TIMEOUT`, `WIDGET_CACHE_HARD_TIMEOUT`.
    timeouts: LoadTimeouts,
    /// `WIDGET_CACHE_*_TTL`.
    tiers: TtlTiers,
}

/// Widget views over `cache` as every node serves them (and start-up warming loads them): the same
/// clock, load timeouts, TTL tiers and campaign directory, so a view's key, lifetime and tags do not
/// depend on which service loaded it.
fn widget_service(
    cache: Cache,
    metrics: WidgetCacheMetricsService,
    data: &WidgetDataAggregationService,
    views: ViewSettings,
    clock: OffsetClock,
) -> WidgetCacheService {
    // Its data also names each campaign's organisation, so scope tags (organization:<id>) reach
    // exactly the campaigns an organisation runs.
    WidgetCacheService::new(cache, data.clone(), metrics)
        .with_load_timeouts(views.timeouts)
        .with_ttl_tiers(views.tiers)
        .with_clock(clock)
}

async fn bind(settings: &Settings, index: usize) -> Result<TcpListener, DemoError> {
    let port = if settings.port == 0 {
        0
    } else {
        u16::try_from(usize::from(settings.port) + index).map_err(|_| {
            DemoError::Config(format!(
                "--port {} + {index} nodes passes 65535",
                settings.port
            ))
        })?
    };
    let addr = SocketAddr::new(settings.bind, port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| DemoError::Io {
            context: format!("listening on {addr} for node {index}"),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str]) -> Settings {
        Settings::try_parse_from(std::iter::once("tiercache-demo").chain(args.iter().copied()))
            .expect("the flags parse")
    }

    #[test]
    fn a_private_redis_is_started_only_when_no_url_was_given() {
        // Set here, not left to the environment the tests run in (REDIS_URL may be set there).
        let mut unnamed = settings(&[]);
        unnamed.redis_url = None;
        unnamed.no_embedded_redis = false;
        assert_eq!(
            when_redis_is_silent(&unnamed),
            WhenRedisIsSilent::StartPrivate,
            "the README's first command: nothing named, nothing answers"
        );
        let mut named = unnamed.clone();
        named.redis_url = Some("redis://10.0.0.5:6379/2".to_owned());
        assert_eq!(
            when_redis_is_silent(&named),
            WhenRedisIsSilent::StartWithout,
            "a named Redis is the fleet's: wait for it"
        );
        let mut refused = unnamed;
        refused.no_embedded_redis = true;
        assert_eq!(
            when_redis_is_silent(&refused),
            WhenRedisIsSilent::StartWithout
        );
    }
}
