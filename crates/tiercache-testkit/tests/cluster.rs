//! The testkit's Redis Cluster: forming it, its key slots, and failing over a killed master.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use tiercache_testkit::{eventually, RedisCluster, RedisServer};

const FAILOVER_DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn slot_of_agrees_with_cluster_keyslot() {
    let node = RedisServer::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
    ])
    .unwrap();
    for key in [
        "",
        "a",
        "foo",
        "123456789",
        "{}",
        "{}{b}",
        "{a}{b}",
        "a{b",
        "a}b{c}",
        "{{a}}",
        "foo{}{bar}",
        "{user1000}.following",
        "{user1000}.followers",
        "user1000",
        "tc:{entry:42}:gen",
        "ключ",
    ] {
        let expected = match node.cmd(&["CLUSTER", "KEYSLOT", key]).unwrap() {
            redis::Value::Int(slot) => u16::try_from(slot).unwrap(),
            other => panic!("CLUSTER KEYSLOT {key:?} replied {other:?}"),
        };
        assert_eq!(RedisCluster::slot_of(key), expected, "slot of {key:?}");
    }
    assert_eq!(
        RedisCluster::slot_of("{user1000}.following"),
        RedisCluster::slot_of("{user1000}.followers")
    );
}

#[test]
fn a_cluster_without_replicas_has_only_masters() {
    let cluster = RedisCluster::start(3).unwrap();
    assert_eq!(cluster.urls().len(), 3);
    assert_eq!(cluster.master_urls().unwrap().len(), 3);
    for master in 0..3 {
        assert!(cluster.replicas_of(master).unwrap().is_empty());
    }
    let slot = RedisCluster::slot_of("some key");
    assert!(cluster.master_for_slot(slot).is_some());
}

async fn cluster_connection(cluster: &RedisCluster) -> ClusterConnection {
    ClusterClient::builder(cluster.urls())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .get_async_connection()
        .await
        .unwrap()
}

/// `SET key value` then `WAIT 1 1000` on the same connection to the key's master: returns how many
/// replicas acknowledged the write.
async fn set_and_wait(conn: &mut ClusterConnection, key: &str, value: &str) -> i64 {
    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
        RedisCluster::slot_of(key),
        SlotAddr::Master,
    )));
    let mut set = redis::cmd("SET");
    set.arg(key).arg(value);
    conn.route_command(set, route.clone()).await.unwrap();
    let mut wait = redis::cmd("WAIT");
    wait.arg(1).arg(1000);
    match conn.route_command(wait, route).await.unwrap() {
        redis::Value::Int(acked) => acked,
        other => panic!("WAIT replied {other:?}"),
    }
}

async fn get(conn: &mut ClusterConnection, key: &str) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET").arg(key).query_async(conn).await
}

/// What the node at `url` itself holds under `key`, master or replica (`READONLY`, so a replica
/// answers rather than redirecting), if it answers.
fn get_from(url: &str, key: &str) -> Option<String> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    redis::cmd("READONLY").exec(&mut conn).ok()?;
    redis::cmd("GET").arg(key).query(&mut conn).ok()?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_master_promotes_its_replica_and_keeps_acknowledged_writes() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start_with_replicas(3, 1).unwrap();
    eprintln!("3 masters + 3 replicas formed in {:?}", started.elapsed());
    assert_eq!(cluster.urls().len(), 6);
    assert_eq!(cluster.master_urls().unwrap().len(), 3);

    let mut conn = cluster_connection(&cluster).await;
    for i in 0..50 {
        let key = format!("key:{i}");
        redis::cmd("SET")
            .arg(&key)
            .arg(i)
            .exec_async(&mut conn)
            .await
            .unwrap();
    }
    let key = "{user1000}.following";
    let slot = RedisCluster::slot_of(key);
    let old = cluster.master_for_slot(slot).unwrap();
    let replicas = cluster.replicas_of(old).unwrap();
    assert_eq!(replicas.len(), 1, "one replica per master");
    assert_eq!(
        set_and_wait(&mut conn, key, "alice").await,
        1,
        "the replica acknowledged"
    );

    assert_eq!(cluster.kill_master_for_slot(slot).unwrap(), old);
    let killed = Instant::now();
    let new = cluster.wait_for_failover(slot, FAILOVER_DEADLINE).unwrap();
    eprintln!(
        "failover of node {old} to {new} took {:?}",
        killed.elapsed()
    );
    assert_ne!(new, old);
    assert_eq!(new, replicas[0], "the old master's replica was promoted");
    assert_eq!(cluster.master_for_slot(slot), Some(new));
    assert_eq!(cluster.master_urls().unwrap().len(), 3);
    assert!(!cluster
        .master_urls()
        .unwrap()
        .contains(&cluster.urls()[old]));
    assert_eq!(
        get_from(&cluster.urls()[new], key).as_deref(),
        Some("alice"),
        "the promoted replica holds the acknowledged write"
    );

    // The cluster client finds the new master by itself, and every other key is still there.
    eventually(
        Duration::from_secs(15),
        "the cluster client reads through the new master",
        || async {
            let mut conn = cluster_connection(&cluster).await;
            get(&mut conn, key).await.ok().flatten().as_deref() == Some("alice")
        },
    )
    .await;
    eventually(
        Duration::from_secs(15),
        "the first connection reads again",
        || {
            let mut conn = conn.clone();
            async move { get(&mut conn, key).await.ok().flatten().as_deref() == Some("alice") }
        },
    )
    .await;
    for i in 0..50 {
        let key = format!("key:{i}");
        let slot = RedisCluster::slot_of(&key);
        if cluster.master_for_slot(slot) == Some(new) {
            continue; // written without WAIT: the replica may have missed the last ones
        }
        assert_eq!(get(&mut conn, &key).await.unwrap(), Some(i.to_string()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_master_rejoins_as_replica_and_can_take_over_again() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1).unwrap();
    let mut conn = cluster_connection(&cluster).await;
    let key = "tc:{entry:7}:value";
    let slot = RedisCluster::slot_of(key);
    assert_eq!(set_and_wait(&mut conn, key, "v1").await, 1);

    let first = cluster.kill_master_for_slot(slot).unwrap();
    let second = cluster.wait_for_failover(slot, FAILOVER_DEADLINE).unwrap();

    let restarted = Instant::now();
    cluster.restart_node(first).unwrap();
    eprintln!(
        "node {first} rejoined as a synced replica in {:?}",
        restarted.elapsed()
    );
    assert_eq!(cluster.replicas_of(second).unwrap(), vec![first]);
    assert_eq!(cluster.master_for_slot(slot), Some(second));
    assert_eq!(
        get_from(&cluster.urls()[first], key).as_deref(),
        Some("v1"),
        "the rejoined node resynced from the promoted one"
    );

    // Write through the promoted master (a new client, so it routes by today's slots), then fail
    // back to the restarted node.
    let mut conn = cluster_connection(&cluster).await;
    assert_eq!(set_and_wait(&mut conn, key, "v2").await, 1);
    assert_eq!(cluster.kill_master_for_slot(slot).unwrap(), second);
    let killed = Instant::now();
    assert_eq!(
        cluster.wait_for_failover(slot, FAILOVER_DEADLINE).unwrap(),
        first
    );
    eprintln!("failback to node {first} took {:?}", killed.elapsed());
    assert_eq!(get_from(&cluster.urls()[first], key).as_deref(), Some("v2"));
}
