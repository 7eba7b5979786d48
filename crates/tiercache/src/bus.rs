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

use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, SharedError};
use crate::keys::EPOCH_KEY;
use crate::l2::nonce;
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

type Reply = oneshot::Sender<Result<(), SharedError>>;

/// The sending half: queues operations for the group-commit flusher.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::UnboundedSender<(Vec<Op>, Reply)>,
}

/// Most operations in one batch (one script call, one message).
const MAX_BATCH_OPS: usize = 2048;

impl Outbox {
    /// Applies `ops` to L2 and announces them; returns when L2 has them.
    pub(crate) async fn send(&self, ops: Vec<Op>) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((ops, tx))
            .map_err(|_| Error::Unavailable("the cache node is shutting down".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("the cache node is shutting down".into()))?
            .map_err(SharedError::into_error)
    }
}

/// Per-node bus state shared by the sender, the receiver, the heartbeat and recovery.
pub(crate) struct BusState {
    /// The sequence number of the last batch this node finished sending.
    last_sent_seq: AtomicU64,
    /// The stream id of the last batch this node finished sending.
    last_sent_id: parking_lot::Mutex<String>,
    /// Last stream id applied, and the epoch seen with it.
    position: parking_lot::Mutex<Position>,
    /// What this node has received from each other node.
    senders: parking_lot::Mutex<Senders>,
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
    pub(crate) fn new() -> Self {
        BusState {
            last_sent_seq: AtomicU64::new(0),
            last_sent_id: parking_lot::Mutex::new(String::new()),
            position: parking_lot::Mutex::new(Position::default()),
            senders: parking_lot::Mutex::new(Senders::default()),
        }
    }
}

/// Starts the flusher; returns the outbox feeding it.
pub(crate) fn start_outbox(node: Weak<Node>) -> (Outbox, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<Op>, Reply)>();
    let task = tokio::spawn(async move {
        let mut next_seq = 1u64;
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
            let seq = next_seq;
            // A failed send still consumes its number: receivers then see a gap and replay, which is
            // safe; reusing it could make them drop a later message as a duplicate.
            next_seq += 1;
            let ops: Vec<Op> = batch
                .iter()
                .flat_map(|(ops, _)| ops.iter().cloned())
                .collect();
            let result = flush(&node, seq, ops).await.map_err(SharedError::from);
            node.bus.last_sent_seq.store(seq, Ordering::Release);
            for (_, reply) in batch {
                let _ = reply.send(result.clone());
            }
        }
    });
    (Outbox { tx }, task)
}

async fn flush(node: &Arc<Node>, seq: u64, ops: Vec<Op>) -> Result<(), Error> {
    let mut keys = Vec::new();
    let mut key_generations = Vec::new();
    let mut tag_keys = Vec::new();
    let mut tag_versions = Vec::new();
    let mut events = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::InvalidateKey(key) => {
                let k = node.keys.entry(&key);
                let generation = k.generation();
                keys.push(k.entry);
                keys.push(generation);
                key_generations.push(nonce());
                events.push(Event::Key(key));
            }
            Op::AnnounceKey(key) => events.push(Event::Key(key)),
            Op::InvalidateTag(tag) => {
                let version = nonce();
                tag_keys.push(node.keys.tag(&tag));
                tag_versions.push(version);
                events.push(Event::Tag { tag, version });
            }
            Op::AnnounceTag(tag, version) => events.push(Event::Tag { tag, version }),
            Op::ClearNamespace => events.push(Event::Clear),
        }
    }
    let n_events = events.len();
    let message = Message {
        node: node.id,
        seq,
        sent_at_micros: now_micros(),
        body: Body::Events(events.clone()),
    };
    let skip_publish = node
        .fault_skip_publish
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok();
    let channel = if skip_publish {
        String::new()
    } else {
        node.keys.channel()
    };
    let mut call = node.l2.scripts.invalidate.prepare_invoke();
    call.key(node.keys.stream());
    call.arg(channel)
        .arg(key_generations.len())
        .arg(node.l2.generation_ttl.as_millis() as u64)
        .arg(node.config.stream_max_len)
        .arg(encode(&message));
    for k in &keys {
        call.key(k);
    }
    for g in &key_generations {
        call.arg(*g);
    }
    for (k, v) in tag_keys.iter().zip(&tag_versions) {
        call.key(k).arg(*v);
    }
    let mut conn = node.l2.conn.clone();
    let result: Result<String, Error> = node
        .guarded(async move { call.invoke_async(&mut conn).await.map_err(Error::from) })
        .await;
    // Our own L1 applies the change whether or not Redis took it: a local invalidation must hold locally.
    for event in &events {
        node.apply_event(event).await;
    }
    match result {
        Ok(id) => {
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
async fn publish_ephemeral(node: &Node, body: Body) -> Result<(), redis::RedisError> {
    let message = Message {
        node: node.id,
        seq: 0,
        sent_at_micros: now_micros(),
        body,
    };
    let mut payload = b"- ".to_vec();
    payload.extend_from_slice(&encode(&message));
    redis::cmd("PUBLISH")
        .arg(node.keys.channel())
        .arg(payload)
        .exec_async(&mut node.l2.conn.clone())
        .await
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

/// Starts the subscriber (with its watchdog) and the heartbeat.
pub(crate) async fn start_receiver(
    node: &Arc<Node>,
    client: redis::Client,
) -> Result<Vec<tokio::task::JoinHandle<()>>, Error> {
    // Learn where the stream and the epoch stand before anything can be missed.
    let (epoch, last_id) = current_position(node).await?;
    node.bus.senders.lock().reset(&last_id);
    *node.bus.position.lock() = Position {
        stream_id: last_id,
        epoch,
    };
    let pubsub = connect_subscriber(node, &client).await?;
    let receiver = tokio::spawn(receive_loop(Arc::downgrade(node), client, Some(pubsub)));
    let heartbeat = tokio::spawn(heartbeat_loop(Arc::downgrade(node)));
    Ok(vec![receiver, heartbeat])
}

async fn connect_subscriber(
    node: &Node,
    client: &redis::Client,
) -> Result<redis::aio::PubSub, Error> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(node.keys.channel()).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(node.config.connect_timeout * 2, connect).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Error::Unavailable("subscriber connection timed out".into())),
    }
}

/// The replay stream's ends, from `XINFO STREAM`.
struct StreamInfo {
    /// The id of the newest entry ever added (kept even when trimming removed it).
    last_generated: String,
    /// Entries ever added, and entries present: when they differ, some were trimmed away.
    entries_added: u64,
    length: u64,
}

fn value_text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// `None` when the stream does not exist.
async fn stream_info(node: &Node) -> Result<Option<StreamInfo>, Error> {
    let mut conn = node.l2.conn.clone();
    let exists: bool = redis::cmd("EXISTS")
        .arg(node.keys.stream())
        .query_async(&mut conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    let info: redis::Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(node.keys.stream())
        .query_async(&mut conn)
        .await?;
    let pairs: Vec<(String, String)> = match info {
        redis::Value::Array(items) => items
            .chunks(2)
            .filter_map(|kv| {
                Some((
                    value_text(&kv[0])?,
                    kv.get(1).and_then(value_text).unwrap_or_default(),
                ))
            })
            .collect(),
        redis::Value::Map(items) => items
            .iter()
            .filter_map(|(k, v)| Some((value_text(k)?, value_text(v).unwrap_or_default())))
            .collect(),
        _ => Vec::new(),
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Ok(Some(StreamInfo {
        last_generated: field("last-generated-id"),
        // Unreadable counts err towards "something was trimmed": dropping L1 is safe, missing a gap is not.
        entries_added: field("entries-added").parse().unwrap_or(u64::MAX),
        length: field("length").parse().unwrap_or(0),
    }))
}

/// The database epoch (created if missing) and the stream's newest id ("" when there is no stream).
async fn current_position(node: &Node) -> Result<(String, String), Error> {
    let mut conn = node.l2.conn.clone();
    let (epoch,): (Option<String>,) = redis::pipe()
        .cmd("SET")
        .arg(EPOCH_KEY)
        .arg(nonce())
        .arg("NX")
        .ignore()
        .cmd("GET")
        .arg(EPOCH_KEY)
        .query_async(&mut conn)
        .await?;
    let last_id = stream_info(node)
        .await?
        .map(|i| i.last_generated)
        .unwrap_or_default();
    Ok((epoch.unwrap_or_default(), last_id))
}

/// How many heartbeat intervals without our own heartbeat echo before we distrust the subscriber.
const SILENCE_INTERVALS: u32 = 3;

async fn receive_loop(
    node: Weak<Node>,
    client: redis::Client,
    mut first: Option<redis::aio::PubSub>,
) {
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
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            }
        };
        // Anything published while we were away is in the stream: catch up before trusting L1 again.
        if let Some(n) = node.upgrade() {
            if n.coherence.is_suspect() {
                n.spawn_recovery("subscriber reconnected");
            }
        }
        let ended = run_subscription(&node, pubsub).await;
        let Some(n) = node.upgrade() else { return };
        if n.coherence.become_suspect() {
            n.stats.gaps_detected(1);
            tracing::warn!(namespace = %n.config.namespace, reason = ended, "bus subscriber lost; L1 is suspect until recovery");
        }
    }
}

/// Consumes one subscription until it ends or goes silent; returns why it ended.
async fn run_subscription(node: &Weak<Node>, pubsub: redis::aio::PubSub) -> &'static str {
    let mut stream = pubsub.into_on_message();
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
        let payload = msg.get_payload_bytes();
        let Some(space) = payload.iter().position(|b| *b == b' ') else {
            continue;
        };
        let (id, body) = (&payload[..space], &payload[space + 1..]);
        let Some(message) = decode(body) else {
            tracing::warn!("undecodable bus message ignored");
            continue;
        };
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
                let expected = {
                    let mut senders = n.bus.senders.lock();
                    let expected = senders.last.get(&message.node).map(|(seq, _)| seq + 1);
                    senders.received(message.node, message.seq, id);
                    expected
                };
                for event in &events {
                    n.apply_event(event).await;
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
                    n.gap_detected("sequence gap");
                }
            }
            Body::Heartbeat { last_seq, last_id } => {
                let behind = {
                    let senders = n.bus.senders.lock();
                    match senders.last.get(&message.node) {
                        Some((seq, _)) => last_seq > *seq,
                        None => parse_stream_id(&last_id) > senders.baseline,
                    }
                };
                if behind {
                    n.gap_detected("heartbeat ahead of received messages");
                }
            }
            Body::Filled { key } => {
                n.filled(&key);
                n.retire_if_ageing(&key).await;
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
        let beat = publish_ephemeral(&n, Body::Heartbeat { last_seq, last_id })
            .map(|r| r.map_err(Error::from));
        if n.guarded(beat).await.is_ok() {
            n.check_epoch_cheaply().await;
        }
        drop(n);
        tokio::time::sleep(interval).await;
    }
}

impl Node {
    /// Marks the node suspect and starts a recovery.
    pub(crate) fn gap_detected(self: &Arc<Self>, reason: &'static str) {
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
                match node.recover().await {
                    Ok(()) => {
                        if !node.recovery_requested.load(Ordering::Acquire) {
                            if let Some(d) = node.coherence.trust_again() {
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
    async fn recover(self: &Arc<Self>) -> Result<(), Error> {
        let known = self.bus.position.lock().clone();
        let (epoch, _) = current_position(self).await?;
        if epoch != known.epoch {
            self.drop_l1("Redis lost its data (epoch changed)");
            return self.resync_position().await;
        }
        let mut conn = self.l2.conn.clone();
        let info = match stream_info(self).await? {
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
        let position_kept = if known.stream_id.is_empty() {
            false
        } else {
            let at: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(self.keys.stream())
                .arg(&known.stream_id)
                .arg(&known.stream_id)
                .query_async(&mut conn)
                .await?;
            !at.ids.is_empty()
        };
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
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(self.keys.stream())
                .arg(&from)
                .arg("+")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            if reply.ids.is_empty() {
                break;
            }
            for entry in &reply.ids {
                if let Some(redis::Value::BulkString(bytes)) = entry.map.get("m") {
                    if let Some(Message {
                        node,
                        seq,
                        body: Body::Events(events),
                        ..
                    }) = decode(bytes)
                    {
                        // Our own batches were applied here when they were sent; applying them again
                        // would only drop values this node filled since.
                        if node != self.id {
                            for event in &events {
                                self.apply_event(event).await;
                            }
                            replayed += events.len() as u64;
                        }
                        self.bus.senders.lock().received(node, seq, &entry.id);
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

    /// Notices a Redis restart or flush from the heartbeat path, without waiting for a disconnect.
    async fn check_epoch_cheaply(self: &Arc<Self>) {
        let epoch: redis::RedisResult<Option<String>> = redis::cmd("GET")
            .arg(EPOCH_KEY)
            .query_async(&mut self.l2.conn.clone())
            .await;
        let known = self.bus.position.lock().epoch.clone();
        if let Ok(epoch) = epoch {
            if epoch.as_deref() != Some(known.as_str()) {
                self.gap_detected("Redis epoch changed");
            }
        }
    }
}
