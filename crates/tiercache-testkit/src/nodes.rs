//! Nodes of a fleet stopping, as the nodes that stay see it: the core's tests and the CLI's judge
//! leases and snapshots by which nodes are still listed as running.

use std::time::Duration;

use tiercache::Cache;

use crate::eventually;

/// The id `node` is listed under among the running nodes ([`tiercache::Admin::nodes`]).
pub fn node_id(node: &Cache) -> String {
    format!("{:016x}", node.admin().node_id())
}

/// Whether `observer` lists the node `id` among the running nodes.
pub async fn lists_node(observer: &Cache, id: &str) -> bool {
    observer
        .admin()
        .nodes()
        .await
        .expect("read the running nodes")
        .iter()
        .any(|n| n.node_id == id)
}

/// Stops `goes` and waits until `stays` no longer lists it among the running nodes (its presence
/// expired), so its leases are orphans and its snapshots are left out; panics when `deadline`
/// passes first.
pub async fn stop_node(stays: &Cache, goes: Cache, deadline: Duration) {
    let gone = node_id(&goes);
    drop(goes);
    eventually(deadline, "the stopped node's presence expires", || async {
        !lists_node(stays, &gone).await
    })
    .await;
}
