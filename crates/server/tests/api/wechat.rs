//! WeChat Pay end to end over HTTP against the mounted sandbox: every scene
//! of both API versions (payData checked independently), the sandbox pays,
//! its notification moves the order to SUCCESS; same channel again and
//! channel switching; close at the channel; sync query after a dropped or
//! tampered notification; channel failures; the demo app's channels.

use std::collections::BTreeMap;
use std::time::Duration;

use cashdesk_crypto::rsa::RsaPrivateKey;
use cashdesk_crypto::wxv2::{self, WxSignType};
use cashdesk_sdk::{PayData, PaymentRequest};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Backend, SCENES, TestApp, WxSetup, assert_api_error, spawn_app, spawn_app_with,
};

backend_tests!(
    every_scene_v2,
    every_scene_v3,
    same_channel_again_and_switching,
    close_goes_to_the_channel,
    sync_query_recovers_a_dropped_notification,
    tampered_notifications_change_nothing,
    channel_failures_leave_the_order_payable,
    demo_app_pays_on_the_sandbox,
    config_credentials_are_validated,
    v2_md5_end_to_end,
    identical_payments_make_one_channel_call,
);

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// The payment request a merchant makes for `scene` (the payer's openid
/// for JSAPI scenes, the buyer's IP for H5).
fn pay_req(no: &str, setup: &WxSetup, scene: &str) -> PaymentRequest {
    let req = PaymentRequest::new(no, setup.channel(scene));
    match scene {
        "mini" | "jsapi" => req.with_openid("oBuyer0001"),
        "h5" => req.with_client_ip("203.0.113.7"),
        _ => req,
    }
}

/// The v2 sign type of `setup`'s config (its credentials' `signType`).
fn v2_sign_type(setup: &WxSetup) -> WxSignType {
    WxSignType::parse(s(setup.creds(), "signType")).expect("a v2 sign type")
}

/// Checks `payData` for `scene` without cashdesk's code: v2 signatures are
/// recomputed with the merchant's API key and the config's sign type, v3
/// ones verified with the merchant's public key, and the Native QR code is
/// decoded back to its code URL.
async fn check_pay_data(app: &TestApp, setup: &WxSetup, scene: &str, pay_data: &PayData) {
    let creds = setup.creds();
    let app_id = s(creds, "appId");
    let v3_key = || {
        RsaPrivateKey::from_pem(s(creds, "privateKeyPem"))
            .expect("merchant key")
            .public_key()
    };
    match (scene, pay_data) {
        ("mini" | "jsapi", PayData::RequestPayment(p)) => {
            assert_eq!(p.app_id, app_id);
            assert!(p.package.starts_with("prepay_id="), "{p:?}");
            let ts: i64 = p.time_stamp.parse().expect("timeStamp");
            assert!((ts - crate::helpers::now()).abs() < 60);
            if setup.api_version == "v2" {
                let sign_type = v2_sign_type(setup);
                assert_eq!(p.sign_type, sign_type.as_str());
                let expected = wxv2::request_payment_sign(
                    app_id,
                    &p.time_stamp,
                    &p.nonce_str,
                    &p.package,
                    sign_type,
                    s(creds, "apiKey"),
                );
                assert_eq!(p.pay_sign, expected);
            } else {
                assert_eq!(p.sign_type, "RSA");
                let msg = format!(
                    "{app_id}\n{}\n{}\n{}\n",
                    p.time_stamp, p.nonce_str, p.package
                );
                v3_key()
                    .verify_sha256_base64(msg.as_bytes(), &p.pay_sign)
                    .expect("v3 paySign verifies with the merchant key");
            }
        }
        ("app", PayData::WxApp(p)) => {
            assert_eq!(p.appid, app_id);
            assert_eq!(p.partnerid, setup.mch_id());
            assert_eq!(p.package, "Sign=WXPay");
            if setup.api_version == "v2" {
                let fields: BTreeMap<String, String> = [
                    ("appid", &p.appid),
                    ("partnerid", &p.partnerid),
                    ("prepayid", &p.prepayid),
                    ("package", &p.package),
                    ("noncestr", &p.noncestr),
                    ("timestamp", &p.timestamp),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect();
                assert_eq!(
                    p.sign,
                    wxv2::sign(&fields, s(creds, "apiKey"), v2_sign_type(setup))
                );
            } else {
                let msg = format!(
                    "{app_id}\n{}\n{}\n{}\n",
                    p.timestamp, p.noncestr, p.prepayid
                );
                v3_key()
                    .verify_sha256_base64(msg.as_bytes(), &p.sign)
                    .expect("v3 app sign verifies");
            }
        }
        (
            "native",
            PayData::Native {
                code_url,
                qr_svg_url,
            },
        ) => {
            // The sandbox's code URL is an http link to its payer page (real
            // WeChat: weixin://wxpay/bizpayurl?pr=…, for WeChat's scanner).
            let parsed = url::Url::parse(code_url).expect("codeUrl is a URL");
            assert!(
                parsed.path().starts_with("/sandbox/wechat/pay/"),
                "{code_url}"
            );
            let page = app.http().get(code_url).send().await.expect("payer page");
            assert_eq!(page.status().as_u16(), 200);
            // The QR SVG served by cashdesk reads back as exactly that URL.
            let svg_url = qr_svg_url.as_deref().expect("qrSvgUrl");
            assert!(svg_url.starts_with(&format!("{}/cashier-desk-web/qr/", app.base_url)));
            let resp = app.http().get(svg_url).send().await.expect("svg");
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(
                resp.headers()["content-type"].to_str().expect("ct"),
                "image/svg+xml"
            );
            let svg = resp.text().await.expect("svg text");
            assert_eq!(
                crate::qr::decode_svg(&svg),
                *code_url,
                "the QR code reads as the codeUrl"
            );
            // A forged token is refused.
            let forged = app
                .http()
                .get(format!("{}/cashier-desk-web/qr/AAAA.svg", app.base_url))
                .send()
                .await
                .expect("forged");
            assert_eq!(forged.status().as_u16(), 404);
        }
        ("h5", PayData::H5 { h5_url }) => {
            assert!(h5_url.contains("/sandbox/wechat/pay/"), "{h5_url}");
        }
        (scene, other) => panic!("scene {scene}: unexpected payData {other:?}"),
    }
}

async fn every_scene(b: Backend, version: &'static str) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup(version).await;
    let client = &setup.shop.client;
    for scene in SCENES {
        let (no, order_id) = app.new_order(client, 101).await;
        let paid = client
            .pay(&pay_req(&no, &setup, scene))
            .await
            .unwrap_or_else(|e| panic!("{version} {scene}: {e:?}"));
        assert_eq!(paid.order_id, order_id);
        assert_eq!(paid.channel_type, "wx-pay");
        assert_eq!(paid.scene_code, scene);
        check_pay_data(&app, &setup, scene, &paid.pay_data).await;
        let paying = client.query_pay_result(&no, false).await.expect("query");
        assert_eq!(serde_json::to_value(paying.state).expect("state"), "PAYING");
        assert_eq!(paying.channel_id.as_deref(), Some(setup.channel(scene)));
        assert_eq!(paying.mch_id.as_deref(), Some(setup.mch_id()));
        app.sandbox_pay(&order_id).await;
        let done = app.wait_state(client, &no, "SUCCESS").await;
        assert!(
            done.transaction_id
                .as_deref()
                .is_some_and(|t| !t.is_empty()),
            "{done:?}"
        );
        let pay_time = done.pay_time.clone().expect("payTime");
        assert_eq!(pay_time.len(), 19, "yyyy-MM-dd HH:mm:ss: {pay_time}");
        assert!(!done.paid_after_close);
        // The sync query agrees and changes nothing.
        let synced = client.query_pay_result(&no, true).await.expect("sync");
        assert_eq!(synced.transaction_id, done.transaction_id);
        // A paid order cannot be paid again.
        assert_api_error(client.pay(&pay_req(&no, &setup, scene)).await, 422, 4220);
    }
    assert!(
        app.metric(
            "cashdesk_channel_notifications_total",
            &[("result", "applied")]
        )
        .await
            >= 5.0
    );
}

async fn every_scene_v2(b: Backend) {
    every_scene(b, "v2").await
}

async fn every_scene_v3(b: Backend) {
    every_scene(b, "v3").await
}

async fn same_channel_again_and_switching(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v2").await;
    let client = &setup.shop.client;
    let (no, _) = app.new_order(client, 5).await;
    let first = client
        .pay(&pay_req(&no, &setup, "mini"))
        .await
        .expect("first");
    let again = client
        .pay(&pay_req(&no, &setup, "mini"))
        .await
        .expect("again");
    assert_eq!(
        first.pay_data.request_payment().map(|p| &p.package),
        again.pay_data.request_payment().map(|p| &p.package),
        "the same channel gets the same prepay"
    );
    // Another channel while PAYING: refused, order unchanged.
    assert_api_error(client.pay(&pay_req(&no, &setup, "native")).await, 422, 4220);
    let q = client.query_pay_result(&no, false).await.expect("query");
    assert_eq!(q.channel_id.as_deref(), Some(setup.channel("mini")));
    // Missing openid for mini: 400, nothing changes.
    let (no2, _) = app.new_order(client, 5).await;
    assert_api_error(
        client
            .pay(&PaymentRequest::new(&no2, setup.channel("mini")))
            .await,
        400,
        4000,
    );
    let q2 = client.query_pay_result(&no2, false).await.expect("query");
    assert_eq!(serde_json::to_value(q2.state).expect("s"), "CREATED");
}

async fn close_goes_to_the_channel(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 7).await;
    client
        .pay(&pay_req(&no, &setup, "native"))
        .await
        .expect("pay");
    let closed = client.close_order(&no).await.expect("close");
    assert_eq!(serde_json::to_value(closed.state).expect("s"), "CLOSED");
    // Closed at the channel: the buyer can no longer pay there.
    let (status, v) = app
        .sandbox_post(
            "/sandbox/api/pay",
            json!({"channelType": "wx-pay", "outTradeNo": order_id, "result": "SUCCESS"}),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    // Closing again is idempotent; paying is refused.
    client.close_order(&no).await.expect("close again");
    assert_api_error(client.pay(&pay_req(&no, &setup, "native")).await, 422, 4220);
    // v2 as well, with a channel failure first: the order stays open.
    let v2 = app.wechat_setup("v2").await;
    let (no2, _) = app.new_order(&v2.shop.client, 7).await;
    v2.shop
        .client
        .pay(&pay_req(&no2, &v2, "app"))
        .await
        .expect("pay v2");
    app.add_fault(json!({"channelType": "wx-pay", "fault": "SYSTEMERROR", "mchId": v2.mch_id(), "pathContains": "closeorder"}))
        .await;
    assert_api_error(v2.shop.client.close_order(&no2).await, 502, 5020);
    let q = v2
        .shop
        .client
        .query_pay_result(&no2, false)
        .await
        .expect("q");
    assert_eq!(serde_json::to_value(q.state).expect("s"), "PAYING");
    let closed = v2.shop.client.close_order(&no2).await.expect("close v2");
    assert_eq!(serde_json::to_value(closed.state).expect("s"), "CLOSED");
}

async fn sync_query_recovers_a_dropped_notification(b: Backend) {
    let app = spawn_app(b).await;
    for version in ["v2", "v3"] {
        let setup = app.wechat_setup(version).await;
        let client = &setup.shop.client;
        let (no, order_id) = app.new_order(client, 300).await;
        client
            .pay(&pay_req(&no, &setup, "jsapi"))
            .await
            .expect("pay");
        app.add_fault(
            json!({"channelType": "wx-pay", "fault": "DROP_NOTIFY", "mchId": setup.mch_id()}),
        )
        .await;
        app.sandbox_pay(&order_id).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let local = client.query_pay_result(&no, false).await.expect("local");
        assert_eq!(serde_json::to_value(local.state).expect("s"), "PAYING");
        let synced = client.query_pay_result(&no, true).await.expect("sync");
        assert_eq!(
            serde_json::to_value(synced.state).expect("s"),
            "SUCCESS",
            "{version}"
        );
        assert!(synced.transaction_id.is_some() && synced.pay_time.is_some());
    }
}

async fn tampered_notifications_change_nothing(b: Backend) {
    let app = spawn_app(b).await;
    for (version, fault, result) in [
        ("v2", "TAMPER_AMOUNT", "mismatch"),
        ("v3", "TAMPER_AMOUNT", "mismatch"),
        ("v2", "TAMPER_SIGNATURE", "unverifiable"),
        ("v3", "TAMPER_SIGNATURE", "unverifiable"),
    ] {
        let setup = app.wechat_setup(version).await;
        let client = &setup.shop.client;
        let (no, order_id) = app.new_order(client, 88).await;
        client
            .pay(&pay_req(&no, &setup, "mini"))
            .await
            .expect("pay");
        let before = app
            .metric(
                "cashdesk_channel_notifications_total",
                &[("result", result)],
            )
            .await;
        app.add_fault(json!({"channelType": "wx-pay", "fault": fault, "mchId": setup.mch_id()}))
            .await;
        app.sandbox_pay(&order_id).await;
        let refused = app
            .metric_rises(
                "cashdesk_channel_notifications_total",
                &[("result", result)],
                before,
            )
            .await;
        assert!(refused, "{version} {fault}: the notification was refused");
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(
            serde_json::to_value(q.state).expect("s"),
            "PAYING",
            "{version} {fault}"
        );
        assert!(q.transaction_id.is_none());
        // The channel's own answer (amount checked) settles it.
        let synced = client.query_pay_result(&no, true).await.expect("sync");
        assert_eq!(serde_json::to_value(synced.state).expect("s"), "SUCCESS");
        assert_eq!(synced.amount, 88);
    }
}

async fn channel_failures_leave_the_order_payable(b: Backend) {
    let app = spawn_app_with(b, |c| c.channel_timeout_ms = 1_000).await;
    for version in ["v2", "v3"] {
        let setup = app.wechat_setup(version).await;
        let client = &setup.shop.client;
        for (fault, expect) in [
            ("SYSTEMERROR", ["SYSTEM", "系统"]),
            ("HTTP_500", ["500", "500"]),
            ("TIMEOUT", ["timed out", "timed out"]),
        ] {
            let (no, _) = app.new_order(client, 9).await;
            app.add_fault(json!({"channelType": "wx-pay", "fault": fault, "mchId": setup.mch_id(), "delayMs": 2500}))
                .await;
            let err = client.pay(&pay_req(&no, &setup, "native")).await;
            match err {
                Err(cashdesk_sdk::SdkError::Api {
                    status, code, msg, ..
                }) => {
                    assert_eq!((status, code), (502, 5020), "{version} {fault}: {msg}");
                    assert!(
                        expect.iter().any(|e| msg.contains(e)),
                        "{version} {fault}: {msg}"
                    );
                }
                other => panic!("{version} {fault}: expected 502, got {other:?}"),
            }
            let q = client.query_pay_result(&no, false).await.expect("q");
            assert_eq!(serde_json::to_value(q.state).expect("s"), "CREATED");
            assert!(q.channel_id.is_none());
            // Retryable: the next attempt goes through.
            let ok = client
                .pay(&pay_req(&no, &setup, "native"))
                .await
                .unwrap_or_else(|e| panic!("{version} {fault} retry: {e:?}"));
            assert!(ok.pay_data.code_url().is_some(), "{ok:?}");
        }
    }
}

/// The README's flow: the demo app, its v2 mini-program channel, the sandbox.
async fn demo_app_pays_on_the_sandbox(b: Backend) {
    let app = spawn_app(b).await;
    let demo: Value =
        serde_json::from_slice(&std::fs::read(app.config.demo_app_file()).expect("demo file"))
            .expect("json");
    let channels = demo["channels"].as_array().expect("channels");
    assert_eq!(
        channels.len(),
        19,
        "WeChat v2 and v3 × five scenes, Alipay five, Lakala four"
    );
    let (no, order_id) = app.new_order(&app.client, 1).await;
    let created_channels = app
        .client
        .payment_list(
            &app.client
                .create_order(&crate::helpers::order(&crate::helpers::otn(), 1))
                .await
                .expect("order")
                .token,
        )
        .await
        .expect("list")
        .channels;
    assert_eq!(created_channels.len(), 19);
    let mini = channels
        .iter()
        .find(|c| {
            c["channelType"] == "wx-pay" && c["apiVersion"] == "v2" && c["sceneCode"] == "mini"
        })
        .expect("v2 mini");
    let paid = app
        .client
        .pay(
            &PaymentRequest::new(&no, mini["channelId"].as_str().expect("channelId"))
                .with_openid("oSandboxBuyer"),
        )
        .await
        .expect("pay");
    assert_eq!(
        paid.pay_data
            .request_payment()
            .map(|p| p.sign_type.as_str()),
        Some("HMAC-SHA256")
    );
    app.sandbox_pay(&order_id).await;
    let done = app.wait_state(&app.client, &no, "SUCCESS").await;
    assert!(done.transaction_id.is_some());
}

async fn config_credentials_are_validated(b: Backend) {
    let app = spawn_app(b).await;
    let m = app.open_sandbox_merchant("MD5").await;
    let req = |api: &str, creds: Value| cashdesk_sdk::CreateChannelConfigRequest {
        channel_type: "wx-pay".into(),
        name: "x".into(),
        mch_id: m["mchId"].as_str().expect("mch").into(),
        api_version: Some(api.into()),
        credentials: creds,
        base_url: Some(m["baseUrl"].as_str().expect("base").into()),
    };
    let mut bad_sign = m["credentialsV2"].clone();
    bad_sign["signType"] = json!("SHA1");
    let data = assert_api_error(
        app.admin.create_channel_config(&req("v2", bad_sign)).await,
        400,
        4000,
    )
    .expect("data");
    assert_eq!(data["field"], "credentials");
    let mut short_key = m["credentialsV3"].clone();
    short_key["apiV3Key"] = json!("short");
    assert_api_error(
        app.admin.create_channel_config(&req("v3", short_key)).await,
        400,
        4000,
    );
    assert_api_error(
        app.admin
            .create_channel_config(&req("v9", m["credentialsV2"].clone()))
            .await,
        400,
        4000,
    );
    // The sandbox's answer pastes as is.
    app.admin
        .create_channel_config(&req("v2", m["credentialsV2"].clone()))
        .await
        .expect("v2 config");
    app.admin
        .create_channel_config(&req("v3", m["credentialsV3"].clone()))
        .await
        .expect("v3 config");
}

/// A v2 config signing with MD5 (WeChat's default), end to end over HTTP:
/// `paySign` and the app `sign` recomputed with MD5, the sandbox's
/// notification (which, like WeChat's, carries no `sign_type`) verified
/// with the order's MD5, the sync query, and a partial and a full refund
/// settled by the sandbox's refund notifications.
async fn v2_md5_end_to_end(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup_with("v2", "MD5", |_| {}).await;
    assert_eq!(v2_sign_type(&setup), WxSignType::Md5);
    let client = &setup.shop.client;

    // The app scene's sign, with MD5 too.
    let (app_no, _) = app.new_order(client, 50).await;
    let paid = client
        .pay(&pay_req(&app_no, &setup, "app"))
        .await
        .expect("pay app");
    check_pay_data(&app, &setup, "app", &paid.pay_data).await;

    let (no, order_id) = app.new_order(client, 1000).await;
    let paid = client
        .pay(&pay_req(&no, &setup, "mini"))
        .await
        .expect("pay mini");
    let rp = paid.pay_data.request_payment().expect("wx.requestPayment");
    assert_eq!(rp.sign_type, "MD5");
    check_pay_data(&app, &setup, "mini", &paid.pay_data).await;

    app.sandbox_pay(&order_id).await;
    let done = app.wait_state(client, &no, "SUCCESS").await;
    assert!(done.transaction_id.is_some() && done.pay_time.is_some());
    assert_eq!(
        app.metric_settled("cashdesk_orders_paid_total", &[("source", "notify")], 1.0)
            .await,
        1.0,
        "paid by the notification, not by a query"
    );
    // What the sandbox sent: signed XML without sign_type, acknowledged.
    let (status, log) = app
        .sandbox_get(&format!(
            "/sandbox/api/requests?mchId={}&kind=notify",
            setup.mch_id()
        ))
        .await;
    assert_eq!(status, 200, "{log}");
    let sent = log["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .find(|e| {
            e["requestBody"]
                .as_str()
                .is_some_and(|b| b.contains(&order_id))
        })
        .unwrap_or_else(|| panic!("the pay notification in {log}"));
    let body = s(sent, "requestBody");
    assert!(
        body.contains("<sign>") && !body.contains("sign_type"),
        "{body}"
    );
    assert_eq!(sent["result"], "ACKED", "{sent}");
    let synced = client.query_pay_result(&no, true).await.expect("sync");
    assert_eq!(synced.transaction_id, done.transaction_id);

    // Refunds (mutual TLS to the sandbox, then its refund notifications).
    let first = crate::refunds::orn();
    client
        .create_refund(&cashdesk_sdk::CreateRefundRequest::new(&no, &first, 400))
        .await
        .expect("partial refund");
    crate::refunds::wait_refund(client, &first, "SUCCESS").await;
    app.wait_state(client, &no, "PART_REFUNDED").await;
    let rest = crate::refunds::orn();
    client
        .create_refund(&cashdesk_sdk::CreateRefundRequest::new(&no, &rest, 600))
        .await
        .expect("full refund");
    let last = crate::refunds::wait_refund(client, &rest, "SUCCESS").await;
    assert_eq!(last.refunded_amount, 1000);
    app.wait_state(client, &no, "REFUNDED").await;
}

/// A TCP proxy to `target` that holds each connection for `delay` before
/// passing it on (a slow channel that answers correctly).
async fn slow_proxy(target: std::net::SocketAddr, delay: Duration) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

/// `unifiedorder` calls the sandbox logged for `setup`'s merchant.
async fn unifiedorder_calls(app: &TestApp, setup: &WxSetup) -> usize {
    app.sandbox_requests(setup.mch_id(), "api")
        .await
        .iter()
        .filter(|r| {
            r["target"]
                .as_str()
                .is_some_and(|t| t.contains("unifiedorder"))
        })
        .count()
}

/// Issue 13: 50 identical concurrent `POST /payment` for one order make
/// one channel call, and all 50 get its answer — a slow success (the
/// channel behind a proxy that holds each connection 1.5 s) and a slow
/// failure (the sandbox's TIMEOUT fault) alike.
async fn identical_payments_make_one_channel_call(b: Backend) {
    const N: usize = 50;
    let app = spawn_app(b).await;
    let shop = app.merchant(cashdesk_core::SignType::HmacSha256).await;
    let mut proxied = None;
    let mut base = String::new();
    let sandbox: std::net::SocketAddr = url::Url::parse(&app.base_url)
        .expect("url")
        .socket_addrs(|| None)
        .expect("addr")[0];
    let proxy = slow_proxy(sandbox, Duration::from_millis(1500)).await;
    let setup = app
        .wechat_setup_at(
            "v2",
            "HMAC-SHA256",
            |_| {},
            shop,
            |url| {
                base = url.to_owned();
                let mut u = url::Url::parse(url).expect("base url");
                u.set_port(Some(proxy.port())).expect("port");
                let through = u.to_string().trim_end_matches('/').to_owned();
                proxied = Some(through.clone());
                through
            },
        )
        .await;
    assert!(
        proxied.is_some_and(|p| p != base),
        "the config goes through the proxy"
    );
    let (client, setup) = (&setup.shop.client, &setup);
    let pay_all = |no: String| async move {
        let requests: Vec<PaymentRequest> = (0..N).map(|_| pay_req(&no, setup, "native")).collect();
        futures::future::join_all(requests.iter().map(|r| client.pay(r))).await
    };

    // A slow success: one call, one payData for all.
    let (no, order_id) = app.new_order(client, 11).await;
    let answers = pay_all(no.clone()).await;
    let first = answers[0].as_ref().expect("paid").clone();
    for a in &answers {
        let a = a.as_ref().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(a.order_id, order_id);
        assert_eq!(
            a.pay_data.code_url(),
            first.pay_data.code_url(),
            "one payData"
        );
    }
    assert_eq!(unifiedorder_calls(&app, setup).await, 1, "one channel call");

    // A slow failure: one call, one error for all; the order stays payable.
    let (no, _) = app.new_order(client, 12).await;
    app.add_fault(
        json!({"channelType": "wx-pay", "fault": "TIMEOUT", "mchId": setup.mch_id(),
                         "pathContains": "unifiedorder", "delayMs": 1000}),
    )
    .await;
    let answers = pay_all(no.clone()).await;
    let mut messages = std::collections::BTreeSet::new();
    for a in answers {
        match a {
            Err(cashdesk_sdk::SdkError::Api {
                status, code, msg, ..
            }) => {
                assert_eq!((status, code), (502, 5020), "{msg}");
                messages.insert(msg);
            }
            other => panic!("expected the channel's failure, got {other:?}"),
        }
    }
    assert_eq!(messages.len(), 1, "one answer: {messages:?}");
    assert_eq!(
        unifiedorder_calls(&app, setup).await,
        2,
        "one more channel call"
    );
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(serde_json::to_value(q.state).expect("s"), "CREATED");
}
