//! Record lists: small capped lists of a namespace that layers above the cache keep in Redis through
//! the core (the widget layer's metrics history), so they need no Redis client of their own.

use super::scan::namespace_part;
use crate::admin::Admin;
use crate::error::Error;

fn record_key(namespace: &str, list: &str) -> String {
    format!("tc:r:{}:{list}", namespace_part(namespace))
}

impl Admin<'_> {
    /// Adds `record` at the front of this namespace's record list `list` and keeps the newest `keep`
    /// (at least one), in one round trip.
    ///
    /// ```no_run
    /// # async fn run(cache: tiercache::Cache) -> Result<(), tiercache::Error> {
    /// cache.admin().push_record("deploys", b"v1.4.2 at 12:00", 100).await?;
    /// assert_eq!(cache.admin().records("deploys", 1).await?, vec![b"v1.4.2 at 12:00".to_vec()]);
    /// # Ok(()) }
    /// ```
    pub async fn push_record(&self, list: &str, record: &[u8], keep: usize) -> Result<(), Error> {
        let node = self.node();
        let key = record_key(&node.config.namespace, list);
        node.guarded(node.l2.redis.push_record(&key, record, keep))
            .await
    }

    /// The newest `n` records of this namespace's list `list`, newest first; empty when it has none.
    pub async fn records(&self, list: &str, n: usize) -> Result<Vec<Vec<u8>>, Error> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let node = self.node();
        let key = record_key(&node.config.namespace, list);
        node.guarded(node.l2.redis.records(&key, n)).await
    }
}
