//! The cashier page in a real browser: headless Chromium driven through
//! chromedriver (WebDriver, with the `fantoccini` client), emulating a
//! phone (390×844, an Android user agent, zh-CN).
//!
//! 1. H5: order through the signed API → open `cashierUrl` → choose the
//!    sandbox WeChat H5 channel → confirm on the sandbox payer page → back
//!    on the paid result page; the merchant's endpoint (a test
//!    [`Receiver`], the order's `notifyUrl`) got the signed `PAY_SUCCESS`
//!    notification, and the signed query API agrees.
//! 2. Native QR: the QR code is shown, the order is paid through
//!    `POST /sandbox/api/pay`, and the page notices within a few seconds.
//!
//! Each run saves screenshots under `target/browser-artifacts/` and
//! checks, from chromedriver's performance log (the DevTools
//! `Network.requestWillBeSent` events of every page the tab showed), that
//! nothing was requested outside the server, and from the browser log
//! that no Content-Security-Policy violation happened.
//!
//! Chromium flags (also in DEVELOPERS.md): `--headless=new --no-sandbox
//! --disable-gpu --disable-background-networking --disable-dev-shm-usage
//! --no-first-run --disable-extensions --disable-sync
//! --disable-component-update --lang=zh-CN`. Without chromium/chromedriver
//! the tests say so and skip; under CI (`CI=true`, set by `.ci/run`,
//! which installs both) they fail instead, so CI cannot pass without them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cashier::{ANDROID, demo_channel};
use crate::helpers::{Backend, TestApp, otn, spawn_app};
use crate::receiver::Receiver;

backend_tests!(browser_h5_payment, browser_qr_payment);

/// One browser at a time: the machine is small and the runs are timed.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-extensions",
    "--disable-sync",
    "--disable-component-update",
    "--lang=zh-CN",
];

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(n))
            .find(|p| p.is_file())
    })
}

/// chromium and chromedriver: `CASHDESK_CHROMIUM` / `CASHDESK_CHROMEDRIVER`
/// or the usual names on `PATH`.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let from_env = |k: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .filter(|p| p.is_file())
    };
    let chromium = from_env("CASHDESK_CHROMIUM")
        .or_else(|| which(&["chromium", "chromium-browser", "google-chrome", "chrome"]))?;
    let driver = from_env("CASHDESK_CHROMEDRIVER").or_else(|| which(&["chromedriver"]))?;
    Some((chromium, driver))
}

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    prefix: String,
}

/// The performance / browser log since the last call (chromedriver's
/// `se/log` extension).
#[derive(Debug)]
struct GetLog(&'static str);

impl fantoccini::wd::WebDriverCompatibleCommand for GetLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or("")))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"type": self.0}).to_string()),
        )
    }
}

impl Browser {
    /// `None` (with a message) when chromium or chromedriver is missing.
    async fn start(prefix: &str) -> Option<Browser> {
        let Some((chromium, driver)) = tools() else {
            let msg = "chromium/chromedriver not found (apt-get install chromium chromium-driver, \
                       or set CASHDESK_CHROMIUM and CASHDESK_CHROMEDRIVER)";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{msg}: .ci/run installs them"
            );
            eprintln!("skipping browser test: {msg}");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = tokio::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let driver_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http
            .get(format!("{driver_url}/status"))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": CHROMIUM_FLAGS,
                "prefs": {"intl": {"accept_languages": "zh-CN,zh"}},
                "mobileEmulation": {
                    "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 1.0, "touch": true, "mobile": true},
                    "userAgent": ANDROID,
                },
            },
            "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"},
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!("a JSON object"),
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .expect("WebDriver session");
        Some(Browser {
            client,
            _driver: child,
            prefix: prefix.to_owned(),
        })
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = artifacts_dir().join(format!("{}-{name}.png", self.prefix));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    async fn url(&self) -> String {
        self.client.current_url().await.expect("url").to_string()
    }

    /// Waits until the page source contains `text`; returns how long it took.
    async fn wait_text(&self, text: &str, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.source().await.contains(text) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "`{text}` did not appear within {within:?} on {}:\n{}",
                self.url().await,
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn log(&self, kind: &'static str) -> Vec<Value> {
        match self.client.issue_cmd(GetLog(kind)).await {
            Ok(Value::Array(entries)) => entries,
            other => panic!("reading the {kind} log: {other:?}"),
        }
    }

    /// Every URL the tab requested (DevTools network events) is on the
    /// server; no CSP violation was reported.
    async fn assert_stayed_on(&self, base_url: &str) -> usize {
        let mut urls = Vec::new();
        for entry in self.log("performance").await {
            let Some(msg) = entry["message"].as_str() else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(msg) else {
                continue;
            };
            if v["message"]["method"] == "Network.requestWillBeSent"
                && let Some(u) = v["message"]["params"]["request"]["url"].as_str()
            {
                urls.push(u.to_owned());
            }
        }
        assert!(!urls.is_empty(), "the performance log saw the requests");
        for u in &urls {
            assert!(
                u.starts_with(&format!("{base_url}/")) || u.starts_with("data:"),
                "request outside the server: {u}\nall: {urls:#?}"
            );
        }
        for entry in self.log("browser").await {
            let m = entry["message"].as_str().unwrap_or("");
            assert!(
                !m.contains("Content Security Policy") && !m.contains("Refused to"),
                "browser console: {m}"
            );
        }
        urls.len()
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

async fn order(app: &TestApp, amount: i64, title: &str) -> cashdesk_sdk::CreateOrderResponse {
    app.client
        .create_order(&cashdesk_sdk::CreateOrderRequest::new(otn(), amount, title))
        .await
        .expect("order through the signed API")
}

async fn browser_h5_payment(b: Backend) {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app(b.clone()).await;
    let prefix = match b {
        Backend::Sqlite => "h5-sqlite",
        Backend::Postgres(_) => "h5-postgres",
    };
    let Some(br) = Browser::start(prefix).await else {
        return;
    };
    // The merchant's notification endpoint, named by the order.
    let receiver = Receiver::start().await;
    receiver.trust(
        &app.demo_app_id,
        &cashdesk_sdk::Credentials::hmac_sha256(app.demo_app_key.clone()),
    );
    let created = app
        .client
        .create_order(&cashdesk_sdk::CreateOrderRequest {
            notify_url: Some(receiver.url("/merchant/notify")),
            ..cashdesk_sdk::CreateOrderRequest::new(otn(), 1234, "拿铁咖啡 Latte")
        })
        .await
        .expect("order through the signed API");
    br.client
        .goto(&created.cashier_url)
        .await
        .expect("open cashierUrl");
    br.wait_text("选择支付方式", Duration::from_secs(10)).await;
    let html = br.source().await;
    assert!(
        html.contains("¥12.34") && html.contains("Demo shop"),
        "{html}"
    );
    br.screenshot("cashier").await;

    let h5 = demo_channel(&app, "v2", "h5");
    br.client
        .find(Locator::Css(&format!("button[value=\"{h5}\"]")))
        .await
        .expect("the H5 channel button")
        .click()
        .await
        .expect("choose H5");
    br.wait_text("SANDBOX", Duration::from_secs(10)).await;
    assert!(
        br.url()
            .await
            .starts_with(&format!("{}/sandbox/wechat/pay/", app.base_url))
    );
    assert!(br.source().await.contains("¥12.34"));
    br.screenshot("payer").await;
    br.client
        .find(Locator::Css("button.pay"))
        .await
        .expect("Pay button")
        .click()
        .await
        .expect("confirm");
    // The payer page returns to the cashier's result page by itself.
    br.wait_text("支付成功", Duration::from_secs(15)).await;
    assert!(
        br.url()
            .await
            .starts_with(&format!("{}/cashier-desk-web/result?token=", app.base_url)),
        "{}",
        br.url().await
    );
    assert!(br.source().await.contains("¥12.34"));
    br.screenshot("result").await;

    // The merchant was told, signed, and its query agrees.
    assert!(
        receiver
            .wait(Duration::from_secs(15), |r| !r
                .acked_for(&created.order_id, "PAY_SUCCESS")
                .is_empty())
            .await,
        "the merchant got PAY_SUCCESS: {:?} {:?}",
        receiver.acked(),
        receiver.unverified()
    );
    let told = &receiver.acked_for(&created.order_id, "PAY_SUCCESS")[0];
    let r = app
        .client
        .query_pay_result(&created.out_trade_no, false)
        .await
        .expect("query");
    assert_eq!(serde_json::to_value(r.state).expect("state"), "SUCCESS");
    assert_eq!(r.channel_id.as_deref(), Some(h5.as_str()));
    assert!(r.transaction_id.is_some());
    assert_eq!(told.out_trade_no, created.out_trade_no);
    assert_eq!(told.amount, 1234);
    assert_eq!(told.state, "SUCCESS");
    assert_eq!(told.channel_id.as_deref(), Some(h5.as_str()));
    assert_eq!(told.transaction_id, r.transaction_id);
    assert!(
        receiver.unverified().is_empty(),
        "{:?}",
        receiver.unverified()
    );

    let n = br.assert_stayed_on(&app.base_url).await;
    eprintln!("{n} requests, all to {}", app.base_url);
    br.close().await;
}

async fn browser_qr_payment(b: Backend) {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app(b.clone()).await;
    let prefix = match b {
        Backend::Sqlite => "qr-sqlite",
        Backend::Postgres(_) => "qr-postgres",
    };
    let Some(br) = Browser::start(prefix).await else {
        return;
    };
    let created = order(&app, 990, "Native QR").await;
    br.client
        .goto(&created.cashier_url)
        .await
        .expect("open cashierUrl");
    br.wait_text("选择支付方式", Duration::from_secs(10)).await;
    let native = demo_channel(&app, "v3", "native");
    br.client
        .find(Locator::Css(&format!("button[value=\"{native}\"]")))
        .await
        .expect("the Native channel button")
        .click()
        .await
        .expect("choose Native");
    br.wait_text("扫码支付", Duration::from_secs(10)).await;
    let img = br
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("img.qr"))
        .await
        .expect("QR image");
    // Loaded (the CSP lets same-origin images through).
    let start = Instant::now();
    loop {
        let w = br
            .client
            .execute(
                "return document.querySelector('img.qr').naturalWidth;",
                vec![],
            )
            .await
            .expect("naturalWidth");
        if w.as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the QR image did not load"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        img.attr("src")
            .await
            .expect("src")
            .is_some_and(|s| s.starts_with("/cashier-desk-web/qr/"))
    );
    br.screenshot("qr").await;

    // The buyer pays on the phone (the sandbox's test API stands in).
    app.sandbox_pay(&created.order_id).await;
    let took = br.wait_text("支付成功", Duration::from_secs(8)).await;
    eprintln!("the page noticed the payment after {took:?}");
    assert!(took < Duration::from_secs(6), "noticed after {took:?}");
    assert!(br.url().await.contains("/cashier-desk-web/result?token="));
    br.screenshot("result").await;
    let r = app
        .client
        .query_pay_result(&created.out_trade_no, false)
        .await
        .expect("query");
    assert_eq!(serde_json::to_value(r.state).expect("state"), "SUCCESS");
    br.assert_stayed_on(&app.base_url).await;
    br.close().await;
}
