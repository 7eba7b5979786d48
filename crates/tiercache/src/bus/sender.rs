//! The flusher: group-commits what the outbox collects into one script call and one message.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::error::Error;
use crate::keys::EntryKeys;
use crate::l2::{nonce, EntryWrite, InvalidationBatch};
use crate::message::{encode, now_micros, Body, Event, Message};
use crate::node::outbox::{LocalFill, Op, Outbox, Reply, MAX_BATCH_OPS, OUTBOX_CAPACITY};
use crate::node::Node;

/// Starts the flusher; returns the outbox feeding it.
pub(crate) fn start_outbox(node: Weak<Node>) -> (Outbox, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<(Vec<Op>, Reply)>(OUTBOX_CAPACITY);
    let task = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let mut ops_count = batch[0].0.len();
            while ops_count < MAX_BATCH_OPS {
                match rx.try_recv() {
                    Ok(item) => {
                        ops_count += item.0.len();
                        batch.push(item);
                    }
                    Err(_) => break,
                }
            }
            let Some(node) = node.upgrade() else { return };
            let ops: Vec<Op> = batch
                .iter()
                .flat_map(|(ops, _)| ops.iter().cloned())
                .collect();
            // Only `Outbox::drained` markers: nothing to send.
            let result = if ops.is_empty() {
                Ok(())
            } else {
                // A root span: a batch serves many callers, each waiting in its `bus_publish`.
                let span = crate::spans::debug_span!(
                    parent: None,
                    "tiercache.bus_flush",
                    namespace = %node.config.namespace,
                    callers = batch.len(),
                    ops = ops.len(),
                    outcome = tracing::field::Empty,
                );
                let sent = send_or_queue(&node, ops).instrument(span.clone()).await;
                span.record("outcome", crate::spans::sent_outcome(&sent));
                sent
            };
            for (_, reply) in batch {
                let _ = reply.send(result.clone());
            }
        }
    });
    (
        Outbox {
            tx,
            closing: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        },
        task,
    )
}

/// Sends a batch, or keeps it for replay when it cannot reach Redis or earlier batches still wait
/// (so batches reach Redis in the order they were made). This node's own L1 applies the batch either
/// way: a local invalidation must hold locally.
async fn send_or_queue(node: &Arc<Node>, ops: Vec<Op>) -> Result<(), Error> {
    if node.l2.pending.has_work() {
        for op in &ops {
            node.apply_event(&op.local_event());
        }
        return Err(node.queue_for_replay(
            ops,
            &Error::unavailable("earlier invalidations still wait for Redis"),
        ));
    }
    match flush(node, ops.clone(), Route::Guarded).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::debug!(namespace = %node.config.namespace, error = %e, "invalidations queued for replay");
            Err(node.queue_for_replay(ops, &e))
        }
    }
}

/// Sends a batch from the replay queue straight to Redis (the gate is closed while the queue waits).
pub(crate) async fn replay_batch(node: &Arc<Node>, ops: Vec<Op>) -> Result<(), Error> {
    flush(node, ops, Route::Direct).await
}

/// Whether a batch goes through the node's gate and breaker (the outbox) or straight to Redis (the
/// replay of queued batches, which is what reopens the gate).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Guarded,
    Direct,
}

/// Applies a batch to L2, appends it to the replay stream and publishes it (`scripts/invalidate.lua`).
/// A batch's operations sorted by what the script does with them, and the events it announces
/// (in order: a fill's index is its event's).
struct Sorted {
    keys: Vec<(EntryKeys, u64)>,
    writes: Vec<(usize, Arc<EntryWrite>)>,
    fills: Vec<(usize, Arc<LocalFill>)>,
    tags: Vec<(String, u64)>,
    events: Vec<Event>,
}

fn sort_ops(node: &Node, ops: Vec<Op>) -> Sorted {
    let mut keys = Vec::new();
    let mut writes = Vec::new();
    let mut fills = Vec::new();
    let mut tags = Vec::new();
    let mut events = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::InvalidateKey(key) => {
                keys.push((node.keys.entry(&key), nonce()));
                events.push(Event::Key(key));
            }
            Op::AnnounceKey(key) => events.push(Event::Key(key)),
            Op::Put(key, write, fill) => {
                writes.push((keys.len(), write));
                if let Some(fill) = fill {
                    fills.push((events.len(), fill));
                }
                keys.push((node.keys.entry(&key), nonce()));
                events.push(Event::Key(key));
            }
            Op::InvalidateTag(tag) => {
                let version = nonce();
                tags.push((node.keys.tag(&tag), version));
                events.push(Event::Tag { tag, version });
            }
            Op::InvalidateTagTo(tag, version) => {
                tags.push((node.keys.tag(&tag), version));
                events.push(Event::Tag { tag, version });
            }
            Op::AnnounceTag(tag, version) => events.push(Event::Tag { tag, version }),
            Op::ClearNamespace => events.push(Event::Clear),
        }
    }
    Sorted {
        keys,
        writes,
        fills,
        tags,
        events,
    }
}

async fn flush(node: &Arc<Node>, ops: Vec<Op>, route: Route) -> Result<(), Error> {
    let Sorted {
        keys,
        writes,
        fills,
        tags,
        events,
    } = sort_ops(node, ops);
    let n_events = events.len();
    // A batch consumes its number only when it is sent: a failed send leaves a gap that receivers
    // notice and replay, which is safe; reusing a number could make them drop a later message.
    let seq = node.bus.state.next_seq.fetch_add(1, Ordering::AcqRel);
    let message = Message {
        node: node.id,
        seq,
        sent_at_micros: now_micros(),
        body: Body::Events(events.clone()),
    };
    #[cfg(feature = "fault-injection")]
    let skip_publish = node
        .bus
        .fault_skip_publish
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok();
    #[cfg(not(feature = "fault-injection"))]
    let skip_publish = false;
    let writes_in_batch = writes.len();
    let batch = InvalidationBatch {
        keys,
        writes,
        tags,
        message: encode(&message),
        publish: !skip_publish,
    };
    let invoke = node.l2.redis.invalidate(&batch);
    let result = match route {
        Route::Guarded => node.guarded(invoke).await,
        Route::Direct => invoke.await,
    };
    if let Err(e) = &result {
        if e.is_out_of_memory() {
            // The batch stays queued for its replay, which the stream needs; what takes no memory
            // goes out now, so the fleet stops serving the old values while memory is full.
            match node.l2.redis.invalidate_without_memory(&batch).await {
                Ok(()) => node
                    .stats
                    .invalidations_sent_without_stream(n_events as u64),
                Err(e) => {
                    tracing::debug!(namespace = %node.config.namespace, error = %e, "the memory-free part of an invalidation failed too");
                }
            }
        }
    }
    node.bus
        .state
        .last_sent_seq
        .fetch_max(seq, Ordering::AcqRel);
    // Our own L1 applies the change whether or not Redis took it: a local invalidation must hold
    // locally (a replayed batch applies again, which only drops what was filled meanwhile).
    let written = match &result {
        Ok(appended) if appended.value.writes_refused => {
            node.stats.late_writes_refused(writes_in_batch as u64);
            false
        }
        Ok(_) => true,
        Err(_) => false,
    };
    apply_here(node, &events, fills, written);
    match result {
        Ok(appended) => {
            let id = appended.value.stream_id;
            warn_if_unreplicated(node, appended.value.unreplicated);
            node.repaired(&appended.repaired);
            node.stats.invalidations_sent(n_events as u64);
            node.stats.bus_messages_sent(1);
            node.stats.batch(n_events);
            node.bus.state.note_applied(&id);
            id.clone_into(&mut node.bus.state.last_sent_id.lock());
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Counts a batch that fell short of its replicas, and says so in the log at most every 10 s.
fn warn_if_unreplicated(node: &Node, unreplicated: bool) {
    if !unreplicated {
        return;
    }
    node.stats.unreplicated_invalidations(1);
    let now = crate::wall_clock::now_ms();
    let logged = node
        .bus
        .state
        .unreplicated_logged_ms
        .load(Ordering::Relaxed);
    if now.saturating_sub(logged) >= UNREPLICATED_LOG_INTERVAL_MS
        && node
            .bus
            .state
            .unreplicated_logged_ms
            .compare_exchange(logged, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            namespace = %node.config.namespace,
            replicas = node.l2.redis.acks.as_ref().map_or(0, |acks| acks.replicas),
            "an invalidation was not acknowledged by its replicas in time; a failover now could lose it (logged at most every 10 s; tiercache_unreplicated_invalidations_total counts each)"
        );
    }
}

/// Applies a batch's events to this node's own L1, each `set`'s fill right after its own event and
/// before any later one (each op makes one event); the fills only when Redis has the writes (not when
/// the batch failed, nor when Redis refused its writes as too late: their keys were only invalidated).
fn apply_here(node: &Node, events: &[Event], fills: Vec<(usize, Arc<LocalFill>)>, written: bool) {
    let mut fills = fills.into_iter().peekable();
    for (at, event) in events.iter().enumerate() {
        node.apply_event(event);
        if let Some((_, fill)) = fills.next_if(|(fill_at, _)| *fill_at == at) {
            if written {
                fill.run();
            }
        }
    }
}

/// Publishes messages that are not replayed: heartbeats and "filled" notices.
pub(super) async fn publish_ephemeral(node: &Node, body: Body) -> Result<(), Error> {
    node.l2
        .redis
        .publish(&crate::message::ephemeral(node.id, body))
        .await
}

/// How often at most an invalidation that fell short of its replicas is logged.
const UNREPLICATED_LOG_INTERVAL_MS: u64 = 10_000;
