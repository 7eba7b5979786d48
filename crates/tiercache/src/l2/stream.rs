//! The bus's side of Redis: the scripts that apply a batch of invalidations and append it to the
//! namespace's replay stream, messages on the namespace's channel, the namespace's epoch, and reading
//! the stream back. The stream, the channel, the epoch and the tag versions share the namespace's
//! cluster slot; the keys a batch invalidates are spread over the others. The bus ([`crate::bus`]) decides what to send and what a reply means; this is how it
//! reaches Redis.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::try_join_all;
use redis::streams::StreamRangeReply;
use redis::Value;

use super::connection::{slot_of, WaitAt};
use super::{nonce, text, EntryWrite, Repaired, L2};
use crate::error::Error;
use crate::keys::EntryKeys;
use crate::message::now_micros;

/// One batch of invalidations, as `scripts/invalidate.lua` applies it.
pub(crate) struct InvalidationBatch {
    /// Each invalidated key, with the generation it gets.
    pub(crate) keys: Vec<(EntryKeys, u64)>,
    /// Entries written after their key's invalidation (a `set`), by index into `keys`. One server
    /// only: a cluster's `set` writes its entry in the entry's slot first and announces it after.
    pub(crate) writes: Vec<(usize, Arc<EntryWrite>)>,
    /// Each invalidated tag's version key, with the version it gets.
    pub(crate) tags: Vec<(String, u64)>,
    /// The bus message: appended to the stream and published.
    pub(crate) message: Vec<u8>,
    /// Whether the message is published as well as appended (`false` only for fault injection).
    pub(crate) publish: bool,
}

/// What [`L2::invalidate`] did.
pub(crate) struct Invalidated {
    /// The stream id the batch was appended under.
    pub(crate) stream_id: String,
    /// Whether fewer replicas than asked acknowledged a part of the batch in time: a failover of
    /// that master now could lose the invalidation.
    pub(crate) unreplicated: bool,
    /// Whether the batch reached Redis past its writes' deadline, so its writes were refused (their
    /// keys only invalidated).
    pub(crate) writes_refused: bool,
}

/// One entry of the replay stream.
pub(crate) struct StreamEntry {
    /// Its stream id.
    pub(crate) id: String,
    /// Its message (field `m`); `None` when it has none, or one that is not a byte string.
    pub(crate) message: Option<Vec<u8>>,
}

/// What `scripts/position.lua` says of the namespace ([`L2::standing`]).
pub(crate) struct Standing {
    pub(crate) epoch: String,
    /// The stream lost the entry at the caller's position although trimming cannot have taken it:
    /// Redis went back in time.
    pub(crate) behind: bool,
}

/// The replay stream's ends, from `XINFO STREAM`.
pub(crate) struct StreamInfo {
    /// The id of the newest entry ever added (kept even when trimming removed it).
    pub(crate) last_generated: String,
    /// Entries ever added, and entries present: when they differ, some were trimmed away.
    pub(crate) entries_added: u64,
    pub(crate) length: u64,
}

impl L2 {
    /// Applies `batch`: bumps generations and tag versions, deletes the values, appends the message
    /// to the replay stream (capped at `stream_max_len`) and publishes it. On one server that is one
    /// script call, atomic. On a cluster the keys' slots come first, one `scripts/invalidate_keys.lua`
    /// call per slot, all at once; then the namespace's slot takes the tags, the stream and the
    /// publish in one call. A batch that fails half way is sent again whole (the outbox retries), and
    /// sending it twice only bumps the same generations again. With [`L2::acks`] set, the
    /// keys' part waits for that many replicas of every master before the stream's part is written
    /// (so no node is told of a key invalidation a failover could still undo), and the stream's part
    /// (tag versions, stream, publish) waits in turn: its tag bumps are published before they are
    /// acknowledged. A wait that falls short, or fails, is reported, not retried: the invalidation
    /// is in place on the masters, and sending it again would not make it more durable.
    pub(crate) async fn invalidate(
        &self,
        batch: &InvalidationBatch,
    ) -> Result<Repaired<Invalidated>, Error> {
        let cluster = self.conn.is_cluster();
        let conn = self.acks.as_ref().map_or(&self.conn, |acks| &acks.conn);
        let mut unreplicated = false;
        if cluster && !batch.keys.is_empty() {
            let mut by_slot: HashMap<_, Vec<&(EntryKeys, u64)>> = HashMap::new();
            for key in &batch.keys {
                by_slot.entry(slot_of(&key.0.entry)).or_default().push(key);
            }
            let parts = by_slot.into_values().map(|keys| async move {
                let mut call = self.scripts.invalidate_keys.prepare_invoke();
                call.arg(self.generation_ttl.as_millis() as u64);
                for (entry, generation) in &keys {
                    call.key(&entry.entry)
                        .key(entry.other_layout())
                        .key(entry.generation())
                        .arg(*generation);
                }
                call.invoke_async::<i64>(&mut conn.clone()).await
            });
            try_join_all(parts).await?;
            // One wait for all masters at once: a wait per slot would queue behind each other on a
            // master's one connection, a timeout each where a master has lost its replica.
            unreplicated |= !self.replicated(WaitAt::EveryMaster).await;
        }
        let inline: &[(EntryKeys, u64)] = if cluster { &[] } else { &batch.keys };
        let publish = self.conn.publish_command();
        let channel = if batch.publish {
            self.keys.channel()
        } else {
            String::new()
        };
        let mut call = self.scripts.invalidate.prepare_invoke();
        call.key(self.keys.stream());
        call.arg(channel)
            .arg(publish)
            .arg(inline.len())
            .arg(self.generation_ttl.as_millis() as u64)
            .arg(self.stream_max_len)
            .arg(batch.message.as_slice());
        for (entry, _) in inline {
            call.key(&entry.entry)
                .key(entry.other_layout())
                .key(entry.generation());
        }
        for (_, generation) in inline {
            call.arg(*generation);
        }
        for (key, version) in &batch.tags {
            call.key(key).arg(*version);
        }
        // On a cluster the keys were invalidated in their own slots above, and a write there would
        // come after nothing announced it; `set` does not send one (see `writes`).
        let writes: &[(usize, Arc<EntryWrite>)] = if cluster { &[] } else { &batch.writes };
        call.arg(writes.len());
        for (index, write) in writes {
            call.arg(index + 1)
                .arg(&write.value)
                .arg(&write.recorded)
                .arg(write.lifetime_ms);
        }
        call.arg(if writes.is_empty() {
            0
        } else {
            self.write_deadline_ms()
        });
        let (stream_id, repaired, refused): (String, String, i64) =
            call.invoke_async(&mut conn.clone()).await?;
        let stream = self.keys.stream();
        unreplicated |= !self.replicated(WaitAt::SlotOf(&stream)).await;
        Ok(Repaired {
            value: Invalidated {
                stream_id,
                unreplicated,
                writes_refused: refused == 1,
            },
            repaired,
        })
    }

    /// Whether the writes just made on the acknowledged connection reached the replicas [`L2::acks`]
    /// asks for, on the masters `at` names, in time; `true` at once when none are asked for, `false`
    /// when the wait failed.
    async fn replicated(&self, at: WaitAt<'_>) -> bool {
        let Some(acks) = &self.acks else {
            return true;
        };
        match acks
            .conn
            .wait_for_replicas(at, acks.replicas, acks.wait)
            .await
        {
            Ok(acked) => acked >= i64::from(acks.replicas),
            Err(e) => {
                tracing::debug!(error = %e, "waiting for replicas failed");
                false
            }
        }
    }

    /// What of `batch` needs no memory, for a Redis that refuses writes (`maxmemory` reached with a
    /// policy that evicts nothing): deletes the keys' entries and generations (a load still running
    /// then finds its generation gone and stores nothing) and the tags' versions (a version that is
    /// gone reads as changed, so every entry recording it is refused), then publishes the message
    /// without a stream id (the stream cannot grow), so the nodes listening drop the values from L1.
    /// Nodes not listening learn it when the batch is replayed whole. Deleting frees memory, and
    /// `DEL`, `UNLINK` and `PUBLISH` are allowed under `noeviction`.
    pub(crate) async fn invalidate_without_memory(
        &self,
        batch: &InvalidationBatch,
    ) -> Result<(), Error> {
        let mut pipe = redis::pipe();
        for (entry, _) in &batch.keys {
            for key in [
                entry.entry.clone(),
                entry.other_layout(),
                entry.generation(),
            ] {
                // One command per key: on a cluster a multi-key DEL must stay in one slot.
                pipe.cmd("UNLINK").arg(key).ignore();
            }
        }
        for (tag_key, _) in &batch.tags {
            pipe.cmd("UNLINK").arg(tag_key).ignore();
        }
        if batch.publish {
            let mut payload = b"- ".to_vec();
            payload.extend_from_slice(&batch.message);
            pipe.cmd(self.conn.publish_command())
                .arg(self.keys.channel())
                .arg(payload)
                .ignore();
        }
        let _: () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Publishes `payload` on the namespace's channel, without storing it: heartbeats and "filled"
    /// notices, which no node needs to replay.
    pub(crate) async fn publish(&self, payload: &[u8]) -> Result<(), Error> {
        redis::cmd(self.conn.publish_command())
            .arg(self.keys.channel())
            .arg(payload)
            .exec_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// The namespace's epoch through `scripts/position.lua`, which creates it when missing and rewrites
    /// it (and a key of another type where the stream belongs) when unreadable. Redis's clock comes
    /// with it and is kept for the deadlines of writes (see [`super::clock`]).
    pub(crate) async fn epoch(&self) -> Result<Repaired<String>, Error> {
        let standing = self.standing("").await?;
        Ok(Repaired {
            value: standing.value.epoch,
            repaired: standing.repaired,
        })
    }

    /// The namespace's epoch, and whether Redis went back in time behind `known`, the stream
    /// position a node has applied (see `scripts/position.lua`).
    pub(crate) async fn standing(&self, known: &str) -> Result<Repaired<Standing>, Error> {
        let sent = now_micros();
        let (epoch, _, repaired, redis_us, behind): (String, i64, String, u64, i64) = self
            .scripts
            .position
            .key(self.keys.epoch())
            .key(self.keys.stream())
            .arg(nonce())
            .arg(known)
            .invoke_async(&mut self.conn.clone())
            .await?;
        self.clock.observe(sent, redis_us, now_micros());
        Ok(Repaired {
            value: Standing {
                epoch,
                behind: behind == 1,
            },
            repaired,
        })
    }

    /// Gives the namespace a new epoch, so every node that learned the old one resynchronises (and
    /// drops its L1) at its next look.
    pub(crate) async fn renew_epoch(&self) -> Result<(), Error> {
        let _: () = redis::cmd("SET")
            .arg(self.keys.epoch())
            .arg(nonce())
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// The replay stream's ends; `None` when the stream does not exist.
    pub(crate) async fn stream_info(&self) -> Result<Option<StreamInfo>, Error> {
        let mut conn = self.conn.clone();
        let stream = self.keys.stream();
        let exists: bool = redis::cmd("EXISTS")
            .arg(&stream)
            .query_async(&mut conn)
            .await?;
        if !exists {
            return Ok(None);
        }
        let info: Value = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(&stream)
            .query_async(&mut conn)
            .await?;
        let pairs = field_pairs(info);
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        Ok(Some(StreamInfo {
            last_generated: field("last-generated-id"),
            // Unreadable counts err towards "something was trimmed": dropping L1 is safe, missing a
            // gap is not.
            entries_added: field("entries-added").parse().unwrap_or(u64::MAX),
            length: field("length").parse().unwrap_or(0),
        }))
    }

    /// Whether the replay stream still holds the entry `id`.
    pub(crate) async fn stream_holds(&self, id: &str) -> Result<bool, Error> {
        let at: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys.stream())
            .arg(id)
            .arg(id)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(!at.ids.is_empty())
    }

    /// At most `count` entries of the replay stream from `from` (an `XRANGE` start: `-`, an id, or
    /// `(id` for after it) on, oldest first.
    pub(crate) async fn stream_range(
        &self,
        from: &str,
        count: usize,
    ) -> Result<Vec<StreamEntry>, Error> {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys.stream())
            .arg(from)
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|mut entry| StreamEntry {
                message: match entry.map.remove("m") {
                    Some(Value::BulkString(bytes)) => Some(bytes),
                    _ => None,
                },
                id: entry.id,
            })
            .collect())
    }
}

/// The name/value pairs of an `XINFO` reply: a flat array under RESP2, a map under RESP3. A name that
/// is not text is skipped with its value.
fn field_pairs(info: Value) -> Vec<(String, String)> {
    match info {
        Value::Array(items) => {
            let mut items = items.into_iter();
            let mut pairs = Vec::new();
            while let Some(name) = items.next() {
                let value = items.next().and_then(text).unwrap_or_default();
                if let Some(name) = text(name) {
                    pairs.push((name, value));
                }
            }
            pairs
        }
        Value::Map(items) => items
            .into_iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v).unwrap_or_default())))
            .collect(),
        _ => Vec::new(),
    }
}
