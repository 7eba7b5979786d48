//! The invalidation bus: how every node's L1 learns what changed.
//!
//! **Sending.** Invalidations go through an outbox that group-commits: when no batch is in flight the
//! first request is sent at once; requests that arrive meanwhile ride the next batch. One batch is one Lua
//! script (`scripts/invalidate.lua`): bump generations and tag versions, delete values, `XADD` to the
//! namespace's capped replay stream and `PUBLISH` — so a burst of 10,000 invalidations becomes a handful
//! of messages, and L2 is already invalid when `invalidate` returns.
//!
//! **Receiving.** A dedicated subscriber connection per node. Every message carries its sender's id and
//! a per-sender sequence number; heartbeats carry the sender's last sequence number. The node suspects it
//! missed something when a sequence number skips, a heartbeat is ahead of what it saw, its own heartbeat
//! does not come back in time, the subscriber disconnects, or Redis's epoch changed (restart or flush).
//! While suspect it serves no L1 entry older than the suspect moment; it recovers by replaying the stream
//! from the last id it applied, or drops its L1 when the stream no longer reaches back that far.
//!
//! What travels is defined below both the bus and L2 (`crate::message`), since L2's scripts publish
//! it and append it to the stream. What the tasks share sits below them, in the node's bus side
//! (`node/bus_side.rs`: the per-node bookkeeping of `node/bus_state.rs` and the outbox of
//! `node/outbox.rs`) and its L2 side (the queue of invalidations that could not reach Redis,
//! `node/pending.rs`). This folder holds the tasks that move messages: the flusher that sends the
//! outbox's batches ([`sender`]), the subscriber and heartbeat ([`receiver`]), catching up after a
//! gap ([`recovery`]) and the replay of the queue ([`replay`]).

pub(crate) mod receiver;
pub(crate) mod recovery;
pub(crate) mod replay;
pub(crate) mod sender;
