//! [`Cache::invalidate_tags_and_set`]: a tag invalidation and the writes that replace the entries
//! it empties, landing together.

use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};
use tracing::Instrument;

use crate::cache::Cache;
use crate::codec::{self, Header};
use crate::error::Error;
use crate::l2::{l1_tags, nonce};
use crate::node::outbox::Op;
use crate::options::EntryOptions;
use crate::wall_clock::now_ms;

/// An entry of [`Cache::invalidate_tags_and_set`] once encoded (its envelope goes to the write).
struct Encoded<T> {
    key: String,
    value: T,
    opts: EntryOptions,
    header: Header,
    /// The envelope's length, for L1's weigher.
    len: usize,
}

impl Cache {
    /// Invalidates every entry carrying any of `tags`, on every node, and stores `entries` in the
    /// same step. Returns how many of `entries` were written.
    ///
    /// A refresh that calls [`Cache::invalidate_tags`] and then [`Cache::set`] leaves the entries it
    /// refreshes empty for the round trips in between, and every reader that comes then loads them
    /// again. Here, on one Redis server, the new tag versions are chosen first, the entries are
    /// written recording them, and the invalidation and the writes travel in one script call and
    /// one bus message: no reader on any node finds the tags invalidated and the entries not yet
    /// there. Each entry is written as by [`Cache::set`] (fencing loads of its key still running)
    /// and may carry any of `tags`.
    ///
    /// An entry that cannot be prepared (it does not encode, its tags' versions cannot be read) is
    /// left out, and its key is only invalidated; the invalidation itself is never left out. On a
    /// cluster, where the entries live in other slots than the tags' versions, this is
    /// [`Cache::invalidate_tags`] and then one [`Cache::set`] per entry. When Redis cannot be reached
    /// the invalidation is queued for replay, the entries' keys with it, and the call returns
    /// [`Error::Pending`].
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// use std::time::Duration;
    /// use tiercache::EntryOptions;
    /// let opts = EntryOptions::new(Duration::from_secs(60)).with_tags(["campaign:3"]);
    /// let written = cache
    ///     .invalidate_tags_and_set(&["campaign:3".to_owned()], vec![("totals:3".to_owned(), 1_234_u64, opts)])
    ///     .await?;
    /// assert_eq!(written, 1);
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_tags_and_set<T>(
        &self,
        tags: &[String],
        entries: Vec<(String, T, EntryOptions)>,
    ) -> Result<usize, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let span = crate::spans::call_span!(
            "tiercache.invalidate_tags_and_set",
            self.node().config.namespace,
            tags = tags.len(),
            entries = entries.len()
        );
        let written = self
            .replace_in_span(tags, entries)
            .instrument(span.clone())
            .await;
        crate::spans::ended(&span, written, "sent")
    }

    /// [`Cache::invalidate_tags_and_set`], inside its span.
    async fn replace_in_span<T>(
        &self,
        tags: &[String],
        entries: Vec<(String, T, EntryOptions)>,
    ) -> Result<usize, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let node = self.node();
        for tag in tags {
            node.keys.validate_tag(tag)?;
        }
        for (key, _, opts) in &entries {
            node.keys.validate(key)?;
            node.keys.validate_tags(opts.tags())?;
        }
        if node.l2.redis.conn.is_cluster() {
            self.invalidate_tags(tags).await?;
            let mut written = 0;
            for (key, value, opts) in entries {
                if self.set(&key, value, &opts).await.is_ok() {
                    written += 1;
                }
            }
            return Ok(written);
        }
        let versions: Vec<(String, u64)> = tags.iter().map(|t| (t.clone(), nonce())).collect();
        let mut ops: Vec<Op> = Vec::with_capacity(tags.len() + 2 * entries.len());
        let mut puts = Vec::with_capacity(entries.len());
        let mut encoded = Vec::with_capacity(entries.len());
        let mut envelopes = Vec::with_capacity(entries.len());
        for (key, value, opts) in entries {
            match self.encode_entry(&key, &value, &opts) {
                Ok((header, envelope, lifetime)) => {
                    let len = envelope.len();
                    envelopes.push((envelope, lifetime));
                    encoded.push(Encoded {
                        key,
                        value,
                        opts,
                        header,
                        len,
                    });
                }
                Err(e) => {
                    tracing::debug!(key, error = %e, "a refreshed entry is only invalidated");
                    puts.push(Op::InvalidateKey(key));
                }
            }
        }
        // One read of every entry's other tags' versions, not one per entry.
        let writes = encoded
            .iter()
            .zip(envelopes)
            .map(|(e, (envelope, lifetime))| (e.opts.tags(), envelope, lifetime))
            .collect();
        match node
            .guarded(node.l2.redis.prepare_puts(writes, &versions))
            .await
        {
            Ok(prepared) => {
                for (e, put) in encoded.into_iter().zip(prepared) {
                    let put = match put {
                        Ok(put) => put,
                        Err(err) => {
                            tracing::debug!(key = e.key, error = %err, "a refreshed entry is only invalidated");
                            puts.push(Op::InvalidateKey(e.key));
                            continue;
                        }
                    };
                    node.repaired(&put.repaired);
                    ops.extend(
                        put.created
                            .iter()
                            .map(|(t, v)| Op::AnnounceTag(t.clone(), *v)),
                    );
                    let fill = l1_tags(e.opts.tags(), &put.versions)
                        .map(|l1| node.local_fill(&e.key, Arc::new(e.value), e.len, e.header, l1));
                    puts.push(Op::Put(e.key, Arc::new(put.write), fill));
                }
            }
            Err(err) => {
                // The invalidation still goes out; the entries' keys are only invalidated.
                tracing::debug!(error = %err, "refreshed entries are only invalidated");
                puts.extend(encoded.into_iter().map(|e| Op::InvalidateKey(e.key)));
            }
        }
        ops.extend(
            versions
                .into_iter()
                .map(|(tag, version)| Op::InvalidateTagTo(tag, version)),
        );
        let written = puts.iter().filter(|op| matches!(op, Op::Put(..))).count();
        // After the tags: each node drops the tags' entries, then learns of each key's new value.
        ops.extend(puts);
        node.bus.outbox.send(ops).await?;
        Ok(written)
    }

    /// An entry's header, envelope and lifetime in Redis (its TTL plus the fail-safe grace), as
    /// [`Cache::set`] writes it.
    pub(crate) fn encode_entry<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        opts: &EntryOptions,
    ) -> Result<(Header, Vec<u8>, std::time::Duration), Error> {
        let node = self.node();
        let ttl = opts.ttl(&node.config);
        let now = now_ms();
        let header = Header {
            created_at_ms: now,
            expires_at_ms: now + ttl.as_millis() as u64,
            load_micros: u32::try_from(opts.load_time().as_micros()).unwrap_or(u32::MAX),
        };
        let envelope = codec::encode(
            value,
            &header,
            node.config.max_value_bytes as usize,
            node.config.value_codec,
        )
        .map_err(|reason| {
            node.stats.encode_errors(1);
            Error::Encode {
                key: key.to_owned(),
                reason,
            }
        })?;
        Ok((header, envelope, ttl + node.config.fail_safe_max))
    }
}
