//! [`CacheBuilder`]: configure and start a node.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::bus::{start_outbox, start_receiver, BusState};
use crate::cache::{Cache, Handle};
use crate::coherence::Coherence;
use crate::config::{url_names_database, Config, ConfigError, TtlTier};
use crate::error::Error;
use crate::flight::Flights;
use crate::keys::KeySpace;
use crate::l1::L1;
use crate::l2::{nonce, L2};
use crate::metrics::Recorder;
use crate::node::Node;

/// Configures a [`Cache`] node. Methods consume and return the builder; later calls win.
///
/// ```no_run
/// # async fn run() -> Result<(), tiercache::Error> {
/// use std::time::Duration;
/// use tiercache::{Cache, TtlTier};
///
/// let cache = Cache::builder()
///     .from_env()                                  // TIERCACHE_*, WIDGET_CACHE_*, REDIS_URL, REDIS_CACHE_DB
///     .namespace("widgets")
///     .l1_max_bytes(64 << 20)
///     .ttl_tier(TtlTier::Realtime, Duration::from_secs(30))
///     .build()
///     .await?;
/// # drop(cache); Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheBuilder {
    config: Config,
    error: Option<ConfigError>,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheBuilder {
    /// A builder holding the defaults of [`Config::default`].
    pub fn new() -> Self {
        CacheBuilder {
            config: Config::default(),
            error: None,
        }
    }

    /// Starts from a complete configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The Redis URL (`redis://[user:pass@]host:port[/db]`). Default `redis://127.0.0.1:6379`; when it
    /// names no database, `REDIS_CACHE_DB` (default 1) is used. Checked at [`CacheBuilder::build`].
    pub fn redis_url(mut self, url: &str) -> Self {
        url.clone_into(&mut self.config.redis_url);
        self
    }

    /// The namespace; nodes of one namespace share entries and invalidations. Default `default`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.config.namespace);
        self
    }

    /// The L1 bound in bytes, weighed by encoded value size. Default 256 MiB.
    pub fn l1_max_bytes(mut self, bytes: u64) -> Self {
        self.config.l1_max_bytes = bytes;
        self
    }

    /// The largest encoded value accepted, in bytes. Default 16 MiB.
    pub fn max_value_bytes(mut self, bytes: u64) -> Self {
        self.config.max_value_bytes = bytes;
        self
    }

    /// Overrides the duration of one TTL tier.
    pub fn ttl_tier(mut self, tier: TtlTier, ttl: Duration) -> Self {
        let slot = match tier {
            TtlTier::Realtime => &mut self.config.ttl_tiers.realtime,
            TtlTier::Short => &mut self.config.ttl_tiers.short,
            TtlTier::Medium => &mut self.config.ttl_tiers.medium,
            TtlTier::Long => &mut self.config.ttl_tiers.long,
            TtlTier::Daily => &mut self.config.ttl_tiers.daily,
        };
        *slot = ttl;
        self
    }

    /// How often this node publishes a heartbeat; silence for three intervals makes it suspect its
    /// subscription. Default 1 s.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config.heartbeat_interval = interval;
        self
    }

    /// The replay stream's approximate cap (entries). Default 100,000.
    pub fn stream_max_len(mut self, entries: u64) -> Self {
        self.config.stream_max_len = entries;
        self
    }

    /// The response timeout of each Redis call. Default 500 ms.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.config.response_timeout = timeout;
        self
    }

    /// How long past expiry L2 keeps a value as a fail-safe fallback. Default 1 h.
    pub fn fail_safe_max(mut self, grace: Duration) -> Self {
        self.config.fail_safe_max = grace;
        self
    }

    /// Reads the environment (see [`Config::from_env`]) over what is set so far; a bad variable is
    /// reported by [`CacheBuilder::build`].
    pub fn from_env(mut self) -> Self {
        if let Err(e) = self.config.apply_vars(|name| std::env::var(name).ok()) {
            self.error.get_or_insert(e);
        }
        self
    }

    /// Connects to Redis, subscribes to the namespace's bus and returns the node.
    pub async fn build(self) -> Result<Cache, Error> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        let config = self.config;
        config.validate()?;
        let url = url_with_database(&config.redis_url, config.redis_db);
        let client = redis::Client::open(url.as_str())?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = match tokio::time::timeout(
            config.connect_timeout * 3,
            ConnectionManager::new_with_config(client.clone(), manager_config),
        )
        .await
        {
            Ok(conn) => conn?,
            Err(_) => {
                return Err(Error::Unavailable(format!(
                    "could not connect to Redis at {} within {:?}",
                    config.redis_url,
                    config.connect_timeout * 3
                )))
            }
        };
        let keys = KeySpace::new(&config.namespace, config.max_key_bytes);
        // A generation must outlive any load it fences; loads longer than this are never stored.
        let generation_ttl = (config.lock_timeout * 2).max(Duration::from_secs(600));
        let (fills, _) = tokio::sync::broadcast::channel(1024);
        let mut outbox_task = None;
        let node = Arc::new_cyclic(|weak| {
            let (outbox, task) = start_outbox(weak.clone());
            outbox_task = Some(task);
            Node {
                id: nonce(),
                l1: L1::new(config.l1_max_bytes),
                l2: L2::new(conn, keys.clone(), generation_ttl),
                keys,
                flights: Arc::new(Flights::default()),
                stats: Recorder::new(&config.namespace),
                coherence: Coherence::new(),
                bus: BusState::new(),
                outbox,
                recovering: AtomicBool::new(false),
                recovery_requested: AtomicBool::new(false),
                fills,
                fault_skip_publish: std::sync::atomic::AtomicU32::new(0),
                breaker: crate::breaker::Breaker::new(),
                degraded_fills: AtomicBool::new(false),
                shut_down: AtomicBool::new(false),
                config,
            }
        });
        let mut tasks: Vec<_> = outbox_task.into_iter().collect();
        tasks.extend(start_receiver(&node, client).await?);
        // Only once nothing can fail: a JoinHandle dropped with a failed build does not abort its
        // task, and the sweeper would outlive the node.
        tasks.push(node.l1.start_sweeper());
        tasks.push(start_publisher(Arc::downgrade(&node)));
        tasks.push(crate::ops::start_presence(Arc::downgrade(&node)));
        Ok(Cache {
            handle: Arc::new(Handle { node, tasks }),
        })
    }
}

/// Hands the node's counters to the `metrics` recorder every [`crate::PUBLISH_INTERVAL`].
fn start_publisher(node: std::sync::Weak<Node>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(crate::PUBLISH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(node) = node.upgrade() else { return };
            node.stats.publish();
        }
    })
}

/// Adds `/db` to a URL that names no database (TCP URLs only).
fn url_with_database(url: &str, db: u16) -> String {
    if url_names_database(url) || url.starts_with("unix") || url.starts_with("redis+unix") {
        return url.to_owned();
    }
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let mut out = format!("{}/{db}", base.trim_end_matches('/'));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::url_with_database;

    #[test]
    fn database_is_added_only_when_the_url_names_none() {
        assert_eq!(url_with_database("redis://h:1", 1), "redis://h:1/1");
        assert_eq!(url_with_database("redis://h:1/", 2), "redis://h:1/2");
        assert_eq!(url_with_database("redis://h:1/5", 2), "redis://h:1/5");
        assert_eq!(
            url_with_database("redis://h:1?protocol=resp3", 3),
            "redis://h:1/3?protocol=resp3"
        );
    }
}
