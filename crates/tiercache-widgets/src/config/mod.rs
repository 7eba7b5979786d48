//! The widget layer's configuration: [`WidgetConfig`] (the cache's configuration with the seed's
//! variables mapped onto it, the TTL tiers, the service targets) and [`LoadTimeouts`].
//!
//! The core reads only `REDIS_URL`, the connection's `REDIS_*` variables and `TIERCACHE_*`; the
//! dashboard's own variables (`WIDGET_CACHE_*`, `REDIS_CACHE_DB`) are declared in `settings.rs` and
//! read here. Units: TTLs and the lock timeout are seconds when written as a bare number (`900`),
//! response times and load timeouts milliseconds (`200`); any duration may carry a unit instead
//! (`250ms`, `30s`, `15m`, `2h`). Rates are percentages from 0 to 100, with or without `%`.

mod load_timeouts;
mod settings;
mod targets;
mod tiers;

pub use load_timeouts::LoadTimeouts;
pub use settings::settings_markdown;
pub use targets::ServiceTargets;
pub use tiers::{TtlTier, TtlTiers};

use tiercache::{Config, ConfigError};

/// Everything a widget service is configured with but its load timeouts: the cache's configuration
/// and the dashboard's own settings. Read it with [`WidgetConfig::from_env`], build the cache from
/// [`WidgetConfig::cache`], and hand the tiers and targets to the services that use them.
///
/// Its `Debug` output masks the Redis password, as [`Config`]'s does.
///
/// ```no_run
/// # async fn run() -> Result<(), tiercache_widgets::WidgetError> {
/// use tiercache_widgets::{
///     Thresholds, WidgetCacheMetricsService, WidgetCacheService, WidgetConfig,
///     WidgetDataAggregationService,
/// };
///
/// let config = WidgetConfig::from_env()?; // REDIS_URL, TIERCACHE_*, WIDGET_CACHE_*, REDIS_CACHE_DB
/// let cache = tiercache::Cache::builder().config(config.cache.clone()).build().await?;
/// let metrics = WidgetCacheMetricsService::for_cache(&cache);
/// let data = WidgetDataAggregationService::open("demo.sqlite3")?;
/// let widgets = WidgetCacheService::new(cache.clone(), data, metrics.clone())
///     .with_ttl_tiers(config.ttl_tiers);
/// let status = metrics.status(&cache, &config.targets, &Thresholds::from_targets(&config.targets)).await;
/// # let _ = (widgets, status); Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WidgetConfig {
    /// The cache's configuration: the core's variables, then the seed's variables that tune core
    /// features (`WIDGET_CACHE_DEFAULT_TTL`, `_REFRESH_AHEAD`, `_REFRESH_THRESHOLD`,
    /// `_LOCKING_ENABLED`, `_LOCK_TIMEOUT`, `_LOCK_RETRIES`, `REDIS_CACHE_DB`) over them.
    pub cache: Config,
    /// How long each TTL tier lasts (`WIDGET_CACHE_*_TTL`).
    pub ttl_tiers: TtlTiers,
    /// What health scores and alerts measure against (`WIDGET_CACHE_TARGET_*`, `_MAX_*`, `_MIN_*`).
    pub targets: ServiceTargets,
}

impl WidgetConfig {
    /// Reads the process environment over the defaults: the core's variables
    /// ([`Config::SETTINGS`]), then the widget layer's ([`WidgetConfig::SETTINGS`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config = WidgetConfig::default();
        config.apply_vars(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Reads a TOML settings file over the defaults: the core's settings and the widget layer's,
    /// keyed by their variables' names (either case), valued in the variables' forms
    /// ([`Config::from_toml_file`] says more). The environment is not read; apply it on top with
    /// [`WidgetConfig::apply_vars`] when it should win.
    pub fn from_toml_file(path: impl AsRef<std::path::Path>) -> Result<Self, ConfigError> {
        let known: Vec<&str> = Config::SETTINGS
            .rows()
            .iter()
            .map(|s| s.name)
            .chain(WidgetConfig::SETTINGS.rows().iter().map(|s| s.name))
            .collect();
        let settings = tiercache::settings_in_toml_file(path.as_ref(), &known)?;
        let mut config = WidgetConfig::default();
        config.apply_vars(|name| settings.get(name).cloned())?;
        Ok(config)
    }

    /// Applies variables from `lookup` (a stand-in for the environment) over this configuration, the
    /// core's first so a seed variable wins over the `TIERCACHE_*` name of the same option, then
    /// checks the whole ([`WidgetConfig::validate`]).
    ///
    /// ```
    /// let mut config = tiercache_widgets::WidgetConfig::default();
    /// config.apply_vars(|name| (name == "WIDGET_CACHE_LOCK_RETRIES").then(|| "5".to_owned())).unwrap();
    /// assert_eq!(config.cache.lock_retries, 5);
    /// let err = config
    ///     .apply_vars(|name| (name == "WIDGET_CACHE_LOCK_RETRIES").then(|| "many".to_owned()))
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("WIDGET_CACHE_LOCK_RETRIES"));
    /// ```
    pub fn apply_vars(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        Config::SETTINGS.apply(&mut self.cache, &lookup)?;
        WidgetConfig::SETTINGS.apply(self, &lookup)?;
        self.validate()
    }

    /// Checks relations between settings that no single value can break: the cache's
    /// ([`Config::validate`]) and the targets' ([`ServiceTargets::validate`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.cache.validate()?;
        self.targets.validate()
    }
}
