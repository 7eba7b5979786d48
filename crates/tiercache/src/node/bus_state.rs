//! What a node knows of the bus: its own sequence numbers, the stream position it applied and what
//! it received from each sender.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use crate::message::{parse_stream_id, stream_id_after};

/// Per-node bus state shared by the sender, the receiver, the heartbeat and recovery.
pub(crate) struct BusState {
    /// The sequence number the next batch sent gets.
    pub(crate) next_seq: AtomicU64,
    /// The sequence number of the last batch this node finished sending.
    pub(crate) last_sent_seq: AtomicU64,
    /// The stream id of the last batch this node finished sending.
    pub(crate) last_sent_id: parking_lot::Mutex<String>,
    /// When an unreplicated invalidation was last logged (ms since the Unix epoch): a master left
    /// without replicas would otherwise log every batch.
    pub(crate) unreplicated_logged_ms: AtomicU64,
    /// Last stream id applied, and the epoch seen with it.
    pub(crate) position: parking_lot::Mutex<Position>,
    /// What this node has received from each other node.
    pub(crate) senders: parking_lot::Mutex<Senders>,
    /// The earliest stream position from which what followed may have been missed (set when the
    /// node becomes suspect). Messages received after a gap advance the position past what was
    /// missed, so a recovery replays from here, not from the position.
    pub(crate) replay_from: parking_lot::Mutex<Option<(u64, u64)>>,
    /// Whether the subscriber is connected now. A recovery while it is not cannot end suspicion:
    /// what is published before it reconnects would be missed.
    pub(crate) subscribed: std::sync::atomic::AtomicBool,
}

/// Received-from-whom bookkeeping for gap detection.
#[derive(Default)]
pub(crate) struct Senders {
    /// The stream position this node started from (or last resynchronised to by dropping L1): a
    /// sender never heard from is only suspicious if it sent something after this.
    pub(crate) baseline: (u64, u64),
    /// Per sender: the last sequence number and stream id received from it.
    pub(crate) last: HashMap<u64, (u64, (u64, u64))>,
}

impl Senders {
    pub(crate) fn received(&mut self, node: u64, seq: u64, id: &str) {
        let id = parse_stream_id(id);
        let entry = self.last.entry(node).or_insert((0, (0, 0)));
        entry.0 = entry.0.max(seq);
        entry.1 = entry.1.max(id);
    }

    pub(crate) fn reset(&mut self, baseline: &str) {
        self.last.clear();
        self.baseline = parse_stream_id(baseline);
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Position {
    pub(crate) stream_id: String,
    pub(crate) epoch: String,
}

impl BusState {
    /// Notes that what followed `id` may have been missed (the earliest such mark wins).
    pub(crate) fn mark_replay_from(&self, id: (u64, u64)) {
        let mut from = self.replay_from.lock();
        *from = Some(from.map_or(id, |f| f.min(id)));
    }

    /// Notes that what follows the current position may be missed from now on.
    pub(crate) fn mark_replay_from_here(&self) {
        let here = parse_stream_id(&self.position.lock().stream_id);
        self.mark_replay_from(here);
    }

    pub(crate) fn new() -> Self {
        BusState {
            next_seq: AtomicU64::new(1),
            last_sent_seq: AtomicU64::new(0),
            last_sent_id: parking_lot::Mutex::new(String::new()),
            unreplicated_logged_ms: AtomicU64::new(0),
            position: parking_lot::Mutex::new(Position::default()),
            senders: parking_lot::Mutex::new(Senders::default()),
            replay_from: parking_lot::Mutex::new(None),
            subscribed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Moves the applied position to `id` if it is newer.
    pub(crate) fn note_applied(&self, id: &str) {
        let mut pos = self.position.lock();
        if stream_id_after(id, &pos.stream_id) {
            id.clone_into(&mut pos.stream_id);
        }
    }
}
