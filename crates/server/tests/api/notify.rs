//! Channel notifications built by hand from the documented formats (v2
//! XML signed with the merchant's API key; v3 JSON with an AES-GCM resource
//! signed with a platform key the test holds): accepted when genuine, and
//! every forgery or mismatch refused with the order unchanged. 100
//! concurrent copies of one success make one transition.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cashdesk_core::OrderId;
use cashdesk_crypto::rsa::RsaPrivateKey;
use cashdesk_crypto::wxv2::{self, WxSignType};
use cashdesk_sdk::PaymentRequest;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, WxSetup, spawn_app};

backend_tests!(
    v2_forgeries_are_refused,
    v2_md5_order_is_verified_with_md5_without_sign_type,
    v2_concurrent_copies_make_one_transition,
    v3_concurrent_copies_make_one_transition,
    v3_hand_built_notifications,
    v3_key_problem_makes_cashdesk_query_the_channel,
    unknown_config_is_404,
);

/// HTTP headers of a hand-built notification.
type Headers = Vec<(String, String)>;

struct Reply {
    status: u16,
    body: String,
}

async fn post(
    app: &TestApp,
    config_id: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Reply {
    let mut req = app
        .http()
        .post(format!(
            "{}/api/cashier-desk/notify/{config_id}",
            app.base_url
        ))
        .body(body);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.expect("notify");
    Reply {
        status: resp.status().as_u16(),
        body: resp.text().await.expect("body"),
    }
}

fn v2_fields(setup: &WxSetup, order_id: &str, amount: i64, txn: &str) -> BTreeMap<String, String> {
    let creds = setup.creds();
    [
        ("appid", creds["appId"].as_str().expect("appId")),
        ("mch_id", setup.mch_id()),
        ("bank_type", "OTHERS"),
        ("cash_fee", &amount.to_string()),
        ("fee_type", "CNY"),
        ("is_subscribe", "N"),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("openid", "oBuyer0001"),
        ("out_trade_no", order_id),
        ("result_code", "SUCCESS"),
        ("return_code", "SUCCESS"),
        ("sign_type", "HMAC-SHA256"),
        ("time_end", "20240102030405"),
        ("total_fee", &amount.to_string()),
        ("trade_type", "JSAPI"),
        ("transaction_id", txn),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn v2_xml(fields: BTreeMap<String, String>, key: &str) -> Vec<u8> {
    v2_xml_signed(fields, key, WxSignType::HmacSha256)
}

fn v2_xml_signed(
    mut fields: BTreeMap<String, String>,
    key: &str,
    sign_type: WxSignType,
) -> Vec<u8> {
    let sign = wxv2::sign(&fields, key, sign_type);
    fields.insert("sign".into(), sign);
    let mut xml = String::from("<xml>");
    for (k, v) in &fields {
        xml.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
    }
    xml.push_str("</xml>");
    xml.into_bytes()
}

fn is_v2_success(r: &Reply) -> bool {
    r.status == 200 && r.body.contains("<return_code><![CDATA[SUCCESS]]>")
}

fn is_v2_failure(r: &Reply) -> bool {
    r.status == 200 && r.body.contains("<return_code><![CDATA[FAIL]]>")
}

async fn paying_v2_order(app: &TestApp, setup: &WxSetup, amount: i64) -> (String, String) {
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, amount).await;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("mini")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    (no, order_id)
}

async fn assert_paying(setup: &WxSetup, no: &str, what: &str) {
    let q = setup
        .shop
        .client
        .query_pay_result(no, false)
        .await
        .expect("query");
    assert_eq!(
        serde_json::to_value(q.state).expect("state"),
        "PAYING",
        "{what}: the order must be unchanged"
    );
    assert!(q.transaction_id.is_none(), "{what}");
}

async fn v2_forgeries_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v2").await;
    let key = setup.creds()["apiKey"].as_str().expect("key").to_owned();
    let (no, order_id) = paying_v2_order(&app, &setup, 250).await;
    let cfg = setup.config_id.clone();
    let good = || v2_fields(&setup, &order_id, 250, "4200000001202401020000000001");

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("wrong signature", v2_xml(good(), "0123456789abcdef0123456789abcdef")),
        ("wrong amount", v2_xml(v2_fields(&setup, &order_id, 251, "4200000001"), &key)),
        ("unknown order", {
            let other = OrderId::generate();
            v2_xml(v2_fields(&setup, other.as_str(), 250, "4200000002"), &key)
        }),
        ("malformed XML", b"<xml><return_code>SUCCESS</return_code".to_vec()),
        ("not XML", b"{\"hello\":1}".to_vec()),
        (
            "DOCTYPE payload",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY t \"{order_id}\">]><xml><out_trade_no>&t;</out_trade_no></xml>"
            )
            .into_bytes(),
        ),
        ("empty body", Vec::new()),
    ];
    let mut wrong_appid = good();
    wrong_appid.insert("appid".into(), "wx0000000000000000".into());
    cases.push(("wrong appid", v2_xml(wrong_appid, &key)));
    let mut wrong_mch = good();
    wrong_mch.insert("mch_id".into(), "1999999999".into());
    cases.push(("wrong mch_id", v2_xml(wrong_mch, &key)));
    let mut unsigned = good();
    unsigned.remove("sign_type");
    // Signed with MD5 while the config (and so the order) uses HMAC-SHA256.
    let md5 = {
        let mut f = unsigned.clone();
        let sign = wxv2::sign(&f, &key, WxSignType::Md5);
        f.insert("sign".into(), sign);
        let mut xml = String::from("<xml>");
        for (k, v) in &f {
            xml.push_str(&format!("<{k}>{v}</{k}>"));
        }
        xml.push_str("</xml>");
        xml.into_bytes()
    };
    cases.push(("MD5 signature for an HMAC-SHA256 order", md5));

    for (what, body) in cases {
        let r = post(
            &app,
            &cfg,
            &[("content-type".into(), "text/xml".into())],
            body,
        )
        .await;
        assert!(is_v2_failure(&r), "{what}: {} {}", r.status, r.body);
        assert_paying(&setup, &no, what).await;
    }
    // The genuine one, also without sign_type (the order's type applies).
    let r = post(&app, &cfg, &[], v2_xml(unsigned, &key)).await;
    assert!(is_v2_success(&r), "{} {}", r.status, r.body);
    let q = setup
        .shop
        .client
        .query_pay_result(&no, false)
        .await
        .expect("q");
    assert_eq!(serde_json::to_value(q.state).expect("s"), "SUCCESS");
    assert_eq!(
        q.transaction_id.as_deref(),
        Some("4200000001202401020000000001")
    );
    assert_eq!(q.pay_time.as_deref(), Some("2024-01-02 03:04:05"));
    // GET is accepted too (and a copy is just acknowledged).
    let again = app
        .http()
        .get(format!("{}/api/cashier-desk/notify/{cfg}", app.base_url))
        .send()
        .await
        .expect("get");
    assert_eq!(again.status().as_u16(), 200);
    assert!(
        again.text().await.expect("t").contains("FAIL"),
        "an empty GET is malformed"
    );
}

async fn v2_concurrent_copies_make_one_transition(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v2").await;
    let key = setup.creds()["apiKey"].as_str().expect("key").to_owned();
    let (no, order_id) = paying_v2_order(&app, &setup, 999).await;
    let body = v2_xml(v2_fields(&setup, &order_id, 999, "4200000009"), &key);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let url = format!(
                "{}/api/cashier-desk/notify/{}",
                app.base_url, setup.config_id
            );
            let body = body.clone();
            let http = app.http();
            tokio::spawn(async move {
                let resp = http.post(url).body(body).send().await.expect("notify");
                (resp.status().as_u16(), resp.text().await.expect("text"))
            })
        })
        .collect();
    for t in tasks {
        let (status, text) = t.await.expect("task");
        assert_eq!(status, 200);
        assert!(
            text.contains("SUCCESS"),
            "every copy is acknowledged: {text}"
        );
    }
    let applied = app
        .metric(
            "cashdesk_channel_notifications_total",
            &[("result", "applied")],
        )
        .await;
    let duplicate = app
        .metric(
            "cashdesk_channel_notifications_total",
            &[("result", "duplicate")],
        )
        .await;
    assert_eq!((applied, duplicate), (1.0, 99.0));
    assert_eq!(
        app.metric_settled("cashdesk_orders_paid_total", &[("source", "notify")], 1.0)
            .await,
        1.0
    );
    let q = setup
        .shop
        .client
        .query_pay_result(&no, false)
        .await
        .expect("q");
    assert_eq!(q.transaction_id.as_deref(), Some("4200000009"));
}

/// v3 with a platform key this test holds (so it can sign notifications):
/// the config's platform key is replaced by the test's.
struct V3Hand {
    platform: RsaPrivateKey,
    api_v3_key: String,
    app_id: String,
    mch_id: String,
}

const TEST_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";

impl V3Hand {
    fn resource(&self, order_id: &str, amount: i64, txn: &str) -> Value {
        json!({
            "appid": self.app_id,
            "mchid": self.mch_id,
            "out_trade_no": order_id,
            "transaction_id": txn,
            "trade_type": "JSAPI",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "CMC",
            "attach": "",
            "success_time": "2024-01-02T11:04:05+08:00",
            "payer": {"openid": "oBuyer0001"},
            "amount": {"total": amount, "payer_total": amount, "currency": "CNY", "payer_currency": "CNY"}
        })
    }

    fn body(&self, resource: &Value, tamper_ciphertext: bool) -> String {
        let nonce = "fdasflkja484";
        let mut ct = cashdesk_crypto::aead::aes_gcm_encrypt(
            self.api_v3_key.as_bytes(),
            nonce.as_bytes(),
            b"transaction",
            resource.to_string().as_bytes(),
        )
        .expect("encrypt");
        if tamper_ciphertext {
            ct[3] ^= 0x01;
        }
        json!({
            "id": "EV-2018022511223320873",
            "create_time": "2024-01-02T11:04:06+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": STANDARD.encode(ct),
                "associated_data": "transaction",
                "nonce": nonce
            }
        })
        .to_string()
    }

    fn headers(&self, body: &str, timestamp: i64, key: &RsaPrivateKey) -> Vec<(String, String)> {
        v3_headers(TEST_SERIAL, body, timestamp, key)
    }
}

/// `Wechatpay-*` headers of a v3 notification signed by `key` under `serial`.
fn v3_headers(serial: &str, body: &str, timestamp: i64, key: &RsaPrivateKey) -> Headers {
    let nonce = "593BEC0C930BF1AFEB40B4A08C8FB242";
    let sig = key
        .sign_sha256_base64(format!("{timestamp}\n{nonce}\n{body}\n").as_bytes())
        .expect("sign");
    vec![
        ("content-type".into(), "application/json".into()),
        ("Wechatpay-Serial".into(), serial.into()),
        ("Wechatpay-Timestamp".into(), timestamp.to_string()),
        ("Wechatpay-Nonce".into(), nonce.into()),
        ("Wechatpay-Signature".into(), sig),
        (
            "Wechatpay-Signature-Type".into(),
            "WECHATPAY2-SHA256-RSA2048".into(),
        ),
    ]
}

async fn v3_hand_built_notifications(b: Backend) {
    let app = spawn_app(b).await;
    let platform = RsaPrivateKey::generate_2048().expect("key");
    let platform_pub = platform.public_key().to_spki_pem();
    let setup = app
        .wechat_setup_with("v3", "MD5", |c| {
            c["platformSerial"] = json!(TEST_SERIAL);
            c["platformPublicKeyPem"] = json!(platform_pub);
            if let Some(o) = c.as_object_mut() {
                o.remove("platformCertPem");
            }
        })
        .await;
    let hand = V3Hand {
        api_v3_key: setup.creds()["apiV3Key"].as_str().expect("k").to_owned(),
        app_id: setup.creds()["appId"].as_str().expect("a").to_owned(),
        mch_id: setup.mch_id().to_owned(),
        platform,
    };
    // The order stays CREATED: with the test's platform key the sandbox's
    // own answers do not verify, so no payment is started at the channel;
    // a verified notification for a CREATED order is applied all the same.
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 420).await;
    let now = crate::helpers::now();
    let good = hand.resource(&order_id, 420, "4200000420");
    let stranger = RsaPrivateKey::generate_2048().expect("key");
    let cfg = setup.config_id.clone();

    let body = hand.body(&good, false);
    let mut cases: Vec<(&str, Headers, String)> = vec![
        (
            "timestamp older than 300 s",
            hand.headers(&body, now - 400, &hand.platform),
            body.clone(),
        ),
        (
            "timestamp in the future",
            hand.headers(&body, now + 400, &hand.platform),
            body.clone(),
        ),
        (
            "wrong signature",
            hand.headers(&body, now, &stranger),
            body.clone(),
        ),
        (
            "no signature headers",
            vec![("content-type".into(), "application/json".into())],
            body.clone(),
        ),
    ];
    // Ciphertext tampered after signing: the signature no longer verifies.
    {
        let mut v: Value = serde_json::from_str(&body).expect("json");
        let ct = v["resource"]["ciphertext"].as_str().expect("ct").to_owned();
        let mut raw = STANDARD.decode(ct).expect("b64");
        raw[0] ^= 0x80;
        v["resource"]["ciphertext"] = json!(STANDARD.encode(raw));
        let tampered = v.to_string();
        cases.push((
            "tampered ciphertext",
            hand.headers(&body, now, &hand.platform),
            tampered,
        ));
    }
    // Tampered, then signed: the resource does not decrypt.
    let tampered_signed = hand.body(&good, true);
    cases.push((
        "tampered ciphertext, re-signed",
        hand.headers(&tampered_signed, now, &hand.platform),
        tampered_signed,
    ));
    let wrong_amount = hand.body(&hand.resource(&order_id, 421, "4200000421"), false);
    cases.push((
        "wrong amount",
        hand.headers(&wrong_amount, now, &hand.platform),
        wrong_amount,
    ));
    let mut other_app = hand.resource(&order_id, 420, "4200000422");
    other_app["appid"] = json!("wx0000000000000000");
    let other_app = hand.body(&other_app, false);
    cases.push((
        "wrong appid",
        hand.headers(&other_app, now, &hand.platform),
        other_app,
    ));
    let mut other_mch = hand.resource(&order_id, 420, "4200000423");
    other_mch["mchid"] = json!("1999999999");
    let other_mch = hand.body(&other_mch, false);
    cases.push((
        "wrong mchid",
        hand.headers(&other_mch, now, &hand.platform),
        other_mch,
    ));
    let unknown = hand.body(
        &hand.resource(OrderId::generate().as_str(), 420, "4200000424"),
        false,
    );
    cases.push((
        "unknown order",
        hand.headers(&unknown, now, &hand.platform),
        unknown,
    ));
    let malformed = "{\"id\": \"x\", \"resource\": ".to_owned();
    cases.push((
        "malformed JSON",
        hand.headers(&malformed, now, &hand.platform),
        malformed,
    ));

    for (what, headers, body) in cases {
        let r = post(&app, &cfg, &headers, body.into_bytes()).await;
        assert_eq!(r.status, 500, "{what}: {}", r.body);
        assert!(r.body.contains("FAIL"), "{what}: {}", r.body);
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(
            serde_json::to_value(q.state).expect("s"),
            "CREATED",
            "{what}: unchanged"
        );
    }
    // The genuine notification, built from the documented format.
    let r = post(
        &app,
        &cfg,
        &hand.headers(&body, now, &hand.platform),
        body.clone().into_bytes(),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(serde_json::to_value(q.state).expect("s"), "SUCCESS");
    assert_eq!(q.transaction_id.as_deref(), Some("4200000420"));
    assert_eq!(q.pay_time.as_deref(), Some("2024-01-02 11:04:05"));
    assert!(
        app.metric(
            "cashdesk_channel_notifications_total",
            &[("result", "key_problem")]
        )
        .await
            >= 1.0
    );
}

/// A v2 config signing with MD5: a notification without `sign_type` is
/// verified with the order's MD5, so an HMAC-SHA256 signature is refused
/// and the MD5 one accepted.
async fn v2_md5_order_is_verified_with_md5_without_sign_type(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup_with("v2", "MD5", |_| {}).await;
    assert_eq!(setup.creds()["signType"], "MD5");
    let key = setup.creds()["apiKey"].as_str().expect("key").to_owned();
    let (no, order_id) = paying_v2_order(&app, &setup, 250).await;
    let mut fields = v2_fields(&setup, &order_id, 250, "4200000777");
    fields.remove("sign_type");
    let hmac = v2_xml_signed(fields.clone(), &key, WxSignType::HmacSha256);
    let r = post(&app, &setup.config_id, &[], hmac).await;
    assert!(is_v2_failure(&r), "{} {}", r.status, r.body);
    assert_paying(&setup, &no, "HMAC-SHA256 signature for an MD5 order").await;
    let md5 = v2_xml_signed(fields, &key, WxSignType::Md5);
    let r = post(&app, &setup.config_id, &[], md5).await;
    assert!(is_v2_success(&r), "{} {}", r.status, r.body);
    let q = setup
        .shop
        .client
        .query_pay_result(&no, false)
        .await
        .expect("q");
    assert_eq!(serde_json::to_value(q.state).expect("s"), "SUCCESS");
    assert_eq!(q.transaction_id.as_deref(), Some("4200000777"));
}

/// The sandbox sends one v3 success notification 100 times at once (each
/// copy signed afresh by its platform key): every copy is acknowledged,
/// one makes the transition.
async fn v3_concurrent_copies_make_one_transition(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 999).await;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("native")))
        .await
        .expect("pay");
    app.add_fault(json!({"channelType": "wx-pay", "fault": "DUPLICATE_NOTIFY", "copies": 100, "mchId": setup.mch_id()}))
        .await;
    app.sandbox_pay(&order_id).await;
    let counted = || async {
        app.metric(
            "cashdesk_channel_notifications_total",
            &[("result", "applied")],
        )
        .await
            + app
                .metric(
                    "cashdesk_channel_notifications_total",
                    &[("result", "duplicate")],
                )
                .await
    };
    let all = crate::helpers::wait_until(Duration::from_secs(30), || async {
        counted().await >= 100.0
    })
    .await;
    assert!(all, "only {} of 100 copies were processed", counted().await);
    let applied = app
        .metric(
            "cashdesk_channel_notifications_total",
            &[("result", "applied")],
        )
        .await;
    assert_eq!((applied, counted().await), (1.0, 100.0));
    assert_eq!(
        app.metric_settled("cashdesk_orders_paid_total", &[("source", "notify")], 1.0)
            .await,
        1.0
    );
    // The sandbox saw all 100 acknowledged (HTTP 204).
    let (status, log) = app
        .sandbox_get(&format!(
            "/sandbox/api/requests?mchId={}&kind=notify&limit=1000",
            setup.mch_id()
        ))
        .await;
    assert_eq!(status, 200, "{log}");
    let sent = log["requests"].as_array().expect("requests");
    assert_eq!(sent.len(), 100, "{log}");
    assert!(sent.iter().all(|e| e["result"] == "ACKED"), "{log}");
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(serde_json::to_value(q.state).expect("s"), "SUCCESS");
    assert!(q.transaction_id.is_some());
}

/// How many times the sandbox was asked about `order_id` (v3 query by
/// out-trade-no).
async fn v3_queries_of(app: &TestApp, setup: &WxSetup, order_id: &str) -> usize {
    let (status, log) = app
        .sandbox_get(&format!(
            "/sandbox/api/requests?mchId={}&kind=api&limit=1000",
            setup.mch_id()
        ))
        .await;
    assert_eq!(status, 200, "{log}");
    log["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|e| e["target"].as_str())
        .filter(|t| t.contains(&format!("/out-trade-no/{order_id}")) && !t.contains("/close"))
        .count()
}

/// A v3 notification signed under a platform serial the config does not
/// know (WeChat rotated its platform key) cannot be verified: it changes
/// nothing and gets the failure reply, and cashdesk asks the channel about
/// the config's PAYING orders instead, which settles the paid one. A second
/// such notification within the reconcile interval asks nothing more.
async fn v3_key_problem_makes_cashdesk_query_the_channel(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 321).await;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("jsapi")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    // The buyer pays; the sandbox's own notification is lost.
    app.add_fault(
        json!({"channelType": "wx-pay", "fault": "DROP_NOTIFY", "mchId": setup.mch_id()}),
    )
    .await;
    app.sandbox_pay(&order_id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_paying(&setup, &no, "paid at the channel, not yet known").await;
    let queries = v3_queries_of(&app, &setup, &order_id).await;

    let hand = V3Hand {
        platform: RsaPrivateKey::generate_2048().expect("key"),
        api_v3_key: setup.creds()["apiV3Key"].as_str().expect("k").to_owned(),
        app_id: setup.creds()["appId"].as_str().expect("a").to_owned(),
        mch_id: setup.mch_id().to_owned(),
    };
    let rotated_serial = "7E2F0AB1C5D3E4F5061728394A5B6C7D8E9F0A1B";
    assert_ne!(setup.creds()["platformSerial"], rotated_serial);
    let forged = hand.body(&hand.resource(&order_id, 321, "4200000321"), false);
    let headers = v3_headers(
        rotated_serial,
        &forged,
        crate::helpers::now(),
        &hand.platform,
    );
    let r = post(
        &app,
        &setup.config_id,
        &headers,
        forged.clone().into_bytes(),
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("FAIL"), "{}", r.body);

    let paid = app.wait_state(client, &no, "SUCCESS").await;
    assert!(
        paid.transaction_id
            .as_deref()
            .is_some_and(|t| t != "4200000321"),
        "the channel's transaction id, not the unverified notification's: {paid:?}"
    );
    assert_eq!(v3_queries_of(&app, &setup, &order_id).await, queries + 1);
    assert_eq!(
        app.metric_settled("cashdesk_orders_paid_total", &[("source", "query")], 1.0)
            .await,
        1.0
    );
    assert_eq!(
        app.metric("cashdesk_orders_paid_total", &[("source", "notify")])
            .await,
        0.0
    );

    // Another one at once: refused again, no second round of queries.
    let (no2, order2) = app.new_order(client, 322).await;
    client
        .pay(&PaymentRequest::new(&no2, setup.channel("jsapi")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    let r = post(&app, &setup.config_id, &headers, forged.into_bytes()).await;
    assert_eq!(r.status, 500, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(v3_queries_of(&app, &setup, &order2).await, 0);
    assert_paying(&setup, &no2, "second key problem").await;
    assert_eq!(
        app.metric(
            "cashdesk_channel_notifications_total",
            &[("result", "key_problem")]
        )
        .await,
        2.0
    );
}

async fn unknown_config_is_404(b: Backend) {
    let app = spawn_app(b).await;
    for id in ["nope", "C01ARZ3NDEKTSV4RRFFQ69G5FAV"] {
        let r = post(&app, id, &[], b"<xml></xml>".to_vec()).await;
        assert_eq!(r.status, 404, "{id}");
    }
}
