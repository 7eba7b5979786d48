//! [`Admin::server_info`]: the Redis server's memory and statistics, from `INFO`.

use serde::Serialize;

use crate::admin::Admin;
use crate::error::Error;

/// Redis memory and statistics from `INFO`, as the cache's connection sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    /// `redis_version`.
    pub version: String,
    /// `uptime_in_seconds`.
    pub uptime_seconds: u64,
    /// `connected_clients` (each node has three: commands, subscriber, and its pool's reconnects).
    pub connected_clients: u64,
    /// `used_memory`, bytes.
    pub used_memory: u64,
    /// `maxmemory`, bytes (0 = unlimited).
    pub maxmemory: u64,
    /// `maxmemory_policy`.
    pub maxmemory_policy: String,
    /// `evicted_keys`: keys Redis dropped for `maxmemory`.
    pub evicted_keys: u64,
    /// `expired_keys`.
    pub expired_keys: u64,
    /// `keyspace_hits`.
    pub keyspace_hits: u64,
    /// `keyspace_misses`.
    pub keyspace_misses: u64,
    /// `total_commands_processed`.
    pub total_commands_processed: u64,
    /// `instantaneous_ops_per_sec`.
    pub ops_per_sec: u64,
    /// The database the cache uses.
    pub database: u16,
    /// Keys in that database, every program's and namespace's.
    pub database_keys: u64,
}

/// The value of `name` in `INFO` text (`name:value` lines).
fn field<'a>(info: &'a str, name: &str) -> &'a str {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map_or("", str::trim)
}

fn number(info: &str, name: &str) -> u64 {
    field(info, name).parse().unwrap_or(0)
}

/// The database a URL names, else `fallback` (as the builder connects).
fn database(url: &str, fallback: u16) -> u16 {
    crate::config::url_database_part(url)
        .parse()
        .unwrap_or(fallback)
}

impl ServerInfo {
    fn parse(info: &str, database: u16) -> Self {
        // "db1:keys=12,expires=3,avg_ttl=0"
        let database_keys = field(info, &format!("db{database}"))
            .split(',')
            .find_map(|kv| kv.strip_prefix("keys="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        ServerInfo {
            version: field(info, "redis_version").to_owned(),
            uptime_seconds: number(info, "uptime_in_seconds"),
            connected_clients: number(info, "connected_clients"),
            used_memory: number(info, "used_memory"),
            maxmemory: number(info, "maxmemory"),
            maxmemory_policy: field(info, "maxmemory_policy").to_owned(),
            evicted_keys: number(info, "evicted_keys"),
            expired_keys: number(info, "expired_keys"),
            keyspace_hits: number(info, "keyspace_hits"),
            keyspace_misses: number(info, "keyspace_misses"),
            total_commands_processed: number(info, "total_commands_processed"),
            ops_per_sec: number(info, "instantaneous_ops_per_sec"),
            database,
            database_keys,
        }
    }
}

impl Admin<'_> {
    /// Redis memory and statistics from `INFO`. Also the cheapest way to ask whether Redis answers.
    /// On a cluster, the figures of the master holding the namespace's stream and tag versions.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// let info = cache.admin().server_info().await?;
    /// println!("Redis {} uses {} bytes", info.version, info.used_memory);
    /// # Ok(()) }
    /// ```
    pub async fn server_info(&self) -> Result<ServerInfo, Error> {
        let node = self.node();
        // On a cluster: the master holding the namespace's stream, tag versions and channel.
        let stream = node.keys.stream();
        let info: String = node
            .guarded(async {
                node.l2
                    .redis
                    .conn
                    .info_at(&stream)
                    .await
                    .map_err(Error::from)
            })
            .await?;
        let db = if node.config.redis_cluster_urls.is_empty() {
            database(&node.config.redis_url, node.config.redis_db)
        } else {
            0
        };
        Ok(ServerInfo::parse(&info, db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_read_by_field_name_not_prefix() {
        let info =
            "# Server\r\nredis_version:7.0.15\r\nused_memory:1000\r\nused_memory_human:1K\r\n\
                    maxmemory:0\r\nmaxmemory_policy:noeviction\r\n# Keyspace\r\n\
                    db1:keys=12,expires=3,avg_ttl=0\r\ndb10:keys=99,expires=0,avg_ttl=0\r\n";
        let s = ServerInfo::parse(info, 1);
        assert_eq!(s.version, "7.0.15");
        assert_eq!((s.used_memory, s.maxmemory), (1000, 0));
        assert_eq!(s.maxmemory_policy, "noeviction");
        assert_eq!((s.database, s.database_keys), (1, 12));
        assert_eq!(ServerInfo::parse(info, 10).database_keys, 99);
    }

    #[test]
    fn the_database_is_the_urls_else_the_fallback() {
        assert_eq!(database("redis://h:1/4", 1), 4);
        assert_eq!(database("redis://h:1", 1), 1);
        assert_eq!(database("redis://h:1/?protocol=resp3", 2), 2);
    }
}
