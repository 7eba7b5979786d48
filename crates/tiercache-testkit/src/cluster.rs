//! A local Redis Cluster of N masters, for the scale-out tests.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::server::{on_path, RedisServer};
use crate::TestkitError;

/// Several `redis-server --cluster-enabled yes` processes joined into one cluster; stopped on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3), joins them with `redis-cli --cluster create` and waits until
    /// every node reports `cluster_state:ok`.
    pub fn start(masters: usize) -> Result<RedisCluster, TestkitError> {
        if !on_path("redis-cli") {
            return Err(TestkitError::NotFound("redis-cli"));
        }
        if masters < 3 {
            return Err(TestkitError::Cluster(format!(
                "a cluster needs at least 3 masters, not {masters}"
            )));
        }
        let mut nodes = Vec::with_capacity(masters);
        for _ in 0..masters {
            nodes.push(RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ])?);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .map_err(|source| TestkitError::Spawn {
                what: "redis-cli --cluster create".into(),
                source,
            })?;
        if !output.status.success() {
            return Err(TestkitError::Cluster(
                String::from_utf8_lossy(&output.stdout).into_owned(),
            ));
        }
        let started = Instant::now();
        for node in &nodes {
            loop {
                let info = node.cmd(&["CLUSTER", "INFO"]).ok().and_then(|v| match v {
                    redis::Value::BulkString(b) => String::from_utf8(b).ok(),
                    redis::Value::VerbatimString { text, .. } => Some(text),
                    _ => None,
                });
                if info.is_some_and(|i| i.contains("cluster_state:ok")) {
                    break;
                }
                if started.elapsed() > Duration::from_secs(20) {
                    return Err(TestkitError::Cluster(
                        "cluster_state did not become ok within 20 s".into(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(RedisCluster { nodes })
    }

    /// One URL per node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The node processes (kill or pause one for fault tests).
    pub fn nodes(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }
}
