//! Widget filters: a canonical, sorted set of key/value pairs with a stable digest.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::WidgetError;

/// Filters that narrow *whose* data a widget shows; invalidation is scoped by them.
pub const SCOPE_KEYS: [&str; 4] = ["organization_id", "campaign_id", "employee_id", "currency"];
/// Filters that only shape the presentation (how many rows); they do not narrow scope.
pub const PARAMETER_KEYS: [&str; 1] = ["limit"];

/// Canonical widget filters: keys are validated and kept sorted, so equal filters render equally.
///
/// ```
/// use tiercache_widgets::WidgetFilters;
/// let a = WidgetFilters::new().with("campaign_id", "123").unwrap().with("organization_id", "1").unwrap();
/// let b = WidgetFilters::new().with("organization_id", "1").unwrap().with("campaign_id", "123").unwrap();
/// assert_eq!(a.digest(), b.digest());
/// assert_eq!(a.campaign_id(), Some(123));
/// assert!(WidgetFilters::new().with("color", "red").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WidgetFilters(BTreeMap<String, String>);

impl WidgetFilters {
    /// No filters: the whole dataset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a filter; ids must be positive integers and currency a three-letter code.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Result<Self, WidgetError> {
        let value = value.into();
        let bad = |reason: &str| WidgetError::InvalidFilter {
            key: key.to_owned(),
            value: value.clone(),
            reason: reason.to_owned(),
        };
        match key {
            "organization_id" | "campaign_id" | "employee_id" | "limit" => {
                if value.parse::<i64>().ok().is_none_or(|v| v <= 0) {
                    return Err(bad("expected a positive whole number"));
                }
            }
            "currency" => {
                if value.len() != 3 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(bad("expected a three-letter currency code such as EUR"));
                }
            }
            _ => {
                let valid: Vec<&str> = SCOPE_KEYS.iter().chain(&PARAMETER_KEYS).copied().collect();
                return Err(bad(&format!(
                    "unknown filter; valid filters: {}",
                    valid.join(", ")
                )));
            }
        }
        let value = if key == "currency" {
            value.to_ascii_uppercase()
        } else {
            value
        };
        self.0.insert(key.to_owned(), value);
        Ok(self)
    }

    /// Builds filters from pairs, e.g. parsed query parameters.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, WidgetError> {
        pairs
            .into_iter()
            .try_fold(Self::new(), |f, (k, v)| f.with(k, v))
    }

    fn id(&self, key: &str) -> Option<i64> {
        self.0.get(key).and_then(|v| v.parse().ok())
    }

    /// The organisation filter.
    pub fn organization_id(&self) -> Option<i64> {
        self.id("organization_id")
    }

    /// The campaign filter.
    pub fn campaign_id(&self) -> Option<i64> {
        self.id("campaign_id")
    }

    /// The employee filter.
    pub fn employee_id(&self) -> Option<i64> {
        self.id("employee_id")
    }

    /// The currency filter (upper case).
    pub fn currency(&self) -> Option<&str> {
        self.0.get("currency").map(String::as_str)
    }

    /// The row limit for list widgets.
    pub fn limit(&self) -> Option<i64> {
        self.id("limit")
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The scope filters rendered canonically (`campaign_id=123,organization_id=1`); empty for "all".
    pub fn scope(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.iter().filter(|(k, _)| SCOPE_KEYS.contains(k)) {
            if !out.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "{k}={v}");
        }
        out
    }

    /// A short digest of all filters, stable across runs and platforms (FNV-1a 64, 12 hex digits).
    pub fn digest(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for (k, v) in self.iter() {
            for byte in k.bytes().chain([0]).chain(v.bytes()).chain([0xff]) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{:012x}", hash >> 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_stable_and_distinguishes_filters() {
        assert_eq!(WidgetFilters::new().digest(), "cbf29ce48422");
        let a =
            WidgetFilters::from_pairs([("organization_id", "1"), ("campaign_id", "23")]).unwrap();
        let b =
            WidgetFilters::from_pairs([("organization_id", "12"), ("campaign_id", "3")]).unwrap();
        assert_ne!(a.digest(), b.digest());
        assert_eq!(
            a.digest(),
            WidgetFilters::from_pairs([("campaign_id", "23"), ("organization_id", "1")])
                .unwrap()
                .digest()
        );
    }

    #[test]
    fn bad_filters_say_what_is_allowed() {
        let msg = WidgetFilters::new()
            .with("region", "eu")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("organization_id") && msg.contains("currency"),
            "{msg}"
        );
        assert!(WidgetFilters::new()
            .with("campaign_id", "-3")
            .unwrap_err()
            .to_string()
            .contains("positive"));
        assert!(WidgetFilters::new()
            .with("currency", "euro")
            .unwrap_err()
            .to_string()
            .contains("three-letter"));
        assert_eq!(
            WidgetFilters::new()
                .with("currency", "eur")
                .unwrap()
                .currency(),
            Some("EUR")
        );
    }

    #[test]
    fn scope_leaves_out_presentation_parameters() {
        let f = WidgetFilters::from_pairs([("limit", "5"), ("campaign_id", "7")]).unwrap();
        assert_eq!(f.scope(), "campaign_id=7");
        assert_eq!(f.limit(), Some(5));
    }
}
