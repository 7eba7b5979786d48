//! A local Redis Cluster of N masters, optionally with replicas, for the scale-out and failover tests.
//!
//! Every node is a [`RedisServer`] of its own (no persistence, loopback only) with
//! `--cluster-enabled yes`; `redis-cli --cluster create` joins them. Nodes suspect a silent peer after
//! 1 s (`cluster-node-timeout 1000`) and a replica may always be promoted
//! (`cluster-replica-validity-factor 0`), so a killed master is replaced within a few seconds.
//!
//! [`RedisCluster::start_tls`] makes the same cluster over TLS alone: every node closes its plain
//! port (`--port 0`) and speaks TLS to clients, to its peers on the cluster bus
//! (`--tls-cluster yes`) and to its replicas (`--tls-replication yes`), with one certificate for
//! `127.0.0.1` signed by a CA made for that cluster. The testkit's own commands to such nodes go
//! through `redis-cli --tls` (see [`RedisServer::cmd`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::server::{cert_dir, free_port, on_path, run_within, RedisServer};
use crate::tls::TestCa;
use crate::TestkitError;

/// Hash slots of a Redis Cluster.
const SLOTS: usize = 16384;
/// `cluster-node-timeout` of every node, in milliseconds: how long a peer may stay silent before it
/// is suspected, and so roughly how long a failover takes (plus about a second of election).
const NODE_TIMEOUT_MS: &str = "1000";
/// How long forming the cluster, or healing it after [`RedisCluster::restart_node`], may take.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between two looks at the cluster's state.
const POLL: Duration = Duration::from_millis(50);
/// Connect, read and write timeout of the testkit's own commands to a node (a paused node must not
/// hang the poll).
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// Several `redis-server --cluster-enabled yes` processes joined into one cluster; every process is
/// stopped on drop (each [`RedisServer`] kills its process and removes its directory).
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    masters: usize,
    /// Nodes stopped with [`RedisCluster::kill_node`] (or [`RedisCluster::kill_master_for_slot`]) and
    /// not restarted since.
    down: Vec<bool>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3) without replicas, joins them with
    /// `redis-cli --cluster create` and waits until the cluster is whole (see
    /// [`RedisCluster::start_with_replicas`]).
    pub fn start(masters: usize) -> Result<RedisCluster, TestkitError> {
        Self::start_with_replicas(masters, 0)
    }

    /// Starts `masters * (1 + replicas_per_master)` nodes, joins them with
    /// `redis-cli --cluster create --cluster-replicas <replicas_per_master>` and waits (30 s at most)
    /// until every node reports `cluster_state:ok`, every node's `CLUSTER NODES` lists all nodes
    /// without a `fail` flag, `masters` masters cover the 16384 slots exactly once (the same way
    /// for every node), every replica follows a master and has synced with it
    /// (`master_link_status:up`). Which nodes become masters is `redis-cli`'s choice: ask
    /// [`RedisCluster::master_urls`] or [`RedisCluster::master_for_slot`].
    pub fn start_with_replicas(
        masters: usize,
        replicas_per_master: usize,
    ) -> Result<RedisCluster, TestkitError> {
        Self::launch(masters, replicas_per_master, None)
    }

    /// [`RedisCluster::start`] over TLS alone: see [`RedisCluster::start_tls_with_replicas`].
    pub fn start_tls(masters: usize) -> Result<(RedisCluster, TestCa), TestkitError> {
        Self::start_tls_with_replicas(masters, 0)
    }

    /// [`RedisCluster::start_with_replicas`] over TLS alone: every node takes TLS connections only
    /// (`--port 0`, so [`RedisServer::port`] is its TLS port and [`RedisCluster::urls`] are
    /// `rediss://127.0.0.1:<port>`), and TLS carries the cluster bus and replication too. All nodes
    /// share one certificate for `127.0.0.1` and `localhost`, signed by a CA made for this cluster
    /// alone: returns the cluster and that CA, which a client must trust. The async helpers of its
    /// [`RedisServer`]s are plain-only (see [`RedisServer::connection_db`]).
    pub fn start_tls_with_replicas(
        masters: usize,
        replicas_per_master: usize,
    ) -> Result<(RedisCluster, TestCa), TestkitError> {
        let (certs, ca) = cert_dir()?;
        match Self::launch(masters, replicas_per_master, Some(&certs)) {
            Ok(cluster) => Ok((cluster, ca)),
            Err(e) => {
                // The nodes started are gone with the failed cluster; the certificates may still be
                // there if none was.
                let _ = std::fs::remove_dir_all(&certs);
                Err(e)
            }
        }
    }

    /// Starts, joins and waits for the cluster of [`RedisCluster::start_with_replicas`]; over TLS
    /// alone with the certificates in `certs` (made by [`cert_dir`]) when given.
    fn launch(
        masters: usize,
        replicas_per_master: usize,
        certs: Option<&Path>,
    ) -> Result<RedisCluster, TestkitError> {
        if !on_path("redis-cli") {
            return Err(TestkitError::NotFound("redis-cli"));
        }
        if masters < 3 {
            return Err(TestkitError::Cluster(format!(
                "a cluster needs at least 3 masters, not {masters}"
            )));
        }
        let total = masters * (1 + replicas_per_master);
        let nodes = (0..total)
            .map(|_| start_node(certs))
            .collect::<Result<Vec<_>, _>>()?;
        create(&nodes, replicas_per_master)?;
        let cluster = RedisCluster {
            nodes,
            masters,
            down: vec![false; total],
        };
        cluster.wait_until_whole(READY_DEADLINE)?;
        Ok(cluster)
    }

    /// One URL per node, masters and replicas alike, in node order (the seeds of a cluster client):
    /// `rediss://` for a cluster of [`RedisCluster::start_tls`].
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The URLs of the nodes that are masters now (not failed, not killed), in node order, as one
    /// live node's `CLUSTER NODES` tells.
    pub fn master_urls(&self) -> Result<Vec<String>, TestkitError> {
        let view = self.any_view()?;
        let mut masters: Vec<usize> = view
            .iter()
            .filter(|l| l.has("master") && !l.is_failing())
            .filter_map(|l| self.index_of_port(l.port))
            .filter(|&i| !self.down[i])
            .collect();
        masters.sort_unstable();
        Ok(masters.into_iter().map(|i| self.nodes[i].url()).collect())
    }

    /// The indexes of the nodes replicating the node at index `master` (none failed), in node order,
    /// as one live node's `CLUSTER NODES` tells. Panics if `master` is out of range.
    pub fn replicas_of(&self, master: usize) -> Result<Vec<usize>, TestkitError> {
        let port = self.nodes[master].port();
        let view = self.any_view()?;
        let id = view
            .iter()
            .find(|l| l.port == port)
            .map(|l| l.id.clone())
            .ok_or_else(|| TestkitError::Cluster(format!("node {master} is not in the cluster")))?;
        let mut replicas: Vec<usize> = view
            .iter()
            .filter(|l| l.has("slave") && !l.is_failing() && l.master_id.as_ref() == Some(&id))
            .filter_map(|l| self.index_of_port(l.port))
            .collect();
        replicas.sort_unstable();
        Ok(replicas)
    }

    /// The cluster hash slot of `key`: CRC16 (XMODEM) of the key modulo 16384, or of its hash tag
    /// when it has one, as Redis does: the bytes between the first `{` and the first `}` after it,
    /// if there are any (`{user1000}.following` hashes `user1000`; `{}x` and `a{b` hash whole).
    pub fn slot_of(key: &str) -> u16 {
        crc16_xmodem(hash_tag(key.as_bytes())) % SLOTS as u16
    }

    /// The index of the node that is master of `slot` (not failed), from the `CLUSTER NODES` of the
    /// first live node that answers; `None` if no node answers or no master serves the slot. Just
    /// after a master dies its peers still name it, until they have marked it failed.
    pub fn master_for_slot(&self, slot: u16) -> Option<usize> {
        let view = self.any_view().ok()?;
        view.iter()
            .find(|l| l.has("master") && !l.is_failing() && l.owns(slot))
            .and_then(|l| self.index_of_port(l.port))
    }

    /// Kills the master of `slot` with SIGKILL, like a crash (see [`RedisCluster::kill_node`]), and
    /// returns its index.
    pub fn kill_master_for_slot(&mut self, slot: u16) -> Result<usize, TestkitError> {
        let master = self
            .master_for_slot(slot)
            .ok_or_else(|| TestkitError::Cluster(format!("no live master serves slot {slot}")))?;
        self.kill_node(master);
        Ok(master)
    }

    /// Kills the node at `index` with SIGKILL and waits for the process to exit; its data is gone.
    /// The other nodes are not told: they notice within the node timeout (1 s). Panics if `index`
    /// is out of range.
    pub fn kill_node(&mut self, index: usize) {
        self.nodes[index].kill();
        self.down[index] = true;
    }

    /// Polls the surviving nodes (neither killed nor silent) until they all name the same surviving
    /// node as master of `slot` and all report `cluster_state:ok`; returns that node's index. Fails
    /// with the last thing still missing once `deadline` has passed.
    pub fn wait_for_failover(&self, slot: u16, deadline: Duration) -> Result<usize, TestkitError> {
        poll_until(
            deadline,
            &format!("a new master serves slot {slot}"),
            || {
                let survivors: Vec<usize> = (0..self.nodes.len())
                    .filter(|&i| !self.down[i] && query(&self.nodes[i], &["PING"]).is_ok())
                    .collect();
                let mut owner = None;
                for &i in &survivors {
                    cluster_state_ok(&self.nodes[i]).map_err(|e| format!("node {i}: {e}"))?;
                    let view = view_of(&self.nodes[i]).map_err(|e| format!("node {i}: {e}"))?;
                    let line = view
                        .iter()
                        .find(|l| l.has("master") && !l.is_failing() && l.owns(slot))
                        .ok_or_else(|| format!("node {i} sees no master for slot {slot}"))?;
                    let master = self.index_of_port(line.port).ok_or_else(|| {
                        format!("node {i} names a stranger at port {}", line.port)
                    })?;
                    if !survivors.contains(&master) {
                        return Err(format!(
                        "node {i} still sees node {master}, which is down, as master of slot {slot}"
                    ));
                    }
                    match owner {
                        Some(o) if o != master => {
                            return Err(format!(
                                "nodes disagree about slot {slot}: {o} or {master}"
                            ))
                        }
                        _ => owner = Some(master),
                    }
                }
                owner.ok_or_else(|| "no node answers".to_owned())
            },
        )
    }

    /// Starts the node at `index` again on the same ports with its `nodes.conf`, so it rejoins with
    /// its old identity, and waits (30 s at most) until the cluster is whole again as in
    /// [`RedisCluster::start_with_replicas`]. It comes back empty: a master killed and replaced
    /// (after [`RedisCluster::wait_for_failover`]) rejoins as a replica of the promoted node and
    /// resyncs from it. Restarting a master before it was replaced brings it back as an empty
    /// master of its slots.
    pub fn restart_node(&mut self, index: usize) -> Result<(), TestkitError> {
        self.nodes[index].restart()?;
        self.down[index] = false;
        self.wait_until_whole(READY_DEADLINE)
    }

    /// The node processes (pause one for fault tests). Prefer [`RedisCluster::kill_node`] and
    /// [`RedisCluster::restart_node`] to killing and restarting through these.
    pub fn nodes(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }

    /// `CLUSTER NODES` of the first node not killed that answers.
    fn any_view(&self) -> Result<Vec<NodeLine>, TestkitError> {
        let mut last = "every node is down".to_owned();
        for (node, _) in self
            .nodes
            .iter()
            .zip(&self.down)
            .filter(|(_, down)| !**down)
        {
            match view_of(node) {
                Ok(view) => return Ok(view),
                Err(e) => last = e,
            }
        }
        Err(TestkitError::Cluster(format!(
            "no node answered CLUSTER NODES: {last}"
        )))
    }

    fn wait_until_whole(&self, deadline: Duration) -> Result<(), TestkitError> {
        poll_until(deadline, "the cluster is whole", || self.whole())
    }

    /// Ok when every node is up and agrees on a whole cluster; otherwise the first thing missing.
    fn whole(&self) -> Result<(), String> {
        let mut reference: Option<(usize, SlotOwners)> = None;
        for (i, node) in self.nodes.iter().enumerate() {
            if self.down[i] {
                return Err(format!("node {i} is down"));
            }
            cluster_state_ok(node).map_err(|e| format!("node {i}: {e}"))?;
            let view = view_of(node).map_err(|e| format!("node {i}: {e}"))?;
            let owners = self
                .slot_owners_if_whole(&view)
                .map_err(|e| format!("node {i} sees {e}"))?;
            match &reference {
                Some((j, first)) if *first != owners => {
                    return Err(format!("nodes {j} and {i} disagree about the slots"));
                }
                Some(_) => {}
                None => reference = Some((i, owners)),
            }
            let is_replica = view.iter().any(|l| l.has("myself") && l.has("slave"));
            if is_replica {
                let replication =
                    query(node, &["INFO", "replication"]).map_err(|e| format!("node {i}: {e}"))?;
                if !has_line(&replication, "master_link_status:up") {
                    return Err(format!("replica {i} has not synced with its master"));
                }
            }
        }
        Ok(())
    }

    /// Who serves which slots in one node's `CLUSTER NODES`, if that view is of a whole cluster: every
    /// node of ours listed and none other, none failing, `masters` masters serving each slot once,
    /// every replica following one of them. Otherwise what is wrong.
    fn slot_owners_if_whole(&self, view: &[NodeLine]) -> Result<SlotOwners, String> {
        if view.len() != self.nodes.len() {
            return Err(format!("{} nodes of {}", view.len(), self.nodes.len()));
        }
        let mut served = vec![0u8; SLOTS];
        let mut owners = SlotOwners::new();
        for line in view {
            let flags = line.flags.join(",");
            if line.is_failing() || self.index_of_port(line.port).is_none() {
                return Err(format!("port {} as {flags}", line.port));
            }
            if line.has("master") {
                for &(first, last) in &line.slots {
                    for slot in first..=last {
                        served[usize::from(slot)] += 1;
                    }
                }
                let mut slots = line.slots.clone();
                slots.sort_unstable();
                owners.insert(line.port, slots);
            } else if line.has("slave") {
                let attached = line
                    .master_id
                    .as_ref()
                    .and_then(|id| view.iter().find(|m| &m.id == id))
                    .is_some_and(|m| m.has("master") && !m.is_failing());
                if !attached {
                    return Err(format!(
                        "replica at port {} without a live master",
                        line.port
                    ));
                }
            } else {
                return Err(format!("port {} as {flags}", line.port));
            }
        }
        if owners.len() != self.masters {
            return Err(format!("{} masters, not {}", owners.len(), self.masters));
        }
        if let Some(slot) = served.iter().position(|&n| n != 1) {
            return Err(format!("slot {slot} served by {} masters", served[slot]));
        }
        Ok(owners)
    }
}

/// The slot ranges each master serves, by the master's port.
type SlotOwners = BTreeMap<u16, Vec<(u16, u16)>>;

/// One cluster node with the testkit's cluster settings, on a free port and a free bus port (named
/// with `--cluster-port`, so ports above 55535, whose default bus port would be over 65535, work).
/// With `certs`, the node speaks TLS alone, on its port, its bus and to its replicas.
fn start_node(certs: Option<&Path>) -> Result<RedisServer, TestkitError> {
    let mut last_error = None;
    for _ in 0..5 {
        let bus_port = free_port()?.to_string();
        let mut args = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-port",
            &bus_port,
            "--cluster-node-timeout",
            NODE_TIMEOUT_MS,
            // A replica may always be promoted, however long it was cut off from its master.
            "--cluster-replica-validity-factor",
            "0",
            // Replicas sync at once rather than after waiting 5 s for more replicas to join.
            "--repl-diskless-sync-delay",
            "0",
        ];
        let started = match certs {
            Some(certs) => {
                args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"]);
                RedisServer::start_tls_only_with(&args, certs)
            }
            None => RedisServer::start_with(&args),
        };
        match started {
            Ok(node) => return Ok(node),
            Err(e @ TestkitError::NotFound(_)) => return Err(e),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| TestkitError::Cluster("no free port".into())))
}

/// `redis-cli --cluster create` over `nodes`, killed if it has not finished within 30 s; with
/// `--tls` and the nodes' CA when they take TLS only.
fn create(nodes: &[RedisServer], replicas_per_master: usize) -> Result<(), TestkitError> {
    let what = "redis-cli --cluster create";
    let mut command = Command::new("redis-cli");
    if let Some(ca) = nodes.first().and_then(RedisServer::tls_only_ca_file) {
        command.args(["--tls", "--cacert"]).arg(ca);
    }
    command
        .arg("--cluster")
        .arg("create")
        .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())))
        .args(["--cluster-replicas", &replicas_per_master.to_string()])
        .arg("--cluster-yes");
    let started = Instant::now();
    let output = run_within(&mut command, READY_DEADLINE, what)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(TestkitError::Cluster(format!(
            "{what} ended with {} after {:?}: {}{}",
            output.status,
            started.elapsed(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// Calls `check` every [`POLL`] until it succeeds; after `deadline`, fails with its last complaint.
fn poll_until<T>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, TestkitError> {
    let started = Instant::now();
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(why) if started.elapsed() >= deadline => {
                return Err(TestkitError::Cluster(format!(
                    "waited {:?} until {what}; still: {why}",
                    started.elapsed()
                )))
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Runs one command on a fresh connection with [`QUERY_TIMEOUT`] (through `redis-cli --tls` on a
/// TLS-only node, see [`RedisServer::cmd`]) and returns its reply as text.
fn query(node: &RedisServer, args: &[&str]) -> Result<String, String> {
    let reply = node
        .cmd_within(args, QUERY_TIMEOUT, Some(QUERY_TIMEOUT))
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    match reply {
        redis::Value::BulkString(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        redis::Value::VerbatimString { text, .. } | redis::Value::SimpleString(text) => Ok(text),
        redis::Value::Okay => Ok("OK".to_owned()),
        other => Err(format!("{} replied {other:?}", args.join(" "))),
    }
}

fn has_line(text: &str, wanted: &str) -> bool {
    text.lines().any(|l| l.trim() == wanted)
}

fn cluster_state_ok(node: &RedisServer) -> Result<(), String> {
    if has_line(&query(node, &["CLUSTER", "INFO"])?, "cluster_state:ok") {
        Ok(())
    } else {
        Err("cluster_state is not ok".to_owned())
    }
}

fn view_of(node: &RedisServer) -> Result<Vec<NodeLine>, String> {
    parse_nodes(&query(node, &["CLUSTER", "NODES"])?)
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeLine {
    id: String,
    port: u16,
    flags: Vec<String>,
    /// The master's node id, for a replica.
    master_id: Option<String>,
    /// Inclusive slot ranges served (importing and migrating entries left out).
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Failed, suspected (`fail?`), still in handshake or without an address.
    fn is_failing(&self) -> bool {
        ["fail", "fail?", "handshake", "noaddr"]
            .iter()
            .any(|f| self.has(f))
    }

    fn owns(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(first, last)| (first..=last).contains(&slot))
    }
}

/// `<id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv> <epoch> <link> <slot>...`
fn parse_nodes(text: &str) -> Result<Vec<NodeLine>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("unexpected CLUSTER NODES line: {line}");
            if fields.len() < 8 {
                return Err(bad());
            }
            let address = fields[1].split('@').next().unwrap_or_default();
            let port = address
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(bad)?;
            let slots = fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .map(|s| {
                    let (first, last) = s.split_once('-').unwrap_or((s, s));
                    Some((first.parse().ok()?, last.parse().ok()?))
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?;
            Ok(NodeLine {
                id: fields[0].to_owned(),
                port,
                flags: fields[2].split(',').map(str::to_owned).collect(),
                master_id: (fields[3] != "-").then(|| fields[3].to_owned()),
                slots,
            })
        })
        .collect()
}

/// The part of a key that is hashed: the content of the first `{...}` if non-empty, else the key.
fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        let rest = &key[open + 1..];
        if let Some(close) = rest.iter().position(|&b| b == b'}') {
            if close > 0 {
                return &rest[..close];
            }
        }
    }
    key
}

/// CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum of Redis Cluster's key slots.
fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_xmodem_check_value() {
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(crc16_xmodem(b""), 0);
    }

    #[test]
    fn hash_tags_follow_the_redis_rules() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"{a}{b}"), b"a");
        assert_eq!(hash_tag(b"{}"), b"{}");
        assert_eq!(hash_tag(b"{}{b}"), b"{}{b}");
        assert_eq!(hash_tag(b"a{b"), b"a{b");
        assert_eq!(hash_tag(b"a}b{c}"), b"c");
        assert_eq!(hash_tag(b"{{a}}"), b"{a");
    }

    /// A cluster over TLS alone forms, fails over and heals through the testkit's own commands, all
    /// sent over TLS; a plain client or a client without the CA is refused.
    #[test]
    fn a_tls_cluster_speaks_tls_alone() {
        let (mut cluster, ca) = RedisCluster::start_tls_with_replicas(3, 1).unwrap();
        let urls = cluster.urls();
        assert_eq!(urls.len(), 6);
        assert!(
            urls.iter().all(|u| u.starts_with("rediss://127.0.0.1:")),
            "{urls:?}"
        );
        assert_eq!(cluster.master_urls().unwrap().len(), 3);
        for node in cluster.nodes().iter() {
            assert_eq!(
                node.cmd(&["CONFIG", "GET", "port"]).unwrap(),
                redis::Value::BulkString(b"port\n0".to_vec()),
                "the plain port is closed"
            );
            assert_eq!(
                node.info_field("server", "tcp_port").unwrap(),
                node.port().to_string()
            );
            assert_eq!(node.tls_url(), Some(node.url()));
        }
        let slot = RedisCluster::slot_of("k");
        let master = cluster.master_for_slot(slot).unwrap();
        assert_eq!(cluster.replicas_of(master).unwrap().len(), 1);
        let node = &cluster.nodes()[master];
        assert_eq!(node.cmd(&["SET", "k", "v"]).unwrap(), redis::Value::Okay);
        assert_eq!(
            node.cmd(&["GET", "k"]).unwrap(),
            redis::Value::BulkString(b"v".to_vec())
        );
        assert!(
            node.cmd(&["INCR", "k"]).is_err(),
            "an error reply is an error"
        );

        // The TLS port speaks nothing else, and its certificate is checked.
        let port = node.port().to_string();
        let plain = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let refused = plain
            .get_connection_with_timeout(QUERY_TIMEOUT)
            .and_then(|mut conn| {
                conn.set_read_timeout(Some(QUERY_TIMEOUT))?;
                redis::cmd("PING").query::<String>(&mut conn)
            });
        assert!(refused.is_err(), "plain PING answered: {refused:?}");
        let without_ca = Command::new("redis-cli")
            .args(["--tls", "-h", "127.0.0.1", "-p", &port, "-e", "PING"])
            .output()
            .unwrap();
        assert!(!without_ca.status.success(), "an unknown CA is refused");
        let with_ca = Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(&ca.path)
            .args(["-h", "127.0.0.1", "-p", &port, "-e", "PING"])
            .output()
            .unwrap();
        assert!(with_ca.status.success(), "{with_ca:?}");

        // Failover and rejoin, over the TLS bus and TLS replication.
        let killed = cluster.kill_master_for_slot(slot).unwrap();
        let promoted = cluster
            .wait_for_failover(slot, Duration::from_secs(30))
            .unwrap();
        assert_ne!(promoted, killed);
        cluster.restart_node(killed).unwrap();
        assert_eq!(cluster.replicas_of(promoted).unwrap(), vec![killed]);

        drop(cluster);
        assert!(
            !ca.path.exists(),
            "the certificates are removed with the cluster"
        );
    }

    #[test]
    fn cluster_nodes_lines_parse() {
        let text = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922 [5461->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 12000
6ec23923021cf3ffec47632106199cb7f496ce01 :0@0 master,fail,noaddr - 1426238316232 1426238315232 5 disconnected
";
        let lines = parse_nodes(text).unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].port, 30004);
        assert!(lines[0].has("slave") && !lines[0].is_failing());
        assert_eq!(
            lines[0].master_id.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert_eq!(lines[1].slots, vec![(5461, 10922)]);
        assert_eq!(lines[2].slots, vec![(0, 5460), (12000, 12000)]);
        assert!(lines[2].owns(12000) && !lines[2].owns(12001) && lines[2].has("myself"));
        assert_eq!(lines[2].master_id, None);
        assert!(lines[3].is_failing());
        assert!(parse_nodes("garbage").is_err());
    }
}
