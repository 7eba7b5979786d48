//! The freshness probe: donates through node 0 and polls node 1 until its figure shows the
//! donation, once a second while the load runs.
//!
//! It gives to a campaign of its own (created at start), so no other donor moves the figure it
//! watches: the count it polls for is exactly the one it caused. The delay is timed from the moment
//! the donation is sent, so it includes the commit and the invalidation, as a donor would see it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Longest wait for one donation to show; past it the probe counts a timeout.
const GIVE_UP: Duration = Duration::from_secs(5);
/// Pause between polls of the other node.
const POLL: Duration = Duration::from_millis(2);
/// Pause between probes.
const EVERY: Duration = Duration::from_secs(1);

/// What the probe saw.
#[derive(Debug, Default)]
pub struct Freshness {
    /// One delay per donation that showed in time.
    pub delays: Vec<Duration>,
    /// Donations that did not show within [`GIVE_UP`], or requests that failed.
    pub failures: Vec<String>,
}

impl Freshness {
    /// The delay `fraction` (0–1) of probes were within, in ms; `None` without probes.
    pub fn percentile_ms(&self, fraction: f64) -> Option<f64> {
        let mut sorted = self.delays.clone();
        sorted.sort_unstable();
        let last = sorted.len().checked_sub(1)?;
        let at = ((last as f64) * fraction).round() as usize;
        Some(sorted[at.min(last)].as_secs_f64() * 1000.0)
    }
}

async fn json_of(response: reqwest::Response) -> Result<(u16, Value), String> {
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// Runs until `stop` is set. `writer` takes the donations, `reader` is polled.
pub async fn run(writer: String, reader: String, stop: Arc<AtomicBool>) -> Freshness {
    let mut seen = Freshness::default();
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            seen.failures.push(format!("no HTTP client: {e}"));
            return seen;
        }
    };
    let campaign = match create_campaign(&http, &writer).await {
        Ok(id) => id,
        Err(e) => {
            seen.failures
                .push(format!("could not create the probe's campaign: {e}"));
            return seen;
        }
    };
    // A fixed range spanning every donation: a calendar boundary mid-probe cannot move the count.
    let view = format!(
        "{reader}/api/widgets/total_donations?range=2000-01-01..2100-01-01&campaign_id={campaign}"
    );
    while !stop.load(Ordering::Relaxed) {
        match probe_once(&http, &writer, &view, campaign).await {
            Ok(delay) => seen.delays.push(delay),
            Err(e) => seen.failures.push(e),
        }
        tokio::time::sleep(EVERY).await;
    }
    seen
}

async fn create_campaign(http: &reqwest::Client, node: &str) -> Result<i64, String> {
    let response = http
        .post(format!("{node}/api/campaigns"))
        .json(&json!({"organization_id": 1, "name": "Freshness probe", "goal": 1000}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let (status, body) = json_of(response).await?;
    if status != 201 {
        return Err(format!("{status}: {body}"));
    }
    body["id"]
        .as_i64()
        .ok_or_else(|| format!("no id in {body}"))
}

async fn count(http: &reqwest::Client, view: &str) -> Result<i64, String> {
    let response = http.get(view).send().await.map_err(|e| e.to_string())?;
    let (status, body) = json_of(response).await?;
    if status != 200 {
        return Err(format!("{view}: {status}: {body}"));
    }
    body["data"]["count"]
        .as_i64()
        .ok_or_else(|| format!("no count in {body}"))
}

async fn probe_once(
    http: &reqwest::Client,
    writer: &str,
    view: &str,
    campaign: i64,
) -> Result<Duration, String> {
    // Read twice so the figure sits in the reader's L1 before the donation.
    let before = count(http, view).await?;
    count(http, view).await?;
    let sent = Instant::now();
    let response = http
        .post(format!("{writer}/api/donations"))
        .json(&json!({"campaign_id": campaign, "amount": 1, "donor": "Freshness probe"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let (status, body) = json_of(response).await?;
    if status != 201 {
        return Err(format!("donation refused: {status}: {body}"));
    }
    loop {
        let now = count(http, view).await?;
        if now > before {
            return Ok(sent.elapsed());
        }
        if sent.elapsed() > GIVE_UP {
            return Err(format!(
                "the donation did not show on the other node within {GIVE_UP:?} (count {now})"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
