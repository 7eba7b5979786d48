//! Redis Cluster over TLS alone: nodes reach a cluster of three masters (plain ports closed, TLS on
//! the cluster bus too) through `rediss://` seeds, trusting the cluster's CA with
//! `tls_ca_cert_file` as they do a single TLS server. They share L2 across slots and hear each
//! other's invalidations, by key and by tag, on the sharded bus.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{eventually, RedisCluster, RedisServer, DEADLINE};
use tiercache::{Cache, CacheBuilder, EntryOptions, ErrorKind, LockOptions};
use tiercache_testkit::TestCa;

fn opts() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(600))
}

fn base(cluster: &RedisCluster, namespace: &str) -> CacheBuilder {
    Cache::builder()
        .cluster_urls(cluster.urls())
        .namespace(namespace)
        .heartbeat_interval(Duration::from_millis(100))
        .require_redis_at_start(true)
}

fn builder(cluster: &RedisCluster, ca: &TestCa, namespace: &str) -> CacheBuilder {
    base(cluster, namespace).tls_ca_cert_file(&ca.path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_l2_and_invalidations_over_a_tls_cluster() {
    let (cluster, ca) = RedisCluster::start_tls(3).unwrap();
    assert!(cluster.urls().iter().all(|u| u.starts_with("rediss://")));
    let a = builder(&cluster, &ca, "tls-cluster").build().await.unwrap();
    let b = builder(&cluster, &ca, "tls-cluster").build().await.unwrap();

    // Twelve keys over as many slots, on every master; the last six under a tag.
    let keys: Vec<String> = (0..12).map(|i| format!("widget:{i}")).collect();
    let slots: HashSet<u16> = keys.iter().map(|k| RedisCluster::slot_of(k)).collect();
    let masters: HashSet<usize> = slots
        .iter()
        .map(|&s| cluster.master_for_slot(s).unwrap())
        .collect();
    assert_eq!(
        (slots.len(), masters.len()),
        (12, 3),
        "keys spread over slots"
    );
    let (plain, tagged) = keys.split_at(6);
    let with_tag = opts().with_tags(["campaign:7"]);
    for (i, key) in plain.iter().enumerate() {
        a.set(key, i as u64, &opts()).await.unwrap();
    }
    for (i, key) in tagged.iter().enumerate() {
        a.set(key, 100 + i as u64, &with_tag).await.unwrap();
    }

    // b has never seen them: it reads them from L2, and keeps them in its L1.
    for (i, key) in plain.iter().enumerate() {
        assert_eq!(
            b.get::<u64>(key).await.unwrap().as_deref(),
            Some(&(i as u64))
        );
    }
    for (i, key) in tagged.iter().enumerate() {
        assert_eq!(
            b.get::<u64>(key).await.unwrap().as_deref(),
            Some(&(100 + i as u64))
        );
    }

    // Keys on different slots, invalidated on a: b stops serving them, and only them.
    let (dropped, kept) = plain.split_at(3);
    for key in dropped {
        a.invalidate(key).await.unwrap();
    }
    for key in dropped {
        eventually(DEADLINE, &format!("b drops {key}"), || async {
            b.get::<u64>(key).await.unwrap().is_none()
        })
        .await;
    }
    for key in kept.iter().chain(tagged) {
        assert!(b.get::<u64>(key).await.unwrap().is_some(), "b keeps {key}");
    }

    // A tag reaches every key under it, whatever slot the key is in.
    a.invalidate_tags(["campaign:7"]).await.unwrap();
    for key in tagged {
        eventually(DEADLINE, &format!("b drops {key} by tag"), || async {
            b.get::<u64>(key).await.unwrap().is_none()
        })
        .await;
    }
    for key in kept {
        assert!(b.get::<u64>(key).await.unwrap().is_some(), "b keeps {key}");
    }

    // A named lock's script bumps its fencing counter beside the lock key: the cluster would refuse
    // it (CROSSSLOT) unless both share a slot, whether the name has no hash tag, one of its own, or
    // a `}` outside any.
    for name in ["nightly-rollup", "rollup:{org}:1", "odd}name"] {
        let first = a
            .lock(name, LockOptions::from_config(a.config()))
            .await
            .unwrap();
        let first_token = first.fencing_token();
        assert!(first.release().await.unwrap());
        let second = b
            .lock(name, LockOptions::from_config(b.config()))
            .await
            .unwrap();
        assert!(
            second.fencing_token() > first_token,
            "{name}: {} after {first_token}",
            second.fencing_token()
        );
        assert!(second.release().await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_is_not_trusted_without_its_ca() {
    let (cluster, _ca) = RedisCluster::start_tls(3).unwrap();
    // The certificates are checked: without the cluster's CA no node is trusted.
    let err = base(&cluster, "tls-cluster")
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .expect_err("an unknown CA");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // Nor does another server's CA.
    let (_other, stranger) = RedisServer::start_tls().unwrap();
    let err = builder(&cluster, &stranger, "tls-cluster")
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .expect_err("a CA that signed none of its certificates");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // And the nodes speak nothing but TLS.
    let plain: Vec<String> = cluster
        .urls()
        .iter()
        .map(|u| u.replacen("rediss://", "redis://", 1))
        .collect();
    assert!(Cache::builder()
        .cluster_urls(plain)
        .namespace("tls-cluster")
        .require_redis_at_start(true)
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(300))
        .build()
        .await
        .is_err());
}
