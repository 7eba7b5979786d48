//! [`TtlTier`] and [`TtlTiers`]: the lifetimes the TTL strategy chooses between.

use std::time::Duration;

/// The five TTL tiers of the widget domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TtlTier {
    /// Numbers that move by the minute (60 s by default).
    Realtime,
    /// Recent figures (300 s by default).
    Short,
    /// The default tier (900 s by default).
    Medium,
    /// Ranges that are mostly closed (3600 s by default).
    Long,
    /// Closed past ranges (24 h by default).
    Daily,
}

impl TtlTier {
    /// Every tier, shortest first.
    pub const ALL: [TtlTier; 5] = [
        TtlTier::Realtime,
        TtlTier::Short,
        TtlTier::Medium,
        TtlTier::Long,
        TtlTier::Daily,
    ];
}

/// The duration of each [`TtlTier`].
///
/// ```
/// use std::time::Duration;
/// use tiercache_widgets::{TtlTier, TtlTiers};
/// assert_eq!(TtlTiers::default().ttl(TtlTier::Realtime), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlTiers {
    /// `WIDGET_CACHE_REALTIME_TTL`, default 60 s.
    pub realtime: Duration,
    /// `WIDGET_CACHE_SHORT_TTL`, default 300 s.
    pub short: Duration,
    /// `WIDGET_CACHE_MEDIUM_TTL`, default 900 s.
    pub medium: Duration,
    /// `WIDGET_CACHE_LONG_TTL`, default 3600 s.
    pub long: Duration,
    /// `WIDGET_CACHE_DAILY_TTL`, default 24 h.
    pub daily: Duration,
}

impl Default for TtlTiers {
    fn default() -> Self {
        TtlTiers {
            realtime: Duration::from_secs(60),
            short: Duration::from_secs(300),
            medium: Duration::from_secs(900),
            long: Duration::from_secs(3600),
            daily: Duration::from_secs(86_400),
        }
    }
}

impl TtlTiers {
    /// The duration of `tier`.
    pub fn ttl(&self, tier: TtlTier) -> Duration {
        match tier {
            TtlTier::Realtime => self.realtime,
            TtlTier::Short => self.short,
            TtlTier::Medium => self.medium,
            TtlTier::Long => self.long,
            TtlTier::Daily => self.daily,
        }
    }
}
