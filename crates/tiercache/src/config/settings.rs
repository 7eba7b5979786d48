//! [`Config::SETTINGS`]: every variable the core reads, declared once. `docs/CONFIGURATION.md`'s first
//! table is rendered from it (a test holds the two equal).

use super::layout::EntryLayout;
use super::parse::BareUnit;
use super::table::{Setting, SettingValue, SettingsTable};
use super::value_codec::ValueCodec;
use super::Config;
use super::RefreshMode;

/// The eagerness `TIERCACHE_REFRESH_MODE=xfetch` starts with: the optimum of the XFetch paper.
const DEFAULT_XFETCH_BETA: f64 = 1.0;

impl Config {
    /// The variables [`Config::from_env`] reads, in the order it applies them: `REDIS_URL` and the
    /// connection's other `REDIS_*` variables, and `TIERCACHE_*`.
    ///
    /// ```
    /// let table = tiercache::Config::SETTINGS.markdown();
    /// assert!(table.contains("| `TIERCACHE_LOCK_TIMEOUT` | duration; bare number = s | 30 s |"));
    /// ```
    pub const SETTINGS: SettingsTable<Config> = SettingsTable::new(&[
        Setting {
            name: "REDIS_URL",
            value: SettingValue::RedisUrl(|c| &mut c.redis_url),
            doc: "The Redis server, `redis://[user:password@]host:port[/db]`, `rediss://` for TLS or `unix://` for a socket; a malformed URL is refused naming the part that is wrong.",
        },
        Setting {
            name: "TIERCACHE_REDIS_DB",
            value: SettingValue::Whole { min: 0, max: 15, field: |c| &mut c.redis_db },
            doc: "The database used when the URL names none.",
        },
        Setting {
            name: "REDIS_CLUSTER_URLS",
            value: SettingValue::RedisUrls(|c| &mut c.redis_cluster_urls),
            doc: "Seed nodes of a Redis Cluster (`.cluster_urls(urls)`); when set, `REDIS_URL` and the database are not used, since a cluster has database 0 only.",
        },
        Setting {
            name: "TIERCACHE_REPLICA_ACKS",
            value: SettingValue::Whole { min: 0, max: 16, field: |c| &mut c.replica_acks },
            doc: "Replicas that must acknowledge an invalidation (`WAIT`) so a failover cannot undo it; unset means 1 on a cluster and 0 on one server, and a cluster without replicas needs 0.",
        },
        Setting {
            name: "REDIS_USERNAME",
            value: SettingValue::OptionalText(|c| &mut c.redis_username),
            doc: "The ACL user to log in as when the URL names none.",
        },
        Setting {
            name: "REDIS_PASSWORD",
            value: SettingValue::OptionalText(|c| &mut c.redis_password),
            doc: "The password to log in with when the URL holds none; never printed.",
        },
        Setting {
            name: "TIERCACHE_TLS_CA_FILE",
            value: SettingValue::Path(|c| &mut c.tls_ca_cert_file),
            doc: "A PEM file of the certificate authority a `rediss://` server's certificate must chain to; unset, the system's roots.",
        },
        Setting {
            name: "TIERCACHE_TLS_CLIENT_CERT_FILE",
            value: SettingValue::Path(|c| &mut c.tls_client_cert_file),
            doc: "A PEM certificate this node presents to a `rediss://` server that authenticates its clients (`tls-auth-clients yes`); set with its key.",
        },
        Setting {
            name: "TIERCACHE_TLS_CLIENT_KEY_FILE",
            value: SettingValue::Path(|c| &mut c.tls_client_key_file),
            doc: "The PEM private key of that client certificate.",
        },
        Setting {
            name: "TIERCACHE_NAMESPACE",
            value: SettingValue::Text(|c| &mut c.namespace),
            doc: "Nodes of one namespace share entries and invalidations; at most 256 printable ASCII characters without spaces, braces or `* ? [ ] \\`.",
        },
        Setting {
            name: "TIERCACHE_NODE_LABEL",
            value: SettingValue::OptionalText(|c| &mut c.node_label),
            doc: "When set, every metric of the node carries the label `node` with this value, so two nodes in one process or on one host stay two series.",
        },
        Setting {
            name: "TIERCACHE_L1_MAX_BYTES",
            value: SettingValue::Bytes { min: 1024, max: u64::MAX, field: |c| &mut c.l1_max_bytes },
            doc: "The L1 bound, weighed by encoded value size.",
        },
        Setting {
            name: "TIERCACHE_MAX_VALUE_BYTES",
            value: SettingValue::Bytes { min: 64, max: 512 << 20, field: |c| &mut c.max_value_bytes },
            doc: "Larger encoded values are refused on write and treated as corrupt on read.",
        },
        Setting {
            name: "TIERCACHE_MAX_KEY_BYTES",
            value: SettingValue::Bytes { min: 1, max: 1 << 20, field: |c| &mut c.max_key_bytes },
            doc: "Longer (or empty) keys are `Error::InvalidKey`.",
        },
        Setting {
            name: "TIERCACHE_MAX_TAGS",
            value: SettingValue::Whole { min: 1, max: 10_000, field: |c| &mut c.max_tags },
            doc: "More tags on one entry, or in one `invalidate_tags` call, are `Error::InvalidTag`.",
        },
        Setting {
            name: "TIERCACHE_MAX_TAG_BYTES",
            value: SettingValue::Bytes { min: 1, max: 1 << 20, field: |c| &mut c.max_tag_bytes },
            doc: "Longer (or empty) tags are `Error::InvalidTag`.",
        },
        Setting {
            name: "TIERCACHE_CONNECT_TIMEOUT",
            value: SettingValue::Duration(BareUnit::Millis, |c| &mut c.connect_timeout),
            doc: "How long one attempt to connect to Redis may take; a node that cannot join within three starts without Redis.",
        },
        Setting {
            name: "TIERCACHE_RESPONSE_TIMEOUT",
            value: SettingValue::Duration(BareUnit::Millis, |c| &mut c.response_timeout),
            doc: "How long each Redis call may take.",
        },
        Setting {
            name: "TIERCACHE_READ_DEADLINE",
            value: SettingValue::Duration(BareUnit::Millis, |c| &mut c.read_deadline),
            doc: "How long a call that missed L1 waits for Redis, all told: past it an L2 read or lease attempt still running is cut short (the call loads without them) and a loaded value is returned without waiting for its store. Loaders' time does not count, and waiting for another node's load is not cut short.",
        },
        Setting {
            name: "TIERCACHE_DEFAULT_TTL",
            value: SettingValue::Duration(BareUnit::Seconds, |c| &mut c.default_ttl),
            doc: "The lifetime of entries whose options ask for the default (`EntryOptions::default_ttl`).",
        },
        Setting {
            name: "TIERCACHE_REFRESH_AHEAD",
            value: SettingValue::Switch(|c| &mut c.refresh_ahead),
            doc: "Whether a hit on an ageing entry starts one background refresh for the fleet.",
        },
        Setting {
            name: "TIERCACHE_REFRESH_THRESHOLD",
            value: SettingValue::Fraction(|c| &mut c.refresh_threshold),
            doc: "The share of its TTL an entry has lived when the `threshold` mode refreshes it.",
        },
        Setting {
            name: "TIERCACHE_REFRESH_MODE",
            value: SettingValue::Custom {
                expected: "threshold or xfetch",
                read: |c, text| {
                    c.refresh_mode = match text.trim().to_ascii_lowercase().as_str() {
                        "threshold" => RefreshMode::Threshold,
                        "xfetch" => RefreshMode::XFetch { beta: DEFAULT_XFETCH_BETA },
                        _ => return false,
                    };
                    true
                },
                show: |c| match c.refresh_mode {
                    RefreshMode::Threshold => "`threshold`".to_owned(),
                    RefreshMode::XFetch { .. } => "`xfetch`".to_owned(),
                },
            },
            doc: "What starts a refresh ahead: the threshold, or XFetch's probability rising as expiry nears, scaled by the load's time.",
        },
        // After TIERCACHE_REFRESH_MODE: a beta means XFetch whatever the mode says.
        Setting {
            name: "TIERCACHE_XFETCH_BETA",
            value: SettingValue::Custom {
                expected: "a number above 0 and at most 100, such as 1.0",
                read: |c, text| match text.trim().parse::<f64>() {
                    Ok(beta) if beta > 0.0 && beta <= 100.0 => {
                        c.refresh_mode = RefreshMode::XFetch { beta };
                        true
                    }
                    _ => false,
                },
                show: |c| match c.refresh_mode {
                    RefreshMode::XFetch { beta } => beta.to_string(),
                    RefreshMode::Threshold => DEFAULT_XFETCH_BETA.to_string(),
                },
            },
            doc: "XFetch's eagerness (larger refreshes earlier); setting it selects XFetch.",
        },
        Setting {
            name: "TIERCACHE_LOCKING_ENABLED",
            value: SettingValue::Switch(|c| &mut c.locking_enabled),
            doc: "Whether loads are coalesced across the fleet through Redis leases, not only within a node.",
        },
        Setting {
            name: "TIERCACHE_LOCK_TIMEOUT",
            value: SettingValue::Duration(BareUnit::Seconds, |c| &mut c.lock_timeout),
            doc: "The lease of a load or named lock: a holder that dies loses it after this.",
        },
        Setting {
            name: "TIERCACHE_LOCK_RETRIES",
            value: SettingValue::Whole { min: 0, max: 1000, field: |c| &mut c.lock_retries },
            doc: "How often `LockOptions::from_config` tries a held named lock again.",
        },
        Setting {
            name: "TIERCACHE_FAIL_SAFE_MAX",
            value: SettingValue::Duration(BareUnit::Seconds, |c| &mut c.fail_safe_max),
            doc: "How long past expiry L2 keeps a value as a stale fallback.",
        },
        Setting {
            name: "TIERCACHE_DEGRADED_TTL",
            value: SettingValue::Duration(BareUnit::Millis, |c| &mut c.degraded_ttl),
            doc: "The L1 lifetime of values loaded while Redis is unreachable or the node is suspect, when no invalidation can reach it.",
        },
        Setting {
            name: "TIERCACHE_HEARTBEAT_INTERVAL",
            value: SettingValue::Duration(BareUnit::Millis, |c| &mut c.heartbeat_interval),
            doc: "How often a node publishes a heartbeat; three silent intervals make it suspect its subscription.",
        },
        Setting {
            name: "TIERCACHE_STREAM_MAX_LEN",
            value: SettingValue::Whole { min: 100, max: 100_000_000, field: |c| &mut c.stream_max_len },
            doc: "The replay stream's approximate cap, in entries.",
        },
        Setting {
            name: "TIERCACHE_ENTRY_LAYOUT",
            value: SettingValue::Custom {
                expected: "1 or 2",
                read: |c, text| {
                    c.entry_layout = match text.trim() {
                        "1" => EntryLayout::Hash,
                        "2" => EntryLayout::String,
                        _ => return false,
                    };
                    true
                },
                show: |c| match c.entry_layout {
                    EntryLayout::Hash => "1".to_owned(),
                    EntryLayout::String => "2".to_owned(),
                },
            },
            doc: "How entries are kept in Redis: `2` one string per entry, `1` the hash of earlier releases (for a rolling upgrade, see \"Upgrading\" in docs/OPERATIONS.md).",
        },
        Setting {
            name: "TIERCACHE_VALUE_CODEC",
            value: SettingValue::Custom {
                expected: "bincode, or postcard in a build with the postcard feature",
                read: |c, text| match ValueCodec::from_name(text) {
                    Some(codec) => {
                        c.value_codec = codec;
                        true
                    }
                    None => false,
                },
                show: |c| format!("`{}`", c.value_codec.name()),
            },
            doc: "The format this node writes values in; it reads entries of every format built in and treats others as misses. Every node must run a release that knows this setting before any writes `postcard` (see \"Upgrading\" in docs/OPERATIONS.md).",
        },
        Setting {
            name: "TIERCACHE_MAX_PENDING_INVALIDATIONS",
            value: SettingValue::Whole { min: 1, max: 10_000_000, field: |c| &mut c.max_pending_invalidations },
            doc: "Invalidation operations kept for replay while Redis is unreachable; past it the namespace is cleared when Redis answers.",
        },
        Setting {
            name: "TIERCACHE_MAX_KNOWN_TAGS",
            value: SettingValue::Whole { min: 2, max: 1_000_000_000, field: |c| &mut c.max_known_tags },
            doc: "Tag versions a node keeps in memory; past it it forgets those no L1 entry carries.",
        },
        Setting {
            name: "TIERCACHE_REQUIRE_REDIS_AT_START",
            value: SettingValue::Switch(|c| &mut c.require_redis_at_start),
            doc: "Whether building a node fails while Redis is unreachable, instead of starting on L1 and joining when Redis answers.",
        },
        Setting {
            name: "TIERCACHE_SHUTDOWN_TIMEOUT",
            value: SettingValue::Duration(BareUnit::Millis, |c| &mut c.shutdown_timeout),
            doc: "How long `Cache::shutdown` keeps sending queued invalidations before it gives up.",
        },
    ]);
}
