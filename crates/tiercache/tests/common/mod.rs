//! Shared set-up for the integration tests: private Redis servers and nodes tuned for fast detection.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tiercache::{Cache, CacheBuilder};
#[allow(unused_imports)]
pub use tiercache_testkit::{eventually, RedisCluster, RedisServer};

pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn server() -> RedisServer {
    RedisServer::start().expect("start a private redis-server")
}

pub fn builder(server: &RedisServer, namespace: &str) -> CacheBuilder {
    Cache::builder()
        .redis_url(&server.url())
        .namespace(namespace)
        .heartbeat_interval(Duration::from_millis(100))
}

/// A node's builder whose Redis traffic goes through `proxy`, with short timeouts so a partition
/// shows fast, and Redis required at start.
pub fn builder_behind(proxy: &tiercache_testkit::FaultProxy, namespace: &str) -> CacheBuilder {
    Cache::builder()
        .redis_url(&proxy.url())
        .namespace(namespace)
        .heartbeat_interval(Duration::from_millis(100))
        .response_timeout(Duration::from_millis(200))
        .require_redis_at_start(true)
}

pub async fn node(server: &RedisServer, namespace: &str) -> Cache {
    builder(server, namespace)
        .build()
        .await
        .expect("build node")
}

/// Sets `session:42`, a key of another program, in the database the nodes use; returns the
/// connection, for more.
pub async fn other_programs_key(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let mut raw = server.connection_db(1).await.unwrap();
    let () = redis::cmd("SET")
        .arg("session:42")
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    raw
}

/// A node of each namespace, in order: `["a"; 2]` is two nodes sharing one.
pub async fn nodes_in<const N: usize>(server: &RedisServer, namespaces: [&str; N]) -> [Cache; N] {
    let mut out = Vec::with_capacity(N);
    for namespace in namespaces {
        out.push(node(server, namespace).await);
    }
    out.try_into()
        .unwrap_or_else(|_| unreachable!("one node per namespace"))
}

pub async fn nodes(server: &RedisServer, namespace: &str, n: usize) -> Vec<Cache> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(node(server, namespace).await);
    }
    out
}

/// A loader that counts its calls and returns `value`.
pub fn counting<T: Clone + Send + 'static>(
    calls: &Arc<AtomicUsize>,
    value: T,
) -> impl FnOnce() -> std::future::Ready<Result<T, std::io::Error>> + Send + 'static {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(value))
    }
}

/// Where the nodes of a behaviour test keep L2: one private server, or a private Redis Cluster of three
/// masters with one replica each. The same test body runs on both.
pub enum Backend {
    Server(RedisServer),
    Cluster(RedisCluster),
}

impl Backend {
    pub fn server() -> Backend {
        Backend::Server(server())
    }

    pub fn cluster() -> Backend {
        Backend::Cluster(
            RedisCluster::start_with_replicas(3, 1).expect("start a private Redis Cluster"),
        )
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Backend::Cluster(_))
    }

    pub fn builder(&self, namespace: &str) -> CacheBuilder {
        let builder = Cache::builder()
            .namespace(namespace)
            .heartbeat_interval(Duration::from_millis(100));
        match self {
            Backend::Server(server) => builder.redis_url(&server.url()),
            Backend::Cluster(cluster) => builder.cluster_urls(cluster.urls()),
        }
    }

    pub async fn node(&self, namespace: &str) -> Cache {
        self.builder(namespace).build().await.expect("build node")
    }

    pub async fn nodes(&self, namespace: &str, n: usize) -> Vec<Cache> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.node(namespace).await);
        }
        out
    }
}

/// Runs each body on a single server and on a cluster: `mod server` and `mod cluster` of tests, each
/// calling `super::<body>(Backend)`, so the test file imports `Backend`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {
        mod server {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(super::Backend::server()).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(super::Backend::cluster()).await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_backends;
