//! Payment notifications: verifiable, retried on the schedule, stopped by
//! the acknowledgement.

use std::time::Duration;

use cashdesk_crypto::wxv2::{self, WxSignType};
use serde_json::json;

use crate::*;

#[tokio::test]
async fn v2_notification_verifies_and_retries_stop_after_ack() {
    let app = spawn_with(vec![Duration::from_millis(150); 6], None).await;
    let m = app.open_merchant("HMAC-SHA256").await;
    let rx = receiver(2, false).await;
    let no = out_trade_no();
    let f = v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m.base_url()),
        &m,
        unified("JSAPI", &no, &rx.url),
        WxSignType::HmacSha256,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS");
    let (status, paid) = app.pay(&no, "SUCCESS").await;
    assert_eq!(status, 200, "{paid}");

    // Refused twice, acknowledged the third time, then silence.
    let got = rx.wait_for(3, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.count(), 3);
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(140),
        "retries follow the schedule"
    );

    for r in &got {
        assert_eq!(
            r.body, got[0].body,
            "every attempt carries the same notification"
        );
    }
    let n = cashdesk_sandbox::xml::parse(&got[0].body).unwrap();
    // sign_type is absent: the receiver uses the order's sign type.
    assert!(!n.contains_key("sign_type"));
    assert!(wxv2::verify(&n, m.api_key(), WxSignType::HmacSha256));
    assert!(!wxv2::verify(&n, m.api_key(), WxSignType::Md5));
    assert_eq!(n["return_code"], "SUCCESS");
    assert_eq!(n["result_code"], "SUCCESS");
    assert_eq!(n["appid"], m.app_id());
    assert_eq!(n["mch_id"], m.mch_id());
    assert_eq!(n["out_trade_no"], no);
    assert_eq!(n["total_fee"], "101");
    assert_eq!(n["cash_fee"], "101");
    assert_eq!(n["transaction_id"], paid["transactionId"].as_str().unwrap());
    assert_eq!(n["openid"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    assert_eq!(n["trade_type"], "JSAPI");
    assert_eq!(n["time_end"].len(), 14);

    // Paying again is refused and sends nothing.
    let (status, _) = app.pay(&no, "SUCCESS").await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn v2_notification_gives_up_after_the_schedule() {
    let app = spawn_with(vec![Duration::from_millis(50); 3], None).await;
    let m = app.open_merchant("MD5").await;
    let rx = receiver(usize::MAX, false).await;
    let no = out_trade_no();
    v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m.base_url()),
        &m,
        unified("APP", &no, &rx.url),
        WxSignType::Md5,
    )
    .await;
    app.pay(&no, "SUCCESS").await;
    rx.wait_for(4, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.count(), 4, "one attempt plus one per schedule entry");
}

#[tokio::test]
async fn v2_failed_payment_notification() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let rx = receiver(0, false).await;
    let no = out_trade_no();
    v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m.base_url()),
        &m,
        unified("NATIVE", &no, &rx.url),
        WxSignType::Md5,
    )
    .await;
    app.pay(&no, "FAIL").await;
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let n = cashdesk_sandbox::xml::parse(&got[0].body).unwrap();
    assert!(wxv2::verify(&n, m.api_key(), WxSignType::Md5));
    assert_eq!(n["result_code"], "FAIL");
    assert!(!n.contains_key("transaction_id"));
}

#[tokio::test]
async fn v3_notification_is_signed_encrypted_and_retried_until_acked() {
    let app = spawn_with(vec![Duration::from_millis(100); 4], None).await;
    let m = app.open_merchant("MD5").await;
    let rx = receiver(1, true).await;
    let no = out_trade_no();
    let r = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "POST",
        "/v3/pay/transactions/native",
        Some(json!({
            "appid": m.app_id(), "mchid": m.mch_id(), "description": "v3 test", "out_trade_no": no,
            "notify_url": rx.url, "amount": {"total": 888}, "attach": "a=1",
        })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (status, paid) = app.pay(&no, "SUCCESS").await;
    assert_eq!(status, 200);

    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count(), 2, "acknowledged on the second attempt");
    for r in &got {
        // Headers are signed afresh for each attempt, over the raw body.
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in r.headers.iter() {
            headers.insert(k.clone(), v.clone());
        }
        verify_v3_signature(&m, &headers, &r.body);
    }
    assert_ne!(
        got[0].headers["Wechatpay-Nonce"],
        got[1].headers["Wechatpay-Nonce"]
    );
    let n: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(n["event_type"], "TRANSACTION.SUCCESS");
    assert_eq!(n["resource_type"], "encrypt-resource");
    assert_eq!(n["resource"]["original_type"], "transaction");
    let t = decrypt_resource(&m, &n);
    assert_eq!(t["out_trade_no"], no.as_str());
    assert_eq!(t["mchid"], m.mch_id());
    assert_eq!(t["appid"], m.app_id());
    assert_eq!(t["trade_state"], "SUCCESS");
    assert_eq!(t["trade_type"], "NATIVE");
    assert_eq!(t["amount"]["total"], 888);
    assert_eq!(t["attach"], "a=1");
    assert_eq!(t["transaction_id"], paid["transactionId"]);
    assert!(t["success_time"].as_str().unwrap().ends_with("+08:00"));

    // The query agrees.
    let q = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "GET",
        &format!(
            "/v3/pay/transactions/id/{}?mchid={}",
            paid["transactionId"].as_str().unwrap(),
            m.mch_id()
        ),
        None,
    )
    .await;
    assert_eq!(q.json()["trade_state"], "SUCCESS");
    assert_eq!(q.json()["payer"]["openid"], t["payer"]["openid"]);

    // v3 has no failed-payment event.
    let rx2 = receiver(0, true).await;
    let no2 = out_trade_no();
    v3_call(
        &app.http,
        m.base_url(),
        &m,
        "POST",
        "/v3/pay/transactions/app",
        Some(json!({"appid": m.app_id(), "mchid": m.mch_id(), "description": "x", "out_trade_no": no2, "notify_url": rx2.url, "amount": {"total": 1}})),
    )
    .await;
    app.pay(&no2, "FAIL").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx2.count(), 0);
}
