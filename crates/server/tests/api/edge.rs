//! The HTTP edge (issue 13): postures (development / production and the
//! sandbox's own loopback listener), the same layers on every route, slow
//! and too many connections, body deadlines, rate limits with sampled
//! warnings, and trusted proxies.

use std::time::{Duration, Instant};

use cashdesk_sdk::{Client, Credentials, HeaderMap, Method};
use cashdesk_server::Mode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(
    production_has_no_sandbox_no_demo_app_and_no_string_to_sign,
    production_sandbox_answers_only_on_its_loopback_listener,
    sandbox_routes_are_under_the_body_limit_and_the_metrics,
    slow_sockets_are_shed_and_closed_and_healthz_still_answers,
    idle_and_header_timeouts_are_apart,
    a_body_that_does_not_arrive_in_time_is_408,
    notify_flood_gets_429_in_the_channels_format_with_few_log_lines,
    api_limits_per_address_before_verification_and_per_app_after,
    forwarded_headers_count_only_from_trusted_proxies,
);

/// A counter's value in `/metrics` (0 when absent).
async fn metric(app: &TestApp, series: &str) -> u64 {
    let resp = app
        .raw(Method::GET, "/metrics", b"", HeaderMap::new())
        .await;
    let text = String::from_utf8(resp.body.clone()).expect("utf8");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

async fn production_has_no_sandbox_no_demo_app_and_no_string_to_sign(b: Backend) {
    // Tests cannot listen on a public address: production is asked for.
    let app = spawn_app_with(b, |c| c.mode = Some(Mode::Production)).await;
    assert_eq!(app.report.mode, Mode::Production);
    assert_eq!(app.report.mode_reason, "set explicitly");
    assert!(app.report.sandbox.is_none(), "sandbox off by default");
    assert!(app.report.demo_app.is_none(), "no demo app");
    assert!(!app.config.demo_app_file().exists(), "no demo app file");
    let printed = app.report.to_string();
    assert!(
        printed.contains("production") && !printed.contains("demo app"),
        "{printed}"
    );
    assert_eq!(
        app.store.list_apps().await.expect("apps").len(),
        1,
        "only the test's own app"
    );
    for path in [
        "/sandbox/api/merchants",
        "/sandbox/api/pay",
        "/sandbox/wechat/pay/unifiedorder",
    ] {
        let resp = app.raw(Method::POST, path, b"{}", HeaderMap::new()).await;
        assert_envelope(&resp, 404, 4040);
    }
    // A signature error says what to sign only in development.
    let wrong = Client::new(
        &app.base_url,
        &app.demo_app_id,
        Credentials::hmac_sha256("nope"),
    )
    .expect("client");
    let resp = app
        .signed_raw(
            &wrong,
            Method::POST,
            "/api/cashier-desk/unified/orders",
            b"{}",
            now(),
            "n-prod-1",
        )
        .await;
    let env = assert_envelope(&resp, 401, 4014);
    assert!(env["data"].is_null(), "{env}");
}

async fn production_sandbox_answers_only_on_its_loopback_listener(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.mode = Some(Mode::Production);
        c.sandbox = Some(true);
    })
    .await;
    let sb = app.report.sandbox.clone().expect("sandbox on");
    assert!(sb.own_listener);
    assert_ne!(app.sandbox_url, app.base_url);
    assert!(
        app.sandbox_url.starts_with("http://127.0.0.1:"),
        "{}",
        app.sandbox_url
    );
    assert!(sb.wechat_base_url.starts_with(&app.sandbox_url), "{sb:?}");
    assert!(app.report.demo_app.is_none(), "still no demo app");

    // Not on the public listener, whatever the method.
    let body = json!({"channelType": "wx-pay"}).to_string();
    for (method, path) in [
        (Method::POST, "/sandbox/api/merchants"),
        (Method::GET, "/sandbox/api/requests"),
        (Method::POST, "/sandbox/alipay/gateway.do"),
    ] {
        let resp = app
            .raw(method, path, body.as_bytes(), HeaderMap::new())
            .await;
        assert_envelope(&resp, 404, 4040);
    }
    // On its own listener, with the same layers: body limit and metrics.
    let m = app.open_sandbox_merchant("HMAC-SHA256").await;
    assert!(
        m["baseUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with(&app.sandbox_url)),
        "{m}"
    );
    let big = vec![b' '; 100_000];
    let resp = app
        .http()
        .post(format!("{}/sandbox/api/merchants", app.sandbox_url))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 413);
    let resp = app
        .http()
        .get(format!("{}/sandbox/nowhere", app.sandbox_url))
        .send()
        .await
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 404);
    assert!(
        metric(
            &app,
            r#"cashdesk_http_requests_total{route="/sandbox/api/merchants",method="POST",status="201"}"#
        )
        .await
            >= 1
    );
    // The public listener's own routes do not answer there.
    let resp = app
        .http()
        .get(format!("{}/api/admin/apps", app.sandbox_url))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 404);

    // And a payment through it works end to end.
    let setup = app.wechat_setup_with("v2", "HMAC-SHA256", |_| {}).await;
    assert!(
        setup.merchant["baseUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with(&app.sandbox_url)),
        "{}",
        setup.merchant
    );
    let no = otn();
    let created = setup
        .shop
        .client
        .create_order(&order(&no, 5))
        .await
        .expect("order");
    let paid = setup
        .shop
        .client
        .pay(&cashdesk_sdk::PaymentRequest {
            out_trade_no: no.clone(),
            channel_id: setup.channel("mini").to_owned(),
            openid: Some("oBuyer".to_owned()),
            ..Default::default()
        })
        .await
        .expect("payment at the sandbox");
    let _ = paid;
    app.sandbox_pay(&created.order_id).await;
    app.wait_state(&setup.shop.client, &no, "SUCCESS").await;

    // A signature error does not carry the string to sign in production.
    let wrong = Client::new(
        &app.base_url,
        &app.demo_app_id,
        Credentials::hmac_sha256("nope"),
    )
    .expect("client");
    let resp = app
        .signed_raw(
            &wrong,
            Method::POST,
            "/api/cashier-desk/unified/orders",
            b"{}",
            now(),
            "n-prod-2",
        )
        .await;
    assert!(assert_envelope(&resp, 401, 4014)["data"].is_null());
}

async fn sandbox_routes_are_under_the_body_limit_and_the_metrics(b: Backend) {
    let app = spawn_app(b).await;
    assert_eq!(app.report.mode, Mode::Development);
    let big = vec![b' '; 1_500_000];
    let url = format!("{}/sandbox/api/merchants", app.base_url);
    // Declared length: refused before reading, in the envelope.
    let resp = app
        .http()
        .post(&url)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 413);
    let env: Value = resp.json().await.expect("envelope");
    assert_eq!(env["code"], 4002, "{env}");
    // Chunked (no length): stopped at the limit by the reader.
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.write_all(b"POST /sandbox/api/merchants HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .expect("head");
    for chunk in big.chunks(16 * 1024) {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        // The server may answer and stop reading before the end.
        if s.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Counted like every route.
    assert_eq!(
        metric(
            &app,
            r#"cashdesk_http_requests_total{route="/sandbox/api/merchants",method="POST",status="413"}"#
        )
        .await,
        2
    );
}

/// Sends a request head that never ends.
async fn slow_socket(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    s
}

/// Reads what the server sends until it closes (or `wait` passes).
async fn read_until_closed(s: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&out).into_owned())
}

async fn healthz_fresh(base_url: &str) -> Option<u16> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    client
        .get(format!("{base_url}/healthz"))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn slow_sockets_are_shed_and_closed_and_healthz_still_answers(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.max_connections = 50;
        c.header_read_timeout_ms = 1_500;
    })
    .await;
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(slow_socket(&addr).await);
    }
    // Over the cap: answered 503 with Retry-After at once, and closed.
    let mut extra = Vec::new();
    for _ in 0..250 {
        extra.push(slow_socket(&addr).await);
    }
    let started = Instant::now();
    for s in extra.iter_mut().take(20) {
        let answer = read_until_closed(s, Duration::from_secs(3))
            .await
            .expect("closed at once");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
        assert!(answer.contains("\"code\":5030"), "{answer}");
    }
    assert!(started.elapsed() < Duration::from_secs(1), "shed at once");
    // /healthz answers within the header timeout plus a margin: the slow
    // sockets holding every slot are dropped at their timeout.
    let started = Instant::now();
    let mut answered = None;
    while started.elapsed() < Duration::from_secs(6) {
        if let Some(status) = healthz_fresh(&app.base_url).await
            && status == 200
        {
            answered = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = answered.expect("/healthz answered while slow sockets came and went");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // Every slow socket within the cap was closed by its header timeout.
    for s in held.iter_mut() {
        let answer = read_until_closed(s, Duration::from_secs(3))
            .await
            .expect("closed by the header timeout");
        assert!(!answer.contains("200 OK"), "{answer}");
    }
    // Every extra socket was shed, unless it came after a slow one's slot
    // was freed (opening 250 sockets may take longer than the header
    // timeout on a loaded machine): the metric counts each one shed.
    let mut shed: u64 = 20;
    for s in extra.iter_mut().skip(20) {
        if read_until_closed(s, Duration::from_secs(3))
            .await
            .is_some_and(|answer| answer.starts_with("HTTP/1.1 503"))
        {
            shed += 1;
        }
    }
    assert!(
        metric(
            &app,
            r#"cashdesk_connections_shed_total{listener="public"}"#
        )
        .await
            >= shed
    );
    assert!(
        metric(
            &app,
            r#"cashdesk_connections_closed_total{listener="public",reason="header_timeout"}"#
        )
        .await
            >= 50
    );
    // Logged once, counted every time.
    assert_eq!(
        metric(
            &app,
            r#"cashdesk_warnings_logged_total{kind="connection_shed"}"#
        )
        .await,
        1
    );
}

async fn request_on(s: &mut TcpStream, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn idle_and_header_timeouts_are_apart(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.header_read_timeout_ms = 400;
        c.idle_timeout_ms = 2_000;
    })
    .await;
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    assert!(
        request_on(&mut s, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    // Idle for longer than the header timeout: still open (a balancer's
    // pooled connection), and the next request is answered.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(
        request_on(&mut s, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    // Idle past the idle timeout: closed.
    let started = Instant::now();
    let rest = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert_eq!(rest.as_deref(), Some(""), "closed without a word");
    let took = started.elapsed();
    assert!(
        took > Duration::from_millis(1_500) && took < Duration::from_millis(3_500),
        "{took:?}"
    );
    // A connection that sends nothing has the header timeout.
    let mut quiet = TcpStream::connect(&addr).await.expect("connect");
    let started = Instant::now();
    assert!(
        read_until_closed(&mut quiet, Duration::from_secs(3))
            .await
            .is_some()
    );
    assert!(started.elapsed() < Duration::from_millis(1_500));
}

async fn a_body_that_does_not_arrive_in_time_is_408(b: Backend) {
    let app = spawn_app_with(b, |c| c.body_read_timeout_ms = 500).await;
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.write_all(
        b"POST /api/cashier-desk/unified/orders HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"outTradeNo\":",
    )
    .await
    .expect("write");
    let started = Instant::now();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered")
        .expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":4080"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

async fn notify_flood_gets_429_in_the_channels_format_with_few_log_lines(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.rate_limit_public = 1;
        c.rate_limit_public_burst = 10;
    })
    .await;
    let configs = app.admin.list_channel_configs().await.expect("configs");
    let configs = configs.as_array().expect("array").clone();
    // One config per kind of reply: WeChat v2 and v3, Alipay, Lakala.
    let mut targets = Vec::new();
    for (channel_type, version) in [
        ("wx-pay", Some("v2")),
        ("wx-pay", Some("v3")),
        ("ali-pay", None),
        ("lakala", None),
    ] {
        let c = configs
            .iter()
            .find(|c| {
                c["channelType"] == channel_type && version.is_none_or(|v| c["apiVersion"] == v)
            })
            .unwrap_or_else(|| panic!("a demo {channel_type} config"));
        targets.push(c["configId"].as_str().expect("configId").to_owned());
    }
    let http = app.http();
    let post = |config_id: &str| {
        http.post(format!(
            "{}/api/cashier-desk/notify/{config_id}",
            app.base_url
        ))
        .header("content-type", "text/xml")
        .body("<xml><return_code>SUCCESS</return_code><sign>forged</sign></xml>")
        .send()
    };
    // Within the burst: refused by verification, with the failure reply.
    let mut refusals = Vec::new();
    for id in &targets {
        let r = post(id).await.expect("notify");
        let ct = r.headers().get("content-type").cloned();
        refusals.push((r.status().as_u16(), ct, r.bytes().await.expect("body")));
    }
    // The flood: 300 more from the same address.
    let mut limited = 0;
    for i in 0..300 {
        let id = &targets[i % targets.len()];
        let r = post(id).await.expect("notify");
        if r.status().as_u16() == 429 {
            limited += 1;
            assert!(r.headers().get("retry-after").is_some());
            let ct = r.headers().get("content-type").cloned();
            let body = r.bytes().await.expect("body");
            let (_, want_ct, want_body) = &refusals[i % targets.len()];
            assert_eq!(
                (&ct, &body),
                (want_ct, want_body),
                "the channel's own failure reply"
            );
        }
    }
    assert!(limited >= 280, "refused after the burst: {limited}");
    let refused = metric(
        &app,
        r#"cashdesk_warnings_total{kind="notification_refused"}"#,
    )
    .await;
    assert_eq!(refused, 300 + 4 - limited, "every verified refusal counted");
    assert!(
        metric(
            &app,
            r#"cashdesk_warnings_logged_total{kind="notification_refused"}"#
        )
        .await
            <= 4,
        "one line per config"
    );
    assert_eq!(
        metric(&app, r#"cashdesk_rate_limited_total{surface="notify"}"#).await,
        limited
    );
    assert_eq!(
        metric(
            &app,
            r#"cashdesk_warnings_logged_total{kind="rate_limited"}"#
        )
        .await,
        1,
        "one line for the address"
    );
    // /healthz is not limited.
    let resp = app
        .raw(Method::GET, "/healthz", b"", HeaderMap::new())
        .await;
    assert_eq!(resp.status.as_u16(), 200);
}

async fn api_limits_per_address_before_verification_and_per_app_after(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.rate_limit_api = 1;
        c.rate_limit_api_burst = 5;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
    })
    .await;
    // Per address, before the signature is checked: forged requests from
    // one address are refused unsigned once its burst is spent.
    let wrong = Client::new(
        &app.base_url,
        &app.demo_app_id,
        Credentials::hmac_sha256("nope"),
    )
    .expect("client");
    let mut codes = Vec::new();
    for i in 0..8 {
        let resp = app
            .signed_raw(
                &wrong,
                Method::POST,
                "/api/cashier-desk/unified/orders",
                b"{}",
                now(),
                &format!("n-ip-{i}"),
            )
            .await;
        codes.push(resp.json().expect("json")["code"].as_i64().expect("code"));
        if resp.status.as_u16() == 429 {
            assert!(resp.headers.get("retry-after").is_some());
            assert!(resp.headers.get("cashdesk-signature").is_none());
        }
    }
    assert_eq!(codes[..5], [4014; 5], "{codes:?}");
    assert_eq!(codes[5..], [4290; 3], "{codes:?}");

    // Per app, after it: the app's requests from many addresses (through
    // the trusted proxy) share its bucket; the refusal is signed and the
    // nonce is not spent.
    let body = serde_json::to_vec(&order(&otn(), 1)).expect("json");
    let mut last = None;
    for i in 0..7 {
        let mut headers = app
            .client
            .signer()
            .sign_request_at(
                "POST",
                "/api/cashier-desk/unified/orders",
                &body,
                now(),
                &format!("n-app-{i}"),
            )
            .expect("sign")
            .to_header_map()
            .expect("headers");
        headers.insert("content-type", "application/json".parse().expect("ct"));
        headers.insert(
            "x-forwarded-for",
            format!("198.51.100.{i}").parse().expect("xff"),
        );
        let resp = app
            .raw(
                Method::POST,
                "/api/cashier-desk/unified/orders",
                &body,
                headers,
            )
            .await;
        let code = resp.json().expect("json")["code"].as_i64();
        if i < 5 {
            // The first creates the order, the next four are its idempotent repeats.
            assert_eq!(code, Some(1000), "{i}: {:?}", resp.json());
        } else {
            assert_envelope(&resp, 429, 4290);
            assert!(resp.headers.get("cashdesk-signature").is_some(), "signed");
            last = Some(i);
        }
    }
    assert_eq!(last, Some(6));
    assert!(metric(&app, r#"cashdesk_rate_limited_total{surface="app"}"#).await >= 2);
    assert!(metric(&app, r#"cashdesk_rate_limited_total{surface="api"}"#).await >= 3);
}

async fn forwarded_headers_count_only_from_trusted_proxies(b: Backend) {
    // Untrusted peer: a spoofed X-Forwarded-For is ignored, every request
    // counts against the peer's own bucket.
    let app = spawn_app_with(b.clone(), |c| {
        c.rate_limit_public = 1;
        c.rate_limit_public_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            format!("203.0.113.{i}").parse().expect("xff"),
        );
        h.insert(
            "forwarded",
            format!("for=203.0.113.{i}").parse().expect("fwd"),
        );
        let resp = app
            .raw(Method::GET, "/cashier-desk-web/result?token=nope", b"", h)
            .await;
        statuses.push(resp.status.as_u16());
    }
    assert_eq!(statuses, [404, 404, 404, 429, 429]);
    drop(app);

    // Loopback is the trusted proxy: each forwarded client has its own
    // bucket, and the H5 payer IP is the client's.
    let app = spawn_app_with(b, |c| {
        c.rate_limit_public = 1;
        c.rate_limit_public_burst = 3;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
    })
    .await;
    for i in 0..5 {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            format!("6.6.6.6, 203.0.113.{i}").parse().expect("xff"),
        );
        let resp = app
            .raw(Method::GET, "/cashier-desk-web/result?token=nope", b"", h)
            .await;
        assert_eq!(resp.status.as_u16(), 404, "{i}");
    }
    let created = app
        .client
        .create_order(&order(&otn(), 7))
        .await
        .expect("order");
    let h5 = crate::cashier::demo_channel(&app, "v2", "h5");
    let resp = app
        .http()
        .post(format!("{}/cashier-desk-web/payment", app.base_url))
        .header(
            "user-agent",
            "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36",
        )
        .header("x-forwarded-for", "6.6.6.6, 198.51.100.77")
        .form(&[
            ("token", created.token.as_str()),
            ("channelId", h5.as_str()),
        ])
        .send()
        .await
        .expect("choose");
    assert!(
        resp.status().is_redirection() || resp.status().is_success(),
        "{}",
        resp.status()
    );
    let configs = app.admin.list_channel_configs().await.expect("configs");
    let mch_id = configs
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["channelType"] == "wx-pay" && c["apiVersion"] == "v2")
        .and_then(|c| c["mchId"].as_str())
        .expect("v2 mch id")
        .to_owned();
    let requests = app.sandbox_requests(&mch_id, "api").await;
    let sent = requests
        .iter()
        .filter_map(|r| r["requestBody"].as_str())
        .find(|body| body.contains("MWEB"))
        .expect("the H5 unified order");
    assert!(sent.contains("198.51.100.77"), "{sent}");
    assert!(!sent.contains("6.6.6.6"), "{sent}");
}
