//! Alipay end to end over HTTP against the mounted sandbox, in public-key
//! and in certificate mode: every scene (payData checked independently —
//! signed redirect URLs and order strings verified with the app's public
//! key, QR codes decoded), the sandbox pays, its notification moves the
//! order to SUCCESS, the query (also `?sync=true`), partial and full
//! refunds, close at the channel; notifications built by hand from the
//! documented format (form fields signed RSA2 with `sign` and `sign_type`
//! left out) accepted when genuine and refused, with the order unchanged,
//! when forged or not matching; 100 concurrent copies make one transition;
//! sandbox faults on calls and notifications.

use std::collections::BTreeMap;
use std::time::Duration;

use cashdesk_crypto::cert::{Certificate, alipay_root_cert_sn};
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use cashdesk_sdk::{CreateRefundRequest, SdkError};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ALIPAY_SCENES, Backend, ChannelSetup, TestApp, assert_api_error, form_value, order, orn, otn,
    spawn_app, spawn_app_with,
};

backend_tests!(
    every_scene_public_key_mode,
    every_scene_certificate_mode,
    close_goes_to_the_channel,
    hand_built_notifications_are_verified_exactly,
    concurrent_copies_make_one_transition,
    sandbox_notification_faults_change_nothing,
    channel_failures_leave_the_order_payable,
    a_refund_alipay_never_received_is_sent_again,
    the_readme_alipay_qr_payment_works_with_the_demo_app,
);

const RETURN_URL: &str = "https://shop.example.com/orders/back?from=alipay";
const BUYER_ID: &str = "2088102146225135";

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

/// Alipay's RSA2 content, written here from PROTOCOLS.md (not cashdesk's
/// code): every non-empty parameter but `exclude`, sorted, `k=v` by `&`.
fn sign_content(params: &BTreeMap<String, String>, exclude: &[&str]) -> String {
    params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !exclude.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_params(query: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The app's public key (the sandbox checks requests with it; so do we).
fn app_public_key(setup: &ChannelSetup) -> RsaPublicKey {
    RsaPrivateKey::from_pem(setup.cred("privateKeyPem"))
        .expect("app key")
        .public_key()
}

/// Checks signed client-side parameters as Alipay would: the signature over
/// every parameter but `sign`, the common parameters, certificate SNs in
/// certificate mode. Returns `biz_content`.
fn check_signed(
    app: &TestApp,
    setup: &ChannelSetup,
    params: &BTreeMap<String, String>,
    method: &str,
) -> Value {
    app_public_key(setup)
        .verify_sha256_base64(sign_content(params, &["sign"]).as_bytes(), &params["sign"])
        .unwrap_or_else(|_| panic!("{method}: the app signature verifies: {params:?}"));
    assert_eq!(params["method"], method);
    assert_eq!(params["app_id"], setup.cred("appId"));
    assert_eq!(params["charset"], "utf-8");
    assert_eq!(params["sign_type"], "RSA2");
    assert_eq!(params["version"], "1.0");
    assert_eq!(params["format"], "JSON");
    assert_eq!(
        params["notify_url"],
        format!(
            "{}/api/cashier-desk/notify/{}",
            app.base_url, setup.config_id
        )
    );
    if setup.credentials.get("appCertPem").is_some() {
        let app_sn = Certificate::from_pem(setup.cred("appCertPem"))
            .expect("app cert")
            .alipay_sn();
        assert_eq!(params["app_cert_sn"], app_sn);
        assert_eq!(
            params["alipay_root_cert_sn"],
            alipay_root_cert_sn(setup.cred("alipayRootCertPem")).expect("root sn")
        );
    } else {
        assert!(!params.contains_key("app_cert_sn"));
    }
    serde_json::from_str(&params["biz_content"]).expect("biz_content is JSON")
}

/// The QR SVG cashdesk serves for a QR code, rendered independently.
async fn check_qr_svg(app: &TestApp, svg_url: &str, code: &str) {
    assert!(
        svg_url.starts_with(&format!("{}/cashier-desk-web/qr/", app.base_url)),
        "{svg_url}"
    );
    let resp = app.http().get(svg_url).send().await.expect("svg");
    assert_eq!(resp.status().as_u16(), 200);
    let svg = resp.text().await.expect("svg text");
    let expected = qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M)
        .expect("qr")
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build();
    assert_eq!(svg, expected, "the SVG encodes the QR code");
}

/// Checks `payData` for `scene` and returns what the buyer's side submits
/// to the sandbox's pay API.
async fn check_pay_data(
    app: &TestApp,
    setup: &ChannelSetup,
    scene: &str,
    order_id: &str,
    pay_data: &Value,
) -> Value {
    let gateway = s(&setup.merchant, "baseUrl");
    let at_sandbox = json!({"channelType": "ali-pay", "outTradeNo": order_id, "result": "SUCCESS"});
    match scene {
        "mini" => {
            let trade_no = s(pay_data, "tradeNo");
            assert_eq!(trade_no.len(), 28, "{trade_no}");
            assert!(trade_no.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(pay_data.as_object().map(|o| o.len()), Some(1));
            at_sandbox
        }
        "qr" => {
            let code = s(pay_data, "qrCode");
            assert!(code.contains("/sandbox/alipay/pay/"), "{code}");
            let page = app.http().get(code).send().await.expect("payer page");
            assert_eq!(page.status().as_u16(), 200);
            check_qr_svg(app, s(pay_data, "qrSvgUrl"), code).await;
            at_sandbox
        }
        "wap" | "page" => {
            let url = s(pay_data, "redirectUrl");
            let (base, query) = url.split_once('?').expect("query");
            assert_eq!(base, gateway);
            let params = form_params(query);
            let (method, product) = if scene == "wap" {
                ("alipay.trade.wap.pay", "QUICK_WAP_WAY")
            } else {
                ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY")
            };
            let biz = check_signed(app, setup, &params, method);
            assert_eq!(biz["out_trade_no"], order_id);
            assert_eq!(biz["total_amount"], "10.10");
            assert_eq!(biz["product_code"], product);
            // The order's returnUrl, not a config default.
            assert_eq!(params["return_url"], RETURN_URL);
            if scene == "wap" {
                assert_eq!(biz["quit_url"], RETURN_URL);
            }
            // The form posts the same signed parameters.
            let form = s(pay_data, "form");
            assert!(form.contains(&format!("action=\"{gateway}\"")), "{form}");
            assert!(
                form.contains(&format!("name=\"sign\" value=\"{}\"", params["sign"])),
                "{form}"
            );
            // The browser opening the URL gets the sandbox's payer page.
            let page = app.http().get(url).send().await.expect("gateway page");
            assert_eq!(page.status().as_u16(), 200);
            let html = page.text().await.expect("html");
            assert!(html.contains("10.10"), "{html}");
            json!({"channelType": "ali-pay", "orderString": url, "result": "SUCCESS"})
        }
        "app" => {
            let order_string = s(pay_data, "orderString");
            let params = form_params(order_string);
            let biz = check_signed(app, setup, &params, "alipay.trade.app.pay");
            assert_eq!(biz["out_trade_no"], order_id);
            assert_eq!(biz["product_code"], "QUICK_MSECURITY_PAY");
            json!({"channelType": "ali-pay", "orderString": order_string, "result": "SUCCESS"})
        }
        other => panic!("scene {other}"),
    }
}

fn pay_body(no: &str, setup: &ChannelSetup, scene: &str) -> Value {
    let mut body = json!({"outTradeNo": no, "channelId": setup.channel(scene)});
    if scene == "mini" {
        body["buyerId"] = json!(BUYER_ID);
    }
    body
}

async fn every_scene(b: Backend, cert: bool) {
    let app = spawn_app(b).await;
    let setup = app.alipay_setup(cert).await;
    let client = &setup.shop.client;
    // The config was created without apiVersion: Alipay's only one applies.
    let cfg = app
        .admin
        .get_channel_config(&setup.config_id)
        .await
        .expect("config");
    assert_eq!(cfg["apiVersion"], "v2");
    // Given, it is still checked.
    let data = assert_api_error(
        app.admin
            .create_channel_config(&cashdesk_sdk::CreateChannelConfigRequest {
                channel_type: "ali-pay".into(),
                name: "x".into(),
                mch_id: setup.mch_id().into(),
                api_version: Some("v3".into()),
                credentials: setup.credentials.clone(),
                base_url: None,
            })
            .await,
        400,
        4000,
    )
    .expect("data");
    assert_eq!(data["field"], "apiVersion");
    for scene in ALIPAY_SCENES {
        let what = format!("cert={cert} {scene}");
        let no = otn();
        let mut req = order(&no, 1010);
        req.return_url = Some(RETURN_URL.to_owned());
        let order_id = client.create_order(&req).await.expect("order").order_id;
        let paid = app
            .pay_json(client, pay_body(&no, &setup, scene))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(s(&paid, "orderId"), order_id);
        assert_eq!(s(&paid, "channelType"), "ali-pay");
        assert_eq!(s(&paid, "sceneCode"), scene);
        let submit = check_pay_data(&app, &setup, scene, &order_id, &paid["payData"]).await;
        let paying = client.query_pay_result(&no, false).await.expect("query");
        assert_eq!(state(paying.state), "PAYING", "{what}");
        assert_eq!(paying.mch_id.as_deref(), Some(setup.mch_id()));
        // Not paid yet at Alipay either (wap/page/app: no trade until the
        // buyer opens it, which is also "not paid").
        let synced = client.query_pay_result(&no, true).await.expect("sync");
        assert_eq!(state(synced.state), "PAYING", "{what}");

        let at_sandbox = app.sandbox_pay_with(submit).await;
        assert_eq!(s(&at_sandbox, "tradeState"), "TRADE_SUCCESS");
        let done = app.wait_state(client, &no, "SUCCESS").await;
        assert_eq!(
            done.transaction_id.as_deref(),
            Some(s(&at_sandbox, "transactionId")),
            "{what}"
        );
        if scene == "mini" {
            assert_eq!(
                done.transaction_id.as_deref(),
                Some(s(&paid["payData"], "tradeNo"))
            );
        }
        assert_eq!(done.pay_time.as_deref().map(str::len), Some(19));
        assert_eq!(done.amount, 1010);
        let synced = client.query_pay_result(&no, true).await.expect("sync");
        assert_eq!(synced.transaction_id, done.transaction_id);
        assert_api_error(
            app.pay_json(client, pay_body(&no, &setup, scene)).await,
            422,
            4220,
        );

        // Partial, then full refund: Alipay refunds synchronously.
        let first = orn();
        let mut r = CreateRefundRequest::new(&no, &first, 300);
        r.reason = Some("缺货".into());
        let refund = client.create_refund(&r).await.expect("refund");
        assert_eq!(state(refund.state), "SUCCESS", "{what}: {refund:?}");
        assert_eq!(refund.channel_refund_id, done.transaction_id);
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(state(q.state), "PART_REFUNDED");
        assert_eq!(q.refunded_amount, 300);
        let rest = orn();
        let refund = client
            .create_refund(&CreateRefundRequest::new(&no, &rest, 710))
            .await
            .expect("refund rest");
        assert_eq!(state(refund.state), "SUCCESS", "{what}: {refund:?}");
        assert_eq!(refund.refunded_amount, 1010);
        let again = client.get_refund(&first, true).await.expect("get");
        assert_eq!((state(again.state), again.amount), ("SUCCESS".into(), 300));
        let q = client.query_pay_result(&no, true).await.expect("q");
        assert_eq!(state(q.state), "REFUNDED");
        // Nothing more to refund.
        assert_api_error(
            client
                .create_refund(&CreateRefundRequest::new(&no, orn(), 1))
                .await,
            422,
            4220,
        );
    }
    // The mini scene with an app-scoped OpenID goes as buyer_open_id.
    let (no, _) = app.new_order(client, 5).await;
    app.pay_json(
        client,
        json!({"outTradeNo": no, "channelId": setup.channel("mini"), "buyerId": "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"}),
    )
    .await
    .expect("mini with open id");
    let sent = app.sandbox_requests(setup.mch_id(), "api").await;
    let create = sent
        .iter()
        .rev()
        .find(|e| {
            e["target"]
                .as_str()
                .is_some_and(|t| t.ends_with("alipay.trade.create"))
        })
        .expect("trade.create logged");
    let biz = form_value(s(create, "requestBody"), "biz_content").expect("biz_content");
    let biz: Value = serde_json::from_str(&biz).expect("json");
    assert_eq!(
        biz["buyer_open_id"],
        "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"
    );
    assert!(biz.get("buyer_id").is_none());
    // Every call the sandbox took verified (the only refusals are the
    // app order's queries before the buyer opened it: no such trade yet),
    // signed as this mode requires.
    assert!(
        sent.iter()
            .all(|e| e["result"] == "SUCCESS" || e["result"] == "ACQ.TRADE_NOT_EXIST"),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .filter(
                |e| e["target"] != "/sandbox/alipay/gateway.do?method=alipay.trade.wap.pay"
                    && e["target"] != "/sandbox/alipay/gateway.do?method=alipay.trade.page.pay"
                    && e["target"] != "/sandbox/alipay/gateway.do?method=alipay.trade.app.pay"
            )
            .all(|e| form_value(s(e, "requestBody"), "app_cert_sn").is_some() == cert)
    );
}

async fn every_scene_public_key_mode(b: Backend) {
    every_scene(b, false).await
}

async fn every_scene_certificate_mode(b: Backend) {
    every_scene(b, true).await
}

async fn close_goes_to_the_channel(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.alipay_setup(false).await;
    let client = &setup.shop.client;
    for round in 0..3 {
        // A precreated trade is closed at Alipay; Alipay then notifies
        // TRADE_CLOSED, which must not turn the merchant's close into
        // anything else.
        let (no, order_id) = app.new_order(client, 7).await;
        app.pay_json(client, pay_body(&no, &setup, "qr"))
            .await
            .expect("pay");
        let closed = client.close_order(&no).await.expect("close");
        assert_eq!(state(closed.state), "CLOSED", "round {round}");
        let (status, v) = app
            .sandbox_post(
                "/sandbox/api/pay",
                json!({"channelType": "ali-pay", "outTradeNo": order_id, "result": "SUCCESS"}),
            )
            .await;
        assert_eq!(status, 409, "closed at Alipay: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(state(q.state), "CLOSED", "round {round}: {q:?}");
        client.close_order(&no).await.expect("close again");
        assert_api_error(
            app.pay_json(client, pay_body(&no, &setup, "qr")).await,
            422,
            4220,
        );
    }
    // A wap order the buyer never opened has no trade at Alipay: closing it
    // is Alipay's signed ACQ.TRADE_NOT_EXIST, which is fine.
    let (no, _) = app.new_order(client, 7).await;
    app.pay_json(client, pay_body(&no, &setup, "wap"))
        .await
        .expect("wap");
    let closed = client.close_order(&no).await.expect("close wap");
    assert_eq!(state(closed.state), "CLOSED");
    // A failing close changes nothing; the next one goes through.
    let (no, _) = app.new_order(client, 7).await;
    app.pay_json(client, pay_body(&no, &setup, "mini"))
        .await
        .expect("mini");
    app.add_fault(json!({"channelType": "ali-pay", "fault": "SYSTEMERROR", "mchId": setup.mch_id(), "pathContains": "alipay.trade.close"}))
        .await;
    assert_api_error(client.close_order(&no).await, 502, 5020);
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(state(q.state), "PAYING");
    let closed = client.close_order(&no).await.expect("close");
    assert_eq!(state(closed.state), "CLOSED");
    // A paid trade cannot be closed: the close finds it paid and says so.
    let (no, order_id) = app.new_order(client, 7).await;
    app.pay_json(client, pay_body(&no, &setup, "qr"))
        .await
        .expect("qr");
    app.add_fault(
        json!({"channelType": "ali-pay", "fault": "DROP_NOTIFY", "mchId": setup.mch_id()}),
    )
    .await;
    app.sandbox_pay_with(
        json!({"channelType": "ali-pay", "outTradeNo": order_id, "result": "SUCCESS"}),
    )
    .await;
    assert_api_error(client.close_order(&no).await, 422, 4220);
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(state(q.state), "SUCCESS", "the close learnt of the payment");
}

// --- notifications built by hand ---

/// An Alipay config whose Alipay public key is this test's, so the test
/// can sign notifications. Orders are paid through the wap scene, which
/// makes no server call (whose answers, signed by the sandbox's key, would
/// not verify under the test's key).
struct Hand {
    alipay: RsaPrivateKey,
    setup: ChannelSetup,
}

impl Hand {
    async fn new(app: &TestApp) -> Hand {
        let alipay = RsaPrivateKey::generate_2048().expect("key");
        let public = alipay.public_key().to_spki_pem();
        let setup = app
            .channel_setup_with("ali-pay", "credentials", &ALIPAY_SCENES, |c| {
                c["alipayPublicKeyPem"] = json!(public);
            })
            .await;
        Hand { alipay, setup }
    }

    /// A PAYING order of `amount` fen: (outTradeNo, orderId).
    async fn paying(&self, app: &TestApp, amount: i64) -> (String, String) {
        let client = &self.setup.shop.client;
        let (no, order_id) = app.new_order(client, amount).await;
        app.pay_json(client, pay_body(&no, &self.setup, "wap"))
            .await
            .expect("wap");
        (no, order_id)
    }

    /// The fields of a TRADE_SUCCESS notification, as Alipay documents them.
    fn fields(&self, order_id: &str, total: &str, trade_no: &str) -> BTreeMap<String, String> {
        [
            ("notify_time", "2024-01-02 03:04:06"),
            ("notify_type", "trade_status_sync"),
            ("notify_id", "ac05099524730693a8b330c5ecf72da9786"),
            ("app_id", self.setup.cred("appId")),
            ("charset", "utf-8"),
            ("version", "1.0"),
            ("sign_type", "RSA2"),
            ("trade_no", trade_no),
            ("out_trade_no", order_id),
            ("buyer_id", BUYER_ID),
            ("buyer_logon_id", "159****5620"),
            ("seller_id", self.setup.cred("sellerId")),
            ("trade_status", "TRADE_SUCCESS"),
            ("total_amount", total),
            ("receipt_amount", total),
            ("buyer_pay_amount", total),
            ("subject", "Coffee"),
            ("gmt_create", "2024-01-02 03:04:00"),
            ("gmt_payment", "2024-01-02 03:04:05"),
            (
                "fund_bill_list",
                "[{\"amount\":\"0.10\",\"fundChannel\":\"ALIPAYACCOUNT\"}]",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Signed with `key` (`sign` and `sign_type` left out), form-encoded.
    fn form_with(fields: &BTreeMap<String, String>, key: &RsaPrivateKey) -> String {
        let sign = key
            .sign_sha256_base64(sign_content(fields, &["sign", "sign_type"]).as_bytes())
            .expect("sign");
        let mut f = fields.clone();
        f.insert("sign".into(), sign);
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(f.iter())
            .finish()
    }

    fn form(&self, fields: &BTreeMap<String, String>) -> String {
        Self::form_with(fields, &self.alipay)
    }

    fn url(&self, app: &TestApp) -> String {
        format!(
            "{}/api/cashier-desk/notify/{}",
            app.base_url, self.setup.config_id
        )
    }

    async fn post(&self, app: &TestApp, body: impl Into<Vec<u8>>) -> (u16, String) {
        let resp = app
            .http()
            .post(self.url(app))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.into())
            .send()
            .await
            .expect("notify");
        (
            resp.status().as_u16(),
            resp.text().await.expect("reply text"),
        )
    }
}

async fn hand_built_notifications_are_verified_exactly(b: Backend) {
    let app = spawn_app(b).await;
    let hand = Hand::new(&app).await;
    let client = &hand.setup.shop.client;
    // An order of 0.10 yuan.
    let (no, order_id) = hand.paying(&app, 10).await;
    let good = |total: &str| hand.fields(&order_id, total, "2024010222001400001000000001");
    let stranger = RsaPrivateKey::generate_2048().expect("key");

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "signed by another key",
            Hand::form_with(&good("0.10"), &stranger).into_bytes(),
        ),
        (
            "amount 0.11 for 0.10",
            hand.form(&good("0.11")).into_bytes(),
        ),
        ("amount 1.0 for 0.10", hand.form(&good("1.0")).into_bytes()),
        (
            "amount with three decimals",
            hand.form(&good("0.100")).into_bytes(),
        ),
        (
            "amount in exponent form",
            hand.form(&good("1e-1")).into_bytes(),
        ),
        (
            "unknown order",
            hand.form(&hand.fields(
                cashdesk_core::OrderId::generate().as_str(),
                "0.10",
                "2024010222001400001000000002",
            ))
            .into_bytes(),
        ),
        ("empty body", Vec::new()),
        ("not a form", b"%zz=1&out_trade_no=x".to_vec()),
        ("non-UTF-8 value", b"subject=%FF%FE&sign=x".to_vec()),
        (
            "JSON instead of a form",
            b"{\"trade_status\":\"TRADE_SUCCESS\"}".to_vec(),
        ),
    ];
    // Changed after signing.
    {
        let signed = hand.form(&good("0.10"));
        cases.push((
            "total_amount changed after signing",
            signed
                .replace("total_amount=0.10", "total_amount=0.01")
                .into_bytes(),
        ));
        cases.push((
            "a parameter repeated",
            format!("{signed}&total_amount=0.10").into_bytes(),
        ));
        let mut no_sign: BTreeMap<String, String> = form_params(&signed);
        no_sign.remove("sign");
        cases.push((
            "no sign",
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(no_sign.iter())
                .finish()
                .into_bytes(),
        ));
        cases.push((
            "sign_type RSA",
            signed
                .replace("sign_type=RSA2", "sign_type=RSA")
                .into_bytes(),
        ));
    }
    let mut other_app = good("0.10");
    other_app.insert("app_id".into(), "2021000000000000".into());
    cases.push(("wrong app_id", hand.form(&other_app).into_bytes()));
    let mut other_seller = good("0.10");
    other_seller.insert("seller_id".into(), "2088000000000000".into());
    cases.push(("wrong seller_id", hand.form(&other_seller).into_bytes()));
    let mut no_seller = good("0.10");
    no_seller.remove("seller_id");
    cases.push(("no seller_id", hand.form(&no_seller).into_bytes()));

    for (what, body) in cases {
        let (status, reply) = hand.post(&app, body).await;
        assert_eq!((status, reply.as_str()), (200, "fail"), "{what}");
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(state(q.state), "PAYING", "{what}: unchanged");
        assert!(q.transaction_id.is_none(), "{what}");
    }
    assert!(
        app.metric(
            "cashdesk_channel_notifications_total",
            &[("channel_type", "ali-pay"), ("result", "mismatch")]
        )
        .await
            >= 4.0
    );

    // The genuine one, with the amount as Alipay may write it: 0.1 is 0.10.
    let genuine = hand.form(&good("0.1"));
    let (status, reply) = hand.post(&app, genuine.clone()).await;
    assert_eq!((status, reply.as_str()), (200, "success"));
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(state(q.state), "SUCCESS");
    assert_eq!(
        q.transaction_id.as_deref(),
        Some("2024010222001400001000000001")
    );
    assert_eq!(q.pay_time.as_deref(), Some("2024-01-02 03:04:05"));
    // A copy by GET (Alipay may notify by GET) is acknowledged, once applied.
    let resp = app
        .http()
        .get(format!("{}?{genuine}", hand.url(&app)))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.text().await.expect("t"), "success");

    // TRADE_FINISHED means paid too; 0.10 written in full.
    let (no2, order2) = hand.paying(&app, 10).await;
    let mut finished = hand.fields(&order2, "0.10", "2024010222001400001000000003");
    finished.insert("trade_status".into(), "TRADE_FINISHED".into());
    let resp = app
        .http()
        .get(format!("{}?{}", hand.url(&app), hand.form(&finished)))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.text().await.expect("t"), "success");
    let q = client.query_pay_result(&no2, false).await.expect("q");
    assert_eq!(state(q.state), "SUCCESS");

    // WAIT_BUYER_PAY is verified and acknowledged, and changes nothing.
    let (no3, order3) = hand.paying(&app, 1234).await;
    let mut waiting = hand.fields(&order3, "12.34", "2024010222001400001000000004");
    waiting.insert("trade_status".into(), "WAIT_BUYER_PAY".into());
    waiting.remove("gmt_payment");
    let (status, reply) = hand.post(&app, hand.form(&waiting)).await;
    assert_eq!((status, reply.as_str()), (200, "success"));
    let q = client.query_pay_result(&no3, false).await.expect("q");
    assert_eq!(state(q.state), "PAYING");
    // 12.34 yuan is 1234 fen exactly (no float on the way).
    let (status, reply) = hand
        .post(
            &app,
            hand.form(&hand.fields(&order3, "12.34", "2024010222001400001000000004")),
        )
        .await;
    assert_eq!((status, reply.as_str()), (200, "success"));
    let q = client.query_pay_result(&no3, false).await.expect("q");
    assert_eq!((state(q.state), q.amount), ("SUCCESS".into(), 1234));

    // TRADE_CLOSED closes a PAYING order (closed, not failed), so the
    // merchant's own close — whose notification may overtake its answer —
    // still ends CLOSED.
    // The order names a notify URL: the channel's close is the merchant's
    // PAY_CLOSED, queued with the transition (issue 14's defect: it was not).
    let no4 = otn();
    let mut req = order(&no4, 50);
    req.notify_url = Some("https://shop.example.com/closed".into());
    let order4 = client.create_order(&req).await.expect("order").order_id;
    app.pay_json(client, pay_body(&no4, &hand.setup, "wap"))
        .await
        .expect("wap");
    let mut closed = hand.fields(&order4, "0.50", "2024010222001400001000000005");
    closed.insert("trade_status".into(), "TRADE_CLOSED".into());
    closed.remove("gmt_payment");
    closed.insert("gmt_close".into(), "2024-01-02 03:10:00".into());
    let (status, reply) = hand.post(&app, hand.form(&closed)).await;
    assert_eq!((status, reply.as_str()), (200, "success"));
    let q = client.query_pay_result(&no4, false).await.expect("q");
    assert_eq!(state(q.state), "CLOSED");
    let q = client.close_order(&no4).await.expect("close");
    assert_eq!(state(q.state), "CLOSED");
    // Once, though the merchant's close answered CLOSED too.
    let notified: Vec<Value> = app
        .admin
        .list_notifications(&cashdesk_sdk::NotificationQuery {
            order_id: Some(order4.clone()),
            ..cashdesk_sdk::NotificationQuery::default()
        })
        .await
        .expect("notifications")
        .as_array()
        .cloned()
        .unwrap_or_default();
    let types: Vec<&Value> = notified.iter().map(|n| &n["notifyType"]).collect();
    assert_eq!(types, [&json!("PAY_CLOSED")], "{notified:?}");
    assert!(
        app.metric(
            "cashdesk_channel_notifications_total",
            &[("channel_type", "ali-pay"), ("result", "closed")]
        )
        .await
            >= 1.0
    );
}

async fn concurrent_copies_make_one_transition(b: Backend) {
    let app = spawn_app(b).await;
    let hand = Hand::new(&app).await;
    let (no, order_id) = hand.paying(&app, 999).await;
    let body = hand.form(&hand.fields(&order_id, "9.99", "2024010222001400001000000999"));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let url = hand.url(&app);
            let body = body.clone();
            let http = app.http();
            tokio::spawn(async move {
                let resp = http
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .expect("notify");
                (resp.status().as_u16(), resp.text().await.expect("text"))
            })
        })
        .collect();
    for t in tasks {
        let (status, text) = t.await.expect("task");
        assert_eq!((status, text.as_str()), (200, "success"));
    }
    let labels = |result| [("channel_type", "ali-pay"), ("result", result)];
    let applied = app
        .metric("cashdesk_channel_notifications_total", &labels("applied"))
        .await;
    let duplicate = app
        .metric("cashdesk_channel_notifications_total", &labels("duplicate"))
        .await;
    assert_eq!((applied, duplicate), (1.0, 99.0));
    assert_eq!(
        app.metric_settled("cashdesk_orders_paid_total", &[("source", "notify")], 1.0)
            .await,
        1.0
    );
    let q = hand
        .setup
        .shop
        .client
        .query_pay_result(&no, false)
        .await
        .expect("q");
    assert_eq!(
        q.transaction_id.as_deref(),
        Some("2024010222001400001000000999")
    );
}

/// Notifications the sandbox tampers with or drops: refused (or missing),
/// the order stays PAYING, and the query — whose answer is verified and
/// amount-checked — settles it.
async fn sandbox_notification_faults_change_nothing(b: Backend) {
    let app = spawn_app(b).await;
    for (cert, fault, result) in [
        (false, "TAMPER_SIGNATURE", "unverifiable"),
        (true, "TAMPER_AMOUNT", "mismatch"),
        (false, "DROP_NOTIFY", ""),
    ] {
        let setup = app.alipay_setup(cert).await;
        let client = &setup.shop.client;
        let (no, order_id) = app.new_order(client, 88).await;
        app.pay_json(client, pay_body(&no, &setup, "qr"))
            .await
            .expect("pay");
        let labels = [("channel_type", "ali-pay"), ("result", result)];
        let before = app
            .metric("cashdesk_channel_notifications_total", &labels)
            .await;
        app.add_fault(json!({"channelType": "ali-pay", "fault": fault, "mchId": setup.mch_id()}))
            .await;
        app.sandbox_pay_with(
            json!({"channelType": "ali-pay", "outTradeNo": order_id, "result": "SUCCESS"}),
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
    let setup = app.alipay_setup(false).await;
    let client = &setup.shop.client;
    for (scene, method) in [("qr", "precreate"), ("mini", "alipay.trade.create")] {
        for (fault, expect) in [
            ("SYSTEMERROR", "isp.unknow-error"),
            ("HTTP_500", "500"),
            ("TIMEOUT", "timed out"),
        ] {
            let (no, _) = app.new_order(client, 9).await;
            app.add_fault(json!({"channelType": "ali-pay", "fault": fault, "mchId": setup.mch_id(), "pathContains": method, "delayMs": 2500}))
                .await;
            match app.pay_json(client, pay_body(&no, &setup, scene)).await {
                Err(SdkError::Api {
                    status,
                    code,
                    msg,
                    data,
                }) => {
                    assert_eq!((status, code), (502, 5020), "{scene} {fault}: {msg}");
                    assert!(msg.contains(expect), "{scene} {fault}: {msg}");
                    assert_eq!(
                        data.as_ref().map(|d| d["retryable"].clone()),
                        Some(json!(true)),
                        "{scene} {fault}"
                    );
                }
                other => panic!("{scene} {fault}: expected 502, got {other:?}"),
            }
            let q = client.query_pay_result(&no, false).await.expect("q");
            assert_eq!(state(q.state), "CREATED", "{scene} {fault}");
            assert!(q.channel_id.is_none());
            app.pay_json(client, pay_body(&no, &setup, scene))
                .await
                .unwrap_or_else(|e| panic!("{scene} {fault} retry: {e:?}"));
        }
    }
    // A business refusal is the channel's own message, and nothing changes.
    let (no, _) = app.new_order(client, 9).await;
    assert_api_error(
        app.pay_json(
            client,
            json!({"outTradeNo": no, "channelId": setup.channel("mini")}),
        )
        .await,
        400,
        4000,
    );
    // A sync query that fails is a 502 and changes nothing.
    let (no, _) = app.new_order(client, 9).await;
    app.pay_json(client, pay_body(&no, &setup, "qr"))
        .await
        .expect("pay");
    app.add_fault(json!({"channelType": "ali-pay", "fault": "SYSTEMERROR", "mchId": setup.mch_id(), "pathContains": "alipay.trade.query"}))
        .await;
    assert_api_error(client.query_pay_result(&no, true).await, 502, 5020);
    let q = client.query_pay_result(&no, true).await.expect("q");
    assert_eq!(state(q.state), "PAYING");
}

/// A refund whose call failed before Alipay took it: it stays PROCESSING,
/// the query (`alipay.trade.fastpay.refund.query`) finds no such refund,
/// and the refund is sent again with the same `out_request_no`.
async fn a_refund_alipay_never_received_is_sent_again(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.alipay_setup(true).await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 500).await;
    app.pay_json(client, pay_body(&no, &setup, "qr"))
        .await
        .expect("pay");
    app.sandbox_pay_with(
        json!({"channelType": "ali-pay", "outTradeNo": order_id, "result": "SUCCESS"}),
    )
    .await;
    app.wait_state(client, &no, "SUCCESS").await;
    app.add_fault(json!({"channelType": "ali-pay", "fault": "SYSTEMERROR", "mchId": setup.mch_id(), "pathContains": "alipay.trade.refund"}))
        .await;
    let rno = orn();
    let r = client
        .create_refund(&CreateRefundRequest::new(&no, &rno, 200))
        .await
        .expect("refund");
    assert_eq!(state(r.state), "PROCESSING", "{r:?}");
    let r = client.get_refund(&rno, true).await.expect("sync");
    assert_eq!(state(r.state), "SUCCESS", "{r:?}");
    assert_eq!(r.refunded_amount, 200);
    let calls: Vec<String> = app
        .sandbox_requests(setup.mch_id(), "api")
        .await
        .iter()
        .filter_map(|e| e["target"].as_str().map(str::to_owned))
        .filter(|t| t.contains("refund"))
        .collect();
    assert_eq!(
        calls,
        [
            "/sandbox/alipay/gateway.do?method=alipay.trade.refund",
            "/sandbox/alipay/gateway.do?method=alipay.trade.fastpay.refund.query",
            "/sandbox/alipay/gateway.do?method=alipay.trade.refund",
        ]
    );
    // Asked again, the query now finds it.
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(
        (state(q.state), q.refunded_amount),
        ("PART_REFUNDED".into(), 200)
    );
}

/// The README's Alipay example: the demo app's sandbox Alipay QR channel.
async fn the_readme_alipay_qr_payment_works_with_the_demo_app(b: Backend) {
    let app = spawn_app(b).await;
    let channel = crate::cashier::demo_channel_of(&app, "ali-pay", "qr");
    let (no, order_id) = app.new_order(&app.client, 1010).await;
    let paid = app
        .pay_json(&app.client, json!({"outTradeNo": no, "channelId": channel}))
        .await
        .expect("pay");
    assert_eq!(paid["channelType"], "ali-pay");
    let code = s(&paid["payData"], "qrCode");
    check_qr_svg(&app, s(&paid["payData"], "qrSvgUrl"), code).await;
    let at_sandbox = app
        .sandbox_pay_with(
            json!({"channelType": "ali-pay", "outTradeNo": order_id, "result": "SUCCESS"}),
        )
        .await;
    let done = app.wait_state(&app.client, &no, "SUCCESS").await;
    assert_eq!(done.channel_type.as_deref(), Some("ali-pay"));
    assert_eq!(
        done.transaction_id.as_deref(),
        Some(s(&at_sandbox, "transactionId"))
    );
}
