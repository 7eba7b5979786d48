//! Settings: one typed [`Config`], parsed and validated here and nowhere else.
//!
//! [`Config::from_env`] reads `REDIS_URL`, the connection's other `REDIS_*` variables and the
//! `TIERCACHE_*` variables, each declared once in [`Config::SETTINGS`] (`settings.rs`) with its form,
//! unit and doc; that table drives parsing, the error for a bad value and the docs' table. Every bad
//! value becomes a [`ConfigError`] naming the variable, the value and what is allowed.
//!
//! Units: lifetimes and leases (`TIERCACHE_DEFAULT_TTL`, `TIERCACHE_LOCK_TIMEOUT`,
//! `TIERCACHE_FAIL_SAFE_MAX`) are seconds when written as a bare number (`900`); timeouts and
//! intervals are milliseconds when bare (`200`); any duration may carry a unit instead (`250ms`,
//! `30s`, `15m`, `2h`). The table names each variable's unit.

mod error;
mod file;
mod layout;
mod parse;
mod redis_url;
mod settings;
mod table;
mod value_codec;

use std::time::Duration;

pub use error::ConfigError;
pub use file::{settings_in_toml, settings_in_toml_file};
pub use layout::EntryLayout;
pub use parse::{parse_duration_setting, BareUnit};
pub(crate) use redis_url::{mask_credentials, url_database_part, url_names_database};
use redis_url::{mask_password, validate_redis_url};
pub use table::{Setting, SettingValue, SettingsTable, WholeNumber, SETTINGS_TABLE_HEADER};
pub use value_codec::ValueCodec;

/// Every setting of a cache node. Build one with [`crate::CacheBuilder`] or [`Config::from_env`].
///
/// Its `Debug` output masks the URL's credentials and the password.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// `REDIS_URL`, default `redis://127.0.0.1:6379`. `redis://user:password@host:port/db` logs in;
    /// `rediss://` speaks TLS (see `tls_ca_cert_file`).
    pub redis_url: String,
    /// `REDIS_CLUSTER_URLS` (comma-separated), default none: seed nodes of a Redis Cluster. When set,
    /// the node talks to the cluster and `redis_url` and `redis_db` are not used (a cluster has only
    /// database 0). User, password and TLS settings apply to every node.
    pub redis_cluster_urls: Vec<String>,
    /// `TIERCACHE_REPLICA_ACKS`, default none: how many replicas must acknowledge an invalidation
    /// before it counts as done (`WAIT`), so that a master failing over to its replica cannot lose it
    /// and bring back a value it deleted. `None` means 1 on a cluster and 0 on a single server; set 0
    /// for a cluster without replicas, where waiting would only time out.
    pub replica_acks: Option<u32>,
    /// `REDIS_USERNAME`, default none: the ACL user, when the URL names none.
    pub redis_username: Option<String>,
    /// `REDIS_PASSWORD`, default none: the password, when the URL holds none (so it need not be
    /// written into a URL that may be logged elsewhere). Never printed.
    pub redis_password: Option<String>,
    /// `TIERCACHE_TLS_CA_FILE`, default none: a PEM file of the certificate authority a `rediss://`
    /// server's certificate must chain to; without it the system's roots are used.
    pub tls_ca_cert_file: Option<std::path::PathBuf>,
    /// `TIERCACHE_TLS_CLIENT_CERT_FILE`, default none: a PEM certificate this node presents to a
    /// `rediss://` server that authenticates its clients (`tls-auth-clients yes`); needs the key.
    pub tls_client_cert_file: Option<std::path::PathBuf>,
    /// `TIERCACHE_TLS_CLIENT_KEY_FILE`, default none: the PEM private key of the client certificate.
    pub tls_client_key_file: Option<std::path::PathBuf>,
    /// `TIERCACHE_REDIS_DB`, default 1: the database used when the URL names none.
    pub redis_db: u16,
    /// `TIERCACHE_NAMESPACE`, default `default`. Keys of different namespaces never collide.
    pub namespace: String,
    /// `TIERCACHE_NODE_LABEL`, unset by default: when set, every metric of the node carries the
    /// label `node` with this value, so nodes that share a process or a host stay apart.
    pub node_label: Option<String>,
    /// `TIERCACHE_L1_MAX_BYTES`, default 256 MiB: the L1 bound, weighed by encoded size.
    pub l1_max_bytes: u64,
    /// `TIERCACHE_MAX_VALUE_BYTES`, default 16 MiB: larger values are refused on write and treated
    /// as corrupt on read.
    pub max_value_bytes: u64,
    /// `TIERCACHE_MAX_KEY_BYTES`, default 1024: longer keys are an [`crate::Error::InvalidKey`].
    pub max_key_bytes: usize,
    /// `TIERCACHE_MAX_TAGS`, default 64: more tags on one entry (or in one `invalidate_tags` call)
    /// are an [`crate::Error::InvalidTag`].
    pub max_tags: usize,
    /// `TIERCACHE_MAX_TAG_BYTES`, default 256: longer or empty tags are an [`crate::Error::InvalidTag`].
    pub max_tag_bytes: usize,
    /// `TIERCACHE_CONNECT_TIMEOUT` (bare number = ms), default 1 s.
    pub connect_timeout: Duration,
    /// `TIERCACHE_RESPONSE_TIMEOUT` (bare number = ms), default 500 ms.
    pub response_timeout: Duration,
    /// `TIERCACHE_READ_DEADLINE` (bare number = ms), default 750 ms: how long a call that missed L1
    /// waits for Redis, all told ([`crate::CacheBuilder::read_deadline`]).
    pub read_deadline: Duration,
    /// `TIERCACHE_DEFAULT_TTL` (bare number = s), default 900 s: the lifetime of entries whose
    /// options ask for the default ([`crate::EntryOptions::default_ttl`]).
    pub default_ttl: Duration,
    /// `TIERCACHE_REFRESH_AHEAD`, default true: a hit on an ageing entry starts a background refresh.
    pub refresh_ahead: bool,
    /// `TIERCACHE_REFRESH_THRESHOLD`, default 0.8: fraction of the TTL after which a hit refreshes.
    pub refresh_threshold: f64,
    /// `TIERCACHE_REFRESH_MODE` (`threshold` or `xfetch`) and `TIERCACHE_XFETCH_BETA` (default 1.0).
    pub refresh_mode: RefreshMode,
    /// `TIERCACHE_LOCKING_ENABLED`, default true: fleet-wide load coalescing through Redis leases.
    pub locking_enabled: bool,
    /// `TIERCACHE_LOCK_TIMEOUT` (bare number = s), default 30 s: the lease of a distributed lock.
    pub lock_timeout: Duration,
    /// `TIERCACHE_LOCK_RETRIES`, default 3: how often [`crate::LockOptions::from_config`] retries.
    pub lock_retries: u32,
    /// `TIERCACHE_STREAM_MAX_LEN`, default 100,000: the replay log's cap.
    pub stream_max_len: u64,
    /// `TIERCACHE_ENTRY_LAYOUT` (`1` or `2`), default 2: how entries are kept in Redis. Layout 1 is
    /// the one tiercache used before, kept for rolling upgrades (see "Upgrading" in docs/OPERATIONS.md).
    pub entry_layout: EntryLayout,
    /// `TIERCACHE_VALUE_CODEC` (`bincode`, or `postcard` with the `postcard` feature), default
    /// `bincode`: the format this node writes payloads in. It reads entries of every codec it has
    /// compiled in; one of another codec is a miss.
    pub value_codec: ValueCodec,
    /// `TIERCACHE_HEARTBEAT_INTERVAL` (bare number = ms), default 1 s.
    pub heartbeat_interval: Duration,
    /// `TIERCACHE_FAIL_SAFE_MAX` (bare number = s), default 1 h: how long past expiry L2 keeps a value as a
    /// stale fallback.
    pub fail_safe_max: Duration,
    /// `TIERCACHE_REQUIRE_REDIS_AT_START`, default false: when true, building a node fails while
    /// Redis is unreachable; when false the node starts on L1 and its loaders and joins the fleet
    /// once Redis answers.
    pub require_redis_at_start: bool,
    /// `TIERCACHE_MAX_PENDING_INVALIDATIONS`, default 10,000: invalidation operations kept for replay
    /// while Redis cannot be reached; past it the namespace is cleared when Redis answers.
    pub max_pending_invalidations: usize,
    /// `TIERCACHE_DEGRADED_TTL` (bare number = ms), default 500 ms: how long L1 keeps a value loaded
    /// while this node cannot reach Redis. No invalidation can reach the node then, so this bounds how
    /// long it may serve a value another node has invalidated meanwhile (plus the load's own time);
    /// longer spares the loaders during an outage, shorter bounds staleness tighter.
    pub degraded_ttl: Duration,
    /// `TIERCACHE_MAX_KNOWN_TAGS`, default 1,000,000: the most distinct tag versions a node keeps in
    /// memory; past it the node forgets those no L1 entry carries.
    pub max_known_tags: usize,
    /// `TIERCACHE_SHUTDOWN_TIMEOUT` (bare number = ms), default 5 s: how long
    /// [`crate::Cache::shutdown`] keeps sending what is queued before it gives up.
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            redis_cluster_urls: Vec::new(),
            replica_acks: None,
            redis_username: None,
            redis_password: None,
            tls_ca_cert_file: None,
            tls_client_cert_file: None,
            tls_client_key_file: None,
            redis_db: 1,
            namespace: "default".to_owned(),
            node_label: None,
            l1_max_bytes: 256 << 20,
            max_value_bytes: 16 << 20,
            max_key_bytes: 1024,
            max_tags: 64,
            max_tag_bytes: 256,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
            read_deadline: Duration::from_millis(750),
            default_ttl: Duration::from_secs(900),
            refresh_ahead: true,
            refresh_threshold: 0.8,
            refresh_mode: RefreshMode::Threshold,
            locking_enabled: true,
            lock_timeout: Duration::from_secs(30),
            lock_retries: 3,
            stream_max_len: 100_000,
            entry_layout: EntryLayout::String,
            value_codec: ValueCodec::Bincode,
            heartbeat_interval: Duration::from_secs(1),
            fail_safe_max: Duration::from_secs(3600),
            require_redis_at_start: false,
            max_pending_invalidations: 10_000,
            degraded_ttl: Duration::from_millis(500),
            max_known_tags: crate::coherence::MAX_KNOWN_TAGS,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so a new field cannot be forgotten here, and none is printed unmasked by accident.
        let Config {
            redis_url,
            redis_cluster_urls,
            replica_acks,
            redis_username,
            redis_password,
            tls_ca_cert_file,
            tls_client_cert_file,
            tls_client_key_file,
            redis_db,
            namespace,
            node_label,
            l1_max_bytes,
            max_value_bytes,
            max_key_bytes,
            max_tags,
            max_tag_bytes,
            connect_timeout,
            response_timeout,
            read_deadline,
            default_ttl,
            refresh_ahead,
            refresh_threshold,
            refresh_mode,
            locking_enabled,
            lock_timeout,
            lock_retries,
            stream_max_len,
            entry_layout,
            value_codec,
            heartbeat_interval,
            fail_safe_max,
            require_redis_at_start,
            max_pending_invalidations,
            degraded_ttl,
            max_known_tags,
            shutdown_timeout,
        } = self;
        f.debug_struct("Config")
            .field("redis_url", &mask_credentials(redis_url))
            .field(
                "redis_cluster_urls",
                &redis_cluster_urls
                    .iter()
                    .map(|u| mask_credentials(u))
                    .collect::<Vec<_>>(),
            )
            .field("replica_acks", replica_acks)
            .field("redis_username", redis_username)
            .field("redis_password", &redis_password.as_ref().map(|_| "***"))
            .field("tls_ca_cert_file", tls_ca_cert_file)
            .field("tls_client_cert_file", tls_client_cert_file)
            .field("tls_client_key_file", tls_client_key_file)
            .field("redis_db", redis_db)
            .field("namespace", namespace)
            .field("node_label", node_label)
            .field("l1_max_bytes", l1_max_bytes)
            .field("max_value_bytes", max_value_bytes)
            .field("max_key_bytes", max_key_bytes)
            .field("max_tags", max_tags)
            .field("max_tag_bytes", max_tag_bytes)
            .field("connect_timeout", connect_timeout)
            .field("response_timeout", response_timeout)
            .field("read_deadline", read_deadline)
            .field("default_ttl", default_ttl)
            .field("refresh_ahead", refresh_ahead)
            .field("refresh_threshold", refresh_threshold)
            .field("refresh_mode", refresh_mode)
            .field("locking_enabled", locking_enabled)
            .field("lock_timeout", lock_timeout)
            .field("lock_retries", lock_retries)
            .field("stream_max_len", stream_max_len)
            .field("entry_layout", entry_layout)
            .field("value_codec", value_codec)
            .field("heartbeat_interval", heartbeat_interval)
            .field("fail_safe_max", fail_safe_max)
            .field("require_redis_at_start", require_redis_at_start)
            .field("max_pending_invalidations", max_pending_invalidations)
            .field("degraded_ttl", degraded_ttl)
            .field("max_known_tags", max_known_tags)
            .field("shutdown_timeout", shutdown_timeout)
            .finish()
    }
}

impl Config {
    /// The Redis URL as this configuration connects to it, fit to print for an operator: the password
    /// replaced by `***` (the user name kept), and the database named when the URL names none, since
    /// `redis_db` applies then.
    ///
    /// ```
    /// let mut config = tiercache::Config::default();
    /// config.redis_url = "redis://ops:secret@cache.internal:6379".into();
    /// assert_eq!(config.display_url(), "redis://ops:***@cache.internal:6379 (database 1)");
    /// ```
    pub fn display_url(&self) -> String {
        if !self.redis_cluster_urls.is_empty() {
            return self.cluster_seeds(mask_password);
        }
        let masked = mask_password(&self.redis_url);
        if url_names_database(&masked)
            || masked.starts_with("unix")
            || masked.starts_with("redis+unix")
        {
            masked
        } else {
            format!(
                "{} (database {})",
                masked.trim_end_matches('/'),
                self.redis_db
            )
        }
    }

    /// Where this configuration connects, for log lines and errors: user and password hidden.
    pub(crate) fn masked_target(&self) -> String {
        if self.redis_cluster_urls.is_empty() {
            return mask_credentials(&self.redis_url);
        }
        self.cluster_seeds(mask_credentials)
    }

    /// `Redis Cluster <seed>,<seed>...`, each URL passed through `mask`.
    fn cluster_seeds(&self, mask: fn(&str) -> String) -> String {
        let seeds: Vec<String> = self.redis_cluster_urls.iter().map(|u| mask(u)).collect();
        format!("Redis Cluster {}", seeds.join(","))
    }

    /// How many replicas acknowledge an invalidation before it counts as done
    /// ([`Config::replica_acks`] with its default applied).
    pub(crate) fn replica_acks(&self) -> u32 {
        self.replica_acks
            .unwrap_or(u32::from(!self.redis_cluster_urls.is_empty()))
    }

    /// Reads the process environment over the defaults.
    ///
    /// ```
    /// let config = tiercache::Config::from_env().expect("valid environment");
    /// assert!(config.l1_max_bytes > 0);
    /// ```
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut config = Config::default();
        config.apply_vars(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Reads a TOML settings file over the defaults: its keys are the variables' names (either
    /// case) and its values take the variables' forms. The environment is not read; apply it on top
    /// with [`Config::apply_vars`] when it should win over the file.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("tiercache-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let file = dir.join("cache.toml");
    /// std::fs::write(&file, "redis_url = \"redis://cache.internal:6379\"\ntiercache_default_ttl = \"15m\"\n").unwrap();
    /// let mut config = tiercache::Config::from_toml_file(&file)?;
    /// assert_eq!(config.default_ttl, std::time::Duration::from_secs(900));
    /// config.apply_vars(|name| std::env::var(name).ok())?; // the environment over the file
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), tiercache::ConfigError>(())
    /// ```
    pub fn from_toml_file(path: impl AsRef<std::path::Path>) -> Result<Config, ConfigError> {
        let known: Vec<&str> = Config::SETTINGS.rows().iter().map(|s| s.name).collect();
        let settings = settings_in_toml_file(path.as_ref(), &known)?;
        let mut config = Config::default();
        config.apply_vars(|name| settings.get(name).cloned())?;
        Ok(config)
    }

    /// Applies variables from `lookup` (a stand-in for the environment) over this config, then
    /// checks the whole ([`Config::validate`]).
    ///
    /// ```
    /// let mut config = tiercache::Config::default();
    /// let err = config
    ///     .apply_vars(|name| (name == "TIERCACHE_LOCK_RETRIES").then(|| "many".to_owned()))
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("TIERCACHE_LOCK_RETRIES"));
    /// ```
    pub fn apply_vars(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        Config::SETTINGS.apply(self, lookup)?;
        self.validate()
    }

    /// Checks relations between settings that no single value can break.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |var: &str, value: String, expected: &str| ConfigError::InvalidValue {
            var: var.to_owned(),
            value,
            expected: expected.to_owned(),
        };
        validate_redis_url(&self.redis_url)?;
        if self.tls_client_cert_file.is_some() != self.tls_client_key_file.is_some() {
            let (var, value) = match &self.tls_client_cert_file {
                Some(cert) => ("TIERCACHE_TLS_CLIENT_CERT_FILE", cert.display().to_string()),
                None => (
                    "TIERCACHE_TLS_CLIENT_KEY_FILE",
                    self.tls_client_key_file
                        .as_ref()
                        .map(|key| key.display().to_string())
                        .unwrap_or_default(),
                ),
            };
            return Err(invalid(
                var,
                value,
                "a client certificate and its key together (TIERCACHE_TLS_CLIENT_CERT_FILE and TIERCACHE_TLS_CLIENT_KEY_FILE)",
            ));
        }
        for url in &self.redis_cluster_urls {
            validate_redis_url(url)?;
            let db = url_database_part(url);
            if !db.is_empty() && db != "0" {
                return Err(ConfigError::InvalidRedisUrl {
                    url: mask_credentials(url),
                    part: "database",
                    problem: format!("{db:?}: a Redis Cluster has only database 0"),
                });
            }
            if url.starts_with("unix") || url.starts_with("redis+unix") {
                return Err(ConfigError::InvalidRedisUrl {
                    url: mask_credentials(url),
                    part: "scheme",
                    problem: "a Redis Cluster is reached over TCP: use redis:// or rediss://"
                        .into(),
                });
            }
        }
        // Braces would cut the cluster hash tag of entry keys short, glob characters would widen the
        // ACL patterns and the namespace clear, and control characters or spaces only confuse logs.
        let allowed = |c: char| {
            c.is_ascii_graphic() && !matches!(c, '{' | '}' | '*' | '?' | '[' | ']' | '\\')
        };
        if self.namespace.is_empty()
            || self.namespace.len() > 256
            || !self.namespace.chars().all(allowed)
        {
            return Err(invalid(
                "TIERCACHE_NAMESPACE",
                self.namespace.clone(),
                "a non-empty name of at most 256 printable ASCII characters, without spaces, braces or * ? [ ] \\",
            ));
        }
        if self.default_ttl.is_zero() {
            return Err(invalid(
                "TIERCACHE_DEFAULT_TTL",
                "0".into(),
                "a positive duration",
            ));
        }
        Ok(())
    }
}

/// When a hit starts a background refresh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RefreshMode {
    /// Once the entry has lived `refresh_threshold` of its TTL (default 0.8).
    Threshold,
    /// Probabilistic early refresh: refresh when `load_time × beta × −ln(U) ≥ time left`, U uniform in
    /// (0, 1]. `beta` = 1 is the optimum of the paper; larger refreshes earlier.
    XFetch {
        /// The eagerness factor.
        beta: f64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(url: &str, db: u16) -> String {
        Config {
            redis_url: url.to_owned(),
            redis_db: db,
            ..Config::default()
        }
        .display_url()
    }

    #[test]
    fn a_printed_url_never_shows_the_password_and_names_its_database() {
        assert_eq!(
            shown("redis://user:secret@host:6379/2", 1),
            "redis://user:***@host:6379/2"
        );
        assert_eq!(
            shown("redis://:secret@host", 1),
            "redis://:***@host (database 1)"
        );
        assert_eq!(
            shown("redis://127.0.0.1:6379", 3),
            "redis://127.0.0.1:6379 (database 3)"
        );
        assert_eq!(mask_password("redis://host:6379"), "redis://host:6379");
    }
}
