//! Catching up after a possible gap: replaying the stream from the last position applied, or dropping
//! L1 when the stream cannot tell what was missed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::message::{decode, parse_stream_id, Body, Message};
use crate::node::bus_state::Position;
use crate::node::Node;

/// The namespace's epoch (created if missing, rewritten if unreadable) and the stream's newest id (""
/// when there is no stream; a key of another type in its place is deleted).
pub(super) async fn current_position(node: &Node) -> Result<(String, String), Error> {
    let epoch = read_epoch(node).await?;
    let last_id = node
        .l2
        .redis
        .stream_info()
        .await?
        .map(|i| i.last_generated)
        .unwrap_or_default();
    Ok((epoch, last_id))
}

/// The namespace's epoch; what the script had to repair on the way is counted and logged.
async fn read_epoch(node: &Node) -> Result<String, Error> {
    let epoch = node.l2.redis.epoch().await?;
    node.repaired(&epoch.repaired);
    Ok(epoch.value)
}

/// Stream entries read per round trip while replaying.
const REPLAY_PAGE: usize = 1000;

impl Node {
    /// Marks the node suspect and starts a recovery.
    pub(crate) fn gap_detected(self: &Arc<Self>, reason: &'static str) {
        self.bus.state.mark_replay_from_here();
        self.stats.gaps_detected(1);
        self.become_suspect();
        tracing::info!(namespace = %self.config.namespace, reason, "possible missed invalidations; recovering");
        self.spawn_recovery(reason);
    }

    /// Runs one recovery in the background (coalesced: a recovery already running covers this one).
    pub(crate) fn spawn_recovery(self: &Arc<Self>, reason: &'static str) {
        if self.bus.recovering.swap(true, Ordering::AcqRel) {
            self.bus.recovery_requested.store(true, Ordering::Release);
            return;
        }
        let node = self.clone();
        tracing::debug!(namespace = %self.config.namespace, reason, "bus recovery started");
        tokio::spawn(async move {
            loop {
                if node.shut_down.load(Ordering::Acquire) {
                    return;
                }
                node.bus.recovery_requested.store(false, Ordering::Release);
                let from = node.bus.state.replay_from.lock().take();
                let recovered = node.recover(from).await;
                if recovered.is_err() {
                    if let Some(from) = from {
                        node.bus.state.mark_replay_from(from);
                    }
                }
                match recovered {
                    Ok(()) => {
                        if !node.bus.recovery_requested.load(Ordering::Acquire) {
                            // Without a subscriber the node stays suspect; reconnecting recovers again.
                            let subscribed = node.bus.state.subscribed.load(Ordering::Acquire);
                            if let Some(d) = subscribed
                                .then(|| node.l1.coherence.trust_again())
                                .flatten()
                            {
                                node.stats.suspect_for(d);
                            }
                            node.bus.recovering.store(false, Ordering::Release);
                            // A request that raced with the flag reset gets its own recovery.
                            if node.bus.recovery_requested.swap(false, Ordering::AcqRel) {
                                node.spawn_recovery(reason);
                            }
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "recovery failed; retrying");
                        node.l2.recovery_failed(e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }

    /// Replays what this node may have missed, or drops L1 when it cannot know. First it checks
    /// that Redis did not go back in time; L2 is used again only once that is known.
    async fn recover(self: &Arc<Self>, from: Option<(u64, u64)>) -> Result<(), Error> {
        let covers = self.l2.suspicions();
        let mut known = self.bus.state.position.lock().clone();
        let standing = self.l2.redis.standing(&known.stream_id).await?;
        self.repaired(&standing.repaired);
        if let Some(from) = from.filter(|f| *f < parse_stream_id(&known.stream_id)) {
            known.stream_id = if from == (0, 0) {
                String::new()
            } else {
                format!("{}-{}", from.0, from.1)
            };
        }
        if standing.value.epoch != known.epoch {
            self.drop_l1("Redis lost its data (epoch changed)");
            self.l2.position_checked(covers);
            return self.resync_position().await;
        }
        if standing.value.behind {
            self.redis_went_back().await?;
            self.l2.position_checked(covers);
            return self.resync_position().await;
        }
        self.l2.position_checked(covers);
        let info = match self.l2.redis.stream_info().await? {
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
            !known.stream_id.is_empty() && self.l2.redis.stream_holds(&known.stream_id).await?;
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
            let entries = self.l2.redis.stream_range(&from, REPLAY_PAGE).await?;
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
                        self.bus.state.senders.lock().received(node, seq, &entry.id);
                    }
                    Some(_) => {}
                    None => {
                        // It may have been an invalidation this node cannot read: fail closed.
                        self.repaired("b");
                        self.drop_l1("an unreadable entry in the replay stream");
                        return self.resync_position().await;
                    }
                }
                self.bus.state.note_applied(&entry.id);
                from = format!("({}", entry.id);
            }
        }
        self.stats.replays(1);
        tracing::info!(namespace = %self.config.namespace, replayed, "bus recovery replayed the stream");
        Ok(())
    }

    /// Redis lost invalidations it had acknowledged (restored from an older snapshot, an AOF that
    /// lost its last second, a promoted replica that had not received them): entries they removed
    /// may be back, and tag versions may be older than entries' own. No entry in L2 can be trusted,
    /// so they all go; every node drops its L1 (the message) and those that missed it resynchronise
    /// at their next look (the new epoch). The cost is a cold L2.
    async fn redis_went_back(self: &Arc<Self>) -> Result<(), Error> {
        self.l2.went_back();
        self.stats.rollbacks_detected(1);
        tracing::error!(namespace = %self.config.namespace, "Redis went back in time (restored from an older snapshot, lost its last writes, or a replica that missed them was promoted): deleting the namespace's entries from L2 and dropping every node's L1");
        super::replay::clear_namespace(self).await?;
        self.l2.redis.renew_epoch().await?;
        self.drop_l1("Redis went back in time");
        Ok(())
    }

    /// After dropping L1: start over from the stream's current end, as a new node would.
    async fn resync_position(self: &Arc<Self>) -> Result<(), Error> {
        let (epoch, last) = current_position(self).await?;
        self.bus.state.senders.lock().reset(&last);
        *self.bus.state.position.lock() = Position {
            stream_id: last,
            epoch,
        };
        Ok(())
    }

    /// Notices a Redis restart, flush or rollback from the heartbeat path, without waiting for a
    /// disconnect. An unreadable epoch is rewritten, which reads as a change: fail closed.
    pub(super) async fn check_epoch_cheaply(self: &Arc<Self>) {
        let known = self.bus.state.position.lock().clone();
        if let Ok(standing) = self.l2.redis.standing(&known.stream_id).await {
            self.repaired(&standing.repaired);
            if standing.value.epoch != known.epoch {
                self.gap_detected("Redis epoch changed");
            } else if standing.value.behind {
                self.gap_detected("Redis went back in time");
            }
        }
    }
}
