//! Redis leases: `SET key token NX PX lease`, released by compare-and-delete.
//!
//! Used twice: by `get_or_load` so one node in the fleet loads a key while the others wait for the fill,
//! and publicly through [`crate::Cache::lock`] for code that needs fleet-wide mutual exclusion.
//!
//! A lease can end without its holder knowing (it ran out while the holder was paused, Redis evicted
//! it, a failover promoted a replica that never received it), so two holders of a named lock may
//! overlap. Each named lock therefore also hands out a fencing token
//! ([`LockGuard::fencing_token`]): `max(counter + 1, Redis's clock in µs)`, stored back in the lock's
//! counter key by the script that takes the lock (`scripts/lock_acquire.lua`). The resource the lock
//! protects refuses a token lower than the last it saw, and with it the older holder. The counter
//! keeps tokens increasing while the clock repeats or steps back; the clock keeps them increasing
//! when the counter is lost (evicted, expired, or a failover to a replica that had not received
//! it), provided the clock of the Redis that answers has not gone back by more than the time since
//! the lock's last acquisition. Load leases take no token: a load's store is fenced by generations.

use std::sync::Arc;
use std::time::Duration;

use crate::backoff::jitter;
use crate::error::Error;
use crate::node::Node;

/// How to acquire a named lock.
///
/// ```
/// use std::time::Duration;
/// let opts = tiercache::LockOptions { timeout: Duration::from_secs(2), retries: 5, lease: Duration::from_secs(30) };
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// The longest time to keep trying before giving up.
    pub timeout: Duration,
    /// How many times to retry after the first attempt (jittered exponential backoff between tries).
    pub retries: u32,
    /// How long the lock lives unless released or extended; a holder that dies loses it after this.
    pub lease: Duration,
}

impl LockOptions {
    /// The options of `config`'s `lock_timeout` (the lease, `TIERCACHE_LOCK_TIMEOUT`) and
    /// `lock_retries` (`TIERCACHE_LOCK_RETRIES`), waiting at most 5 s.
    pub fn from_config(config: &crate::config::Config) -> Self {
        LockOptions {
            timeout: Duration::from_secs(5),
            retries: config.lock_retries,
            lease: config.lock_timeout,
        }
    }
}

/// A held lease. Release it with [`LockGuard::release`]; dropping it releases in the background.
#[must_use = "a lock is released as soon as its guard is dropped"]
pub struct LockGuard {
    node: Arc<Node>,
    key: String,
    token: String,
    fencing_token: u64,
    released: bool,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.key)
            .field("fencing_token", &self.fencing_token)
            .finish_non_exhaustive()
    }
}

/// How long a lock's fencing counter outlives the lock's last acquisition. Once it has expired the
/// next token comes from Redis's clock, 30 days past the last token unless the clock went back that
/// far: tokens keep increasing, and a name no longer used leaves no key behind.
const FENCING_COUNTER_LIFE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The first retry delay; later ones double, with jitter, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// One attempt: `SET NX PX` (`scripts/acquire.lua`, which also takes over a lease key that cannot be
/// a lease). Returns the token when acquired.
pub(crate) async fn try_acquire(
    node: &Node,
    key: &str,
    lease: Duration,
) -> Result<Option<String>, Error> {
    let token = crate::ops::lease_token(node.id);
    let acquired = node.l2.redis.acquire_lease(key, &token, lease).await?;
    node.repaired(&acquired.repaired);
    if acquired.value {
        node.stats.lock_acquired(1);
        Ok(Some(token))
    } else {
        // Held by someone else: the caller counts it, knowing whether it waits for another node's
        // load (contended) or gives up (failed).
        Ok(None)
    }
}

/// Compare-and-delete. Returns whether the caller still held the lease.
pub(crate) async fn release(node: &Node, key: &str, token: &str) -> Result<bool, Error> {
    node.l2.redis.release_lease(key, token).await
}

/// Compare-and-extend. Returns whether the caller still held the lease.
pub(crate) async fn extend(
    node: &Node,
    key: &str,
    token: &str,
    lease: Duration,
) -> Result<bool, Error> {
    node.l2.redis.extend_lease(key, token, lease).await
}

/// One attempt at a named lock (`scripts/lock_acquire.lua`): the lease of [`try_acquire`] and a
/// fencing token. Returns the token and the fencing token when acquired.
async fn try_acquire_named(
    node: &Node,
    key: &str,
    counter: &str,
    lease: Duration,
) -> Result<Option<(String, u64)>, Error> {
    let token = crate::ops::lease_token(node.id);
    let acquired = node
        .l2
        .redis
        .acquire_named_lock(key, counter, &token, lease, FENCING_COUNTER_LIFE)
        .await?;
    node.repaired(&acquired.repaired);
    Ok(acquired.value.map(|fencing_token| {
        node.stats.lock_acquired(1);
        (token, fencing_token)
    }))
}

/// Acquires a named lock with retries.
pub(crate) async fn acquire(
    node: &Arc<Node>,
    name: &str,
    opts: LockOptions,
) -> Result<LockGuard, Error> {
    let key = node.keys.named_lock(name);
    let counter = node.keys.fencing_counter(name);
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut backoff = FIRST_BACKOFF;
    for attempt in 0..=opts.retries {
        let acquired = try_acquire_named(node, &key, &counter, opts.lease)
            .await
            .inspect_err(|_| node.stats.lock_failed(1))?;
        if let Some((token, fencing_token)) = acquired {
            return Ok(LockGuard {
                node: node.clone(),
                key,
                token,
                fencing_token,
                released: false,
            });
        }
        if attempt == 0 {
            node.stats.lock_contended(1);
        }
        let wait = jitter(backoff);
        if attempt == opts.retries || tokio::time::Instant::now() + wait > deadline {
            node.stats.lock_failed(1);
            return Err(Error::LockNotAcquired {
                name: name.to_owned(),
                attempts: attempt + 1,
            });
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    Err(Error::LockNotAcquired {
        name: name.to_owned(),
        attempts: opts.retries + 1,
    })
}

impl LockGuard {
    /// Releases the lock. `Ok(false)` means it was no longer ours (the lease ran out and someone else
    /// may hold it now): compare-and-delete refused to touch their lock.
    pub async fn release(mut self) -> Result<bool, Error> {
        self.released = true;
        release(&self.node, &self.key, &self.token).await
    }

    /// Extends the lease to `lease` from now. `Ok(false)` means the lock is no longer ours.
    pub async fn extend(&self, lease: Duration) -> Result<bool, Error> {
        extend(&self.node, &self.key, &self.token, lease).await
    }

    /// The random token identifying this holder.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// This acquisition's fencing token: greater than that of every earlier acquisition of the
    /// same lock name in the namespace, on any node.
    ///
    /// The lease alone cannot stop a holder that lost the lock without knowing (paused past its
    /// lease, the key evicted, a failover to a replica that never received it) from writing next to
    /// the new holder. Pass the token with every write to the resource the lock protects, and have
    /// the resource refuse a token lower than the highest it has seen: the older holder's writes
    /// then fail instead of interleaving.
    ///
    /// ```no_run
    /// use std::sync::Mutex;
    ///
    /// /// The protected resource: it remembers the highest token it has seen and refuses older ones.
    /// #[derive(Default)]
    /// struct Rollups {
    ///     highest_token: Mutex<u64>,
    /// }
    ///
    /// impl Rollups {
    ///     fn write(&self, fencing_token: u64, _rollup: &str) -> Result<(), String> {
    ///         let mut highest = self.highest_token.lock().unwrap();
    ///         if fencing_token < *highest {
    ///             return Err(format!("token {fencing_token} is older than {highest}"));
    ///         }
    ///         *highest = fencing_token;
    ///         // ... write ...
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # async fn run(cache: tiercache::Cache, rollups: Rollups) -> Result<(), Box<dyn std::error::Error>> {
    /// let opts = tiercache::LockOptions::from_config(cache.config());
    /// let guard = cache.lock("nightly-rollup", opts).await?;
    /// // A database refuses in the write itself:
    /// // UPDATE rollups SET ..., fencing_token = $1 WHERE id = $2 AND fencing_token <= $1
    /// rollups.write(guard.fencing_token(), "2026-12-30")?;
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub fn fencing_token(&self) -> u64 {
        self.fencing_token
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (node, key, token) = (
            self.node.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = release(&node, &key, &token).await {
                    tracing::debug!(error = %e, key, "background lock release failed; the lease will expire");
                }
            });
        }
    }
}
