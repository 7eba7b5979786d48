//! Removing what an operator found: expired entries kept only for fail-safe, and a whole namespace.
//! Every removal of an entry goes out on the bus, so no node keeps serving it from L1.

use std::collections::BTreeMap;

use serde::Serialize;

use super::entry::{EntryReport, EntryState};
use super::scan::KeyKind;
use crate::admin::Admin;
use crate::error::Error;
use crate::node::outbox::Op;

/// Keys removed per `UNLINK`: one call frees them in the background without a huge argument list.
const UNLINK_BATCH: usize = 500;

/// What [`Admin::clear_namespace`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClearReport {
    /// Keys removed, by kind.
    pub removed: BTreeMap<KeyKind, u64>,
}

impl ClearReport {
    /// Keys removed in all.
    pub fn total(&self) -> u64 {
        self.removed.values().sum()
    }
}

impl Admin<'_> {
    /// Removes an entry that [`Admin::inspect`] found [`EntryState::Expired`] (past its logical
    /// expiry, kept only as the fail-safe fallback), if it is still that same entry: a node that
    /// stored a fresh value since keeps it. When removed, the key is announced on the bus, so every
    /// node's L1 drops its copy too. Returns whether it was removed.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// let report = cache.admin().inspect("total_donations:last_year").await?;
    /// if report.state == tiercache::EntryState::Expired {
    ///     cache.admin().remove_expired_entry(&report).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn remove_expired_entry(&self, report: &EntryReport) -> Result<bool, Error> {
        if report.state != EntryState::Expired {
            return Ok(false);
        }
        let node = self.node();
        let entry = node.keys.entry(&report.key);
        // The header names one stored value (its timestamps, generation and length): the same header
        // means nothing was stored since the inspection.
        let Some(header) = report.found_header.clone() else {
            return Ok(false);
        };
        let removed = node
            .guarded(
                node.l2
                    .redis
                    .remove_entry_if_unchanged(&entry.entry, &header),
            )
            .await?;
        if removed {
            node.bus
                .outbox
                .send(vec![Op::AnnounceKey(report.key.clone())])
                .await?;
        }
        Ok(removed)
    }

    /// Removes every cache key of this namespace — entries, generations, leases, tag versions, the
    /// replay stream and named locks — found with `SCAN`, then tells every node to drop its L1. Keys of
    /// other namespaces, other programs' keys and the namespace's epoch stay, and so do the nodes'
    /// presence keys and the namespace's records ([`KeyKind::is_cache_data`]), which describe the
    /// nodes rather than the cache, and the named locks' fencing counters, which keep their tokens
    /// increasing.
    ///
    /// Loads running meanwhile are fenced as after any invalidation (their generation is gone), and
    /// the nodes recover through the bus as after a flush. A destructive call: the ops CLI asks first.
    pub async fn clear_namespace(&self) -> Result<ClearReport, Error> {
        let node = self.node();
        let keys = self.scan_namespace().await?;
        let mut report = ClearReport::default();
        let doomed: Vec<_> = keys.iter().filter(|k| k.kind.is_cache_data()).collect();
        for batch in doomed.chunks(UNLINK_BATCH) {
            let names: Vec<&str> = batch.iter().map(|k| k.redis_key.as_str()).collect();
            node.guarded(async { node.l2.redis.conn.unlink(&names).await.map_err(Error::from) })
                .await?;
            for key in batch {
                *report.removed.entry(key.kind).or_default() += 1;
            }
        }
        node.bus.outbox.send(vec![Op::ClearNamespace]).await?;
        Ok(report)
    }
}
