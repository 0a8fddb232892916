//! Lakala end to end over HTTP against the mounted sandbox: every scene
//! (mini and WeChat jsapi: the `wx.requestPayment` params checked against
//! Lakala's certificate; Alipay jsapi `tradeNo`; native QR decoded; H5
//! URL), the sandbox pays, its notification (signed with Lakala's separate
//! notify key) moves the order to SUCCESS, the query (also `?sync=true`),
//! partial and full refunds, close at the channel; notifications built by
//! hand — signed with the sandbox's own keys, read from its data folder —
//! accepted when genuine and refused, with the order unchanged, when forged,
//! signed under the wrong certificate, malformed or not matching; sandbox
//! faults on calls and notifications.

use std::time::Duration;

use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use cashdesk_sdk::{CreateRefundRequest, SdkError};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Backend, ChannelSetup, TestApp, assert_api_error, order, orn, otn, spawn_app, spawn_app_with,
};

backend_tests!(
    every_scene,
    jsapi_serves_alipay_buyers_too,
    close_goes_to_the_channel,
    hand_built_notifications_are_verified,
    sandbox_notification_faults_change_nothing,
    channel_failures_leave_the_order_payable,
    the_readme_lakala_native_payment_works_with_the_demo_app,
);

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const ALIPAY_BUYER: &str = "2088102146225135";

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

fn state(v: impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .expect("state")
        .as_str()
        .expect("string")
        .to_owned()
}

fn pay_body(no: &str, setup: &ChannelSetup, scene: &str) -> Value {
    let mut body = json!({"outTradeNo": no, "channelId": setup.channel(scene)});
    match scene {
        "mini" | "jsapi" => body["openid"] = json!(OPENID),
        "h5" => body["clientIp"] = json!("203.0.113.7"),
        _ => {}
    }
    body
}

/// `payData` checked without cashdesk's code: the `wx.requestPayment`
/// params verify under Lakala's certificate (`lklCertPem`, as the sandbox
/// signs them for the sub-merchant), for the configured `subAppId`.
async fn check_pay_data(app: &TestApp, setup: &ChannelSetup, scene: &str, pay_data: &Value) {
    match scene {
        "mini" | "jsapi" => {
            assert_eq!(s(pay_data, "appId"), setup.cred("subAppId"));
            assert!(
                s(pay_data, "package").starts_with("prepay_id="),
                "{pay_data}"
            );
            assert_eq!(s(pay_data, "signType"), "RSA");
            let ts: i64 = s(pay_data, "timeStamp").parse().expect("timeStamp");
            assert!((ts - crate::helpers::now()).abs() < 60);
            let msg = format!(
                "{}\n{}\n{}\n{}\n",
                s(pay_data, "appId"),
                s(pay_data, "timeStamp"),
                s(pay_data, "nonceStr"),
                s(pay_data, "package")
            );
            RsaPublicKey::from_pem(setup.cred("lklCertPem"))
                .expect("lkl cert")
                .verify_sha256_base64(msg.as_bytes(), s(pay_data, "paySign"))
                .expect("paySign verifies");
        }
        "native" => {
            let code = s(pay_data, "codeUrl");
            assert!(code.contains("/sandbox/lakala/pay/"), "{code}");
            let page = app.http().get(code).send().await.expect("payer page");
            assert_eq!(page.status().as_u16(), 200);
            let svg_url = s(pay_data, "qrSvgUrl");
            let svg = app
                .http()
                .get(svg_url)
                .send()
                .await
                .expect("svg")
                .text()
                .await
                .expect("svg text");
            let expected =
                qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M)
                    .expect("qr")
                    .render::<qrcode::render::svg::Color<'_>>()
                    .min_dimensions(256, 256)
                    .build();
            assert_eq!(svg, expected, "the SVG encodes the code URL");
        }
        "h5" => {
            let url = s(pay_data, "h5Url");
            assert!(url.contains("/sandbox/lakala/pay/"), "{url}");
            let page = app.http().get(url).send().await.expect("payer page");
            assert_eq!(page.status().as_u16(), 200);
        }
        other => panic!("scene {other}"),
    }
}

/// The preorders the sandbox took for this merchant, newest last.
async fn preorders(app: &TestApp, setup: &ChannelSetup) -> Vec<Value> {
    app.sandbox_requests(setup.mch_id(), "api")
        .await
        .into_iter()
        .filter(|e| e["target"] == "/sandbox/lakala/api/v3/labs/trans/preorder")
        .map(|e| serde_json::from_str(s(&e, "requestBody")).expect("JSON body"))
        .collect()
}

async fn every_scene(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.lakala_setup().await;
    let client = &setup.shop.client;
    let cfg = app
        .admin
        .get_channel_config(&setup.config_id)
        .await
        .expect("config");
    assert_eq!(cfg["apiVersion"], "v3", "the default when left out");
    for (scene, trans_type, account_type) in [
        ("mini", "71", "WECHAT"),
        ("jsapi", "51", "WECHAT"),
        ("native", "41", "ALIPAY"),
        ("h5", "81", "ALIPAY"),
    ] {
        let no = otn();
        // Long titles, Chinese and ASCII: Lakala's subject is shorter than
        // an order title may be.
        let title = if scene == "native" {
            "Store 0042 purchase: two lattes, one cheesecake, three croissants (takeaway)"
        } else {
            "门店消费：拿铁咖啡两杯、芝士蛋糕一块、可颂面包三个，外带打包，会员积分抵扣后实付金额"
        };
        let mut req = order(&no, 1010);
        req.order_title = title.to_owned();
        let order_id = client.create_order(&req).await.expect("order").order_id;
        let paid = app
            .pay_json(client, pay_body(&no, &setup, scene))
            .await
            .unwrap_or_else(|e| panic!("{scene}: {e:?}"));
        assert_eq!(s(&paid, "channelType"), "lakala");
        assert_eq!(s(&paid, "sceneCode"), scene);
        check_pay_data(&app, &setup, scene, &paid["payData"]).await;
        // What went to Lakala.
        let sent = preorders(&app, &setup).await.pop().expect("preorder");
        let d = &sent["req_data"];
        assert_eq!(sent["version"], "3.0");
        assert_eq!(d["merchant_no"], setup.cred("merchantNo"));
        assert_eq!(d["term_no"], setup.cred("termNo"));
        assert_eq!(d["out_trade_no"], order_id.as_str());
        assert_eq!(d["total_amount"], "1010");
        assert_eq!(d["trans_type"], trans_type);
        assert_eq!(d["account_type"], account_type);
        assert_eq!(
            d["notify_url"],
            format!(
                "{}/api/cashier-desk/notify/{}",
                app.base_url, setup.config_id
            )
        );
        // Cut to Lakala's 42 bytes on a character boundary.
        let subject = s(d, "subject");
        assert!(title.starts_with(subject), "{subject}");
        assert!(subject.len() <= 42 && subject.len() > 38, "{subject}");
        if account_type == "WECHAT" {
            assert_eq!(d["acc_busi_fields"]["sub_appid"], setup.cred("subAppId"));
            assert_eq!(d["acc_busi_fields"]["user_id"], OPENID);
        }
        if scene == "h5" {
            assert_eq!(d["location_info"]["request_ip"], "203.0.113.7");
        }
        let paying = client.query_pay_result(&no, true).await.expect("sync");
        assert_eq!(state(paying.state), "PAYING", "{scene}");
        assert_eq!(paying.mch_id.as_deref(), Some(setup.mch_id()));

        let at_sandbox = app
            .sandbox_pay_with(
                json!({"channelType": "lakala", "outTradeNo": order_id, "result": "SUCCESS"}),
            )
            .await;
        assert_eq!(s(&at_sandbox, "tradeState"), "SUCCESS");
        let done = app.wait_state(client, &no, "SUCCESS").await;
        assert_eq!(
            done.transaction_id.as_deref(),
            Some(s(&at_sandbox, "transactionId")),
            "{scene}"
        );
        assert_eq!(done.pay_time.as_deref().map(str::len), Some(19));
        let synced = client.query_pay_result(&no, true).await.expect("sync");
        assert_eq!(synced.transaction_id, done.transaction_id);
        assert_api_error(
            app.pay_json(client, pay_body(&no, &setup, scene)).await,
            422,
            4220,
        );

        // Partial, then full refund (Lakala answers synchronously).
        let first = orn();
        let r = client
            .create_refund(&CreateRefundRequest::new(&no, &first, 10))
            .await
            .expect("refund");
        assert_eq!(state(r.state), "SUCCESS", "{scene}: {r:?}");
        assert!(r.channel_refund_id.is_some());
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(
            (state(q.state), q.refunded_amount),
            ("PART_REFUNDED".into(), 10)
        );
        let r = client
            .create_refund(&CreateRefundRequest::new(&no, orn(), 1000))
            .await
            .expect("refund rest");
        assert_eq!(state(r.state), "SUCCESS", "{scene}: {r:?}");
        assert_eq!(r.refunded_amount, 1010);
        let again = client.get_refund(&first, true).await.expect("get");
        assert_eq!((state(again.state), again.amount), ("SUCCESS".into(), 10));
        let q = client.query_pay_result(&no, true).await.expect("q");
        assert_eq!(state(q.state), "REFUNDED");
    }
    // mini without an openid is the merchant's mistake: 400, nothing sent.
    let before = preorders(&app, &setup).await.len();
    let (no, _) = app.new_order(client, 5).await;
    assert_api_error(
        app.pay_json(
            client,
            json!({"outTradeNo": no, "channelId": setup.channel("mini")}),
        )
        .await,
        400,
        4000,
    );
    assert_eq!(preorders(&app, &setup).await.len(), before);
}

async fn jsapi_serves_alipay_buyers_too(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.lakala_setup().await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 66).await;
    let paid = app
        .pay_json(
            client,
            json!({"outTradeNo": no, "channelId": setup.channel("jsapi"), "buyerId": ALIPAY_BUYER}),
        )
        .await
        .expect("pay");
    let trade_no = s(&paid["payData"], "tradeNo");
    assert_eq!(trade_no.len(), 28, "an Alipay trade number: {trade_no}");
    let sent = preorders(&app, &setup).await.pop().expect("preorder");
    assert_eq!(sent["req_data"]["account_type"], "ALIPAY");
    assert_eq!(sent["req_data"]["trans_type"], "51");
    assert_eq!(sent["req_data"]["acc_busi_fields"]["user_id"], ALIPAY_BUYER);
    app.sandbox_pay_with(
        json!({"channelType": "lakala", "outTradeNo": order_id, "result": "SUCCESS"}),
    )
    .await;
    app.wait_state(client, &no, "SUCCESS").await;
}

async fn close_goes_to_the_channel(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.lakala_setup().await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 7).await;
    app.pay_json(client, pay_body(&no, &setup, "native"))
        .await
        .expect("pay");
    let closed = client.close_order(&no).await.expect("close");
    assert_eq!(state(closed.state), "CLOSED");
    let (status, v) = app
        .sandbox_post(
            "/sandbox/api/pay",
            json!({"channelType": "lakala", "outTradeNo": order_id, "result": "SUCCESS"}),
        )
        .await;
    assert_eq!(status, 409, "closed at Lakala: {v}");
    client.close_order(&no).await.expect("close again");
    assert_api_error(
        app.pay_json(client, pay_body(&no, &setup, "native")).await,
        422,
        4220,
    );
    let closes = app
        .sandbox_requests(setup.mch_id(), "api")
        .await
        .into_iter()
        .filter(|e| e["target"] == "/sandbox/lakala/api/v3/labs/relation/close")
        .count();
    assert_eq!(closes, 1, "the second close is local: already closed");
    // A failing close changes nothing; the next one goes through.
    let (no, _) = app.new_order(client, 7).await;
    app.pay_json(client, pay_body(&no, &setup, "h5"))
        .await
        .expect("pay");
    app.add_fault(json!({"channelType": "lakala", "fault": "SYSTEMERROR", "mchId": setup.mch_id(), "pathContains": "relation/close"}))
        .await;
    assert_api_error(client.close_order(&no).await, 502, 5020);
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(state(q.state), "PAYING");
    let closed = client.close_order(&no).await.expect("close");
    assert_eq!(state(closed.state), "CLOSED");
    // A payment that failed at Lakala (not notified) is found by query.
    let (no, order_id) = app.new_order(client, 7).await;
    app.pay_json(client, pay_body(&no, &setup, "mini"))
        .await
        .expect("pay");
    app.sandbox_pay_with(
        json!({"channelType": "lakala", "outTradeNo": order_id, "result": "FAIL"}),
    )
    .await;
    let q = client.query_pay_result(&no, true).await.expect("sync");
    assert_eq!(state(q.state), "FAILED");
}

// --- notifications built by hand, with the sandbox's own keys ---

/// The sandbox's Lakala keys, from its data folder (`sandbox/pki.json`):
/// the notify key (genuine notifications) and the API key (the wrong one
/// for notifications).
fn sandbox_lakala_keys(app: &TestApp) -> (RsaPrivateKey, RsaPrivateKey) {
    let path = app.config.data_dir.join("sandbox").join("pki.json");
    let pki: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("pki.json")).expect("pki JSON");
    let key = |k: &str| {
        RsaPrivateKey::from_pem(
            pki["channels"][k]
                .as_str()
                .unwrap_or_else(|| panic!("{k} in pki.json")),
        )
        .expect("key")
    };
    (key("lakalaNotifyKeyPem"), key("lakalaKeyPem"))
}

/// A payment notification body as Lakala documents it.
fn notification(setup: &ChannelSetup, order_id: &str, total: &str, trade_no: &str) -> Value {
    json!({
        "merchant_no": setup.cred("merchantNo"),
        "term_no": setup.cred("termNo"),
        "out_trade_no": order_id,
        "trade_no": trade_no,
        "log_no": "66213440290004",
        "acc_trade_no": "4200002046202401021234567890",
        "account_type": "WECHAT",
        "trade_status": "SUCCESS",
        "trade_state_desc": "交易成功",
        "total_amount": total,
        "payer_amount": total,
        "acc_settle_amount": total,
        "trade_time": "20240102110405",
        "user_id1": "o8ahP5Zt7vYWRQx1j4dPpCxWSHr4",
        "notify_url": "https://example.invalid/ignored",
    })
}

/// `Authorization: LKLAPI-SHA256withRSA timestamp,nonce_str,signature`
/// over `timestamp\nnonce_str\nbody\n`.
fn authorization(body: &str, key: &RsaPrivateKey) -> String {
    let ts = crate::helpers::now().to_string();
    let nonce = "Q2JkVmVtYkVwNzRq";
    let sig = key
        .sign_sha256_base64(format!("{ts}\n{nonce}\n{body}\n").as_bytes())
        .expect("sign");
    format!("LKLAPI-SHA256withRSA timestamp=\"{ts}\",nonce_str=\"{nonce}\",signature=\"{sig}\"")
}

async fn post(app: &TestApp, setup: &ChannelSetup, auth: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = app
        .http()
        .post(format!(
            "{}/api/cashier-desk/notify/{}",
            app.base_url, setup.config_id
        ))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.expect("notify");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn hand_built_notifications_are_verified(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.lakala_setup().await;
    let client = &setup.shop.client;
    let (notify_key, api_key) = sandbox_lakala_keys(&app);
    let stranger = RsaPrivateKey::generate_2048().expect("key");
    let (no, order_id) = app.new_order(client, 100).await;
    app.pay_json(client, pay_body(&no, &setup, "mini"))
        .await
        .expect("pay");
    let good = notification(&setup, &order_id, "100", "20240102110405030000001").to_string();

    let mut cases: Vec<(&str, Option<String>, String)> = vec![
        (
            "signed by a stranger",
            Some(authorization(&good, &stranger)),
            good.clone(),
        ),
        (
            "signed under Lakala's API certificate, not the notify one",
            Some(authorization(&good, &api_key)),
            good.clone(),
        ),
        ("no Authorization", None, good.clone()),
        (
            "another scheme",
            Some(authorization(&good, &notify_key).replace("LKLAPI-SHA256withRSA", "Bearer")),
            good.clone(),
        ),
        (
            "body changed after signing",
            Some(authorization(&good, &notify_key)),
            good.replace("\"100\"", "\"1\""),
        ),
    ];
    let malformed = "{\"merchant_no\": \"x\", \"trade_status\": ";
    cases.push((
        "malformed JSON, validly signed",
        Some(authorization(malformed, &notify_key)),
        malformed.to_owned(),
    ));
    let mut signed_cases = vec![
        (
            "amount 101 for 100",
            notification(&setup, &order_id, "101", "20240102110405030000002"),
        ),
        (
            "amount in yuan",
            notification(&setup, &order_id, "1.00", "20240102110405030000003"),
        ),
        (
            "unknown order",
            notification(
                &setup,
                cashdesk_core::OrderId::generate().as_str(),
                "100",
                "20240102110405030000004",
            ),
        ),
    ];
    let mut other_merchant = notification(&setup, &order_id, "100", "20240102110405030000005");
    other_merchant["merchant_no"] = json!("822100000000001");
    signed_cases.push(("another merchant_no", other_merchant));
    for (what, v) in signed_cases {
        let body = v.to_string();
        cases.push((what, Some(authorization(&body, &notify_key)), body));
    }
    for (what, auth, body) in cases {
        let (status, reply) = post(&app, &setup, auth.as_deref(), &body).await;
        assert_eq!(status, 500, "{what}: {reply}");
        assert_eq!(reply["code"], "FAIL", "{what}");
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(state(q.state), "PAYING", "{what}: unchanged");
    }
    // The genuine one.
    let (status, reply) = post(
        &app,
        &setup,
        Some(&authorization(&good, &notify_key)),
        &good,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply, json!({"code": "SUCCESS", "message": "执行成功"}));
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(state(q.state), "SUCCESS");
    assert_eq!(q.transaction_id.as_deref(), Some("20240102110405030000001"));
    assert_eq!(q.pay_time.as_deref(), Some("2024-01-02 11:04:05"));
    // A copy is acknowledged and changes nothing.
    let (status, _) = post(
        &app,
        &setup,
        Some(&authorization(&good, &notify_key)),
        &good,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        app.metric(
            "cashdesk_channel_notifications_total",
            &[("channel_type", "lakala"), ("result", "duplicate")]
        )
        .await
            >= 1.0
    );
}

async fn sandbox_notification_faults_change_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.lakala_setup().await;
    let client = &setup.shop.client;
    for (fault, result) in [
        ("TAMPER_SIGNATURE", "unverifiable"),
        ("TAMPER_AMOUNT", "mismatch"),
        ("DROP_NOTIFY", ""),
    ] {
        let (no, order_id) = app.new_order(client, 88).await;
        app.pay_json(client, pay_body(&no, &setup, "native"))
            .await
            .expect("pay");
        let labels = [("channel_type", "lakala"), ("result", result)];
        let before = app
            .metric("cashdesk_channel_notifications_total", &labels)
            .await;
        app.add_fault(json!({"channelType": "lakala", "fault": fault, "mchId": setup.mch_id()}))
            .await;
        app.sandbox_pay_with(
            json!({"channelType": "lakala", "outTradeNo": order_id, "result": "SUCCESS"}),
        )
        .await;
        if result.is_empty() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        } else {
            let refused = app
                .metric_rises("cashdesk_channel_notifications_total", &labels, before)
                .await;
            assert!(refused, "{fault}: the notification was refused");
        }
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(state(q.state), "PAYING", "{fault}");
        let synced = client.query_pay_result(&no, true).await.expect("sync");
        assert_eq!(state(synced.state), "SUCCESS", "{fault}");
        assert_eq!(synced.amount, 88);
    }
}

async fn channel_failures_leave_the_order_payable(b: Backend) {
    let app = spawn_app_with(b, |c| c.channel_timeout_ms = 1_000).await;
    let setup = app.lakala_setup().await;
    let client = &setup.shop.client;
    for (fault, expect) in [
        ("SYSTEMERROR", "BBS10000"),
        ("HTTP_500", "500"),
        ("TIMEOUT", "timed out"),
    ] {
        let (no, _) = app.new_order(client, 9).await;
        app.add_fault(json!({"channelType": "lakala", "fault": fault, "mchId": setup.mch_id(), "pathContains": "preorder", "delayMs": 2500}))
            .await;
        match app.pay_json(client, pay_body(&no, &setup, "native")).await {
            Err(SdkError::Api {
                status, code, msg, ..
            }) => {
                assert_eq!((status, code), (502, 5020), "{fault}: {msg}");
                assert!(msg.contains(expect), "{fault}: {msg}");
            }
            other => panic!("{fault}: expected 502, got {other:?}"),
        }
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(state(q.state), "CREATED", "{fault}");
        let ok = app
            .pay_json(client, pay_body(&no, &setup, "native"))
            .await
            .unwrap_or_else(|e| panic!("{fault} retry: {e:?}"));
        assert!(ok["payData"]["codeUrl"].is_string());
    }
    // A refund whose outcome is unknown stays PROCESSING and is settled by
    // the query (tradequery of the refund's own out_trade_no).
    let (no, order_id) = app.new_order(client, 50).await;
    app.pay_json(client, pay_body(&no, &setup, "native"))
        .await
        .expect("pay");
    app.sandbox_pay_with(
        json!({"channelType": "lakala", "outTradeNo": order_id, "result": "SUCCESS"}),
    )
    .await;
    app.wait_state(client, &no, "SUCCESS").await;
    app.add_fault(json!({"channelType": "lakala", "fault": "HTTP_500", "mchId": setup.mch_id(), "pathContains": "relation/refund"}))
        .await;
    let rno = orn();
    let r = client
        .create_refund(&CreateRefundRequest::new(&no, &rno, 20))
        .await
        .expect("refund");
    assert_eq!(state(r.state), "PROCESSING", "{r:?}");
    // Lakala's refund lookup is UNCONFIRMED: "no such trade" is not taken
    // as "no money moved" (a re-sent refund number could be refused as a
    // duplicate), so it stays PROCESSING for an operator — never FAIL.
    let r = client.get_refund(&rno, true).await.expect("sync");
    assert_eq!(state(r.state), "PROCESSING", "Lakala never took it: {r:?}");
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!((state(q.state), q.refunded_amount), ("SUCCESS".into(), 0));
}

/// The README's Lakala example: the demo app's sandbox Lakala native channel.
async fn the_readme_lakala_native_payment_works_with_the_demo_app(b: Backend) {
    let app = spawn_app(b).await;
    let channel = crate::cashier::demo_channel_of(&app, "lakala", "native");
    let (no, order_id) = app.new_order(&app.client, 1).await;
    let paid = app
        .pay_json(&app.client, json!({"outTradeNo": no, "channelId": channel}))
        .await
        .expect("pay");
    assert_eq!(paid["channelType"], "lakala");
    assert!(s(&paid["payData"], "codeUrl").contains("/sandbox/lakala/pay/"));
    assert!(s(&paid["payData"], "qrSvgUrl").contains("/cashier-desk-web/qr/"));
    app.sandbox_pay_with(
        json!({"channelType": "lakala", "outTradeNo": order_id, "result": "SUCCESS"}),
    )
    .await;
    let done = app.wait_state(&app.client, &no, "SUCCESS").await;
    assert_eq!(done.channel_type.as_deref(), Some("lakala"));
    // And the demo's Lakala mini-program channel has its WeChat AppID.
    let (no, _) = app.new_order(&app.client, 1).await;
    let mini = app
        .pay_json(
            &app.client,
            json!({"outTradeNo": no, "channelId": crate::cashier::demo_channel_of(&app, "lakala", "mini"), "openid": OPENID}),
        )
        .await
        .expect("mini");
    assert!(s(&mini["payData"], "appId").starts_with("wx"));
}
