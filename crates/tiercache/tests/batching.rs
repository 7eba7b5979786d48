//! Concurrent cold reads of different keys share one `MGET` (entry layout 2 on one server), and each
//! read still gets its own value, or an error, or reads alone when its batch is dropped.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::{eventually, node, server, DEADLINE};
use futures_util::future::join_all;
use futures_util::task::noop_waker_ref;
use tiercache::{Cache, EntryOptions};

/// Polls `fut` once, as an executor would before it parks.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(noop_waker_ref()))
}

async fn written(cache: &Cache, keys: usize) {
    let opts = EntryOptions::new(Duration::from_secs(300));
    for i in 0..keys {
        cache
            .set(&format!("k{i}"), format!("value of k{i}"), &opts)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn cold_reads_in_flight_together_share_an_mget_and_each_gets_its_own_value() {
    let redis = server();
    let writer = node(&redis, "batch").await;
    let reader = node(&redis, "batch").await;
    written(&writer, 200).await;

    let reads = (0..200).map(|i| {
        let reader = &reader;
        async move { reader.get::<String>(&format!("k{i}")).await }
    });
    let values = join_all(reads).await;

    for (i, value) in values.into_iter().enumerate() {
        assert_eq!(
            value.unwrap().as_deref(),
            Some(&format!("value of k{i}")),
            "k{i} got another key's value"
        );
    }
    let stats = reader.stats();
    assert_eq!(stats.l2_hits, 200);
    assert!(
        stats.l2_batched_reads >= 100,
        "reads in flight together were not batched: {stats:?}"
    );
    // Missing keys batch too, and read as misses.
    let missing = join_all((0..20).map(|i| {
        let reader = &reader;
        async move { reader.get::<String>(&format!("absent{i}")).await }
    }))
    .await;
    assert!(missing.into_iter().all(|v| v.unwrap().is_none()));
}

#[tokio::test]
async fn large_entries_are_read_alone() {
    let redis = server();
    let writer = node(&redis, "batch-large").await;
    let reader = node(&redis, "batch-large").await;
    let opts = EntryOptions::new(Duration::from_secs(300));
    let large = "x".repeat(64 * 1024);
    for i in 0..100 {
        writer
            .set(&format!("k{i}"), large.clone(), &opts)
            .await
            .unwrap();
    }
    let read = |keys: std::ops::Range<usize>| {
        join_all(keys.map(|i| {
            let reader = &reader;
            async move { reader.get::<String>(&format!("k{i}")).await }
        }))
    };
    // The first reads teach the node its entries' size.
    for v in read(0..50).await {
        assert_eq!(v.unwrap().map(|s| s.len()), Some(large.len()));
    }
    let learned = reader.stats().l2_batched_reads;
    for v in read(50..100).await {
        assert_eq!(v.unwrap().map(|s| s.len()), Some(large.len()));
    }
    assert_eq!(
        reader.stats().l2_batched_reads,
        learned,
        "64 KiB entries were batched"
    );
}

#[tokio::test]
async fn a_batch_whose_first_read_is_cancelled_still_answers_the_others() {
    let redis = server();
    let writer = node(&redis, "batch-cancel").await;
    written(&writer, 3).await;

    for cancel_first in [false, true] {
        let reader = node(&redis, "batch-cancel").await;
        // k0 is alone in flight and reads at once; k1 finds it in flight and starts a batch,
        // which k2 joins.
        let mut alone = Box::pin(reader.get::<String>("k0"));
        let mut first = Box::pin(reader.get::<String>("k1"));
        let mut joined = Box::pin(reader.get::<String>("k2"));
        assert!(poll_once(&mut alone).is_pending());
        assert!(poll_once(&mut first).is_pending());
        assert!(poll_once(&mut joined).is_pending());
        if cancel_first {
            drop(first);
        } else {
            assert_eq!(
                first.await.unwrap().as_deref(),
                Some(&"value of k1".to_owned())
            );
        }
        let joined = tokio::time::timeout(Duration::from_secs(10), joined)
            .await
            .expect("a read waits on a batch nobody sends");
        assert_eq!(joined.unwrap().as_deref(), Some(&"value of k2".to_owned()));
        assert_eq!(
            alone.await.unwrap().as_deref(),
            Some(&"value of k0".to_owned())
        );
        let batched = reader.stats().l2_batched_reads;
        if cancel_first {
            assert_eq!(batched, 0, "the dropped batch's other read reads alone");
        } else {
            assert_eq!(batched, 2, "k1 and k2 shared one MGET");
        }
    }
}

#[tokio::test]
async fn a_batch_that_times_out_fails_each_of_its_reads_and_later_reads_recover() {
    let redis = server();
    let writer = node(&redis, "batch-fail").await;
    written(&writer, 50).await;
    let reader = node(&redis, "batch-fail").await;
    let read_all = || {
        join_all((0..50).map(|i| {
            let reader = &reader;
            async move { reader.get::<String>(&format!("k{i}")).await }
        }))
    };

    // Frozen longer than the response timeout (500 ms): every read of the batch must come back
    // with an error, none with another read's value or hanging on a batch that never answers.
    redis.pause(Duration::from_secs(2));
    let failed = tokio::time::timeout(Duration::from_secs(10), read_all())
        .await
        .expect("reads hang on a batch that timed out");
    assert!(
        failed.iter().all(Result::is_err),
        "a frozen Redis answered a read: {failed:?}"
    );

    eventually(
        DEADLINE,
        "every read gets its own value once Redis answers",
        || async {
            read_all()
                .await
                .into_iter()
                .enumerate()
                .all(|(i, v)| matches!(v, Ok(Some(s)) if *s == format!("value of k{i}")))
        },
    )
    .await;
    assert!(reader.stats().l2_batched_reads > 0);
}
