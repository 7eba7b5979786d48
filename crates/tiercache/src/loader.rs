//! [`Loader`] and [`BatchLoader`]: the bounds every loader passed to the cache meets, named once.

use std::future::Future;

/// A loader given to [`crate::Cache::get_or_load`] or [`crate::Cache::fetch`]: a closure with no
/// arguments returning a future of the value or an error, such as `|| async { query().await }`.
///
/// It runs in a task of its own (so a cancelled caller does not cancel the load its followers wait
/// for), hence `Send + 'static` for the closure and its future; its error is boxed inside that
/// task, so the error type need not be `Send`. Implemented for every such closure; sealed, so it is
/// never implemented otherwise.
pub trait Loader<T>: sealed::Sealed + Send + 'static {
    /// What the load fails with.
    type Error: Into<Box<dyn std::error::Error + Send + Sync>>;
    /// The load itself.
    type Future: Future<Output = Result<T, Self::Error>> + Send + 'static;

    /// Starts the load: calls the closure.
    fn load(self) -> Self::Future;
}

impl<T, F, Fut, E> Loader<T> for F
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Error = E;
    type Future = Fut;

    fn load(self) -> Fut {
        self()
    }
}

/// A loader given to [`crate::Cache::fetch_many`]: a closure taking the keys to load (those missing
/// from both tiers that no other node is loading) and returning a future of their values, as a map
/// or a list of `(key, value)` pairs, such as `|keys| async move { query_many(&keys).await }`.
///
/// One call computes several keys in one pass (one query, one snapshot of the data). The closure is
/// called again only for keys that turn out to need loading later (another node held one's lease,
/// then gave up), and for refreshing a single ageing key, hence `Fn`. A key the answer leaves out
/// fails alone, with [`crate::Error::Loader`]; an error fails every key of the call, each with it.
/// Runs in a task of its own, like a [`Loader`]; sealed, implemented for every such closure.
pub trait BatchLoader<T>: sealed::SealedBatch + Send + Sync + 'static {
    /// What the load fails with.
    type Error: Into<Box<dyn std::error::Error + Send + Sync>>;
    /// The keys' values: anything that iterates as `(key, value)`.
    type Values: IntoIterator<Item = (String, T)>;
    /// The load itself.
    type Future: Future<Output = Result<Self::Values, Self::Error>> + Send + 'static;

    /// Starts the load of `keys`: calls the closure.
    fn load(&self, keys: Vec<String>) -> Self::Future;
}

impl<T, F, Fut, M, E> BatchLoader<T> for F
where
    F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<M, E>> + Send + 'static,
    M: IntoIterator<Item = (String, T)>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Error = E;
    type Values = M;
    type Future = Fut;

    fn load(&self, keys: Vec<String>) -> Fut {
        self(keys)
    }
}

mod sealed {
    /// Keeps [`super::Loader`] to closures.
    pub trait Sealed {}

    impl<F, Fut> Sealed for F where F: FnOnce() -> Fut {}

    /// Keeps [`super::BatchLoader`] to closures.
    pub trait SealedBatch {}

    impl<F, Fut> SealedBatch for F where F: Fn(Vec<String>) -> Fut {}
}
