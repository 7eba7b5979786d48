//! One private `redis-server` process.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::TestkitError;

const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long [`RedisServer::cmd`] waits for a reply through `redis-cli`: the plain client waits
/// forever, but a process run for one command must end.
const CLI_REPLY_DEADLINE: Duration = Duration::from_secs(30);

/// A `redis-server` on a free loopback port, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    /// The port [`RedisServer::url`] names and the testkit talks to: the plain port, or the TLS
    /// port of a TLS-only server.
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    /// A configuration file given as `redis-server`'s first argument
    /// ([`RedisServer::start_with_config`]): its settings then stand, only the port, directory, log
    /// file and foreground run given on the command line over them.
    config: Option<PathBuf>,
    child: Option<Child>,
    tls: Option<Tls>,
}

/// How a server takes TLS connections. Either way its certificate is `server.pem` (key
/// `server.key`) in `certs`, signed by `ca.pem` there (see [`crate::TestCa`]); `certs` is removed
/// on drop.
#[derive(Debug, Clone)]
enum Tls {
    /// On a second port; the plain one stays open ([`RedisServer::start_tls`]).
    Beside {
        port: u16,
        certs: PathBuf,
        /// Whether the TLS port refuses a client without a certificate the CA signed.
        authenticate_clients: bool,
    },
    /// On [`RedisServer::port`] alone, the plain port closed (`--port 0`): the nodes of
    /// [`crate::RedisCluster::start_tls`], which share one `certs` (the first node dropped removes
    /// it). The testkit talks to such a server through `redis-cli --tls`.
    Only { certs: PathBuf },
}

impl Tls {
    /// The `redis-server` flags that open the TLS port `port` with the certificates in `certs`.
    fn flags(port: u16, certs: &Path, authenticate_clients: bool) -> Vec<String> {
        let file = |name: &str| certs.join(name).to_string_lossy().into_owned();
        [
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            file("server.pem"),
            "--tls-key-file".to_owned(),
            file("server.key"),
            "--tls-ca-cert-file".to_owned(),
            file("ca.pem"),
            "--tls-auth-clients".to_owned(),
            if authenticate_clients { "yes" } else { "no" }.to_owned(),
        ]
        .into()
    }

    fn certs(&self) -> &Path {
        match self {
            Tls::Beside { certs, .. } | Tls::Only { certs } => certs,
        }
    }
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

fn unique_dir(name: &str) -> Result<PathBuf, TestkitError> {
    let dir = std::env::temp_dir().join(format!("tiercache-testkit-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| TestkitError::Spawn {
        what: format!("temp dir {}", dir.display()),
        source,
    })?;
    Ok(dir)
}

/// A fresh directory holding a test CA and a server certificate for `127.0.0.1` it signs (see
/// [`crate::TestCa`]), for servers started with TLS. The caller removes it (a server holding it
/// does on drop).
pub(crate) fn cert_dir() -> Result<(PathBuf, crate::tls::TestCa), TestkitError> {
    // Numbered within the process (a probed port, as the servers' own directories use, may come
    // back twice); `certs-` keeps these apart from the servers' directories.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = unique_dir(&format!("certs-{}", NEXT.fetch_add(1, Ordering::Relaxed)))?;
    match crate::tls::TestCa::write_to(&dir) {
        Ok(ca) => Ok((dir, ca)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// Whether `program` can be found on PATH.
pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

/// Runs `command` with stdin closed and stdout and stderr captured (read as they come, so a chatty
/// process cannot block on a full pipe), killing it if it has not ended within `deadline`: its
/// status then tells it was killed. `what` names it in errors.
pub(crate) fn run_within(
    command: &mut Command,
    deadline: Duration,
    what: &str,
) -> Result<Output, TestkitError> {
    fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let spawn_error = |source| TestkitError::Spawn {
        what: what.to_owned(),
        source,
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(spawn_error)? {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            break child.wait().map_err(spawn_error)?;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // The readers only read; one that panicked anyway leaves its output empty.
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
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
        Self::start_tls_beside(false)
    }

    /// [`RedisServer::start_tls`] whose TLS port refuses clients that present no certificate signed
    /// by the CA (`tls-auth-clients yes`): [`crate::TestCa::client_cert_path`] is one it accepts.
    pub fn start_tls_authenticating_clients(
    ) -> Result<(RedisServer, crate::tls::TestCa), TestkitError> {
        Self::start_tls_beside(true)
    }

    fn start_tls_beside(
        authenticate_clients: bool,
    ) -> Result<(RedisServer, crate::tls::TestCa), TestkitError> {
        let (certs, ca) = cert_dir()?;
        let tls = free_port().map(|port| Tls::Beside {
            port,
            certs: certs.clone(),
            authenticate_clients,
        });
        match tls.and_then(|tls| Self::launch(&[], Some(&tls))) {
            Ok(server) => Ok((server, ca)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&certs);
                Err(e)
            }
        }
    }

    /// Starts a server with extra `redis-server` flags that takes TLS connections only, on
    /// [`RedisServer::port`], with the certificates in `certs` (made by [`cert_dir`]); the plain port
    /// is closed (`--port 0`). `certs` is removed when the server is dropped.
    pub(crate) fn start_tls_only_with(
        args: &[&str],
        certs: &Path,
    ) -> Result<RedisServer, TestkitError> {
        Self::launch(
            args,
            Some(&Tls::Only {
                certs: certs.to_owned(),
            }),
        )
    }

    /// `rediss://127.0.0.1:<tls port>` of a server started with [`RedisServer::start_tls`], or of a
    /// TLS-only node of [`crate::RedisCluster::start_tls`] (its [`RedisServer::url`]); `None` for a
    /// plain server.
    pub fn tls_url(&self) -> Option<String> {
        match &self.tls {
            Some(Tls::Beside { port, .. }) => Some(format!("rediss://127.0.0.1:{port}")),
            Some(Tls::Only { .. }) => Some(self.url()),
            None => None,
        }
    }

    /// The CA file (`ca.pem`) a client must trust to reach this server at [`RedisServer::url`]:
    /// `Some` only for a TLS-only server.
    pub(crate) fn tls_only_ca_file(&self) -> Option<PathBuf> {
        match &self.tls {
            Some(Tls::Only { certs }) => Some(certs.join("ca.pem")),
            _ => None,
        }
    }

    /// Starts a server with extra `redis-server` flags, e.g. `["--maxmemory", "1mb"]`.
    pub fn start_with(args: &[&str]) -> Result<RedisServer, TestkitError> {
        Self::launch(args, None)
    }

    /// Starts a server from the configuration file `config` (as `redis-server <config>` would), on a
    /// free port and in a directory of its own: only `--port`, `--dir`, `--logfile` and
    /// `--daemonize no` are given over it, so what the file says about persistence, memory or
    /// binding is what the server runs with and a test can read it back with `CONFIG GET`.
    pub fn start_with_config(config: &Path) -> Result<RedisServer, TestkitError> {
        Self::launch_from(Some(config), &[], None)
    }

    fn launch(args: &[&str], tls: Option<&Tls>) -> Result<RedisServer, TestkitError> {
        Self::launch_from(None, args, tls)
    }

    fn launch_from(
        config: Option<&Path>,
        args: &[&str],
        tls: Option<&Tls>,
    ) -> Result<RedisServer, TestkitError> {
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
                dir: unique_dir(&port.to_string())?,
                extra_args: extra_args.clone(),
                config: config.map(Path::to_path_buf),
                child: None,
                tls: tls.cloned(),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => {
                    // Dropped without its TLS settings, which would remove the certificates the
                    // next try needs.
                    server.tls = None;
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(TestkitError::Cluster("no free port".into())))
    }

    fn spawn(&mut self) -> Result<(), TestkitError> {
        let (port, tls_flags) = match &self.tls {
            None => (self.port, Vec::new()),
            Some(Tls::Beside {
                port,
                certs,
                authenticate_clients,
            }) => (self.port, Tls::flags(*port, certs, *authenticate_clients)),
            Some(Tls::Only { certs }) => (0, Tls::flags(self.port, certs, false)),
        };
        let port = port.to_string();
        let log = self.dir.join("redis.log");
        let mut command = Command::new("redis-server");
        if let Some(config) = &self.config {
            // The file first: later arguments override it, and these are only what must differ
            // between parallel tests (port, directory, log) or keep the process ours to kill.
            command
                .arg(config)
                .args(["--port", &port, "--daemonize", "no"])
                .arg("--dir")
                .arg(&self.dir)
                .arg("--logfile")
                .arg(&log);
        } else {
            command
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
                .args(&tls_flags)
                .args(&self.extra_args);
        }
        let child = command
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

    /// `redis://127.0.0.1:<port>`, or `rediss://127.0.0.1:<port>` for a TLS-only node of
    /// [`crate::RedisCluster::start_tls`].
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.port)
    }

    /// `redis://127.0.0.1:<port>/<db>` (`rediss://` for a TLS-only node, as [`RedisServer::url`]).
    pub fn url_db(&self, db: u8) -> String {
        format!("{}://127.0.0.1:{}/{db}", self.scheme(), self.port)
    }

    fn scheme(&self) -> &'static str {
        match self.tls {
            Some(Tls::Only { .. }) => "rediss",
            _ => "redis",
        }
    }

    /// Kills the server with SIGKILL and waits for it to exit. Its data is gone (nothing is on disk).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (killing it first if it runs). It comes back empty,
    /// with a new `run_id`, unless a snapshot was saved (`SAVE`): then it loads that snapshot, as a
    /// Redis restored from an older backup does.
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

    /// Puts the server over its memory limit with a policy that evicts nothing (`noeviction`): 1 MiB
    /// of filler in database 0, then a limit 256 KiB under what it uses, so every command that needs
    /// memory is refused with `OOM` while reads, deletes and `PUBLISH` still work. Undo it with
    /// [`RedisServer::memory_back`].
    pub async fn out_of_memory(&self) -> Result<(), TestkitError> {
        let mut conn = self.connection().await?;
        let filler = vec![b'x'; 4 << 10];
        for i in 0..256 {
            let _: () = redis::cmd("SET")
                .arg(format!("filler:{i}"))
                .arg(&filler)
                .query_async(&mut conn)
                .await?;
        }
        let used: u64 = self
            .info_field("memory", "used_memory")?
            .parse()
            .map_err(|_| TestkitError::Cluster("used_memory is not a number".into()))?;
        self.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])?;
        self.cmd(&[
            "CONFIG",
            "SET",
            "maxmemory",
            &(used - (256 << 10)).to_string(),
        ])?;
        Ok(())
    }

    /// Lifts the limit [`RedisServer::out_of_memory`] set and drops its filler (database 0).
    pub fn memory_back(&self) -> Result<(), TestkitError> {
        self.cmd(&["CONFIG", "SET", "maxmemory", "0"])?;
        self.cmd(&["FLUSHDB"]).map(|_| ())
    }

    /// Saves a snapshot of the data now (`SAVE`), for [`RedisServer::restore_snapshot`].
    pub fn save_snapshot(&self) -> Result<(), TestkitError> {
        self.cmd(&["SAVE"]).map(|_| ())
    }

    /// Kills the server and starts it again from the snapshot [`RedisServer::save_snapshot`] saved, as
    /// a Redis restored from an older backup (or one whose AOF lost its last writes) comes back: what
    /// was written since is gone, the rest is as it was, the epoch included. The snapshot is then
    /// removed, so a later [`RedisServer::restart`] comes back empty again.
    pub fn restore_snapshot(&mut self) -> Result<(), TestkitError> {
        self.restart()?;
        let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        Ok(())
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
        self.cmd_within(
            &["DEBUG", "SLEEP", &seconds],
            Duration::from_millis(500),
            Some(d + Duration::from_secs(10)),
        )
        .map(|_| ())
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

    /// The value `CONFIG GET <parameter>` reads back (as Redis prints it: sizes in bytes, an
    /// empty string for an empty setting).
    pub fn config_get(&self, parameter: &str) -> Result<String, TestkitError> {
        let text = |v: &redis::Value| match v {
            redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            redis::Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        };
        let reply = self.cmd(&["CONFIG", "GET", parameter])?;
        let value = match &reply {
            redis::Value::Array(pair) if pair.len() == 2 => text(&pair[1]),
            redis::Value::Map(pairs) if pairs.len() == 1 => text(&pairs[0].1),
            _ => None,
        };
        value.ok_or_else(|| {
            TestkitError::Cluster(format!("CONFIG GET {parameter} replied {reply:?}"))
        })
    }

    /// Runs one command on a fresh blocking connection (handy from sync code and `Drop`).
    ///
    /// On a TLS-only node of [`crate::RedisCluster::start_tls`] the command goes through
    /// `redis-cli --tls`, trusting the cluster's test CA, and the reply is its text: `Okay` for
    /// `OK`, otherwise one `BulkString` (an integer as its digits, an array one element a line, nil
    /// empty). An error reply is then a [`TestkitError::Cluster`] rather than a
    /// [`TestkitError::Redis`].
    pub fn cmd(&self, args: &[&str]) -> Result<redis::Value, TestkitError> {
        self.cmd_within(args, Duration::from_millis(500), None)
    }

    /// [`RedisServer::cmd`] connecting within `connect` and waiting `reply` at most for the reply
    /// (forever for a plain server when `None`, 30 s through `redis-cli`).
    pub(crate) fn cmd_within(
        &self,
        args: &[&str],
        connect: Duration,
        reply: Option<Duration>,
    ) -> Result<redis::Value, TestkitError> {
        let (name, rest) = args
            .split_first()
            .ok_or_else(|| TestkitError::Cluster("empty command".into()))?;
        if let Some(ca) = self.tls_only_ca_file() {
            return self.cli(&ca, args, connect + reply.unwrap_or(CLI_REPLY_DEADLINE));
        }
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_connection_with_timeout(connect)?;
        conn.set_read_timeout(reply)?;
        conn.set_write_timeout(reply)?;
        let mut cmd = redis::cmd(name);
        for a in rest {
            cmd.arg(*a);
        }
        Ok(cmd.query(&mut conn)?)
    }

    /// One command through `redis-cli --tls --cacert <ca>`, killed after `deadline`. The testkit's
    /// redis crate speaks TLS through rustls, which needs a crypto provider the testkit does not
    /// depend on (tiercache's tests bring one, a testkit-only build has none); `redis-cli` needs
    /// nothing, and checks the server's certificate against `ca` all the same.
    fn cli(
        &self,
        ca: &Path,
        args: &[&str],
        deadline: Duration,
    ) -> Result<redis::Value, TestkitError> {
        let output = run_within(
            Command::new("redis-cli")
                .args(["--tls", "--cacert"])
                .arg(ca)
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                // Exit status 1 on an error reply (its text on stderr); replies as bare text.
                .args(["-e", "--raw"])
                .args(args),
            deadline,
            "redis-cli",
        )?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(TestkitError::Cluster(format!(
                "redis-cli --tls -p {} {} ended with {}: {}{}",
                self.port,
                args.join(" "),
                output.status,
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let text = stdout.strip_suffix('\n').unwrap_or(&stdout);
        Ok(if text == "OK" {
            redis::Value::Okay
        } else {
            redis::Value::BulkString(text.as_bytes().to_vec())
        })
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
    ///
    /// Plain servers only, as the other async helpers that use it ([`RedisServer::connection`],
    /// [`RedisServer::kill_pubsub_clients`], [`RedisServer::kill_normal_clients`],
    /// [`RedisServer::flushall`], [`RedisServer::run_id`]): on a TLS-only node of
    /// [`crate::RedisCluster::start_tls`] they fail with [`TestkitError::Cluster`]; use
    /// [`RedisServer::cmd`] there, or a TLS client of your own trusting the cluster's CA.
    pub async fn connection_db(
        &self,
        db: u8,
    ) -> Result<redis::aio::MultiplexedConnection, TestkitError> {
        if self.tls_only_ca_file().is_some() {
            return Err(TestkitError::Cluster(format!(
                "the node on port {} takes TLS only; the testkit's async connections are plain",
                self.port
            )));
        }
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
        if let Some(tls) = &self.tls {
            let _ = std::fs::remove_dir_all(tls.certs());
        }
    }
}
