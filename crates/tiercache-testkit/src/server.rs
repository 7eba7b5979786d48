//! One private `redis-server` process.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestkitError;

const READY_DEADLINE: Duration = Duration::from_secs(10);

/// A `redis-server` on a free loopback port, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    child: Option<Child>,
    tls_port: Option<u16>,
    /// Where the TLS certificates live (removed on drop).
    cert_dir: Option<PathBuf>,
}

/// A port nothing listens on now (the OS picks it; another process may still take it first).
pub(crate) fn free_port() -> Result<u16, TestkitError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| TestkitError::Spawn {
        what: "a probe socket".into(),
        source,
    })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| TestkitError::Spawn {
            what: "a probe socket".into(),
            source,
        })
}

fn unique_dir(port: u16) -> Result<PathBuf, TestkitError> {
    let dir = std::env::temp_dir().join(format!("tiercache-testkit-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| TestkitError::Spawn {
        what: format!("temp dir {}", dir.display()),
        source,
    })?;
    Ok(dir)
}

/// Whether `program` can be found on PATH.
pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

impl RedisServer {
    /// Starts a server with the project's test settings (no persistence, loopback only).
    pub fn start() -> Result<RedisServer, TestkitError> {
        Self::start_with(&[])
    }

    /// Starts a server that also listens with TLS on a second port ([`RedisServer::tls_url`]), with a
    /// certificate for `127.0.0.1` and `localhost` signed by a CA made for this server alone. Returns
    /// the server and the CA certificate (PEM) a client must trust. The plain port stays open for
    /// the testkit's own commands.
    pub fn start_tls() -> Result<(RedisServer, crate::tls::TestCa), TestkitError> {
        let tls_port = free_port()?;
        let dir = unique_dir(tls_port)?;
        let ca = crate::tls::TestCa::write_to(&dir)?;
        let files = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let tls_port_arg = tls_port.to_string();
        let (cert, key, ca_file) = (files("server.pem"), files("server.key"), files("ca.pem"));
        let mut server = Self::start_with(&[
            "--tls-port",
            &tls_port_arg,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca_file,
            "--tls-auth-clients",
            "no",
        ])?;
        server.tls_port = Some(tls_port);
        server.cert_dir = Some(dir);
        Ok((server, ca))
    }

    /// `rediss://127.0.0.1:<tls port>` of a server started with [`RedisServer::start_tls`].
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| format!("rediss://127.0.0.1:{port}"))
    }

    /// Starts a server with extra `redis-server` flags, e.g. `["--maxmemory", "1mb"]`.
    pub fn start_with(args: &[&str]) -> Result<RedisServer, TestkitError> {
        if !on_path("redis-server") {
            return Err(TestkitError::NotFound("redis-server"));
        }
        let extra_args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        // Another process can grab the port between our probe and the server's bind: try a few.
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let mut server = RedisServer {
                port,
                dir: unique_dir(port)?,
                extra_args: extra_args.clone(),
                child: None,
                tls_port: None,
                cert_dir: None,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(TestkitError::Cluster("no free port".into())))
    }

    fn spawn(&mut self) -> Result<(), TestkitError> {
        let port = self.port.to_string();
        let log = self.dir.join("redis.log");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args([
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                "--protected-mode",
                "no",
                // DEBUG SLEEP for fault tests, from loopback only.
                "--enable-debug-command",
                "local",
            ])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| TestkitError::Spawn {
                what: "redis-server".into(),
                source,
            })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), TestkitError> {
        let started = Instant::now();
        while started.elapsed() < READY_DEADLINE {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: port taken or bad flag
                }
            }
            if self.cmd(&["PING"]).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        Err(TestkitError::NotReady {
            port: self.port,
            waited: started.elapsed(),
            log: tail,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>/<db>`.
    pub fn url_db(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server with SIGKILL and waits for it to exit. Its data is gone (nothing is on disk).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (killing it first if it runs). It comes back empty,
    /// with a new `run_id`.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.kill();
        let started = Instant::now();
        // The old socket may linger briefly; retry the bind for a moment.
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() > READY_DEADLINE => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Freezes the process (SIGSTOP) and resumes it (SIGCONT) after `d`, from a background thread:
    /// the server truly hangs, so clients see timeouts, not errors.
    pub fn pause(&self, d: Duration) {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return;
        };
        let signal = |sig: &str| {
            let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
        };
        signal("-STOP");
        std::thread::spawn(move || {
            std::thread::sleep(d);
            let _ = Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        });
    }

    /// `CLIENT PAUSE <ms> ALL`: the server stays up but holds every client's commands for `d`.
    pub fn client_pause(&self, d: Duration) -> Result<(), TestkitError> {
        let ms = d.as_millis().to_string();
        self.cmd(&["CLIENT", "PAUSE", &ms, "ALL"]).map(|_| ())
    }

    /// `DEBUG SLEEP`: the server blocks every client for `d` (from the calling thread, which waits
    /// with it).
    pub fn debug_sleep(&self, d: Duration) -> Result<(), TestkitError> {
        let seconds = format!("{:.3}", d.as_secs_f64());
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_millis(500))?;
        conn.set_read_timeout(Some(d + Duration::from_secs(10)))?;
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(seconds)
            .exec(&mut conn)?;
        Ok(())
    }

    /// One field of `INFO <section>` (such as `used_memory` or `evicted_keys`).
    pub fn info_field(&self, section: &str, field: &str) -> Result<String, TestkitError> {
        let info = match self.cmd(&["INFO", section])? {
            redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            redis::Value::VerbatimString { text, .. } => text,
            other => return Err(TestkitError::Cluster(format!("INFO replied {other:?}"))),
        };
        info.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| TestkitError::Cluster(format!("INFO {section} has no {field}")))
    }

    /// Runs one command on a fresh blocking connection (handy from sync code and `Drop`).
    pub fn cmd(&self, args: &[&str]) -> Result<redis::Value, TestkitError> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_millis(500))?;
        let (name, rest) = args
            .split_first()
            .ok_or_else(|| TestkitError::Cluster("empty command".into()))?;
        let mut cmd = redis::cmd(name);
        for a in rest {
            cmd.arg(*a);
        }
        Ok(cmd.query(&mut conn)?)
    }

    /// How many clients of `kind` (`normal`, `pubsub`, `replica`, `master`) are connected now, from
    /// `CLIENT LIST TYPE <kind>`: lets a test see a node's connections close without a client of its own.
    pub fn clients(&self, kind: &str) -> Result<usize, TestkitError> {
        let list = match self.cmd(&["CLIENT", "LIST", "TYPE", kind])? {
            redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            redis::Value::VerbatimString { text, .. } => text,
            other => {
                return Err(TestkitError::Cluster(format!(
                    "CLIENT LIST replied {other:?}"
                )))
            }
        };
        Ok(list.lines().filter(|l| !l.trim().is_empty()).count())
    }

    /// A raw async connection to database 0, for fault injection and assertions.
    pub async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, TestkitError> {
        self.connection_db(0).await
    }

    /// A raw async connection to database `db` (tiercache uses database 1 unless its URL names one).
    pub async fn connection_db(
        &self,
        db: u8,
    ) -> Result<redis::aio::MultiplexedConnection, TestkitError> {
        let client = redis::Client::open(self.url_db(db))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        Ok(client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// `CLIENT KILL TYPE pubsub`: drops every subscriber connection. Returns how many were killed.
    pub async fn kill_pubsub_clients(&self) -> Result<i64, TestkitError> {
        let mut conn = self.connection().await?;
        Ok(redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut conn)
            .await?)
    }

    /// `CLIENT KILL TYPE normal`: drops every ordinary connection, including the one used to send it.
    pub async fn kill_normal_clients(&self) -> Result<(), TestkitError> {
        let mut conn = self.connection().await?;
        let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query_async(&mut conn)
            .await;
        Ok(())
    }

    /// `FLUSHALL`.
    pub async fn flushall(&self) -> Result<(), TestkitError> {
        let mut conn = self.connection().await?;
        Ok(redis::cmd("FLUSHALL").query_async(&mut conn).await?)
    }

    /// The server's `run_id` (changes on every start).
    pub async fn run_id(&self) -> Result<String, TestkitError> {
        let mut conn = self.connection().await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        info.lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(|s| s.trim().to_owned())
            .ok_or_else(|| TestkitError::Cluster("INFO server has no run_id".into()))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(dir) = &self.cert_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
