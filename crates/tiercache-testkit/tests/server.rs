//! The testkit's own behaviour.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tiercache_testkit::{RedisCluster, RedisServer};

#[test]
fn start_answers_ping_and_drop_frees_the_port() {
    let server = RedisServer::start().unwrap();
    let port = server.port();
    assert!(matches!(server.cmd(&["PING"]).unwrap(), redis::Value::SimpleString(s) if s == "PONG"));
    drop(server);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens after drop"
    );
}

#[tokio::test]
async fn restart_keeps_port_and_empties_data() {
    let mut server = RedisServer::start().unwrap();
    let port = server.port();
    let before = server.run_id().await.unwrap();
    server.cmd(&["SET", "k", "v"]).unwrap();
    server.kill();
    assert!(server.cmd(&["PING"]).is_err(), "killed");
    server.restart().unwrap();
    assert_eq!(server.port(), port);
    assert_ne!(server.run_id().await.unwrap(), before);
    assert_eq!(server.cmd(&["GET", "k"]).unwrap(), redis::Value::Nil);
}

#[test]
fn pause_makes_the_server_hang_then_resume() {
    let server = RedisServer::start().unwrap();
    server.pause(Duration::from_millis(600));
    let client = redis::Client::open(server.url()).unwrap();
    let hung = client
        .get_connection_with_timeout(Duration::from_millis(200))
        .and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_millis(200)))?;
            redis::cmd("PING").query::<String>(&mut c)
        });
    assert!(hung.is_err(), "a frozen server does not answer");
    tiercache_testkit::eventually_sync(Duration::from_secs(5), "the server resumes", || {
        server.cmd(&["PING"]).is_ok()
    });
}

#[test]
fn a_three_master_cluster_forms_and_serves_keys() {
    let cluster = RedisCluster::start(3).unwrap();
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    let port = urls[0].rsplit(':').next().unwrap();
    let out = std::process::Command::new("redis-cli")
        .args(["-c", "-p", port, "SET", "{user}:1", "x"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}
