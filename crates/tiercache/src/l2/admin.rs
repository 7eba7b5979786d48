//! The Redis side of the operator calls (`ops/`): reading an entry's bookkeeping as it is, removing
//! what an operator found abandoned, presence keys and record lists. `ops/` decides what to do and
//! how to report it; this is every command it sends, so no Redis plumbing lives outside `l2/`.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, Value};

use super::{script, L2};
use crate::error::Error;
use crate::keys::EntryKeys;

static INSPECT: LazyLock<Script> = LazyLock::new(|| script(include_str!("../scripts/inspect.lua")));
static REMOVE_EXPIRED: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("../scripts/remove_expired.lua")));
static REMOVE_LEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/remove_lease.lua")));

impl L2 {
    /// Everything stored for one entry, without changing anything (`scripts/inspect.lua`): the raw
    /// reply, which `ops::entry` reads field by field.
    pub(crate) async fn inspect(&self, keys: &EntryKeys) -> Result<Value, Error> {
        Ok(INSPECT
            .key(&keys.entry)
            .key(keys.generation())
            .key(keys.lease())
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    /// The current values of Redis keys named in full (tag versions an entry recorded), in order;
    /// `None` where a key is missing. The keys must share one slot on a cluster.
    pub(crate) async fn current_values(&self, keys: &[&str]) -> Result<Vec<Option<String>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        Ok(redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut self.conn.clone())
            .await?)
    }

    /// Deletes the entry at `entry_key` if its header is still `header` (nothing stored since it was
    /// read); whether it was deleted.
    pub(crate) async fn remove_entry_if_unchanged(
        &self,
        entry_key: &str,
        header: &[u8],
    ) -> Result<bool, Error> {
        let removed: i64 = REMOVE_EXPIRED
            .key(entry_key)
            .arg(header)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(removed == 1)
    }

    /// Deletes the lease at `lease_key` if it still holds `token`; whether it was deleted.
    pub(crate) async fn remove_lease_if_held_by(
        &self,
        lease_key: &str,
        token: &str,
    ) -> Result<bool, Error> {
        let removed: i64 = REMOVE_LEASE
            .key(lease_key)
            .arg(token)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(removed == 1)
    }

    /// Writes a node's presence key, expiring after `lifetime`.
    pub(crate) async fn renew_presence(
        &self,
        key: &str,
        started_at_ms: u64,
        lifetime: Duration,
    ) -> Result<(), Error> {
        Ok(redis::cmd("SET")
            .arg(key)
            .arg(started_at_ms)
            .arg("PX")
            .arg(lifetime.as_millis() as u64)
            .exec_async(&mut self.conn.clone())
            .await?)
    }

    /// Pushes `record` at the front of the list at `key` and keeps its newest `keep` (at least one),
    /// in one round trip.
    pub(crate) async fn push_record(
        &self,
        key: &str,
        record: &[u8],
        keep: usize,
    ) -> Result<(), Error> {
        Ok(redis::pipe()
            .cmd("LPUSH")
            .arg(key)
            .arg(record)
            .ignore()
            .cmd("LTRIM")
            .arg(key)
            .arg(0)
            .arg(keep.max(1) - 1)
            .ignore()
            .exec_async(&mut self.conn.clone())
            .await?)
    }

    /// The newest `n` (at least one) records of the list at `key`, newest first.
    pub(crate) async fn records(&self, key: &str, n: usize) -> Result<Vec<Vec<u8>>, Error> {
        Ok(redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(n.max(1) - 1)
            .query_async(&mut self.conn.clone())
            .await?)
    }

    /// Deletes every entry of the namespace (generations, tag versions and leases stay), page by
    /// page of `SCAN`.
    pub(crate) async fn unlink_all_entries(&self) -> Result<(), Error> {
        let patterns = [self.keys.entry_pattern()];
        let mut pages = self.conn.scan(&patterns);
        while let Some(keys) = pages.next_page().await? {
            let names: Vec<&str> = keys
                .iter()
                .filter_map(|k| std::str::from_utf8(k).ok())
                .collect();
            self.conn.unlink(&names).await?;
        }
        Ok(())
    }
}
