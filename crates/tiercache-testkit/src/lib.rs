//! Test support for tiercache: private `redis-server` processes on free ports, fault injection,
//! polling helpers, scratch database files, and nodes of a fleet stopping.
//!
//! Every integration test starts its own server, so tests run in parallel and may kill, restart or
//! pause it without disturbing anyone else (never the shared server on 6379).
//!
//! ```no_run
//! let server = tiercache_testkit::RedisServer::start().expect("redis-server on PATH");
//! let url = server.url(); // redis://127.0.0.1:<free port>
//! # drop(url);
//! ```
#![deny(missing_docs)]

mod cluster;
mod env;
mod eventually;
mod nodes;
mod proxy;
mod scratch;
mod server;
mod tls;

pub use cluster::RedisCluster;
pub use env::{assert_each_refused, vars_lookup};
pub use eventually::{eventually, eventually_sync};
pub use nodes::{lists_node, node_id, stop_node};
pub use proxy::FaultProxy;
pub use scratch::ScratchDatabase;
pub use server::RedisServer;
pub use tls::TestCa;

/// What can go wrong while managing a test server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// `redis-server` (or `redis-cli`) is not installed.
    #[error(
        "`{0}` was not found on PATH; install it with `apt-get install redis-server redis-tools`"
    )]
    NotFound(&'static str),
    /// The process could not be started.
    #[error("could not start {what}: {source}")]
    Spawn {
        /// What was being started.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer PING in time.
    #[error("redis-server on port {port} did not answer PING within {waited:?}: {log}")]
    NotReady {
        /// The port it was started on.
        port: u16,
        /// How long we waited.
        waited: std::time::Duration,
        /// The end of its log, for diagnosis.
        log: String,
    },
    /// A Redis command failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Forming a cluster failed.
    #[error("cluster: {0}")]
    Cluster(String),
}
