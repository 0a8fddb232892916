//! Refunds: v2 over mutual TLS, v3 plain; partial, excess, notifications.

use std::time::Duration;

use cashdesk_crypto::wxv2::{self, WxSignType};
use serde_json::json;

use crate::*;

async fn paid_v2_order(app: &TestApp, m: &Merchant, st: WxSignType) -> (String, String) {
    let no = out_trade_no();
    let f = v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m.base_url()),
        m,
        unified("APP", &no, "http://127.0.0.1:9/n"),
        st,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS");
    let (_, paid) = app.pay(&no, "SUCCESS").await;
    (no, paid["transactionId"].as_str().unwrap().to_owned())
}

fn refund_params(
    no: &str,
    out_refund_no: &str,
    fee: &str,
    notify_url: &str,
) -> BTreeMap<String, String> {
    params(&[
        ("out_trade_no", no),
        ("out_refund_no", out_refund_no),
        ("total_fee", "101"),
        ("refund_fee", fee),
        ("notify_url", notify_url),
    ])
}

#[tokio::test]
async fn v2_refund_over_mutual_tls() {
    let app = spawn().await;
    let m = app.open_merchant("HMAC-SHA256").await;
    let other = app.open_merchant("HMAC-SHA256").await;
    let st = WxSignType::HmacSha256;
    let rx = receiver(0, false).await;
    let (no, transaction_id) = paid_v2_order(&app, &m, st).await;
    let tls_url = format!("{}/secapi/pay/refund", m.tls_base_url());

    // Without a client certificate: refused, nothing refunded.
    let f = v2_call(
        &m.tls_client(false),
        &tls_url,
        &m,
        refund_params(&no, "R1", "30", &rx.url),
        st,
    )
    .await;
    assert_eq!(f["return_code"], "FAIL");
    assert!(f["return_msg"].contains("证书"), "{f:?}");
    // On the plain-HTTP mount there is no client certificate either.
    let f = v2_call(
        &app.http,
        &format!("{}/secapi/pay/refund", m.base_url()),
        &m,
        refund_params(&no, "R1", "30", &rx.url),
        st,
    )
    .await;
    assert_eq!(f["return_code"], "FAIL");
    // Another merchant's certificate (valid, same CA) does not do.
    let f = v2_call(
        &other.tls_client(true),
        &tls_url,
        &m,
        refund_params(&no, "R1", "30", &rx.url),
        st,
    )
    .await;
    assert_eq!(f["return_code"], "FAIL");
    // A client that does not trust the sandbox CA cannot even connect.
    let untrusting = reqwest::Client::builder().use_rustls_tls().build().unwrap();
    assert!(
        untrusting
            .post(&tls_url)
            .body("<xml></xml>")
            .send()
            .await
            .is_err()
    );

    let client = m.tls_client(true);
    let f = v2_call(
        &client,
        &tls_url,
        &m,
        refund_params(&no, "R1", "30", &rx.url),
        st,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS", "{f:?}");
    assert_eq!(f["refund_fee"], "30");
    assert_eq!(f["total_fee"], "101");
    assert_eq!(f["transaction_id"], transaction_id);
    let refund_id = f["refund_id"].clone();
    // Idempotent by out_refund_no; different amount under it is refused.
    let again = v2_call(
        &client,
        &tls_url,
        &m,
        refund_params(&no, "R1", "30", &rx.url),
        st,
    )
    .await;
    assert_eq!(again["refund_id"], refund_id);
    let f = v2_call(
        &client,
        &tls_url,
        &m,
        refund_params(&no, "R1", "31", &rx.url),
        st,
    )
    .await;
    assert_eq!(f["err_code"], "INVALID_REQUEST");
    // More than what is left → NOTENOUGH; exactly what is left → fine.
    let f = v2_call(
        &client,
        &tls_url,
        &m,
        refund_params(&no, "R2", "72", &rx.url),
        st,
    )
    .await;
    assert_eq!(f["err_code"], "NOTENOUGH", "{f:?}");
    let f = v2_call(
        &client,
        &tls_url,
        &m,
        refund_params(&no, "R2", "71", &rx.url),
        st,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS", "{f:?}");
    let f = v2_call(
        &client,
        &tls_url,
        &m,
        refund_params(&no, "R3", "1", &rx.url),
        st,
    )
    .await;
    assert_eq!(f["err_code"], "NOTENOUGH");
    // Unpaid or unknown orders.
    let f = v2_call(
        &client,
        &tls_url,
        &m,
        refund_params("nosuchorder", "R4", "1", &rx.url),
        st,
    )
    .await;
    assert_eq!(f["err_code"], "ORDERNOTEXIST");

    // Two refund notifications, req_info decrypts with md5(key).
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let mut refunded = Vec::new();
    for r in &got {
        let n = cashdesk_sandbox::xml::parse(&r.body).unwrap();
        assert_eq!(n["return_code"], "SUCCESS");
        assert_eq!(n["mch_id"], m.mch_id());
        assert_eq!(n["appid"], m.app_id());
        assert!(!n.contains_key("sign"));
        let inner = wxv2::decrypt_req_info(m.api_key(), &n["req_info"]).unwrap();
        assert!(inner.starts_with("<root>"));
        let i = cashdesk_sandbox::xml::parse(&inner).unwrap();
        assert_eq!(i["out_trade_no"], no);
        assert_eq!(i["refund_status"], "SUCCESS");
        assert_eq!(i["total_fee"], "101");
        assert!(i.contains_key("refund_recv_accout"));
        assert_eq!(i["success_time"].len(), 19);
        refunded.push((i["out_refund_no"].clone(), i["refund_fee"].clone()));
    }
    refunded.sort();
    assert_eq!(
        refunded,
        [
            ("R1".to_owned(), "30".to_owned()),
            ("R2".to_owned(), "71".to_owned())
        ]
    );

    // refundquery (plain HTTP is fine for it) lists both.
    let q = v2_call(
        &app.http,
        &format!("{}/pay/refundquery", m.base_url()),
        &m,
        params(&[("out_trade_no", &no)]),
        st,
    )
    .await;
    assert_eq!(q["result_code"], "SUCCESS", "{q:?}");
    assert_eq!(q["refund_count"], "2");
    assert_eq!(q["refund_fee"], "101");
    assert_eq!(q["refund_status_0"], "SUCCESS");
    let q = v2_call(
        &app.http,
        &format!("{}/pay/refundquery", m.base_url()),
        &m,
        params(&[("out_refund_no", "R2")]),
        st,
    )
    .await;
    assert_eq!(
        (q["refund_count"].as_str(), q["refund_fee_0"].as_str()),
        ("1", "71")
    );
    let q = v2_call(
        &app.http,
        &format!("{}/pay/refundquery", m.base_url()),
        &m,
        params(&[("out_refund_no", "nope")]),
        st,
    )
    .await;
    assert_eq!(q["err_code"], "REFUNDNOTEXIST");
    let q = v2_call(
        &app.http,
        &format!("{}/pay/orderquery", m.base_url()),
        &m,
        params(&[("out_trade_no", &no)]),
        st,
    )
    .await;
    assert_eq!(q["trade_state"], "REFUND");
}

#[tokio::test]
async fn v3_refunds_partial_excess_and_notification() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let rx = receiver(0, true).await;
    let no = out_trade_no();
    let r = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "POST",
        "/v3/pay/transactions/app",
        Some(json!({"appid": m.app_id(), "mchid": m.mch_id(), "description": "x", "out_trade_no": no, "notify_url": "http://127.0.0.1:9/n", "amount": {"total": 500, "currency": "CNY"}})),
    )
    .await;
    assert_eq!(r.status, 200);

    let refund = |out_refund_no: &str, amount: i64| {
        json!({"out_trade_no": no, "out_refund_no": out_refund_no, "reason": "test", "notify_url": rx.url,
               "amount": {"refund": amount, "total": 500, "currency": "CNY"}})
    };
    // Not paid yet.
    let r = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(refund("V1", 100)),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    app.pay(&no, "SUCCESS").await;

    let r = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(refund("V1", 100)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "PROCESSING");
    assert_eq!(r.json()["amount"]["refund"], 100);
    let r = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(refund("V2", 401)),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("NOT_ENOUGH"))
    );
    let r = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(refund("V2", 400)),
    )
    .await;
    assert_eq!(r.status, 200);

    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let mut seen = Vec::new();
    for g in &got {
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in g.headers.iter() {
            headers.insert(k.clone(), v.clone());
        }
        verify_v3_signature(&m, &headers, &g.body);
        let n: Value = serde_json::from_str(&g.body).unwrap();
        assert_eq!(n["event_type"], "REFUND.SUCCESS");
        let plain = decrypt_resource(&m, &n);
        assert_eq!(plain["refund_status"], "SUCCESS");
        assert_eq!(plain["out_trade_no"], no.as_str());
        seen.push((
            plain["out_refund_no"].as_str().unwrap().to_owned(),
            plain["amount"]["refund"].as_i64().unwrap(),
        ));
    }
    seen.sort();
    assert_eq!(seen, [("V1".to_owned(), 100), ("V2".to_owned(), 400)]);

    let q = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "GET",
        "/v3/refund/domestic/refunds/V1",
        None,
    )
    .await;
    assert_eq!(q.status, 200);
    assert_eq!(q.json()["status"], "SUCCESS");
    assert!(q.json()["success_time"].is_string());
    let q = v3_call(
        &app.http,
        m.base_url(),
        &m,
        "GET",
        "/v3/refund/domestic/refunds/NOPE",
        None,
    )
    .await;
    assert_eq!(
        (q.status, q.json()["code"].as_str()),
        (404, Some("RESOURCE_NOT_EXISTS"))
    );
}
