//! Which nodes of a namespace are running: every node rewrites a presence key each heartbeat interval,
//! and the key expires after three. Lease tokens name their holder's node, so an operator can tell a
//! lease whose holder is gone from one whose holder is still loading.

use std::sync::Weak;
use std::time::Duration;

use serde::Serialize;

use super::scan::{glob_literal, namespace_part, KeyKind};
use crate::admin::Admin;
use crate::error::Error;
use crate::node::Node;
use crate::wall_clock::now_ms;

/// Heartbeat intervals a presence key outlives its last write: the same silence that makes a node
/// distrust its own subscription.
const PRESENCE_INTERVALS: u32 = 3;

/// A node of the namespace that is running now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePresence {
    /// The node id as 16 hex digits (as [`Admin::node_id`] renders in status documents).
    pub node_id: String,
    /// When the node started, ms since the Unix epoch (its own clock).
    pub started_at_ms: u64,
    /// How long its presence lasts unless renewed, ms.
    pub expires_in_ms: u64,
}

impl NodePresence {
    /// Whether this node is the one a lease token's holder prefix names.
    pub(super) fn holds(&self, prefix: u32) -> bool {
        u64::from_str_radix(&self.node_id, 16).is_ok_and(|id| holder_prefix(id) == prefix)
    }
}

/// The part of a node id a lease token carries: its top 31 bits (node ids are below 2^63).
pub(super) fn holder_prefix(node_id: u64) -> u32 {
    (node_id >> 32) as u32
}

/// A lease token for a node: the node's holder prefix above 32 random bits, so the token names its
/// holder and still differs between two acquisitions by one node. Below 2^63 and never 0, so it reads
/// as any other nonce (1 to 19 decimal digits).
pub(crate) fn lease_token(node_id: u64) -> String {
    let token = (u64::from(holder_prefix(node_id) & 0x7fff_ffff) << 32)
        | u64::from(rand::random::<u32>())
        | 1;
    token.to_string()
}

/// The holder prefix a token names; `None` for a token that is not a number below 2^63.
pub(super) fn token_holder(token: &str) -> Option<u32> {
    let value: u64 = token.parse().ok()?;
    (value >> 63 == 0).then_some((value >> 32) as u32)
}

pub(super) fn presence_key(namespace: &str, node_id: u64) -> String {
    format!("tc:n:{}:{node_id:016x}", namespace_part(namespace))
}

/// Keeps the node's presence key alive while the node lives (the node's handle aborts the task).
pub(crate) fn start_presence(node: Weak<Node>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started_at_ms = now_ms();
        loop {
            let Some(n) = node.upgrade() else { return };
            let interval = n.config.heartbeat_interval;
            // While the breaker is open the heartbeat probes Redis; a presence write would only wait
            // out its timeout.
            if !n.l2.breaker.is_open() {
                let lifetime = (interval * PRESENCE_INTERVALS).max(Duration::from_millis(1));
                let key = presence_key(&n.config.namespace, n.id);
                let written =
                    n.l2.redis
                        .renew_presence(&key, started_at_ms, lifetime)
                        .await;
                if let Err(e) = written {
                    tracing::debug!(error = %e, "presence not renewed");
                }
            }
            drop(n);
            tokio::time::sleep(interval).await;
        }
    })
}

impl Admin<'_> {
    /// The nodes of this namespace running now (this one included), found by their presence keys.
    /// A node that has not renewed its presence for three heartbeat intervals is not listed.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// let me = format!("{:016x}", cache.admin().node_id());
    /// assert!(cache.admin().nodes().await?.iter().any(|n| n.node_id == me));
    /// # Ok(()) }
    /// ```
    pub async fn nodes(&self) -> Result<Vec<NodePresence>, Error> {
        let ns = &self.config().namespace;
        let pattern = format!("tc:n:{}:*", glob_literal(&namespace_part(ns)));
        let keys: Vec<_> = self
            .scan_matching(&[pattern])
            .await?
            .into_iter()
            .filter(|k| k.kind == KeyKind::Presence)
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let replies = self.values_with_ttl(&keys).await?;
        let mut nodes: Vec<NodePresence> = keys
            .iter()
            .zip(&replies)
            .filter_map(|(key, reply)| {
                let started: u64 = redis::from_redis_value_ref(&reply[0]).ok()?;
                let ttl: i64 = redis::from_redis_value_ref(reply.get(1)?).ok()?;
                // Gone between the scan and the read (-2), or written without expiry by someone else.
                (ttl > 0).then(|| NodePresence {
                    node_id: key.name.clone(),
                    started_at_ms: started,
                    expires_in_ms: ttl as u64,
                })
            })
            .collect();
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_holder_and_reads_as_a_nonce() {
        for id in [1u64, 0x7fff_ffff_ffff_ffff, 0x3a5f_1c2e_9b8d_7e6f, 1 << 32] {
            let token = lease_token(id);
            assert_eq!(token_holder(&token), Some(holder_prefix(id)), "{token}");
            assert!(
                (1..=19).contains(&token.len()) && !token.starts_with('0'),
                "{token}"
            );
        }
        let (a, b) = (lease_token(42 << 40), lease_token(42 << 40));
        assert_eq!(token_holder(&a), token_holder(&b));
        assert_eq!(token_holder("abc"), None);
        assert_eq!(token_holder(&u64::MAX.to_string()), None);
    }

    #[test]
    fn a_presence_names_the_holder_whose_prefix_it_shares() {
        let p = NodePresence {
            node_id: "3a5f1c2e9b8d7e6f".into(),
            started_at_ms: 0,
            expires_in_ms: 1,
        };
        assert!(p.holds(0x3a5f_1c2e));
        assert!(!p.holds(0x3a5f_1c2f));
    }
}
