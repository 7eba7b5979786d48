//! Connections a client leaves hanging: half a request header, a keep-alive connection left idle.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Demo, Ending, Raw, DEADLINE};

/// A client that sends half a header, and never the blank line that ends it, is closed after the
/// header-read timeout. (Served with `axum::serve`, it kept its connection for as long as it liked.)
#[tokio::test]
async fn half_a_header_is_closed_after_the_header_read_timeout() {
    let demo = Demo::start(
        "half-header",
        &["--nodes", "1", "--no-cache", "--header-read-timeout", "1s"],
    );
    let mut raw = Raw::connect(&demo.urls[0]).await;
    raw.send("GET / HTTP/1.1\r\nHost: x\r\n").await;
    let ending = raw.until_closed(DEADLINE).await;
    assert!(
        matches!(ending, Ending::Closed(_)),
        "the half-sent request still holds its connection after {DEADLINE:?}"
    );
}

/// A keep-alive connection that sends nothing after an answer is kept for the idle timeout, not
/// the (shorter) header-read timeout, and then closed.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let demo = Demo::start(
        "idle",
        &[
            "--nodes",
            "1",
            "--no-cache",
            "--header-read-timeout",
            "1s",
            "--idle-timeout",
            "4s",
        ],
    );
    let mut raw = Raw::connect(&demo.urls[0]).await;
    raw.send("GET /api/widgets HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (status, _, _) = raw.response().await;
    assert_eq!(status, 200);
    let answered = Instant::now();
    let ending = raw.until_closed(DEADLINE).await;
    assert_eq!(
        ending,
        Ending::Closed(Vec::new()),
        "an idle keep-alive connection is closed, with nothing more sent"
    );
    // The server's clock started before the answer reached the test, so allow it some slack; 1 s
    // (the header timeout) would mean idle connections were closed by the wrong clock.
    let idle = answered.elapsed();
    assert!(
        idle >= Duration::from_secs(3),
        "closed after {idle:?}: sooner than the 4 s idle timeout"
    );
}
