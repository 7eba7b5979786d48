//! AUTH, a user restricted to the ACL rules tiercache documents, TLS with a CA made at test time, and
//! no password in any `Debug`, log line or error.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, server, RedisServer, DEADLINE};
use tiercache::{Cache, CacheBuilder, EntryOptions, ErrorKind};

const PASSWORD: &str = "pw-7f3a9c-never-printed";

fn opts() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(600)).with_tags(["donation"])
}

fn base(url: &str, namespace: &str) -> CacheBuilder {
    Cache::builder()
        .redis_url(url)
        .namespace(namespace)
        .heartbeat_interval(Duration::from_millis(100))
        .require_redis_at_start(true)
}

async fn acl_setuser(redis: &RedisServer, user: &str, rules: &str) {
    let mut conn = redis.connection().await.unwrap();
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER")
        .arg(user)
        .arg("on")
        .arg(format!(">{PASSWORD}"));
    for rule in rules.split_whitespace() {
        cmd.arg(rule);
    }
    let _: () = cmd.query_async(&mut conn).await.unwrap();
}

/// Two nodes exercise everything a node sends: loads with tags, set, invalidations, a lock, the
/// replay stream, and the bus between them.
async fn exercise(a: &Cache, b: &Cache) {
    let v = a
        .get_or_load("k", &opts(), || async { Ok::<_, std::io::Error>(1_u64) })
        .await
        .unwrap();
    assert_eq!(*v, 1);
    assert_eq!(*b.get::<u64>("k").await.unwrap().unwrap(), 1);
    b.set("s", 2_u64, &opts()).await.unwrap();
    a.invalidate("k").await.unwrap();
    eventually(DEADLINE, "b hears a's invalidation", || async {
        b.get::<u64>("k").await.unwrap().is_none()
    })
    .await;
    b.invalidate_tags(["donation"]).await.unwrap();
    eventually(DEADLINE, "a hears b's tag invalidation", || async {
        a.get::<u64>("s").await.unwrap().is_none()
    })
    .await;
    let guard = a
        .lock("nightly", tiercache::LockOptions::from_config(a.config()))
        .await
        .unwrap();
    assert!(guard.release().await.unwrap());
    // A missed message makes b replay the stream (XRANGE, XINFO).
    a.admin().fault_skip_publish(1);
    b.get_or_load("r", &opts(), || async { Ok::<_, std::io::Error>(3_u64) })
        .await
        .unwrap();
    a.invalidate("r").await.unwrap();
    eventually(DEADLINE, "b replays the missed invalidation", || async {
        b.get::<u64>("r").await.unwrap().is_none() && !b.admin().is_suspect()
    })
    .await;
    for node in [a, b] {
        assert_eq!(node.stats().redis_errors, 0, "every command was allowed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_restricted_to_the_documented_acl_rules_runs_the_cache() {
    let redis = server();
    acl_setuser(&redis, "cache", &tiercache::acl_rules("widgets")).await;
    let url = format!("redis://cache:{PASSWORD}@127.0.0.1:{}", redis.port());
    let a = base(&url, "widgets").build().await.unwrap();
    let b = base(&url, "widgets").build().await.unwrap();
    exercise(&a, &b).await;

    // The rules are the namespace's alone: another namespace is refused.
    let err = base(&url, "other")
        .build()
        .await
        .expect_err("not this user's keys");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!format!("{err} {err:?}").contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_acl_rules_run_the_cache_on_a_cluster_too() {
    let mut cluster = tiercache_testkit::RedisCluster::start_with_replicas(3, 1).unwrap();
    let rules = tiercache::acl_rules("widgets");
    for node in cluster.nodes().iter() {
        acl_setuser(node, "cache", &rules).await;
    }
    let on_cluster = || {
        Cache::builder()
            .cluster_urls(cluster.urls())
            .redis_username("cache")
            .redis_password(PASSWORD)
            .namespace("widgets")
            .heartbeat_interval(Duration::from_millis(100))
            .require_redis_at_start(true)
    };
    let a = on_cluster().build().await.unwrap();
    let b = on_cluster().build().await.unwrap();
    exercise(&a, &b).await;
    // The operator's calls too: the entry with its tags, the keys of the namespace on every master,
    // the server figures.
    a.get_or_load("t", &opts(), || async { Ok::<_, std::io::Error>(4_u64) })
        .await
        .unwrap();
    let report = a.admin().inspect("t").await.unwrap();
    assert_eq!(report.tags.len(), 1);
    assert!(report.tags.iter().all(|t| t.current), "{report:?}");
    assert!(!a.admin().scan_namespace().await.unwrap().is_empty());
    assert!(a.admin().server_info().await.unwrap().used_memory > 0);
    assert_eq!(a.stats().redis_errors, 0, "every command was allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_may_come_apart_from_the_url_and_is_never_printed() {
    let redis = server();
    acl_setuser(&redis, "cache", "~* &* +@all").await;
    let url = redis.url();
    // As REDIS_USERNAME / REDIS_PASSWORD would set it, without touching this process's environment.
    let mut config = tiercache::Config::default();
    config
        .apply_vars(|name| match name {
            "REDIS_URL" => Some(url.clone()),
            "REDIS_USERNAME" => Some("cache".into()),
            "REDIS_PASSWORD" => Some(PASSWORD.into()),
            _ => None,
        })
        .unwrap();
    let builder = Cache::builder()
        .config(config.clone())
        .namespace("apart")
        .require_redis_at_start(true);
    assert!(!format!("{builder:?} {config:?}").contains(PASSWORD));
    let a = builder.build().await.unwrap();
    let b = base(&url, "apart")
        .redis_username("cache")
        .redis_password(PASSWORD)
        .build()
        .await
        .unwrap();
    exercise(&a, &b).await;
    assert!(!format!("{a:?} {:?}", a.config()).contains(PASSWORD));

    // A wrong password fails, and neither it nor a URL's password shows anywhere.
    let logs = capture_logs();
    let wrong = format!("redis://cache:{PASSWORD}-wrong@127.0.0.1:{}", redis.port());
    let err = base(&wrong, "apart")
        .build()
        .await
        .expect_err("wrong password");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    // Started without fail-fast, the node logs that Redis is unreachable: without the password.
    let alone = base(&wrong, "apart")
        .require_redis_at_start(false)
        .connect_timeout(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    assert!(alone.admin().is_redis_unavailable());
    let logged = logs.lock().unwrap().clone();
    assert!(
        logged.contains("unreachable"),
        "the start was logged: {logged}"
    );
    assert!(!logged.contains(PASSWORD), "password in the log: {logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_authenticates_clients_takes_a_node_with_a_certificate_its_ca_signed() {
    let (redis, ca) = RedisServer::start_tls_authenticating_clients().unwrap();
    let url = redis.tls_url().unwrap();
    let with_cert = || {
        base(&url, "mtls")
            .tls_ca_cert_file(&ca.path)
            .tls_client_cert(&ca.client_cert_path, &ca.client_key_path)
    };
    let a = with_cert().build().await.unwrap();
    let b = with_cert().build().await.unwrap();
    exercise(&a, &b).await;

    // Trusting the server is not enough: it wants to see a certificate.
    let err = base(&url, "mtls")
        .tls_ca_cert_file(&ca.path)
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(300))
        .build()
        .await
        .expect_err("no client certificate");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // A certificate without its key is refused before any connection.
    let err = tiercache::Config::default()
        .apply_vars(|name| {
            (name == "TIERCACHE_TLS_CLIENT_CERT_FILE")
                .then(|| ca.client_cert_path.display().to_string())
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("TIERCACHE_TLS_CLIENT_KEY_FILE"),
        "{err}"
    );
}

/// A service that builds its own `redis::Client` (here with a client certificate the test CA
/// signed) hands it to the builder instead of a URL; status names the address, never the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_runs_on_a_redis_client_the_service_built() {
    let (redis, ca) = RedisServer::start_tls_authenticating_clients().unwrap();
    let url = redis.tls_url().unwrap();
    let client = || {
        redis::Client::build_with_tls(
            url.as_str(),
            redis::TlsCertificates {
                client_tls: Some(redis::ClientTlsConfig {
                    client_cert: std::fs::read(&ca.client_cert_path).unwrap(),
                    client_key: std::fs::read(&ca.client_key_path).unwrap(),
                }),
                root_cert: Some(std::fs::read(&ca.path).unwrap()),
            },
        )
        .unwrap()
    };
    let node = |namespace| {
        Cache::builder()
            .redis_client(client())
            .namespace(namespace)
            .heartbeat_interval(Duration::from_millis(100))
            .require_redis_at_start(true)
    };
    let a = node("from-client").build().await.unwrap();
    let b = node("from-client").build().await.unwrap();
    exercise(&a, &b).await;
    let named = &a.config().redis_url;
    assert!(named.starts_with("rediss://127.0.0.1:"), "{named}");

    // One server's client and cluster seeds at once are refused, naming both ways.
    let err = node("both")
        .cluster_urls([url.clone()])
        .build()
        .await
        .expect_err("a client and cluster seeds");
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("redis_client"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_ca_made_at_test_time() {
    let (redis, ca) = RedisServer::start_tls().unwrap();
    let url = redis.tls_url().unwrap();
    let a = base(&url, "tls")
        .tls_ca_cert_file(&ca.path)
        .build()
        .await
        .unwrap();
    let b = base(&url, "tls")
        .tls_ca_cert_file(&ca.path)
        .build()
        .await
        .unwrap();
    exercise(&a, &b).await;

    // The certificate is checked: without its CA the server is not trusted.
    let err = base(&url, "tls")
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .expect_err("an unknown CA");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // And the TLS port speaks nothing else.
    let plain = url.replacen("rediss://", "redis://", 1);
    assert!(base(&plain, "tls")
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(300))
        .build()
        .await
        .is_err());
}

/// Collects this test's log lines (a global subscriber: the other tests of this file log nothing
/// they would need to keep).
fn capture_logs() -> Arc<Mutex<String>> {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<String>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(buf));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::new(Mutex::new(String::new())));
    let out = sink.clone();
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || out.clone())
        .try_init();
    sink.0
}
