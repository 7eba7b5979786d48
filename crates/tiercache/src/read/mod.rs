//! The read path past L1: one leader per key and node ([`flight`]), the L2 read, the loader and the
//! fenced store ([`load`]), and refreshing entries before they expire ([`refresh`]).

pub(crate) mod flight;
pub(crate) mod load;
pub(crate) mod refresh;
