//! The HTTP API of a two-node demo over a private Redis: status codes, JSON shapes, bad input, and a
//! donation on one node seen fresh on the other.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, donate, eventually, get, post, total, Demo, Raw, RedisServer, DEADLINE};
use serde_json::Value;

#[tokio::test]
async fn every_widget_type_answers_with_its_source_and_shape() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("shape", &redis);
    let http = client();
    let (status, catalogue) = get(&http, &format!("{}/api/widgets", demo.urls[0])).await;
    assert_eq!(status, 200);
    let widgets: Vec<&str> = catalogue["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(widgets.len(), 7, "{catalogue}");
    let (status, directory) = get(&http, &format!("{}/api/organizations", demo.urls[1])).await;
    assert_eq!(status, 200);
    let organizations = directory.as_array().unwrap();
    assert_eq!(organizations.len(), 20, "the demo's generated data");
    assert_eq!(organizations[0]["campaigns"].as_array().unwrap().len(), 25);
    assert!(organizations[0]["employees"].as_i64().unwrap() > 0);
    for widget in widgets {
        // A campaign's view: start-up warming loads the global and organisation views, not these.
        let url = format!(
            "{}/api/widgets/{widget}?range=last_30_days&campaign_id=1",
            demo.urls[0]
        );
        let (status, first) = get(&http, &url).await;
        assert_eq!(status, 200, "{first}");
        for field in [
            "widget",
            "range",
            "period",
            "filters",
            "data",
            "source",
            "node",
            "generated_at",
        ] {
            assert!(
                first.get(field).is_some(),
                "{widget}: no {field} in {first}"
            );
        }
        assert_eq!(first["widget"], widget);
        assert_eq!(first["range"], "last_30_days");
        assert_eq!(first["filters"]["campaign_id"], "1");
        assert_eq!(first["source"], "loaded", "{widget}: first read computes");
        let (_, again) = get(&http, &url).await;
        assert_eq!(
            again["source"], "l1",
            "{widget}: second read on the node is an L1 hit"
        );
        assert_eq!(again["data"], first["data"]);
        let other = url.replace(&demo.urls[0], &demo.urls[1]);
        let (_, elsewhere) = get(&http, &other).await;
        assert_eq!(
            elsewhere["source"], "l2",
            "{widget}: the other node reads Redis"
        );
        assert_eq!(elsewhere["node"], "node-1");
        assert_eq!(elsewhere["data"], first["data"]);
    }
    let (count, total_cents, _) = total(&http, &demo.urls[0], "").await;
    assert!(count >= 0 && total_cents >= 0);
    let (_, direct) = get(
        &http,
        &format!(
            "{}/api/widgets/total_donations?range=this_month&bypass_cache=true",
            demo.urls[1]
        ),
    )
    .await;
    assert_eq!(direct["source"], "database");
    assert_eq!(direct["data"]["count"].as_i64().unwrap(), count);
    assert!(
        direct["data"]["total"].is_number(),
        "units beside cents: {direct}"
    );
}

#[tokio::test]
async fn bad_queries_are_400_naming_what_is_valid() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("bad-queries", &redis);
    let http = client();
    let base = &demo.urls[0];
    for (path, names) in [
        ("/api/widgets/pie_chart", "total_donations"),
        (
            "/api/widgets/total_donations?range=next_month",
            "this_month",
        ),
        (
            "/api/widgets/total_donations?range=2025-02-01..2025-01-01",
            "last_30_days",
        ),
        (
            "/api/widgets/total_donations?organization_id=abc",
            "positive",
        ),
        ("/api/widgets/total_donations?currency=euro", "three-letter"),
        ("/api/widgets/total_donations?colour=red", "organization_id"),
        ("/api/widgets/total_donations?bypass_cache=maybe", "true"),
    ] {
        let (status, body) = get(&http, &format!("{base}{path}")).await;
        assert_eq!(status, 400, "{path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(names), "{path}: {error}");
    }
    let (_, body) = get(&http, &format!("{base}/api/widgets/pie_chart")).await;
    assert_eq!(body["valid"].as_array().unwrap().len(), 7, "{body}");
    let (status, body) = get(&http, &format!("{base}/no/such/page")).await;
    assert_eq!(status, 404);
    assert!(body["valid"].is_array());
}

/// A dashboard in one request: the seven widgets with their sources, computed in one load, then
/// the other node's read from L2, the same figures as one widget's request, and bad input named.
#[tokio::test]
async fn a_dashboard_answers_every_widget_in_one_request() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("dashboard", &redis);
    let http = client();
    // A campaign's views: start-up warming loads the global and organisation views, not these.
    let query = "range=last_30_days&campaign_id=2";
    let url = |node: usize| format!("{}/api/dashboard?{query}", demo.urls[node]);
    let sources = |answer: &Value| -> Vec<String> {
        answer["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["source"].as_str().unwrap_or("error").to_owned())
            .collect()
    };
    let (status, first) = get(&http, &url(0)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["range"], "last_30_days");
    assert_eq!(first["filters"]["campaign_id"], "2");
    assert_eq!(first["node"], "node-0");
    assert_eq!(sources(&first), vec!["loaded"; 7], "{first}");
    let (status, elsewhere) = get(&http, &url(1)).await;
    assert_eq!(status, 200);
    assert_eq!(sources(&elsewhere), vec!["l2"; 7]);
    let (_, again) = get(&http, &url(0)).await;
    assert_eq!(sources(&again), vec!["l1"; 7]);
    for (part, other) in first["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .zip(elsewhere["widgets"].as_array().unwrap())
    {
        assert_eq!(part["data"], other["data"]);
        let widget = part["widget"].as_str().unwrap();
        let (_, one) = get(
            &http,
            &format!("{}/api/widgets/{widget}?{query}", demo.urls[1]),
        )
        .await;
        assert_eq!(one["source"], "l1", "{widget}: the dashboard filled L1");
        assert_eq!(one["data"], part["data"], "{widget}");
    }
    let (status, body) = get(
        &http,
        &format!("{}/api/dashboard?range=fortnight", demo.urls[0]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "range");
    let (status, body) = get(&http, &format!("{}/api/dashboard?color=red", demo.urls[0])).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("valid parameters"));
}

#[tokio::test]
async fn a_donation_on_one_node_is_seen_fresh_on_the_other() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("donation", &redis);
    let http = client();
    let (a, b) = (&demo.urls[0], &demo.urls[1]);
    // Both nodes hold the figure in L1 before the donation.
    let (count, cents, _) = total(&http, a, "").await;
    let _ = total(&http, b, "").await;
    assert_eq!(total(&http, b, "").await.2, "l1");
    let stored = donate(
        &http,
        a,
        r#"{"campaign_id": 3, "amount": 12.34, "currency": "eur", "donor": "Ada"}"#,
    )
    .await;
    assert_eq!(stored["amount_cents"], 1234);
    assert_eq!(stored["currency"], "EUR");
    assert_eq!(stored["donor"], "Ada");
    assert_eq!(stored["invalidation"], "done");
    assert!(stored["id"].as_i64().unwrap() > 3000);
    eventually(DEADLINE, "node 1 shows the donation", || async {
        total(&http, b, "").await.0 == count + 1
    })
    .await;
    let (after_count, after_cents, source) = total(&http, b, "").await;
    assert_eq!((after_count, after_cents), (count + 1, cents + 1234));
    assert_ne!(source, "stale");
    // The narrower views that contain it moved too; one of another campaign stayed cached.
    let campaign = total(&http, b, "&campaign_id=3").await;
    let direct = total(&http, b, "&campaign_id=3&bypass_cache=true").await;
    assert_eq!((campaign.0, campaign.1), (direct.0, direct.1));
}

#[tokio::test]
async fn bad_donations_are_refused_and_nothing_is_written() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("bad-donations", &redis);
    let http = client();
    let base = &demo.urls[0];
    let before = total(&http, base, "&bypass_cache=true").await;
    for (body, status, says) in [
        (r#"{"campaign_id": 3, "amount": 0}"#, 422, "more than 0"),
        (r#"{"campaign_id": 3, "amount": -5}"#, 422, "more than 0"),
        (
            r#"{"campaign_id": 3, "amount": 12.345}"#,
            422,
            "two decimals",
        ),
        (
            r#"{"campaign_id": 3, "amount": "lots"}"#,
            422,
            "decimal amount",
        ),
        (r#"{"campaign_id": 3, "amount": 1e400}"#, 422, "maximum"),
        (
            r#"{"campaign_id": 99999, "amount": 5}"#,
            422,
            "campaign 99999",
        ),
        (
            r#"{"campaign_id": 3, "amount": 5, "employee_id": 999999}"#,
            422,
            "employee 999999",
        ),
        (
            r#"{"campaign_id": 3, "amount": 5, "currency": "euros"}"#,
            422,
            "three-letter",
        ),
        (
            r#"{"campaign_id": 3, "amount": 5, "tip": 1}"#,
            422,
            "unknown field",
        ),
        (r#"{"amount": 5}"#, 422, "campaign_id"),
        (r#"{"campaign_id": 3, "amount": 5"#, 400, "not valid JSON"),
        ("", 400, "not valid JSON"),
    ] {
        let (got, answer) = post(&http, &format!("{base}/api/donations"), body).await;
        assert_eq!(got, status, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{body}: {error}");
    }
    assert_eq!(total(&http, base, "&bypass_cache=true").await.0, before.0);
}

#[tokio::test]
async fn a_new_campaign_shows_in_campaign_performance_on_every_node() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("campaign", &redis);
    let http = client();
    let query = "/api/widgets/campaign_performance?range=this_year&organization_id=2&limit=100";
    let rows = |body: &Value| body["data"].as_array().unwrap().len();
    let (_, before) = get(&http, &format!("{}{query}", demo.urls[1])).await;
    let (_, cached) = get(&http, &format!("{}{query}", demo.urls[1])).await;
    assert_eq!(cached["source"], "l1");
    let (status, created) = post(
        &http,
        &format!("{}/api/campaigns", demo.urls[0]),
        r#"{"organization_id": 2, "name": "Winter appeal", "goal": "2500.00"}"#,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["goal_cents"], 250_000);
    assert_eq!(created["invalidation"], "done");
    eventually(DEADLINE, "node 1 lists the new campaign", || async {
        let (_, after) = get(&http, &format!("{}{query}", demo.urls[1])).await;
        rows(&after) == rows(&before) + 1
    })
    .await;
    for (body, says) in [
        (
            r#"{"organization_id": 999, "name": "X", "goal": 10}"#,
            "organization 999",
        ),
        (r#"{"organization_id": 2, "name": " ", "goal": 10}"#, "name"),
        (
            r#"{"organization_id": 2, "name": "X", "goal": 0}"#,
            "more than 0",
        ),
        (
            r#"{"organization_id": 2, "name": "X", "goal": 10, "starts_on": "2026-05-01", "ends_on": "2026-04-01"}"#,
            "after",
        ),
    ] {
        let (status, answer) = post(&http, &format!("{}/api/campaigns", demo.urls[0]), body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
}

#[tokio::test]
async fn health_status_and_metrics_describe_the_node() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("observability", &redis);
    let http = client();
    let base = &demo.urls[0];
    for _ in 0..3 {
        let _ = total(&http, base, "").await;
    }
    let (status, health) = get(&http, &format!("{base}/health")).await;
    assert!(status == 200 || status == 503, "{health}");
    let score = health["score"].as_u64().unwrap();
    assert!(score <= 100);
    assert_eq!(health["redis"]["available"], true);
    assert_eq!(health["node"], "node-0");
    let (status, report) = get(&http, &format!("{base}/api/status")).await;
    assert_eq!(status, 200);
    assert!(
        report["health"]["score"].as_u64().unwrap() <= 100,
        "{report}"
    );
    assert_eq!(report["namespace"], "demo");
    assert_eq!(report["widgets"].as_object().unwrap().len(), 7, "{report}");
    assert!(
        report["requests"]["requests"].as_u64().unwrap() >= 3,
        "{report}"
    );
    assert!(
        report["windows"]["last_1m"]["locks"]["contended"].is_u64(),
        "{report}"
    );
    assert!(report["coherence"]["suspect"].is_boolean(), "{report}");
    assert!(
        report["redis"]["used_memory"].as_u64().unwrap() > 0,
        "{report}"
    );
    let (status, history) = get(&http, &format!("{base}/api/status/history?snapshots=5")).await;
    assert_eq!(status, 200);
    assert!(history.is_array(), "{history}");
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "tiercache_l1_hits_total",
        "tiercache_misses_total",
        "widget_cache_requests_total",
        "widget_data_queries_total",
        "http_requests_total{node=\"node-0\",route=\"/api/widgets/{widget}\",method=\"GET\",status=\"200\"}",
        "http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(series), "no {series} in /metrics:\n{text}");
    }
}

/// 2026-12-30T12:00:00Z in Unix seconds.
const DEMO_NOW: i64 = 1_798_632_000;

/// `range` of `widget` on node `url`, read once.
async fn view(http: &reqwest::Client, url: &str, widget: &str, range: &str) -> Value {
    let (status, body) = get(http, &format!("{url}/api/widgets/{widget}?range={range}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn with_now_the_service_runs_on_the_calendar_it_names() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::start(
        "now",
        &[
            "--nodes",
            "2",
            "--redis-url",
            &redis.url(),
            "--now",
            "2026-12-30T12:00:00Z",
        ],
    );
    let http = client();
    let (a, b) = (&demo.urls[0], &demo.urls[1]);
    let month = view(&http, a, "total_donations", "this_month").await;
    assert_eq!(
        month["period"]["start"], "2026-12-01T00:00:00.000Z",
        "{month}"
    );
    assert_eq!(
        month["period"]["end"], "2027-01-01T00:00:00.000Z",
        "{month}"
    );
    let today = view(&http, b, "total_donations", "today").await;
    assert_eq!(
        today["period"]["start"], "2026-12-30T00:00:00.000Z",
        "{today}"
    );
    assert!(
        today["generated_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-30T12:"),
        "{today}"
    );
    // The generated data ends at that instant: its newest donation is a little before it.
    let recent = view(&http, a, "recent_activities", "last_30_days").await;
    let newest = recent["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["created_at"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(
        (DEMO_NOW - 2 * 86_400..=DEMO_NOW).contains(&newest),
        "newest generated donation at {newest}, --now is {DEMO_NOW}"
    );

    let count_today = today["data"]["count"].as_i64().unwrap();
    let stored = donate(&http, a, r#"{"campaign_id": 3, "amount": 5}"#).await;
    let created_at = stored["created_at"].as_i64().unwrap();
    assert!(
        (DEMO_NOW..DEMO_NOW + 120).contains(&created_at),
        "dated {created_at}, --now is {DEMO_NOW}"
    );
    // Its invalidation judges "today" by the same clock, so node 1's cached today moves.
    eventually(DEADLINE, "node 1's today shows the donation", || async {
        view(&http, b, "total_donations", "today").await["data"]["count"]
            .as_i64()
            .unwrap()
            == count_today + 1
    })
    .await;
}

/// One filter, one view: `organization_id=01` and `=+1` are organisation 1, cached under its key
/// and tags, so a donation reaches them (spelled as written, they were views of their own that no
/// donation invalidated). `limit` is capped.
#[tokio::test]
async fn ids_are_read_in_one_canonical_form_so_every_spelling_sees_a_donation() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("canonical-ids", &redis);
    let http = client();
    let a = &demo.urls[0];
    let (status, directory) = get(&http, &format!("{a}/api/organizations")).await;
    assert_eq!(status, 200, "{directory}");
    let org = directory[0]["id"].as_i64().unwrap();
    let campaign = directory[0]["campaigns"][0]["id"].as_i64().unwrap();
    let spellings = [
        format!("&organization_id=0{org}"),
        format!("&organization_id=%2B{org}"),
    ];
    let (count, _, _) = total(&http, a, &format!("&organization_id={org}")).await;
    for spelling in &spellings {
        // The same key as the plain spelling, read just before: already in L1.
        let (seen, _, source) = total(&http, a, spelling).await;
        assert_eq!((seen, source.as_str()), (count, "l1"), "{spelling}");
    }
    let (status, stored) = post(
        &http,
        &format!("{a}/api/donations"),
        &format!(r#"{{"campaign_id": {campaign}, "amount": 5, "donor": "Canonical"}}"#),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    for spelling in &spellings {
        eventually(
            DEADLINE,
            &format!("{spelling} shows the donation"),
            || async { total(&http, a, spelling).await.0 == count + 1 },
        )
        .await;
    }
    let (status, answer) = get(
        &http,
        &format!("{a}/api/widgets/top_donors?range=this_month&limit=101"),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 100"),
        "{answer}"
    );
}

/// A body a cross-site form can send (`text/plain`, a urlencoded form, none) is refused with 415
/// before anything is written; only `application/json` is read.
#[tokio::test]
async fn a_post_that_is_not_json_is_refused_with_415() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("content-type", &redis);
    let http = client();
    let base = &demo.urls[0];
    let before = total(&http, base, "&bypass_cache=true").await;
    let body = r#"{"campaign_id": 3, "amount": 5}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        for path in ["/api/donations", "/api/campaigns"] {
            let mut request = http.post(format!("{base}{path}")).body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 415, "{path} {content_type:?}");
            let answer: Value = response.json().await.unwrap();
            let error = answer["error"].as_str().unwrap_or_default();
            assert!(error.contains("application/json"), "{path}: {error}");
        }
    }
    let (status, stored) = post(&http, &format!("{base}/api/donations"), body).await;
    assert_eq!(
        status, 201,
        "JSON with charset-less application/json is read: {stored}"
    );
    assert_eq!(
        total(&http, base, "&bypass_cache=true").await.0,
        before.0 + 1,
        "only the JSON post was written"
    );
}

/// `status` and JSON body of `request`, asserting the body is JSON.
async fn json_answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{status}: content-type {content_type:?}"
    );
    (status, response.json().await.unwrap())
}

/// Every error answer is JSON in one shape (`error`, and `field` or `valid` where they apply),
/// axum's own included: a method a route does not take (405), a body over the limit (413), a query
/// the extractor refuses (400), as well as the handlers' 404, 415, 400 and 422.
#[tokio::test]
async fn every_error_status_answers_in_the_json_error_shape() {
    let demo = Demo::start("error-shapes", &["--nodes", "1", "--no-cache"]);
    let http = client();
    let base = &demo.urls[0];
    let json = |path: &str, body: String| {
        http.post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body)
    };
    let cases = [
        (404, http.get(format!("{base}/no/such/page"))),
        (405, http.get(format!("{base}/api/donations"))),
        (405, http.delete(format!("{base}/api/campaigns"))),
        (
            413,
            json(
                "/api/donations",
                format!(
                    r#"{{"campaign_id": 3, "amount": 5, "donor": "{}"}}"#,
                    "x".repeat(20_000)
                ),
            ),
        ),
        (
            415,
            http.post(format!("{base}/api/donations"))
                .header("content-type", "text/plain")
                .body("{}"),
        ),
        (400, json("/api/donations", "{not json".to_owned())),
        (
            400,
            http.get(format!("{base}/api/status/history?colour=red")),
        ),
        (
            400,
            http.get(format!(
                "{base}/api/widgets/total_donations?range=next_week"
            )),
        ),
        (
            422,
            json(
                "/api/donations",
                r#"{"campaign_id": 3, "amount": 0}"#.to_owned(),
            ),
        ),
    ];
    for (expected, request) in cases {
        let (status, body) = json_answer(request).await;
        assert_eq!(status, expected, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty(), "{expected}: no error text in {body}");
        if expected == 405 {
            assert!(body["valid"].is_array(), "405 names the methods: {body}");
        }
    }
}

/// A POST whose body does not arrive is answered 408 after the header-read timeout, and a request
/// still running after the request timeout 503; both in the JSON error shape.
#[tokio::test]
async fn a_body_that_never_arrives_is_408_and_a_request_past_its_timeout_503_both_json() {
    let slow_body = "POST /api/donations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                     Content-Length: 60\r\n\r\n{\"campaign_id\": 3";
    for (args, expected) in [
        (
            ["--header-read-timeout", "1s", "--request-timeout", "60s"],
            408,
        ),
        (
            ["--header-read-timeout", "60s", "--request-timeout", "1s"],
            503,
        ),
    ] {
        let demo = Demo::start(
            "timeouts",
            &[&["--nodes", "1", "--no-cache"][..], &args[..]].concat(),
        );
        let mut raw = Raw::connect(&demo.urls[0]).await;
        raw.send(slow_body).await;
        let (status, head, body) = raw.response().await;
        assert_eq!(status, expected, "{head}\n{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("timeout")),
            "{body}"
        );
    }
}

/// With an admin token set, the writes and the status API ask for `Authorization: Bearer <token>`:
/// none (or another scheme) is a 401 with `WWW-Authenticate: Bearer`, a wrong token a 403, both in
/// the JSON error shape; the right one goes through. Widget reads, the pages, the probes, `/health`
/// and `/metrics` stay open, and the token is never printed.
#[tokio::test]
async fn with_an_admin_token_writes_and_the_status_api_ask_for_it() {
    let redis = RedisServer::start().unwrap();
    let token = "s3cret-admin-token-for-tests";
    let demo = Demo::with_admin_token("admin-token", &redis, token);
    let http = client();
    let base = &demo.urls[0];
    let donation = r#"{"campaign_id": 3, "amount": 5}"#;
    let campaign = r#"{"organization_id": 2, "name": "Token appeal", "goal": 100}"#;
    let post = |path: &str, body: &str, authorization: Option<&str>| {
        let mut request = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request
    };
    let status_of = |path: &str, authorization: Option<&str>| {
        let mut request = http.get(format!("{base}{path}"));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request
    };
    let right = format!("Bearer {token}");
    for (path, body) in [("/api/donations", donation), ("/api/campaigns", campaign)] {
        for authorization in [None, Some("Basic czNjcmV0"), Some("Bearer")] {
            let response = post(path, body, authorization).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401, "{path} {authorization:?}");
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert!(challenge.starts_with("Bearer"), "{challenge:?}");
            let answer: Value = response.json().await.unwrap();
            assert!(answer["error"].is_string(), "{answer}");
        }
        let (status, answer) =
            json_answer(post(path, body, Some("Bearer s3cret-admin-token-for-test"))).await;
        assert_eq!(status, 403, "{path}: {answer}");
        let (status, answer) = json_answer(post(path, body, Some(&right))).await;
        assert_eq!(status, 201, "{path}: {answer}");
    }
    for path in ["/api/status", "/api/status/history", "/api/status/latency"] {
        let (status, _) = json_answer(status_of(path, None)).await;
        assert_eq!(status, 401, "{path}");
        let (status, _) = json_answer(status_of(path, Some("Bearer nope"))).await;
        assert_eq!(status, 403, "{path}");
        let (status, answer) = json_answer(status_of(path, Some(&right))).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    for path in [
        "/",
        "/ops",
        "/assets/common.js",
        "/api/widgets/total_donations?range=this_month",
        "/api/organizations",
        "/metrics",
        "/livez",
        "/readyz",
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path} stays open");
    }
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert!(
        ![401, 403].contains(&health.status().as_u16()),
        "/health stays open"
    );
    assert!(
        !demo.printed.iter().any(|l| l.contains(token)),
        "{:?}",
        demo.printed
    );
}

/// A trend answers one point per day of its period, in order, a day without donations as zeros
/// (the view holds only the days that had some), through the cache and straight from the
/// database alike.
#[tokio::test]
async fn a_trend_answers_every_day_of_its_period() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("every-day", &redis);
    let http = client();
    let base = &demo.urls[0];
    for query in [
        "range=last_30_days&organization_id=1",
        "range=last_30_days&organization_id=1&bypass_cache=true",
        // Across the end of February, and ending in the future: days no donation can have.
        "range=2026-02-20..2027-01-03&campaign_id=3",
    ] {
        let (status, answer) = get(
            &http,
            &format!("{base}/api/widgets/donation_trends?{query}"),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let day = |field: &str| {
            let at = answer["period"][field].as_str().unwrap();
            chrono::DateTime::parse_from_rfc3339(at)
                .unwrap()
                .timestamp()
                / 86_400
        };
        let days: Vec<&Value> = answer["data"].as_array().unwrap().iter().collect();
        let wanted: Vec<i64> = (day("start")..day("end")).collect();
        let answered: Vec<i64> = days.iter().map(|d| d["day"].as_i64().unwrap()).collect();
        assert_eq!(answered, wanted, "{query}: every day once, in order");
        let empty = days.iter().filter(|d| d["count"] == 0).count();
        assert!(empty > 0, "{query}: some day had no donations: {answer}");
        for d in days.iter().filter(|d| d["count"] == 0) {
            assert_eq!(d["total_cents"], 0, "{d}");
            assert_eq!(d["total"].as_f64(), Some(0.0), "{d}");
        }
        let summed: i64 = days.iter().map(|d| d["count"].as_i64().unwrap()).sum();
        let (_, total) = get(
            &http,
            &format!("{base}/api/widgets/total_donations?{query}"),
        )
        .await;
        assert_eq!(summed, total["data"]["count"].as_i64().unwrap(), "{query}");
    }
}

/// `GET /api/status/latency`: the percentiles of the node's own widget reads over the last minute,
/// computed by the node.
#[tokio::test]
async fn the_node_answers_the_percentiles_of_its_widget_reads() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("latency", &redis);
    let http = client();
    let (status, before) = get(&http, &format!("{}/api/status/latency", demo.urls[0])).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["requests"], 0, "no widget read yet: {before}");
    assert_eq!(before["percentiles"], Value::Array(Vec::new()));
    for widget in [
        "total_donations",
        "top_donors",
        "total_donations",
        "nonsense",
    ] {
        get(&http, &format!("{}/api/widgets/{widget}", demo.urls[0])).await;
    }
    // Other routes are not counted.
    get(&http, &format!("{}/api/organizations", demo.urls[0])).await;
    let (_, figures) = get(&http, &format!("{}/api/status/latency", demo.urls[0])).await;
    assert_eq!(figures["node"], "node-0");
    assert_eq!(
        figures["routes"],
        serde_json::json!(["/api/widgets/{widget}", "/api/dashboard"])
    );
    assert_eq!(figures["requests"], 4, "{figures}");
    let bounds: Vec<f64> = figures["percentiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["at_most_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(bounds.len(), 3, "p50, p95, p99: {figures}");
    assert!(bounds[0] > 0.0, "{figures}");
    assert!(bounds.windows(2).all(|w| w[0] <= w[1]), "{figures}");
    assert_eq!(figures["percentiles"][1]["quantile"], 0.95);
    let (_, other) = get(&http, &format!("{}/api/status/latency", demo.urls[1])).await;
    assert_eq!(other["node"], "node-1");
    assert_eq!(
        other["requests"], 0,
        "each node times its own reads: {other}"
    );
}
