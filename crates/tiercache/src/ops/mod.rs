//! Operations on a namespace from outside the read path: what an operator's tool (the `tiercache`
//! command line) needs to look at a namespace and tidy it up, without a Redis client of its own
//! (the core is the one Redis layer: invariant `one-redis-layer` in docs/ARCHITECTURE.md).
//!
//! Looking, which changes nothing:
//!
//! | call | what |
//! |---|---|
//! | [`Admin::inspect`] | one entry: state, generation, tags and whether each is current, age, TTL and fail-safe time left, size, lease and its holder |
//! | [`Admin::scan_namespace`] | every Redis key of the namespace, by kind, found with `SCAN` and a `MATCH` pattern (never `KEYS`) |
//! | [`Admin::nodes`] | the nodes of the namespace that are running now (their presence keys) |
//! | [`Admin::leases`] | every load lease and named lock, with its holder and whether the holder is gone |
//! | [`Admin::server_info`] | Redis memory and statistics from `INFO` |
//! | [`Admin::records`] | a record list of the namespace (the widget layer keeps its metrics history in one) |
//!
//! Changing, each one fenced against what happened since it was looked at:
//!
//! | call | what |
//! |---|---|
//! | [`Admin::remove_abandoned_lease`] | compare-and-delete of a lease whose holder is gone |
//! | [`Admin::remove_expired_entry`] | an entry kept only for fail-safe, if still unchanged; every node's L1 is told |
//! | [`Admin::clear_namespace`] | every cache key of the namespace; every node drops its L1 |
//! | [`Admin::push_record`] | appends to a record list (capped) |
//!
//! **Who holds a lease.** A lease token is a decimal nonce whose top 31 bits are the top 31 bits of the
//! holder's node id (the first 8 of its 16 hex digits) and whose low 32 bits are random, so a token
//! names its holder while staying unique per acquisition. Every node keeps a presence key
//! (`tc:n:<ns>:<node id>`) that it rewrites every heartbeat interval and that expires after three: a
//! holder is *gone* when no node of the namespace with that id prefix is present. A paused or starved
//! node that misses three heartbeats is taken for gone; the worst that does is a second load of the
//! key, which fencing keeps correct.

mod cleanup;
mod entry;
mod leases;
mod presence;
mod records;
mod scan;
mod server;

pub use cleanup::ClearReport;
pub use entry::{EntryReport, EntryState, TagReport};
pub use leases::{LeaseHolder, LeaseKind, LeaseReport, LeaseState};
pub use presence::NodePresence;
pub use scan::{KeyKind, NamespaceKey};
pub use server::ServerInfo;

pub(crate) use presence::{lease_token, start_presence};

#[cfg(doc)]
use crate::admin::Admin;
