//! Load leases and named locks as an operator sees them: who holds each, and whether that holder is
//! gone (see the module docs of `ops` for how that is decided).

use redis::Value;
use serde::Serialize;

use super::presence::{token_holder, NodePresence};
use super::scan::{glob_literal, namespace_part, KeyKind, NamespaceKey};
use crate::admin::Admin;
use crate::error::Error;

/// What a lease guards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum LeaseKind {
    /// The load of a cache key (taken by `get_or_load` so one node in the fleet loads it).
    Load(String),
    /// A named lock taken through [`crate::Cache::lock`].
    Named(String),
}

/// The node a lease token names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseHolder {
    /// The first 8 hex digits of the holder's node id: what a token carries.
    pub node_prefix: String,
    /// The holder's whole node id (16 hex digits) when a running node has that prefix.
    pub node_id: Option<String>,
}

/// Whether a lease's holder is still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Its holder is a running node of the namespace.
    Held,
    /// No running node of the namespace has the holder's id: the holder stopped or crashed (or is
    /// a node of a tiercache version whose tokens name no holder). Others would wait it out.
    HolderGone,
    /// Its value is not a token (another type, or text), so no node can release it.
    Unreadable,
    /// It has no expiry, so it would never run out by itself.
    NeverExpires,
}

impl LeaseState {
    /// Whether the lease may be removed: every state but [`LeaseState::Held`].
    pub fn is_abandoned(self) -> bool {
        self != LeaseState::Held
    }
}

/// One load lease or named lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseReport {
    /// The Redis key.
    pub redis_key: String,
    /// What it guards.
    #[serde(flatten)]
    pub kind: LeaseKind,
    /// The token in it (empty when unreadable).
    pub token: String,
    /// The node its token names, when it names one.
    pub holder: Option<LeaseHolder>,
    /// How long until it runs out by itself, ms; `None` when it never does.
    pub expires_in_ms: Option<u64>,
    /// Whether the holder is there.
    pub state: LeaseState,
}

impl LeaseReport {
    /// The report of a lease key from its `GET` and `PTTL` replies; `None` when it vanished.
    pub(super) fn of(
        key: &NamespaceKey,
        value: &Value,
        ttl: &Value,
        nodes: &[NodePresence],
    ) -> Option<Self> {
        let ttl: i64 = redis::from_redis_value_ref(ttl).ok()?;
        if ttl == -2 {
            return None;
        }
        let kind = if key.kind == KeyKind::Lease {
            LeaseKind::Load(key.name.clone())
        } else {
            LeaseKind::Named(key.name.clone())
        };
        let token: Option<String> = match value {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        };
        let holder = token
            .as_deref()
            .and_then(token_holder)
            .map(|prefix| LeaseHolder {
                node_prefix: format!("{prefix:08x}"),
                node_id: nodes
                    .iter()
                    .find(|n| n.holds(prefix))
                    .map(|n| n.node_id.clone()),
            });
        let state = match (&token, &holder) {
            (None, _) => LeaseState::Unreadable,
            _ if ttl < 0 => LeaseState::NeverExpires,
            (
                Some(_),
                Some(LeaseHolder {
                    node_id: Some(_), ..
                }),
            ) => LeaseState::Held,
            (Some(_), _) => LeaseState::HolderGone,
        };
        Some(LeaseReport {
            redis_key: key.redis_key.clone(),
            kind,
            token: token.unwrap_or_default(),
            holder,
            expires_in_ms: u64::try_from(ttl).ok(),
            state,
        })
    }
}

impl Admin<'_> {
    /// Every load lease and named lock of this namespace, with its holder and whether the holder is
    /// gone, sorted by key.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// for lease in cache.admin().leases().await? {
    ///     if lease.state.is_abandoned() {
    ///         cache.admin().remove_abandoned_lease(&lease).await?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn leases(&self) -> Result<Vec<LeaseReport>, Error> {
        let ns = glob_literal(&namespace_part(&self.config().namespace));
        // Narrower than the layout's patterns: only keys ending in a lease's suffix, and named locks.
        let leases = format!("tc:{{{ns}:*}}:l");
        let locks = format!("tc:L:{ns}:*");
        let mut keys: Vec<NamespaceKey> = self
            .scan_matching(&[leases, locks])
            .await?
            .into_iter()
            .filter(|k| matches!(k.kind, KeyKind::Lease | KeyKind::NamedLock))
            .collect();
        keys.sort_by(|a, b| a.redis_key.cmp(&b.redis_key));
        keys.dedup_by(|a, b| a.redis_key == b.redis_key);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Presence after the leases: a node that took a lease during the scan is present by now.
        let nodes = self.nodes().await?;
        // GET of another type is an error reply, which the report reads as unreadable.
        let replies = self.values_with_ttl(&keys).await?;
        Ok(keys
            .iter()
            .zip(&replies)
            .filter_map(|(key, r)| LeaseReport::of(key, &r[0], r.get(1)?, &nodes))
            .collect())
    }

    /// Removes a lease or named lock found abandoned ([`LeaseState::is_abandoned`]), if it still
    /// holds the token it was found with: a lease taken again since, by anyone, is left alone.
    /// Returns whether it was removed. A lease whose holder is [`LeaseState::Held`] is refused.
    pub async fn remove_abandoned_lease(&self, lease: &LeaseReport) -> Result<bool, Error> {
        if !lease.state.is_abandoned() {
            return Err(Error::unavailable(format!(
                "{} is held by a running node; it is not removed",
                lease.redis_key
            )));
        }
        let node = self.node();
        node.guarded(
            node.l2
                .redis
                .remove_lease_if_held_by(&lease.redis_key, &lease.token),
        )
        .await
    }
}
