//! Fault injection: failing calls and misbehaving notifications.

use std::time::Duration;

use cashdesk_crypto::wxv2::{self, WxSignType};
use serde_json::json;

use crate::*;

#[tokio::test]
async fn failing_calls_change_nothing() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let url = format!("{}/pay/unifiedorder", m.base_url());
    let no = out_trade_no();

    // SYSTEMERROR twice (only for this merchant and path), then normal.
    app.fault(json!({"channelType": "wx-pay", "fault": "SYSTEMERROR", "count": 2, "mchId": m.mch_id(), "pathContains": "unifiedorder"}))
        .await;
    for _ in 0..2 {
        let f = v2_call(
            &app.http,
            &url,
            &m,
            unified("APP", &no, "http://127.0.0.1:9/n"),
            WxSignType::Md5,
        )
        .await;
        assert_eq!(f["err_code"], "SYSTEMERROR", "{f:?}");
        let q = v2_call(
            &app.http,
            &format!("{}/pay/orderquery", m.base_url()),
            &m,
            params(&[("out_trade_no", &no)]),
            WxSignType::Md5,
        )
        .await;
        assert_eq!(
            q["err_code"], "ORDERNOTEXIST",
            "a failed call creates nothing"
        );
    }
    let f = v2_call(
        &app.http,
        &url,
        &m,
        unified("APP", &no, "http://127.0.0.1:9/n"),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS");

    // v3 SYSTEMERROR is a signed 500 SYSTEM_ERROR.
    app.fault(json!({"channelType": "wx-pay", "fault": "SYSTEMERROR"}))
        .await;
    let q = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "GET",
        &format!(
            "/v3/pay/transactions/out-trade-no/{no}?mchid={}",
            m.mch_id()
        ),
        None,
    )
    .await;
    assert_eq!(
        (q.status, q.json()["code"].as_str()),
        (500, Some("SYSTEM_ERROR"))
    );

    // HTTP_500: a bare 500, no signature.
    app.fault(json!({"channelType": "wx-pay", "fault": "HTTP_500"}))
        .await;
    let resp = app
        .http
        .get(format!(
            "{}/v3/pay/transactions/out-trade-no/{no}?mchid={}",
            m.base_url(),
            m.mch_id()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.headers().get("Wechatpay-Signature").is_none());

    // TIMEOUT: the call hangs past the client's patience.
    app.fault(json!({"channelType": "wx-pay", "fault": "TIMEOUT", "delayMs": 3000}))
        .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let err = impatient
        .post(&url)
        .body(to_xml(&unified(
            "APP",
            &out_trade_no(),
            "http://127.0.0.1:9/n",
        )))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());

    // Bad fault requests are refused; faults can be listed and cleared.
    let resp = app
        .http
        .post(format!("{}/sandbox/api/faults", app.origin))
        .json(&json!({"channelType": "wx-pay", "fault": "EXPLODE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    app.fault(json!({"channelType": "wx-pay", "fault": "HTTP_500", "count": 5}))
        .await;
    let list: Value = app
        .http
        .get(format!("{}/sandbox/api/faults", app.origin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["faults"].as_array().unwrap().len(), 1);
    app.http
        .delete(format!("{}/sandbox/api/faults", app.origin))
        .send()
        .await
        .unwrap();
    let q = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "GET",
        &format!(
            "/v3/pay/transactions/out-trade-no/{no}?mchid={}",
            m.mch_id()
        ),
        None,
    )
    .await;
    assert_eq!(q.status, 200);
}

async fn v2_order(app: &TestApp, m: &Merchant, notify_url: &str) -> String {
    let no = out_trade_no();
    let f = v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m.base_url()),
        m,
        unified("APP", &no, notify_url),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS");
    no
}

#[tokio::test]
async fn notification_faults() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;

    // Duplicate: N copies at once.
    let rx = receiver(0, false).await;
    let no = v2_order(&app, &m, &rx.url).await;
    app.fault(json!({"channelType": "wx-pay", "fault": "DUPLICATE_NOTIFY", "copies": 5}))
        .await;
    app.pay(&no, "SUCCESS").await;
    let got = rx.wait_for(5, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.count(), 5);
    assert!(got.iter().all(|g| g.body == got[0].body));

    // Drop: nothing arrives, the log says why.
    let rx = receiver(0, false).await;
    let no = v2_order(&app, &m, &rx.url).await;
    app.fault(json!({"channelType": "wx-pay", "fault": "DROP_NOTIFY", "mchId": m.mch_id()}))
        .await;
    app.pay(&no, "SUCCESS").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count(), 0);
    let log: Value = app
        .http
        .get(format!("{}/sandbox/api/requests?kind=notify", app.origin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["result"] == "DROPPED")
    );

    // Tamper amount: validly signed, but total_fee is not the order's.
    let rx = receiver(0, false).await;
    let no = v2_order(&app, &m, &rx.url).await;
    app.fault(json!({"channelType": "wx-pay", "fault": "TAMPER_AMOUNT"}))
        .await;
    app.pay(&no, "SUCCESS").await;
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let n = cashdesk_sandbox::xml::parse(&got[0].body).unwrap();
    assert!(wxv2::verify(&n, m.api_key(), WxSignType::Md5));
    assert_eq!(n["total_fee"], "102");

    // Tamper signature: does not verify.
    let rx = receiver(0, false).await;
    let no = v2_order(&app, &m, &rx.url).await;
    app.fault(json!({"channelType": "wx-pay", "fault": "TAMPER_SIGNATURE"}))
        .await;
    app.pay(&no, "SUCCESS").await;
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let n = cashdesk_sandbox::xml::parse(&got[0].body).unwrap();
    assert!(!wxv2::verify(&n, m.api_key(), WxSignType::Md5));
    assert_eq!(n["total_fee"], "101");

    // Delay: the first attempt waits.
    let rx = receiver(0, false).await;
    let no = v2_order(&app, &m, &rx.url).await;
    app.fault(json!({"channelType": "wx-pay", "fault": "DELAY_NOTIFY", "delayMs": 800}))
        .await;
    let started = std::time::Instant::now();
    app.pay(&no, "SUCCESS").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.count(), 0);
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert!(got[0].at - started >= Duration::from_millis(750));
}

#[tokio::test]
async fn v3_tampered_signature_and_amount() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let rx = receiver(0, true).await;
    for fault in ["TAMPER_SIGNATURE", "TAMPER_AMOUNT"] {
        let no = out_trade_no();
        v3_call(
            &app.http,
            m.base_url(),
            &m,
            "POST",
            "/v3/pay/transactions/app",
            Some(json!({"appid": m.app_id(), "mchid": m.mch_id(), "description": "x", "out_trade_no": no, "notify_url": rx.url, "amount": {"total": 10}})),
        )
        .await;
        app.fault(json!({"channelType": "wx-pay", "fault": fault}))
            .await;
        app.pay(&no, "SUCCESS").await;
    }
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let platform = m.platform_key();
    let verifies = |g: &Received| {
        let h = |n: &str| g.headers[n].to_str().unwrap().to_owned();
        let msg = format!(
            "{}\n{}\n{}\n",
            h("Wechatpay-Timestamp"),
            h("Wechatpay-Nonce"),
            g.body
        );
        platform
            .verify_sha256_base64(msg.as_bytes(), &h("Wechatpay-Signature"))
            .is_ok()
    };
    let (tampered_sig, tampered_amount): (Vec<_>, Vec<_>) = got.iter().partition(|g| !verifies(g));
    assert_eq!((tampered_sig.len(), tampered_amount.len()), (1, 1));
    let t = decrypt_resource(&m, &serde_json::from_str(&tampered_amount[0].body).unwrap());
    assert_eq!(t["amount"]["total"], 11);
}
