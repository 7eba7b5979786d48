//! [`Fetched`]: a value together with the tier that answered for it.

use std::sync::Arc;

/// Where a value returned by [`crate::Cache::fetch`] came from.
///
/// ```
/// assert_eq!(tiercache::Source::L1.as_str(), "l1");
/// assert_eq!(tiercache::Source::Loaded.to_string(), "loaded");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// This node's L1: no I/O.
    L1,
    /// Redis: a value stored earlier, or just now by another node's load this call waited for.
    L2,
    /// This node ran the loader for this call (or for a call it coalesced with).
    Loaded,
    /// A value past its expiry, served because the loader failed or passed its soft timeout
    /// (fail-safe).
    Stale,
}

impl Source {
    /// The lower-case name (`l1`, `l2`, `loaded`, `stale`), stable for logs, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::L1 => "l1",
            Source::L2 => "l2",
            Source::Loaded => "loaded",
            Source::Stale => "stale",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_u8(n: u8) -> Source {
        match n {
            0 => Source::L1,
            1 => Source::L2,
            2 => Source::Loaded,
            _ => Source::Stale,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value read through the cache, and the tier that answered.
#[derive(Debug)]
pub struct Fetched<T> {
    /// The value, shared with L1.
    pub value: Arc<T>,
    /// Where it came from.
    pub source: Source,
}

impl<T> Clone for Fetched<T> {
    fn clone(&self) -> Self {
        Fetched {
            value: self.value.clone(),
            source: self.source,
        }
    }
}

impl<T> Fetched<T> {
    pub(crate) fn new(value: Arc<T>, source: Source) -> Self {
        Fetched { value, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_survives_the_flight_encoding() {
        for s in [Source::L1, Source::L2, Source::Loaded, Source::Stale] {
            assert_eq!(Source::from_u8(s.to_u8()), s);
        }
    }
}
