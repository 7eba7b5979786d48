//! [`ServiceTargets`]: what health scoring and alerts measure a node against.

use std::time::Duration;

use tiercache::ConfigError;

use super::settings::{MAX_RESPONSE_TIME, MIN_HIT_RATE, TARGET_HIT_RATE, TARGET_RESPONSE_TIME};

/// Service-level targets used by health scoring and alerts.
///
/// ```
/// let targets = tiercache_widgets::ServiceTargets { min_hit_rate: 0.99, ..Default::default() };
/// let err = targets.validate().unwrap_err().to_string();
/// assert!(err.contains("WIDGET_CACHE_MIN_HIT_RATE"), "{err}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceTargets {
    /// `WIDGET_CACHE_TARGET_RESPONSE_TIME` (bare number = ms), default 100 ms.
    pub target_response_time: Duration,
    /// `WIDGET_CACHE_MAX_RESPONSE_TIME` (bare number = ms), default 500 ms.
    pub max_response_time: Duration,
    /// `WIDGET_CACHE_TARGET_HIT_RATE` as a fraction (env in percent), default 0.95.
    pub target_hit_rate: f64,
    /// `WIDGET_CACHE_MIN_HIT_RATE` as a fraction (env in percent), default 0.90.
    pub min_hit_rate: f64,
    /// `WIDGET_CACHE_MAX_ERROR_RATE` as a fraction (env in percent), default 0.01.
    pub max_error_rate: f64,
}

impl Default for ServiceTargets {
    fn default() -> Self {
        ServiceTargets {
            target_response_time: Duration::from_millis(100),
            max_response_time: Duration::from_millis(500),
            target_hit_rate: 0.95,
            min_hit_rate: 0.90,
            max_error_rate: 0.01,
        }
    }
}

impl ServiceTargets {
    /// Checks the targets against each other: the minimum hit rate may not exceed the target, nor the
    /// target response time the maximum. The error names the variable to change.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_hit_rate > self.target_hit_rate {
            return Err(ConfigError::InvalidValue {
                var: MIN_HIT_RATE.to_owned(),
                value: format!("{}%", self.min_hit_rate * 100.0),
                expected: format!("a rate no higher than {TARGET_HIT_RATE}"),
            });
        }
        if self.target_response_time > self.max_response_time {
            return Err(ConfigError::InvalidValue {
                var: TARGET_RESPONSE_TIME.to_owned(),
                value: format!("{:?}", self.target_response_time),
                expected: format!("a time no longer than {MAX_RESPONSE_TIME}"),
            });
        }
        Ok(())
    }
}
