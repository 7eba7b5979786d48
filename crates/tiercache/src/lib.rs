//! # tiercache
//!
//! A two-tier cache for high-traffic services: a [moka] L1 inside every process holding decoded values,
//! Redis as the shared L2, Redis pub/sub telling every node's L1 what changed, and load coalescing so a
//! cold or expiring key costs one load.
//!
//! ## The read path
//!
//! ```text
//! caller ──► Cache::get_or_load                              (cache.rs)
//!              │ L1 hit? ── yes ──► Arc<T>, no I/O           (read/through.rs, l1.rs, coherence.rs)
//!              ▼
//!            single-flight: one leader per key per node      (node/flights.rs, read/coalesce.rs)
//!              ▼
//!            L2 read: one GET, value + recorded tag versions (read/through.rs, l2.rs)
//!              │ fresh? ── yes ──► fill L1 ──► Arc<T>
//!              ▼
//!            fence read + lease, one round trip              (scripts/read.lua)
//!              │ lease held by another node? ──► wait for its "filled" notice (read/load.rs)
//!              ▼
//!            loader ──► fenced write (scripts/store.lua) ──► fill L1 ──► "filled" on the bus (bus/)
//! ```
//!
//! Invalidations go the other way: [`Cache::invalidate`] / [`Cache::invalidate_tags`] run one script
//! that changes L2, appends to a capped replay stream and publishes; every node applies the message to
//! its L1, and a node that may have missed one replays the stream or drops its L1 (`bus/`). One that
//! cannot reach Redis is queued and replayed in order before the node uses L2 again, and the call
//! returns [`Error::Pending`] (`node/pending.rs`). A node starts without Redis and joins the fleet when
//! Redis answers; bookkeeping in Redis it cannot read counts as changed and is rewritten.
//!
//! The repository's `docs/ARCHITECTURE.md` describes each step and names the invariants the code
//! keeps; `docs/OPERATIONS.md` covers metrics, Redis settings, Cluster and upgrades.
//!
//! ## Example
//!
//! ```no_run
//! use std::time::Duration;
//! use tiercache::{Cache, EntryOptions};
//!
//! # async fn run() -> Result<(), tiercache::Error> {
//! let cache = Cache::builder().redis_url("redis://127.0.0.1:6379/1").namespace("widgets").build().await?;
//! let opts = EntryOptions::new(Duration::from_secs(900)).with_tags(["donation", "campaign:123"]);
//! let total: std::sync::Arc<u64> = cache
//!     .get_or_load("total_donations:this_month", &opts, || async { Ok::<_, std::io::Error>(1234) })
//!     .await?;
//! cache.invalidate_tags(["campaign:123"]).await?;
//! # let _ = total; Ok(()) }
//! ```
//!
//! [moka]: https://docs.rs/moka
#![deny(missing_docs)]

mod admin;
mod backoff;
mod breaker;
mod builder;
mod bus;
mod cache;
mod codec;
mod coherence;
mod config;
mod decode_guard;
mod error;
mod fetched;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod keys;
mod l1;
mod l2;
mod loader;
mod lock;
mod message;
mod metrics;
mod node;
mod ops;
mod options;
#[cfg(test)]
mod proptests;
mod read;
mod replace;
mod spans;
mod wall_clock;

pub use admin::Admin;
pub use builder::CacheBuilder;
pub use cache::{Cache, ShutdownReport};
pub use config::{
    parse_duration_setting, settings_in_toml, settings_in_toml_file, BareUnit, Config, ConfigError,
    EntryLayout, RefreshMode, Setting, SettingValue, SettingsTable, ValueCodec, WholeNumber,
    SETTINGS_TABLE_HEADER,
};
pub use error::{Error, ErrorKind};
pub use fetched::{Fetched, Source};
pub use keys::acl_rules;
pub use loader::{BatchLoader, Loader};
pub use lock::{LockGuard, LockOptions};
pub use metrics::{
    show_buckets, CacheStats, MetricKind, COUNTER_NAMES, HISTOGRAM_NAMES, PUBLISH_INTERVAL,
};
pub use ops::{
    ClearReport, EntryReport, EntryState, KeyKind, LeaseHolder, LeaseKind, LeaseReport, LeaseState,
    NamespaceKey, NodePresence, ServerInfo, TagReport,
};
pub use options::{EntryOptions, IntoEntryOptions, LazyOptions};

/// The README's code, compiled as a doctest so it cannot drift from the API (rustdoc skips its
/// `sh`, `text` and `toml` blocks).
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
