//! WeChat Pay v3 adapter against the local double, and v3 notifications
//! built by hand from the documented format.

use std::sync::Arc;

use cashdesk_channels::*;
use cashdesk_core::{ChannelType, Fen, OrderId, RefundId, SceneCode};
use cashdesk_crypto::aead::aes_gcm_encrypt;
use serde_json::{Value, json};

use crate::support::*;

pub fn creds() -> Value {
    json!({
        "appId": APP_ID,
        "serialNo": MERCHANT_SERIAL,
        "privateKeyPem": keys().merchant.to_pkcs8_pem(),
        "apiV3Key": API_V3_KEY,
        "platformSerial": PLATFORM_SERIAL,
        "platformPublicKeyPem": platform_public().to_spki_pem(),
    })
}

async fn setup() -> (Arc<Double>, Arc<dyn Channel>) {
    let d = Double::new(cashdesk_crypto::wxv2::WxSignType::Md5);
    let addr = serve(router(d.clone())).await;
    let ch = build_channel(
        ChannelType::WxPay,
        "v3",
        MCH_ID,
        &creds(),
        Some(&format!("http://{addr}/wx")),
        &env(),
    )
    .unwrap();
    (d, ch)
}

fn pay_request(scene: SceneCode) -> PayRequest {
    PayRequest {
        order_id: OrderId::generate(),
        amount: Fen::from_stored(100),
        scene,
        description: "Image形象店-深圳腾大-QQ公仔".into(),
        payer_id: Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into()),
        payer_app_id: None,
        client_ip: Some("203.0.113.7".into()),
        expire_at: Some(chrono::Utc::now() + chrono::Duration::minutes(30)),
        attach: None,
        return_url: None,
        store: None,
    }
}

#[tokio::test]
async fn jsapi_payment_returns_rsa_signed_request_payment_params() {
    let (d, ch) = setup().await;
    let req = pay_request(SceneCode::Mini);
    let resp = ch.create_payment(&req).await.unwrap();
    let sent = d.last();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path_and_query, "/wx/v3/pay/transactions/jsapi");
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["out_trade_no"], req.order_id.as_str());
    assert_eq!(body["amount"], json!({"total": 100, "currency": "CNY"}));
    assert_eq!(body["payer"]["openid"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    assert!(body["time_expire"].as_str().unwrap().ends_with("+08:00"));
    let p = &resp.pay_data.to_json();
    assert_eq!(p["signType"], "RSA");
    assert_eq!(p["package"], format!("prepay_id=wx{}", req.order_id));
    let msg = format!(
        "{}\n{}\n{}\n{}\n",
        p["appId"].as_str().unwrap(),
        p["timeStamp"].as_str().unwrap(),
        p["nonceStr"].as_str().unwrap(),
        p["package"].as_str().unwrap()
    );
    keys()
        .merchant
        .public_key()
        .verify_sha256_base64(msg.as_bytes(), p["paySign"].as_str().unwrap())
        .unwrap();
}

#[tokio::test]
async fn other_scenes() {
    let (d, ch) = setup().await;
    let r = ch
        .create_payment(&pay_request(SceneCode::Native))
        .await
        .unwrap();
    assert_eq!(
        r.pay_data.to_json(),
        json!({"codeUrl": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"})
    );
    let r = ch
        .create_payment(&pay_request(SceneCode::H5))
        .await
        .unwrap();
    assert!(
        r.pay_data.to_json()["h5Url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    let body: Value = serde_json::from_slice(&d.last().body).unwrap();
    assert_eq!(body["scene_info"]["payer_client_ip"], "203.0.113.7");
    let r = ch
        .create_payment(&pay_request(SceneCode::App))
        .await
        .unwrap();
    let p = &r.pay_data.to_json();
    assert_eq!(p["package"], "Sign=WXPay");
    let msg = format!(
        "{APP_ID}\n{}\n{}\n{}\n",
        p["timestamp"].as_str().unwrap(),
        p["noncestr"].as_str().unwrap(),
        p["prepayid"].as_str().unwrap()
    );
    keys()
        .merchant
        .public_key()
        .verify_sha256_base64(msg.as_bytes(), p["sign"].as_str().unwrap())
        .unwrap();
}

#[tokio::test]
async fn responses_that_cannot_be_trusted_are_errors() {
    let (d, ch) = setup().await;
    let req = pay_request(SceneCode::Native);
    for fault in [
        Fault::Unsigned,
        Fault::BadSign,
        Fault::WrongSerial,
        Fault::StaleTimestamp,
    ] {
        d.set_fault(fault.clone());
        let e = ch.create_payment(&req).await.unwrap_err();
        assert_eq!(e.kind(), ChannelErrorKind::BadResponse, "{fault:?}: {e}");
    }
    // Close answers 204 with an empty body: still signed and verified.
    d.set_fault(Fault::Unsigned);
    let close = CloseRequest {
        order_id: req.order_id.clone(),
        store: None,
    };
    assert_eq!(
        ch.close(&close).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );
    d.set_fault(Fault::None);
    ch.close(&close).await.unwrap();
    assert_eq!(
        d.last().path_and_query,
        format!(
            "/wx/v3/pay/transactions/out-trade-no/{}/close",
            req.order_id
        )
    );
}

#[tokio::test]
async fn failures_are_classified() {
    let (d, ch) = setup().await;
    let req = pay_request(SceneCode::Native);
    d.set_fault(Fault::SystemError);
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Retryable);
    assert_eq!(e.code(), Some("SYSTEM_ERROR"));
    assert!(e.message().contains("系统错误"));
    d.set_fault(Fault::Http500);
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::Retryable
    );
    d.set_fault(Fault::Timeout);
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::Retryable
    );
    d.set_fault(Fault::Business("ORDERPAID", "该订单已支付"));
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Business);
    assert_eq!(e.business_kind(), Some(BusinessKind::OrderAlreadyPaid));
    assert_eq!(e.code(), Some("ORDERPAID"));
    assert_eq!(e.message(), "该订单已支付");
    d.set_fault(Fault::None);
    // A request the double cannot authenticate (wrong merchant key): 401, a config problem.
    let mut bad = creds();
    bad["privateKeyPem"] = json!(
        cashdesk_crypto::rsa::RsaPrivateKey::generate_2048()
            .unwrap()
            .to_pkcs8_pem()
    );
    let addr = d
        .last()
        .headers
        .get("host")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let other = build_channel(
        ChannelType::WxPay,
        "v3",
        MCH_ID,
        &bad,
        Some(&format!("http://{addr}/wx")),
        &env(),
    )
    .unwrap();
    assert_eq!(
        other.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::Config
    );
}

#[tokio::test]
async fn query_refund_and_refund_query() {
    let (d, ch) = setup().await;
    let order_id = OrderId::generate();
    let q = QueryRequest {
        order_id: order_id.clone(),
        amount: Fen::from_stored(100),
        store: None,
    };
    assert_eq!(ch.query(&q).await.unwrap(), ChannelOrderStatus::NotPaid);
    assert_eq!(
        d.last().path_and_query,
        format!("/wx/v3/pay/transactions/out-trade-no/{order_id}?mchid={MCH_ID}")
    );
    *d.trade_state.lock().unwrap() = "SUCCESS".into();
    let ChannelOrderStatus::Paid(paid) = ch.query(&q).await.unwrap() else {
        panic!()
    };
    assert_eq!(paid.amount, Fen::from_stored(100));
    assert_eq!(
        cashdesk_core::time::to_cn_datetime(paid.pay_time),
        "2024-01-02 11:04:05"
    );
    *d.paid_amount.lock().unwrap() = 99;
    assert_eq!(
        ch.query(&q).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );
    *d.trade_state.lock().unwrap() = "ORDER_NOT_EXIST".into();
    assert_eq!(ch.query(&q).await.unwrap(), ChannelOrderStatus::NotFound);
    // An unsigned "does not exist" is not believed.
    d.set_fault(Fault::Unsigned);
    assert_eq!(
        ch.query(&q).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );
    d.set_fault(Fault::None);

    let refund_id = RefundId::generate();
    let st = ch
        .refund(&RefundRequest {
            order_id: order_id.clone(),
            refund_id: refund_id.clone(),
            order_amount: Fen::from_stored(100),
            refund_amount: Fen::from_stored(30),
            reason: Some("商品已售完".into()),
            store: None,
        })
        .await
        .unwrap();
    assert_eq!(st.outcome, RefundOutcome::Processing);
    assert_eq!(st.refund_amount, Some(Fen::from_stored(30)));
    let body: Value = serde_json::from_slice(&d.last().body).unwrap();
    assert_eq!(
        body["amount"],
        json!({"refund": 30, "total": 100, "currency": "CNY"})
    );
    assert_eq!(body["out_refund_no"], refund_id.as_str());
    assert_eq!(body["notify_url"], NOTIFY_URL);

    let rq = RefundQueryRequest {
        order_id: order_id.clone(),
        refund_id: refund_id.clone(),
        store: None,
    };
    let st = ch.query_refund(&rq).await.unwrap();
    assert_eq!(st.outcome, RefundOutcome::Success);
    assert_eq!(
        d.last().path_and_query,
        format!("/wx/v3/refund/domestic/refunds/{refund_id}")
    );
    // No such refund: the kind the server re-sends on. The same code on a
    // refund request means the order is unknown, which is not that.
    d.set_fault(Fault::Business("RESOURCE_NOT_EXISTS", "退款单不存在"));
    let e = ch.query_refund(&rq).await.unwrap_err();
    assert_eq!(e.business_kind(), Some(BusinessKind::RefundNotFound));
    assert_eq!(e.code(), Some("RESOURCE_NOT_EXISTS"));
    let e = ch
        .refund(&RefundRequest {
            order_id,
            refund_id,
            order_amount: Fen::from_stored(100),
            refund_amount: Fen::from_stored(30),
            reason: None,
            store: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.business_kind(), Some(BusinessKind::Other));
    d.set_fault(Fault::Business("NOT_ENOUGH", "余额不足"));
    let e = ch.query_refund(&rq).await.unwrap_err();
    assert_eq!(e.business_kind(), Some(BusinessKind::InsufficientBalance));
    d.set_fault(Fault::None);
}

// ---------------- notifications ----------------

fn v3_channel() -> Arc<dyn Channel> {
    build_channel(ChannelType::WxPay, "v3", MCH_ID, &creds(), None, &env()).unwrap()
}

/// A notification envelope as documented, resource encrypted with `key`.
fn envelope(event_type: &str, resource: &Value, key: &[u8]) -> String {
    let nonce = "fdasflkja484";
    let aad = "transaction";
    let ct = aes_gcm_encrypt(
        key,
        nonce.as_bytes(),
        aad.as_bytes(),
        resource.to_string().as_bytes(),
    )
    .unwrap();
    json!({
        "id": "EV-2018022511223320873",
        "create_time": "2015-05-20T13:29:35+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": b64(&ct),
            "associated_data": aad,
            "nonce": nonce
        }
    })
    .to_string()
}

fn transaction(order_id: &str, total: i64) -> Value {
    json!({
        "transaction_id": "1217752501201407033233368018",
        "amount": {"payer_total": total, "total": total, "currency": "CNY", "payer_currency": "CNY"},
        "mchid": MCH_ID,
        "trade_state": "SUCCESS",
        "bank_type": "CMC",
        "promotion_detail": [],
        "success_time": "2018-06-08T10:34:56+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "out_trade_no": order_id,
        "appid": APP_ID,
        "trade_state_desc": "支付成功",
        "trade_type": "JSAPI",
        "attach": "自定义数据",
        "scene_info": {"device_id": "013467007045764"}
    })
}

fn incoming(body: &str, ts: i64, serial: &str) -> IncomingNotification {
    let mut headers = v3_sign_headers(body.as_bytes(), ts, serial, &keys().platform);
    headers.push(("Content-Type".into(), "application/json".into()));
    IncomingNotification {
        method: "POST".into(),
        headers,
        query: None,
        body: body.as_bytes().to_vec(),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[test]
fn hand_built_payment_notification_is_accepted() {
    let ch = v3_channel();
    let order_id = OrderId::generate();
    let body = envelope(
        "TRANSACTION.SUCCESS",
        &transaction(order_id.as_str(), 100),
        API_V3_KEY.as_bytes(),
    );
    let n = ch
        .parse_notification(&incoming(&body, now(), PLATFORM_SERIAL))
        .unwrap();
    let VerifiedNotification::Payment(p) = &n else {
        panic!("{n:?}")
    };
    assert_eq!(p.out_trade_no, order_id.as_str());
    let PaymentResult::Paid(paid) = &p.result else {
        panic!()
    };
    assert_eq!(paid.transaction_id, "1217752501201407033233368018");
    assert_eq!(paid.amount, Fen::from_stored(100));
    assert_eq!(
        cashdesk_core::time::to_cn_datetime(paid.pay_time),
        "2018-06-08 10:34:56"
    );
    n.check_against(&ExpectedOrder {
        order_id: order_id.clone(),
        amount: Fen::from_stored(100),
    })
    .unwrap();
    assert_eq!(
        n.check_against(&ExpectedOrder {
            order_id,
            amount: Fen::from_stored(10),
        })
        .unwrap_err()
        .kind,
        NotifyErrorKind::Mismatch
    );
    // Header names are case-insensitive; timestamps within 300 s pass.
    let mut lower = incoming(&body, now() - 290, PLATFORM_SERIAL);
    for (k, _) in lower.headers.iter_mut() {
        *k = k.to_ascii_lowercase();
    }
    assert!(ch.parse_notification(&lower).is_ok());
    assert_eq!(ch.notification_reply(true).status, 204);
}

#[test]
fn hand_built_refund_notification_is_accepted() {
    let ch = v3_channel();
    let resource = json!({
        "mchid": MCH_ID,
        "transaction_id": "1217752501201407033233368018",
        "out_trade_no": "P01",
        "refund_id": "50000000382019052709732678859",
        "out_refund_no": "R01",
        "refund_status": "SUCCESS",
        "success_time": "2018-06-08T10:34:56+08:00",
        "user_received_account": "招商银行信用卡0403",
        "amount": {"total": 999, "refund": 999, "payer_total": 999, "payer_refund": 999}
    });
    let body = envelope("REFUND.SUCCESS", &resource, API_V3_KEY.as_bytes());
    let n = ch
        .parse_notification(&incoming(&body, now(), PLATFORM_SERIAL))
        .unwrap();
    let VerifiedNotification::Refund(r) = n else {
        panic!()
    };
    assert_eq!(r.out_refund_no, "R01");
    assert_eq!(r.outcome, RefundOutcome::Success);
    assert_eq!(r.refund_amount, Fen::from_stored(999));
    // Verified events we have no use for are acknowledged, not refused.
    let body = envelope("TRANSACTION.OTHER", &json!({}), API_V3_KEY.as_bytes());
    assert_eq!(
        ch.parse_notification(&incoming(&body, now(), PLATFORM_SERIAL))
            .unwrap(),
        VerifiedNotification::Other {
            event: "TRANSACTION.OTHER".into()
        }
    );
}

#[test]
fn notifications_that_must_be_refused() {
    let ch = v3_channel();
    let kind = |n: &IncomingNotification| ch.parse_notification(n).unwrap_err().kind;
    let body = envelope(
        "TRANSACTION.SUCCESS",
        &transaction("P01", 100),
        API_V3_KEY.as_bytes(),
    );

    // Timestamp older than 300 s (and from the future).
    assert_eq!(
        kind(&incoming(&body, now() - 301, PLATFORM_SERIAL)),
        NotifyErrorKind::Unverifiable
    );
    assert_eq!(
        kind(&incoming(&body, now() + 400, PLATFORM_SERIAL)),
        NotifyErrorKind::Unverifiable
    );
    // Unknown serial: maybe a rotated platform key — query instead.
    assert_eq!(
        kind(&incoming(&body, now(), "PUB_KEY_ID_OTHER")),
        NotifyErrorKind::KeyProblem
    );
    // Tampered ciphertext after signing.
    let good = incoming(&body, now(), PLATFORM_SERIAL);
    let v: Value = serde_json::from_str(&body).unwrap();
    let ct = v["resource"]["ciphertext"].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if ct.starts_with('A') { "B" } else { "A" },
        &ct[1..]
    );
    let mut tampered = good.clone();
    tampered.body = body.replace(ct, &flipped).into_bytes();
    assert_eq!(kind(&tampered), NotifyErrorKind::Unverifiable);
    // Wrong signature (signed by another key).
    let mut forged = good.clone();
    for (k, v) in forged.headers.iter_mut() {
        if k == "Wechatpay-Signature" {
            *v = keys().merchant.sign_sha256_base64(b"x").unwrap();
        }
    }
    assert_eq!(kind(&forged), NotifyErrorKind::Unverifiable);
    // No signature headers at all.
    let mut bare = good.clone();
    bare.headers.retain(|(k, _)| !k.starts_with("Wechatpay"));
    assert_eq!(kind(&bare), NotifyErrorKind::Unverifiable);
    // Signed, but encrypted under another APIv3 key: our key is wrong.
    let other_key = envelope(
        "TRANSACTION.SUCCESS",
        &transaction("P01", 100),
        b"00000000000000000000000000000000",
    );
    assert_eq!(
        kind(&incoming(&other_key, now(), PLATFORM_SERIAL)),
        NotifyErrorKind::KeyProblem
    );
    // Signed but malformed JSON.
    assert_eq!(
        kind(&incoming("{\"id\":", now(), PLATFORM_SERIAL)),
        NotifyErrorKind::Malformed
    );
    // Verified but for another appid / mchid.
    let mut t = transaction("P01", 100);
    t["appid"] = json!("wx0000000000000000");
    let b = envelope("TRANSACTION.SUCCESS", &t, API_V3_KEY.as_bytes());
    assert_eq!(
        kind(&incoming(&b, now(), PLATFORM_SERIAL)),
        NotifyErrorKind::Mismatch
    );
    let mut t = transaction("P01", 100);
    t["mchid"] = json!("1000000000");
    let b = envelope("TRANSACTION.SUCCESS", &t, API_V3_KEY.as_bytes());
    assert_eq!(
        kind(&incoming(&b, now(), PLATFORM_SERIAL)),
        NotifyErrorKind::Mismatch
    );
    let reply = ch.notification_reply(false);
    assert!(reply.status >= 400);
}
