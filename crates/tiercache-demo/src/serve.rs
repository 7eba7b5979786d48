//! Serving one node's listener with hyper's HTTP/1 server: a header-read and an idle timeout on
//! every connection, and a graceful stop.
//!
//! Two clocks, as nginx (`client_header_timeout`, `keepalive_timeout`) and Go's `net/http`
//! (`ReadHeaderTimeout`, `IdleTimeout`) keep them:
//!
//! - from the accept, and from the first byte of each later request, the whole header must arrive
//!   within the header-read timeout, however slowly its bytes trickle in;
//! - between an answer and the first byte of the next request, at most the idle timeout passes;
//! - while a request is being handled neither runs (the request timeout bounds it).
//!
//! hyper's own `header_read_timeout` is off: its clock also starts the moment a keep-alive
//! connection goes idle after an answer, so it cannot tell a client that sent half a header from
//! one keeping its connection for the next request, and at 5 s it would close every keep-alive
//! connection a dashboard holds between refreshes.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// Pause after an accept that failed for want of resources (file descriptors, memory): accepting
/// again at once would spin on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long a connection may take over a request's header, and wait idle between requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionTimeouts {
    /// From the accept, or from the first byte of a later request, to the end of its header.
    pub header_read: Duration,
    /// From an answer to the first byte of the next request.
    pub idle: Duration,
}

/// Serves `app` on `listener` until `stop` turns true, then stops accepting, lets every open
/// connection finish the request it is handling (idle ones close at once), and returns when the
/// last one has closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: ConnectionTimeouts,
    stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    // A clone of its own to wait on, so `stop` itself can be cloned for each connection.
    let mut stopping = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, app.clone(), timeouts, stop.clone()));
                }
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut stopping) => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Completes when `stop` turns true (or its sender is gone). The `Ref` `wait_for` returns is let
/// go at once: it holds a lock that must not live across an await.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Errors of one connection that went away before it was accepted; the listener is fine.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One connection, until the client closes it, a timeout closes it, or the stop lets its last
/// request finish.
async fn connection(
    stream: TcpStream,
    app: Router,
    timeouts: ConnectionTimeouts,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new(timeouts));
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let service = hyper::service::service_fn({
        let activity = activity.clone();
        move |request: hyper::Request<Incoming>| {
            let handling = Handling::start(activity.clone());
            let answer = app.clone().oneshot(request);
            async move {
                let response = answer.await;
                drop(handling);
                response
            }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        // Off, and kept by `Activity` instead: see the module's comment.
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "a connection ended with an error");
                }
                return;
            }
            expired = activity.expired() => {
                // No request is being handled: dropping the connection closes the socket, and
                // there is no answer to lose.
                tracing::debug!(?expired, "closing a connection");
                return;
            }
            () = stopped(&mut stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What a connection is doing, for its clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the end of a request's header, since the accept or its first byte.
    Header { since: Instant },
    /// Handling requests (HTTP/1 hands one at a time to the service).
    Busy { requests: usize },
    /// Answered; waiting for the first byte of the next request since `since`.
    Idle { since: Instant },
}

/// Which clock ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// The header-read timeout.
    Header,
    /// The idle timeout.
    Idle,
}

/// A connection's phase, moved by its reads ([`Watched`]) and its requests ([`Handling`]).
#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
    /// Wakes [`Activity::expired`] when the phase changes; `notify_one` keeps the wake-up when it
    /// is not waiting yet, so none is lost between reading the phase and waiting.
    changed: Notify,
    timeouts: ConnectionTimeouts,
}

impl Activity {
    fn new(timeouts: ConnectionTimeouts) -> Self {
        Activity {
            phase: Mutex::new(Phase::Header {
                since: Instant::now(),
            }),
            changed: Notify::new(),
            timeouts,
        }
    }

    /// Runs `change` on the phase and wakes the clock. A panic cannot leave a phase half-written
    /// (it is one `Copy` value), so a poisoned lock is still a good one.
    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let next = change(*phase);
        if next != *phase {
            *phase = next;
            self.changed.notify_one();
        }
    }

    /// Bytes came in: on an idle connection, the first byte of a request starts its header clock.
    /// Bytes of a request being handled (its body, or a pipelined request) change nothing; a
    /// pipelined request's header then has the idle timeout rather than the header timeout.
    fn bytes_arrived(&self) {
        self.update(|phase| match phase {
            Phase::Idle { .. } => Phase::Header {
                since: Instant::now(),
            },
            other => other,
        });
    }

    fn request_started(&self) {
        self.update(|phase| match phase {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests + 1,
            },
            Phase::Header { .. } | Phase::Idle { .. } => Phase::Busy { requests: 1 },
        });
    }

    fn request_finished(&self) {
        self.update(|phase| match phase {
            Phase::Busy { requests } if requests > 1 => Phase::Busy {
                requests: requests - 1,
            },
            _ => Phase::Idle {
                since: Instant::now(),
            },
        });
    }

    /// When the running clock runs out, and which; `None` while a request is being handled.
    fn deadline(&self) -> Option<(Instant, Expired)> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Header { since } => Some((since + self.timeouts.header_read, Expired::Header)),
            Phase::Idle { since } => Some((since + self.timeouts.idle, Expired::Idle)),
            Phase::Busy { .. } => None,
        }
    }

    /// Completes when a clock runs out.
    async fn expired(&self) -> Expired {
        loop {
            match self.deadline() {
                None => self.changed.notified().await,
                Some((at, expired)) => {
                    if at <= Instant::now() {
                        return expired;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

/// Marks a request as being handled until dropped (answered, or cancelled with its connection).
struct Handling(Arc<Activity>);

impl Handling {
    fn start(activity: Arc<Activity>) -> Self {
        activity.request_started();
        Handling(activity)
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A connection's socket that tells its [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(header_read: Duration) -> Activity {
        Activity::new(ConnectionTimeouts {
            header_read,
            idle: Duration::from_secs(60),
        })
    }

    #[tokio::test]
    async fn the_header_clock_runs_from_the_accept_and_the_idle_clock_after_an_answer() {
        let a = activity(Duration::from_secs(5));
        let first = a.deadline();
        assert!(matches!(first, Some((_, Expired::Header))), "{first:?}");
        a.bytes_arrived();
        assert_eq!(
            a.deadline(),
            first,
            "trickled bytes do not move the header's deadline"
        );
        a.request_started();
        assert_eq!(a.deadline(), None, "no clock while a request is handled");
        a.request_finished();
        let idle = a.deadline();
        assert!(matches!(idle, Some((_, Expired::Idle))), "{idle:?}");
        a.bytes_arrived();
        let next = a.deadline();
        assert!(
            matches!(next, Some((_, Expired::Header))),
            "the next request's first byte starts its header clock: {next:?}"
        );
    }

    #[tokio::test]
    async fn a_header_that_does_not_end_expires() {
        let a = activity(Duration::from_millis(20));
        let waited = tokio::time::timeout(Duration::from_secs(30), a.expired()).await;
        assert_eq!(waited.ok(), Some(Expired::Header));
    }
}
