//! [`Loader`]: the bounds every loader passed to the cache meets, named once.

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

mod sealed {
    /// Keeps [`super::Loader`] to closures.
    pub trait Sealed {}

    impl<F, Fut> Sealed for F where F: FnOnce() -> Fut {}
}
