//! The sandbox is reachable without credentials: where it may send
//! notifications, what its request log shows, where its OAuth redirects,
//! how fast merchants open, and what survives a restart.

use std::time::Duration;

use cashdesk_crypto::wxv2::WxSignType;
use serde_json::{Value, json};

use crate::*;

fn own_notify_url(app: &TestApp) -> String {
    format!("{}/api/cashier-desk/notify/C01OWN", app.origin)
}

/// With the default policy (what `cashdesk serve` mounts), a notify URL
/// outside the hosting cashdesk's notify endpoint is refused when the
/// order is made, in each channel's own error shape; one under it is
/// taken and notified.
#[tokio::test]
async fn notify_urls_outside_the_policy_are_refused_in_each_channel_shape() {
    let app = spawn_configured(None, |c| {
        *c = c
            .clone()
            .with_notify_schedule(vec![Duration::from_millis(100); 3]);
    })
    .await;
    let m = app.open_merchant("MD5").await;
    let strangers = [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://127.0.0.1:9/notify".to_owned(),
        // The sandbox's own host, but not the notify endpoint.
        format!("{}/sandbox/api/faults", app.origin),
        format!(
            "{}/api/cashier-desk/notify/../../sandbox/api/faults",
            app.origin
        ),
    ];

    // WeChat v2: return_code=FAIL, unsigned, return_msg says why.
    for url in &strangers {
        let f = v2_call(
            &app.http,
            &format!("{}/pay/unifiedorder", m.base_url()),
            &m,
            unified("NATIVE", &out_trade_no(), url),
            WxSignType::Md5,
        )
        .await;
        assert_eq!(f["return_code"], "FAIL", "{url}: {f:?}");
        assert!(f["return_msg"].contains("invalid notify_url"), "{f:?}");
        let own_prefix = format!("{}/api/cashier-desk/notify/", app.origin);
        assert!(f["return_msg"].contains(&own_prefix), "{f:?}");
    }
    // WeChat v3: 400 PARAM_ERROR.
    let body = json!({
        "appid": m.app_id(), "mchid": m.mch_id(), "description": "d",
        "out_trade_no": out_trade_no(), "notify_url": strangers[0],
        "amount": {"total": 1, "currency": "CNY"},
    });
    let r = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "POST",
        "/v3/pay/transactions/native",
        Some(body),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["code"], "PARAM_ERROR");
    assert!(r.json()["message"].as_str().unwrap().contains("notify"));
    // Alipay: 40002 isv.invalid-notify-url.
    let a = crate::alipay::open_alipay(&app).await;
    let r = a
        .call(
            &app,
            "alipay.trade.precreate",
            json!({"out_trade_no": out_trade_no(), "total_amount": "1.01", "subject": "s"}),
            &[("notify_url", &strangers[0])],
        )
        .await;
    assert_eq!(
        (r["code"].as_str(), r["sub_code"].as_str()),
        (Some("40002"), Some("isv.invalid-notify-url")),
        "{r}"
    );
    // Lakala: its parameter error.
    let l = crate::lakala::open_lakala(&app).await;
    let r = l
        .call(
            &app,
            crate::lakala::PREORDER,
            l.preorder(&out_trade_no(), "41", "WECHAT", &strangers[0]),
        )
        .await;
    assert_eq!(r.json()["code"], "BBS10002", "{}", r.body);

    // Under the own notify endpoint: taken, and notified there.
    let no = out_trade_no();
    let f = v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m.base_url()),
        &m,
        unified("NATIVE", &no, &own_notify_url(&app)),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS", "{f:?}");
    let (status, _) = app.pay(&no, "SUCCESS").await;
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app.own_notify.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no notification");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.own_notify.lock().unwrap()[0].contains(&no));
}

/// What a notified server answers never reaches the request log (the log
/// is readable by anyone who reaches the sandbox).
#[tokio::test]
async fn the_request_log_keeps_no_reply_bodies() {
    let app = spawn_with(vec![Duration::from_millis(100); 2], None).await;
    let m = app.open_merchant("MD5").await;
    let secret = "INTERNAL-SECRET-7f3a9c";
    let rx = receiver_with(
        0,
        (200, format!("<html>{secret}</html>")),
        (500, String::new()),
    )
    .await;
    let no = out_trade_no();
    v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m.base_url()),
        &m,
        unified("APP", &no, &rx.url),
        WxSignType::Md5,
    )
    .await;
    app.pay(&no, "SUCCESS").await;
    // The first attempt and both retries (none acknowledges).
    rx.wait_for(3, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log: Value = app
        .http
        .get(format!("{}/sandbox/api/requests?kind=notify", app.origin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log["requests"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{log}");
    for e in entries {
        assert_eq!(e["result"], "NOT_ACKED");
        assert_eq!(e["status"], 200);
        assert!(e["detail"].as_str().unwrap().contains(" ms"), "{e}");
    }
    assert!(!log.to_string().contains(secret), "{log}");
}

/// `authorize` redirects only to the web OAuth domains: the public URL's
/// `host:port` and what the operator registered.
#[tokio::test]
async fn oauth_redirects_only_to_registered_domains() {
    let app = spawn_configured(None, |c| {
        c.oauth_domains = vec!["shop.example.com".into(), "m.example.com:8443".into()];
    })
    .await;
    let m = app.open_merchant("MD5").await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = |redirect: &str| {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/sandbox/wechat/connect/oauth2/authorize", app.origin),
            &[
                ("appid", m.app_id()),
                ("redirect_uri", redirect),
                ("response_type", "code"),
                ("scope", "snsapi_base"),
                ("state", "s1"),
            ],
        )
        .unwrap();
        let client = no_redirect.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let port = app.origin.rsplit(':').next().unwrap().to_owned();
    for ok in [
        format!("{}/cashier-desk-web/wechat-oauth?t=1", app.origin),
        "https://shop.example.com/back".to_owned(),
        "http://SHOP.example.com/back".to_owned(),
        "https://m.example.com:8443/back".to_owned(),
    ] {
        let resp = authorize(&ok).await;
        assert_eq!(resp.status(), 302, "{ok}");
        assert!(
            resp.headers()["location"]
                .to_str()
                .unwrap()
                .contains("code="),
            "{ok}"
        );
    }
    for refused in [
        "https://evil.example.net/steal".to_owned(),
        "https://shop.example.com.evil.net/".to_owned(),
        "https://sub.shop.example.com/".to_owned(),
        "https://shop.example.com:8443/".to_owned(),
        "https://m.example.com/".to_owned(),
        format!("http://127.0.0.1:{}/", port.parse::<u16>().unwrap() + 1),
        format!("http://localhost:{port}/"),
    ] {
        let resp = authorize(&refused).await;
        assert_eq!(resp.status(), 400, "{refused}");
        assert!(resp.headers().get("location").is_none());
        assert!(resp.text().await.unwrap().contains("10003"), "{refused}");
    }
}

async fn open(app: &TestApp, body: Value) -> reqwest::Response {
    app.http
        .post(format!("{}/sandbox/api/merchants", app.origin))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Opening merchants is rate-limited per client and in all (429 with
/// Retry-After), and their number is capped (403).
#[tokio::test]
async fn merchant_openings_are_rate_limited_and_capped() {
    let app = spawn_configured(None, |c| {
        c.merchant_quota.per_ip_per_minute = 2;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            open(&app, json!({"channelType": "lakala"})).await.status(),
            201
        );
    }
    let refused = open(&app, json!({"channelType": "wx-pay"})).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "FREQUENCY_LIMITED"
    );

    let app = spawn_configured(None, |c| {
        c.merchant_quota.per_ip_per_minute = 0;
        c.merchant_quota.per_minute = 1;
    })
    .await;
    assert_eq!(
        open(&app, json!({"channelType": "lakala"})).await.status(),
        201
    );
    assert_eq!(
        open(&app, json!({"channelType": "lakala"})).await.status(),
        429
    );

    let app = spawn_configured(None, |c| c.max_merchants = 1).await;
    assert_eq!(
        open(&app, json!({"channelType": "lakala"})).await.status(),
        201
    );
    let full = open(&app, json!({"channelType": "lakala"})).await;
    assert_eq!(full.status(), 403);
    assert_eq!(
        full.json::<Value>().await.unwrap()["code"],
        "MERCHANT_LIMIT"
    );
}

/// Each opening appends one line to `merchants.jsonl` (the earlier lines
/// stay as they were); merchants of an earlier version's `merchants.json`
/// still load.
#[tokio::test]
async fn merchants_are_appended_to_a_journal_and_old_files_still_load() {
    let app = spawn().await;
    let dir = app.dir.path().join("sandbox");
    let m1 = app.open_merchant("MD5").await;
    let first = std::fs::read_to_string(dir.join("merchants.jsonl")).unwrap();
    assert_eq!(first.lines().count(), 1);
    let m2 = app.open_merchant("HMAC-SHA256").await;
    let both = std::fs::read_to_string(dir.join("merchants.jsonl")).unwrap();
    assert_eq!(both.lines().count(), 2);
    assert!(
        both.starts_with(&first),
        "earlier lines are never rewritten"
    );
    assert!(!dir.join("merchants.json").exists());
    app.sandbox.shutdown().await;

    // An earlier version's file: the same merchants in `merchants.json`.
    let mut old: Vec<Value> = both
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for m in &mut old {
        m.as_object_mut().unwrap().remove("t");
    }
    std::fs::write(
        dir.join("merchants.json"),
        json!({"version": 1, "merchants": old}).to_string(),
    )
    .unwrap();
    std::fs::remove_file(dir.join("merchants.jsonl")).unwrap();
    let TestApp { dir, .. } = app;
    let app = spawn_with(vec![Duration::from_millis(100)], Some(dir)).await;
    for m in [&m1, &m2] {
        let mut m = m.clone();
        m.creds["baseUrl"] = json!(app.sandbox.base_url());
        let f = v2_call(
            &app.http,
            &format!("{}/pay/orderquery", m.base_url()),
            &m,
            params(&[("out_trade_no", "NEVER")]),
            WxSignType::Md5,
        )
        .await;
        assert_eq!(f["err_code"], "ORDERNOTEXIST", "{f:?}");
    }
}

/// Orders and refunds outlive a restart, and the HTTPS port is the same
/// again, so the old `tlsBaseUrl` still takes the v2 refund; if another
/// process took the port, the sandbox moves to a new one.
#[tokio::test]
async fn orders_and_the_tls_port_survive_a_restart() {
    let app = spawn_configured(None, |c| {
        c.notify_targets.loopback_path = Some("/".into());
    })
    .await;
    let m = app.open_merchant("MD5").await;
    let rx = receiver(0, false).await;
    let no = out_trade_no();
    let f = v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m.base_url()),
        &m,
        unified("NATIVE", &no, &rx.url),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS");
    let (status, paid) = app.pay(&no, "SUCCESS").await;
    assert_eq!(status, 200, "{paid}");
    rx.wait_for(1, Duration::from_secs(5)).await;
    let tls_url = m.tls_base_url().to_owned();
    app.sandbox.shutdown().await;

    let TestApp { dir, .. } = app;
    let app = spawn_configured(Some(dir), |c| {
        c.notify_targets.loopback_path = Some("/".into());
    })
    .await;
    assert_eq!(app.sandbox.refund_tls_url(), tls_url, "same HTTPS port");
    let mut m2 = m.clone();
    m2.creds["baseUrl"] = json!(app.sandbox.base_url());
    let q = v2_call(
        &app.http,
        &format!("{}/pay/orderquery", m2.base_url()),
        &m2,
        params(&[("out_trade_no", &no)]),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(q["trade_state"], "SUCCESS", "{q:?}");
    assert_eq!(q["transaction_id"], paid["transactionId"].as_str().unwrap());
    let r = v2_call(
        &m.tls_client(true),
        &format!("{tls_url}/secapi/pay/refund"),
        &m,
        params(&[
            ("out_trade_no", &no),
            ("out_refund_no", "R1"),
            ("total_fee", "101"),
            ("refund_fee", "101"),
            ("notify_url", &rx.url),
        ]),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(r["result_code"], "SUCCESS", "{r:?}");
    // The refund settles and is notified.
    rx.wait_for(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.sandbox.shutdown().await;

    // Another process holds the port now: a new one, remembered.
    let TestApp { dir, .. } = app;
    let port: u16 = tls_url
        .trim_start_matches("https://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let app = spawn_configured(Some(dir), |_| {}).await;
    let moved = app.sandbox.refund_tls_url();
    assert_ne!(moved, tls_url);
    let remembered = std::fs::read_to_string(app.dir.path().join("sandbox/tls-port")).unwrap();
    assert_eq!(remembered.trim(), app.sandbox.tls_addr().port().to_string());
    // The refund (and its settlement) survived the second restart too.
    let r = v2_call(
        &app.http,
        &format!("{}/pay/refundquery", app.sandbox.base_url()),
        &m2,
        params(&[("out_trade_no", &no)]),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(r["refund_status_0"], "SUCCESS", "{r:?}");
}

/// A delivery re-checks the policy before every attempt: an order made
/// while its notify URL was allowed is not notified after a restart under
/// a policy that no longer allows it.
#[tokio::test]
async fn the_notifier_rechecks_the_policy_before_sending() {
    let app = spawn_with(vec![Duration::from_millis(100); 2], None).await;
    let m = app.open_merchant("MD5").await;
    let rx = receiver(0, false).await;
    let no = out_trade_no();
    let f = v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m.base_url()),
        &m,
        unified("NATIVE", &no, &rx.url),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS");
    app.sandbox.shutdown().await;
    let TestApp { dir, .. } = app;
    // The default policy: only the own notify endpoint.
    let app = spawn_configured(Some(dir), |_| {}).await;
    let (status, _) = app.pay(&no, "SUCCESS").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count(), 0, "nothing reaches a target outside the policy");
    let log: Value = app
        .http
        .get(format!("{}/sandbox/api/requests?kind=notify", app.origin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log["requests"][0]["result"], "REFUSED", "{log}");
}

/// v3 signatures over the full path and over WeChat's canonical `/v3/...`
/// path (as wechatpayv3 signs when its base URL has a path) both verify;
/// another path does not.
#[tokio::test]
async fn v3_signatures_over_the_full_or_the_canonical_path_verify() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let path = format!(
        "/v3/pay/transactions/out-trade-no/NOPE0001?mchid={}",
        m.mch_id()
    );
    let url = reqwest::Url::parse(&format!("{}{path}", m.base_url())).unwrap();
    let full = format!("/sandbox/wechat{path}");
    let now = chrono::Utc::now().timestamp();
    for (signed, status) in [
        (full.as_str(), 404),
        (path.as_str(), 404),
        ("/v3/other", 401),
    ] {
        let auth = v3_authorization(&m, "GET", signed, "", now);
        let r = v3_send(&app.http, url.clone(), &m, "GET", "", &auth).await;
        assert_eq!(r.status, status, "signed over {signed}: {}", r.body);
    }
}

/// The pay API's 404 says which number it wants: the channel's
/// out_trade_no, i.e. cashdesk's orderId.
#[tokio::test]
async fn the_pay_api_says_it_wants_the_orderid() {
    let app = spawn().await;
    let (status, v) = app.pay("T2001", "SUCCESS").await;
    assert_eq!(status, 404);
    assert_eq!(v["code"], "ORDER_NOT_EXIST");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("orderId") && msg.contains("P…"), "{msg}");
}

/// After an H5 payment the payer page returns to `redirect_url` only on a
/// registered domain; another one is ignored (no open redirect).
#[tokio::test]
async fn h5_returns_only_to_registered_domains() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    for (back, followed) in [
        (
            format!("{}/cashier-desk-web/result?token=t", app.origin),
            true,
        ),
        ("https://evil.example.net/phish".to_owned(), false),
    ] {
        let f = v2_call(
            &app.http,
            &format!("{}/pay/unifiedorder", m.base_url()),
            &m,
            unified("MWEB", &out_trade_no(), "http://127.0.0.1:9/n"),
            WxSignType::Md5,
        )
        .await;
        let page = format!(
            "{}&redirect_url={}",
            f["mweb_url"],
            url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
        );
        let shown = app
            .http
            .get(&page)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!shown.contains("evil.example.net"), "{shown}");
        let paid = app
            .http
            .post(&page)
            .form(&[("action", "pay"), ("redirect_url", back.as_str())])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(paid.contains("Payment successful"), "{paid}");
        assert_eq!(
            paid.contains("http-equiv=\"refresh\""),
            followed,
            "{back}: {paid}"
        );
    }
}
