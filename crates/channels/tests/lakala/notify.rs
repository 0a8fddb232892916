//! Lakala notifications built by hand from the documented format (JSON
//! POST, `Authorization: LKLAPI-SHA256withRSA timestamp,nonce_str,signature`
//! over `timestamp\nnonce_str\nbody\n`, signed with the notify key).

use std::sync::Arc;

use cashdesk_channels::*;
use cashdesk_core::{ChannelType, Fen, OrderId};
use cashdesk_crypto::rsa::RsaPrivateKey;
use serde_json::{Value, json};

use crate::support::*;

fn channel() -> Arc<dyn Channel> {
    build_channel(ChannelType::Lakala, "v3", MCH_ID, &creds(), None, &env()).unwrap()
}

fn payment(order_id: &str, total: &str) -> Value {
    json!({
        "merchant_no": MERCHANT_NO, "term_no": TERM_NO, "out_trade_no": order_id,
        "trade_no": "20240102110113130266250000001", "log_no": "66250000001",
        "acc_trade_no": "4200000001202401021234567890", "trade_status": "SUCCESS",
        "total_amount": total, "payer_amount": total, "account_type": "WECHAT",
        "trade_time": "20240102110405", "user_id1": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "notify_url": NOTIFY_URL, "remark": "store=S1",
    })
}

fn signed(body: &str, key: &RsaPrivateKey) -> IncomingNotification {
    let ts = "1704164646";
    let nonce = "Lx8dOYbYh2Ts";
    let sig = key
        .sign_sha256_base64(&lines(&[ts.as_bytes(), nonce.as_bytes(), body.as_bytes()]))
        .unwrap();
    IncomingNotification {
        method: "POST".into(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            (
                "Authorization".into(),
                format!(
                    "LKLAPI-SHA256withRSA timestamp=\"{ts}\",nonce_str=\"{nonce}\",signature=\"{sig}\""
                ),
            ),
        ],
        query: None,
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn hand_built_payment_notification_is_accepted() {
    let ch = channel();
    let order_id = OrderId::generate();
    let body = payment(order_id.as_str(), "100").to_string();
    let n = ch
        .parse_notification(&signed(&body, &keys().notify))
        .unwrap();
    let VerifiedNotification::Payment(p) = &n else {
        panic!("{n:?}")
    };
    assert_eq!(p.out_trade_no, order_id.as_str());
    let PaymentResult::Paid(paid) = &p.result else {
        panic!()
    };
    assert_eq!(paid.amount, Fen::from_stored(100));
    assert_eq!(paid.transaction_id, "20240102110113130266250000001");
    assert_eq!(
        cashdesk_core::time::to_cn_datetime(paid.pay_time),
        "2024-01-02 11:04:05"
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
    // The config's own numbers, the remark echoed.
    let VerifiedNotification::Payment(p) = &n else {
        panic!()
    };
    ch.check_merchant(&p.merchant, None).unwrap();
    assert_eq!(p.attach.as_deref(), Some("store=S1"));
    let reply = ch.notification_reply(true);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, r#"{"code":"SUCCESS","message":"执行成功"}"#);
    assert!(ch.notification_reply(false).status >= 400);
    // A lowercase header name works as well.
    let mut lower = signed(&body, &keys().notify);
    for (k, _) in lower.headers.iter_mut() {
        *k = k.to_ascii_lowercase();
    }
    assert!(ch.parse_notification(&lower).is_ok());
}

#[test]
fn other_statuses() {
    let ch = channel();
    let mut v = payment("P1", "100");
    v["trade_status"] = json!("FAIL");
    let n = ch
        .parse_notification(&signed(&v.to_string(), &keys().notify))
        .unwrap();
    assert!(matches!(
        n,
        VerifiedNotification::Payment(PaymentNotification {
            result: PaymentResult::Failed { .. },
            ..
        })
    ));
    v["trade_status"] = json!("CLOSE");
    assert!(matches!(
        ch.parse_notification(&signed(&v.to_string(), &keys().notify))
            .unwrap(),
        VerifiedNotification::Payment(PaymentNotification {
            result: PaymentResult::Closed,
            ..
        })
    ));
    v["trade_status"] = json!("DEAL");
    assert_eq!(
        ch.parse_notification(&signed(&v.to_string(), &keys().notify))
            .unwrap(),
        VerifiedNotification::Other {
            event: "DEAL".into()
        }
    );
}

#[test]
fn notifications_that_must_be_refused() {
    let ch = channel();
    let kind = |n: &IncomingNotification| ch.parse_notification(n).unwrap_err().kind;
    let body = payment("P1", "100").to_string();
    // Signed with the API platform key, not the separate notify key.
    assert_eq!(
        kind(&signed(&body, &keys().platform)),
        NotifyErrorKind::Unverifiable
    );
    // Body changed after signing.
    let mut tampered = signed(&body, &keys().notify);
    tampered.body = body.replace("\"100\"", "\"1\"").into_bytes();
    assert_eq!(kind(&tampered), NotifyErrorKind::Unverifiable);
    // No or foreign Authorization.
    let mut bare = signed(&body, &keys().notify);
    bare.headers.retain(|(k, _)| k != "Authorization");
    assert_eq!(kind(&bare), NotifyErrorKind::Unverifiable);
    let mut other_scheme = signed(&body, &keys().notify);
    other_scheme.headers[1].1 = other_scheme.headers[1]
        .1
        .replace("LKLAPI-SHA256withRSA", "WECHATPAY2-SHA256-RSA2048");
    assert_eq!(kind(&other_scheme), NotifyErrorKind::Unverifiable);
    // Another merchant: the notify key signs for every merchant, so the
    // notification verifies, and check_merchant refuses it for an order
    // paid with this config's own numbers.
    let mut v = payment("P1", "100");
    v["merchant_no"] = json!("822290000000000");
    let n = ch
        .parse_notification(&signed(&v.to_string(), &keys().notify))
        .unwrap();
    let VerifiedNotification::Payment(p) = &n else {
        panic!("{n:?}")
    };
    assert_eq!(
        ch.check_merchant(&p.merchant, None).unwrap_err().kind,
        NotifyErrorKind::Mismatch
    );
    let mut v = payment("P1", "100");
    v["merchant_no"] = Value::Null;
    assert_eq!(
        kind(&signed(&v.to_string(), &keys().notify)),
        NotifyErrorKind::Malformed
    );
    // Signed but malformed.
    assert_eq!(
        kind(&signed("{\"merchant_no\":", &keys().notify)),
        NotifyErrorKind::Malformed
    );
    for (field, value) in [
        ("total_amount", json!("1.00")),
        ("total_amount", json!("-1")),
        ("trade_time", json!("2024-01-02")),
        ("out_trade_no", json!("")),
        ("trade_status", Value::Null),
    ] {
        let mut v = payment("P1", "100");
        v[field] = value.clone();
        assert_eq!(
            kind(&signed(&v.to_string(), &keys().notify)),
            NotifyErrorKind::Malformed,
            "{field}={value}"
        );
    }
}

/// Two stores on one config: each store's notification names its own
/// merchant and terminal numbers, and is accepted for that store's orders
/// only (not for the other store's, nor for the config's own).
#[test]
fn store_notifications_are_checked_against_the_order_store() {
    let ch = channel();
    let s1 = StoreMerchant::new(
        "S1",
        json!({"merchantNo": "822000000000001", "termNo": "T0000001"}),
    );
    let s2 = StoreMerchant::new(
        "S2",
        json!({"merchantNo": "822000000000002", "termNo": "T0000002"}),
    );
    let mut v = payment("P1", "100");
    v["merchant_no"] = json!("822000000000001");
    v["term_no"] = json!("T0000001");
    let n = ch
        .parse_notification(&signed(&v.to_string(), &keys().notify))
        .unwrap();
    let VerifiedNotification::Payment(p) = &n else {
        panic!("{n:?}")
    };
    ch.check_merchant(&p.merchant, Some(&s1)).unwrap();
    for wrong in [Some(&s2), None] {
        assert_eq!(
            ch.check_merchant(&p.merchant, wrong).unwrap_err().kind,
            NotifyErrorKind::Mismatch
        );
    }
    // The store's merchant number with another terminal.
    v["term_no"] = json!("T0000009");
    let n = ch
        .parse_notification(&signed(&v.to_string(), &keys().notify))
        .unwrap();
    let VerifiedNotification::Payment(p) = &n else {
        panic!()
    };
    assert_eq!(
        ch.check_merchant(&p.merchant, Some(&s1)).unwrap_err().kind,
        NotifyErrorKind::Mismatch
    );
}
