//! A node past its limit of requests in flight: it sheds at once with a 503 to retry, in the JSON
//! error shape, counts what it shed, and still answers its probes.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, eventually, Demo, Raw, DEADLINE};
use serde_json::Value;

#[tokio::test]
async fn past_max_in_flight_requests_are_shed_with_503_and_retry_after() {
    // The held request below waits for a body that never comes: the header-read timeout (which
    // also bounds a body) and the request timeout are long, so it stays in flight until dropped.
    let demo = Demo::start(
        "shed",
        &[
            "--nodes",
            "1",
            "--no-cache",
            "--max-in-flight",
            "1",
            "--header-read-timeout",
            "120s",
            "--request-timeout",
            "120s",
        ],
    );
    let base = &demo.urls[0];
    let http = client();
    let mut held = Raw::connect(base).await;
    held.send(
        "POST /api/donations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 60\r\n\r\n{\"campaign_id\": 3",
    )
    .await;
    // Polled: the held request takes its slot once the node has read its header, and keeps it.
    let widgets = format!("{base}/api/widgets");
    eventually(DEADLINE, "a request is shed while one is held", || async {
        http.get(&widgets).send().await.unwrap().status().as_u16() == 503
    })
    .await;
    let shed = http.get(&widgets).send().await.unwrap();
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert!(shed
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json")));
    let body: Value = shed.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("--max-in-flight")),
        "{body}"
    );
    for probe in ["/livez", "/readyz"] {
        let status = http.get(format!("{base}{probe}")).send().await.unwrap();
        assert_eq!(status.status().as_u16(), 200, "{probe} is never shed");
    }

    drop(held);
    eventually(DEADLINE, "the shed requests are counted", || async {
        let Ok(response) = http.get(format!("{base}/metrics")).send().await else {
            return false;
        };
        if response.status().as_u16() != 200 {
            return false;
        }
        let text = response.text().await.unwrap_or_default();
        text.lines().any(|l| {
            l.starts_with("demo_requests_shed_total{node=\"node-0\"}")
                && l.rsplit(' ')
                    .next()
                    .and_then(|n| n.parse::<f64>().ok())
                    .is_some_and(|n| n >= 1.0)
        })
    })
    .await;
    // The slot came back: requests are served again.
    let status = http
        .get(format!("{base}/api/widgets"))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status().as_u16(), 200);
}
