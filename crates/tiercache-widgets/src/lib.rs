//! # tiercache-widgets
//!
//! The analytics-dashboard domain on top of [`tiercache`]: widget types, time ranges and filters, the TTL
//! strategy, tags and the event table that decide invalidation, aggregate queries over SQLite, metrics,
//! a health score and alerts.
//!
//! ```no_run
//! # async fn run() -> Result<(), tiercache_widgets::WidgetError> {
//! use std::time::Duration;
//! use tiercache_widgets::*;
//!
//! let config = WidgetConfig::from_env()?; // REDIS_URL, TIERCACHE_*, WIDGET_CACHE_*, REDIS_CACHE_DB
//! let cache = tiercache::Cache::builder().config(config.cache.clone()).namespace("widgets").build().await?;
//! let data = WidgetDataAggregationService::open("demo.sqlite3")?;
//! let metrics = WidgetCacheMetricsService::in_memory();
//! // Computes views from `data` on a miss; campaign views carry their organisation's tags.
//! let widgets = WidgetCacheService::new(cache.clone(), data.clone(), metrics.clone())
//!     .with_ttl_tiers(config.ttl_tiers)             // WIDGET_CACHE_*_TTL
//!     .with_load_timeouts(LoadTimeouts::from_env()?) // WIDGET_CACHE_SOFT/HARD_TIMEOUT
//!     .with_snapshots(Duration::from_secs(60));     // windows sampled, history recorded
//! let invalidation = WidgetInvalidationService::new(cache.clone(), Some(data.clone()));
//!
//! let filters = WidgetFilters::new().with("organization_id", "1")?;
//! // A miss computes at the instant the range was resolved at: the period the key names.
//! let total = widgets.fetch_view(WidgetType::TotalDonations, TimeRange::ThisMonth, filters).await?;
//!
//! let change = data.record_donation(NewDonation {
//!     campaign_id: 3, employee_id: None, donor: "Ada".into(), amount_cents: 5_000,
//!     currency: "EUR".into(), created_at: chrono::Utc::now().timestamp(),
//! }).await?;
//! invalidation.invalidate_for_event(&change.event).await?; // every node, only the views it changes
//! // In a service, a ChangeDispatcher sends it from the outbox instead, so a crash cannot lose it.
//! invalidation.invalidate_by_tags(["campaign:3"]).await?; // every view that includes campaign 3
//!
//! let targets = config.targets;
//! let status = metrics.status(&cache, &targets, &Thresholds::from_targets(&targets)).await;
//! # let _ = (total, status); Ok(()) }
//! ```
#![deny(missing_docs)]

mod alerts;
mod catch_up;
mod clock;
mod config;
mod data;
mod dispatcher;
mod error;
mod events;
mod filters;
mod health;
mod invalidation;
mod key;
mod live_views;
mod metrics;
mod node_facts;
mod service;
mod status;
mod tags;
mod time_range;
mod ttl_strategy;
mod widget_type;

pub use alerts::{evaluate as evaluate_alerts, Alert, AlertKind, Severity, Thresholds};
pub use catch_up::catch_up;
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use config::{
    settings_markdown, LoadTimeouts, ServiceTargets, TtlTier, TtlTiers, WidgetConfig,
};
pub use data::{
    ActivityRow, AggregatePath, Campaign, CampaignEntry, CampaignRow, Change, DonationStore,
    DonorRow, Giver, ImportRow, NewCampaign, NewDonation, OrganizationEntry, OrganizationStats,
    Participation, PendingChange, SnapshotQuery, SqliteStore, StoreSnapshot, TotalDonations,
    TrendBucket, WidgetData, WidgetDataAggregationService,
};
pub use dispatcher::ChangeDispatcher;
pub use error::WidgetError;
pub use events::{CampaignFacts, DomainEvent, DonationFacts, EventKind, AFFECTS};
pub use filters::{WidgetFilters, MAX_LIMIT, PARAMETER_KEYS, SCOPE_KEYS};
pub use health::{health_score, MIN_REQUESTS_TO_JUDGE};
pub use invalidation::{DonationAction, WidgetInvalidationService, EVENT_NAMES};
pub use key::WidgetKey;
pub use live_views::{LiveView, LiveViews};
pub use metrics::{
    Figures, History, LockFigures, MetricsSnapshot, RedisFigures, RequestFigures,
    WidgetCacheMetricsService, WidgetFigures, SAMPLE_EVERY, SNAPSHOTS_KEPT, SNAPSHOT_RECORDS,
    WINDOWS,
};
pub use node_facts::{CoherenceStatus, InvalidationStatus, NodeFacts};
pub use service::WidgetCacheService;
pub use status::{
    CacheStatus, FleetStatus, HealthLevel, HealthStatus, LockStatus, StatusWindows, CRITICAL_SCORE,
    HEALTHY_SCORE,
};
pub use tags::{
    tags_for_entry, tags_for_event, tags_for_scope, widget_range_tag, Scope, CLOCK_SKEW,
    MAX_YEAR_TAGS,
};
pub use time_range::TimeRange;
pub use ttl_strategy::TtlStrategy;
pub use widget_type::WidgetType;
