//! Settings: one typed [`Config`], parsed and validated here and nowhere else.
//!
//! [`Config::from_env`] reads the `TIERCACHE_*`, `WIDGET_CACHE_*`, `REDIS_URL` and `REDIS_CACHE_DB`
//! variables. Every bad value becomes a [`ConfigError`] naming the variable, the value and what is allowed.
//!
//! Units: TTLs and lock timeouts are seconds when written as a bare number (`900`), response times are
//! milliseconds when bare (`200`); any duration may carry a unit instead (`250ms`, `30s`, `15m`, `2h`).
//! Rates (`*_HIT_RATE`, `*_ERROR_RATE`) are percentages from 0 to 100, with or without a `%` sign.

mod error;
mod layout;
mod redis_url;

use std::time::Duration;

pub use error::ConfigError;
pub use layout::EntryLayout;
pub(crate) use redis_url::{mask_credentials, url_database_part, url_names_database};
use redis_url::{mask_password, validate_redis_url};

/// The five TTL tiers of the widget domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TtlTier {
    /// Numbers that move by the minute (60 s by default).
    Realtime,
    /// Recent figures (300 s by default).
    Short,
    /// The default tier (900 s by default).
    Medium,
    /// Ranges that are mostly closed (3600 s by default).
    Long,
    /// Closed past ranges (24 h by default).
    Daily,
}

impl TtlTier {
    /// Every tier, shortest first.
    pub const ALL: [TtlTier; 5] = [
        TtlTier::Realtime,
        TtlTier::Short,
        TtlTier::Medium,
        TtlTier::Long,
        TtlTier::Daily,
    ];
}

/// The duration of each [`TtlTier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlTiers {
    /// `WIDGET_CACHE_REALTIME_TTL`, default 60 s.
    pub realtime: Duration,
    /// `WIDGET_CACHE_SHORT_TTL`, default 300 s.
    pub short: Duration,
    /// `WIDGET_CACHE_MEDIUM_TTL`, default 900 s.
    pub medium: Duration,
    /// `WIDGET_CACHE_LONG_TTL`, default 3600 s.
    pub long: Duration,
    /// `WIDGET_CACHE_DAILY_TTL`, default 24 h.
    pub daily: Duration,
}

impl Default for TtlTiers {
    fn default() -> Self {
        TtlTiers {
            realtime: Duration::from_secs(60),
            short: Duration::from_secs(300),
            medium: Duration::from_secs(900),
            long: Duration::from_secs(3600),
            daily: Duration::from_secs(86_400),
        }
    }
}

impl TtlTiers {
    /// The duration of `tier`.
    pub fn ttl(&self, tier: TtlTier) -> Duration {
        match tier {
            TtlTier::Realtime => self.realtime,
            TtlTier::Short => self.short,
            TtlTier::Medium => self.medium,
            TtlTier::Long => self.long,
            TtlTier::Daily => self.daily,
        }
    }
}

/// Service-level targets used by health scoring and alerts (the widget layer reads them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceTargets {
    /// `WIDGET_CACHE_TARGET_RESPONSE_TIME` (bare number = ms), default 100 ms.
    pub target_response_time: Duration,
    /// `WIDGET_CACHE_MAX_RESPONSE_TIME` (bare number = ms), default 500 ms.
    pub max_response_time: Duration,
    /// `WIDGET_CACHE_TARGET_HIT_RATE` as a fraction (env in percent), default 0.95.
    pub target_hit_rate: f64,
    /// `WIDGET_CACHE_MIN_HIT_RATE` as a fraction (env in percent), default 0.90.
    pub min_hit_rate: f64,
    /// `WIDGET_CACHE_MAX_ERROR_RATE` as a fraction (env in percent), default 0.01.
    pub max_error_rate: f64,
}

impl Default for ServiceTargets {
    fn default() -> Self {
        ServiceTargets {
            target_response_time: Duration::from_millis(100),
            max_response_time: Duration::from_millis(500),
            target_hit_rate: 0.95,
            min_hit_rate: 0.90,
            max_error_rate: 0.01,
        }
    }
}

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
    /// `REDIS_CACHE_DB`, default 1: the database used when the URL names none.
    pub redis_db: u16,
    /// `TIERCACHE_NAMESPACE`, default `default`. Keys of different namespaces never collide.
    pub namespace: String,
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
    /// `WIDGET_CACHE_DEFAULT_TTL` (seconds), default 900 s.
    pub default_ttl: Duration,
    /// The TTL tiers.
    pub ttl_tiers: TtlTiers,
    /// `WIDGET_CACHE_REFRESH_AHEAD`, default true.
    pub refresh_ahead: bool,
    /// `WIDGET_CACHE_REFRESH_THRESHOLD`, default 0.8: fraction of the TTL after which a hit refreshes.
    pub refresh_threshold: f64,
    /// `TIERCACHE_REFRESH_MODE` (`threshold` or `xfetch`) and `TIERCACHE_XFETCH_BETA` (default 1.0).
    pub refresh_mode: crate::RefreshMode,
    /// `WIDGET_CACHE_LOCKING_ENABLED`, default true: fleet-wide load coalescing through Redis leases.
    pub locking_enabled: bool,
    /// `WIDGET_CACHE_LOCK_TIMEOUT` (seconds), default 30 s: the lease of a distributed lock.
    pub lock_timeout: Duration,
    /// `WIDGET_CACHE_LOCK_RETRIES`, default 3.
    pub lock_retries: u32,
    /// `TIERCACHE_STREAM_MAX_LEN`, default 100,000: the replay log's cap.
    pub stream_max_len: u64,
    /// `TIERCACHE_ENTRY_LAYOUT` (`1` or `2`), default 2: how entries are kept in Redis. Layout 1 is
    /// the one tiercache used before, kept for rolling upgrades (see the README's "Upgrading").
    pub entry_layout: EntryLayout,
    /// `TIERCACHE_HEARTBEAT_INTERVAL` (bare number = ms), default 1 s.
    pub heartbeat_interval: Duration,
    /// `TIERCACHE_FAIL_SAFE_MAX` (seconds), default 1 h: how long past expiry L2 keeps a value as a
    /// stale fallback.
    pub fail_safe_max: Duration,
    /// Service-level targets.
    pub targets: ServiceTargets,
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
            redis_db: 1,
            namespace: "default".to_owned(),
            l1_max_bytes: 256 << 20,
            max_value_bytes: 16 << 20,
            max_key_bytes: 1024,
            max_tags: 64,
            max_tag_bytes: 256,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
            default_ttl: Duration::from_secs(900),
            ttl_tiers: TtlTiers::default(),
            refresh_ahead: true,
            refresh_threshold: 0.8,
            refresh_mode: crate::RefreshMode::Threshold,
            locking_enabled: true,
            lock_timeout: Duration::from_secs(30),
            lock_retries: 3,
            stream_max_len: 100_000,
            entry_layout: EntryLayout::String,
            heartbeat_interval: Duration::from_secs(1),
            fail_safe_max: Duration::from_secs(3600),
            targets: ServiceTargets::default(),
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
            redis_db,
            namespace,
            l1_max_bytes,
            max_value_bytes,
            max_key_bytes,
            max_tags,
            max_tag_bytes,
            connect_timeout,
            response_timeout,
            default_ttl,
            ttl_tiers,
            refresh_ahead,
            refresh_threshold,
            refresh_mode,
            locking_enabled,
            lock_timeout,
            lock_retries,
            stream_max_len,
            entry_layout,
            heartbeat_interval,
            fail_safe_max,
            targets,
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
            .field("redis_db", redis_db)
            .field("namespace", namespace)
            .field("l1_max_bytes", l1_max_bytes)
            .field("max_value_bytes", max_value_bytes)
            .field("max_key_bytes", max_key_bytes)
            .field("max_tags", max_tags)
            .field("max_tag_bytes", max_tag_bytes)
            .field("connect_timeout", connect_timeout)
            .field("response_timeout", response_timeout)
            .field("default_ttl", default_ttl)
            .field("ttl_tiers", ttl_tiers)
            .field("refresh_ahead", refresh_ahead)
            .field("refresh_threshold", refresh_threshold)
            .field("refresh_mode", refresh_mode)
            .field("locking_enabled", locking_enabled)
            .field("lock_timeout", lock_timeout)
            .field("lock_retries", lock_retries)
            .field("stream_max_len", stream_max_len)
            .field("entry_layout", entry_layout)
            .field("heartbeat_interval", heartbeat_interval)
            .field("fail_safe_max", fail_safe_max)
            .field("targets", targets)
            .field("require_redis_at_start", require_redis_at_start)
            .field("max_pending_invalidations", max_pending_invalidations)
            .field("degraded_ttl", degraded_ttl)
            .field("max_known_tags", max_known_tags)
            .field("shutdown_timeout", shutdown_timeout)
            .finish()
    }
}

/// The unit a bare number stands for.
#[derive(Clone, Copy)]
enum BareUnit {
    Seconds,
    Millis,
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

    /// Applies variables from `lookup` (a stand-in for the environment) over this config.
    ///
    /// ```
    /// let mut config = tiercache::Config::default();
    /// let err = config
    ///     .apply_vars(|name| (name == "WIDGET_CACHE_LOCK_RETRIES").then(|| "many".to_owned()))
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("WIDGET_CACHE_LOCK_RETRIES"));
    /// ```
    #[allow(clippy::too_many_lines)] // one flat list of variables reads better than helpers split by type
    pub fn apply_vars(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("REDIS_URL") {
            validate_redis_url(&v)?;
            self.redis_url = v;
        }
        if let Some(v) = get("REDIS_CLUSTER_URLS") {
            let urls: Vec<String> = v
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect();
            for url in &urls {
                validate_redis_url(url)?;
            }
            self.redis_cluster_urls = urls;
        }
        if let Some(v) = get("TIERCACHE_REPLICA_ACKS") {
            self.replica_acks = Some(parse_int("TIERCACHE_REPLICA_ACKS", &v, 0, 16)? as u32);
        }
        if let Some(v) = get("REDIS_USERNAME") {
            self.redis_username = Some(v);
        }
        if let Some(v) = get("REDIS_PASSWORD") {
            self.redis_password = Some(v);
        }
        if let Some(v) = get("TIERCACHE_TLS_CA_FILE") {
            self.tls_ca_cert_file = Some(v.into());
        }
        if let Some(v) = get("REDIS_CACHE_DB") {
            self.redis_db = parse_int("REDIS_CACHE_DB", &v, 0, 15)? as u16;
        }
        if let Some(v) = get("TIERCACHE_NAMESPACE") {
            self.namespace = v;
        }
        if let Some(v) = get("TIERCACHE_L1_MAX_BYTES") {
            self.l1_max_bytes = parse_int("TIERCACHE_L1_MAX_BYTES", &v, 1024, u64::MAX)?;
        }
        if let Some(v) = get("TIERCACHE_MAX_VALUE_BYTES") {
            self.max_value_bytes = parse_int("TIERCACHE_MAX_VALUE_BYTES", &v, 64, 512 << 20)?;
        }
        if let Some(v) = get("TIERCACHE_MAX_TAGS") {
            self.max_tags = parse_int("TIERCACHE_MAX_TAGS", &v, 1, 10_000)? as usize;
        }
        if let Some(v) = get("TIERCACHE_MAX_TAG_BYTES") {
            self.max_tag_bytes = parse_int("TIERCACHE_MAX_TAG_BYTES", &v, 1, 1 << 20)? as usize;
        }
        if let Some(v) = get("TIERCACHE_MAX_KEY_BYTES") {
            self.max_key_bytes = parse_int("TIERCACHE_MAX_KEY_BYTES", &v, 1, 1 << 20)? as usize;
        }
        let durations: [(&str, BareUnit, &mut Duration); 14] = [
            (
                "TIERCACHE_SHUTDOWN_TIMEOUT",
                BareUnit::Millis,
                &mut self.shutdown_timeout,
            ),
            (
                "TIERCACHE_DEGRADED_TTL",
                BareUnit::Millis,
                &mut self.degraded_ttl,
            ),
            (
                "TIERCACHE_CONNECT_TIMEOUT",
                BareUnit::Millis,
                &mut self.connect_timeout,
            ),
            (
                "TIERCACHE_RESPONSE_TIMEOUT",
                BareUnit::Millis,
                &mut self.response_timeout,
            ),
            (
                "TIERCACHE_HEARTBEAT_INTERVAL",
                BareUnit::Millis,
                &mut self.heartbeat_interval,
            ),
            (
                "TIERCACHE_FAIL_SAFE_MAX",
                BareUnit::Seconds,
                &mut self.fail_safe_max,
            ),
            (
                "WIDGET_CACHE_DEFAULT_TTL",
                BareUnit::Seconds,
                &mut self.default_ttl,
            ),
            (
                "WIDGET_CACHE_REALTIME_TTL",
                BareUnit::Seconds,
                &mut self.ttl_tiers.realtime,
            ),
            (
                "WIDGET_CACHE_SHORT_TTL",
                BareUnit::Seconds,
                &mut self.ttl_tiers.short,
            ),
            (
                "WIDGET_CACHE_MEDIUM_TTL",
                BareUnit::Seconds,
                &mut self.ttl_tiers.medium,
            ),
            (
                "WIDGET_CACHE_LONG_TTL",
                BareUnit::Seconds,
                &mut self.ttl_tiers.long,
            ),
            (
                "WIDGET_CACHE_DAILY_TTL",
                BareUnit::Seconds,
                &mut self.ttl_tiers.daily,
            ),
            (
                "WIDGET_CACHE_LOCK_TIMEOUT",
                BareUnit::Seconds,
                &mut self.lock_timeout,
            ),
            (
                "WIDGET_CACHE_TARGET_RESPONSE_TIME",
                BareUnit::Millis,
                &mut self.targets.target_response_time,
            ),
        ];
        for (name, unit, slot) in durations {
            if let Some(v) = get(name) {
                *slot = parse_duration(name, &v, unit)?;
            }
        }
        if let Some(v) = get("WIDGET_CACHE_MAX_RESPONSE_TIME") {
            self.targets.max_response_time =
                parse_duration("WIDGET_CACHE_MAX_RESPONSE_TIME", &v, BareUnit::Millis)?;
        }
        if let Some(v) = get("WIDGET_CACHE_REFRESH_AHEAD") {
            self.refresh_ahead = parse_bool("WIDGET_CACHE_REFRESH_AHEAD", &v)?;
        }
        if let Some(v) = get("WIDGET_CACHE_REFRESH_THRESHOLD") {
            self.refresh_threshold = parse_fraction("WIDGET_CACHE_REFRESH_THRESHOLD", &v)?;
        }
        if let Some(v) = get("TIERCACHE_REFRESH_MODE") {
            self.refresh_mode = match v.trim().to_ascii_lowercase().as_str() {
                "threshold" => crate::RefreshMode::Threshold,
                "xfetch" => crate::RefreshMode::XFetch { beta: 1.0 },
                _ => {
                    return Err(ConfigError::InvalidValue {
                        var: "TIERCACHE_REFRESH_MODE".into(),
                        value: v,
                        expected: "threshold or xfetch".into(),
                    })
                }
            };
        }
        if let Some(v) = get("TIERCACHE_XFETCH_BETA") {
            let beta = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|b| *b > 0.0 && *b <= 100.0)
                .ok_or_else(|| ConfigError::InvalidValue {
                    var: "TIERCACHE_XFETCH_BETA".into(),
                    value: v.clone(),
                    expected: "a number above 0 and at most 100, such as 1.0".into(),
                })?;
            self.refresh_mode = crate::RefreshMode::XFetch { beta };
        }
        if let Some(v) = get("TIERCACHE_MAX_KNOWN_TAGS") {
            self.max_known_tags =
                parse_int("TIERCACHE_MAX_KNOWN_TAGS", &v, 2, 1_000_000_000)? as usize;
        }
        if let Some(v) = get("TIERCACHE_MAX_PENDING_INVALIDATIONS") {
            self.max_pending_invalidations =
                parse_int("TIERCACHE_MAX_PENDING_INVALIDATIONS", &v, 1, 10_000_000)? as usize;
        }
        if let Some(v) = get("TIERCACHE_REQUIRE_REDIS_AT_START") {
            self.require_redis_at_start = parse_bool("TIERCACHE_REQUIRE_REDIS_AT_START", &v)?;
        }
        if let Some(v) = get("WIDGET_CACHE_LOCKING_ENABLED") {
            self.locking_enabled = parse_bool("WIDGET_CACHE_LOCKING_ENABLED", &v)?;
        }
        if let Some(v) = get("WIDGET_CACHE_LOCK_RETRIES") {
            self.lock_retries = parse_int("WIDGET_CACHE_LOCK_RETRIES", &v, 0, 1000)? as u32;
        }
        if let Some(v) = get("TIERCACHE_STREAM_MAX_LEN") {
            self.stream_max_len = parse_int("TIERCACHE_STREAM_MAX_LEN", &v, 100, 100_000_000)?;
        }
        if let Some(v) = get("TIERCACHE_ENTRY_LAYOUT") {
            self.entry_layout = match v.trim() {
                "1" => EntryLayout::Hash,
                "2" => EntryLayout::String,
                _ => {
                    return Err(ConfigError::InvalidValue {
                        var: "TIERCACHE_ENTRY_LAYOUT".into(),
                        value: v.clone(),
                        expected: "1 or 2".into(),
                    })
                }
            };
        }
        let rates: [(&str, &mut f64); 3] = [
            (
                "WIDGET_CACHE_TARGET_HIT_RATE",
                &mut self.targets.target_hit_rate,
            ),
            ("WIDGET_CACHE_MIN_HIT_RATE", &mut self.targets.min_hit_rate),
            (
                "WIDGET_CACHE_MAX_ERROR_RATE",
                &mut self.targets.max_error_rate,
            ),
        ];
        for (name, slot) in rates {
            if let Some(v) = get(name) {
                *slot = parse_percent(name, &v)?;
            }
        }
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
        if self.targets.min_hit_rate > self.targets.target_hit_rate {
            return Err(invalid(
                "WIDGET_CACHE_MIN_HIT_RATE",
                format!("{}%", self.targets.min_hit_rate * 100.0),
                "a rate no higher than WIDGET_CACHE_TARGET_HIT_RATE",
            ));
        }
        if self.targets.target_response_time > self.targets.max_response_time {
            return Err(invalid(
                "WIDGET_CACHE_TARGET_RESPONSE_TIME",
                format!("{:?}", self.targets.target_response_time),
                "a time no longer than WIDGET_CACHE_MAX_RESPONSE_TIME",
            ));
        }
        if self.default_ttl.is_zero() {
            return Err(invalid(
                "WIDGET_CACHE_DEFAULT_TTL",
                "0".into(),
                "a positive duration",
            ));
        }
        Ok(())
    }
}

fn parse_int(var: &str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    value
        .trim()
        .replace('_', "")
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| ConfigError::InvalidValue {
            var: var.to_owned(),
            value: value.to_owned(),
            expected: format!("a whole number from {min} to {max}"),
        })
}

fn parse_bool(var: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::InvalidValue {
            var: var.to_owned(),
            value: value.to_owned(),
            expected: "true/false (also 1/0, yes/no, on/off)".to_owned(),
        }),
    }
}

fn parse_fraction(var: &str, value: &str) -> Result<f64, ConfigError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|f| *f > 0.0 && *f < 1.0)
        .ok_or_else(|| ConfigError::InvalidValue {
            var: var.to_owned(),
            value: value.to_owned(),
            expected: "a fraction strictly between 0 and 1, such as 0.8".to_owned(),
        })
}

fn parse_percent(var: &str, value: &str) -> Result<f64, ConfigError> {
    let trimmed = value.trim();
    trimmed
        .strip_suffix('%')
        .unwrap_or(trimmed)
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
        .map(|p| p / 100.0)
        .ok_or_else(|| ConfigError::InvalidValue {
            var: var.to_owned(),
            value: value.to_owned(),
            expected: "a percentage from 0 to 100, such as 95 or 95%".to_owned(),
        })
}

fn parse_duration(var: &str, value: &str, bare: BareUnit) -> Result<Duration, ConfigError> {
    let err = || ConfigError::InvalidValue {
        var: var.to_owned(),
        value: value.to_owned(),
        expected: match bare {
            BareUnit::Seconds => {
                "a positive duration: seconds (900) or with a unit (250ms, 30s, 15m, 2h)"
            }
            BareUnit::Millis => {
                "a positive duration: milliseconds (200) or with a unit (250ms, 30s, 15m, 2h)"
            }
        }
        .to_owned(),
    };
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().map_err(|_| err())?;
    let duration = match (unit.trim(), bare) {
        ("", BareUnit::Seconds) | ("s", _) => Duration::from_secs(n),
        ("", BareUnit::Millis) | ("ms", _) => Duration::from_millis(n),
        ("m", _) => Duration::from_secs(n.checked_mul(60).ok_or_else(err)?),
        ("h", _) => Duration::from_secs(n.checked_mul(3600).ok_or_else(err)?),
        _ => return Err(err()),
    };
    if duration.is_zero() {
        return Err(err());
    }
    Ok(duration)
}

/// Parses a duration setting as [`Config::from_env`] parses its response times: milliseconds when bare
/// (`200`), or with a unit (`250ms`, `30s`, `15m`, `2h`); zero is refused. For layers above the cache
/// that read settings of their own, so every duration variable reads alike.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(tiercache::parse_duration_setting("X_TIMEOUT", "2s").unwrap(), Duration::from_secs(2));
/// assert_eq!(tiercache::parse_duration_setting("X_TIMEOUT", "250").unwrap(), Duration::from_millis(250));
/// assert!(tiercache::parse_duration_setting("X_TIMEOUT", "soon").unwrap_err().to_string().contains("X_TIMEOUT"));
/// ```
pub fn parse_duration_setting(var: &str, value: &str) -> Result<Duration, ConfigError> {
    parse_duration(var, value, BareUnit::Millis)
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

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        c.apply_vars(|n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        })?;
        Ok(c)
    }

    #[test]
    fn seed_variables_are_read_with_their_units() {
        let c = from(&[
            ("WIDGET_CACHE_DEFAULT_TTL", "600"),
            ("WIDGET_CACHE_REALTIME_TTL", "30s"),
            ("WIDGET_CACHE_LONG_TTL", "2h"),
            ("WIDGET_CACHE_TARGET_RESPONSE_TIME", "200"),
            ("WIDGET_CACHE_TARGET_HIT_RATE", "97%"),
            ("WIDGET_CACHE_MAX_ERROR_RATE", "2"),
            ("WIDGET_CACHE_LOCKING_ENABLED", "false"),
            ("WIDGET_CACHE_REFRESH_THRESHOLD", "0.75"),
            ("REDIS_CACHE_DB", "3"),
        ])
        .expect("valid");
        assert_eq!(c.default_ttl, Duration::from_secs(600));
        assert_eq!(c.ttl_tiers.realtime, Duration::from_secs(30));
        assert_eq!(c.ttl_tiers.long, Duration::from_secs(7200));
        assert_eq!(c.targets.target_response_time, Duration::from_millis(200));
        assert!((c.targets.target_hit_rate - 0.97).abs() < 1e-9);
        assert!((c.targets.max_error_rate - 0.02).abs() < 1e-9);
        assert!(!c.locking_enabled);
        assert_eq!(c.redis_db, 3);
    }

    #[test]
    fn each_bad_value_names_variable_value_and_allowed_forms() {
        let cases = [
            ("WIDGET_CACHE_LOCK_TIMEOUT", "soon", "duration"),
            ("WIDGET_CACHE_LOCK_RETRIES", "-1", "whole number"),
            ("WIDGET_CACHE_REFRESH_AHEAD", "maybe", "true/false"),
            ("WIDGET_CACHE_REFRESH_THRESHOLD", "1.5", "fraction"),
            ("WIDGET_CACHE_MIN_HIT_RATE", "120", "percentage"),
            ("REDIS_CACHE_DB", "99", "whole number"),
            ("WIDGET_CACHE_MEDIUM_TTL", "0", "positive"),
            ("TIERCACHE_ENTRY_LAYOUT", "3", "1 or 2"),
        ];
        for (var, value, expected) in cases {
            let msg = from(&[(var, value)]).expect_err(var).to_string();
            assert!(msg.contains(var), "{msg}");
            assert!(msg.contains(value), "{msg}");
            assert!(msg.contains(expected), "{msg}");
        }
    }

    #[test]
    fn inconsistent_targets_are_refused() {
        let err = from(&[("WIDGET_CACHE_MIN_HIT_RATE", "99")]).expect_err("min above target");
        assert!(err.to_string().contains("WIDGET_CACHE_MIN_HIT_RATE"));
    }
}
