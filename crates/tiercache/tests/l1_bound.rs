//! L1 is bounded in bytes: inserting ten times its size never leaves it above the bound.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::server;
use tiercache::EntryOptions;

#[tokio::test]
async fn l1_stays_within_its_byte_bound_under_ten_times_its_size() {
    let redis = server();
    let bound: u64 = 256 * 1024;
    let cache = common::builder(&redis, "bound")
        .l1_max_bytes(bound)
        .build()
        .await
        .unwrap();
    let opts = EntryOptions::new(Duration::from_secs(600));
    let value = vec![42_u8; 1000];
    let inserted = bound * 10 / 1000;
    for i in 0..inserted {
        cache
            .set(&format!("k{i}"), value.clone(), &opts)
            .await
            .unwrap();
        if i % 200 == 0 {
            assert!(cache.admin().l1_weighed_bytes() <= bound);
        }
    }
    let weighed = cache.admin().l1_weighed_bytes();
    assert!(weighed <= bound, "L1 holds {weighed} bytes, bound {bound}");
    assert!(weighed > bound / 2, "L1 is used, not emptied: {weighed}");
    // Evicted from L1 is not lost: L2 still answers.
    assert_eq!(
        cache.get::<Vec<u8>>("k0").await.unwrap().as_deref(),
        Some(&value)
    );
}
