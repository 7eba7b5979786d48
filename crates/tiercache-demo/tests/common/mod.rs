//! Runs the built `tiercache-demo` binary as a user would: a child process on free ports, over a
//! private Redis and a temporary SQLite file, stopped with SIGTERM.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
#[allow(unused_imports)]
pub use tiercache_testkit::{eventually, RedisServer};

/// Generous: a debug build on a busy 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Donations generated for a test: enough for every widget to have figures, quick to write.
pub const DONATIONS: &str = "3000";

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A directory of its own: tests of one binary run at once, and two of them may pass the same
    /// name (every failing start does).
    pub fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tiercache-demo-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running demo process.
pub struct Demo {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>` of each node, in order.
    pub urls: Vec<String>,
    /// Every line the process printed so far (stdout and stderr).
    lines: mpsc::Receiver<String>,
    pub printed: Vec<String>,
    /// The directory of the database when the demo owns it ([`Demo::start`]).
    dir: Option<TempDir>,
}

impl Demo {
    /// Starts the demo with `--port 0`, a fresh database, and `args` (e.g. `--redis-url`).
    pub fn start(name: &str, args: &[&str]) -> Demo {
        let dir = TempDir::new(name);
        let mut demo = Demo::start_over(&dir.0.join("demo.sqlite"), args);
        demo.dir = Some(dir);
        demo
    }

    /// Starts two nodes over `redis`, a fresh database and the defaults otherwise.
    pub fn two_nodes(name: &str, redis: &RedisServer) -> Demo {
        Demo::start(name, &["--nodes", "2", "--redis-url", &redis.url()])
    }

    /// Starts one node over `redis` and a fresh database, asking writes and the status API for
    /// `token`.
    pub fn with_admin_token(name: &str, redis: &RedisServer, token: &str) -> Demo {
        let url = redis.url();
        let args = ["--nodes", "1", "--redis-url", &url, "--admin-token", token];
        Demo::start(name, &args)
    }

    /// Starts the demo with `--port 0` over the database file `db`, which the caller keeps (so
    /// several runs can share it), and `args`.
    pub fn start_over(db: &Path, args: &[&str]) -> Demo {
        // A test that needs more data says so with its own --donations.
        let donations: &[&str] = if args.contains(&"--donations") {
            &[]
        } else {
            &["--donations", DONATIONS]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_tiercache-demo"))
            .args(["--port", "0", "--db"])
            .arg(db)
            .args(donations)
            .args(args)
            .env_remove("REDIS_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the demo binary starts");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        let mut demo = Demo {
            child: Some(child),
            urls: Vec::new(),
            lines,
            printed: Vec::new(),
            dir: None,
        };
        demo.wait_for_line("ready:");
        demo.urls = demo
            .printed
            .iter()
            .filter(|l| l.starts_with("node-"))
            .filter_map(|l| l.split_once(": ").map(|(_, url)| url.to_owned()))
            .collect();
        demo
    }

    /// Runs the demo with `args`, expecting it to fail at start; returns what it printed.
    pub fn start_failing(args: &[&str]) -> String {
        let dir = TempDir::new("failing");
        let output = Command::new(env!("CARGO_BIN_EXE_tiercache-demo"))
            .args(["--port", "0", "--donations", "10", "--db"])
            .arg(dir.0.join("demo.sqlite"))
            .args(args)
            .env_remove("REDIS_URL")
            .stdin(Stdio::null())
            .output()
            .expect("the demo binary runs");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !output.status.success(),
            "expected a failure, got: {printed}"
        );
        printed
    }

    /// Waits until the process prints a line containing `needle`; panics with what it printed if
    /// it does not within [`DEADLINE`].
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.printed.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = DEADLINE.saturating_sub(started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.printed.push(line),
                Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the demo never printed {needle:?}; it printed:\n{}",
                        self.printed.join("\n")
                    )
                }
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Kills the process with SIGKILL, as a crash or an OOM kill would, and waits for it to exit.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the exit, at most `within`.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.send_term();
        self.wait_exit(within)
    }

    /// Sends SIGTERM, without waiting.
    pub fn send_term(&self) {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for the exit, at most `within`; kills the process and panics past it.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.printed.push(line);
                }
                return status;
            }
            if started.elapsed() > within {
                let _ = child.kill();
                panic!("the demo did not exit within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP client with a timeout, so a hung server fails the test instead of hanging it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// GET `url`, returning the status and the JSON body.
pub async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// POST `body` as JSON text to `url`, returning the status and the JSON body.
pub async fn post(client: &reqwest::Client, url: &str, body: &str) -> (u16, Value) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Records a donation (`body`, JSON) on the node at `base` and returns what it stored; anything but
/// 201 Created fails the test.
pub async fn donate(client: &reqwest::Client, base: &str, body: &str) -> Value {
    let (status, stored) = post(client, &format!("{base}/api/donations"), body).await;
    assert_eq!(status, 201, "{stored}");
    stored
}

/// `total_donations` this month on node `url`: (count, total in cents, source).
pub async fn total(client: &reqwest::Client, url: &str, query: &str) -> (i64, i64, String) {
    let (status, body) = get(
        client,
        &format!("{url}/api/widgets/total_donations?range=this_month{query}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        body["data"]["count"].as_i64().unwrap(),
        body["data"]["total_cents"].as_i64().unwrap(),
        body["source"].as_str().unwrap().to_owned(),
    )
}

/// A raw TCP connection to a node, for what an HTTP client library will not send: half a header,
/// a body that never ends, a connection left idle.
pub struct Raw {
    stream: tokio::net::TcpStream,
    /// Bytes read and not yet consumed by [`Raw::response`].
    pending: Vec<u8>,
}

/// How a [`Raw`] connection ended when it was read to its end.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server closed it (or reset it) after `Raw::until_closed` began, with these bytes left.
    Closed(Vec<u8>),
    /// Still open when the wait ran out.
    StillOpen,
}

impl Raw {
    /// Connects to `url` (`http://127.0.0.1:<port>`).
    pub async fn connect(url: &str) -> Raw {
        let addr = url.trim_start_matches("http://");
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        Raw {
            stream,
            pending: Vec::new(),
        }
    }

    /// Writes `text` as it is.
    pub async fn send(&mut self, text: &str) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(text.as_bytes()).await.unwrap();
    }

    /// Reads one answer with a `Content-Length` body: (status, head, body). Panics when none
    /// arrives within [`DEADLINE`].
    pub async fn response(&mut self) -> (u16, String, String) {
        use tokio::io::AsyncReadExt;
        let read = async {
            loop {
                if let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if self.pending.len() >= end + 4 + length {
                        let body =
                            String::from_utf8_lossy(&self.pending[end + 4..end + 4 + length])
                                .into_owned();
                        self.pending.drain(..end + 4 + length);
                        let status = head
                            .split_whitespace()
                            .nth(1)
                            .and_then(|s| s.parse().ok())
                            .unwrap();
                        return (status, head, body);
                    }
                }
                let mut buf = [0u8; 4096];
                let n = self.stream.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "closed before a whole answer: {:?}",
                    String::from_utf8_lossy(&self.pending)
                );
                self.pending.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(DEADLINE, read)
            .await
            .expect("an answer within the deadline")
    }

    /// Reads until the server closes the connection or `within` passes.
    pub async fn until_closed(&mut self, within: Duration) -> Ending {
        use tokio::io::AsyncReadExt;
        let mut left = std::mem::take(&mut self.pending);
        let read = async {
            let mut buf = [0u8; 4096];
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => left.extend_from_slice(&buf[..n]),
                }
            }
        };
        match tokio::time::timeout(within, read).await {
            Ok(()) => Ending::Closed(left),
            Err(_) => Ending::StillOpen,
        }
    }
}
