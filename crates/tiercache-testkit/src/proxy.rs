//! A fault-injecting TCP proxy to put between cache nodes and Redis: partitions, added latency and
//! reset connections, for one node while the others keep talking to Redis directly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::TestkitError;

/// What the proxy does to traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Faults {
    /// Nothing gets through: bytes are swallowed and new connections are held silent, as in a network
    /// partition. Connections alive at the partition are closed when it heals.
    partitioned: bool,
    /// Connections opened before this generation are closed.
    generation: u64,
    /// Added to every chunk forwarded, each way (a delay line: chunks in flight do not wait for each
    /// other).
    latency: Duration,
}

/// A TCP proxy on a free loopback port forwarding to a Redis server; stopped on drop.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    faults: Arc<watch::Sender<Faults>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `127.0.0.1:<target_port>`. Needs a Tokio runtime.
    pub async fn start(target_port: u16) -> Result<FaultProxy, TestkitError> {
        let listener =
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|source| TestkitError::Spawn {
                    what: "a proxy listener".into(),
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| TestkitError::Spawn {
                what: "a proxy listener".into(),
                source,
            })?;
        let (faults, _) = watch::channel(Faults {
            partitioned: false,
            generation: 0,
            latency: Duration::ZERO,
        });
        let faults = Arc::new(faults);
        let target = SocketAddr::from(([127, 0, 0, 1], target_port));
        let accept = tokio::spawn(accept_loop(listener, target, faults.clone()));
        Ok(FaultProxy {
            addr,
            faults,
            accept,
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `redis://127.0.0.1:<proxy port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    /// Cuts the node off: nothing passes either way and new connections hang, until [`FaultProxy::heal`].
    pub fn partition(&self) {
        self.faults.send_modify(|f| f.partitioned = true);
    }

    /// Ends a partition: connections held through it are closed (clients reconnect), new ones pass.
    pub fn heal(&self) {
        self.faults.send_modify(|f| {
            f.partitioned = false;
            f.generation += 1;
        });
    }

    /// Closes every open connection at once (clients see their connection drop and reconnect).
    pub fn reset_connections(&self) {
        self.faults.send_modify(|f| f.generation += 1);
    }

    /// Adds `latency` to every chunk forwarded, each way (`Duration::ZERO` to stop).
    pub fn set_latency(&self, latency: Duration) {
        self.faults.send_modify(|f| f.latency = latency);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    faults: Arc<watch::Sender<Faults>>,
) {
    // Connection tasks live in the set, so stopping this loop stops them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                connections.spawn(connection(client, target, faults.subscribe()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(client: TcpStream, target: SocketAddr, mut faults: watch::Receiver<Faults>) {
    let born = faults.borrow().generation;
    if faults.borrow().partitioned {
        // Held silent, then closed when the partition heals.
        let _ = faults.wait_for(|f| f.generation != born).await;
        return;
    }
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    tokio::select! {
        () = pump(client_read, upstream_write, faults.clone(), born) => {}
        () = pump(upstream_read, client_write, faults, born) => {}
    }
}

/// Forwards one direction until either side closes or a fault ends the connection. Added latency is
/// a delay line, as on a long link: each chunk arrives `latency` after it was sent, however many are
/// in flight, so commands pipelined on one connection are not held up behind each other's delay.
async fn pump(
    from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    faults: watch::Receiver<Faults>,
    born: u64,
) {
    let (in_flight, arriving) = mpsc::unbounded_channel();
    let deliver = deliver(to, arriving);
    tokio::pin!(deliver);
    let ended = tokio::select! {
        ended = take_in(from, in_flight, faults, born) => ended,
        () = &mut deliver => return,
    };
    if ended == Ended::Closed {
        // What was sent before the sender closed still arrives.
        deliver.await;
    }
}

/// Why [`take_in`] stopped reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The sending side closed its half: what is in flight still arrives.
    Closed,
    /// A fault ended the connection: nothing more arrives.
    Cut,
}

/// Reads chunks and puts them in flight, each with the time it is due on the other side.
async fn take_in(
    mut from: tokio::net::tcp::OwnedReadHalf,
    in_flight: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    mut faults: watch::Receiver<Faults>,
    born: u64,
) -> Ended {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            changed = faults.changed() => {
                if changed.is_err() || faults.borrow().generation != born {
                    return Ended::Cut;
                }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return Ended::Closed,
            Ok(n) => n,
        };
        let now = *faults.borrow();
        if now.generation != born {
            return Ended::Cut;
        }
        if now.partitioned {
            // Swallowed; the connection stays open and silent until the partition heals.
            let _ = faults.wait_for(|f| f.generation != born).await;
            return Ended::Cut;
        }
        if in_flight
            .send((Instant::now() + now.latency, buf[..n].to_vec()))
            .is_err()
        {
            return Ended::Cut;
        }
    }
}

/// Writes each chunk in flight once it is due, in order. A partition or reset acts on what is sent
/// after it: what was already in flight arrives (tests rely on a write that left before a partition
/// landing during it).
async fn deliver(
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut arriving: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
) {
    while let Some((due, chunk)) = arriving.recv().await {
        tokio::time::sleep_until(due).await;
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
}
