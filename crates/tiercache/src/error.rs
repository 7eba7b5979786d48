//! The crate's error type.
//!
//! [`Error`] is `Clone`, as redis-rs's `RedisError` is: one failed load or one failed batch of
//! invalidations is handed to every caller that waited on it, each with the same variant and source.

use std::fmt;
use std::sync::Arc;

/// A loader's own error, shared between every caller that waited on the same load.
pub type LoaderError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a cache call.
///
/// Match on [`Error::kind`] to decide what to do without parsing messages.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or out of range; the message names it, the value and what is allowed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The key is empty or longer than the configured limit.
    #[error("invalid cache key: {reason}")]
    InvalidKey {
        /// Why the key was refused.
        reason: String,
    },
    /// A tag is empty or too long, or an entry carries too many tags.
    #[error("invalid tags: {reason}")]
    InvalidTag {
        /// Why the tags were refused.
        reason: String,
    },
    /// Redis answered with an error, timed out or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The value could not be encoded (serialisation failed or it is larger than the size limit).
    #[error("cannot encode value for key {key:?}: {reason}")]
    Encode {
        /// The cache key.
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// The loader returned an error; the loader's error is kept as [`std::error::Error::source`].
    #[error("loader for key {key:?} failed: {source}")]
    Loader {
        /// The cache key being loaded.
        key: String,
        /// The loader's error.
        #[source]
        source: LoaderError,
    },
    /// The loader panicked; the panic message is kept when it was a string.
    #[error("loader for key {key:?} panicked: {message}")]
    LoaderPanicked {
        /// The cache key being loaded.
        key: String,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// The loader did not finish within the hard timeout and there was no stale value to serve.
    #[error("loader for key {key:?} timed out after {after:?}")]
    LoaderTimeout {
        /// The cache key being loaded.
        key: String,
        /// How long the caller waited.
        after: std::time::Duration,
    },
    /// A distributed lock could not be acquired within its retries.
    #[error("lock {name:?} not acquired after {attempts} attempts")]
    LockNotAcquired {
        /// The lock name.
        name: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The cache cannot serve the call: the node refuses Redis for now (not connected yet, its circuit
    /// breaker is open, invalidations wait for replay), it is shutting down, or it could not connect
    /// at start. A Redis error behind it is kept as [`std::error::Error::source`], not flattened into
    /// the message; a Redis error met on an ordinary call is [`Error::Redis`] itself.
    #[error("cache unavailable: {reason}{}", Caused(source.as_deref()))]
    Unavailable {
        /// Why, in words.
        reason: String,
        /// The error that made the cache unavailable, when there was one.
        #[source]
        source: Option<Box<Error>>,
    },
    /// An invalidation (or the invalidation a failed `set` falls back to) could not reach Redis yet.
    /// It holds on this node already, and it is kept and replayed, in order, when Redis takes it;
    /// until then other nodes and L2 may still serve the old value. Nothing needs to be retried.
    #[error("invalidation pending: {reason}; {waiting} operation(s) wait for replay{}", if *namespace_clear { " (queue overflowed: the namespace will be cleared)" } else { "" })]
    Pending {
        /// Operations now waiting for Redis on this node.
        waiting: usize,
        /// The queue passed its bound: every entry of the namespace is cleared when Redis answers.
        namespace_clear: bool,
        /// Why Redis did not take it: unreachable, timed out, breaker open, out of memory (then
        /// what needs no memory was done: see docs/OPERATIONS.md), or earlier invalidations still
        /// waiting.
        reason: String,
    },
    /// [`crate::Cache::shutdown`] ran out of time (or Redis stayed away) with invalidations still
    /// queued: they are lost with this node, and other nodes and L2 may keep the values they removed
    /// until their TTL.
    #[error("shut down with {unsent} invalidation operation(s) not sent after {after:?}{}", if *namespace_clear { " (the queue had overflowed: the namespace was to be cleared)" } else { "" })]
    ShutdownIncomplete {
        /// Operations that never reached Redis.
        unsent: usize,
        /// The queue had passed its bound, so the namespace's clear was among what was not sent.
        namespace_clear: bool,
        /// How long the shutdown kept trying.
        after: std::time::Duration,
    },
}

/// What kind of failure an [`Error`] is, for matching without strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad configuration.
    Config,
    /// Bad key.
    InvalidKey,
    /// Bad tags (empty, too long, too many).
    InvalidTag,
    /// Redis failed.
    Redis,
    /// The value could not be encoded.
    Encode,
    /// The loader failed or panicked.
    Loader,
    /// The loader timed out.
    Timeout,
    /// A lock could not be acquired.
    Lock,
    /// The cache could not serve the call.
    Unavailable,
    /// The invalidation is queued and will be replayed when Redis answers ([`Error::Pending`]), or
    /// could not be sent before the node shut down ([`Error::ShutdownIncomplete`]).
    Pending,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::InvalidKey { .. } => ErrorKind::InvalidKey,
            Error::InvalidTag { .. } => ErrorKind::InvalidTag,
            Error::Redis(_) => ErrorKind::Redis,
            Error::Encode { .. } => ErrorKind::Encode,
            Error::Loader { .. } | Error::LoaderPanicked { .. } => ErrorKind::Loader,
            Error::LoaderTimeout { .. } => ErrorKind::Timeout,
            Error::LockNotAcquired { .. } => ErrorKind::Lock,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Pending { .. } | Error::ShutdownIncomplete { .. } => ErrorKind::Pending,
        }
    }

    /// Whether Redis refused a write because it is out of memory (`maxmemory` reached with a
    /// policy that evicts nothing): an `OOM` reply.
    pub fn is_out_of_memory(&self) -> bool {
        match self {
            Error::Redis(e) => {
                e.code() == Some("OOM") || e.to_string().contains("OOM command not allowed")
            }
            Error::Unavailable {
                source: Some(source),
                ..
            } => source.is_out_of_memory(),
            _ => false,
        }
    }

    /// Whether this is [`Error::Pending`]: the call's invalidation holds on this node and will reach
    /// Redis and the other nodes when Redis answers.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// match cache.invalidate("total_donations:this_month").await {
    ///     Ok(()) => {}
    ///     Err(e) if e.is_pending() => tracing::warn!("invalidation will be replayed: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_pending(&self) -> bool {
        matches!(self, Error::Pending { .. })
    }

    pub(crate) fn invalid_key(reason: impl fmt::Display) -> Self {
        Error::InvalidKey {
            reason: reason.to_string(),
        }
    }

    /// [`Error::Unavailable`] with nothing behind it but `reason`.
    pub(crate) fn unavailable(reason: impl Into<String>) -> Self {
        Error::Unavailable {
            reason: reason.into(),
            source: None,
        }
    }

    /// [`Error::Unavailable`] because of `source`, which is kept.
    pub(crate) fn unavailable_because(reason: impl Into<String>, source: Error) -> Self {
        Error::Unavailable {
            reason: reason.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Shows an error's source after its own message (": <source>"), or nothing: callers that print only
/// `Display` (logs, the ops CLI) still see why, as [`Error::Loader`] shows its loader's error.
struct Caused<'a>(Option<&'a Error>);

impl fmt::Display for Caused<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}
