//! Leases in Redis (`scripts/acquire.lua`, `release.lua`, `extend.lua`): a key holding a random
//! token, taken with `SET NX PX`, released and extended only by the token's holder. [`crate::lock`]
//! decides when to take, wait for, extend and release them.

use std::time::Duration;

use super::{Repaired, L2};
use crate::error::Error;

impl L2 {
    /// One attempt to take the lease `key` for `lease` with `token` (a lease key that cannot be a
    /// lease is taken over). Returns whether it was taken.
    pub(crate) async fn acquire_lease(
        &self,
        key: &str,
        token: &str,
        lease: Duration,
    ) -> Result<Repaired<bool>, Error> {
        let (acquired, repaired): (i64, String) = self
            .scripts
            .acquire
            .key(key)
            .arg(token)
            .arg(lease.as_millis().max(1) as u64)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(Repaired {
            value: acquired == 1,
            repaired,
        })
    }

    /// Compare-and-delete. Returns whether `token` still held the lease.
    pub(crate) async fn release_lease(&self, key: &str, token: &str) -> Result<bool, Error> {
        let released: i64 = self
            .scripts
            .release
            .key(key)
            .arg(token)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(released == 1)
    }

    /// Compare-and-extend to `lease` from now. Returns whether `token` still held the lease.
    pub(crate) async fn extend_lease(
        &self,
        key: &str,
        token: &str,
        lease: Duration,
    ) -> Result<bool, Error> {
        let extended: i64 = self
            .scripts
            .extend
            .key(key)
            .arg(token)
            .arg(lease.as_millis().max(1) as u64)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(extended == 1)
    }
}
