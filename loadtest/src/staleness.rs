//! The stale-view check: once the load has stopped, every view the test requested, on every node,
//! must equal the same view computed straight from SQLite by the service (`bypass_cache=true`).
//!
//! A view that differs is read again after [`SETTLE`]: invalidations still on the bus when the
//! users stopped get that long to land. One that still differs is stale.

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde_json::Value;

/// How long a view may lag once writes have stopped before it counts as stale.
pub const SETTLE: Duration = Duration::from_secs(2);
/// Views checked at once.
const CONCURRENCY: usize = 16;

/// The nodes where a view differs from the database: (node, cached data, database data).
type Differences = Vec<(String, Value, Value)>;

/// What the check found.
#[derive(Debug, Default)]
pub struct Staleness {
    /// (view, node) pairs compared.
    pub compared: usize,
    /// Pairs that differed at the first look.
    pub lagging: usize,
    /// Pairs that still differed after [`SETTLE`]: `node view: cached vs database`.
    pub stale: Vec<String>,
    /// Requests that failed.
    pub errors: Vec<String>,
}

async fn data(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: {status}: {body}"));
    }
    Ok(body["data"].clone())
}

/// Compares `view` on every node with the database; returns the nodes where it differs.
async fn differs(
    http: &reqwest::Client,
    nodes: &[String],
    view: &str,
) -> Result<Differences, String> {
    let truth = data(
        http,
        &format!("{}/api/widgets/{view}&bypass_cache=true", nodes[0]),
    )
    .await?;
    let mut out = Vec::new();
    for node in nodes {
        let cached = data(http, &format!("{node}/api/widgets/{view}")).await?;
        if cached != truth {
            out.push((node.clone(), cached, truth.clone()));
        }
    }
    Ok(out)
}

/// Checks every view in `views` on every node.
pub async fn check(http: &reqwest::Client, nodes: &[String], views: Vec<String>) -> Staleness {
    let mut found = Staleness {
        compared: views.len() * nodes.len(),
        ..Staleness::default()
    };
    let first: Vec<(String, Result<Differences, String>)> = stream::iter(views)
        .map(|view| async move {
            let result = differs(http, nodes, &view).await;
            (view, result)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut again = Vec::new();
    for (view, result) in first {
        match result {
            Ok(bad) if bad.is_empty() => {}
            Ok(bad) => {
                found.lagging += bad.len();
                again.push(view);
            }
            Err(e) => found.errors.push(e),
        }
    }
    if again.is_empty() {
        return found;
    }
    tokio::time::sleep(SETTLE).await;
    for view in again {
        match differs(http, nodes, &view).await {
            Ok(bad) => found.stale.extend(
                bad.into_iter()
                    .map(|(node, cached, truth)| format!("{node} {view}: {cached} vs {truth}")),
            ),
            Err(e) => found.errors.push(e),
        }
    }
    found
}
