//! The read path: L1 and one round trip to L2 ([`through`]), one leader per key and node
//! (`node::flights`, joined as [`coalesce`] says), the lease, the loader and the fenced store ([`load`]), refreshing entries before
//! they expire ([`refresh`]), and many keys in one call with one load for those missing ([`batch`], its cold keys' L2 reads in one round trip in [`at_once`], each key's place in it in [`slot`]).

pub(crate) mod at_once;
pub(crate) mod batch;
pub(crate) mod coalesce;
pub(crate) mod load;
pub(crate) mod refresh;
pub(crate) mod slot;
pub(crate) mod through;
