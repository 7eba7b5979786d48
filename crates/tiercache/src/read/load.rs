//! The miss path: after L1 and the node's single-flight, make sure one node in the fleet loads the key.
//!
//! ```text
//! L2 read (value + fence) ── fresh ──► done
//!   │ miss
//!   ▼
//! lease (SET NX PX) ── taken by another node ──► wait for its "filled" notice (poll L2 as fallback):
//!   │ ours                                        the value it carries, or a read of L2; take the
//!   │                                             lease over if its holder vanished
//!   ▼
//! loader (lease extended while it runs; soft/hard timeouts) ──► fenced store ──► fill L1 ──► "filled"
//!   │ error / timeout
//!   ▼
//! fail-safe: serve the stale value and throttle the next attempt, or return the error
//! ```

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde::{de::DeserializeOwned, Serialize};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::backoff::jitter;
use crate::codec::{self, Header};
use crate::error::Error;
use crate::fetched::{Fetched, Source};
use crate::l2::{l1_tags, Fence, L1Tags, LeaseClaim, LoadToStore, ReadNeed};
use crate::loader::Loader;
use crate::lock::try_acquire;
use crate::message::{FillNotice, FilledEntry};
use crate::node::flights::Flight;
use crate::node::Node;
use crate::options::EntryOptions;
use crate::read::slot::BatchSlot;
use crate::read::through::ReadOutcome;
use crate::wall_clock::now_ms;

/// How long a value served by fail-safe is reused before the loader is tried again.
const FAIL_SAFE_THROTTLE: Duration = Duration::from_secs(10);
/// Fallback polling of L2 while another node loads: first and longest interval.
const FIRST_POLL: Duration = Duration::from_millis(20);
const MAX_POLL: Duration = Duration::from_millis(250);

type Loaded<T> = Result<Result<T, Box<dyn std::error::Error + Send + Sync>>, Box<dyn Any + Send>>;

/// A held load lease.
pub(crate) struct Lease {
    pub(crate) key: String,
    pub(crate) token: String,
}

/// One load of one key, from the read of L2 to the store: the key, the options its value is
/// stored with, and the flight that shares its result on this node (none for a load no flight
/// carries: a fill of L1 then has no flight to undo it when an invalidation lands meanwhile).
#[derive(Clone, Copy)]
pub(crate) struct LoadContext<'a> {
    pub(crate) key: &'a str,
    pub(crate) opts: &'a EntryOptions,
    pub(crate) flight: Option<&'a Flight>,
    /// The key's place in a batch call, which learns here when the key waits instead of loading.
    pub(crate) batch: Option<&'a BatchSlot>,
    /// The call's read deadline, for a load a caller waits on: taking the lease stops waiting for
    /// Redis there, as the read does, and the call loads without it. `None`: nobody waits.
    pub(crate) deadline: Option<tokio::time::Instant>,
}

/// How the loader runs once it must: under `lease` when this node holds it (none when Redis failed
/// or the wait ran out), its value stored only if `fence` still holds (none: nothing to fence with,
/// store nowhere but L1 briefly), with `stale` to fall back on if it fails.
pub(crate) struct LoadPlan<T> {
    pub(crate) lease: Option<Lease>,
    pub(crate) fence: Option<Fence>,
    pub(crate) stale: Option<Arc<T>>,
}

/// A loader running in its own task: the task, when it started, and the task extending its lease.
struct RunningLoad<T> {
    task: JoinHandle<Loaded<T>>,
    started: Instant,
    extender: Option<JoinHandle<()>>,
}

/// What a stored value does to this node's L1.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterStore {
    /// Fill it; the load's flight, when one carries it, undoes the fill if an invalidation lands
    /// meanwhile.
    FillL1,
    /// Leave it alone: no flight guards a fill any more, so the next read takes the value from L2.
    LeaveL1,
}

/// How waiting for another node's load ended.
enum Waited<T> {
    Filled(Arc<T>),
    /// Load now, as the plan says.
    Load(LoadPlan<T>),
}

impl<T> Waited<T> {
    /// Load now, under the lease at `key` this node took with `token`.
    fn under_lease(key: String, token: String, fence: Fence, stale: Option<Arc<T>>) -> Self {
        Waited::Load(LoadPlan {
            lease: Some(Lease { key, token }),
            fence: Some(fence),
            stale,
        })
    }
}

impl Node {
    /// Reads L2, and on a miss makes sure the key gets loaded once for the fleet.
    pub(crate) async fn load<T, L>(
        self: &Arc<Self>,
        ctx: LoadContext<'_>,
        loader: L,
        l1_stale: Option<Arc<T>>,
    ) -> Result<Fetched<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        L: Loader<T>,
    {
        let (fills, read) = self.read_for_load::<T>(ctx).await;
        self.load_after_read(ctx, loader, l1_stale, fills, read)
            .await
    }

    /// The read a load starts with: the value, or the fence and (when free) the key's lease. The
    /// subscription to fills comes first, so a fill between this read and a wait is not missed.
    pub(crate) async fn read_for_load<T>(
        self: &Arc<Self>,
        ctx: LoadContext<'_>,
    ) -> (
        tokio::sync::broadcast::Receiver<Arc<FillNotice>>,
        Result<ReadOutcome<T>, Error>,
    )
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let fills = self.fills.subscribe();
        let read = self
            .read_through::<T>(
                ctx.key,
                ctx.opts.tags(),
                ReadNeed::ValueOrFence,
                true,
                ctx.flight,
            )
            .await;
        (fills, read)
    }

    /// The miss path once L2 has been read (by the caller, inline, before any task was spawned).
    pub(crate) async fn load_after_read<T, L>(
        self: &Arc<Self>,
        ctx: LoadContext<'_>,
        loader: L,
        l1_stale: Option<Arc<T>>,
        fills: tokio::sync::broadcast::Receiver<Arc<FillNotice>>,
        read: Result<ReadOutcome<T>, Error>,
    ) -> Result<Fetched<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        L: Loader<T>,
    {
        let read = read.unwrap_or_default();
        if let Some(value) = read.fresh {
            return Ok(Fetched::new(value, Source::L2));
        }
        self.stats.misses(1);
        let stale = read.stale.or(l1_stale);
        let plan = match read.fence {
            Some(fence) if self.config.locking_enabled => {
                match self
                    .lease_or_wait::<T>(ctx, fence, read.lease, fills, stale)
                    .await
                {
                    Waited::Filled(value) => return Ok(Fetched::new(value, Source::L2)),
                    Waited::Load(plan) => plan,
                }
            }
            fence => LoadPlan {
                lease: None,
                fence,
                stale,
            },
        };
        self.run_loader(ctx, loader, plan).await
    }

    /// Takes the key's lease (unless the read already did, `claimed`), or waits for the node holding
    /// it to fill the key.
    async fn lease_or_wait<T>(
        self: &Arc<Self>,
        ctx: LoadContext<'_>,
        fence: Fence,
        claimed: LeaseClaim,
        fills: tokio::sync::broadcast::Receiver<Arc<FillNotice>>,
        stale: Option<Arc<T>>,
    ) -> Waited<T>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let LoadContext {
            key, flight, batch, ..
        } = ctx;
        let lease_key = self.keys.entry(key).lease();
        match self.lease_until(claimed, &lease_key, ctx.deadline).await {
            Ok(Some(token)) => return Waited::under_lease(lease_key, token, fence, stale),
            Ok(None) => {}
            Err(_) => return self.lease_failed(stale),
        }
        self.stats.fleet_waits(1);
        self.stats.lock_contended(1);
        if let Some(flight) = flight {
            flight.mark_loading();
        }
        if let Some(batch) = batch {
            batch.settle();
        }
        let span = crate::spans::debug_span!(
            "tiercache.lease_wait",
            namespace = %self.config.namespace,
            outcome = tracing::field::Empty,
        );
        let waited = self
            .wait_for_holder(ctx, lease_key, fence, fills, stale)
            .instrument(span.clone())
            .await;
        if !span.is_disabled() {
            let outcome = match &waited {
                Waited::Filled(_) => "filled",
                Waited::Load(plan) if plan.lease.is_some() => "lease_taken",
                Waited::Load(plan) if plan.fence.is_some() => "gave_up",
                Waited::Load(_) => "redis_error",
            };
            span.record("outcome", outcome);
        }
        waited
    }

    /// Waits for the node holding the lease at `lease_key` to fill the key, reading L2 now and then
    /// in case the notice is missed, and takes the lease over when its holder let it go.
    async fn wait_for_holder<T>(
        self: &Arc<Self>,
        ctx: LoadContext<'_>,
        lease_key: String,
        mut fence: Fence,
        mut fills: tokio::sync::broadcast::Receiver<Arc<FillNotice>>,
        mut stale: Option<Arc<T>>,
    ) -> Waited<T>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let LoadContext {
            key, opts, flight, ..
        } = ctx;
        let lease_time = self.config.lock_timeout;
        // Never wait forever: past two leases something is wrong with Redis or the holder; load ourselves.
        let give_up = tokio::time::Instant::now() + lease_time * 2;
        let mut poll = FIRST_POLL;
        loop {
            let wake = tokio::time::sleep(jitter(poll));
            let notice = tokio::select! {
                () = wake => None,
                notice = wait_for_fill(&mut fills, key) => notice,
            };
            if let Some(value) = notice
                .as_ref()
                .and_then(|n| n.entry.as_ref())
                .and_then(|entry| self.filled_value::<T>(key, entry, &fence, flight))
            {
                return Waited::Filled(value);
            }
            // The read takes the lease when it finds no entry, in the same script: a read that found
            // nothing followed by a separate take would take the lease the holder's store had just
            // released, and load the key a second time.
            let claim = match self
                .read_through::<T>(key, opts.tags(), ReadNeed::ValueOrFence, true, flight)
                .await
            {
                Ok(r) => {
                    if let Some(value) = r.fresh {
                        return Waited::Filled(value);
                    }
                    if let Some(f) = r.fence {
                        fence = f;
                    }
                    stale = r.stale.or(stale);
                    r.lease
                }
                Err(_) => return self.lease_failed(stale),
            };
            match self.lease_from(claim, &lease_key).await {
                Ok(Some(token)) => {
                    self.stats.lease_takeovers(1);
                    return Waited::under_lease(lease_key, token, fence, stale);
                }
                Ok(None) => {}
                Err(_) => return self.lease_failed(stale),
            }
            if tokio::time::Instant::now() >= give_up {
                self.stats.lock_failed(1);
                return Waited::Load(LoadPlan {
                    lease: None,
                    fence: Some(fence),
                    stale,
                });
            }
            poll = (poll * 2).min(MAX_POLL);
        }
    }

    /// The value a filled notice carried, when it passes the checks a hit read of Redis passes: this
    /// node's layout, unexpired, every recorded tag version one this node vouches for, and of type
    /// `T`; and when its load was fenced with the generation this waiter last read, so that no
    /// invalidation of the key came between them (its message may not have reached this node yet,
    /// and never does when this node made it). It then fills L1 as a read of Redis would. `None`
    /// sends the waiter to read Redis.
    fn filled_value<T>(
        &self,
        key: &str,
        entry: &FilledEntry,
        fence: &Fence,
        flight: Option<&Flight>,
    ) -> Option<Arc<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        if entry.generation != fence.generation {
            return None;
        }
        let format = codec::format_of(self.keys.layout());
        if entry.value.get(2) != Some(&format) {
            return None;
        }
        let (header, payload) =
            codec::decode_header(&entry.value, self.config.max_value_bytes as usize).ok()?;
        if header.expires_at_ms <= now_ms() {
            return None;
        }
        let vouched = |tag: &str, version: u64| self.l1.coherence.vouches(tag, version);
        let tags = self
            .l2
            .redis
            .vouched_tags(entry.recorded.as_deref(), &entry.value, &vouched)?;
        let value = Arc::new(codec::decode_payload::<T>(payload).ok()?);
        self.stats.fill_notice_hits(1);
        self.fill_l1(key, value.clone(), entry.value.len(), &header, tags, flight);
        Some(value)
    }

    /// The lease token after a read that was asked to take the lease: the one it took, `None` when
    /// another holder has it, or, when the read did not decide (an expired entry, kept as stale if
    /// the load fails; one it found unusable and deleted; a read that was not asked), the outcome of
    /// taking it in a call of its own.
    async fn lease_from(
        self: &Arc<Self>,
        claim: LeaseClaim,
        lease_key: &str,
    ) -> Result<Option<String>, Error> {
        match claim {
            LeaseClaim::Taken(held) => {
                // try_acquire counts its own; a lease the read took is counted here.
                self.stats.lock_acquired(1);
                Ok(Some(held.into_token()))
            }
            LeaseClaim::HeldElsewhere => Ok(None),
            LeaseClaim::NotTried => {
                self.guarded(try_acquire(self, lease_key, self.config.lock_timeout))
                    .await
            }
        }
    }

    /// [`Self::lease_from`], but waiting for Redis no later than `deadline`. A key of a batch call
    /// holds the whole call's gathered load until it knows whether it loads, so an unbounded lease
    /// round trip here would hold every other key of the call past its own read deadline.
    async fn lease_until(
        self: &Arc<Self>,
        claim: LeaseClaim,
        lease_key: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<String>, Error> {
        let (LeaseClaim::NotTried, Some(deadline)) = (&claim, deadline) else {
            return self.lease_from(claim, lease_key).await;
        };
        let (node, key) = (self.clone(), lease_key.to_owned());
        // Boxed so that, past the deadline, the attempt can go on in a task of its own; only a
        // load's first lease attempt pays for it, never a hit.
        let mut acquire = Box::pin(async move {
            let token = node.lease_from(LeaseClaim::NotTried, &key).await;
            (node, key, token)
        });
        if let Ok((_, _, token)) = tokio::time::timeout_at(deadline, &mut acquire).await {
            return token;
        }
        self.stats.read_deadline_hits(1);
        // The SET may still land: the lease it takes must be let go at once, or the fleet waits a
        // whole lease for a load that runs without it.
        tokio::spawn(async move {
            if let (node, key, Ok(Some(token))) = acquire.await {
                node.release_lease(Lease { key, token });
            }
        });
        Err(Error::unavailable(
            "the read deadline passed before Redis answered the lease",
        ))
    }

    /// Redis failed while taking or waiting for a lease: a lock failure; load without the lease.
    fn lease_failed<T>(&self, stale: Option<Arc<T>>) -> Waited<T> {
        self.stats.lock_failed(1);
        Waited::Load(LoadPlan {
            lease: None,
            fence: None,
            stale,
        })
    }

    /// Runs the loader with timeouts and fail-safe, stores the result, and releases the lease.
    pub(crate) async fn run_loader<T, L>(
        self: &Arc<Self>,
        ctx: LoadContext<'_>,
        loader: L,
        plan: LoadPlan<T>,
    ) -> Result<Fetched<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        L: Loader<T>,
    {
        let (key, opts, flight) = (ctx.key, ctx.opts, ctx.flight);
        let LoadPlan {
            lease,
            fence,
            stale,
        } = plan;
        self.stats.loads(1);
        if let Some(flight) = flight {
            flight.mark_loading();
        }
        let started = Instant::now();
        let span = crate::spans::debug_span!(
            "tiercache.loader",
            namespace = %self.config.namespace,
            outcome = tracing::field::Empty,
        );
        // The error is boxed inside the task: the loader's error need not be `Send`, so it must not
        // cross an await. The span goes with it, so what the loader traces shows under it.
        let mut task: JoinHandle<Loaded<T>> = tokio::spawn(
            AssertUnwindSafe(async move { loader.load().await.map_err(Into::into) })
                .catch_unwind()
                .instrument(span.clone()),
        );
        let extender = lease.as_ref().map(|l| self.spawn_lease_extender(l));
        let soft = opts
            .soft_timeout()
            .filter(|_| stale.is_some() && opts.fail_safe());
        let limit = soft.into_iter().chain(opts.hard_timeout()).min();
        let finished = match limit {
            Some(limit) => tokio::time::timeout(limit, &mut task).await.ok(),
            None => Some((&mut task).await),
        };
        let Some(joined) = finished else {
            // Too slow: let it finish in the background and store its result; answer now. The span
            // lasts as long as the loader, in its task.
            span.record("outcome", "timeout");
            let running = RunningLoad {
                task,
                started,
                extender,
            };
            self.finish_in_background(ctx, running, lease, fence);
            if let Some(stale) = stale.filter(|_| opts.fail_safe()) {
                self.stats.stale_served(1);
                return Ok(Fetched::new(stale, Source::Stale));
            }
            self.stats.load_errors(1);
            return Err(Error::LoaderTimeout {
                key: key.to_owned(),
                after: started.elapsed(),
            });
        };
        if let Some(handle) = extender {
            handle.abort();
        }
        let load_time = started.elapsed();
        self.stats.load_time(load_time);
        let outcome = loaded_value(key, joined);
        span.record(
            "outcome",
            match &outcome {
                Ok(_) => "ok",
                Err(Error::LoaderPanicked { .. }) => "panicked",
                Err(_) => "error",
            },
        );
        // Ends the loader's span here: the store has a span of its own.
        drop(span);
        let mut lease = lease;
        let result = match outcome {
            Ok(value) => {
                let value = Arc::new(value);
                if let Some(flight) = flight {
                    flight.hand_to_leader(value.clone(), load_time);
                }
                match &fence {
                    Some(fence) => {
                        let then = AfterStore::FillL1;
                        self.store(ctx, &value, fence, load_time, lease.take(), then)
                            .await;
                    }
                    None => self.fill_degraded(key, opts, &value, flight),
                }
                Ok(Fetched::new(value, Source::Loaded))
            }
            Err(e) => {
                self.stats.load_errors(1);
                match stale.filter(|_| opts.fail_safe()) {
                    Some(stale) => {
                        self.stats.stale_served(1);
                        tracing::warn!(namespace = %self.config.namespace, key, error = %e, "loader failed; serving the stale value");
                        self.throttle_with_stale(key, &stale, flight);
                        Ok(Fetched::new(stale, Source::Stale))
                    }
                    None => Err(e),
                }
            }
        };
        if let Some(lease) = lease {
            self.release_lease(lease);
        }
        result
    }

    /// Lets a load that outlived its caller's patience finish in a task of its own, which stores
    /// its value (fenced by `fence`) and releases `lease`.
    fn finish_in_background<T>(
        self: &Arc<Self>,
        ctx: LoadContext<'_>,
        running: RunningLoad<T>,
        lease: Option<Lease>,
        fence: Option<Fence>,
    ) where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let (node, key, opts) = (self.clone(), ctx.key.to_owned(), ctx.opts.clone());
        let finish = async move {
            let joined = running.task.await;
            if let Some(handle) = running.extender {
                handle.abort();
            }
            let load_time = running.started.elapsed();
            node.stats.load_time(load_time);
            match loaded_value(&key, joined) {
                Ok(value) => {
                    if let Some(fence) = fence {
                        // No flight guards this fill any more, so leave L1 alone: the next read takes L2.
                        let value = Arc::new(value);
                        let ctx = LoadContext {
                            key: &key,
                            opts: &opts,
                            flight: None,
                            batch: None,
                            deadline: None,
                        };
                        let then = AfterStore::LeaveL1;
                        node.store(ctx, &value, &fence, load_time, lease, then)
                            .await;
                        return;
                    }
                }
                Err(e) => {
                    node.stats.load_errors(1);
                    tracing::warn!(namespace = %node.config.namespace, key, error = %e, "background load failed");
                }
            }
            if let Some(lease) = lease {
                node.release_lease(lease);
            }
        };
        // The store that follows shows under the call that started the load.
        tokio::spawn(finish.instrument(tracing::Span::current()));
    }

    fn spawn_lease_extender(self: &Arc<Self>, lease: &Lease) -> JoinHandle<()> {
        let (node, key, token) = (Arc::downgrade(self), lease.key.clone(), lease.token.clone());
        let lease_time = self.config.lock_timeout;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease_time / 3).await;
                let Some(node) = node.upgrade() else { return };
                if node.shut_down.load(std::sync::atomic::Ordering::Acquire) {
                    return;
                }
                match crate::lock::extend(&node, &key, &token, lease_time).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::debug!(error = %e, "lease extension failed"),
                }
            }
        })
    }

    /// Releases a load's lease in the background: no caller waits for it, so a Redis that stopped
    /// answering after a failed store costs the caller one response timeout, not two (an
    /// unreleased lease only makes other nodes wait until it expires).
    pub(crate) fn release_lease(self: &Arc<Self>, lease: Lease) {
        let node = self.clone();
        tokio::spawn(async move {
            if let Err(e) = node
                .guarded(crate::lock::release(&node, &lease.key, &lease.token))
                .await
            {
                tracing::debug!(error = %e, "lease release failed; it will expire");
            }
        });
    }

    /// Encodes and stores a loaded value if its fence holds; once stored, fills L1 as `then` says.
    /// Ends the load: its lease, if it held one, is released (by the store script when it runs).
    pub(crate) async fn store<T>(
        self: &Arc<Self>,
        ctx: LoadContext<'_>,
        value: &Arc<T>,
        fence: &Fence,
        load_time: Duration,
        lease: Option<Lease>,
        then: AfterStore,
    ) where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let LoadContext {
            key, opts, flight, ..
        } = ctx;
        let span = crate::spans::debug_span!(
            "tiercache.store",
            namespace = %self.config.namespace,
            outcome = tracing::field::Empty,
        );
        let Some((header, envelope)) = self.envelope_to_store(key, opts, value, load_time) else {
            span.record("outcome", "not_stored");
            if let Some(lease) = lease {
                self.release_lease(lease);
            }
            return;
        };
        let entry_keys = self.keys.entry(key);
        let lifetime = opts.ttl(&self.config) + self.config.fail_safe_max;
        let announcement = crate::message::filled_announcement(self.id, key);
        let load = LoadToStore {
            envelope: &envelope,
            lifetime,
            lease_token: lease.as_ref().map(|l| l.token.as_str()),
            announcement: &announcement,
        };
        let stored = self
            .guarded(self.l2.redis.store(&entry_keys, opts.tags(), fence, &load))
            .instrument(span.clone())
            .await;
        span.record(
            "outcome",
            match stored {
                Ok(true) => "stored",
                Ok(false) => "fenced",
                Err(_) => "error",
            },
        );
        match stored {
            Ok(true) => {
                if then == AfterStore::FillL1 {
                    if let Some(tags) = l1_tags(opts.tags(), &fence.tag_versions) {
                        self.fill_l1(key, value.clone(), envelope.len(), &header, tags, flight);
                    }
                }
                self.stats.bus_messages_sent(1);
            }
            Ok(false) => {
                self.stats.fenced_writes(1);
                // Redis has just shown that an invalidation of the key or of one of its tags
                // overlapped the load; its followers may have begun after it was acknowledged (a tag
                // invalidation, or one this node missed, poisons no flight on its way): they read
                // again. Only the call that started the load takes its value.
                if let Some(flight) = flight.filter(|_| then == AfterStore::FillL1) {
                    flight.poison();
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, key, "store failed");
                if let Some(lease) = lease {
                    self.release_lease(lease);
                }
            }
        }
    }

    /// The header and encoded value of a load to store; `None` when it must not be stored: the load
    /// outlived its fence, or the value does not encode within the size limit.
    fn envelope_to_store<T: Serialize>(
        &self,
        key: &str,
        opts: &EntryOptions,
        value: &T,
        load_time: Duration,
    ) -> Option<(Header, Vec<u8>)> {
        if load_time >= self.l2.redis.generation_ttl {
            // The generation that would fence this load may already have expired: never store. (A
            // generation a read created expires generation_ttl after that read, so the store
            // script may refuse a shorter load too; that costs a reload, never a stale store.)
            self.stats.fenced_writes(1);
            return None;
        }
        let ttl = opts.ttl(&self.config);
        let now = now_ms();
        let header = Header {
            created_at_ms: now,
            expires_at_ms: now + ttl.as_millis() as u64,
            load_micros: u32::try_from(load_time.as_micros()).unwrap_or(u32::MAX),
        };
        match codec::encode(
            value,
            &header,
            self.config.max_value_bytes as usize,
            self.config.value_codec,
        ) {
            Ok(envelope) => Some((header, envelope)),
            Err(reason) => {
                self.stats.encode_errors(1);
                tracing::warn!(namespace = %self.config.namespace, key, reason, "loaded value not cached");
                None
            }
        }
    }

    /// Redis is unreachable: keep the value in L1 only, briefly, since no invalidation can reach us.
    fn fill_degraded<T>(
        &self,
        key: &str,
        opts: &EntryOptions,
        value: &Arc<T>,
        flight: Option<&Flight>,
    ) where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let ttl = opts.ttl(&self.config).min(self.config.degraded_ttl);
        self.fill_l1_briefly(key, value, ttl, flight);
        self.l1
            .degraded_fills
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// A value this node keeps in L1 alone, briefly, while Redis is unreachable.
    pub(crate) fn fill_degraded_for<T>(&self, key: &str, value: &Arc<T>, ttl: Duration)
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.fill_l1_briefly(key, value, ttl.min(self.config.degraded_ttl), None);
        self.l1
            .degraded_fills
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// After a failed load, reuse the stale value for a while instead of hammering the loader.
    fn throttle_with_stale<T>(&self, key: &str, stale: &Arc<T>, flight: Option<&Flight>)
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.fill_l1_briefly(key, stale, FAIL_SAFE_THROTTLE, flight);
    }

    fn fill_l1_briefly<T>(&self, key: &str, value: &Arc<T>, ttl: Duration, flight: Option<&Flight>)
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let now = now_ms();
        let header = Header {
            created_at_ms: now,
            expires_at_ms: now + ttl.as_millis() as u64,
            load_micros: 0,
        };
        // The weigher needs the encoded size; a value that cannot be encoded is not kept.
        let Ok(bytes) = codec::encode(
            value.as_ref(),
            &header,
            self.config.max_value_bytes as usize,
            self.config.value_codec,
        ) else {
            return;
        };
        self.fill_l1(
            key,
            value.clone(),
            bytes.len(),
            &header,
            L1Tags::default(),
            flight,
        );
    }
}

/// Waits until `key` is announced as filled: its notice, or `None` when this receiver lagged behind
/// (it may have missed the notice; the caller re-reads).
async fn wait_for_fill(
    fills: &mut tokio::sync::broadcast::Receiver<Arc<FillNotice>>,
    key: &str,
) -> Option<Arc<FillNotice>> {
    loop {
        match fills.recv().await {
            Ok(filled) if filled.key == key => return Some(filled),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return None,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                std::future::pending::<()>().await;
            }
        }
    }
}

fn loaded_value<T>(
    key: &str,
    joined: Result<Loaded<T>, tokio::task::JoinError>,
) -> Result<T, Error> {
    match joined {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(source))) => Err(Error::Loader {
            key: key.to_owned(),
            source: Arc::from(source),
        }),
        Ok(Err(panic)) => Err(Error::LoaderPanicked {
            key: key.to_owned(),
            message: panic_message(panic.as_ref()),
        }),
        Err(join) => Err(Error::LoaderPanicked {
            key: key.to_owned(),
            message: join.to_string(),
        }),
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
