//! The read path: L1 and one round trip to L2 ([`through`]), one leader per key and node
//! (`node::flights`, joined as [`coalesce`] says), the lease, the loader and the fenced store ([`load`]), and refreshing entries before
//! they expire ([`refresh`]).

pub(crate) mod coalesce;
pub(crate) mod load;
pub(crate) mod refresh;
pub(crate) mod through;
