//! Refresh-ahead: a hit on an ageing entry is answered at once and starts one background refresh for
//! the whole fleet.
//!
//! Two triggers: [`RefreshMode::Threshold`] refreshes once an entry has lived `refresh_threshold` of its
//! TTL; [`RefreshMode::XFetch`] refreshes with a probability that rises as expiry nears, scaled by how long
//! the value took to load (Vattani et al., "Optimal Probabilistic Cache Stampede Prevention"), so slow
//! loads start earlier and nodes spread their refreshes out.
//!
//! Fleet-wide "once" comes from the key's lease taken with a single try (never waited on) and from
//! checking, after taking it, whether L2 already holds a value newer than ours.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};
use tracing::Instrument;

use crate::error::Error;
use crate::fetched::{Fetched, Source};
use crate::l1::L1Entry;
use crate::l2::ReadNeed;
use crate::loader::Loader;
use crate::lock::try_acquire;
use crate::node::flights::{Flight, FlightKind, Joined};
use crate::node::Node;
use crate::options::EntryOptions;
use crate::read::load::{Lease, LoadContext, LoadPlan};

use crate::config::RefreshMode;

/// XFetch refreshes when `load_time * beta * -ln(u)` reaches the time left, u uniform in (0, 1].
/// `-ln(u)` exceeds 30 with probability e^-30 (about 1e-13 per hit), so a hit earlier than 30
/// scaled load times before expiry is answered "no" without drawing; the distribution a refresh
/// sees is otherwise unchanged.
const XFETCH_LONGEST_DRAW: f64 = 30.0;

impl Node {
    /// Another node stored `key`: if our copy is one a hit wanted refreshed (it claimed a refresh, or
    /// it is past the threshold), retire it so the next read takes the new value from L2 instead of
    /// refreshing again.
    pub(crate) fn retire_if_ageing(&self, key: &str) {
        if !self.config.refresh_ahead {
            return;
        }
        if let Some(entry) = self.l1.entries.get(key) {
            let wanted_refresh = entry
                .refresh_claimed
                .load(std::sync::atomic::Ordering::Acquire)
                || entry.age_fraction(Instant::now()) >= self.config.refresh_threshold;
            if wanted_refresh {
                self.l1.entries.remove(key);
            }
        }
    }

    /// How long after `now` no hit on an entry with this life and load time can want a refresh:
    /// the threshold's share of its life, or for XFetch the time left minus the longest lead a draw
    /// is followed to ([`XFETCH_LONGEST_DRAW`] load times, scaled by beta). Hits before then skip
    /// the exact test.
    pub(crate) fn no_refresh_for(
        &self,
        now: Instant,
        created_at: Instant,
        expires_at: Instant,
        load_time: Duration,
    ) -> Duration {
        if !self.config.refresh_ahead {
            return Duration::MAX;
        }
        let starts = match self.config.refresh_mode {
            RefreshMode::Threshold => {
                let life = expires_at.saturating_duration_since(created_at);
                let share = self.config.refresh_threshold;
                // NaN would panic in mul_f64; a threshold outside [0, 1] means "at once" or "at expiry".
                let share = if share.is_nan() {
                    0.0
                } else {
                    share.clamp(0.0, 1.0)
                };
                created_at.checked_add(life.mul_f64(share))
            }
            RefreshMode::XFetch { beta } => {
                let lead = load_time.as_secs_f64() * beta.max(0.0) * XFETCH_LONGEST_DRAW;
                Duration::try_from_secs_f64(lead)
                    .ok()
                    .and_then(|lead| expires_at.checked_sub(lead))
            }
        };
        // A window we cannot place (a lead past the clock's origin) starts now: the exact test runs.
        starts.map_or(Duration::ZERO, |s| s.saturating_duration_since(now))
    }

    /// Whether a hit on `entry` should start a refresh.
    pub(crate) fn wants_refresh(&self, entry: &L1Entry) -> bool {
        if !self.config.refresh_ahead || crate::l1::coarse_now() < entry.refresh_from {
            return false;
        }
        let now = Instant::now();
        match self.config.refresh_mode {
            RefreshMode::Threshold => entry.age_fraction(now) >= self.config.refresh_threshold,
            RefreshMode::XFetch { beta } => {
                let left = entry
                    .expires_at
                    .saturating_duration_since(now)
                    .as_secs_f64();
                let u: f64 = 1.0 - rand::random::<f64>(); // in (0, 1]
                entry.load_time.as_secs_f64() * beta * -u.ln() >= left
            }
        }
    }

    /// Starts a background refresh of `key` unless this node is already loading it.
    pub(crate) fn spawn_refresh<T, L>(
        self: &Arc<Self>,
        key: &str,
        opts: &EntryOptions,
        loader: L,
        l1_created_at_ms: u64,
        current: Arc<T>,
    ) where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        L: Loader<T>,
    {
        let Joined::Leader(guard, _) = self.l1.flights.join(FlightKind::Load, key) else {
            return;
        };
        let (node, key, opts) = (self.clone(), key.to_owned(), opts.clone());
        // A trace of its own, linked to what the hit was part of: the hit was answered long before
        // the refresh ends.
        let span = crate::spans::debug_span!(
            parent: None,
            "tiercache.refresh",
            namespace = %self.config.namespace,
            outcome = tracing::field::Empty,
        );
        span.follows_from(tracing::Span::current());
        let recorded = span.clone();
        let refresh = async move {
            let result = node
                .refresh::<T, L>(
                    &key,
                    &opts,
                    loader,
                    guard.flight(),
                    l1_created_at_ms,
                    current,
                )
                .await;
            let source = result.as_ref().map_or(Source::Loaded, |f| f.source);
            recorded.record(
                "outcome",
                match &result {
                    Ok(f) if f.source == Source::L1 => "not_needed",
                    Ok(f) => crate::spans::source_outcome(f.source),
                    Err(_) => "error",
                },
            );
            guard.complete(
                result.map(|f| Some(f.value as Arc<dyn std::any::Any + Send + Sync>)),
                source,
            );
        };
        tokio::spawn(refresh.instrument(span));
    }

    /// One refresh. Anyone on this node who misses L1 meanwhile joins this flight, so it always ends
    /// with a value (or an error), never with "nothing".
    async fn refresh<T, L>(
        self: &Arc<Self>,
        key: &str,
        opts: &EntryOptions,
        loader: L,
        flight: &Flight,
        l1_created_at_ms: u64,
        current: Arc<T>,
    ) -> Result<Fetched<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        L: Loader<T>,
    {
        let lease_key = self.keys.entry(key).lease();
        let lease = if self.config.locking_enabled {
            match self
                .guarded(try_acquire(self, &lease_key, self.config.lock_timeout))
                .await
            {
                Ok(Some(token)) => Some(Lease {
                    key: lease_key,
                    token,
                }),
                // Another node is refreshing (or Redis is away). Our value is still within its TTL;
                // its "filled" notice will retire our copy.
                Ok(None) => {
                    self.stats.lock_contended(1);
                    return Ok(Fetched::new(current, Source::L1));
                }
                Err(_) => {
                    self.stats.lock_failed(1);
                    return Ok(Fetched::new(current, Source::L1));
                }
            }
        } else {
            None
        };
        // Read after taking the lease: a refresh that finished just before us shows up here.
        let read = match self
            .read_through::<T>(key, opts.tags(), ReadNeed::Fence, false, Some(flight))
            .await
        {
            Ok(read) => read,
            Err(e) => {
                if let Some(lease) = lease {
                    self.release_lease(lease);
                }
                return Err(e);
            }
        };
        if let Some(value) = read
            .fresh
            .clone()
            .filter(|_| read.created_at_ms > l1_created_at_ms)
        {
            if let Some(lease) = lease {
                self.release_lease(lease);
            }
            return Ok(Fetched::new(value, Source::L2));
        }
        self.stats.refreshes(1);
        let ctx = LoadContext {
            key,
            opts,
            flight: Some(flight),
            batch: None,
            deadline: None,
        };
        let plan = LoadPlan {
            lease,
            fence: read.fence,
            stale: read.fresh.or(read.stale),
        };
        self.run_loader(ctx, loader, plan).await
    }
}
