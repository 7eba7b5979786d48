//! The subscriber, its watchdog and the heartbeat: how a node hears what the others change, and
//! notices when it may have missed something.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use super::recovery::current_position;
use super::sender::publish_ephemeral;
use crate::error::Error;
use crate::l2::connection::{RedisClient, Subscriber};
use crate::message::{decode_with_rest, now_micros, parse_stream_id, Body};
use crate::node::bus_state::Position;
use crate::node::Node;

/// Joins the fleet: learns where the epoch and the replay stream stand, then subscribes. The node may
/// trust L2 once this succeeded; the subscriber goes to [`start_receiver`].
pub(crate) async fn join_fleet(
    node: &Arc<Node>,
    client: &RedisClient,
) -> Result<Subscriber, Error> {
    // Learn where the stream and the epoch stand before anything can be missed.
    let (epoch, last_id) = current_position(node).await?;
    let pubsub = connect_subscriber(node, client).await?;
    node.bus.state.senders.lock().reset(&last_id);
    *node.bus.state.position.lock() = Position {
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
            n.bus.state.subscribed.store(true, Ordering::Release);
            if n.l1.coherence.is_suspect() {
                n.spawn_recovery("subscriber reconnected");
            }
        }
        let ended = run_subscription(&node, pubsub).await;
        if let Some(n) = node.upgrade() {
            n.bus.state.subscribed.store(false, Ordering::Release);
            n.bus.state.mark_replay_from_here();
        }
        let Some(n) = node.upgrade() else { return };
        if n.become_suspect() {
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
            .and_then(|space| Some((&payload[..space], decode_with_rest(&payload[space + 1..])?)))
        else {
            // It may have been an invalidation this node cannot read: catch up from the stream, where
            // an unreadable entry makes the node drop its L1.
            n.repaired("b");
            n.gap_detected("an unreadable bus message");
            continue;
        };
        let (id, (message, rest)) = message;
        let id = std::str::from_utf8(id).unwrap_or("-");
        if message.node == n.id {
            if let Body::Heartbeat { .. } = message.body {
                last_own_heartbeat = tokio::time::Instant::now();
            }
            if id != "-" {
                n.bus.state.note_applied(id);
            }
            continue;
        }
        n.stats.bus_messages_received(1);
        match message.body {
            Body::Events(events) => {
                let before = parse_stream_id(&n.bus.state.position.lock().stream_id);
                let expected = {
                    let mut senders = n.bus.state.senders.lock();
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
                    n.bus.state.note_applied(id);
                }
                if expected.is_some_and(|e| e != message.seq) {
                    // The missed batch came before this one, maybe before the position too.
                    n.bus.state.mark_replay_from(before);
                    n.gap_detected("sequence gap");
                }
            }
            Body::Heartbeat { last_seq, last_id } => {
                let behind = {
                    let senders = n.bus.state.senders.lock();
                    match senders.last.get(&message.node) {
                        Some((seq, id)) => (last_seq > *seq).then_some(*id),
                        None => (parse_stream_id(&last_id) > senders.baseline)
                            .then_some(senders.baseline),
                    }
                };
                if let Some(received_up_to) = behind {
                    // What was missed comes after the last batch received from that sender.
                    n.bus.state.mark_replay_from(received_up_to);
                    n.gap_detected("heartbeat ahead of received messages");
                }
            }
            Body::Filled { key } => {
                n.retire_if_ageing(&key);
                n.filled(key, rest);
            }
        }
    }
}

async fn heartbeat_loop(node: Weak<Node>) {
    loop {
        let Some(n) = node.upgrade() else { return };
        let interval = n.config.heartbeat_interval;
        let last_seq = n.bus.state.last_sent_seq.load(Ordering::Acquire);
        let last_id = n.bus.state.last_sent_id.lock().clone();
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
