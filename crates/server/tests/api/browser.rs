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
//! 3. H5 with JavaScript off (chromedriver pref
//!    `profile.managed_default_content_settings.javascript = 2`): the
//!    basic choice works from the cashier page through the payer page to
//!    the paid result page with forms, redirects and meta refreshes only.
//!    The cashier page is opened on another origin than the channel's
//!    (`localhost` vs the public URL's `127.0.0.1`), so the run also shows
//!    what the channel receives as `Referer`: the cashier's origin, without
//!    the token (WeChat H5 checks that origin; see `cashier::assets`).
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
//!
//! The harness ([`Browser`], [`ONE_BROWSER`], [`Browser::start_on`] a
//! desktop window or a phone) is shared with [`crate::console_browser`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cashier::{ANDROID, demo_channel};
use crate::helpers::{Backend, TestApp, otn, spawn_app};
use crate::receiver::Receiver;

backend_tests!(
    browser_h5_payment,
    browser_qr_payment,
    browser_h5_payment_without_javascript
);

/// One browser at a time: the machine is small and the runs are timed.
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) const CHROMIUM_FLAGS: &[&str] = &[
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

pub(crate) fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: tokio::process::Child,
    prefix: String,
}

/// What a [`Browser::start_on`] session looks like to the pages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Screen {
    /// Chromium's phone emulation (touch, the Android user agent).
    Phone { width: u32, height: u32 },
    /// A plain window.
    Desktop { width: u32, height: u32 },
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
        Self::start_with(prefix, true).await
    }

    /// Like [`Browser::start`]; `javascript: false` blocks every script
    /// (Chromium's content setting, as a user who turned JavaScript off).
    async fn start_with(prefix: &str, javascript: bool) -> Option<Browser> {
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        let mut options = json!({"prefs": {"intl": {"accept_languages": "zh-CN,zh"}}});
        if javascript {
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 1.0, "touch": true, "mobile": true},
                "userAgent": ANDROID,
            });
        } else {
            options["prefs"]["profile"] =
                json!({"managed_default_content_settings": {"javascript": 2}});
            // chromedriver's mobile emulation hangs every click once
            // scripts are blocked, so the phone is a user agent and a
            // window size here (all the cashier page looks at).
            args.push(format!("--user-agent={ANDROID}"));
            args.push("--window-size=390,844".to_owned());
        }
        Self::launch(prefix, args, options).await
    }

    /// A browser with scripts on, on `screen`, asking for pages in
    /// `accept_language` (e.g. `"en,zh-CN"`).
    pub(crate) async fn start_on(
        prefix: &str,
        screen: Screen,
        accept_language: &str,
    ) -> Option<Browser> {
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        let mut options = json!({"prefs": {"intl": {"accept_languages": accept_language}}});
        match screen {
            Screen::Phone { width, height } => {
                options["mobileEmulation"] = json!({
                    "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0, "touch": true, "mobile": true},
                    "userAgent": ANDROID,
                });
            }
            Screen::Desktop { width, height } => {
                args.push(format!("--window-size={width},{height}"));
            }
        }
        Self::launch(prefix, args, options).await
    }

    /// Starts chromedriver and a session with `args` and the other
    /// `goog:chromeOptions`; `None` (with a message) when chromium or
    /// chromedriver is missing outside CI.
    async fn launch(prefix: &str, args: Vec<String>, mut options: Value) -> Option<Browser> {
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
        options["binary"] = json!(chromium);
        options["args"] = json!(args);
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
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

    /// Saves the viewport as `<artifacts>/<prefix>-<name>.png`; its path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = artifacts_dir().join(format!("{}-{name}.png", self.prefix));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    pub(crate) async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    pub(crate) async fn url(&self) -> String {
        self.client.current_url().await.expect("url").to_string()
    }

    /// Waits until the page source contains `text`; returns how long it took.
    pub(crate) async fn wait_text(&self, text: &str, within: Duration) -> Duration {
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

    /// The DevTools messages of the performance log since the last read.
    async fn devtools_events(&self) -> Vec<Value> {
        self.log("performance")
            .await
            .into_iter()
            .filter_map(|entry| {
                let msg = entry["message"].as_str()?;
                let v = serde_json::from_str::<Value>(msg).ok()?;
                Some(v["message"].clone())
            })
            .collect()
    }

    /// Every URL the tab requested (DevTools network events) is on the
    /// server; no CSP violation was reported.
    pub(crate) async fn assert_stayed_on(&self, base_url: &str) -> usize {
        let events = self.devtools_events().await;
        assert_requests_on(&events, &[base_url]);
        self.assert_no_csp_violation().await;
        events.len()
    }

    async fn assert_no_csp_violation(&self) {
        for entry in self.log("browser").await {
            let m = entry["message"].as_str().unwrap_or("");
            assert!(
                !m.contains("Content Security Policy") && !m.contains("Refused to"),
                "browser console: {m}"
            );
        }
    }

    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// Every request in `events` went to one of `origins` (or was a `data:` URL).
fn assert_requests_on(events: &[Value], origins: &[&str]) {
    let urls: Vec<&str> = events
        .iter()
        .filter(|m| m["method"] == "Network.requestWillBeSent")
        .filter_map(|m| m["params"]["request"]["url"].as_str())
        .collect();
    assert!(!urls.is_empty(), "the performance log saw the requests");
    for u in &urls {
        assert!(
            origins.iter().any(|o| u.starts_with(&format!("{o}/"))) || u.starts_with("data:"),
            "request outside the server: {u}\nall: {urls:#?}"
        );
    }
}

/// The `Referer` the browser sent with the request for `url_prefix`
/// (from the DevTools events: the request as built, and the headers as
/// sent), `None` when it sent none.
fn referer_of(events: &[Value], url_prefix: &str) -> Option<String> {
    let ids: Vec<&Value> = events
        .iter()
        .filter(|m| m["method"] == "Network.requestWillBeSent")
        .filter(|m| {
            m["params"]["request"]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(url_prefix))
        })
        .map(|m| &m["params"]["requestId"])
        .collect();
    assert!(!ids.is_empty(), "no request for {url_prefix}");
    let header = |h: &Value| {
        h.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("referer"))
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
    };
    events
        .iter()
        .filter(|m| ids.contains(&&m["params"]["requestId"]))
        .filter_map(|m| match m["method"].as_str() {
            Some("Network.requestWillBeSent") => header(&m["params"]["request"]["headers"]),
            Some("Network.requestWillBeSentExtraInfo") => header(&m["params"]["headers"]),
            _ => None,
        })
        .next_back()
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
    // The script runs: the countdown ticks.
    let first = countdown(&br).await;
    let ticked = wait_for(Duration::from_secs(5), || async {
        countdown(&br).await != first
    })
    .await;
    assert!(ticked, "the countdown never changed from {first}");

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

/// The countdown's text as shown.
async fn countdown(br: &Browser) -> String {
    br.client
        .find(Locator::Id("countdown"))
        .await
        .expect("the countdown")
        .text()
        .await
        .expect("countdown text")
}

async fn wait_for<F, Fut>(within: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn browser_h5_payment_without_javascript(b: Backend) {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app(b.clone()).await;
    let prefix = match b {
        Backend::Sqlite => "nojs-sqlite",
        Backend::Postgres(_) => "nojs-postgres",
    };
    let Some(br) = Browser::start_with(prefix, false).await else {
        return;
    };
    let created = order(&app, 1234, "拿铁咖啡 Latte").await;
    // The same server under another origin than its public URL (which the
    // sandbox's payer pages are on): the H5 redirect crosses origins.
    let public = url::Url::parse(&app.base_url).expect("base URL");
    assert_eq!(public.host_str(), Some("127.0.0.1"));
    let port = public.port().expect("port");
    let cashier_origin = format!("http://localhost:{port}");
    let cashier_url = created
        .cashier_url
        .replacen(&app.base_url, &cashier_origin, 1);
    assert_ne!(cashier_url, created.cashier_url);
    br.client.goto(&cashier_url).await.expect("open cashierUrl");
    br.wait_text("选择支付方式", Duration::from_secs(10)).await;
    assert!(br.source().await.contains("¥12.34"));
    // Scripts are off: the countdown stays as the server rendered it.
    let first = countdown(&br).await;
    assert!(first.contains(':'), "{first}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(countdown(&br).await, first, "no script ran");
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
    let payer_prefix = format!("{}/sandbox/wechat/pay/", app.base_url);
    assert!(
        br.url().await.starts_with(&payer_prefix),
        "{}",
        br.url().await
    );
    assert!(br.source().await.contains("¥12.34"));
    br.screenshot("payer").await;
    let events = br.devtools_events().await;
    // The channel's page got the cashier's origin as Referer, not its URL.
    assert_eq!(
        referer_of(&events, &payer_prefix).as_deref(),
        Some(format!("{cashier_origin}/").as_str()),
        "the Referer on arrival at the channel's page"
    );
    br.client
        .find(Locator::Css("button.pay"))
        .await
        .expect("Pay button")
        .click()
        .await
        .expect("confirm");
    // Back on the cashier's result page by a meta refresh, no script.
    br.wait_text("支付成功", Duration::from_secs(15)).await;
    assert!(
        br.url()
            .await
            .starts_with(&format!("{}/cashier-desk-web/result?token=", app.base_url)),
        "{}",
        br.url().await
    );
    br.screenshot("result").await;
    let r = app
        .client
        .query_pay_result(&created.out_trade_no, false)
        .await
        .expect("query");
    assert_eq!(serde_json::to_value(r.state).expect("state"), "SUCCESS");
    assert_eq!(r.channel_id.as_deref(), Some(h5.as_str()));

    let mut all = events;
    all.extend(br.devtools_events().await);
    assert_requests_on(&all, &[&app.base_url, &cashier_origin]);
    br.assert_no_csp_violation().await;
    br.close().await;
}
