//! The read through the tiers: L1 (no I/O, no decoding), then L2 in one round trip (the value, or
//! the fence a load needs and, when asked, the key's lease), and the fills of L1 that follow a read
//! or a load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};
use tracing::Instrument;

use crate::codec::{self, Header};
use crate::coherence::{Admission, Trust};
use crate::error::Error;
use crate::l1::L1Entry;
use crate::l2::{Fence, L1Tags, LeaseAsk, LeaseClaim, ReadNeed};
use crate::node::flights::Flight;
use crate::node::outbox::{LocalFill, Op};
use crate::node::Node;
use crate::wall_clock::now_ms;
/// What a read of L2 found.
pub(crate) struct ReadOutcome<T> {
    pub(crate) fresh: Option<Arc<T>>,
    /// A value past its logical expiry, kept for fail-safe.
    pub(crate) stale: Option<Arc<T>>,
    /// The fence for a load; `None` when Redis could not be read.
    pub(crate) fence: Option<Fence>,
    /// When the value found was produced (wall clock, ms); 0 when none was found.
    pub(crate) created_at_ms: u64,
    /// The key's lease, when the read was asked to take it and did (or found it held).
    pub(crate) lease: LeaseClaim,
}

impl<T> Default for ReadOutcome<T> {
    fn default() -> Self {
        ReadOutcome {
            fresh: None,
            stale: None,
            fence: None,
            created_at_ms: 0,
            lease: LeaseClaim::NotTried,
        }
    }
}

/// What L1 had for a key.
pub(crate) enum L1Lookup<T> {
    /// A value this node trusts.
    Hit(Arc<T>, Arc<L1Entry>),
    /// A value this node may no longer trust (it may have missed an invalidation): usable only as a
    /// fail-safe fallback.
    Suspect(Arc<T>),
    Miss,
}

impl Node {
    /// L1 lookup: no I/O, no decoding.
    pub(crate) fn l1_lookup<T: Send + Sync + 'static>(&self, key: &str) -> L1Lookup<T> {
        let Some(entry) = self.l1.entries.get(key) else {
            return L1Lookup::Miss;
        };
        let Ok(value) = entry.value.clone().downcast::<T>() else {
            self.stats.type_mismatches(1);
            return L1Lookup::Miss;
        };
        match self.l1.coherence.trust(&entry) {
            Trust::Trusted => {
                self.stats.l1_hits(1);
                L1Lookup::Hit(value, entry)
            }
            Trust::Suspect => L1Lookup::Suspect(value),
            Trust::Invalid => L1Lookup::Miss,
        }
    }

    /// Reads `key` from L2, copying a fresh value into L1.
    /// `tags`: the tags the caller stores under; empty when it cannot name them (a plain `get`).
    pub(crate) async fn read_through<T>(
        self: &Arc<Self>,
        key: &str,
        tags: &[String],
        need: ReadNeed,
        take_lease: bool,
        flight: Option<&Flight>,
    ) -> Result<ReadOutcome<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let span = crate::spans::debug_span!(
            "tiercache.l2_read",
            namespace = %self.config.namespace,
            outcome = tracing::field::Empty,
        );
        let read = self
            .read_l2::<T>(key, tags, need, take_lease, flight)
            .instrument(span.clone())
            .await;
        if !span.is_disabled() {
            let outcome = match &read {
                Ok(r) if r.fresh.is_some() => "hit",
                Ok(r) if r.stale.is_some() => "stale",
                Ok(_) => "miss",
                Err(_) => "error",
            };
            span.record("outcome", outcome);
        }
        read
    }

    /// [`Node::read_through`], inside its span.
    async fn read_l2<T>(
        self: &Arc<Self>,
        key: &str,
        tags: &[String],
        need: ReadNeed,
        take_lease: bool,
        flight: Option<&Flight>,
    ) -> Result<ReadOutcome<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let entry_keys = self.keys.entry(key);
        let started = Instant::now();
        let vouched = |tag: &str, version: u64| self.l1.coherence.vouches(tag, version);
        let token = || crate::ops::lease_token(self.id);
        let lease = (take_lease && self.config.locking_enabled).then_some(LeaseAsk {
            token: &token,
            lease: self.config.lock_timeout,
        });
        let reply = self
            .guarded(self.l2.redis.read(&entry_keys, tags, need, &vouched, lease))
            .await?;
        self.stats.l2_read_time(started.elapsed());
        if reply.batched {
            self.stats.l2_batched_reads(1);
        }
        if reply.fence_first {
            self.stats.l2_fence_first_reads(1);
        }
        self.repaired(&reply.repaired);
        if !reply.created_tags.is_empty() {
            // Versions recreated after an eviction must reach nodes still holding the old ones.
            let ops = reply
                .created_tags
                .iter()
                .map(|(t, v)| Op::AnnounceTag(t.clone(), *v))
                .collect();
            let outbox = self.bus.outbox.clone();
            tokio::spawn(async move { outbox.send(ops).await });
        }
        let mut outcome = ReadOutcome {
            fence: reply.fence,
            lease: reply.lease,
            ..ReadOutcome::default()
        };
        let Some(envelope) = reply.envelope else {
            return Ok(outcome);
        };
        match self.decode_entry::<T>(&envelope) {
            Ok((header, value)) => {
                let value = Arc::new(value);
                outcome.created_at_ms = header.created_at_ms;
                if header.expires_at_ms > now_ms() {
                    self.stats.l2_hits(1);
                    if let Some(tags) = reply.recorded_tags {
                        self.fill_l1(key, value.clone(), envelope.len(), &header, tags, flight);
                    }
                    outcome.fresh = Some(value);
                } else {
                    outcome.stale = Some(value);
                }
            }
            Err(e) => {
                self.stats.decode_errors(1);
                tracing::warn!(namespace = %self.config.namespace, key, error = %e, "undecodable value in L2 treated as a miss and deleted");
                if let Err(e) = self.l2.redis.delete_entry(&entry_keys).await {
                    tracing::debug!(error = %e, "could not delete undecodable value");
                }
            }
        }
        if outcome.fresh.is_none() && outcome.fence.is_none() && need != ReadNeed::Value {
            // The one-command hit read brought no fence, and the value turned out unusable (corrupt, or
            // expired since): the load that follows must be fenced like any other.
            let full = self
                .guarded(
                    self.l2
                        .redis
                        .read(&entry_keys, tags, ReadNeed::Fence, &vouched, None),
                )
                .await?;
            outcome.fence = full.fence;
        }
        Ok(outcome)
    }

    /// An envelope read from L2: its header and value.
    fn decode_entry<T: DeserializeOwned>(
        &self,
        envelope: &[u8],
    ) -> Result<(Header, T), codec::DecodeError> {
        let max = self.config.max_value_bytes as usize;
        // A value of the other format under this layout's key was not written by a node of this
        // layout: corrupt, like any other undecodable value.
        let format = codec::format_of(self.keys.layout());
        match envelope.get(2) {
            Some(&found) if found != format => Err(codec::DecodeError::UnknownVersion(found)),
            _ => codec::decode_header(envelope, max),
        }
        .and_then(|(header, payload)| codec::decode_payload::<T>(payload).map(|v| (header, v)))
    }

    /// The hit reads of a batch's cold keys in one round trip ([`crate::l2::L2::read_hits`]), each
    /// under its key's flight (`None` where the key is not this call's to read): each key's value
    /// when its entry is a conclusive, decodable, unexpired hit (copied into L1 as
    /// [`Node::read_through`] does), `None` where the key needs its own read. Only where
    /// [`crate::l2::L2::reads_many_at_once`].
    pub(crate) async fn read_hits<T>(
        self: &Arc<Self>,
        keys: &[(&str, &Flight)],
    ) -> Result<Vec<Option<Arc<T>>>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let entry_keys: Vec<_> = keys.iter().map(|(key, _)| self.keys.entry(key)).collect();
        let started = Instant::now();
        let vouched = |tag: &str, version: u64| self.l1.coherence.vouches(tag, version);
        let replies = self
            .guarded(self.l2.redis.read_hits(&entry_keys, &vouched))
            .await?;
        let took = started.elapsed();
        let now = now_ms();
        let hits = keys.iter().zip(replies).map(|(&(key, flight), reply)| {
            let reply = reply?;
            let envelope = reply.envelope?;
            // Undecodable or expired since: the key's own read deals with it (deleting a corrupt
            // entry, taking the fence a load needs).
            let (header, value) = self.decode_entry::<T>(&envelope).ok()?;
            if header.expires_at_ms <= now {
                return None;
            }
            self.stats.l2_read_time(took);
            self.stats.l2_batched_reads(1);
            self.stats.l2_hits(1);
            let value = Arc::new(value);
            if let Some(tags) = reply.recorded_tags {
                self.fill_l1(
                    key,
                    value.clone(),
                    envelope.len(),
                    &header,
                    tags,
                    Some(flight),
                );
            }
            Some(value)
        });
        Ok(hits.collect())
    }

    /// How long L1 may serve a value that is fresh for `fresh_for`. While the node is suspect its bus
    /// may be down, so an invalidation published now might reach it only at the next recovery: a
    /// value filled meanwhile is kept no longer than a value loaded while Redis is unreachable.
    fn l1_life(&self, fresh_for: Duration) -> Duration {
        if self.l1.coherence.is_suspect() {
            fresh_for.min(self.config.degraded_ttl)
        } else {
            fresh_for
        }
    }

    /// A `set`'s fill of this node's L1 with `value` under `tags`, run by the flusher where the
    /// batch carrying the write is applied here (see [`LocalFill`]).
    pub(crate) fn local_fill<T: Send + Sync + 'static>(
        self: &Arc<Self>,
        key: &str,
        value: Arc<T>,
        encoded_len: usize,
        header: Header,
        tags: L1Tags,
    ) -> Arc<LocalFill> {
        let (node, key) = (Arc::downgrade(self), key.to_owned());
        LocalFill::new(move || {
            if let Some(node) = node.upgrade() {
                node.fill_l1(&key, value, encoded_len, &header, tags, None);
            }
        })
    }

    /// Puts a value in L1 unless an invalidation overtook it.
    pub(crate) fn fill_l1<T: Send + Sync + 'static>(
        &self,
        key: &str,
        value: Arc<T>,
        encoded_len: usize,
        header: &Header,
        tags: L1Tags,
        flight: Option<&Flight>,
    ) {
        // Read before admit checks the versions: a change in between leaves the entry to be checked
        // again on its first hit, never trusted past it.
        let tags_current_at = self.l1.coherence.change_count();
        match self.l1.coherence.admit(&tags) {
            Admission::Admit => {}
            Admission::Refuse => return,
            Admission::Overflow => {
                self.forget_unused_tags();
                return;
            }
        }
        if flight.is_some_and(Flight::is_poisoned) {
            return;
        }
        let now = Instant::now();
        let wall = now_ms();
        let fresh_for = Duration::from_millis(header.expires_at_ms.saturating_sub(wall));
        let created_at = now
            .checked_sub(Duration::from_millis(
                wall.saturating_sub(header.created_at_ms),
            ))
            .unwrap_or(now);
        let expires_at = now + fresh_for;
        let load_time = Duration::from_micros(u64::from(header.load_micros));
        let l1_life = self.l1_life(fresh_for);
        let entry = L1Entry {
            value,
            weight: u32::try_from(encoded_len).unwrap_or(u32::MAX),
            created_at,
            expires_at,
            fresh_until: crate::l1::fresh_until(l1_life),
            refresh_from: crate::l1::fresh_until(
                self.no_refresh_for(now, created_at, expires_at, load_time)
                    .min(l1_life),
            ),
            created_at_ms: header.created_at_ms,
            inserted_at: now,
            load_time,
            tags,
            tags_current_at: std::sync::atomic::AtomicU64::new(tags_current_at),
            refresh_claimed: std::sync::atomic::AtomicBool::new(false),
        };
        // A flight's key is already shared; only fills outside a flight allocate one.
        let shared_key = flight.map_or_else(|| Arc::from(key), |f| f.key().clone());
        self.l1.entries.insert(shared_key, entry);
        if flight.is_some_and(Flight::is_poisoned) {
            // The invalidation landed between the check and the insert: undo our own fill.
            self.l1.entries.remove(key);
        }
    }
}
