//! The demo's life: a private Redis when asked for (none when a URL was given), Redis going away and coming back, running
//! without a cache, warming at start, keeping the cache over a restart, and a graceful stop on
//! SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::{client, eventually, get, post, total, Demo, RedisServer, TempDir, DEADLINE};
use tiercache_testkit::FaultProxy;

/// A loopback port nothing listens on (bound, read, released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn with_redis_down_reads_answer_donations_are_kept_and_every_node_shows_them_after() {
    let mut redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("redis-down", &redis);
    let http = client();
    let (a, b) = (&demo.urls[0], &demo.urls[1]);
    let (count, _, _) = total(&http, a, "").await;
    let _ = total(&http, b, "").await;

    redis.kill();
    // Reads keep answering 200 while Redis is gone: from L1, or computed from SQLite.
    for url in [a, b] {
        for _ in 0..3 {
            let (status, body) = get(
                &http,
                &format!("{url}/api/widgets/top_donors?range=this_month"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    }
    let (status, stored) = post(
        &http,
        &format!("{a}/api/donations"),
        r#"{"campaign_id": 4, "amount": 7.5}"#,
    )
    .await;
    assert_eq!(status, 201, "a committed donation is never a 5xx: {stored}");
    assert_eq!(
        total(&http, a, "&bypass_cache=true").await.0,
        count + 1,
        "the donation is in SQLite"
    );

    redis.restart().unwrap();
    for url in [a, b] {
        eventually(
            DEADLINE,
            "every node shows the donation once Redis is back",
            || async { total(&http, url, "").await.0 == count + 1 },
        )
        .await;
    }
    let (status, health) = get(&http, &format!("{a}/health")).await;
    assert!(status == 200 || status == 503, "{health}");
    eventually(DEADLINE, "node 0 reports Redis available again", || async {
        get(&http, &format!("{a}/health")).await.1["redis"]["available"] == true
    })
    .await;
}

#[tokio::test]
async fn sigterm_lets_requests_finish_and_exits_promptly() {
    let redis = RedisServer::start().unwrap();
    // Enough donations that an uncached year of organisation figures takes tens of milliseconds, so
    // the requests below are still being answered when the signal arrives.
    let mut demo = Demo::start(
        "shutdown",
        &[
            "--nodes",
            "2",
            "--redis-url",
            &redis.url(),
            "--donations",
            "100000",
        ],
    );
    let slow = format!(
        "{}/api/widgets/organization_stats?range=last_year&bypass_cache=true",
        demo.urls[0]
    );
    let mut in_flight = Vec::new();
    for _ in 0..8 {
        // One connection per client, opened before the signal: a request sent on it is in flight,
        // not racing the listener's close.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let (status, _) = get(&http, &format!("{}/api/widgets", demo.urls[0])).await;
        assert_eq!(status, 200);
        let url = slow.clone();
        in_flight.push(tokio::spawn(async move { http.get(&url).send().await }));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let status = demo.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    for request in in_flight {
        let response = request
            .await
            .unwrap()
            .expect("an in-flight request is answered in full");
        assert_eq!(response.status().as_u16(), 200);
    }
    assert!(
        demo.printed.iter().any(|l| l == "stopped"),
        "{:?}",
        demo.printed
    );
    let after = client().get(&slow).send().await;
    assert!(
        after.is_err_and(|e| e.is_connect()),
        "nothing listens after the stop"
    );
}

/// Process ids of the children of `pid` whose command is `name` (Linux: /proc).
fn children_named(pid: u32, name: &str) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/comm"))
                .is_ok_and(|comm| comm.trim() == name)
        })
        .collect()
}

/// `--private-redis` starts a private server whatever answers, shared by every node, and stops it on
/// exit. (The same private server starts when no Redis URL is given and nothing answers at the
/// default one; a test cannot try that without touching the default 127.0.0.1:6379, so the decision
/// is a unit test of `startup.rs`.)
#[tokio::test]
async fn with_private_redis_a_private_server_is_started_and_stopped_on_exit() {
    let mut demo = Demo::start("embedded", &["--nodes", "2", "--private-redis"]);
    let line = demo.wait_for_line("private redis-server at");
    let private_url = line
        .split_whitespace()
        .find(|w| w.starts_with("redis://"))
        .unwrap()
        .to_owned();
    let port: u16 = private_url.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(children_named(demo.pid(), "redis-server").len(), 1);
    let http = client();
    // A campaign's view: start-up warming does not load those.
    let (_, _, source) = total(&http, &demo.urls[0], "&campaign_id=5").await;
    assert_eq!(source, "loaded");
    assert_eq!(
        total(&http, &demo.urls[1], "&campaign_id=5").await.2,
        "l2",
        "both nodes share the private Redis"
    );
    assert!(demo.terminate(Duration::from_secs(10)).success());
    eventually(DEADLINE, "the private redis-server is gone", || async {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    })
    .await;
}

/// A Redis URL that was given names the fleet's Redis: when nothing answers there the nodes start
/// without Redis (serving from SQLite, joining when it answers) and start no server of their own,
/// which would split this process's cache from every other node's.
#[tokio::test]
async fn with_a_given_redis_url_that_does_not_answer_no_private_server_is_started() {
    let port = closed_port();
    let nowhere = format!("redis://:hunter2secret@127.0.0.1:{port}");
    let mut demo = Demo::start(
        "named-redis-down",
        &["--nodes", "2", "--redis-url", &nowhere],
    );
    let line = demo.wait_for_line("starting without it");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("a Redis URL was given"), "{line}");
    assert!(!line.contains("hunter2secret"), "{line}");
    assert!(
        !demo
            .printed
            .iter()
            .any(|l| l.contains("private redis-server") && !l.contains("no private redis-server")),
        "{:?}",
        demo.printed
    );
    assert_eq!(
        children_named(demo.pid(), "redis-server"),
        Vec::<u32>::new()
    );
    let http = client();
    for url in &demo.urls {
        let (_, _, source) = total(&http, url, "&campaign_id=5").await;
        assert_eq!(source, "loaded", "computed from SQLite while Redis is away");
        let (_, health) = get(&http, &format!("{url}/health")).await;
        assert_eq!(health["redis"]["available"], false, "{health}");
    }
    assert!(demo.terminate(Duration::from_secs(10)).success());
}

/// `/livez` and `/readyz` answer once the process serves; from the stop signal on, `/readyz`
/// answers 503 while the nodes keep serving for `--shutdown-drain`, so a load balancer stops sending
/// before the listeners close, and then the process exits.
#[tokio::test]
async fn after_sigterm_readyz_is_503_while_the_nodes_drain_then_the_process_exits() {
    let mut demo = Demo::start(
        "drain",
        &["--nodes", "1", "--no-cache", "--shutdown-drain", "8s"],
    );
    let http = client();
    let url = demo.urls[0].clone();
    let (status, ready) = get(&http, &format!("{url}/readyz")).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
    let (status, live) = get(&http, &format!("{url}/livez")).await;
    assert_eq!((status, live["status"].as_str()), (200, Some("alive")));

    demo.send_term();
    eventually(DEADLINE, "/readyz answers 503 after SIGTERM", || async {
        get(&http, &format!("{url}/readyz")).await.0 == 503
    })
    .await;
    let (_, ready) = get(&http, &format!("{url}/readyz")).await;
    assert_eq!(ready["status"], "stopping", "{ready}");
    assert!(ready["error"].is_string(), "{ready}");
    assert_eq!(get(&http, &format!("{url}/livez")).await.0, 200);
    let (count, _, _) = total(&http, &url, "").await;
    assert!(count >= 0, "still serving while draining");
    let status = demo.wait_exit(DEADLINE);
    assert!(status.success(), "exit status {status}");
    assert!(
        demo.printed.iter().any(|l| l.contains("--shutdown-drain")),
        "{:?}",
        demo.printed
    );
}

#[tokio::test]
async fn a_malformed_redis_url_stops_the_start_naming_the_wrong_part() {
    let refused = Demo::start_failing(&["--redis-url", "redis://127.0.0.1:port"]);
    assert!(refused.contains("port"), "{refused}");
}

#[tokio::test]
async fn a_settings_file_is_read_and_a_wrong_key_in_it_stops_the_start_naming_it() {
    let dir = std::env::temp_dir().join(format!("tiercache-demo-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("demo.toml");
    // A value the file holds in its variable's form is checked like the variable.
    std::fs::write(&file, "widget_cache_lock_retries = \"many\"\n").unwrap();
    let refused = Demo::start_failing(&["--config", file.to_str().unwrap()]);
    assert!(refused.contains("WIDGET_CACHE_LOCK_RETRIES"), "{refused}");
    std::fs::write(&file, "widget_cache_lock_retry = 5\n").unwrap();
    let refused = Demo::start_failing(&["--config", file.to_str().unwrap()]);
    assert!(
        refused.contains("demo.toml") && refused.contains("widget_cache_lock_retry"),
        "{refused}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn with_no_redis_and_no_private_one_the_nodes_start_and_serve_from_sqlite() {
    let nowhere = format!("redis://127.0.0.1:{}", closed_port());
    let mut demo = Demo::start(
        "no-redis",
        &[
            "--nodes",
            "2",
            "--redis-url",
            &nowhere,
            "--no-embedded-redis",
        ],
    );
    demo.wait_for_line("starting without it");
    let http = client();
    for url in &demo.urls {
        // A campaign's view: node 0's start-up warming filled its own L1 with the others.
        let (count, _, source) = total(&http, url, "&campaign_id=5").await;
        assert_eq!(source, "loaded", "computed from SQLite while Redis is away");
        assert_eq!(
            count,
            total(&http, url, "&campaign_id=5&bypass_cache=true")
                .await
                .0
        );
    }
    let (status, stored) = post(
        &http,
        &format!("{}/api/donations", demo.urls[0]),
        r#"{"campaign_id": 2, "amount": 4}"#,
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["invalidation"], "pending");
    let (_, health) = get(&http, &format!("{}/health", demo.urls[1])).await;
    assert_eq!(health["redis"]["available"], false);
    assert!(demo.terminate(Duration::from_secs(10)).success());
}

#[tokio::test]
async fn without_a_cache_every_answer_comes_from_the_database() {
    let demo = Demo::start("no-cache", &["--nodes", "1", "--no-cache"]);
    let http = client();
    let (count, _, source) = total(&http, &demo.urls[0], "").await;
    assert_eq!(source, "database");
    let (status, stored) = post(
        &http,
        &format!("{}/api/donations", demo.urls[0]),
        r#"{"campaign_id": 1, "amount": 3}"#,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(stored["invalidation"], "not_cached");
    assert_eq!(total(&http, &demo.urls[0], "").await.0, count + 1);
    let (status, health) = get(&http, &format!("{}/health", demo.urls[0])).await;
    assert_eq!(status, 200);
    assert_eq!(health["redis"]["cache"], "disabled");
}

/// A fixed clock for the tests that compare keys across starts: every start resolves the same
/// periods, whatever the hour the test runs at.
const NOW: &str = "2026-12-30T12:00:00Z";

/// `widget` over `query` on node `url`: the tier that answered.
async fn source(http: &reqwest::Client, url: &str, widget: &str, query: &str) -> String {
    let (status, body) = get(http, &format!("{url}/api/widgets/{widget}?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["source"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn views_dashboards_open_first_are_warm_at_ready_unless_warming_is_off() {
    let redis = RedisServer::start().unwrap();
    let mut warm = Demo::start(
        "warm",
        &["--nodes", "2", "--redis-url", &redis.url(), "--now", NOW],
    );
    let line = warm.wait_for_line("warmed ");
    // 7 widget types x 10 named ranges x (everything + 20 organisations).
    assert!(line.starts_with("warmed 1470 views in "), "{line}");
    let http = client();
    let (a, b) = (&warm.urls[0], &warm.urls[1]);
    for (widget, query) in [
        ("total_donations", "range=this_month"),
        ("top_donors", "range=last_year&organization_id=7"),
        (
            "campaign_performance",
            "range=this_quarter&organization_id=20",
        ),
    ] {
        assert_eq!(
            source(&http, a, widget, query).await,
            "l1",
            "{widget}?{query}: node 0 loaded it at start"
        );
        assert_eq!(
            source(&http, b, widget, query).await,
            "l2",
            "{widget}?{query}: in Redis for the other node"
        );
    }

    let cold_redis = RedisServer::start().unwrap();
    let cold = Demo::start(
        "cold",
        &[
            "--nodes",
            "1",
            "--redis-url",
            &cold_redis.url(),
            "--now",
            NOW,
            "--no-warm-cache",
        ],
    );
    assert!(
        !cold.printed.iter().any(|l| l.starts_with("warmed ")),
        "{:?}",
        cold.printed
    );
    assert_eq!(
        source(&http, &cold.urls[0], "total_donations", "range=this_month").await,
        "loaded"
    );
}

#[tokio::test]
async fn a_restart_over_the_same_data_keeps_the_cache_and_new_data_drops_it() {
    let redis = RedisServer::start().unwrap();
    let kept = TempDir::new("restart");
    let db = kept.0.join("demo.sqlite");
    let args = [
        "--nodes",
        "1",
        "--redis-url",
        &redis.url(),
        "--now",
        NOW,
        "--no-warm-cache",
    ];
    let http = client();
    let (widget, query) = ("top_donors", "range=this_month&organization_id=2");

    let mut first = Demo::start_over(&db, &args);
    first.wait_for_line("generated");
    assert_eq!(source(&http, &first.urls[0], widget, query).await, "loaded");
    assert!(first.terminate(Duration::from_secs(10)).success());

    // Warming is off: a cached answer can only be the first run's.
    let mut second = Demo::start_over(&db, &args);
    second.wait_for_line("using the data already there");
    assert_eq!(
        source(&http, &second.urls[0], widget, query).await,
        "l2",
        "the first run's view survives the restart"
    );
    assert!(second.terminate(Duration::from_secs(10)).success());

    // A start that generates its database retires every view cached over another one.
    let mut fresh = Demo::start("restart-fresh", &args);
    fresh.wait_for_line("generated");
    assert_eq!(source(&http, &fresh.urls[0], widget, query).await, "loaded");
}

/// The outbox: a donation committed while the node is cut off from Redis answers "pending", and when
/// the process is killed before its invalidation is sent, the next start sends it: no node serves
/// the old figure. (Before the outbox the invalidation waited in the killed process's memory, and
/// the restarted nodes served the first run's cached view until its TTL.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_donation_committed_before_a_crash_reaches_every_node_after_the_restart() {
    let redis = RedisServer::start().unwrap();
    // The first run reaches Redis through a proxy that can swallow everything, so nothing it sends
    // after the cut can land, not even from a socket buffer.
    let proxy = FaultProxy::start(redis.port()).await.unwrap();
    let kept = TempDir::new("crash");
    let db = kept.0.join("demo.sqlite");
    let (through_proxy, direct) = (proxy.url(), redis.url());
    let args = |url: &str| -> Vec<String> {
        ["--nodes", "2", "--redis-url", url, "--now", NOW]
            .map(str::to_owned)
            .to_vec()
    };
    let http = client();
    let query = "&campaign_id=3";

    let first_args = args(&through_proxy);
    let mut first = Demo::start_over(
        &db,
        &first_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    first.wait_for_line("ready");
    let (count, cents, _) = total(&http, &first.urls[1], query).await;
    assert_eq!(
        total(&http, &first.urls[1], query).await.2,
        "l1",
        "node 1 caches the view"
    );

    proxy.partition();
    let (status, body) = post(
        &http,
        &format!("{}/api/donations", first.urls[0]),
        r#"{"campaign_id": 3, "amount": "12.50"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["invalidation"], "pending", "{body}");
    first.kill();

    let second_args = args(&direct);
    let mut second = Demo::start_over(
        &db,
        &second_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    second.wait_for_line("ready");
    assert!(
        second
            .printed
            .iter()
            .any(|l| l.contains("outbox: 1 change")),
        "the start reports the change it resumed: {:?}",
        second.printed
    );
    // Within the start's wait for the outbox (longer than a dead process's claim on a row), so
    // normally at once; polled, since a claim the killed process held may delay it.
    for node in &second.urls {
        eventually(DEADLINE, &format!("{node} shows the donation"), || async {
            let (now_count, now_cents, _) = total(&http, node, query).await;
            (now_count, now_cents) == (count + 1, cents + 1_250)
        })
        .await;
    }
}

/// `--help` names `REDIS_URL` but never prints its value, and a URL with a password that fails at
/// start is shown masked, however the URL is written.
#[test]
fn help_and_start_errors_never_print_the_redis_password() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_tiercache-demo"))
        .arg("--help")
        .env("REDIS_URL", "redis://:hunter2secret@127.0.0.1:6379")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    assert!(printed.contains("REDIS_URL"), "{printed}");
    assert!(!printed.contains("hunter2secret"), "{printed}");
    let refused = Demo::start_failing(&["--redis-url", "redis:/:hunter2secret@127.0.0.1:port"]);
    assert!(refused.contains("redis"), "{refused}");
    assert!(!refused.contains("hunter2secret"), "{refused}");
}

/// `--help` names `DEMO_ADMIN_TOKEN` but never prints its value, and a token that cannot be sent
/// in a header stops the start without being quoted.
#[test]
fn help_and_start_errors_never_print_the_admin_token() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_tiercache-demo"))
        .arg("--help")
        .env("DEMO_ADMIN_TOKEN", "hunter2token")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    assert!(printed.contains("DEMO_ADMIN_TOKEN"), "{printed}");
    assert!(!printed.contains("hunter2token"), "{printed}");
    let refused = Demo::start_failing(&["--admin-token", "hunter2 token"]);
    assert!(refused.contains("--admin-token"), "{refused}");
    assert!(!refused.contains("hunter2"), "{refused}");
}
