//! The issue's "Bad input" list. Every case asserts the code and HTTP
//! status AND that nothing changed: no order was written, and (for
//! refusals before the nonce is consumed) the same nonce still works.

use cashdesk_core::SignType;
use cashdesk_crypto::apisig;
use cashdesk_sdk::{Client, Credentials, HeaderMap, Method};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

const ORDERS: &str = "/api/cashier-desk/unified/orders";

backend_tests!(
    missing_and_overlong_fields,
    bad_amounts,
    bad_out_trade_nos,
    invalid_json,
    body_over_the_limit,
    bad_notify_urls,
    wrong_signature_and_auth_headers,
    replayed_nonce,
    unknown_and_disabled_app,
    channel_not_bound,
    token_expired_or_unknown,
    unknown_route_and_wrong_method,
    duplicate_keys_and_invisible_text,
);

fn valid() -> Value {
    json!({"outTradeNo": otn(), "amount": 100, "orderTitle": "Tea"})
}

/// Sends `body` signed by the demo app; asserts the refusal and that no
/// order was created.
async fn refused(
    app: &TestApp,
    body: &Value,
    status: u16,
    code: i64,
    field: Option<&str>,
) -> Value {
    let bytes = serde_json::to_vec(body).expect("json");
    refused_bytes(app, &bytes, status, code, field).await
}

/// Sends `body` signed by the demo app and asserts it is taken (200).
async fn accepted(app: &TestApp, body: &Value, nonce: &str) {
    let bytes = serde_json::to_vec(body).expect("json");
    let resp = app
        .signed_raw(&app.client, Method::POST, ORDERS, &bytes, now(), nonce)
        .await;
    assert_eq!(resp.status.as_u16(), 200, "{body}: {:?}", resp.json());
}

/// [`refused`] for a body written by hand (what `Value` cannot hold).
async fn refused_bytes(
    app: &TestApp,
    bytes: &[u8],
    status: u16,
    code: i64,
    field: Option<&str>,
) -> Value {
    let body = String::from_utf8_lossy(bytes);
    let before = app.order_count().await;
    let nonce = cashdesk_crypto::random::nonce_str(32);
    let resp = app
        .signed_raw(&app.client, Method::POST, ORDERS, bytes, now(), &nonce)
        .await;
    let env = assert_envelope(&resp, status, code);
    if let Some(field) = field {
        assert_eq!(env["data"]["field"].as_str(), Some(field), "{env}");
        assert!(
            env["msg"].as_str().is_some_and(|m| m.starts_with(field)),
            "msg names the field: {env}"
        );
    }
    // Signed: the app was proven before the body was judged.
    app.client
        .verifier()
        .expect("verifier")
        .verify_response(&resp.headers, &resp.body)
        .expect("refusal is signed");
    assert_eq!(
        app.order_count().await,
        before,
        "database unchanged for {body}"
    );
    env
}

/// Issue 13: a signed body with a key twice (serde_json would keep the
/// last) and titles with bidi overrides or zero-width characters are
/// refused with 4000 naming the field; nothing is stored.
async fn duplicate_keys_and_invisible_text(b: Backend) {
    let app = spawn_app(b).await;
    let no = otn();
    for (body, field) in [
        (
            format!(r#"{{"outTradeNo":"{no}","amount":1,"orderTitle":"Tea","amount":100000}}"#),
            "amount",
        ),
        (
            format!(r#"{{"outTradeNo":"{no}","outTradeNo":"{no}","amount":1,"orderTitle":"Tea"}}"#),
            "outTradeNo",
        ),
        (
            format!(
                r#"{{"outTradeNo":"{no}","amount":1,"orderTitle":"Tea","extra":{{"a":1,"a":2}}}}"#
            ),
            "extra.a",
        ),
    ] {
        refused_bytes(&app, body.as_bytes(), 400, 4000, Some(field)).await;
    }
    for (field, text) in [
        ("orderTitle", "Tea \u{202E}gpj.exe"),
        ("orderTitle", "T\u{200B}ea"),
        ("orderTitle", "\u{2067}Tea\u{2069}"),
        ("goodsDesc", "\u{FEFF}leaves"),
        ("goodsDesc", "green\u{200F}"),
    ] {
        let mut body = valid();
        body[field] = json!(text);
        let env = refused(&app, &body, 400, 4000, Some(field)).await;
        assert!(
            env["msg"].as_str().is_some_and(|m| m.contains("invisible")),
            "{env}"
        );
    }
    // Registration (open to strangers when open registration is on) too.
    let resp = app
        .admin
        .create_app(&cashdesk_sdk::RegisterAppRequest {
            app_name: "Shop\u{202E}".into(),
            ..Default::default()
        })
        .await;
    assert_api_error(resp, 400, 4000);
    // Ordinary text in any script is fine.
    let mut body = valid();
    body["orderTitle"] = json!("绿茶 · شاي · תה");
    accepted(&app, &body, "plain-text").await;
}

async fn missing_and_overlong_fields(b: Backend) {
    let app = spawn_app(b).await;
    for field in ["outTradeNo", "amount", "orderTitle"] {
        let mut body = valid();
        body.as_object_mut().expect("object").remove(field);
        refused(&app, &body, 400, 4000, Some(field)).await;
        let mut body = valid();
        body[field] = Value::Null;
        refused(&app, &body, 400, 4000, Some(field)).await;
    }
    let mut body = valid();
    body["orderTitle"] = json!("   ");
    refused(&app, &body, 400, 4000, Some("orderTitle")).await;
    for (field, len) in [
        ("orderTitle", 129),
        ("goodsDesc", 601),
        ("thirdPartyUser", 129),
        ("attach", 128),
        ("outTradeNo", 33),
        ("storeId", 33),
        ("notifyUrl", 600),
        ("returnUrl", 600),
    ] {
        let mut body = valid();
        body[field] = json!("a".repeat(len));
        refused(&app, &body, 400, 4000, Some(field)).await;
    }
    // At the limits it is accepted (multi-byte characters count as one).
    let mut body = valid();
    body["orderTitle"] = json!("茶".repeat(128));
    body["goodsDesc"] = json!("d".repeat(600));
    body["attach"] = json!("a".repeat(127));
    let bytes = serde_json::to_vec(&body).expect("json");
    let resp = app
        .signed_raw(&app.client, Method::POST, ORDERS, &bytes, now(), "at-limit")
        .await;
    assert_eq!(resp.status.as_u16(), 200, "{:?}", resp.json());
    // Wrong types, bad ranges, bad formats.
    for (field, value) in [
        ("orderTitle", json!(5)),
        ("outTradeNo", json!(123)),
        ("expireMinutes", json!(0)),
        ("expireMinutes", json!(1441)),
        ("expireMinutes", json!("30")),
        ("clientIp", json!("999.1.1.1")),
        ("storeId", json!("store 1")),
        ("returnUrl", json!("javascript:alert(1)")),
        ("orderTitle", json!("a\u{0}b")),
        ("goodsDesc", json!("x\u{1}y")),
    ] {
        let mut body = valid();
        body[field] = value;
        refused(&app, &body, 400, 4000, Some(field)).await;
    }
    // Unknown fields are ignored (forward compatibility).
    let mut body = valid();
    body["someFutureField"] = json!({"x": 1});
    let bytes = serde_json::to_vec(&body).expect("json");
    let resp = app
        .signed_raw(
            &app.client,
            Method::POST,
            ORDERS,
            &bytes,
            now(),
            "unknown-field",
        )
        .await;
    assert_eq!(resp.status.as_u16(), 200);
}

async fn bad_amounts(b: Backend) {
    let app = spawn_app(b).await;
    for amount in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!(100.0),
        json!("100"),
        json!(10_000_000_001i64),
        json!(u64::MAX),
        json!(true),
    ] {
        let mut body = valid();
        body["amount"] = amount;
        refused(&app, &body, 400, 4000, Some("amount")).await;
    }
}

async fn bad_out_trade_nos(b: Backend) {
    let app = spawn_app(b).await;
    for no in [
        "a b", "订单1", "a/b", "a#b", "a.b", "a+b", "a%20b", "<x>", "",
    ] {
        let mut body = valid();
        body["outTradeNo"] = json!(no);
        refused(&app, &body, 400, 4000, Some("outTradeNo")).await;
    }
    // The whole allowed alphabet, 32 characters.
    let mut body = valid();
    body["outTradeNo"] = json!("Az09_-|*Az09_-|*Az09_-|*Az09_-|*");
    let bytes = serde_json::to_vec(&body).expect("json");
    let resp = app
        .signed_raw(&app.client, Method::POST, ORDERS, &bytes, now(), "alphabet")
        .await;
    assert_eq!(resp.status.as_u16(), 200, "{:?}", resp.json());
}

async fn invalid_json(b: Backend) {
    let app = spawn_app(b).await;
    for body in [
        &b"{"[..],
        b"",
        b"[1,2]",
        b"\"text\"",
        b"{\"amount\": 1,}",
        b"null",
    ] {
        let before = app.order_count().await;
        let resp = app
            .signed_raw(
                &app.client,
                Method::POST,
                ORDERS,
                body,
                now(),
                &cashdesk_crypto::random::nonce_str(16),
            )
            .await;
        assert_envelope(&resp, 400, 4001);
        assert_eq!(app.order_count().await, before);
    }
    // Admin and registration bodies too.
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        format!("Bearer {}", app.admin_token)
            .parse()
            .expect("header"),
    );
    let resp = app
        .raw(
            Method::POST,
            "/api/admin/channel-configs",
            b"{oops",
            h.clone(),
        )
        .await;
    assert_envelope(&resp, 400, 4001);
    let resp = app
        .raw(
            Method::POST,
            "/api/cashier-desk-sa/register",
            b"not json",
            h,
        )
        .await;
    assert_envelope(&resp, 400, 4001);
}

async fn body_over_the_limit(b: Backend) {
    let app = spawn_app_with(b, |c| c.body_limit_bytes = 2048).await;
    let mut body = valid();
    body["goodsDesc"] = json!("x".repeat(3000));
    let bytes = serde_json::to_vec(&body).expect("json");
    let before = app.order_count().await;
    let resp = app
        .signed_raw(&app.client, Method::POST, ORDERS, &bytes, now(), "big-1")
        .await;
    assert_envelope(&resp, 413, 4002);
    assert_eq!(app.order_count().await, before);
    // The SDK reports it as an API error too.
    let mut req = order(&otn(), 1);
    req.goods_desc = Some("y".repeat(3000));
    assert_api_error(app.client.create_order(&req).await, 413, 4002);
    // Unsigned routes are limited as well.
    let resp = app
        .raw(
            Method::POST,
            "/api/cashier-desk-sa/register",
            &vec![b' '; 4096],
            HeaderMap::new(),
        )
        .await;
    assert_envelope(&resp, 413, 4002);
    assert_eq!(app.order_count().await, before);
    // The nonce of the refused request was not consumed.
    let small = serde_json::to_vec(&valid()).expect("json");
    let resp = app
        .signed_raw(&app.client, Method::POST, ORDERS, &small, now(), "big-1")
        .await;
    assert_eq!(resp.status.as_u16(), 200);
}

async fn bad_notify_urls(b: Backend) {
    let app = spawn_app_with(b.clone(), |c| c.allow_private_notify_urls = false).await;
    for url in [
        "ftp://shop.example.com/n",
        "javascript:alert(1)",
        "https://user:pass@shop.example.com/n",
        "https://user@shop.example.com/n",
        "not a url",
        "https://127.0.0.1/n",
        "http://localhost:8080/n",
        "http://10.0.0.5/n",
        "http://[::1]/n",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let mut body = valid();
        body["notifyUrl"] = json!(url);
        refused(&app, &body, 400, 4000, Some("notifyUrl")).await;
    }
    let mut body = valid();
    body["notifyUrl"] = json!("https://shop.example.com/notify?x=1");
    let bytes = serde_json::to_vec(&body).expect("json");
    let resp = app
        .signed_raw(&app.client, Method::POST, ORDERS, &bytes, now(), "good-url")
        .await;
    assert_eq!(resp.status.as_u16(), 200);
    // Registration applies the same rules.
    let resp = app
        .admin
        .create_app(&cashdesk_sdk::RegisterAppRequest {
            app_name: "x".into(),
            notify_url: Some("https://a:b@shop.example.com/".into()),
            ..Default::default()
        })
        .await;
    assert_api_error(resp, 400, 4000);
    drop(app);
    // With private URLs allowed (tests, LAN), loopback is fine.
    let lan = spawn_app(b).await;
    let mut req = order(&otn(), 1);
    req.notify_url = Some("http://127.0.0.1:9/notify".into());
    lan.client
        .create_order(&req)
        .await
        .expect("loopback allowed by config");
}

/// Auth failures: unsigned 401s, nothing written, nonce still usable.
async fn wrong_signature_and_auth_headers(b: Backend) {
    let app = spawn_app(b).await;
    let body = serde_json::to_vec(&valid()).expect("json");
    let ts = now();
    let nonce = "auth-nonce-1";
    let good = app
        .client
        .signer()
        .sign_request_at("POST", ORDERS, &body, ts, nonce)
        .expect("sign")
        .to_header_map()
        .expect("headers");
    let send = |headers: HeaderMap| {
        let app = &app;
        let body = body.clone();
        async move { app.raw(Method::POST, ORDERS, &body, headers).await }
    };
    // Each of the five headers missing, or blank.
    for name in [
        apisig::HEADER_APP_ID,
        apisig::HEADER_TIMESTAMP,
        apisig::HEADER_NONCE,
        apisig::HEADER_SIGN_TYPE,
        apisig::HEADER_SIGNATURE,
    ] {
        let mut h = good.clone();
        h.remove(name);
        assert_envelope(&send(h).await, 401, 4010);
        let mut h = good.clone();
        h.insert(name, "".parse().expect("header"));
        assert_envelope(&send(h).await, 401, 4010);
    }
    let with = |name: &'static str, value: &str| {
        let mut h = good.clone();
        h.insert(name, value.parse().expect("header value"));
        h
    };
    assert_envelope(
        &send(with(apisig::HEADER_SIGN_TYPE, "SHA1")).await,
        401,
        4011,
    );
    assert_envelope(
        &send(with(apisig::HEADER_SIGN_TYPE, "hmac-sha256")).await,
        401,
        4011,
    );
    // A sign type that is not the app's is a bad signature (issue 13: no
    // answer tells a stranger how an app signs).
    assert_envelope(
        &send(with(apisig::HEADER_SIGN_TYPE, "MD5")).await,
        401,
        4014,
    );
    let stale = app
        .client
        .signer()
        .sign_request_at("POST", ORDERS, &body, ts - 301, nonce)
        .expect("sign");
    let env = assert_envelope(&send(stale.to_header_map().expect("h")).await, 401, 4012);
    assert!(env["data"]["serverTime"].as_i64().is_some());
    let future = app
        .client
        .signer()
        .sign_request_at("POST", ORDERS, &body, ts + 330, nonce)
        .expect("sign");
    assert_envelope(&send(future.to_header_map().expect("h")).await, 401, 4012);
    assert_envelope(
        &send(with(apisig::HEADER_TIMESTAMP, "yesterday")).await,
        401,
        4012,
    );
    assert_envelope(
        &send(with(apisig::HEADER_NONCE, &"n".repeat(65))).await,
        401,
        4010,
    );
    let sig = good
        .get(apisig::HEADER_SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .expect("sig")
        .to_owned();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    assert_envelope(
        &send(with(apisig::HEADER_SIGNATURE, &flipped)).await,
        401,
        4014,
    );
    // Signed over another path or another body: 4014.
    let other_path = app
        .client
        .signer()
        .sign_request_at("POST", "/api/other", &body, ts, nonce)
        .expect("sign");
    assert_envelope(
        &send(other_path.to_header_map().expect("h")).await,
        401,
        4014,
    );
    let other_body = app
        .client
        .signer()
        .sign_request_at("POST", ORDERS, b"{}", ts, nonce)
        .expect("sign");
    assert_envelope(
        &send(other_body.to_header_map().expect("h")).await,
        401,
        4014,
    );
    // None of that wrote anything, and the nonce is still fresh.
    assert_eq!(app.order_count().await, 0);
    let resp = send(good).await;
    assert_eq!(resp.status.as_u16(), 200, "{:?}", resp.json());
    assert_eq!(app.order_count().await, 1);
}

async fn replayed_nonce(b: Backend) {
    let app = spawn_app(b).await;
    let body = serde_json::to_vec(&valid()).expect("json");
    let ts = now();
    let r1 = app
        .signed_raw(&app.client, Method::POST, ORDERS, &body, ts, "replay-1")
        .await;
    assert_eq!(r1.status.as_u16(), 200);
    let r2 = app
        .signed_raw(&app.client, Method::POST, ORDERS, &body, ts, "replay-1")
        .await;
    assert_envelope(&r2, 401, 4015);
    // Even a GET with the same nonce is a replay.
    let r3 = app
        .signed_raw(
            &app.client,
            Method::GET,
            "/api/cashier-desk/out-trade-no/query-pay-result/X1",
            b"",
            ts,
            "replay-1",
        )
        .await;
    assert_envelope(&r3, 401, 4015);
    assert_eq!(app.order_count().await, 1);
    // Nonces are per app: another app may use the same one.
    let other = app.merchant(SignType::HmacSha256).await;
    let body2 = serde_json::to_vec(&valid()).expect("json");
    let r4 = app
        .signed_raw(&other.client, Method::POST, ORDERS, &body2, ts, "replay-1")
        .await;
    assert_eq!(r4.status.as_u16(), 200);
}

/// A refused signed request's envelope without its string-to-sign hint
/// (which names the nonce and timestamp), and whether it had one.
async fn refusal(app: &TestApp, client: &Client, body: &[u8], nonce: &str) -> (Value, bool) {
    let resp = app
        .signed_raw(client, Method::POST, ORDERS, body, now(), nonce)
        .await;
    let mut env = assert_envelope(&resp, 401, 4014);
    let hint = env["data"]["expectedStringToSign"].take();
    env["responseTime"].take();
    (env, hint.is_string())
}

/// Issue 13: an unknown app id, a sign type that is not the app's and a
/// wrong key get one answer (4014, one message; the sandbox's expected
/// string to sign for all three, since it depends only on the request),
/// so an anonymous caller cannot tell which app ids exist.
async fn unknown_and_disabled_app(b: Backend) {
    let app = spawn_app(b.clone()).await;
    let body = serde_json::to_vec(&valid()).expect("json");
    let prod = spawn_app_with(b, |c| c.sandbox = Some(false)).await;
    for (t, sandbox) in [(&app, true), (&prod, false)] {
        let client = |app_id: &str, sign_type: SignType, key: &str| {
            let credentials = Credentials::Shared {
                sign_type,
                app_key: cashdesk_sdk::Secret::new(key),
            };
            Client::new(&t.base_url, app_id, credentials).expect("client")
        };
        let wrong_key = client(&t.demo_app_id, SignType::HmacSha256, "not-the-key");
        let (reference, hint) = refusal(t, &wrong_key, &body, "wrong-key").await;
        assert_eq!(hint, sandbox, "{reference}");
        for (c, nonce) in [
            (
                client("app0000000000000000", SignType::HmacSha256, "k"),
                "ghost-1",
            ),
            (client("../../etc", SignType::HmacSha256, "k"), "ghost-2"),
            // The demo app signs with HMAC-SHA256, not MD5.
            (
                client(&t.demo_app_id, SignType::Md5, &t.demo_app_key),
                "wrong-type",
            ),
        ] {
            let (env, hint) = refusal(t, &c, &body, nonce).await;
            assert_eq!(env, reference, "{nonce}: one answer for all");
            assert_eq!(hint, sandbox, "{nonce}");
        }
    }
    drop(prod);

    let m = app.merchant(SignType::HmacSm3).await;
    app.admin.disable_app(&m.app_id).await.expect("disable");
    let ts = now();
    let resp = app
        .signed_raw(&m.client, Method::POST, ORDERS, &body, ts, "disabled-1")
        .await;
    assert_envelope(&resp, 403, 4030);
    assert_api_error(m.client.create_order(&order(&otn(), 1)).await, 403, 4030);
    assert_eq!(app.order_count().await, 0);
    app.admin.enable_app(&m.app_id).await.expect("enable");
    // The refused request consumed nothing: its nonce works now.
    let resp = app
        .signed_raw(&m.client, Method::POST, ORDERS, &body, ts, "disabled-1")
        .await;
    assert_eq!(resp.status.as_u16(), 200, "{:?}", resp.json());
    assert_eq!(app.order_count().await, 1);
}

async fn channel_not_bound(b: Backend) {
    let app = spawn_app(b).await;
    let channel = crate::bindings::new_channel(&app, "mini").await;
    let no = otn();
    app.client
        .create_order(&order(&no, 10))
        .await
        .expect("order");
    let pay = json!({"outTradeNo": no, "channelId": channel});
    let path = "/api/cashier-desk/payment";
    let resp = app.client.send(Method::POST, path, Some(&pay)).await;
    assert_api_error(resp, 403, 4031);
    // A channel that does not exist is not found, and says which field.
    let unknown = json!({"outTradeNo": no, "channelId": "H01ARZ3NDEKTSV4RRFFQ69G5FAV"});
    let data = assert_api_error(
        app.client.send(Method::POST, path, Some(&unknown)).await,
        404,
        4040,
    );
    assert_eq!(data.expect("data")["field"], "channelId");
    // Applied but still pending: not bound either.
    app.client
        .apply_binding(&cashdesk_sdk::ApplyBindingRequest {
            channel_id: channel.clone(),
            store_id: None,
        })
        .await
        .expect("apply");
    assert_api_error(
        app.client.send(Method::POST, path, Some(&pay)).await,
        403,
        4031,
    );
    // Unknown order, unpayable order.
    let resp = app
        .client
        .send(
            Method::POST,
            path,
            Some(&json!({"outTradeNo": "NOPE", "channelId": channel})),
        )
        .await;
    assert_api_error(resp, 404, 4040);
    app.client.close_order(&no).await.expect("close");
    assert_api_error(
        app.client.send(Method::POST, path, Some(&pay)).await,
        422,
        4220,
    );
    let order = app
        .client
        .query_pay_result(&no, false)
        .await
        .expect("query");
    assert_eq!(order.state, cashdesk_core::OrderState::Closed);
    assert_eq!(order.channel_id, None, "nothing recorded");
}

async fn token_expired_or_unknown(b: Backend) {
    // Expiry itself is covered in orders::payment_list_by_token; here the
    // unknown-token shapes.
    let app = spawn_app(b).await;
    for token in ["", "%00", "abc", &"A".repeat(43)] {
        let resp = app
            .raw(
                Method::GET,
                &format!("/api/cashier-desk/payment/list?token={token}"),
                b"",
                HeaderMap::new(),
            )
            .await;
        if token.is_empty() {
            assert_envelope(&resp, 400, 4000);
        } else {
            assert_envelope(&resp, 404, 4041);
        }
    }
}

async fn unknown_route_and_wrong_method(b: Backend) {
    let app = spawn_app(b).await;
    let resp = app
        .raw(Method::GET, "/api/cashier-desk/nope", b"", HeaderMap::new())
        .await;
    assert_envelope(&resp, 404, 4040);
    let resp = app.raw(Method::GET, ORDERS, b"", HeaderMap::new()).await;
    assert_envelope(&resp, 405, 4050);
    let resp = app
        .raw(Method::DELETE, "/api/admin/apps", b"", HeaderMap::new())
        .await;
    assert_envelope(&resp, 405, 4050);
}
