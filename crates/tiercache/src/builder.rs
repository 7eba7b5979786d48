//! [`CacheBuilder`]: configure and start a node.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::bus::receiver::{join_fleet, start_joiner, start_receiver};
use crate::bus::sender::start_outbox;
use crate::cache::{Cache, Handle};
use crate::config::{Config, ConfigError};
use crate::config::{EntryLayout, ValueCodec};
use crate::error::Error;
use crate::keys::KeySpace;
use crate::l2::connection::RedisClient;
use crate::l2::{nonce, L2Settings, ReplicaAcks, L2};
use crate::metrics::Recorder;
use crate::node::bus_side::BusSide;
use crate::node::l1_side::L1Side;
use crate::node::l2_side::L2Side;
use crate::node::Node;

/// Configures a [`Cache`] node. Methods consume and return the builder; later calls win.
///
/// ```no_run
/// # async fn run() -> Result<(), tiercache::Error> {
/// use std::time::Duration;
/// use tiercache::Cache;
///
/// let cache = Cache::builder()
///     .from_env()                                  // REDIS_URL, TIERCACHE_* (Config::SETTINGS)
///     .namespace("widgets")
///     .l1_max_bytes(64 << 20)
///     .default_ttl(Duration::from_secs(300))
///     .build()
///     .await?;
/// # drop(cache); Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheBuilder {
    config: Config,
    error: Option<ConfigError>,
    /// A client the service built itself ([`CacheBuilder::redis_client`]), used instead of one made
    /// from the configuration's URL.
    client: Option<redis::Client>,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl Cache {
    /// Starts configuring a node.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tiercache::Error> {
    /// let cache = tiercache::Cache::builder()
    ///     .redis_url("redis://127.0.0.1:6379/1")
    ///     .namespace("widgets")
    ///     .l1_max_bytes(256 << 20)
    ///     .build()
    ///     .await?;
    /// # drop(cache); Ok(()) }
    /// ```
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }
}

impl CacheBuilder {
    /// A builder holding the defaults of [`Config::default`].
    pub fn new() -> Self {
        CacheBuilder {
            config: Config::default(),
            error: None,
            client: None,
        }
    }

    /// Starts from a complete configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The Redis URL (`redis://[user:pass@]host:port[/db]`). Default `redis://127.0.0.1:6379`; when it
    /// names no database, [`CacheBuilder::redis_db`] is used. Checked at [`CacheBuilder::build`].
    pub fn redis_url(mut self, url: &str) -> Self {
        url.clone_into(&mut self.config.redis_url);
        self
    }

    /// Talks to one Redis server through `client`, a `redis::Client` the service built itself (from
    /// a `ConnectionInfo`, with `redis::Client::build_with_tls` for its own certificates, ...)
    /// instead of a URL. The node opens its command and bus connections from it, with this builder's
    /// timeouts; the client's database is the node's. Its address (never its password) stands in
    /// for the URL in errors and status documents. For a cluster, use
    /// [`CacheBuilder::cluster_urls`]; `build` refuses both at once.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://cache.internal:6379/2")?;
    /// let cache = tiercache::Cache::builder().redis_client(client).namespace("widgets").build().await?;
    /// # Ok(()) }
    /// ```
    pub fn redis_client(mut self, client: redis::Client) -> Self {
        self.config.redis_url = url_naming(client.get_connection_info());
        self.config.redis_db = 0;
        self.client = Some(client);
        self
    }

    /// Talks to a Redis Cluster instead of one server: `urls` are seed nodes (any of the cluster's
    /// nodes; the client learns the rest and follows slots as they move). `rediss://`, the user and
    /// the password work as on one server; a cluster has only database 0, so `redis_db` does not
    /// apply. Redis 7 or newer: the bus uses sharded pub/sub. Same as `REDIS_CLUSTER_URLS`.
    ///
    /// ```
    /// let builder = tiercache::Cache::builder()
    ///     .cluster_urls(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]);
    /// # drop(builder);
    /// ```
    pub fn cluster_urls(mut self, urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.config.redis_cluster_urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// How many replicas must acknowledge an invalidation (`WAIT`) before it counts as done, so a
    /// failover to a replica cannot lose it. Default 1 on a cluster, 0 on one server
    /// (`TIERCACHE_REPLICA_ACKS`); 0 for a cluster without replicas.
    pub fn replica_acks(mut self, replicas: u32) -> Self {
        self.config.replica_acks = Some(replicas);
        self
    }

    /// The ACL user to log in as when the URL names none. Default none (`REDIS_USERNAME`).
    pub fn redis_username(mut self, username: &str) -> Self {
        self.config.redis_username = Some(username.to_owned());
        self
    }

    /// The password to log in with when the URL holds none. Default none (`REDIS_PASSWORD`). It is
    /// never printed: not by `Debug`, logs or errors.
    pub fn redis_password(mut self, password: &str) -> Self {
        self.config.redis_password = Some(password.to_owned());
        self
    }

    /// A PEM file with the certificate authority that a `rediss://` server's certificate must chain
    /// to. Default none: the system's root certificates (`TIERCACHE_TLS_CA_FILE`).
    pub fn tls_ca_cert_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.tls_ca_cert_file = Some(path.into());
        self
    }

    /// A client certificate and its private key (PEM files) this node presents to a `rediss://`
    /// server, or every node of a cluster, that authenticates its clients (`tls-auth-clients yes`).
    /// `TIERCACHE_TLS_CLIENT_CERT_FILE` and `TIERCACHE_TLS_CLIENT_KEY_FILE`.
    pub fn tls_client_cert(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.config.tls_client_cert_file = Some(cert.into());
        self.config.tls_client_key_file = Some(key.into());
        self
    }

    /// The namespace; nodes of one namespace share entries and invalidations. Default `default`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.config.namespace);
        self
    }

    /// Labels every metric of this node `node="<label>"` (`TIERCACHE_NODE_LABEL`), so nodes that
    /// share a process or a host are told apart on a dashboard. Default: no such label.
    pub fn node_label(mut self, label: impl Into<String>) -> Self {
        self.config.node_label = Some(label.into());
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

    /// The database used when the Redis URL names none. Default 1 (`TIERCACHE_REDIS_DB`).
    pub fn redis_db(mut self, db: u16) -> Self {
        self.config.redis_db = db;
        self
    }

    /// The lifetime of entries whose options ask for the default
    /// ([`crate::EntryOptions::default_ttl`]). Default 900 s (`TIERCACHE_DEFAULT_TTL`).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = ttl;
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

    /// How entries are kept in Redis. Default [`EntryLayout::String`]; [`EntryLayout::Hash`] while
    /// nodes of a release before layout 2 share the namespace (see "Upgrading" in
    /// docs/OPERATIONS.md).
    pub fn entry_layout(mut self, layout: EntryLayout) -> Self {
        self.config.entry_layout = layout;
        self
    }

    /// The format this node writes values in. Default [`ValueCodec::Bincode`]; with the `postcard`
    /// feature, `ValueCodec::Postcard` (maintained, where bincode 2 is not). A node reads entries
    /// of every codec it has compiled in and treats others as misses, so a fleet can change codec
    /// node by node once every node runs a release that knows codecs (see "Upgrading" in
    /// docs/OPERATIONS.md).
    pub fn value_codec(mut self, codec: ValueCodec) -> Self {
        self.config.value_codec = codec;
        self
    }

    /// How long one attempt to connect to Redis may take. Default 1 s. A node that cannot join within
    /// three of these starts without Redis (see [`CacheBuilder::require_redis_at_start`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The response timeout of each Redis call. Default 500 ms.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.config.response_timeout = timeout;
        self
    }

    /// How long a call that missed L1 waits for Redis, all told. Default 750 ms. Past it an L2 read
    /// still running is cut short (the call loads without L2, as when Redis is unreachable), and a
    /// call whose loader has returned answers without waiting for the value's store, which lands
    /// later or fails. A store normally takes one round trip, so a call that returns has its value in
    /// Redis. Counted in `tiercache_read_deadline_hits_total`. Loaders' time does not count (a slow
    /// query is not a slow Redis), and waiting for another node's load is not cut short: that is the
    /// fleet's coalescing, bounded by the lease.
    pub fn read_deadline(mut self, deadline: Duration) -> Self {
        self.config.read_deadline = deadline;
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

    /// How many invalidation operations (a key, a tag) that could not reach Redis are kept for
    /// replay. Default 10,000. Past it the queue is dropped and, when Redis answers, every entry of
    /// the namespace is deleted from L2 and every node drops its L1 (`TIERCACHE_MAX_PENDING_INVALIDATIONS`).
    pub fn max_pending_invalidations(mut self, operations: usize) -> Self {
        self.config.max_pending_invalidations = operations;
        self
    }

    /// The most distinct tag versions this node keeps in memory (`TIERCACHE_MAX_KNOWN_TAGS`, default
    /// 1,000,000). Past it the node forgets the versions no L1 entry carries, so requests that make
    /// ever new tags cost a pass over L1, never L1 itself. Values below 2 are raised to 2.
    pub fn max_known_tags(mut self, tags: usize) -> Self {
        self.config.max_known_tags = tags.max(2);
        self
    }

    /// How long [`crate::Cache::shutdown`] keeps sending queued invalidations before it gives up
    /// (`TIERCACHE_SHUTDOWN_TIMEOUT`, default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// How long L1 keeps a value loaded while this node cannot reach Redis. Default 500 ms
    /// (`TIERCACHE_DEGRADED_TTL`). No invalidation reaches the node then, so this bounds how long it
    /// may serve a value that another node invalidated meanwhile.
    pub fn degraded_ttl(mut self, ttl: Duration) -> Self {
        self.config.degraded_ttl = ttl;
        self
    }

    /// Whether [`CacheBuilder::build`] fails when Redis cannot be reached. Default `false`: the node
    /// starts anyway, serving from L1 and the loaders (coalesced per node) while it reconnects in the
    /// background; once Redis answers it subscribes to the bus, drops what L1 took meanwhile and
    /// joins the fleet. `true` keeps the fail-fast start (`TIERCACHE_REQUIRE_REDIS_AT_START`).
    pub fn require_redis_at_start(mut self, required: bool) -> Self {
        self.config.require_redis_at_start = required;
        self
    }

    /// Returns the node: connected to Redis and subscribed to the namespace's bus when Redis answers
    /// within three connect timeouts; otherwise (unless [`CacheBuilder::require_redis_at_start`])
    /// a node running on L1 and its loaders that joins the fleet in the background once Redis answers.
    pub async fn build(self) -> Result<Cache, Error> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        let config = self.config;
        config.validate()?;
        let client = match self.client {
            Some(_) if !config.redis_cluster_urls.is_empty() => {
                return Err(ConfigError::InvalidValue {
                    var: "REDIS_CLUSTER_URLS".into(),
                    value: config.redis_cluster_urls.join(","),
                    expected: "no cluster seeds beside a redis::Client, which reaches one server \
                               (give either CacheBuilder::redis_client or cluster_urls)"
                        .into(),
                }
                .into())
            }
            Some(client) => RedisClient::Server(client),
            None => RedisClient::from_config(&config)?,
        };
        let conn = client.connection(&config)?;
        let acks = ReplicaAcks::for_config(&client, &config)?;
        let keys = KeySpace::with_tag_limits(
            &config.namespace,
            config.max_key_bytes,
            crate::keys::TagLimits {
                max_tags: config.max_tags,
                max_tag_bytes: config.max_tag_bytes,
            },
        )
        .with_layout(config.entry_layout);
        // A generation must outlive any load it fences; loads longer than this are never stored.
        let generation_ttl = (config.lock_timeout * 2).max(Duration::from_secs(600));
        let (fills, _) = tokio::sync::broadcast::channel(1024);
        let mut outbox_task = None;
        let node = Arc::new_cyclic(|weak| {
            let (outbox, task) = start_outbox(weak.clone());
            outbox_task = Some(task);
            Node {
                id: nonce(),
                l1: L1Side::new(config.l1_max_bytes, config.max_known_tags),
                l2: L2Side::new(
                    L2::new(
                        conn,
                        keys.clone(),
                        L2Settings {
                            generation_ttl,
                            stream_max_len: config.stream_max_len,
                            acks,
                            write_waits: config.response_timeout,
                        },
                    ),
                    config.max_pending_invalidations,
                ),
                bus: BusSide::new(outbox),
                keys,
                stats: Recorder::new(&config.namespace, config.node_label.as_deref()),
                fills,
                repairs_logged: std::sync::atomic::AtomicU16::new(0),
                shut_down: AtomicBool::new(false),
                config,
            }
        });
        let mut tasks: Vec<_> = outbox_task.into_iter().collect();
        let limit = node.config.connect_timeout * 3;
        match tokio::time::timeout(limit, join_fleet(&node, &client)).await {
            Ok(Ok(pubsub)) => {
                node.l2.joined.store(true, Ordering::Release);
                tasks.extend(start_receiver(&node, client, pubsub));
            }
            failed if node.config.require_redis_at_start => {
                let at = format!(
                    "could not connect to Redis at {}",
                    node.config.masked_target()
                );
                return Err(match failed {
                    // The Redis error is kept as the source: a caller can tell a refused
                    // connection from an ACL denial without parsing the message.
                    Ok(Err(e)) => Error::unavailable_because(at, e),
                    _ => Error::unavailable(format!("{at}: no answer within {limit:?}")),
                });
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {limit:?}"),
                };
                tracing::warn!(
                    namespace = %node.config.namespace,
                    redis = %node.config.masked_target(),
                    error = %why,
                    "Redis unreachable at start; serving from L1 and loaders until it answers"
                );
                tasks.push(start_joiner(Arc::downgrade(&node), client));
            }
        }
        // Only once nothing can fail: a JoinHandle dropped with a failed build does not abort its
        // task, and the sweeper would outlive the node.
        tasks.push(node.l1.entries.start_sweeper());
        tasks.push(start_publisher(Arc::downgrade(&node)));
        tasks.push(crate::ops::start_presence(Arc::downgrade(&node)));
        Ok(Cache {
            handle: Arc::new(Handle { node, tasks }),
        })
    }
}

/// Hands the node's counters to the `metrics` recorder every [`crate::metrics::PUBLISH_INTERVAL`].
fn start_publisher(node: std::sync::Weak<Node>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(crate::metrics::PUBLISH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(node) = node.upgrade() else { return };
            node.publish_metrics();
        }
    })
}

/// A URL naming where `info` connects, for errors and status documents: scheme, address and
/// database, never the user or password.
fn url_naming(info: &redis::ConnectionInfo) -> String {
    let db = info.redis_settings().db();
    match info.addr() {
        redis::ConnectionAddr::Unix(path) => format!("redis+unix://{}?db={db}", path.display()),
        tls @ redis::ConnectionAddr::TcpTls { .. } => format!("rediss://{tls}/{db}"),
        tcp => format!("redis://{tcp}/{db}"),
    }
}
