//! Shared set-up: a private Redis, a small SQLite file, the built `tiercache` binary, and service
//! nodes that store metrics snapshots as the demo's do.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tiercache::{Cache, Source};
use tiercache_demo::dataset::{generate_if_empty, DatasetSize};
use tiercache_widgets::{WidgetCacheMetricsService, WidgetDataAggregationService, WidgetType};

#[allow(unused_imports)]
pub use tiercache_testkit::{eventually, stop_node, RedisServer};

pub const DEADLINE: Duration = Duration::from_secs(10);

/// A private Redis and a small database, removed when dropped.
pub struct Fixture {
    pub redis: RedisServer,
    pub db: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
    }
}

/// A fresh temporary path for a database file.
fn temp_db() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "tiercache-cli-test-{}-{}.sqlite",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

impl Fixture {
    /// Redis only; the database path names no file.
    pub fn redis_only() -> Fixture {
        Fixture {
            redis: RedisServer::start().expect("start a private redis-server"),
            db: temp_db(),
        }
    }

    /// Redis and a small generated database.
    pub async fn with_data() -> Fixture {
        let fixture = Fixture::redis_only();
        let data = WidgetDataAggregationService::open(&fixture.db).unwrap();
        generate_if_empty(&data, DatasetSize::small(), 7, chrono::Utc::now())
            .await
            .unwrap();
        fixture
    }

    /// `tiercache <args>` against this fixture in `namespace`, with a clean environment, stdin
    /// closed and stdout a pipe (no terminal).
    pub fn run(&self, namespace: &str, args: &[&str]) -> Run {
        self.run_env(namespace, args, &[])
    }

    /// [`Fixture::run`] with extra environment variables.
    pub fn run_env(&self, namespace: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let url = self.redis.url();
        let mut full = vec!["--redis-url", &url, "--namespace", namespace, "--db"];
        let db = self.db.display().to_string();
        full.push(&db);
        full.extend_from_slice(args);
        tiercache(&full, env)
    }

    /// A cache node of `namespace` in this test process.
    pub async fn node(&self, namespace: &str) -> Cache {
        Cache::builder()
            .redis_url(&self.redis.url())
            .namespace(namespace)
            .heartbeat_interval(Duration::from_millis(100))
            .build()
            .await
            .unwrap()
    }

    /// A raw connection to the cache's database, for planting and checking keys.
    pub async fn raw(&self) -> redis::aio::MultiplexedConnection {
        self.redis.connection_db(1).await.unwrap()
    }
}

/// What a run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Asserts it exited with `code` and printed each of `texts` on stdout.
    pub fn assert_stdout(&self, code: i32, texts: &[&str]) {
        self.assert_printed(code, ("stdout", &self.stdout), texts);
    }

    /// Asserts it exited with `code` and printed each of `texts` on stderr.
    pub fn assert_stderr(&self, code: i32, texts: &[&str]) {
        self.assert_printed(code, ("stderr", &self.stderr), texts);
    }

    fn assert_printed(&self, code: i32, (stream, printed): (&str, &str), texts: &[&str]) {
        assert_eq!(self.code, code, "{self:?}");
        for text in texts {
            assert!(printed.contains(text), "{text:?} on {stream}: {self:?}");
        }
    }
}

/// The built binary with `args`, a clean environment plus `env`.
pub fn tiercache(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_tiercache"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Reads of one widget type, as a service node records them.
pub struct Reads {
    pub widget: WidgetType,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
}

/// Records `reads` into a metrics service over `cache` and stores one snapshot, as the demo's
/// snapshot schedule does.
pub async fn report(cache: &Cache, reads: &[Reads]) -> WidgetCacheMetricsService {
    let metrics = WidgetCacheMetricsService::for_cache(cache);
    for r in reads {
        let took = Duration::from_micros(300);
        for _ in 0..r.hits {
            metrics.record(r.widget, Some(Source::L1), took);
        }
        for _ in 0..r.misses {
            metrics.record(r.widget, Some(Source::Loaded), took);
        }
        for _ in 0..r.errors {
            metrics.record(r.widget, None, took);
        }
    }
    let snapshot = metrics.snapshot(cache).await;
    metrics.record_snapshot(&snapshot).await.unwrap();
    metrics
}

/// Whether `path` exists (for the database fixture).
pub fn exists(path: &Path) -> bool {
    path.exists()
}
