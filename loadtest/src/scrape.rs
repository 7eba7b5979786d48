//! Reads the service's `/metrics` (Prometheus text) before and after a run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often [`during`] scrapes.
const EVERY: Duration = Duration::from_secs(2);

/// Milliseconds since the Unix epoch, as goose stamps its phases.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Scrapes `node` every [`EVERY`] until `stop` is set, so the steady phase can be measured from
/// the scrape nearest the moment the last user started. Failed scrapes are skipped.
pub async fn during(
    http: reqwest::Client,
    node: String,
    stop: Arc<AtomicBool>,
) -> Vec<(i64, Scrape)> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Ok(scrape) = Scrape::fetch(&http, &node).await {
            out.push((now_ms(), scrape));
        }
        tokio::time::sleep(EVERY).await;
    }
    out
}

/// The scrape taken closest after `at_ms` (or the last one before it).
pub fn nearest_after(scrapes: &[(i64, Scrape)], at_ms: i64) -> Option<&Scrape> {
    scrapes
        .iter()
        .find(|(t, _)| *t >= at_ms)
        .or_else(|| scrapes.last())
        .map(|(_, s)| s)
}

/// One scrape: every series' value, keyed by its full name with labels.
#[derive(Debug, Default, Clone)]
pub struct Scrape(HashMap<String, f64>);

impl Scrape {
    /// Fetches and parses `{node}/metrics`.
    pub async fn fetch(http: &reqwest::Client, node: &str) -> Result<Scrape, String> {
        let text = http
            .get(format!("{node}/metrics"))
            .send()
            .await
            .map_err(|e| format!("{node}/metrics: {e}"))?
            .text()
            .await
            .map_err(|e| format!("{node}/metrics: {e}"))?;
        Ok(Scrape::parse(&text))
    }

    /// Parses the text format: `name{labels} value` per line, comments skipped.
    pub fn parse(text: &str) -> Scrape {
        Scrape(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (series, value) = l.trim().rsplit_once(' ')?;
                    Some((series.to_owned(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// The sum of every series of metric `name` whose labels contain each of `labels`
    /// (`outcome="hit"`).
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                let (metric, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
                metric == name && labels.iter().all(|l| rest.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// What `name` (with `labels`) grew by from `before` to this scrape.
    pub fn grew(&self, before: &Scrape, name: &str, labels: &[&str]) -> f64 {
        self.sum(name, labels) - before.sum(name, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_series_by_name_and_labels() {
        let s = Scrape::parse(
            "# TYPE x counter\nx{a=\"1\",b=\"hit\"} 3\nx{a=\"2\",b=\"hit\"} 4\nx{a=\"2\",b=\"miss\"} 1\nxy 9\n",
        );
        assert!((s.sum("x", &["b=\"hit\""]) - 7.0).abs() < 1e-9);
        assert!((s.sum("x", &[]) - 8.0).abs() < 1e-9);
        assert!((s.sum("xy", &[]) - 9.0).abs() < 1e-9);
        assert!(s.sum("missing", &[]).abs() < 1e-9);
    }
}
