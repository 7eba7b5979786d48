//! How a call that missed L1 takes part in its key's flight on this node: it leads the load (the L2
//! read in its own task, the rest in a task of its own), or follows another call's, and what a
//! finished flight means for it.

use std::any::Any;
use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};
use tracing::Instrument;

use crate::error::Error;
use crate::fetched::{Fetched, Source};
use crate::loader::Loader;
use crate::node::flights::{FlightKind, FlightWaiter, Joined, Landed, LeaderGuard};
use crate::node::Node;
use crate::options::EntryOptions;
use crate::read::load::LoadContext;
use crate::read::slot::BatchSlot;
use crate::spans;

/// A call past L1 (`l1_stale`: what L1 held that this node may no longer trust): leads its key's
/// flight on this node or follows the one running, and returns what it lands with, recorded on the
/// call's `span`. `batch`: the key's place in a [`crate::Cache::fetch_many`] call, told when the key
/// waits instead of loading.
pub(crate) async fn fetch_cold<T, L>(
    node: &Arc<Node>,
    key: &str,
    opts: &EntryOptions,
    loader: L,
    l1_stale: Option<Arc<T>>,
    batch: Option<&BatchSlot>,
    span: &tracing::Span,
) -> Result<Fetched<T>, Error>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    L: Loader<T>,
{
    // One budget for the whole call's waits on Redis: a call that waited on another caller's
    // flight while that caller waited for Redis, then leads its own (the first was poisoned),
    // does not wait for Redis afresh.
    let mut deadline = tokio::time::Instant::now() + node.config.read_deadline;
    let mut overtaken = false;
    loop {
        match node.l1.flights.join(FlightKind::Load, key) {
            Joined::Leader(guard, waiter) => {
                let lead = Lead {
                    guard,
                    waiter,
                    deadline,
                };
                let led = lead_load::<T, L>(node, key, opts, loader, l1_stale, lead, batch)
                    .instrument(span.clone())
                    .await;
                return spans::fetched(span, led);
            }
            Joined::Follower(waiter) => {
                node.stats.coalesced(1);
                if let Some(batch) = batch {
                    batch.settle();
                }
                let landed = follow(node, &waiter, &mut overtaken).await;
                if waiter.leader_loaded() {
                    // The wait was for a loader, not for Redis: the budget starts again.
                    deadline = tokio::time::Instant::now() + node.config.read_deadline;
                }
                let Some(landed) = landed else {
                    continue;
                };
                match landed {
                    Landed::Completed(Ok(Some(v))) => {
                        if let Ok(v) = v.downcast::<T>() {
                            return spans::coalesced(span, Ok(Fetched::new(v, waiter.source())));
                        }
                        // Someone loaded this key as another type: load our own, uncoalesced.
                        node.stats.type_mismatches(1);
                        let ctx = LoadContext {
                            key,
                            opts,
                            flight: None,
                            batch,
                            deadline: None,
                        };
                        let loaded = node
                            .load::<T, L>(ctx, loader, None)
                            .instrument(span.clone())
                            .await;
                        return spans::fetched(span, loaded);
                    }
                    // The leader's caller was cancelled: lead or follow a new flight.
                    Landed::Abandoned => {}
                    landed @ (Landed::Completed(_) | Landed::Loaded(_)) => {
                        return spans::coalesced(span, landed_value(landed, &waiter))
                    }
                }
            }
        }
    }
}

/// The leader of a load flight: reads L2 in the caller's task (an L2 hit costs no spawn) and, on a
/// miss, hands lease, loader and store to a task of their own, which must finish even if this caller
/// goes away; then waits for the flight's result, or past the call's read `deadline` for the loaded
/// value alone (a store Redis is slow to take lands without the caller).
pub(crate) async fn lead_load<T, L>(
    node: &Arc<Node>,
    key: &str,
    opts: &EntryOptions,
    loader: L,
    l1_stale: Option<Arc<T>>,
    lead: Lead,
    batch: Option<&BatchSlot>,
) -> Result<Fetched<T>, Error>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    L: Loader<T>,
{
    let Lead {
        guard,
        waiter,
        deadline,
    } = lead;
    // If the caller is cancelled during the read, the guard drops and the followers retry, and a
    // lease the read took is released. Past the read deadline the read is cut short like one that
    // timed out: the call loads without L2.
    let ctx = LoadContext {
        key,
        opts,
        flight: Some(guard.flight()),
        batch,
        deadline: Some(deadline),
    };
    let read = tokio::time::timeout_at(deadline, node.read_for_load::<T>(ctx)).await;
    let (fills, read) = read.unwrap_or_else(|_| {
        node.stats.read_deadline_hits(1);
        // Only a read that found the key's lease held waits for fills; this one found nothing.
        let fills = node.fills.subscribe();
        let cut = Error::unavailable("the read deadline passed before Redis answered");
        (fills, Err(cut))
    });
    if let Some(value) = read.as_ref().ok().and_then(|r| r.fresh.clone()) {
        guard.complete(
            Ok(Some(value.clone() as Arc<dyn Any + Send + Sync>)),
            Source::L2,
        );
        return Ok(Fetched::new(value, Source::L2));
    }
    let (task_node, key, opts) = (node.clone(), key.to_owned(), opts.clone());
    let batch = batch.cloned();
    let load = async move {
        let ctx = LoadContext {
            key: &key,
            opts: &opts,
            flight: Some(guard.flight()),
            batch: batch.as_ref(),
            deadline: Some(deadline),
        };
        let result = task_node
            .load_after_read::<T, L>(ctx, loader, l1_stale, fills, read)
            .await;
        let source = result.as_ref().map_or(Source::Loaded, |f| f.source);
        guard.complete(
            result.map(|f| Some(f.value as Arc<dyn Any + Send + Sync>)),
            source,
        );
    };
    // In the call's span (a task starts in none), so lease wait, loader and store show under the
    // call that led them.
    tokio::spawn(load.instrument(tracing::Span::current()));
    let landed = waiter.lead(deadline).await;
    if matches!(landed, Landed::Loaded(_)) {
        node.stats.read_deadline_hits(1);
    }
    landed_value(landed, &waiter)
}

/// The flight a call leads, and when it stops waiting for Redis.
pub(crate) struct Lead {
    pub(crate) guard: LeaderGuard,
    pub(crate) waiter: FlightWaiter,
    /// The call's read deadline ([`crate::CacheBuilder::read_deadline`]).
    pub(crate) deadline: tokio::time::Instant,
}

/// Waits on another caller's flight; `None` when an invalidation of the key reached this node first
/// and the caller should read again. A call leaves a flight so at most once (`overtaken` remembers):
/// the flight it joins next began after this node applied that invalidation, and under a steady
/// stream of invalidations a call that kept leaving would never finish.
pub(crate) async fn follow(
    node: &Node,
    waiter: &FlightWaiter,
    overtaken: &mut bool,
) -> Option<Landed> {
    if *overtaken {
        return Some(waiter.wait().await);
    }
    let landed = waiter.follow().await;
    if landed.is_none() {
        *overtaken = true;
        node.stats.flights_overtaken(1);
    }
    landed
}

/// What a finished flight means for one of its callers.
pub(crate) fn landed_value<T: Send + Sync + 'static>(
    landed: Landed,
    waiter: &FlightWaiter,
) -> Result<Fetched<T>, Error> {
    match landed {
        Landed::Completed(Ok(Some(v))) => v
            .downcast::<T>()
            .map(|v| Fetched::new(v, waiter.source()))
            .map_err(|_| Error::unavailable("load produced a value of another type")),
        Landed::Loaded(v) => v
            .downcast::<T>()
            .map(|v| Fetched::new(v, Source::Loaded))
            .map_err(|_| Error::unavailable("load produced a value of another type")),
        Landed::Completed(Ok(None)) => Err(Error::unavailable("load produced no value")),
        Landed::Completed(Err(e)) => Err(e),
        // Only when the spawned load was stopped (the runtime shutting down).
        Landed::Abandoned => Err(Error::unavailable(
            "the load this call waited on was abandoned",
        )),
    }
}
