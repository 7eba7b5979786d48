//! Leases in Redis (`scripts/acquire.lua`, `release.lua`, `extend.lua`): a key holding a random
//! token, taken with `SET NX PX`, released and extended only by the token's holder. A named lock is
//! taken with `scripts/lock_acquire.lua`, which also hands out its fencing token. [`crate::lock`]
//! decides when to take, wait for, extend and release them.

use std::time::Duration;

use redis::Script;

use super::connection::Connection;
use super::{Repaired, L2};
use crate::error::Error;

/// A load lease a read took for its caller. Whoever loads takes the token out with
/// [`HeldLease::into_token`]; dropped any other way (the caller cancelled, an error after the lease
/// was taken, a value found after all) it is released in the background, so no node waits out a
/// lease nobody holds.
pub(crate) struct HeldLease {
    token: String,
    /// What releases it on drop; `None` once the token was taken out or the lease was never taken.
    release: Option<(Connection, Script, String)>,
}

impl std::fmt::Debug for HeldLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldLease")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl HeldLease {
    /// The lease at `key` with `token`, released on drop until [`HeldLease::into_token`]. Made before
    /// the command that may take it is sent, so a caller cancelled while it is in flight still
    /// releases it (a compare-and-delete: harmless if it was never taken).
    pub(crate) fn armed(l2: &L2, key: String, token: String) -> Self {
        HeldLease {
            token,
            release: Some((l2.conn.clone(), l2.scripts.release.clone(), key)),
        }
    }

    /// The token the lease is (or is being) taken with.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The lease was not taken after all: nothing to release.
    pub(crate) fn disarm(mut self) {
        self.release = None;
    }

    /// The token, now the caller's to release.
    pub(crate) fn into_token(mut self) -> String {
        self.release = None;
        std::mem::take(&mut self.token)
    }
}

/// Compare-and-delete through `scripts/release.lua`; whether `token` still held the lease.
async fn release(
    conn: &mut Connection,
    script: &Script,
    key: &str,
    token: &str,
) -> Result<bool, Error> {
    let released: i64 = script.key(key).arg(token).invoke_async(conn).await?;
    Ok(released == 1)
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        let Some((mut conn, script, key)) = self.release.take() else {
            return;
        };
        let token = std::mem::take(&mut self.token);
        // Outside a runtime (the process shutting down) the lease simply expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = release(&mut conn, &script, &key, &token).await {
                    tracing::debug!(error = %e, key, "unused lease not released; it will expire");
                }
            });
        }
    }
}

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

    /// One attempt to take the named lock `key` for `lease` with `token`, bumping its fencing counter
    /// `counter` (kept `counter_life` after this acquisition). Returns the fencing token when taken.
    pub(crate) async fn acquire_named_lock(
        &self,
        key: &str,
        counter: &str,
        token: &str,
        lease: Duration,
        counter_life: Duration,
    ) -> Result<Repaired<Option<u64>>, Error> {
        let (acquired, repaired, fencing_token): (i64, String, u64) = self
            .scripts
            .lock_acquire
            .key(key)
            .key(counter)
            .arg(token)
            .arg(lease.as_millis().max(1) as u64)
            .arg(counter_life.as_millis().max(1) as u64)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(Repaired {
            value: (acquired == 1).then_some(fencing_token),
            repaired,
        })
    }

    /// Compare-and-delete. Returns whether `token` still held the lease.
    pub(crate) async fn release_lease(&self, key: &str, token: &str) -> Result<bool, Error> {
        release(&mut self.conn.clone(), &self.scripts.release, key, token).await
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
