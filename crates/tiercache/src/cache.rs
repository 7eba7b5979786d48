//! The public facade: [`Cache`]; the read path it calls is in `read/`.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};
use tracing::field::Empty;
use tracing::Instrument;

use crate::error::Error;
use crate::fetched::{Fetched, Source};
use crate::l2::{l1_tags, ReadNeed};
use crate::loader::{BatchLoader, Loader};
use crate::metrics::CacheStats;
use crate::node::flights::{FlightKind, Joined, Landed};
use crate::node::outbox::Op;
use crate::node::Node;
use crate::options::{EntryOptions, IntoEntryOptions};
use crate::read::batch::{one_key, ColdKeys};
use crate::read::coalesce::{fetch_cold, follow};
use crate::read::through::L1Lookup;
use crate::spans;

/// A cache node: L1 in this process, L2 in Redis, kept coherent with every other node of its namespace.
///
/// Cloning is cheap and clones share the node. Two `Cache` values *built* separately are two independent
/// nodes, even in one process.
#[derive(Clone)]
pub struct Cache {
    pub(crate) handle: Arc<Handle>,
}

/// Owns the node's background tasks; they stop when the last `Cache` clone is dropped.
pub(crate) struct Handle {
    pub(crate) node: Arc<Node>,
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let waiting = self.node.l2.pending.len();
        if self.node.l2.pending.has_work() && !self.node.bus.outbox.is_closed() {
            tracing::warn!(
                namespace = %self.node.config.namespace,
                waiting,
                "a cache node was dropped with invalidations still queued for Redis; they are lost \
                 (call Cache::shutdown before dropping it to send them)"
            );
        }
        self.node
            .shut_down
            .store(true, std::sync::atomic::Ordering::Release);
        // What counted since the last publish must not be lost with the node.
        self.node.stats.publish();
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.node().config.namespace)
            .field("node_id", &self.node().id)
            .finish_non_exhaustive()
    }
}

impl Cache {
    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.handle.node
    }

    /// This node's operator methods: introspection (is it suspect, what does its L1 hold), metrics
    /// hand-over, and looking at and tidying its namespace in Redis (entries, leases, nodes).
    pub fn admin(&self) -> crate::admin::Admin<'_> {
        crate::admin::Admin::of(self.node())
    }

    /// The configuration this node runs with.
    pub fn config(&self) -> &crate::config::Config {
        &self.node().config
    }

    /// Returns the cached value for `key`, or runs `loader` once — for this node and, with locking, for
    /// the fleet — stores its result in both tiers and returns it.
    ///
    /// Concurrent calls for one key share one load and its result or error. A load overlapped by an
    /// invalidation of the key or one of its tags returns its value to its callers but is not stored
    /// (on a cluster, where tag versions are checked just before the store, it may be stored under
    /// the old tag version, which every read then finds stale).
    ///
    /// `opts` is `&EntryOptions`, or [`EntryOptions::lazy`] to build them only on a miss or a
    /// refresh. `E`, the loader's error, is inferred; a loader that never returns names it with
    /// `get_or_load::<T, _, _, E>`.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// let opts = tiercache::EntryOptions::new(Duration::from_secs(900)).with_tags(["donation"]);
    /// let total = cache
    ///     .get_or_load("total_donations:this_month", &opts, || async { Ok::<_, std::io::Error>(42_u64) })
    ///     .await?;
    /// assert_eq!(*total, 42);
    /// # Ok(()) }
    /// ```
    pub async fn get_or_load<'o, T, O, L, E>(
        &self,
        key: &str,
        opts: O,
        loader: L,
    ) -> Result<Arc<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        O: IntoEntryOptions<'o>,
        L: Loader<T, Error = E>,
    {
        self.fetch(key, opts, loader).await.map(|f| f.value)
    }

    /// [`Cache::get_or_load`] that also says which tier answered: this node's L1, Redis, this node's
    /// loader, or a stale value served by fail-safe. Callers that coalesced with another caller's read
    /// or load on this node report that caller's source. For dashboards and logs that show where a
    /// figure came from; the value and its sharing are exactly those of `get_or_load`.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// let opts = tiercache::EntryOptions::new(Duration::from_secs(60));
    /// let fetched = cache.fetch("answer", &opts, || async { Ok::<_, std::io::Error>(42_u64) }).await?;
    /// println!("{} from {}", fetched.value, fetched.source);
    /// # Ok(()) }
    /// ```
    pub async fn fetch<'o, T, O, L, E>(
        &self,
        key: &str,
        opts: O,
        loader: L,
    ) -> Result<Fetched<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        O: IntoEntryOptions<'o>,
        L: Loader<T, Error = E>,
    {
        let node = self.node();
        // Made before L1 is looked at, so a hit has its span too: while no subscriber takes DEBUG,
        // that costs two compares (BENCHMARKS.md, "Tracing spans on the L1 hit").
        let span = crate::spans::call_span!("tiercache.get_or_load", node.config.namespace);
        if let Err(e) = node.keys.validate(key) {
            return Err(spans::failed(&span, e));
        }
        let l1_stale = match node.l1_lookup::<T>(key) {
            L1Lookup::Hit(value, entry) => {
                if node.wants_refresh(&entry)
                    && !entry
                        .refresh_claimed
                        .swap(true, std::sync::atomic::Ordering::AcqRel)
                {
                    node.spawn_refresh::<T, L>(
                        key,
                        &opts.into_entry_options(),
                        loader,
                        entry.created_at_ms,
                        value.clone(),
                    );
                }
                span.record("outcome", "l1_hit");
                return Ok(Fetched::new(value, Source::L1));
            }
            L1Lookup::Suspect(value) => Some(value),
            L1Lookup::Miss => None,
        };
        // Inline, although the path past L1 makes this future 4.5 KiB: a box per cold read cost a
        // third of the throughput with 1,024 reads in flight (BENCHMARKS.md, L1 hit section).
        let opts = opts.into_entry_options();
        if let Err(e) = node.keys.validate_tags(opts.tags()) {
            return Err(spans::failed(&span, e));
        }
        fetch_cold(node, key, &opts, loader, l1_stale, None, &span).await
    }

    /// Many keys in one call, each with its own options, and one `loader` call for all the keys
    /// missing everywhere: the results come in the order asked, each key's on its own (one key's
    /// error does not fail the others).
    ///
    /// L1 answers what it holds in one pass. The rest are read from Redis together (one `MGET` on
    /// one server) and, where missing, leased together; `loader` then runs once with every key this
    /// node leased, while keys another node is loading (or another caller on this node) are waited
    /// for, not loaded. Per key, everything [`Cache::fetch`] guarantees holds: single flight with
    /// concurrent calls of either kind, fenced stores, tags, fail-safe with the key's soft and hard
    /// timeouts, refresh-ahead. A key asked twice is read once and answered twice.
    ///
    /// `loader` gets the keys to load and answers with `(key, value)` pairs (a `HashMap`, a `Vec`);
    /// a key it leaves out fails with [`Error::Loader`], and its error fails each key it was asked
    /// for. It is called again only for keys that needed loading after waiting on another node,
    /// and with one key to refresh an ageing one (see [`crate::BatchLoader`]).
    ///
    /// ```no_run
    /// # use std::{collections::HashMap, time::Duration};
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// let opts = tiercache::EntryOptions::new(Duration::from_secs(60));
    /// let views = cache
    ///     .fetch_many([("views:a", &opts), ("views:b", &opts)], |keys: Vec<String>| async move {
    ///         // One query for every key asked, e.g. `WHERE view IN (...)`.
    ///         let values: HashMap<String, u64> = keys.into_iter().map(|k| (k, 1)).collect();
    ///         Ok::<_, std::io::Error>(values)
    ///     })
    ///     .await;
    /// for view in views {
    ///     let view = view?;
    ///     println!("{} from {}", view.value, view.source);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn fetch_many<'o, T, I, K, O, B>(
        &self,
        requests: I,
        loader: B,
    ) -> impl Future<Output = Vec<Result<Fetched<T>, Error>>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        I: IntoIterator<Item = (K, O)>,
        K: AsRef<str>,
        O: IntoEntryOptions<'o>,
        B: BatchLoader<T>,
    {
        // The L1 pass runs here, before the future: a dashboard L1 answers whole costs no future
        // state beyond its answers, and the future never holds the requests' iterator (whose
        // closures would make it harder to send to a task).
        let node = self.node();
        let span = spans::debug_span!(
            "tiercache.fetch_many",
            namespace = %node.config.namespace,
            keys = Empty,
            cold = Empty,
        );
        let loader = Arc::new(loader);
        let requests = requests.into_iter();
        let mut answers: Vec<Option<Result<Fetched<T>, Error>>> =
            Vec::with_capacity(requests.size_hint().0);
        let mut cold = ColdKeys::default();
        for (key, opts) in requests {
            let key = key.as_ref();
            let answer = match node.keys.validate(key).map(|()| node.l1_lookup::<T>(key)) {
                Err(e) => Some(Err(e)),
                Ok(L1Lookup::Hit(value, entry)) => {
                    if node.wants_refresh(&entry)
                        && !entry
                            .refresh_claimed
                            .swap(true, std::sync::atomic::Ordering::AcqRel)
                    {
                        let one = one_key(loader.clone(), key.to_owned());
                        let opts = opts.into_entry_options();
                        node.spawn_refresh::<T, _>(
                            key,
                            &opts,
                            one,
                            entry.created_at_ms,
                            value.clone(),
                        );
                    }
                    Some(Ok(Fetched::new(value, Source::L1)))
                }
                Ok(L1Lookup::Suspect(value)) => {
                    cold.add(answers.len(), key, opts, Some(value));
                    None
                }
                Ok(L1Lookup::Miss) => {
                    cold.add(answers.len(), key, opts, None);
                    None
                }
            };
            answers.push(answer);
        }
        let node = (!cold.is_empty()).then(|| node.clone());
        if !span.is_disabled() {
            span.record("keys", answers.len());
            span.record("cold", cold.len());
        }
        let answered = async move {
            if let Some(node) = node {
                node.stats.batch_calls(1);
                for (asked, answer) in cold.fetch(&node, loader).await {
                    for i in asked {
                        answers[i] = Some(answer.clone());
                    }
                }
            }
            answers
                .into_iter()
                .map(|answer| {
                    // Every place was answered above, from L1 or by the cold keys' fetch.
                    answer
                        .unwrap_or_else(|| Err(Error::unavailable("a batch key was not answered")))
                })
                .collect()
        };
        answered.instrument(span)
    }

    /// Returns the cached value for `key` from L1 or L2, without loading. Values that are expired,
    /// corrupt or of another type are `None`.
    pub async fn get<T>(&self, key: &str) -> Result<Option<Arc<T>>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let node = self.node();
        let span = crate::spans::call_span!("tiercache.get", node.config.namespace);
        if let Err(e) = node.keys.validate(key) {
            return Err(spans::failed(&span, e));
        }
        if let L1Lookup::Hit(value, _) = node.l1_lookup::<T>(key) {
            span.record("outcome", "l1_hit");
            return Ok(Some(value));
        }
        let mut overtaken = false;
        loop {
            match node.l1.flights.join(FlightKind::Read, key) {
                Joined::Leader(guard, _) => {
                    // Inline: a read holds nothing that must outlive its caller.
                    let read = node
                        .read_through::<T>(key, &[], ReadNeed::Value, false, Some(guard.flight()))
                        .instrument(span.clone())
                        .await;
                    let fresh = read.as_ref().ok().and_then(|r| r.fresh.clone());
                    match read {
                        Ok(_) => guard.complete(
                            Ok(fresh.clone().map(|v| v as Arc<dyn Any + Send + Sync>)),
                            Source::L2,
                        ),
                        Err(e) => {
                            // Every waiter gets the same error, a Redis error's source included.
                            guard.complete(Err(e.clone()), Source::L2);
                            return Err(spans::failed(&span, e));
                        }
                    }
                    if fresh.is_none() {
                        node.stats.misses(1);
                    }
                    span.record("outcome", if fresh.is_some() { "l2_hit" } else { "miss" });
                    return Ok(fresh);
                }
                Joined::Follower(waiter) => {
                    node.stats.coalesced(1);
                    let Some(landed) = follow(node, &waiter, &mut overtaken).await else {
                        continue;
                    };
                    match landed {
                        // A read flight's followers never see `Loaded`; it is a value all the same.
                        Landed::Completed(Ok(Some(v))) | Landed::Loaded(v) => {
                            span.record("outcome", "coalesced");
                            return Ok(v.downcast::<T>().ok());
                        }
                        Landed::Completed(Ok(None)) => {
                            node.stats.misses(1);
                            span.record("outcome", "miss");
                            return Ok(None);
                        }
                        Landed::Completed(Err(e)) => return Err(spans::failed(&span, e)),
                        // The leading reader was cancelled: read again.
                        Landed::Abandoned => {}
                    }
                }
            }
        }
    }

    /// Stores `value` under `key` in both tiers, replacing what was there on every node, and fencing
    /// out loads of the key that are still running.
    ///
    /// When Redis cannot be reached the value is not written to L2; the key's invalidation is queued
    /// instead (so no node keeps serving the old value once Redis answers), this node keeps the new
    /// value in L1 for a few seconds, and the call returns [`Error::Pending`]. Should the timed-out
    /// command still reach Redis, past the moment its caller stopped waiting, it writes no value:
    /// the key is only invalidated there. That deadline errs early, so rarely a slow write is refused
    /// while its caller still waits: the call returns `Ok`, the key is invalidated on every node and
    /// the value is not cached (`tiercache_late_writes_refused_total`).
    pub async fn set<T>(&self, key: &str, value: T, opts: &EntryOptions) -> Result<(), Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let span = crate::spans::call_span!("tiercache.set", self.node().config.namespace);
        let set = self
            .set_in_span(key, value, opts)
            .instrument(span.clone())
            .await;
        spans::ended(&span, set, "stored")
    }

    /// [`Cache::set`], inside its span.
    async fn set_in_span<T>(&self, key: &str, value: T, opts: &EntryOptions) -> Result<(), Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let node = self.node();
        node.keys.validate(key)?;
        node.keys.validate_tags(opts.tags())?;
        let ttl = opts.ttl(&node.config);
        let (header, envelope, lifetime) = self.encode_entry(key, &value, opts)?;
        let encoded_len = envelope.len();
        let put = match node
            .guarded(node.l2.redis.prepare_put(opts.tags(), envelope, lifetime))
            .await
        {
            Ok(put) => put,
            Err(e) => return node.set_unreachable(key, value, ttl, e).await,
        };
        node.repaired(&put.repaired);
        let mut ops: Vec<Op> = put
            .created
            .into_iter()
            .map(|(t, v)| Op::AnnounceTag(t, v))
            .collect();
        let tags = l1_tags(opts.tags(), &put.versions);
        if node.l2.redis.conn.is_cluster() {
            // The entry's slot is not the bus's: write it first, then announce it.
            let entry_keys = node.keys.entry(key);
            let written = match node
                .guarded(node.l2.redis.put(&entry_keys, &put.write))
                .await
            {
                Ok(written) => written,
                Err(e) => return node.set_unreachable(key, value, ttl, e).await,
            };
            if !written {
                node.stats.late_writes_refused(1);
            }
            ops.push(Op::AnnounceKey(key.to_owned()));
            let announced = node.bus.outbox.send(ops).await;
            // Announced (or queued for replay) before L1 takes the value, so the announcement's
            // own removal of the key does not undo the fill.
            if let Some(tags) = tags.filter(|_| written) {
                node.fill_l1(key, Arc::new(value), encoded_len, &header, tags, None);
            }
            return announced;
        }
        // One server: the write travels in the bus's batch, one script call that writes the entry,
        // appends the change to the stream and publishes it, so no node hears of it before Redis
        // has it. This node's L1 takes the value where the batch's changes are applied here, right
        // after the batch's own removal of the key and before anything the batch or a later one
        // does after it (an invalidation of the key made meanwhile must win here as in Redis).
        // Queued for replay instead, the write becomes the key's invalidation.
        let value = Arc::new(value);
        let fill = tags.map(|tags| node.local_fill(key, value.clone(), encoded_len, header, tags));
        ops.push(Op::Put(key.to_owned(), Arc::new(put.write), fill));
        match node.bus.outbox.send(ops).await {
            Err(pending) if pending.is_pending() => {
                node.fill_degraded_for(key, &value, ttl);
                Err(pending)
            }
            other => other,
        }
    }

    /// Invalidates `key` in L2 and in every node's L1. When this returns `Ok`, L2 no longer has the
    /// value and loads of it that were running will not store their result.
    ///
    /// When Redis cannot be reached, the invalidation holds on this node at once, is queued and
    /// replayed in order when Redis answers, and the call returns [`Error::Pending`] (see
    /// [`Error::is_pending`]).
    pub async fn invalidate(&self, key: &str) -> Result<(), Error> {
        let node = self.node();
        let span = crate::spans::call_span!("tiercache.invalidate", self.node().config.namespace);
        if let Err(e) = node.keys.validate(key) {
            return Err(spans::failed(&span, e));
        }
        let sent = node
            .bus
            .outbox
            .send(vec![Op::InvalidateKey(key.to_owned())])
            .instrument(span.clone())
            .await;
        spans::ended(&span, sent, "sent")
    }

    /// Invalidates every entry carrying any of `tags`, on every node. Like [`Cache::invalidate`], it
    /// returns [`Error::Pending`] when Redis cannot be reached and the invalidation is queued.
    pub async fn invalidate_tags<I, S>(&self, tags: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let tags: Vec<String> = tags.into_iter().map(|t| t.as_ref().to_owned()).collect();
        let span = crate::spans::call_span!(
            "tiercache.invalidate_tags",
            self.node().config.namespace,
            tags = tags.len()
        );
        if tags.is_empty() {
            span.record("outcome", "sent");
            return Ok(());
        }
        for tag in &tags {
            if let Err(e) = self.node().keys.validate_tag(tag) {
                return Err(spans::failed(&span, e));
            }
        }
        let ops: Vec<Op> = tags.into_iter().map(Op::InvalidateTag).collect();
        let sent = self
            .node()
            .bus
            .outbox
            .send(ops)
            .instrument(span.clone())
            .await;
        spans::ended(&span, sent, "sent")
    }

    /// Acquires a fleet-wide named lock (a Redis lease with a random token) and its fencing token.
    ///
    /// Mutual exclusion holds while Redis keeps the lease and it has not run out; a holder that
    /// must not overlap the next one checks [`crate::lock::LockGuard::extend`], and lets the protected
    /// resource refuse stale holders by their [`crate::lock::LockGuard::fencing_token`].
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// let opts = tiercache::LockOptions::from_config(cache.config());
    /// let guard = cache.lock("nightly-rollup", opts).await?;
    /// // ... work only one node may do ...
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn lock(
        &self,
        name: &str,
        opts: crate::lock::LockOptions,
    ) -> Result<crate::lock::LockGuard, Error> {
        let node = self.node();
        let span = crate::spans::call_span!("tiercache.lock", self.node().config.namespace);
        if name.is_empty() {
            return Err(spans::failed(
                &span,
                Error::invalid_key("the lock name is empty"),
            ));
        }
        let acquired = node
            .guarded(crate::lock::acquire(node, name, opts))
            .instrument(span.clone())
            .await;
        spans::ended(&span, acquired, "acquired")
    }

    /// Counters of this node's decisions since it was built.
    pub fn stats(&self) -> CacheStats {
        self.node().stats.snapshot()
    }

    /// Stops taking new work and sends what is queued: invalidations and writes already handed to
    /// the node, and those waiting for Redis to come back, for at most
    /// [`crate::builder::CacheBuilder::shutdown_timeout`] (5 s by default). Call it before a process exits:
    /// dropping a node loses what it still queues (and logs a warning saying so).
    ///
    /// From the call on, `invalidate`, `invalidate_tags`, `set` and their kin on any clone of this
    /// node fail with [`Error::Unavailable`]; reads keep being answered until the node is dropped.
    /// Returns what was sent meanwhile, or [`Error::ShutdownIncomplete`] with how many operations
    /// could not be.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) {
    /// match cache.shutdown().await {
    ///     Ok(done) => tracing::info!(sent = done.sent, "cache node shut down"),
    ///     Err(e) => tracing::error!("cache node shut down with work lost: {e}"),
    /// }
    /// # }
    /// ```
    pub async fn shutdown(&self) -> Result<ShutdownReport, Error> {
        let span = crate::spans::call_span!("tiercache.shutdown", self.node().config.namespace);
        let done = self.shutdown_in_span().instrument(span.clone()).await;
        spans::ended(&span, done, "sent")
    }

    /// [`Cache::shutdown`], inside its span.
    async fn shutdown_in_span(&self) -> Result<ShutdownReport, Error> {
        let node = self.node();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + node.config.shutdown_timeout;
        let sent_before = node.stats.snapshot().invalidations_sent;
        node.bus.outbox.close();
        // What callers handed over before the close: sent, or moved to the replay queue.
        let _ = tokio::time::timeout_at(deadline, node.bus.outbox.drained()).await;
        // The replay task retries with backoff until the queue is empty; wait for it, polling, since
        // a shutdown is rare and the queue has no waker of its own.
        while node.l2.pending.has_work() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let sent = node
            .stats
            .snapshot()
            .invalidations_sent
            .saturating_sub(sent_before);
        node.stats.publish();
        if node.l2.pending.has_work() {
            let unsent = node.l2.pending.len();
            let namespace_clear = node.l2.pending.overflowed();
            tracing::error!(namespace = %node.config.namespace, unsent, namespace_clear, "cache node shut down with invalidations not sent");
            return Err(Error::ShutdownIncomplete {
                unsent,
                namespace_clear,
                after: started.elapsed(),
            });
        }
        tracing::info!(namespace = %node.config.namespace, sent, "cache node shut down");
        Ok(ShutdownReport {
            sent: usize::try_from(sent).unwrap_or(usize::MAX),
        })
    }
}

/// What [`Cache::shutdown`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Invalidation events this node applied to Redis and published during the shutdown (queued
    /// ones replayed, and those handed over just before it).
    pub sent: usize,
}

impl Node {
    /// A `set` whose write could not reach Redis: queue the key's invalidation, keep the value in
    /// this node's L1 briefly, and say so. When the invalidation itself goes through (Redis answered
    /// again meanwhile), the write's own error is returned.
    async fn set_unreachable<T>(
        self: &Arc<Self>,
        key: &str,
        value: T,
        ttl: Duration,
        write_error: Error,
    ) -> Result<(), Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        match self
            .bus
            .outbox
            .send(vec![Op::InvalidateKey(key.to_owned())])
            .await
        {
            Err(pending) if pending.is_pending() => {
                self.fill_degraded_for(key, &Arc::new(value), ttl);
                Err(pending)
            }
            _ => Err(write_error),
        }
    }
}
