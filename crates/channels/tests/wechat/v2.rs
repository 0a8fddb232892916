//! WeChat Pay v2 adapter against the local double, and v2 notifications
//! built by hand from the documented format.

use std::collections::BTreeMap;
use std::sync::Arc;

use cashdesk_channels::*;
use cashdesk_core::{ChannelType, Fen, OrderId, RefundId, SceneCode};
use cashdesk_crypto::wxv2::{self, WxSignType};
use serde_json::{Value, json};

use crate::support::*;

fn creds(sign_type: &str) -> Value {
    json!({"appId": APP_ID, "apiKey": API_KEY, "signType": sign_type})
}

async fn setup(sign_type: WxSignType) -> (Arc<Double>, Arc<dyn Channel>) {
    let d = Double::new(sign_type);
    let addr = serve(router(d.clone())).await;
    let base = format!("http://{addr}/wx");
    let ch = build_channel(
        ChannelType::WxPay,
        "v2",
        MCH_ID,
        &creds(sign_type.as_str()),
        Some(&base),
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
        description: "测试商品".into(),
        payer_id: Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into()),
        payer_app_id: None,
        client_ip: Some("203.0.113.7".into()),
        expire_at: Some(chrono::Utc::now() + chrono::Duration::minutes(30)),
        attach: Some("a=1".into()),
        return_url: None,
        store: None,
    }
}

fn sent_fields(d: &Double) -> BTreeMap<String, String> {
    cashdesk_channels::xml::parse_flat(&d.last().body).unwrap()
}

#[tokio::test]
async fn mini_payment_returns_request_payment_params_signed_with_the_config_type() {
    for st in [WxSignType::Md5, WxSignType::HmacSha256] {
        let (d, ch) = setup(st).await;
        let req = pay_request(SceneCode::Mini);
        let resp = ch.create_payment(&req).await.unwrap();
        let sent = sent_fields(&d);
        assert_eq!(d.last().path_and_query, "/wx/pay/unifiedorder");
        assert_eq!(sent["trade_type"], "JSAPI");
        assert_eq!(sent["out_trade_no"], req.order_id.as_str());
        assert_eq!(sent["total_fee"], "100");
        assert_eq!(sent["openid"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
        assert_eq!(sent["sign_type"], st.as_str());
        assert_eq!(sent["notify_url"], NOTIFY_URL);
        assert_eq!(sent["time_expire"].len(), 14);
        let prepay = format!("wx{}", req.order_id);
        assert_eq!(resp.prepay_id.as_deref(), Some(prepay.as_str()));
        // Recompute paySign independently: the five wx.requestPayment keys.
        let p = &resp.pay_data.to_json();
        assert_eq!(p["package"], format!("prepay_id={prepay}"));
        assert_eq!(p["signType"], st.as_str());
        assert_eq!(p["appId"], APP_ID);
        let mut m = BTreeMap::new();
        for k in ["appId", "nonceStr", "package", "signType", "timeStamp"] {
            m.insert(k.to_owned(), p[k].as_str().unwrap().to_owned());
        }
        assert_eq!(p["paySign"], wxv2::sign(&m, API_KEY, st));
        assert_eq!(p.as_object().unwrap().len(), 6);
    }
}

#[tokio::test]
async fn other_scenes() {
    let (d, ch) = setup(WxSignType::Md5).await;
    let native = ch
        .create_payment(&pay_request(SceneCode::Native))
        .await
        .unwrap();
    assert_eq!(
        native.pay_data.to_json(),
        json!({"codeUrl": "weixin://wxpay/bizpayurl?pr=NwY5Mz9"})
    );
    assert_eq!(sent_fields(&d)["trade_type"], "NATIVE");

    let h5 = ch
        .create_payment(&pay_request(SceneCode::H5))
        .await
        .unwrap();
    assert!(
        h5.pay_data.to_json()["h5Url"]
            .as_str()
            .unwrap()
            .starts_with("https://wx.tenpay.com/")
    );
    let sent = sent_fields(&d);
    assert_eq!(sent["trade_type"], "MWEB");
    assert_eq!(sent["spbill_create_ip"], "203.0.113.7");

    let app = ch
        .create_payment(&pay_request(SceneCode::App))
        .await
        .unwrap();
    let pd = app.pay_data.to_json();
    let p = pd.as_object().unwrap();
    assert_eq!(p["partnerid"], MCH_ID);
    assert_eq!(p["package"], "Sign=WXPay");
    let mut m: BTreeMap<String, String> = p
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert!(wxv2::verify(&m, API_KEY, WxSignType::Md5));
    m.insert("prepayid".into(), "other".into());
    assert!(!wxv2::verify(&m, API_KEY, WxSignType::Md5));
}

#[tokio::test]
async fn invalid_requests_are_refused_before_calling() {
    let (d, ch) = setup(WxSignType::Md5).await;
    let mut req = pay_request(SceneCode::Jsapi);
    req.payer_id = None;
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::InvalidRequest
    );
    let mut req = pay_request(SceneCode::H5);
    req.client_ip = None;
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::InvalidRequest
    );
    let req = pay_request(SceneCode::Wap);
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::InvalidRequest
    );
    assert_eq!(d.count(), 0);
}

#[tokio::test]
async fn failures_are_classified() {
    let (d, ch) = setup(WxSignType::HmacSha256).await;
    let req = pay_request(SceneCode::Native);

    d.set_fault(Fault::SystemError);
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Retryable);
    assert_eq!(e.code(), Some("SYSTEMERROR"));
    assert!(e.message().contains("系统超时"), "{e}");

    d.set_fault(Fault::Http500);
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::Retryable
    );

    d.set_fault(Fault::Timeout);
    let started = std::time::Instant::now();
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Retryable, "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    d.set_fault(Fault::Business("ORDERPAID", "该订单已支付"));
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(
        e,
        ChannelError::Business {
            kind: BusinessKind::OrderAlreadyPaid,
            code: "ORDERPAID".into(),
            message: "该订单已支付".into()
        }
    );

    d.set_fault(Fault::BadSign);
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );
    d.set_fault(Fault::Unsigned);
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );

    d.set_fault(Fault::None);
    assert!(ch.create_payment(&req).await.is_ok());
}

#[tokio::test]
async fn wrong_api_key_is_a_config_error() {
    let d = Double::new(WxSignType::Md5);
    let addr = serve(router(d.clone())).await;
    let creds =
        json!({"appId": APP_ID, "apiKey": "00000000000000000000000000000000", "signType": "MD5"});
    let ch = build_channel(
        ChannelType::WxPay,
        "v2",
        MCH_ID,
        &creds,
        Some(&format!("http://{addr}/wx")),
        &env(),
    )
    .unwrap();
    let e = ch
        .create_payment(&pay_request(SceneCode::Native))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Config);
    assert!(e.message().contains("签名错误"));
}

#[tokio::test]
async fn query_close_and_refund_query() {
    let (d, ch) = setup(WxSignType::Md5).await;
    let order_id = OrderId::generate();
    let q = QueryRequest {
        order_id: order_id.clone(),
        amount: Fen::from_stored(100),
        store: None,
    };
    assert_eq!(ch.query(&q).await.unwrap(), ChannelOrderStatus::NotPaid);
    assert_eq!(sent_fields(&d)["out_trade_no"], order_id.as_str());

    *d.trade_state.lock().unwrap() = "SUCCESS".into();
    let ChannelOrderStatus::Paid(paid) = ch.query(&q).await.unwrap() else {
        panic!("not paid")
    };
    assert_eq!(paid.transaction_id, "4200000001202401021234567890");
    assert_eq!(paid.amount, Fen::from_stored(100));
    assert_eq!(
        cashdesk_core::time::to_cn_datetime(paid.pay_time),
        "2024-01-02 11:04:05"
    );

    *d.paid_amount.lock().unwrap() = 1;
    assert_eq!(
        ch.query(&q).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );

    for (state, want) in [
        ("CLOSED", ChannelOrderStatus::Closed),
        ("USERPAYING", ChannelOrderStatus::Paying),
        ("ORDERNOTEXIST", ChannelOrderStatus::NotFound),
    ] {
        *d.trade_state.lock().unwrap() = state.into();
        assert_eq!(ch.query(&q).await.unwrap(), want);
    }

    ch.close(&CloseRequest {
        order_id: order_id.clone(),
        store: None,
    })
    .await
    .unwrap();
    assert_eq!(d.last().path_and_query, "/wx/pay/closeorder");
    d.set_fault(Fault::Business("ORDERCLOSED", "订单已关闭"));
    ch.close(&CloseRequest {
        order_id: order_id.clone(),
        store: None,
    })
    .await
    .unwrap();
    d.set_fault(Fault::Business("ORDERPAID", "订单已支付"));
    assert_eq!(
        ch.close(&CloseRequest {
            order_id: order_id.clone(),
            store: None,
        })
        .await
        .unwrap_err()
        .business_kind(),
        Some(BusinessKind::OrderAlreadyPaid)
    );
    d.set_fault(Fault::None);

    let refund_id = RefundId::generate();
    let rq = RefundQueryRequest {
        order_id,
        refund_id: refund_id.clone(),
        store: None,
    };
    let st = ch.query_refund(&rq).await.unwrap();
    assert_eq!(st.outcome, RefundOutcome::Success);
    assert_eq!(st.refund_amount, Some(Fen::from_stored(30)));
    assert!(st.success_time.is_some());
    assert_eq!(sent_fields(&d)["out_refund_no"], refund_id.as_str());
    // No such refund: the kind the server re-sends on.
    d.set_fault(Fault::Business("REFUNDNOTEXIST", "退款订单查询失败"));
    let e = ch.query_refund(&rq).await.unwrap_err();
    assert_eq!(e.business_kind(), Some(BusinessKind::RefundNotFound));
    assert_eq!(e.code(), Some("REFUNDNOTEXIST"));
    d.set_fault(Fault::None);
}

#[tokio::test]
async fn refund_without_client_certificate_is_a_config_error() {
    let (d, ch) = setup(WxSignType::Md5).await;
    let e = ch
        .refund(&RefundRequest {
            order_id: OrderId::generate(),
            refund_id: RefundId::generate(),
            order_amount: Fen::from_stored(100),
            refund_amount: Fen::from_stored(30),
            reason: None,
            store: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Config);
    assert_eq!(d.count(), 0);
}

// ---------------- notifications ----------------

fn v2_channel(sign_type: &str) -> Arc<dyn Channel> {
    build_channel(
        ChannelType::WxPay,
        "v2",
        MCH_ID,
        &creds(sign_type),
        None,
        &env(),
    )
    .unwrap()
}

/// A pay notification exactly as documented (no sign_type: WeChat omits it).
fn pay_notification(order_id: &str, total_fee: &str) -> BTreeMap<String, String> {
    [
        ("appid", APP_ID),
        ("attach", "支付测试"),
        ("bank_type", "CFT"),
        ("fee_type", "CNY"),
        ("is_subscribe", "Y"),
        ("mch_id", MCH_ID),
        ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c"),
        ("openid", "oUpF8uMEb4qRXf22hE3X68TekukE"),
        ("out_trade_no", order_id),
        ("result_code", "SUCCESS"),
        ("return_code", "SUCCESS"),
        ("time_end", "20140903131540"),
        ("total_fee", total_fee),
        ("cash_fee", total_fee),
        ("coupon_fee", "10"),
        ("coupon_count", "1"),
        ("coupon_type", "CASH"),
        ("coupon_id", "10000"),
        ("trade_type", "JSAPI"),
        ("transaction_id", "1004400740201409030005092168"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn incoming(body: impl Into<Vec<u8>>) -> IncomingNotification {
    IncomingNotification {
        method: "POST".into(),
        headers: vec![("Content-Type".into(), "text/xml".into())],
        query: None,
        body: body.into(),
    }
}

fn signed_xml(mut f: BTreeMap<String, String>, kind: WxSignType) -> String {
    v2_sign(&mut f, API_KEY, kind);
    cashdesk_channels::xml::to_xml(&f)
}

#[test]
fn hand_built_pay_notification_is_accepted() {
    for kind in [WxSignType::Md5, WxSignType::HmacSha256] {
        let ch = v2_channel(kind.as_str());
        let order_id = OrderId::generate();
        let body = signed_xml(pay_notification(order_id.as_str(), "100"), kind);
        let n = ch.parse_notification(&incoming(body)).unwrap();
        let VerifiedNotification::Payment(p) = &n else {
            panic!("{n:?}")
        };
        assert_eq!(p.out_trade_no, order_id.as_str());
        let PaymentResult::Paid(paid) = &p.result else {
            panic!()
        };
        assert_eq!(paid.transaction_id, "1004400740201409030005092168");
        assert_eq!(paid.amount, Fen::from_stored(100));
        assert_eq!(
            cashdesk_core::time::to_compact(paid.pay_time),
            "20140903131540"
        );
        let good = ExpectedOrder {
            order_id: order_id.clone(),
            amount: Fen::from_stored(100),
        };
        n.check_against(&good).unwrap();
        let wrong_amount = ExpectedOrder {
            order_id: order_id.clone(),
            amount: Fen::from_stored(101),
        };
        assert_eq!(
            n.check_against(&wrong_amount).unwrap_err().kind,
            NotifyErrorKind::Mismatch
        );
        let other = ExpectedOrder {
            order_id: OrderId::generate(),
            amount: Fen::from_stored(100),
        };
        assert_eq!(
            n.check_against(&other).unwrap_err().kind,
            NotifyErrorKind::Mismatch
        );
        assert_eq!(
            ch.notification_reply(true).body,
            "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
        );
    }
}

#[test]
fn explicit_sign_type_and_unknown_fields_are_honoured() {
    let ch = v2_channel("HMAC-SHA256");
    let mut f = pay_notification("P1", "100");
    f.insert("sign_type".into(), "MD5".into());
    f.insert("some_future_field".into(), "x".into());
    let body = signed_xml(f.clone(), WxSignType::Md5);
    assert!(ch.parse_notification(&incoming(body.clone())).is_ok());
    // The unknown field is covered by the signature.
    let tampered = body.replace("<![CDATA[x]]>", "<![CDATA[y]]>");
    assert_eq!(
        ch.parse_notification(&incoming(tampered)).unwrap_err().kind,
        NotifyErrorKind::Unverifiable
    );
}

#[test]
fn pay_notifications_that_must_be_refused() {
    let ch = v2_channel("MD5");
    let reject = |body: String| ch.parse_notification(&incoming(body)).unwrap_err().kind;

    // Wrong signature (signed with another key), or the amount changed after signing.
    let mut f = pay_notification("P1", "100");
    v2_sign(&mut f, "another-key-another-key-another-k", WxSignType::Md5);
    assert_eq!(
        reject(cashdesk_channels::xml::to_xml(&f)),
        NotifyErrorKind::Unverifiable
    );
    let good = signed_xml(pay_notification("P1", "100"), WxSignType::Md5);
    assert_eq!(
        reject(good.replace("<total_fee><![CDATA[100]]>", "<total_fee><![CDATA[1]]>")),
        NotifyErrorKind::Unverifiable
    );
    // Without sign.
    let f = pay_notification("P1", "100");
    assert_eq!(
        reject(cashdesk_channels::xml::to_xml(&f)),
        NotifyErrorKind::Unverifiable
    );
    // Signed with the other type than the config's while sign_type is absent.
    assert_eq!(
        reject(signed_xml(
            pay_notification("P1", "100"),
            WxSignType::HmacSha256
        )),
        NotifyErrorKind::Unverifiable
    );
    // Correctly signed but for another appid / mch_id.
    let mut f = pay_notification("P1", "100");
    f.insert("appid".into(), "wx0000000000000000".into());
    assert_eq!(
        reject(signed_xml(f, WxSignType::Md5)),
        NotifyErrorKind::Mismatch
    );
    let mut f = pay_notification("P1", "100");
    f.insert("mch_id".into(), "1000000000".into());
    assert_eq!(
        reject(signed_xml(f, WxSignType::Md5)),
        NotifyErrorKind::Mismatch
    );
    // Malformed XML, empty body, DOCTYPE / entity payloads.
    assert_eq!(
        reject("<xml><return_code>SUCCESS</xml>".into()),
        NotifyErrorKind::Malformed
    );
    assert_eq!(reject(String::new()), NotifyErrorKind::Malformed);
    let xxe = good.replacen(
        "<xml>",
        "<!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><xml><attach>&xxe;</attach>",
        1,
    );
    assert_eq!(reject(xxe), NotifyErrorKind::Malformed);
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>{}",
        good.replacen("<xml>", "<xml><x>&lol2;</x>", 1)
    );
    assert_eq!(reject(bomb), NotifyErrorKind::Malformed);
    // A signed FAIL result is verified but not a payment.
    let mut f = pay_notification("P1", "100");
    f.insert("result_code".into(), "FAIL".into());
    f.insert("err_code".into(), "NOTENOUGH".into());
    let n = ch
        .parse_notification(&incoming(signed_xml(f, WxSignType::Md5)))
        .unwrap();
    assert!(matches!(
        n,
        VerifiedNotification::Payment(PaymentNotification {
            result: PaymentResult::Failed { .. },
            ..
        })
    ));
}

fn refund_notification(api_key: &str, mch_id: &str, refund_id: &str, order_id: &str) -> String {
    let inner = format!(
        "<root><out_refund_no><![CDATA[{refund_id}]]></out_refund_no><out_trade_no><![CDATA[{order_id}]]></out_trade_no>\
         <refund_account><![CDATA[REFUND_SOURCE_RECHARGE_FUNDS]]></refund_account><refund_fee><![CDATA[30]]></refund_fee>\
         <refund_id><![CDATA[50000408942018111907145868882]]></refund_id><refund_recv_accout><![CDATA[支付用户零钱]]></refund_recv_accout>\
         <refund_request_source><![CDATA[API]]></refund_request_source><refund_status><![CDATA[SUCCESS]]></refund_status>\
         <settlement_refund_fee><![CDATA[30]]></settlement_refund_fee><settlement_total_fee><![CDATA[100]]></settlement_total_fee>\
         <success_time><![CDATA[2018-11-19 16:24:13]]></success_time><total_fee><![CDATA[100]]></total_fee>\
         <transaction_id><![CDATA[4200000215201811190261405420]]></transaction_id></root>"
    );
    let req_info = wxv2::encrypt_req_info(api_key, &inner);
    format!(
        "<xml><return_code>SUCCESS</return_code><appid><![CDATA[{APP_ID}]]></appid><mch_id><![CDATA[{mch_id}]]></mch_id>\
         <nonce_str><![CDATA[TeqClE3i0mvn3DrK]]></nonce_str><req_info><![CDATA[{req_info}]]></req_info></xml>"
    )
}

#[test]
fn hand_built_refund_notification_is_accepted() {
    let ch = v2_channel("MD5");
    let (order_id, refund_id) = (OrderId::generate(), RefundId::generate());
    let body = refund_notification(API_KEY, MCH_ID, refund_id.as_str(), order_id.as_str());
    let n = ch.parse_notification(&incoming(body)).unwrap();
    let VerifiedNotification::Refund(r) = &n else {
        panic!("{n:?}")
    };
    assert_eq!(r.outcome, RefundOutcome::Success);
    assert_eq!(r.refund_amount, Fen::from_stored(30));
    assert_eq!(r.order_amount, Some(Fen::from_stored(100)));
    assert_eq!(
        r.channel_refund_id.as_deref(),
        Some("50000408942018111907145868882")
    );
    assert_eq!(
        cashdesk_core::time::to_cn_datetime(r.success_time.unwrap()),
        "2018-11-19 16:24:13"
    );
    r.check_against(&ExpectedRefund {
        order_id: order_id.clone(),
        refund_id: refund_id.clone(),
        refund_amount: Fen::from_stored(30),
    })
    .unwrap();
    assert_eq!(
        r.check_against(&ExpectedRefund {
            order_id,
            refund_id,
            refund_amount: Fen::from_stored(31),
        })
        .unwrap_err()
        .kind,
        NotifyErrorKind::Mismatch
    );
}

#[test]
fn refund_notifications_that_must_be_refused() {
    let ch = v2_channel("MD5");
    let reject = |body: String| ch.parse_notification(&incoming(body)).unwrap_err().kind;
    // Encrypted under another key.
    assert_eq!(
        reject(refund_notification(
            "another-key-another-key-another-k",
            MCH_ID,
            "R1",
            "P1"
        )),
        NotifyErrorKind::Unverifiable
    );
    // Tampered ciphertext: flip one base64 character of req_info.
    let body = refund_notification(API_KEY, MCH_ID, "R1", "P1");
    let start = body.find("<req_info><![CDATA[").unwrap() + "<req_info><![CDATA[".len() + 5;
    let mut bytes = body.into_bytes();
    bytes[start] = if bytes[start] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        reject(String::from_utf8(bytes).unwrap()),
        NotifyErrorKind::Unverifiable
    );
    // Another merchant.
    assert_eq!(
        reject(refund_notification(API_KEY, "1000000000", "R1", "P1")),
        NotifyErrorKind::Mismatch
    );
}
