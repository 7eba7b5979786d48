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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::l2::connection::{RedisClient, Subscriber};
use crate::l2::{nonce, InvalidationBatch};
use crate::node::Node;

/// One change announced on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Event {
    /// The key's value changed or was removed.
    Key(String),
    /// The tag has a new version; entries recorded under another version are invalid.
    Tag { tag: String, version: u64 },
    /// Every entry of the namespace is invalid.
    Clear,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Body {
    Events(Vec<Event>),
    /// The sender's last batch: its sequence number and the stream id the batch was stored under.
    Heartbeat {
        last_seq: u64,
        last_id: String,
    },
    Filled {
        key: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Message {
    node: u64,
    seq: u64,
    sent_at_micros: u64,
    body: Body,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn encode(m: &Message) -> Vec<u8> {
    // Encoding plain structs of strings and integers into a Vec cannot fail.
    bincode::serde::encode_to_vec(m, bincode::config::standard()).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Option<Message> {
    bincode::serde::decode_from_slice(
        bytes,
        bincode::config::standard().with_limit::<{ 64 << 20 }>(),
    )
    .ok()
    .map(|(m, _)| m)
}

/// Decodes a bus message for the fuzz targets; whether it decoded.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_for_fuzzing(bytes: &[u8]) -> bool {
    decode(bytes).is_some()
}

/// What the outbox is asked to do to L2 before announcing.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Delete the key's value and bump its generation.
    InvalidateKey(String),
    /// Only announce that the key changed (L2 was already written).
    AnnounceKey(String),
    /// Give the tag a new version.
    InvalidateTag(String),
    /// Only announce a tag version that L2 already has (a version recreated after eviction).
    AnnounceTag(String, u64),
    /// Tell every node to drop its L1 (after the namespace's entries were deleted from L2).
    ClearNamespace,
}

/// Where a caller waits for its batch's outcome: every caller of one batch gets the same result (the
/// error cloned, source included).
type Reply = oneshot::Sender<Result<(), Error>>;

/// The sending half: queues operations for the group-commit flusher.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<(Vec<Op>, Reply)>,
}

/// Most operations in one batch (one script call, one message).
const MAX_BATCH_OPS: usize = 2048;
/// Calls waiting for the flusher at most; past it callers wait for room (backpressure) rather than
/// the queue growing without bound while Redis is slow.
pub(crate) const OUTBOX_CAPACITY: usize = 4096;

impl Outbox {
    /// Applies `ops` to L2 and announces them; returns when L2 has them.
    pub(crate) async fn send(&self, ops: Vec<Op>) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((ops, tx))
            .await
            .map_err(|_| Error::unavailable("the cache node is shutting down"))?;
        rx.await
            .map_err(|_| Error::unavailable("the cache node is shutting down"))?
    }
}

/// Per-node bus state shared by the sender, the receiver, the heartbeat and recovery.
pub(crate) struct BusState {
    /// The sequence number the next batch sent gets.
    next_seq: AtomicU64,
    /// The sequence number of the last batch this node finished sending.
    last_sent_seq: AtomicU64,
    /// The stream id of the last batch this node finished sending.
    last_sent_id: parking_lot::Mutex<String>,
    /// When an unreplicated invalidation was last logged (ms since the Unix epoch): a master left
    /// without replicas would otherwise log every batch.
    unreplicated_logged_ms: AtomicU64,
    /// Last stream id applied, and the epoch seen with it.
    position: parking_lot::Mutex<Position>,
    /// What this node has received from each other node.
    senders: parking_lot::Mutex<Senders>,
    /// The earliest stream position from which what followed may have been missed (set when the
    /// node becomes suspect). Messages received after a gap advance the position past what was
    /// missed, so a recovery replays from here, not from the position.
    replay_from: parking_lot::Mutex<Option<(u64, u64)>>,
    /// Whether the subscriber is connected now. A recovery while it is not cannot end suspicion:
    /// what is published before it reconnects would be missed.
    subscribed: std::sync::atomic::AtomicBool,
}

/// Received-from-whom bookkeeping for gap detection.
#[derive(Default)]
struct Senders {
    /// The stream position this node started from (or last resynchronised to by dropping L1): a
    /// sender never heard from is only suspicious if it sent something after this.
    baseline: (u64, u64),
    /// Per sender: the last sequence number and stream id received from it.
    last: HashMap<u64, (u64, (u64, u64))>,
}

impl Senders {
    fn received(&mut self, node: u64, seq: u64, id: &str) {
        let id = parse_stream_id(id);
        let entry = self.last.entry(node).or_insert((0, (0, 0)));
        entry.0 = entry.0.max(seq);
        entry.1 = entry.1.max(id);
    }

    fn reset(&mut self, baseline: &str) {
        self.last.clear();
        self.baseline = parse_stream_id(baseline);
    }
}

#[derive(Debug, Default, Clone)]
struct Position {
    stream_id: String,
    epoch: String,
}

impl BusState {
    /// Notes that what followed `id` may have been missed (the earliest such mark wins).
    fn mark_replay_from(&self, id: (u64, u64)) {
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
}

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
            let result = send_or_queue(&node, ops).await;
            for (_, reply) in batch {
                let _ = reply.send(result.clone());
            }
        }
    });
    (Outbox { tx }, task)
}

/// Sends a batch, or keeps it for replay when it cannot reach Redis or earlier batches still wait
/// (so batches reach Redis in the order they were made). This node's own L1 applies the batch either
/// way: a local invalidation must hold locally.
async fn send_or_queue(node: &Arc<Node>, ops: Vec<Op>) -> Result<(), Error> {
    if node.pending.has_work() {
        for op in &ops {
            node.apply_event(&op.local_event());
        }
        return Err(node.queue_for_replay(ops));
    }
    match flush(node, ops.clone(), Route::Guarded).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::debug!(namespace = %node.config.namespace, error = %e, "invalidations queued for replay");
            Err(node.queue_for_replay(ops))
        }
    }
}

impl Op {
    /// What this node's own L1 applies for an operation that is queued without being sent. A tag
    /// gets a version of this node's own, which no entry carries, so every L1 entry under the tag is
    /// distrusted until the replay brings the real one.
    fn local_event(&self) -> Event {
        match self {
            Op::InvalidateKey(key) | Op::AnnounceKey(key) => Event::Key(key.clone()),
            Op::AnnounceTag(tag, version) => Event::Tag {
                tag: tag.clone(),
                version: *version,
            },
            Op::InvalidateTag(tag) => Event::Tag {
                tag: tag.clone(),
                version: nonce(),
            },
            Op::ClearNamespace => Event::Clear,
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
async fn flush(node: &Arc<Node>, ops: Vec<Op>, route: Route) -> Result<(), Error> {
    let mut keys = Vec::new();
    let mut tags = Vec::new();
    let mut events = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::InvalidateKey(key) => {
                keys.push((node.keys.entry(&key), nonce()));
                events.push(Event::Key(key));
            }
            Op::AnnounceKey(key) => events.push(Event::Key(key)),
            Op::InvalidateTag(tag) => {
                let version = nonce();
                tags.push((node.keys.tag(&tag), version));
                events.push(Event::Tag { tag, version });
            }
            Op::AnnounceTag(tag, version) => events.push(Event::Tag { tag, version }),
            Op::ClearNamespace => events.push(Event::Clear),
        }
    }
    let n_events = events.len();
    // A batch consumes its number only when it is sent: a failed send leaves a gap that receivers
    // notice and replay, which is safe; reusing a number could make them drop a later message.
    let seq = node.bus.next_seq.fetch_add(1, Ordering::AcqRel);
    let message = Message {
        node: node.id,
        seq,
        sent_at_micros: now_micros(),
        body: Body::Events(events.clone()),
    };
    #[cfg(feature = "fault-injection")]
    let skip_publish = node
        .fault_skip_publish
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok();
    #[cfg(not(feature = "fault-injection"))]
    let skip_publish = false;
    let batch = InvalidationBatch {
        keys,
        tags,
        message: encode(&message),
        publish: !skip_publish,
    };
    let invoke = node.l2.invalidate(&batch);
    let result = match route {
        Route::Guarded => node.guarded(invoke).await,
        Route::Direct => invoke.await,
    };
    node.bus.last_sent_seq.fetch_max(seq, Ordering::AcqRel);
    // Our own L1 applies the change whether or not Redis took it: a local invalidation must hold
    // locally (a replayed batch applies again, which only drops what was filled meanwhile).
    for event in &events {
        node.apply_event(event);
    }
    match result {
        Ok(appended) => {
            let id = appended.value.stream_id;
            let now = crate::wall_clock::now_ms();
            let logged = node.bus.unreplicated_logged_ms.load(Ordering::Relaxed);
            if appended.value.unreplicated {
                node.stats.unreplicated_invalidations(1);
            }
            if appended.value.unreplicated
                && now.saturating_sub(logged) >= UNREPLICATED_LOG_INTERVAL_MS
                && node
                    .bus
                    .unreplicated_logged_ms
                    .compare_exchange(logged, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    namespace = %node.config.namespace,
                    replicas = node.l2.acks.as_ref().map_or(0, |acks| acks.replicas),
                    "an invalidation was not acknowledged by its replicas in time; a failover now could lose it (logged at most every 10 s; tiercache_unreplicated_invalidations_total counts each)"
                );
            }
            node.repaired(&appended.repaired);
            node.stats.invalidations_sent(n_events as u64);
            node.stats.bus_messages_sent(1);
            node.stats.batch(n_events);
            node.note_applied_position(&id);
            id.clone_into(&mut node.bus.last_sent_id.lock());
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Publishes messages that are not replayed: heartbeats and "filled" notices.
async fn publish_ephemeral(node: &Node, body: Body) -> Result<(), Error> {
    let message = Message {
        node: node.id,
        seq: 0,
        sent_at_micros: now_micros(),
        body,
    };
    // "-": no stream id, since the message is not in the stream.
    let mut payload = b"- ".to_vec();
    payload.extend_from_slice(&encode(&message));
    node.l2.publish(&payload).await
}

/// Announces that a key was filled, waking other nodes' waiters.
pub(crate) async fn publish_filled(node: &Node, key: &str) {
    if publish_ephemeral(
        node,
        Body::Filled {
            key: key.to_owned(),
        },
    )
    .await
    .is_ok()
    {
        node.stats.bus_messages_sent(1);
    }
}

impl Node {
    fn note_applied_position(&self, id: &str) {
        let mut pos = self.bus.position.lock();
        if stream_id_after(id, &pos.stream_id) {
            id.clone_into(&mut pos.stream_id);
        }
    }
}

/// Whether stream id `a` comes after `b` ("ms-seq"; an empty id is before everything).
fn stream_id_after(a: &str, b: &str) -> bool {
    parse_stream_id(a) > parse_stream_id(b)
}

fn parse_stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Joins the fleet: learns where the epoch and the replay stream stand, then subscribes. The node may
/// trust L2 once this succeeded; the subscriber goes to [`start_receiver`].
pub(crate) async fn join_fleet(
    node: &Arc<Node>,
    client: &RedisClient,
) -> Result<Subscriber, Error> {
    // Learn where the stream and the epoch stand before anything can be missed.
    let (epoch, last_id) = current_position(node).await?;
    let pubsub = connect_subscriber(node, client).await?;
    node.bus.senders.lock().reset(&last_id);
    *node.bus.position.lock() = Position {
        stream_id: last_id,
        epoch,
    };
    Ok(pubsub)
}

/// Starts the subscriber (with its watchdog) and the heartbeat of a node that has joined.
pub(crate) fn start_receiver(
    node: &Arc<Node>,
    client: RedisClient,
    pubsub: Subscriber,
) -> Vec<tokio::task::JoinHandle<()>> {
    let receiver = tokio::spawn(receive_loop(Arc::downgrade(node), client, Some(pubsub)));
    let heartbeat = tokio::spawn(heartbeat_loop(Arc::downgrade(node)));
    vec![receiver, heartbeat]
}

/// The longest pause between two attempts to join the fleet of a node started without Redis.
const MAX_JOIN_BACKOFF: Duration = Duration::from_secs(2);

/// For a node built while Redis was unreachable: tries to join the fleet with backoff until it
/// succeeds, then runs the receiver and the heartbeat (inside this one task, which the node's handle
/// aborts on drop).
pub(crate) fn start_joiner(node: Weak<Node>, client: RedisClient) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        let pubsub = loop {
            let Some(n) = node.upgrade() else { return };
            let limit = n.config.connect_timeout * 3;
            match tokio::time::timeout(limit, join_fleet(&n, &client)).await {
                Ok(Ok(pubsub)) => {
                    n.joined_late();
                    break pubsub;
                }
                Ok(Err(e)) => {
                    tracing::debug!(namespace = %n.config.namespace, error = %e, "joining the fleet failed; retrying");
                }
                Err(_) => {
                    tracing::debug!(namespace = %n.config.namespace, "joining the fleet timed out; retrying");
                }
            }
            drop(n);
            tokio::time::sleep(crate::backoff::jitter(backoff)).await;
            backoff = (backoff * 2).min(MAX_JOIN_BACKOFF);
        };
        let heartbeat = heartbeat_loop(node.clone());
        tokio::join!(receive_loop(node, client, Some(pubsub)), heartbeat);
    })
}

async fn connect_subscriber(node: &Node, client: &RedisClient) -> Result<Subscriber, Error> {
    let channel = node.keys.channel();
    let connect = client.subscribe(&channel);
    match tokio::time::timeout(node.config.connect_timeout * 2, connect).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Error::unavailable("subscriber connection timed out")),
    }
}

/// The namespace's epoch (created if missing, rewritten if unreadable) and the stream's newest id (""
/// when there is no stream; a key of another type in its place is deleted).
async fn current_position(node: &Node) -> Result<(String, String), Error> {
    let epoch = read_epoch(node).await?;
    let last_id = node
        .l2
        .stream_info()
        .await?
        .map(|i| i.last_generated)
        .unwrap_or_default();
    Ok((epoch, last_id))
}

/// The namespace's epoch; what the script had to repair on the way is counted and logged.
async fn read_epoch(node: &Node) -> Result<String, Error> {
    let epoch = node.l2.epoch().await?;
    node.repaired(&epoch.repaired);
    Ok(epoch.value)
}

/// How often at most an invalidation that fell short of its replicas is logged.
const UNREPLICATED_LOG_INTERVAL_MS: u64 = 10_000;

/// Stream entries read per round trip while replaying.
const REPLAY_PAGE: usize = 1000;

/// The longest pause between two attempts to reconnect the subscriber.
const MAX_SUBSCRIBER_BACKOFF: Duration = Duration::from_millis(250);

/// How many heartbeat intervals without our own heartbeat echo before we distrust the subscriber.
const SILENCE_INTERVALS: u32 = 3;

async fn receive_loop(node: Weak<Node>, client: RedisClient, mut first: Option<Subscriber>) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let pubsub = if let Some(p) = first.take() {
            p
        } else {
            let Some(n) = node.upgrade() else { return };
            match connect_subscriber(&n, &client).await {
                Ok(p) => {
                    backoff = Duration::from_millis(20);
                    p
                }
                Err(e) => {
                    tracing::debug!(error = %e, "bus subscriber reconnect failed");
                    drop(n);
                    tokio::time::sleep(backoff).await;
                    // Capped low: until it is back this node learns of no invalidation.
                    backoff = (backoff * 2).min(MAX_SUBSCRIBER_BACKOFF);
                    continue;
                }
            }
        };
        // Anything published while we were away is in the stream: catch up before trusting L1 again.
        if let Some(n) = node.upgrade() {
            n.bus.subscribed.store(true, Ordering::Release);
            if n.coherence.is_suspect() {
                n.spawn_recovery("subscriber reconnected");
            }
        }
        let ended = run_subscription(&node, pubsub).await;
        if let Some(n) = node.upgrade() {
            n.bus.subscribed.store(false, Ordering::Release);
            n.bus.mark_replay_from_here();
        }
        let Some(n) = node.upgrade() else { return };
        if n.coherence.become_suspect() {
            n.stats.gaps_detected(1);
            tracing::warn!(namespace = %n.config.namespace, reason = ended, "bus subscriber lost; L1 is suspect until recovery");
        }
    }
}

/// Consumes one subscription until it ends or goes silent; returns why it ended.
async fn run_subscription(node: &Weak<Node>, pubsub: Subscriber) -> &'static str {
    let mut stream = pubsub.into_payloads();
    let Some(interval) = node.upgrade().map(|n| n.config.heartbeat_interval) else {
        return "node dropped";
    };
    let silence = interval * SILENCE_INTERVALS;
    let mut last_own_heartbeat = tokio::time::Instant::now();
    loop {
        let deadline = last_own_heartbeat + silence;
        let msg = tokio::select! {
            m = stream.next() => m,
            () = tokio::time::sleep_until(deadline) => return "own heartbeat did not come back in time",
        };
        let Some(msg) = msg else {
            return "subscriber connection closed";
        };
        let Some(n) = node.upgrade() else {
            return "node dropped";
        };
        let payload = msg.as_slice();
        let Some(message) = payload
            .iter()
            .position(|b| *b == b' ')
            .and_then(|space| Some((&payload[..space], decode(&payload[space + 1..])?)))
        else {
            // It may have been an invalidation this node cannot read: catch up from the stream, where
            // an unreadable entry makes the node drop its L1.
            n.repaired("b");
            n.gap_detected("an unreadable bus message");
            continue;
        };
        let (id, message) = message;
        let id = std::str::from_utf8(id).unwrap_or("-");
        if message.node == n.id {
            if let Body::Heartbeat { .. } = message.body {
                last_own_heartbeat = tokio::time::Instant::now();
            }
            if id != "-" {
                n.note_applied_position(id);
            }
            continue;
        }
        n.stats.bus_messages_received(1);
        match message.body {
            Body::Events(events) => {
                let before = parse_stream_id(&n.bus.position.lock().stream_id);
                let expected = {
                    let mut senders = n.bus.senders.lock();
                    let expected = senders.last.get(&message.node).map(|(seq, _)| seq + 1);
                    senders.received(message.node, message.seq, id);
                    expected
                };
                for event in &events {
                    n.apply_event(event);
                }
                n.stats.invalidations_received(events.len() as u64);
                let sent = Duration::from_micros(message.sent_at_micros);
                if let Some(delay) = Duration::from_micros(now_micros()).checked_sub(sent) {
                    n.stats.propagation(delay);
                }
                if id != "-" {
                    n.note_applied_position(id);
                }
                if expected.is_some_and(|e| e != message.seq) {
                    // The missed batch came before this one, maybe before the position too.
                    n.bus.mark_replay_from(before);
                    n.gap_detected("sequence gap");
                }
            }
            Body::Heartbeat { last_seq, last_id } => {
                let behind = {
                    let senders = n.bus.senders.lock();
                    match senders.last.get(&message.node) {
                        Some((seq, id)) => (last_seq > *seq).then_some(*id),
                        None => (parse_stream_id(&last_id) > senders.baseline)
                            .then_some(senders.baseline),
                    }
                };
                if let Some(received_up_to) = behind {
                    // What was missed comes after the last batch received from that sender.
                    n.bus.mark_replay_from(received_up_to);
                    n.gap_detected("heartbeat ahead of received messages");
                }
            }
            Body::Filled { key } => {
                n.filled(&key);
                n.retire_if_ageing(&key);
            }
        }
    }
}

async fn heartbeat_loop(node: Weak<Node>) {
    loop {
        let Some(n) = node.upgrade() else { return };
        let interval = n.config.heartbeat_interval;
        let last_seq = n.bus.last_sent_seq.load(Ordering::Acquire);
        let last_id = n.bus.last_sent_id.lock().clone();
        // Through the breaker: heartbeats are what notices Redis going away, and its probe when it returns.
        let beat = publish_ephemeral(&n, Body::Heartbeat { last_seq, last_id });
        match n.guarded(beat).await {
            Ok(()) => n.check_epoch_cheaply().await,
            Err(e) => {
                tracing::debug!(namespace = %n.config.namespace, error = %e, "heartbeat not published");
            }
        }
        drop(n);
        tokio::time::sleep(interval).await;
    }
}

impl Node {
    /// Marks the node suspect and starts a recovery.
    pub(crate) fn gap_detected(self: &Arc<Self>, reason: &'static str) {
        self.bus.mark_replay_from_here();
        self.stats.gaps_detected(1);
        self.coherence.become_suspect();
        tracing::info!(namespace = %self.config.namespace, reason, "possible missed invalidations; recovering");
        self.spawn_recovery(reason);
    }

    /// Runs one recovery in the background (coalesced: a recovery already running covers this one).
    pub(crate) fn spawn_recovery(self: &Arc<Self>, reason: &'static str) {
        if self.recovering.swap(true, Ordering::AcqRel) {
            self.recovery_requested.store(true, Ordering::Release);
            return;
        }
        let node = self.clone();
        tracing::debug!(namespace = %self.config.namespace, reason, "bus recovery started");
        tokio::spawn(async move {
            loop {
                if node.shut_down.load(Ordering::Acquire) {
                    return;
                }
                node.recovery_requested.store(false, Ordering::Release);
                let from = node.bus.replay_from.lock().take();
                let recovered = node.recover(from).await;
                if recovered.is_err() {
                    if let Some(from) = from {
                        node.bus.mark_replay_from(from);
                    }
                }
                match recovered {
                    Ok(()) => {
                        if !node.recovery_requested.load(Ordering::Acquire) {
                            // Without a subscriber the node stays suspect; reconnecting recovers again.
                            let subscribed = node.bus.subscribed.load(Ordering::Acquire);
                            if let Some(d) =
                                subscribed.then(|| node.coherence.trust_again()).flatten()
                            {
                                node.stats.suspect_for(d);
                            }
                            node.recovering.store(false, Ordering::Release);
                            // A request that raced with the flag reset gets its own recovery.
                            if node.recovery_requested.swap(false, Ordering::AcqRel) {
                                node.spawn_recovery(reason);
                            }
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "recovery failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }

    /// Replays what this node may have missed, or drops L1 when it cannot know.
    async fn recover(self: &Arc<Self>, from: Option<(u64, u64)>) -> Result<(), Error> {
        let mut known = self.bus.position.lock().clone();
        if let Some(from) = from.filter(|f| *f < parse_stream_id(&known.stream_id)) {
            known.stream_id = if from == (0, 0) {
                String::new()
            } else {
                format!("{}-{}", from.0, from.1)
            };
        }
        let (epoch, _) = current_position(self).await?;
        if epoch != known.epoch {
            self.drop_l1("Redis lost its data (epoch changed)");
            return self.resync_position().await;
        }
        let info = match self.l2.stream_info().await? {
            Some(info) => info,
            // No stream: nothing was ever sent, or Redis lost it (the epoch check covers a restart).
            None if known.stream_id.is_empty() => return Ok(()),
            None => {
                self.drop_l1("the replay stream is gone");
                return self.resync_position().await;
            }
        };
        // Trimming removes the oldest entries first, so if the entry at our position is still there,
        // nothing after it is gone and the replay is exact. Otherwise, if anything was ever trimmed, what
        // we missed may be among it. (Redis 7.0 does not record trimmed ids in max-deleted-entry-id.)
        let position_kept =
            !known.stream_id.is_empty() && self.l2.stream_holds(&known.stream_id).await?;
        if !position_kept && info.entries_added > info.length {
            self.drop_l1("the replay stream was trimmed past this node's position");
            return self.resync_position().await;
        }
        let start = if known.stream_id.is_empty() {
            "-".to_owned()
        } else {
            format!("({}", known.stream_id)
        };
        let mut from = start;
        let mut replayed = 0u64;
        loop {
            let entries = self.l2.stream_range(&from, REPLAY_PAGE).await?;
            if entries.is_empty() {
                break;
            }
            for entry in &entries {
                match entry.message.as_deref().and_then(decode) {
                    Some(Message {
                        node,
                        seq,
                        body: Body::Events(events),
                        ..
                    }) => {
                        // Our own batches were applied here when they were sent; applying them again
                        // would only drop values this node filled since.
                        if node != self.id {
                            for event in &events {
                                self.apply_event(event);
                            }
                            replayed += events.len() as u64;
                        }
                        self.bus.senders.lock().received(node, seq, &entry.id);
                    }
                    Some(_) => {}
                    None => {
                        // It may have been an invalidation this node cannot read: fail closed.
                        self.repaired("b");
                        self.drop_l1("an unreadable entry in the replay stream");
                        return self.resync_position().await;
                    }
                }
                self.note_applied_position(&entry.id);
                from = format!("({}", entry.id);
            }
        }
        self.stats.replays(1);
        tracing::info!(namespace = %self.config.namespace, replayed, "bus recovery replayed the stream");
        Ok(())
    }

    /// After dropping L1: start over from the stream's current end, as a new node would.
    async fn resync_position(self: &Arc<Self>) -> Result<(), Error> {
        let (epoch, last) = current_position(self).await?;
        self.bus.senders.lock().reset(&last);
        *self.bus.position.lock() = Position {
            stream_id: last,
            epoch,
        };
        Ok(())
    }

    /// Notices a Redis restart or flush from the heartbeat path, without waiting for a disconnect. An
    /// unreadable epoch is rewritten, which reads as a change: fail closed.
    async fn check_epoch_cheaply(self: &Arc<Self>) {
        if let Ok(epoch) = read_epoch(self).await {
            let known = self.bus.position.lock().epoch.clone();
            if epoch != known {
                self.gap_detected("Redis epoch changed");
            }
        }
    }
}
