//! A batch call's cold keys read from L2 in one round trip, from the calling task, before any key
//! takes its own path: on one server a dashboard whose views are all in L2 then costs one `MGET`
//! and one decode per view, not a task step per view woken by a shared reply.
//!
//! Each key is read under its flight, as the single-key path reads it, so concurrent calls for the
//! key wait for this read and an invalidation landing meanwhile undoes the fill of L1. A key this
//! read does not answer (missing, expired, a tag the node cannot vouch for, undecodable, Redis
//! failed) goes on as its own flight's leader through [`super::coalesce::lead_load`], within the
//! same read deadline; a key another call is already loading goes the single-key way from the start.

use std::any::Any;
use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};
use tracing::Instrument;

use crate::fetched::{Fetched, Source};
use crate::node::flights::{FlightKind, Joined};
use crate::node::Node;
use crate::read::coalesce::Lead;

/// What the read at once did for one key.
pub(crate) enum ReadAtOnce<T> {
    /// Answered from L2.
    Answered(Fetched<T>),
    /// Read and not answered: the key's flight, which this call leads from here.
    Leads(Lead),
    /// Not read here: the key takes the single-key path whole.
    NotRead,
}

/// Reads `keys` (a batch's distinct cold keys) in one round trip where the L2 layout allows it;
/// each key's outcome, in order.
pub(crate) async fn read_at_once<T>(node: &Arc<Node>, keys: &[String]) -> Vec<ReadAtOnce<T>>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let mut outcomes: Vec<ReadAtOnce<T>> = keys.iter().map(|_| ReadAtOnce::NotRead).collect();
    // One key reads as fast alone; a layout that cannot read many entries in one command reads
    // them on their own paths, whose commands still leave on the connection together.
    if keys.len() < 2 || !node.l2.redis.reads_many_at_once() {
        return outcomes;
    }
    let deadline = tokio::time::Instant::now() + node.config.read_deadline;
    let mut leads = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        // A key another call leads is waited for on the single-key path, which follows it.
        if let Joined::Leader(guard, waiter) = node.l1.flights.join(FlightKind::Load, key) {
            let lead = Lead {
                guard,
                waiter,
                deadline,
            };
            leads.push((index, lead));
        }
    }
    if leads.is_empty() {
        return outcomes;
    }
    let asked: Vec<_> = leads
        .iter()
        .map(|(index, lead)| (keys[*index].as_str(), lead.guard.flight()))
        .collect();
    let span = crate::spans::debug_span!(
        "tiercache.l2_read_many",
        namespace = %node.config.namespace,
        keys = asked.len(),
        outcome = tracing::field::Empty,
    );
    let read = tokio::time::timeout_at(deadline, node.read_hits::<T>(&asked))
        .instrument(span.clone())
        .await;
    drop(asked);
    let (hits, failed) = match read {
        Ok(Ok(hits)) => (hits, false),
        // The keys' own reads find out again (and count the deadline or the error).
        Ok(Err(_)) | Err(_) => (vec![None; leads.len()], true),
    };
    if !span.is_disabled() {
        let answered = hits.iter().filter(|hit| hit.is_some()).count();
        let outcome = match (failed, answered) {
            (true, _) => "error",
            (false, 0) => "miss",
            (false, n) if n == leads.len() => "hit",
            (false, _) => "partial",
        };
        span.record("outcome", outcome);
    }
    for ((index, lead), hit) in leads.into_iter().zip(hits) {
        outcomes[index] = match hit {
            Some(value) => {
                let shared = value.clone() as Arc<dyn Any + Send + Sync>;
                lead.guard.complete(Ok(Some(shared)), Source::L2);
                ReadAtOnce::Answered(Fetched::new(value, Source::L2))
            }
            None => ReadAtOnce::Leads(lead),
        };
    }
    outcomes
}
