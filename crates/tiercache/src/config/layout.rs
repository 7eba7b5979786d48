//! [`EntryLayout`]: how a cache entry is kept in Redis.

/// How a cache entry is kept in Redis; the last letter of its key names it, so nodes of different
/// layouts never read each other's entries.
///
/// ```
/// let mut config = tiercache::Config::default();
/// config.entry_layout = tiercache::EntryLayout::Hash; // while nodes of an older release still run
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EntryLayout {
    /// Layout 1, `tc:{<ns>:<key>}:d`: a hash with the value in field `d` and its tag versions in
    /// field `t`. What tiercache used before layout 2; every release since also deletes these on
    /// invalidation, so a fleet can move from it node by node.
    Hash,
    /// Layout 2 (the default), `tc:{<ns>:<key>}:v`: one string, tag versions framed before the
    /// value, so a read is one `GET` (about a third of Redis's work for an `HMGET` of two fields).
    #[default]
    String,
}

impl EntryLayout {
    /// The last letter of an entry key of this layout.
    pub(crate) fn letter(self) -> char {
        match self {
            EntryLayout::Hash => 'd',
            EntryLayout::String => 'v',
        }
    }

    /// The other layout, whose entries an invalidation deletes too.
    pub(crate) fn other(self) -> EntryLayout {
        match self {
            EntryLayout::Hash => EntryLayout::String,
            EntryLayout::String => EntryLayout::Hash,
        }
    }
}
