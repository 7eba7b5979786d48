//! How a node reaches Redis: one server through a `ConnectionManager`, or a Redis Cluster through the
//! redis crate's cluster client, which follows MOVED and ASK redirections and reconnects by itself.
//!
//! Everything above sends commands through [`Connection`], which is `ConnectionLike` either way, and
//! asks this module only what differs between the two: whether commands on keys of different slots
//! may share one pipeline or script ([`Connection::is_cluster`]), how to wait for replicas, and how to
//! subscribe to the bus (a plain channel on a server, a sharded one on a cluster).

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    AggregateOp, MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, SingleNodeRoutingInfo, Slot,
    SlotAddr,
};
use redis::{Cmd, ConnectionInfo, Pipeline, PushKind, RedisFuture, Value};

use crate::config::{mask_credentials, url_names_database, Config};
use crate::error::Error;

/// Where a node's Redis is, ready to open command and subscriber connections.
#[derive(Clone)]
pub(crate) enum RedisClient {
    Server(redis::Client),
    Cluster(ClusterSeeds),
}

/// What a cluster client is built from: a subscriber needs a client of its own (it carries the
/// channel that pushes arrive on), so the seeds are kept rather than one client.
#[derive(Clone)]
pub(crate) struct ClusterSeeds {
    nodes: Vec<ConnectionInfo>,
    root_cert: Option<Vec<u8>>,
    client_tls: Option<redis::ClientTlsConfig>,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl ClusterSeeds {
    fn builder(&self) -> ClusterClientBuilder {
        let mut builder = ClusterClientBuilder::new(self.nodes.clone())
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.response_timeout)
            .retries(2);
        if self.root_cert.is_some() || self.client_tls.is_some() {
            builder = builder.certs(redis::TlsCertificates {
                client_tls: self.client_tls.clone(),
                root_cert: self.root_cert.clone(),
            });
        }
        builder
    }

    fn client(&self) -> Result<ClusterClient, redis::RedisError> {
        self.builder().build()
    }
}

impl RedisClient {
    /// The client a configuration names: [`Config::redis_cluster_urls`] when set, else
    /// [`Config::redis_url`] with its database. User, password and TLS roots apply to every node.
    /// No error shows a password.
    pub(crate) fn from_config(config: &Config) -> Result<RedisClient, Error> {
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                Error::unavailable(format!("cannot read the {what} {}: {e}", path.display()))
            })
        };
        let root_cert = match &config.tls_ca_cert_file {
            Some(path) => Some(read("TLS CA file", path)?),
            None => None,
        };
        // Config::validate holds that both are set or neither.
        let client_tls = match (&config.tls_client_cert_file, &config.tls_client_key_file) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: read("TLS client certificate", cert)?,
                client_key: read("TLS client key", key)?,
            }),
            _ => None,
        };
        if config.redis_cluster_urls.is_empty() {
            let url = url_with_database(&config.redis_url, config.redis_db);
            let info = connection_info(config, &config.redis_url, &url)?;
            let client = if is_tls(&info) && (root_cert.is_some() || client_tls.is_some()) {
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls,
                        root_cert,
                    },
                )
            } else {
                redis::Client::open(info)
            };
            return client.map(RedisClient::Server).map_err(|e| {
                Error::unavailable(format!(
                    "cannot use the Redis URL {}: {}",
                    mask_credentials(&config.redis_url),
                    e.category()
                ))
            });
        }
        let nodes = config
            .redis_cluster_urls
            .iter()
            .map(|url| connection_info(config, url, url))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = nodes.iter().any(is_tls);
        let seeds = ClusterSeeds {
            root_cert: root_cert.filter(|_| tls),
            client_tls: client_tls.filter(|_| tls),
            nodes,
            connect_timeout: config.connect_timeout,
            response_timeout: config.response_timeout,
        };
        // Built once here so a bad combination (seeds with different passwords) fails the build.
        seeds.client().map_err(|e| {
            Error::unavailable(format!(
                "cannot use the {}: {}",
                config.masked_target(),
                e.category()
            ))
        })?;
        Ok(RedisClient::Cluster(seeds))
    }

    /// The command connection. Lazy either way: it connects on first use and reconnects by itself,
    /// so a node can be built while Redis is down.
    pub(crate) fn connection(&self, config: &Config) -> Result<Connection, Error> {
        match self {
            RedisClient::Server(client) => {
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.connect_timeout))
                    .set_response_timeout(Some(config.response_timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                Ok(Connection::Server(ConnectionManager::new_lazy_with_config(
                    client.clone(),
                    manager_config,
                )?))
            }
            RedisClient::Cluster(seeds) => {
                let cluster_config = ClusterConfig::new()
                    .set_connection_timeout(config.connect_timeout)
                    .set_response_timeout(config.response_timeout);
                Ok(Connection::Cluster(
                    seeds
                        .client()?
                        .get_pending_async_connection_with_config(cluster_config),
                ))
            }
        }
    }

    /// A new subscription to the bus `channel`: `SUBSCRIBE` on a server, `SSUBSCRIBE` on a cluster
    /// (the shard channel lives on the master of its slot, beside the replay stream).
    pub(crate) async fn subscribe(&self, channel: &str) -> Result<Subscriber, redis::RedisError> {
        match self {
            RedisClient::Server(client) => {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                Ok(Subscriber::Server(pubsub))
            }
            RedisClient::Cluster(seeds) => {
                let (pushes, received) = tokio::sync::mpsc::unbounded_channel();
                let client = seeds
                    .builder()
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(pushes)
                    .build()?;
                let mut conn = client.get_async_connection().await?;
                conn.ssubscribe(channel).await?;
                Ok(Subscriber::Cluster { conn, received })
            }
        }
    }
}

/// A subscription to the bus.
pub(crate) enum Subscriber {
    Server(redis::aio::PubSub),
    Cluster {
        /// Held so the connection lives as long as the subscription; nothing is sent on it.
        conn: ClusterConnection,
        received: tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    },
}

impl Subscriber {
    /// The payloads of the messages received, in order. The stream ends when the subscription is
    /// lost: the connection closed, or (on a cluster) any node connection dropped or the channel's
    /// slot moved. The cluster client would quietly subscribe again, but whatever was published
    /// meanwhile is gone, so the bus must treat the moment as a gap.
    pub(crate) fn into_payloads(self) -> BoxStream<'static, Vec<u8>> {
        match self {
            Subscriber::Server(pubsub) => pubsub
                .into_on_message()
                .map(|msg| msg.get_payload_bytes().to_vec())
                .boxed(),
            Subscriber::Cluster { conn, received } => {
                stream::unfold((conn, received), |(conn, mut received)| async move {
                    loop {
                        let push = received.recv().await?;
                        match push.kind {
                            PushKind::SMessage | PushKind::Message => {
                                // [channel, payload]
                                let payload = push.data.into_iter().nth(1)?;
                                if let Value::BulkString(bytes) = payload {
                                    return Some((bytes, (conn, received)));
                                }
                            }
                            PushKind::Disconnection
                            | PushKind::SUnsubscribe
                            | PushKind::Unsubscribe => return None,
                            _ => {}
                        }
                    }
                })
                .boxed()
            }
        }
    }
}

/// A node's command connection: `ConnectionLike` over a server or a cluster.
#[derive(Clone)]
pub(crate) enum Connection {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Server(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Server(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Server(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

impl Connection {
    /// Whether Redis is a cluster: then one script or pipeline touches one slot only.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Connection::Cluster(_))
    }

    /// The command that publishes on the bus's channel: `PUBLISH`, or `SPUBLISH` on a cluster (a
    /// shard channel, carried by the master of its slot and its replicas only).
    pub(crate) fn publish_command(&self) -> &'static str {
        if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// Sends groups of commands in order, each group on one slot, and returns every reply in the
    /// order sent. A server takes them all in one pipelined round trip; a cluster takes one round
    /// trip per non-empty group, a group finishing before the next begins (the callers rely on that
    /// order). Per-command errors come back in place as error values.
    pub(crate) async fn pipelines_in_order(
        &self,
        groups: Vec<Pipeline>,
    ) -> Result<Vec<Value>, redis::RedisError> {
        let mut conn = self.clone();
        if !self.is_cluster() {
            let mut all = redis::pipe();
            all.ignore_errors();
            for group in &groups {
                for cmd in group.cmd_iter() {
                    all.add_command(cmd.clone());
                }
            }
            return all.query_async(&mut conn).await;
        }
        let mut replies = Vec::new();
        for mut group in groups {
            if group.cmd_iter().next().is_none() {
                continue;
            }
            group.ignore_errors();
            let mut part: Vec<Value> = group.query_async(&mut conn).await?;
            replies.append(&mut part);
        }
        Ok(replies)
    }

    /// `INFO` of the server, or of the master holding `key`'s slot on a cluster.
    pub(crate) async fn info_at(&self, key: &str) -> Result<String, redis::RedisError> {
        match self {
            Connection::Server(c) => redis::cmd("INFO").query_async(&mut c.clone()).await,
            Connection::Cluster(c) => {
                let route = redis::cluster_routing::Route::with_key(key, SlotAddr::Master);
                let reply = c
                    .clone()
                    .route_command(
                        redis::cmd("INFO"),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                redis::from_redis_value(reply).map_err(redis::RedisError::from)
            }
        }
    }

    /// Waits until `replicas` replicas have acknowledged this connection's writes, at most
    /// `timeout`, and returns how many did. `at` names the master on a cluster: the one holding a
    /// key's slot, or every master at once (then the fewest acknowledgements of any). A server answers
    /// for the one connection to it.
    ///
    /// `WAIT` holds the connection it is sent on until it returns: send it only on a connection
    /// nothing else is waiting on.
    pub(crate) fn wait_for_replicas<'a>(
        &'a self,
        at: WaitAt<'a>,
        replicas: u32,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<i64, redis::RedisError>> {
        Box::pin(async move {
            let mut wait = redis::cmd("WAIT");
            wait.arg(replicas).arg(timeout.as_millis().max(1) as u64);
            match self {
                Connection::Server(c) => wait.query_async(&mut c.clone()).await,
                Connection::Cluster(c) => {
                    let routing = match at {
                        WaitAt::SlotOf(key) => {
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                                redis::cluster_routing::Route::with_key(key, SlotAddr::Master),
                            ))
                        }
                        WaitAt::EveryMaster => RoutingInfo::MultiNode((
                            MultipleNodeRoutingInfo::AllMasters,
                            Some(ResponsePolicy::Aggregate(AggregateOp::Min)),
                        )),
                    };
                    let reply = c.clone().route_command(wait, routing).await?;
                    redis::from_redis_value(reply).map_err(redis::RedisError::from)
                }
            }
        })
    }
}

/// Which master a `WAIT` goes to on a cluster (see [`Connection::wait_for_replicas`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum WaitAt<'a> {
    /// The master of this key's slot.
    SlotOf(&'a str),
    /// Every master, at once.
    EveryMaster,
}

/// Where one `SCAN` cursor runs: the server, or one master of a cluster (a cursor belongs to one
/// node, so a cluster is scanned master by master).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanAt {
    Server,
    Master { host: String, port: u16 },
}

impl Connection {
    /// The nodes a full `SCAN` must visit: the server, or every master of the cluster (from `CLUSTER
    /// NODES`; a master marked failed is left out, since its slots went to the replica promoted in
    /// its place). An error when the masters found do not serve all 16,384 slots (a failover still
    /// running): a scan that skipped a slot would miss its keys.
    async fn scan_targets(&self) -> Result<Vec<ScanAt>, redis::RedisError> {
        let Connection::Cluster(c) = self else {
            return Ok(vec![ScanAt::Server]);
        };
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut c.clone())
            .await?;
        let (masters, served) = cluster_masters(&nodes);
        if served != 16_384 {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "the cluster's masters do not serve every slot now",
                format!("{served} of 16384 served"),
            )));
        }
        Ok(masters)
    }

    /// A full `SCAN` for `patterns`, page by page ([`ScanPages::next_page`]): every pattern on the
    /// server, or on every master of the cluster.
    pub(crate) fn scan<'a>(&'a self, patterns: &'a [String]) -> ScanPages<'a> {
        ScanPages {
            conn: self,
            patterns,
            targets: None,
            next: 0,
            cursor: 0,
        }
    }

    /// One page of `SCAN cursor MATCH pattern COUNT count` at `at`: the next cursor and the keys.
    async fn scan_page(
        &self,
        at: &ScanAt,
        cursor: u64,
        pattern: &str,
        count: usize,
    ) -> Result<(u64, Vec<Vec<u8>>), redis::RedisError> {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        match (self, at) {
            (Connection::Cluster(c), ScanAt::Master { host, port }) => {
                let reply = c
                    .clone()
                    .route_command(
                        scan,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        }),
                    )
                    .await?;
                redis::from_redis_value(reply).map_err(redis::RedisError::from)
            }
            _ => scan.query_async(&mut self.clone()).await,
        }
    }

    /// `GET` and `PTTL` of each key, in order, as `[value, ttl]` replies (an error reply in place of
    /// a value of another type). One round trip on a server; on a cluster, where each key may be in
    /// another slot, one per key, all at once.
    pub(crate) async fn get_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<[Value; 2]>, redis::RedisError> {
        let pair = |key: &str| {
            let mut pipe = redis::pipe();
            pipe.ignore_errors()
                .cmd("GET")
                .arg(key)
                .cmd("PTTL")
                .arg(key);
            pipe
        };
        let replies: Vec<Value> = if self.is_cluster() {
            futures_util::future::try_join_all(keys.iter().map(|key| async move {
                pair(key).query_async::<Vec<Value>>(&mut self.clone()).await
            }))
            .await?
            .into_iter()
            .flatten()
            .collect()
        } else {
            self.pipelines_in_order(keys.iter().map(|key| pair(key)).collect())
                .await?
        };
        let mut replies = replies.into_iter();
        Ok(std::iter::from_fn(|| Some([replies.next()?, replies.next()?])).collect())
    }

    /// Deletes `keys` without blocking Redis (`UNLINK`): one command on a server, one per slot on a
    /// cluster.
    pub(crate) async fn unlink(&self, keys: &[&str]) -> Result<(), redis::RedisError> {
        if keys.is_empty() {
            return Ok(());
        }
        if !self.is_cluster() {
            return redis::cmd("UNLINK")
                .arg(keys)
                .exec_async(&mut self.clone())
                .await;
        }
        let mut by_slot: std::collections::HashMap<Slot, Vec<&str>> =
            std::collections::HashMap::new();
        for key in keys {
            by_slot.entry(slot_of(key)).or_default().push(key);
        }
        futures_util::future::try_join_all(by_slot.into_values().map(|keys| async move {
            redis::cmd("UNLINK")
                .arg(keys)
                .exec_async(&mut self.clone())
                .await
        }))
        .await?;
        Ok(())
    }
}

/// Keys asked for per `SCAN` call: large enough to cross a big keyspace in few round trips, small
/// enough that one call never holds Redis for long.
const SCAN_COUNT: usize = 1000;

/// A `SCAN` in progress over every (node, pattern) pair ([`Connection::scan`]). A key created or
/// removed while it runs may be missed or listed; every key present for the whole scan is listed.
pub(crate) struct ScanPages<'a> {
    conn: &'a Connection,
    patterns: &'a [String],
    /// Learnt on the first page.
    targets: Option<Vec<ScanAt>>,
    /// The (node, pattern) pair being scanned, as `node * patterns + pattern`.
    next: usize,
    cursor: u64,
}

impl ScanPages<'_> {
    /// The keys of the next page (possibly none), or `None` once every node and pattern is done.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<Vec<u8>>>, redis::RedisError> {
        if self.patterns.is_empty() {
            return Ok(None);
        }
        let targets = match &self.targets {
            Some(targets) => targets,
            None => self.targets.insert(self.conn.scan_targets().await?),
        };
        let Some(at) = targets.get(self.next / self.patterns.len()) else {
            return Ok(None);
        };
        let pattern = &self.patterns[self.next % self.patterns.len()];
        let (cursor, keys) = self
            .conn
            .scan_page(at, self.cursor, pattern, SCAN_COUNT)
            .await?;
        if cursor == 0 {
            self.next += 1;
        }
        self.cursor = cursor;
        Ok(Some(keys))
    }
}

/// The masters of a `CLUSTER NODES` reply that are not marked failed (`fail?`, only suspected by
/// one node, still serves), and how many slots they serve: `<id> <ip:port@cport[,host]> <flags>
/// <master> <ping> <pong> <epoch> <link> <slot ranges...>` per line. The address is the one the
/// redis crate's client knows the node by with the default endpoint type (IP).
fn cluster_masters(nodes: &str) -> (Vec<ScanAt>, u32) {
    let mut served = 0;
    let masters = nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (address, flags) = (fields.get(1)?, fields.get(2)?);
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master") || flags.contains(&"fail") {
                return None;
            }
            served += fields
                .iter()
                .skip(8)
                .filter(|range| !range.starts_with('['))
                .map(|range| match range.split_once('-') {
                    Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
                        (Ok(a), Ok(b)) => b.saturating_sub(a) + 1,
                        _ => 0,
                    },
                    None => u32::from(range.parse::<u32>().is_ok()),
                })
                .sum::<u32>();
            let address = address.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some(ScanAt::Master {
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port: port.parse().ok()?,
            })
        })
        .collect();
    (masters, served)
}

/// The cluster slot of a key (hash tags honoured), for grouping keys one script per slot.
pub(crate) fn slot_of(key: &str) -> Slot {
    Slot::for_key(key)
}

fn is_tls(info: &ConnectionInfo) -> bool {
    matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. })
}

/// Parses one URL into connection settings, adding the configured user and password where the URL
/// names none. `shown` is the URL as the user wrote it (masked in errors); `url` may have the
/// database added. Only the parser's error category is kept: its message may repeat the URL,
/// password and all.
fn connection_info(config: &Config, shown: &str, url: &str) -> Result<ConnectionInfo, Error> {
    use redis::IntoConnectionInfo;
    let mut info = url.into_connection_info().map_err(|e| {
        Error::unavailable(format!(
            "cannot use the Redis URL {}: {}",
            mask_credentials(shown),
            e.category()
        ))
    })?;
    let mut settings = info.redis_settings().clone();
    if let (None, Some(user)) = (settings.username(), &config.redis_username) {
        settings = settings.set_username(user);
    }
    if let (None, Some(password)) = (settings.password(), &config.redis_password) {
        settings = settings.set_password(password);
    }
    info = info.set_redis_settings(settings);
    if is_tls(&info) {
        // redis's rustls has no crypto provider of its own; a provider installed by the service first
        // is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    Ok(info)
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
    use super::{cluster_masters, url_with_database, ScanAt};

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let nodes = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1 4 connected
67ed 127.0.0.1:30002@40002,host2 master - 0 1 2 connected 5461-10922
292f 127.0.0.1:30005@40005 master,fail - 0 1 3 connected
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
";
        let master = |port| ScanAt::Master {
            host: "127.0.0.1".into(),
            port,
        };
        assert_eq!(
            cluster_masters(nodes),
            (vec![master(30002), master(30001)], 10_923)
        );
        let suspected =
            "292f 127.0.0.1:30003@40003 master,fail? - 0 1 3 connected 10923-16383 16000";
        assert_eq!(
            cluster_masters(suspected),
            (vec![master(30003)], 5_462),
            "a master only suspected still serves"
        );
    }

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
