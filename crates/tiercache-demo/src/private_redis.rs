//! The redis-server the demo starts for itself when no Redis answers and none was named (README's
//! first command on a fresh machine): on a free loopback port, writing nothing to disk, stopped when
//! the demo stops. The demo reaches it only through tiercache, as it would any Redis; this module
//! only runs the process.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh redis-server may take to listen.
const STARTUP: Duration = Duration::from_secs(10);
/// Ports tried: another process may take the free port found before the server binds it.
const ATTEMPTS: usize = 5;

/// A running redis-server of this process; killed, and its directory removed, on drop.
#[derive(Debug)]
pub struct PrivateRedis {
    child: Child,
    port: u16,
    /// Its working directory (it writes nothing there with persistence off, but needs one).
    dir: PathBuf,
}

impl PrivateRedis {
    /// Starts `redis-server` from `PATH` and waits until it listens. Blocking.
    pub fn start() -> Result<PrivateRedis, String> {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            match Self::try_start() {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn try_start() -> Result<PrivateRedis, String> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|probe| probe.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let dir = std::env::temp_dir().join(format!(
            "tiercache-demo-redis-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(if e.kind() == std::io::ErrorKind::NotFound {
                    "redis-server is not on PATH (scripts/ensure-redis installs it)".to_owned()
                } else {
                    format!("redis-server did not start: {e}")
                });
            }
        };
        // From here on the drop stops the process and removes the directory, whatever happens.
        let mut server = PrivateRedis { child, port, dir };
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("redis-server exited at start ({status})"));
            }
            if started.elapsed() > STARTUP {
                return Err(format!(
                    "redis-server did not listen on {port} within {STARTUP:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_server_listens_until_dropped() {
        let server = PrivateRedis::start().expect("redis-server starts");
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port));
        assert!(TcpStream::connect(address).is_ok(), "it listens");
        assert!(server.url().ends_with(&format!(":{}", server.port)));
        let dir = server.dir.clone();
        drop(server);
        assert!(!dir.exists(), "its directory is removed");
        // The port closes once the process is gone (the kill is waited for in the drop).
        assert!(TcpStream::connect(address).is_err(), "it stopped");
    }
}
