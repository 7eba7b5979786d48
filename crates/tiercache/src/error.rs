//! The crate's error type.

use std::fmt;
use std::sync::Arc;

/// A loader's own error, shared between every caller that waited on the same load.
pub type LoaderError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a cache call.
///
/// Match on [`Error::kind`] to decide what to do without parsing messages.
#[derive(Debug, thiserror::Error)]
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
    /// The cache is unavailable for the operation (Redis down and no way around it).
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// An invalidation (or the invalidation a failed `set` falls back to) could not reach Redis yet.
    /// It holds on this node already, and it is kept and replayed, in order, when Redis answers;
    /// until then other nodes and L2 may still serve the old value. Nothing needs to be retried.
    #[error("invalidation pending: Redis could not be reached; {waiting} operation(s) wait for replay{}", if *namespace_clear { " (queue overflowed: the namespace will be cleared)" } else { "" })]
    Pending {
        /// Operations now waiting for Redis on this node.
        waiting: usize,
        /// The queue passed its bound: every entry of the namespace is cleared when Redis answers.
        namespace_clear: bool,
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
    /// The invalidation is queued and will be replayed when Redis answers ([`Error::Pending`]).
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
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Pending { .. } => ErrorKind::Pending,
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
}

/// A cheaply clonable copy of an [`Error`], so one failed load can be handed to every waiter.
#[derive(Debug, Clone)]
pub(crate) enum SharedError {
    Loader {
        key: String,
        source: LoaderError,
    },
    Panicked {
        key: String,
        message: String,
    },
    Timeout {
        key: String,
        after: std::time::Duration,
    },
    /// The leader went away (its caller was cancelled) before finishing; waiters retry.
    Abandoned,
    Pending {
        waiting: usize,
        namespace_clear: bool,
    },
    Other(Arc<Error>),
}

impl SharedError {
    pub(crate) fn into_error(self) -> Error {
        match self {
            SharedError::Loader { key, source } => Error::Loader { key, source },
            SharedError::Panicked { key, message } => Error::LoaderPanicked { key, message },
            SharedError::Timeout { key, after } => Error::LoaderTimeout { key, after },
            SharedError::Abandoned => {
                Error::Unavailable("the load this call waited on was abandoned".into())
            }
            SharedError::Pending {
                waiting,
                namespace_clear,
            } => Error::Pending {
                waiting,
                namespace_clear,
            },
            SharedError::Other(e) => match Arc::try_unwrap(e) {
                Ok(e) => e,
                Err(shared) => Error::Unavailable(shared.to_string()),
            },
        }
    }
}

impl From<Error> for SharedError {
    fn from(e: Error) -> Self {
        match e {
            Error::Loader { key, source } => SharedError::Loader { key, source },
            Error::LoaderPanicked { key, message } => SharedError::Panicked { key, message },
            Error::LoaderTimeout { key, after } => SharedError::Timeout { key, after },
            Error::Pending {
                waiting,
                namespace_clear,
            } => SharedError::Pending {
                waiting,
                namespace_clear,
            },
            other => SharedError::Other(Arc::new(other)),
        }
    }
}
