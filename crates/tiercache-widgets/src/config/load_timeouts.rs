//! [`LoadTimeouts`]: how long a widget's provider may hold its callers.

use std::time::Duration;

use tiercache::ConfigError;

use super::settings::{HARD_TIMEOUT, SOFT_TIMEOUT};

/// How long a widget's provider may run before callers stop waiting for it.
///
/// Past `soft`, a view that has a previous value (expired, but kept by fail-safe) is answered with it
/// and the load finishes in the background, refreshing the view for the next read. Past `hard`, a
/// view with nothing to fall back on fails with a timeout (the load still finishes and stores its
/// result). Either way, a hung query no longer holds every caller of its view.
///
/// ```
/// use std::time::Duration;
/// use tiercache_widgets::LoadTimeouts;
/// let t = LoadTimeouts::from_vars(|name| (name == "WIDGET_CACHE_SOFT_TIMEOUT").then(|| "250ms".to_owned())).unwrap();
/// assert_eq!(t.soft, Duration::from_millis(250));
/// assert_eq!(t.hard, LoadTimeouts::default().hard);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadTimeouts {
    /// `WIDGET_CACHE_SOFT_TIMEOUT` (bare number = ms), default 1 s: twice the default maximum response
    /// time, after which the last value beats a fresh one.
    pub soft: Duration,
    /// `WIDGET_CACHE_HARD_TIMEOUT` (bare number = ms), default 10 s: past it nobody is still looking
    /// at the dashboard.
    pub hard: Duration,
}

impl Default for LoadTimeouts {
    fn default() -> Self {
        LoadTimeouts {
            soft: Duration::from_secs(1),
            hard: Duration::from_secs(10),
        }
    }
}

impl LoadTimeouts {
    /// Reads `WIDGET_CACHE_SOFT_TIMEOUT` and `WIDGET_CACHE_HARD_TIMEOUT` ([`LoadTimeouts::SETTINGS`])
    /// over the defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables from `lookup` (a stand-in for the environment) over the defaults.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut timeouts = LoadTimeouts::default();
        LoadTimeouts::SETTINGS.apply(&mut timeouts, lookup)?;
        timeouts.validate()?;
        Ok(timeouts)
    }

    /// Checks the soft timeout is no longer than the hard one, which would make it never apply.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.soft > self.hard {
            return Err(ConfigError::InvalidValue {
                var: SOFT_TIMEOUT.to_owned(),
                value: format!("{:?}", self.soft),
                expected: format!("a time no longer than {HARD_TIMEOUT} ({:?})", self.hard),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<LoadTimeouts, ConfigError> {
        LoadTimeouts::from_vars(tiercache_testkit::vars_lookup(vars))
    }

    #[test]
    fn variables_are_read_with_units_and_checked_against_each_other() {
        let t = from(&[
            ("WIDGET_CACHE_SOFT_TIMEOUT", "300"),
            ("WIDGET_CACHE_HARD_TIMEOUT", "2s"),
        ])
        .unwrap();
        assert_eq!(
            t,
            LoadTimeouts {
                soft: Duration::from_millis(300),
                hard: Duration::from_secs(2)
            }
        );
        let msg = from(&[("WIDGET_CACHE_HARD_TIMEOUT", "later")])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("WIDGET_CACHE_HARD_TIMEOUT") && msg.contains("later"),
            "{msg}"
        );
        let msg = from(&[("WIDGET_CACHE_SOFT_TIMEOUT", "20s")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("WIDGET_CACHE_HARD_TIMEOUT"), "{msg}");
    }
}
