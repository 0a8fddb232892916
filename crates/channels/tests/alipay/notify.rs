//! Alipay asynchronous notifications built by hand from the documented
//! format (form POST, or GET query), and the ones that must be refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use cashdesk_channels::*;
use cashdesk_core::{ChannelType, Fen, OrderId};
use serde_json::Value;

use crate::support::*;

fn channel(c: &Value) -> Arc<dyn Channel> {
    build_channel(ChannelType::AliPay, "v2", MCH_ID, c, None, &env()).unwrap()
}

/// The fields of a payment notification as Alipay documents them.
fn fields(order_id: &str, total_amount: &str) -> BTreeMap<String, String> {
    [
        ("gmt_create", "2024-01-02 11:03:58"),
        ("charset", "utf-8"),
        ("seller_email", "shop@example.com"),
        ("subject", "Iphone6 16G"),
        ("sign_type", "RSA2"),
        ("buyer_id", "2088102146225135"),
        ("invoice_amount", total_amount),
        ("notify_id", "2024010200222110405001234567890123"),
        (
            "fund_bill_list",
            r#"[{"amount":"0.10","fundChannel":"ALIPAYACCOUNT"}]"#,
        ),
        ("notify_type", "trade_status_sync"),
        ("trade_status", "TRADE_SUCCESS"),
        ("receipt_amount", total_amount),
        ("app_id", APP_ID),
        ("buyer_pay_amount", total_amount),
        ("seller_id", SELLER_ID),
        ("gmt_payment", "2024-01-02 11:04:05"),
        ("notify_time", "2024-01-02 11:04:06"),
        ("passback_params", "store%3DS1"),
        ("version", "1.0"),
        ("out_trade_no", order_id),
        ("total_amount", total_amount),
        ("trade_no", "2024010222001400001234567890"),
        ("auth_app_id", APP_ID),
        ("buyer_logon_id", "159****5620"),
        ("point_amount", "0.00"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// Sign as Alipay does: `sign` and `sign_type` removed, sorted, raw values.
fn sign(f: &mut BTreeMap<String, String>, key: &cashdesk_crypto::rsa::RsaPrivateKey) {
    f.remove("sign");
    let s = key
        .sign_sha256_base64(string_to_sign(f, &["sign", "sign_type"]).as_bytes())
        .unwrap();
    f.insert("sign".into(), s);
}

fn encode(f: &BTreeMap<String, String>) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(f.iter())
        .finish()
}

fn post(body: String) -> IncomingNotification {
    IncomingNotification {
        method: "POST".into(),
        headers: vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        query: None,
        body: body.into_bytes(),
    }
}

fn signed_post(mut f: BTreeMap<String, String>) -> IncomingNotification {
    sign(&mut f, &keys().alipay);
    post(encode(&f))
}

#[test]
fn hand_built_payment_notification_is_accepted() {
    let ch = channel(&creds());
    let order_id = OrderId::generate();
    let n = ch
        .parse_notification(&signed_post(fields(order_id.as_str(), "0.10")))
        .unwrap();
    let VerifiedNotification::Payment(p) = &n else {
        panic!("{n:?}")
    };
    assert_eq!(p.out_trade_no, order_id.as_str());
    let PaymentResult::Paid(paid) = &p.result else {
        panic!()
    };
    assert_eq!(paid.transaction_id, "2024010222001400001234567890");
    assert_eq!(paid.amount, Fen::from_stored(10));
    assert_eq!(
        cashdesk_core::time::to_cn_datetime(paid.pay_time),
        "2024-01-02 11:04:05"
    );
    n.check_against(&ExpectedOrder {
        order_id: order_id.clone(),
        amount: Fen::from_stored(10),
    })
    .unwrap();
    let reply = ch.notification_reply(true);
    assert_eq!((reply.status, reply.body.as_str()), (200, "success"));
    assert_eq!(ch.notification_reply(false).body, "fail");

    // TRADE_FINISHED means paid too.
    let mut f = fields(order_id.as_str(), "0.10");
    f.insert("trade_status".into(), "TRADE_FINISHED".into());
    assert!(matches!(
        ch.parse_notification(&signed_post(f)).unwrap(),
        VerifiedNotification::Payment(PaymentNotification {
            result: PaymentResult::Paid(_),
            ..
        })
    ));

    // The same notification as a GET query string.
    let mut f = fields(order_id.as_str(), "0.10");
    sign(&mut f, &keys().alipay);
    let get = IncomingNotification {
        method: "GET".into(),
        headers: vec![],
        query: Some(encode(&f)),
        body: vec![],
    };
    assert_eq!(ch.parse_notification(&get).unwrap(), n);

    // Certificate mode verifies with the Alipay certificate's key; no sellerId set.
    let cert = channel(&cert_creds());
    let mut f = fields(order_id.as_str(), "0.10");
    f.insert("seller_id".into(), "2088000000000009".into());
    assert!(cert.parse_notification(&signed_post(f)).is_ok());
}

#[test]
fn yuan_amounts_are_converted_exactly() {
    let ch = channel(&creds());
    let order_id = OrderId::generate();
    let expected = ExpectedOrder {
        order_id: order_id.clone(),
        amount: Fen::from_stored(10),
    };
    // "0.1" is the order's 0.10 yuan: 10 fen, not a float 0.1.
    for (text, fen) in [
        ("0.1", 10),
        ("0.10", 10),
        ("12", 1200),
        ("0.29", 29),
        ("1234.56", 123_456),
    ] {
        let n = ch
            .parse_notification(&signed_post(fields(order_id.as_str(), text)))
            .unwrap();
        let VerifiedNotification::Payment(PaymentNotification {
            result: PaymentResult::Paid(paid),
            ..
        }) = &n
        else {
            panic!()
        };
        assert_eq!(paid.amount, Fen::from_stored(fen), "{text}");
        assert_eq!(n.check_against(&expected).is_ok(), fen == 10, "{text}");
    }
    // Signed but not a yuan amount.
    for bad in ["0.101", "-0.10", "1e1", "0.1 ", "", "0", "0.00"] {
        let e = ch
            .parse_notification(&signed_post(fields(order_id.as_str(), bad)))
            .unwrap_err();
        assert_eq!(e.kind, NotifyErrorKind::Malformed, "{bad}: {e}");
    }
}

#[test]
fn notifications_that_must_be_refused() {
    let ch = channel(&creds());
    let kind = |n: &IncomingNotification| ch.parse_notification(n).unwrap_err().kind;
    let order_id = OrderId::generate();
    let order = order_id.as_str();

    // Wrong signature: signed by another key, or a value changed after signing.
    let mut f = fields(order, "0.10");
    sign(&mut f, &keys().app);
    assert_eq!(kind(&post(encode(&f))), NotifyErrorKind::Unverifiable);
    let mut f = fields(order, "0.10");
    sign(&mut f, &keys().alipay);
    f.insert("total_amount".into(), "100.00".into());
    assert_eq!(kind(&post(encode(&f))), NotifyErrorKind::Unverifiable);
    // sign_type is not signed, but it must say RSA2.
    let mut f = fields(order, "0.10");
    sign(&mut f, &keys().alipay);
    f.insert("sign_type".into(), "RSA".into());
    assert_eq!(kind(&post(encode(&f))), NotifyErrorKind::Unverifiable);
    // Signed over everything (sign_type not removed): not Alipay's rule.
    let mut f = fields(order, "0.10");
    let s = keys()
        .alipay
        .sign_sha256_base64(string_to_sign(&f, &["sign"]).as_bytes())
        .unwrap();
    f.insert("sign".into(), s);
    assert_eq!(kind(&post(encode(&f))), NotifyErrorKind::Unverifiable);
    // No sign.
    assert_eq!(
        kind(&post(encode(&fields(order, "0.10")))),
        NotifyErrorKind::Unverifiable
    );

    // Verified, but for another app; or (once the order is known: the
    // config's own account) another seller or authorizing app.
    let mut f = fields(order, "0.10");
    f.insert("app_id".into(), "2021000000000000".into());
    assert_eq!(kind(&signed_post(f)), NotifyErrorKind::Mismatch);
    let merchant_check = |f: BTreeMap<String, String>| {
        let n = ch.parse_notification(&signed_post(f)).unwrap();
        let VerifiedNotification::Payment(p) = n else {
            panic!("{n:?}")
        };
        ch.check_merchant(&p.merchant, None).map_err(|e| e.kind)
    };
    assert_eq!(merchant_check(fields(order, "0.10")), Ok(()));
    let mut f = fields(order, "0.10");
    f.insert("seller_id".into(), "2088000000000009".into());
    assert_eq!(merchant_check(f), Err(NotifyErrorKind::Mismatch));
    let mut f = fields(order, "0.10");
    f.remove("seller_id");
    assert_eq!(merchant_check(f), Err(NotifyErrorKind::Mismatch));
    let mut f = fields(order, "0.10");
    f.insert("auth_app_id".into(), "2021000000000077".into());
    assert_eq!(merchant_check(f), Err(NotifyErrorKind::Mismatch));

    // Amount mismatch is refused by check_against.
    let n = ch
        .parse_notification(&signed_post(fields(order, "0.11")))
        .unwrap();
    let e = n
        .check_against(&ExpectedOrder {
            order_id: order_id.clone(),
            amount: Fen::from_stored(10),
        })
        .unwrap_err();
    assert_eq!(e.kind, NotifyErrorKind::Mismatch);

    // Malformed input.
    for body in ["", "%zz=1", "sign=a&sign=b", "=x", "a=%E4%B8"] {
        assert_eq!(
            kind(&post(body.into())),
            NotifyErrorKind::Malformed,
            "{body}"
        );
    }
    let raw = IncomingNotification {
        method: "POST".into(),
        headers: vec![],
        query: None,
        body: b"sign=x&a=\xff".to_vec(),
    };
    assert_eq!(kind(&raw), NotifyErrorKind::Malformed);
    let mut f = fields(order, "0.10");
    f.remove("out_trade_no");
    assert_eq!(kind(&signed_post(f)), NotifyErrorKind::Malformed);
    let mut f = fields(order, "0.10");
    f.insert("gmt_payment".into(), "yesterday".into());
    assert_eq!(kind(&signed_post(f)), NotifyErrorKind::Malformed);
}

#[test]
fn other_statuses_are_verified_and_acknowledged() {
    let ch = channel(&creds());
    let order = "P01HZX0000000000000000000000001";
    let mut f = fields(order, "0.10");
    f.insert("trade_status".into(), "WAIT_BUYER_PAY".into());
    assert_eq!(
        ch.parse_notification(&signed_post(f)).unwrap(),
        VerifiedNotification::Other {
            event: "WAIT_BUYER_PAY".into()
        }
    );
    let mut f = fields(order, "0.10");
    f.insert("trade_status".into(), "TRADE_CLOSED".into());
    let VerifiedNotification::Payment(p) = ch.parse_notification(&signed_post(f)).unwrap() else {
        panic!()
    };
    assert_eq!(p.result, PaymentResult::Closed);
    // A refund notification: refund_fee is cumulative, so it is left to the query.
    let mut f = fields(order, "0.10");
    f.insert("refund_fee".into(), "0.05".into());
    f.insert("out_biz_no".into(), "R01".into());
    f.insert("gmt_refund".into(), "2024-01-02 11:05:00.123".into());
    assert_eq!(
        ch.parse_notification(&signed_post(f)).unwrap(),
        VerifiedNotification::Other {
            event: "REFUND:TRADE_SUCCESS".into()
        }
    );
}

/// A store's order paid under an app authorization: the notification names
/// the authorizing merchant (`auth_app_id`, `seller_id`), which must be the
/// store's; the config's own seller check does not apply to it.
#[test]
fn authorized_merchants_notifications_are_checked_against_the_store() {
    let ch = channel(&creds());
    let store = StoreMerchant::new(
        "S1",
        serde_json::json!({"appAuthToken": "202401BBa1b2c3", "authAppId": "2021000000000077",
                           "sellerId": "2088000000000077"}),
    );
    let other = StoreMerchant::new(
        "S2",
        serde_json::json!({"appAuthToken": "202401BBx", "authAppId": "2021000000000088"}),
    );
    let order = OrderId::generate();
    let mut f = fields(order.as_str(), "0.10");
    f.insert("auth_app_id".into(), "2021000000000077".into());
    f.insert("seller_id".into(), "2088000000000077".into());
    let n = ch.parse_notification(&signed_post(f)).unwrap();
    let VerifiedNotification::Payment(p) = &n else {
        panic!("{n:?}")
    };
    assert_eq!(
        p.attach.as_deref(),
        Some("store=S1"),
        "passback_params decoded"
    );
    ch.check_merchant(&p.merchant, Some(&store)).unwrap();
    for wrong in [Some(&other), None] {
        assert_eq!(
            ch.check_merchant(&p.merchant, wrong).unwrap_err().kind,
            NotifyErrorKind::Mismatch
        );
    }
    // The config's own trade is not the store's.
    let n = ch
        .parse_notification(&signed_post(fields(order.as_str(), "0.10")))
        .unwrap();
    let VerifiedNotification::Payment(p) = &n else {
        panic!()
    };
    assert_eq!(
        ch.check_merchant(&p.merchant, Some(&store))
            .unwrap_err()
            .kind,
        NotifyErrorKind::Mismatch
    );
}
