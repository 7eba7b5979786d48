//! The pages in a real browser: Debian's headless Chromium through chromedriver (install both with
//! `scripts/ensure-chromium`). Screenshots land in `target/screenshots/`.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{client, get, Demo, RedisServer, TempDir, DEADLINE};
use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// A chromedriver process and one browser session on it.
struct Browser {
    driver: Child,
    client: Client,
    _profile: TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

impl Browser {
    async fn start(name: &str) -> Browser {
        let profile = TempDir::new(&format!("chromium-{name}"));
        // A session request can meet a driver that is not ready yet (seen once in CI: the connection
        // was reset), or another test's driver when two picked the same free port: start over on a
        // new port until the deadline.
        let started = Instant::now();
        loop {
            let (mut driver, port) = Self::start_driver();
            match Self::session(port, &profile).await {
                Ok(client) => {
                    return Browser {
                        driver,
                        client,
                        _profile: profile,
                    }
                }
                Err(e) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    assert!(
                        started.elapsed() < DEADLINE,
                        "no Chromium session within {DEADLINE:?}: {e}"
                    );
                    eprintln!("a Chromium session failed ({e}); starting chromedriver again");
                }
            }
        }
    }

    /// Starts chromedriver on a free port and waits until it listens.
    fn start_driver() -> (Child, u16) {
        let driver_path = on_path("chromedriver")
            .expect("chromedriver is not on PATH: run scripts/ensure-chromium");
        let port = free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < DEADLINE,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        (driver, port)
    }

    /// Asks the driver on `port` for a headless Chromium session using `profile`.
    async fn session(
        port: u16,
        profile: &TempDir,
    ) -> Result<Client, fantoccini::error::NewSessionError> {
        let chromium =
            on_path("chromium").expect("chromium is not on PATH: run scripts/ensure-chromium");
        // The flags a root, network-less, GPU-less machine needs; no first-run or background traffic.
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1700",
                    format!("--user-data-dir={}", profile.0.display()),
                ]
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a json! object literal is an object")
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
    }

    async fn script(&self, source: &str) -> Value {
        self.client.execute(source, Vec::new()).await.unwrap()
    }

    /// Clicks the element whose id is `id`.
    async fn click(&self, id: &str) {
        let element = self.client.find(Locator::Id(id)).await.unwrap();
        element.click().await.unwrap();
    }

    /// Opens the dashboard of the node at `base` with `query` and waits for its first full
    /// refresh.
    async fn open_dashboard(&self, base: &str, query: &str) {
        self.client.goto(&format!("{base}/?{query}")).await.unwrap();
        self.wait_refreshes(1).await;
    }

    /// Opens `/ops` of the node at `base` and waits until it has refreshed twice.
    async fn open_ops(&self, base: &str) {
        self.client.goto(&format!("{base}/ops")).await.unwrap();
        self.wait_refreshes(2).await;
    }

    /// Waits until the dashboard has refreshed at least `n` times since it loaded.
    async fn wait_refreshes(&self, n: u64) {
        let started = Instant::now();
        loop {
            let done = self
                .script("return Number(document.body.dataset.refreshed || 0);")
                .await
                .as_u64()
                .unwrap_or(0);
            if done >= n {
                return;
            }
            let errors = self.errors().await;
            assert!(errors.is_empty(), "the page reported errors: {errors:?}");
            assert!(
                started.elapsed() < DEADLINE,
                "the dashboard never refreshed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `source` (a script's body) until it returns something other than null, or fails after
    /// the deadline saying `what` never happened.
    async fn until(&self, what: &str, source: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.script(source).await;
            if !value.is_null() {
                return value;
            }
            let errors = self.errors().await;
            assert!(errors.is_empty(), "the page reported errors: {errors:?}");
            assert!(started.elapsed() < DEADLINE, "{what} never happened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Moves the mouse to the point of index `i` of the chart in `selector` (scrolled into view,
    /// halfway up its plot) and returns the tooltip it then shows: `{date, value, text}` of its
    /// `<time datetime>`, its first value's `data-value` and its whole text.
    async fn hover_point(&self, selector: &str, i: usize) -> Value {
        let at = self
            .script(&format!(
                "const c = document.querySelector('{selector}');
                 c.scrollIntoView({{ block: 'center' }});
                 const u = c.chart, box = u.over.getBoundingClientRect();
                 return [box.left + u.valToPos(u.data[0][{i}], 'x'), box.top + box.height / 2];"
            ))
            .await;
        let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        let mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveTo {
            duration: Some(Duration::from_millis(100)),
            x: x.round(),
            y: y.round(),
        });
        self.client.perform_actions(mouse).await.unwrap();
        self.until(
            &format!("a tooltip at point {i} of {selector}"),
            &format!(
                "const t = document.querySelector('{selector} .chart-tip');
                 if (!t || t.hidden || t.dataset.index !== '{i}') return null;
                 return {{ date: t.querySelector('time').getAttribute('datetime'),
                   value: t.querySelector('b').dataset.value, text: t.textContent }};"
            ),
        )
        .await
    }

    /// The computed font size of the chart in `selector`, the font its axes are drawn in, its width,
    /// and the tick labels of its axes and legend.
    async fn chart_text(&self, selector: &str) -> Value {
        self.until(
            &format!("a chart in {selector}"),
            &format!(
                "const c = document.querySelector('{selector}');
                 if (!c || !c.chart || !c.dataset.xTicks) return null;
                 return {{ size: getComputedStyle(c).fontSize, font: c.dataset.axisFont,
                   width: c.chart.width, x: c.dataset.xTicks.split(' | '), y: c.dataset.yTicks.split(' | '),
                   legend: c.querySelector('.u-legend').textContent,
                   legendSize: getComputedStyle(c.querySelector('.u-legend')).fontSize }};"
            ),
        )
        .await
    }

    /// Script errors, failed loads and console errors the page recorded.
    async fn errors(&self) -> Vec<String> {
        let recorded = self
            .script("return window.pageErrors || ['the page did not run its error capture'];")
            .await;
        recorded
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The attribute `name` of the element `at`, parsed; panics when either is missing.
    async fn attr<T: std::str::FromStr<Err: std::fmt::Debug>>(
        &self,
        at: Locator<'_>,
        name: &str,
    ) -> T {
        let element = self.client.find(at).await.unwrap();
        let value = element.attr(name).await.unwrap();
        value.expect(name).parse().unwrap()
    }

    /// The count `total_donations` shows now.
    async fn shown_count(&self) -> i64 {
        self.attr(Locator::Css("#w-total_donations .figure"), "data-count")
            .await
    }

    /// Saves a screenshot as `target/screenshots/<name>.png`.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends a test's visit: the page reported no error, its picture is kept as `name`, and the
    /// browser is closed.
    async fn finish(self, name: &str) {
        let errors = self.errors().await;
        assert!(errors.is_empty(), "{errors:?}");
        self.screenshot(name).await;
        self.close().await;
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// A private Redis, a two-node demo over it named `browser-<name>`, and a browser whose
/// screenshots are named `name`: where most of these tests start. Hold the Redis to the end.
async fn two_nodes_and_a_browser(name: &str) -> (RedisServer, Demo, Browser) {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes(&format!("browser-{name}"), &redis);
    (redis, demo, Browser::start(name).await)
}

#[tokio::test]
async fn the_dashboard_shows_the_apis_figures_and_fits_a_phone() {
    let (_redis, demo, browser) = two_nodes_and_a_browser("figures").await;
    let query = "range=last_30_days&organization_id=1";
    browser.open_dashboard(&demo.urls[0], query).await;
    let (_, api) = get(
        &client(),
        &format!("{}/api/widgets/total_donations?{query}", demo.urls[0]),
    )
    .await;
    assert_eq!(
        browser.shown_count().await,
        api["data"]["count"].as_i64().unwrap()
    );
    let sources = browser
        .script(
            "return [...document.querySelectorAll('.card[id^=w-]')].map(c => c.dataset.source);",
        )
        .await;
    let sources = sources.as_array().unwrap();
    assert_eq!(sources.len(), 7);
    for source in sources {
        assert!(
            ["l1", "l2", "loaded"].contains(&source.as_str().unwrap()),
            "every widget answered from a tier: {sources:?}"
        );
    }
    // The page asked for its widgets in one request, not one per widget.
    let asked = browser
        .script(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)\
             .filter(p => p.startsWith('/api/dashboard') || p.startsWith('/api/widgets/'));",
        )
        .await;
    let asked: Vec<&str> = asked
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(!asked.is_empty(), "the page read its widgets");
    assert!(
        asked.iter().all(|p| *p == "/api/dashboard"),
        "one dashboard request per refresh: {asked:?}"
    );
    let selected = browser
        .script("return document.getElementById('organization').value;")
        .await;
    assert_eq!(selected, "1", "the address chooses the organisation");
    assert!(browser.errors().await.is_empty());
    browser.screenshot("dashboard").await;

    browser.client.set_window_size(390, 844).await.unwrap();
    browser.open_dashboard(&demo.urls[0], query).await;
    let overflow = browser
        .script("return document.documentElement.scrollWidth - window.innerWidth;")
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "wider than a phone by {overflow} px"
    );
    browser.screenshot("dashboard-phone").await;
    browser.close().await;
}

#[tokio::test]
async fn a_donation_made_on_the_page_shows_on_the_other_nodes_page() {
    let (_redis, demo, browser) = two_nodes_and_a_browser("donation").await;
    let query = "range=this_month&campaign_id=7";
    browser.open_dashboard(&demo.urls[1], query).await;
    let before = browser.shown_count().await;

    browser.open_dashboard(&demo.urls[0], query).await;
    assert_eq!(browser.shown_count().await, before);
    let amount = browser
        .client
        .find(Locator::Id("donate-amount"))
        .await
        .unwrap();
    amount.clear().await.unwrap();
    amount.send_keys("12.34").await.unwrap();
    browser.click("donate-submit").await;
    wait_for_donation_to_campaign_7(&browser).await;
    browser.wait_refreshes(2).await;
    assert_eq!(
        browser.shown_count().await,
        before + 1,
        "this node's page moved"
    );

    // One click to the other node's page, same view.
    browser.click("link-node-1").await;
    browser.wait_refreshes(1).await;
    let url = browser.client.current_url().await.unwrap();
    assert!(
        demo.urls[1].ends_with(&format!(":{}", url.port().unwrap())),
        "{url}"
    );
    assert!(
        url.query().unwrap_or_default().contains("campaign_id=7"),
        "{url}"
    );
    let started = Instant::now();
    while browser.shown_count().await != before + 1 {
        assert!(
            started.elapsed() < DEADLINE,
            "node 1's page never showed the donation"
        );
        browser.click("refresh").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(browser.errors().await.is_empty());
    browser.close().await;
}

#[tokio::test]
async fn the_operations_page_shows_a_health_score() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("browser-ops", &redis);
    let http = client();
    for widget in ["total_donations", "top_donors", "total_donations"] {
        let (status, _) = get(&http, &format!("{}/api/widgets/{widget}", demo.urls[0])).await;
        assert_eq!(status, 200);
    }
    let browser = Browser::start("ops").await;
    browser.open_ops(&demo.urls[0]).await;
    let score: u64 = browser
        .attr(Locator::Id("health-level"), "data-score")
        .await;
    assert!(score <= 100);
    let (_, status) = get(&http, &format!("{}/api/status", demo.urls[0])).await;
    assert_eq!(
        score,
        status["health"]["score"].as_u64().unwrap(),
        "the page shows the API's score"
    );
    let rows = browser
        .script("return document.querySelectorAll('#widgets tbody tr').length;")
        .await;
    assert_eq!(rows.as_u64(), Some(7), "a row per widget type");
    browser.finish("ops").await;
}

/// With an admin token set, the dashboard's donate form is refused 401, asks for the token once,
/// and records the donation with it.
#[tokio::test]
async fn with_an_admin_token_the_donate_form_asks_for_it_and_records_the_donation() {
    let redis = RedisServer::start().unwrap();
    let token = "page-admin-token-for-tests";
    let demo = Demo::with_admin_token("browser-token", &redis, token);
    let browser = Browser::start("token").await;
    browser
        .open_dashboard(&demo.urls[0], "range=this_month&campaign_id=7")
        .await;
    browser.click("donate-submit").await;
    // Only alert commands while the prompt is open: any other would dismiss it.
    let started = Instant::now();
    let asked = loop {
        if let Ok(text) = browser.client.get_alert_text().await {
            break text;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the page never asked for the token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(asked.contains("DEMO_ADMIN_TOKEN"), "{asked}");
    browser.client.send_alert_text(token).await.unwrap();
    browser.client.accept_alert().await.unwrap();
    wait_for_donation_to_campaign_7(&browser).await;
    browser.close().await;
}

/// Polls the donate form's result until it shows the donation to campaign #7 was recorded.
async fn wait_for_donation_to_campaign_7(browser: &Browser) {
    let started = Instant::now();
    loop {
        let result = browser
            .client
            .find(Locator::Id("donate-result"))
            .await
            .unwrap();
        if result.attr("data-donation").await.unwrap().is_some() {
            let text = result.text().await.unwrap();
            assert!(text.contains("campaign #7"), "{text}");
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the donation was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The numbers of a JSON array, or of the field `field` of each of its objects ("": the items).
fn numbers(array: &Value, field: &str) -> Vec<f64> {
    let items = array.as_array().unwrap().iter();
    items
        .map(|item| {
            let number = if field.is_empty() { item } else { &item[field] };
            number.as_f64().unwrap()
        })
        .collect()
}

/// The trend chart over "last 30 days" of an organisation: every day at its date on a time axis,
/// a day without donations as a zero at its place between the others, a tooltip with the date and
/// the value at the point under the mouse, and axis labels.
#[tokio::test]
async fn the_trend_chart_puts_every_day_at_its_date_with_a_tooltip() {
    let redis = RedisServer::start().unwrap();
    let demo = Demo::two_nodes("browser-trend", &redis);
    let query = "range=last_30_days&organization_id=1";
    let (_, api) = get(
        &client(),
        &format!("{}/api/widgets/donation_trends?{query}", demo.urls[0]),
    )
    .await;
    let days = api["data"].as_array().unwrap();
    assert_eq!(days.len(), 30, "{api}");
    let counts = numbers(&api["data"], "count");
    // An empty day with donations on both sides: the kind a chart by index made vanish.
    let empty = (1..counts.len() - 1)
        .find(|&i| {
            counts[i] == 0.0
                && counts[..i].iter().any(|&c| c > 0.0)
                && counts[i + 1..].iter().any(|&c| c > 0.0)
        })
        .unwrap_or_else(|| panic!("an empty day between donation days in {counts:?}"));
    let full = counts.iter().position(|&c| c > 0.0).unwrap();

    let browser = Browser::start("trend").await;
    browser.open_dashboard(&demo.urls[0], query).await;
    let chart = "#w-donation_trends .chart";
    let drawn = browser
        .until(
            "the trend chart",
            &format!(
                "const u = document.querySelector('{chart}')?.chart;
                 if (!u) return null;
                 const at = (i) => u.valToPos(u.data[0][i], 'x');
                 return {{ x: u.data[0], y: u.data[1], gaps: [at({empty}) - at({empty} - 1), at({empty} + 1) - at({empty})] }};"
            ),
        )
        .await;
    let wanted: Vec<f64> = numbers(&api["data"], "day")
        .iter()
        .map(|d| d * 86_400.0 + 43_200.0)
        .collect();
    assert_eq!(
        numbers(&drawn["x"], ""),
        wanted,
        "a point at noon of each day, in order"
    );
    assert_eq!(
        drawn["y"][empty].as_f64(),
        Some(0.0),
        "the empty day is a zero"
    );
    let gaps = numbers(&drawn["gaps"], "");
    assert!(
        gaps[0] > 5.0 && (gaps[0] - gaps[1]).abs() < 1.0,
        "a day's width on each side of the empty day: {gaps:?}"
    );

    let tip = browser.hover_point(chart, empty).await;
    let day = |i: usize| {
        let seconds = days[i]["day"].as_i64().unwrap() * 86_400;
        chrono::DateTime::from_timestamp(seconds, 0)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    assert_eq!(tip["date"], day(empty), "{tip}");
    assert_eq!(
        tip["value"].as_str().and_then(|v| v.parse::<f64>().ok()),
        Some(0.0),
        "{tip}"
    );
    assert!(
        tip["text"].as_str().unwrap().contains("0 donations"),
        "{tip}"
    );
    let tip = browser.hover_point(chart, full).await;
    assert_eq!(tip["date"], day(full), "{tip}");
    assert_eq!(
        tip["value"].as_str().and_then(|v| v.parse::<f64>().ok()),
        days[full]["total"].as_f64(),
        "{tip}"
    );

    let text = browser.chart_text(chart).await;
    assert!(
        text["x"].as_array().unwrap().len() >= 3,
        "dates along the time axis: {text}"
    );
    assert!(
        text["y"].as_array().unwrap().len() >= 2,
        "values up the y axis: {text}"
    );
    assert!(
        text["legend"].as_str().unwrap().contains("Donated per day"),
        "{text}"
    );
    browser.finish("trend-tooltip").await;
}

/// Chart text is one fixed size on both pages, however wide the chart; `/ops` shows the
/// percentiles the node computed and never fetches `/metrics`.
#[tokio::test]
async fn chart_text_keeps_its_size_and_ops_reads_the_nodes_percentiles() {
    let (_redis, demo, browser) = two_nodes_and_a_browser("chart-text").await;
    let http = client();
    browser
        .open_dashboard(&demo.urls[0], "range=this_month")
        .await;
    let wide = browser.chart_text("#w-donation_trends .chart").await;

    browser.open_ops(&demo.urls[0]).await;
    let narrow = browser.chart_text("#chart-hits").await;
    assert!(
        wide["width"].as_f64().unwrap() > narrow["width"].as_f64().unwrap() + 100.0,
        "charts of different widths: {wide} {narrow}"
    );
    for key in ["size", "font", "legendSize"] {
        assert_eq!(wide[key], narrow[key], "{key} on / and /ops");
    }
    assert_eq!(wide["size"], "12px");
    assert!(
        wide["font"].as_str().unwrap().starts_with("12px "),
        "{wide}"
    );
    let legend = narrow["legend"].as_str().unwrap();
    assert!(
        legend.contains("Hit rate") && legend.contains("L1 share"),
        "{narrow}"
    );

    // Reads while the page is open: it shows the node's count of them, as the node answers it.
    for _ in 0..3 {
        get(&http, &format!("{}/api/widgets/top_donors", demo.urls[0])).await;
    }
    let started = Instant::now();
    loop {
        let (_, latency) = get(&http, &format!("{}/api/status/latency", demo.urls[0])).await;
        let shown = browser
            .script("return Number(document.getElementById('latency-figures').dataset.requests);")
            .await;
        if latency["requests"].as_u64().unwrap() >= 3
            && shown.as_u64() == latency["requests"].as_u64()
        {
            let text = browser
                .script("return document.getElementById('latency').textContent;")
                .await;
            assert!(text.as_str().unwrap().contains("p95"), "{text}");
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the page never showed {latency}: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let scraped = browser
        .script("return performance.getEntriesByType('resource').some((e) => new URL(e.name).pathname === '/metrics');")
        .await;
    assert_eq!(scraped, false, "the page reads no Prometheus text");
    browser.finish("ops-charts").await;
}
