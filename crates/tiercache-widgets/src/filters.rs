//! Widget filters: a canonical, sorted set of key/value pairs with a stable digest.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::WidgetError;

/// Filters that narrow *whose* data a widget shows; invalidation is scoped by them.
pub const SCOPE_KEYS: [&str; 4] = ["organization_id", "campaign_id", "employee_id", "currency"];
/// Filters that only shape the presentation (how many rows); they do not narrow scope.
pub const PARAMETER_KEYS: [&str; 1] = ["limit"];

/// The most rows a list widget may be asked for (`limit`): a larger one is refused, so one request
/// cannot make the store list every donation.
pub const MAX_LIMIT: i64 = 100;

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

    /// Adds a filter; ids must be positive integers, `limit` one of at most [`MAX_LIMIT`], and
    /// currency a three-letter code. Each is kept in one canonical form (`01` and `+1` are `1`,
    /// `eur` is `EUR`), so spellings of one filter share one cache key and one set of tags.
    ///
    /// ```
    /// use tiercache_widgets::WidgetFilters;
    /// let a = WidgetFilters::new().with("organization_id", "01").unwrap();
    /// let b = WidgetFilters::new().with("organization_id", "1").unwrap();
    /// assert_eq!(a, b);
    /// assert!(WidgetFilters::new().with("limit", "101").is_err());
    /// ```
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Result<Self, WidgetError> {
        let value = value.into();
        let bad = |reason: &str| WidgetError::InvalidFilter {
            key: key.to_owned(),
            value: value.clone(),
            reason: reason.to_owned(),
        };
        // Each value is kept in one canonical form: `01`, `+1` and `1` are one organisation, so
        // they must be one cache key and carry one tag, or a donation's invalidation would miss
        // the spellings it does not name and leave those views stale.
        let canonical = match key {
            "organization_id" | "campaign_id" | "employee_id" => {
                match value.parse::<i64>().ok().filter(|v| *v > 0) {
                    Some(v) => v.to_string(),
                    None => return Err(bad("expected a positive whole number")),
                }
            }
            "limit" => match value.parse::<i64>().ok().filter(|v| *v > 0) {
                Some(v) if v <= MAX_LIMIT => v.to_string(),
                Some(_) => return Err(bad(&format!("at most {MAX_LIMIT} rows"))),
                None => return Err(bad("expected a positive whole number")),
            },
            "currency" => {
                if value.len() != 3 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(bad("expected a three-letter currency code such as EUR"));
                }
                value.to_ascii_uppercase()
            }
            _ => {
                let valid: Vec<&str> = SCOPE_KEYS.iter().chain(&PARAMETER_KEYS).copied().collect();
                return Err(bad(&format!(
                    "unknown filter; valid filters: {}",
                    valid.join(", ")
                )));
            }
        };
        self.0.insert(key.to_owned(), canonical);
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
