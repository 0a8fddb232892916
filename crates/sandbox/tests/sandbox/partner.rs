//! WeChat Pay service providers (服务商) on the sandbox: opened through the
//! test API with their sub-merchants, the v2 `sub_mch_id` fields and the v3
//! partner endpoints, the rules that tie a sub-merchant to its service
//! provider, and notifications of partner orders (signed with the service
//! provider's keys, naming the sub-merchant).

use std::time::Duration;

use cashdesk_crypto::wxv2::{self, WxSignType};
use serde_json::{Value, json};

use crate::*;

/// A service provider and one of its sub-merchants (`{mchId, spMchId,
/// subAppId, identity}`).
async fn open_sp(app: &TestApp) -> (Merchant, Value) {
    let resp = app
        .http
        .post(format!("{}/sandbox/api/merchants", app.origin))
        .json(&json!({"channelType": "wx-pay", "serviceProvider": true, "signType": "HMAC-SHA256"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let sp = Merchant {
        creds: resp.json().await.unwrap(),
    };
    assert_eq!(sp.creds["serviceProvider"], true);
    let sub = open_sub(app, sp.mch_id()).await;
    (sp, sub)
}

async fn open_sub(app: &TestApp, sp_mch_id: &str) -> Value {
    let resp = app
        .http
        .post(format!("{}/sandbox/api/merchants", app.origin))
        .json(&json!({"channelType": "wx-pay", "spMchId": sp_mch_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let sub: Value = resp.json().await.unwrap();
    assert_eq!(sub["spMchId"], sp_mch_id);
    assert_eq!(
        sub["identity"],
        json!({"subMchId": sub["mchId"], "subAppId": sub["subAppId"]}),
        "pasteable as a cashdesk store identity"
    );
    sub
}

fn g<'a>(m: &'a std::collections::BTreeMap<String, String>, k: &str) -> Option<&'a str> {
    m.get(k).map(String::as_str)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"))
}

#[tokio::test]
async fn opening_sub_merchants_needs_a_service_provider() {
    let app = spawn().await;
    let direct = app.open_merchant("MD5").await;
    for (body, status) in [
        (
            json!({"channelType": "wx-pay", "spMchId": direct.mch_id()}),
            404,
        ),
        (
            json!({"channelType": "wx-pay", "spMchId": "1999999999"}),
            404,
        ),
        (
            json!({"channelType": "lakala", "spMchId": direct.mch_id()}),
            400,
        ),
        (
            json!({"channelType": "ali-pay", "serviceProvider": true}),
            400,
        ),
        (
            json!({"channelType": "wx-pay", "spMchId": direct.mch_id(), "signType": "MD5"}),
            400,
        ),
    ] {
        let resp = app
            .http
            .post(format!("{}/sandbox/api/merchants", app.origin))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{body}");
    }
    // Sub-merchants survive a restart, like merchants.
    let (sp, sub) = open_sp(&app).await;
    let app2 = spawn_with(vec![Duration::from_millis(50)], Some(app.dir)).await;
    let no = out_trade_no();
    let mut p = unified("NATIVE", &no, "http://127.0.0.1:9/n");
    p.insert("sub_mch_id".into(), s(&sub, "mchId").into());
    let r = v2_call(
        &app2.http,
        &format!(
            "{}/pay/unifiedorder",
            sp.base_url().replace(&app.origin, &app2.origin)
        ),
        &sp,
        p,
        WxSignType::HmacSha256,
    )
    .await;
    assert_eq!(r["result_code"], "SUCCESS", "{r:?}");
}

#[tokio::test]
async fn v2_partner_payment_query_refund_and_notifications() {
    let app = spawn().await;
    let (sp, sub) = open_sp(&app).await;
    let sub_mch = s(&sub, "mchId");
    let sub_app = s(&sub, "subAppId");
    let rx = receiver(0, false).await;
    let url = format!("{}/pay/unifiedorder", sp.base_url());
    let st = WxSignType::HmacSha256;
    let no = out_trade_no();

    // A service provider must name its sub-merchant.
    let r = v2_call(&app.http, &url, &sp, unified("NATIVE", &no, &rx.url), st).await;
    assert_eq!(
        (g(&r, "result_code"), g(&r, "err_code")),
        (Some("FAIL"), Some("PARAM_ERROR")),
        "{r:?}"
    );
    // Someone else's sub-merchant, or the wrong AppID, is refused.
    let (other_sp, other_sub) = open_sp(&app).await;
    let _ = other_sp;
    let mut p = unified("NATIVE", &no, &rx.url);
    p.insert("sub_mch_id".into(), s(&other_sub, "mchId").into());
    let r = v2_call(&app.http, &url, &sp, p, st).await;
    assert_eq!(r["err_code"], "NOAUTH", "{r:?}");
    let mut p = unified("NATIVE", &no, &rx.url);
    p.insert("sub_mch_id".into(), sub_mch.into());
    p.insert("sub_appid".into(), s(&other_sub, "subAppId").into());
    let r = v2_call(&app.http, &url, &sp, p, st).await;
    assert_eq!(r["err_code"], "APPID_MCHID_NOT_MATCH", "{r:?}");
    // A direct merchant cannot name one.
    let direct = app.open_merchant("MD5").await;
    let mut p = unified("NATIVE", &no, &rx.url);
    p.insert("sub_mch_id".into(), sub_mch.into());
    let r = v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", direct.base_url()),
        &direct,
        p,
        WxSignType::Md5,
    )
    .await;
    assert_eq!(r["err_code"], "NOAUTH", "{r:?}");

    // A mini-program payment of the sub-merchant's own AppID.
    let mut p = unified("JSAPI", &no, &rx.url);
    p.remove("openid");
    p.insert("sub_openid".into(), "oSubBuyer0001".into());
    p.insert("sub_mch_id".into(), sub_mch.into());
    p.insert("sub_appid".into(), sub_app.into());
    p.insert("attach".into(), "cashdesk-store:S1".into());
    let r = v2_call(&app.http, &url, &sp, p.clone(), st).await;
    assert_eq!(r["result_code"], "SUCCESS", "{r:?}");
    assert_eq!(
        (g(&r, "mch_id"), g(&r, "sub_mch_id"), g(&r, "sub_appid")),
        (Some(sp.mch_id()), Some(sub_mch), Some(sub_app)),
        "the answer names the sub-merchant"
    );
    // sub_openid needs sub_appid.
    let mut bad = p.clone();
    bad.remove("sub_appid");
    let r = v2_call(&app.http, &url, &sp, bad, st).await;
    assert_eq!(r["err_code"], "PARAM_ERROR", "{r:?}");

    // The request log files the call under the sub-merchant.
    let log: Value = app
        .http
        .get(format!(
            "{}/sandbox/api/requests?mchId={sub_mch}&kind=api",
            app.origin
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log["requests"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["result"] == "SUCCESS"
            && e["requestBody"]
                .as_str()
                .is_some_and(|b| b.contains(&format!("<sub_mch_id><![CDATA[{sub_mch}]]>")))),
        "{log}"
    );

    // Paid: the notification is the service provider's, naming the sub-merchant.
    let (status, paid) = app.pay(&no, "SUCCESS").await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(
        paid["mchId"], sub_mch,
        "the order is in the sub-merchant's book"
    );
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let n = cashdesk_sandbox::xml::parse(&got[0].body).unwrap();
    assert!(
        wxv2::verify(&n, sp.api_key(), st),
        "signed with the service provider's key"
    );
    assert_eq!(
        (
            g(&n, "appid"),
            g(&n, "mch_id"),
            g(&n, "sub_mch_id"),
            g(&n, "sub_appid"),
            g(&n, "sub_openid"),
            g(&n, "attach"),
        ),
        (
            Some(sp.app_id()),
            Some(sp.mch_id()),
            Some(sub_mch),
            Some(sub_app),
            Some("oSubBuyer0001"),
            Some("cashdesk-store:S1")
        )
    );

    // Query names the sub-merchant; without it the order is not found
    // (and a service provider has no book of its own).
    let q = params(&[("out_trade_no", &no), ("sub_mch_id", sub_mch)]);
    let r = v2_call(
        &app.http,
        &format!("{}/pay/orderquery", sp.base_url()),
        &sp,
        q,
        st,
    )
    .await;
    assert_eq!(
        (g(&r, "trade_state"), g(&r, "sub_openid")),
        (Some("SUCCESS"), Some("oSubBuyer0001"))
    );

    // Refund over mutual TLS with the service provider's certificate.
    let refund_no = format!("R{no}");
    let rp = params(&[
        ("out_trade_no", &no),
        ("out_refund_no", &refund_no),
        ("total_fee", "101"),
        ("refund_fee", "40"),
        ("sub_mch_id", sub_mch),
        ("notify_url", &rx.url),
    ]);
    let r = v2_call(
        &sp.tls_client(true),
        &format!("{}/secapi/pay/refund", sp.tls_base_url()),
        &sp,
        rp,
        st,
    )
    .await;
    assert_eq!(r["result_code"], "SUCCESS", "{r:?}");
    assert_eq!(r["sub_mch_id"], sub_mch);
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let n = cashdesk_sandbox::xml::parse(&got[1].body).unwrap();
    assert_eq!(
        (g(&n, "mch_id"), g(&n, "sub_mch_id")),
        (Some(sp.mch_id()), Some(sub_mch))
    );
    let inner = wxv2::decrypt_req_info(sp.api_key(), &n["req_info"]).unwrap();
    assert!(inner.contains(&refund_no), "{inner}");
    let rq = params(&[("out_refund_no", &refund_no), ("sub_mch_id", sub_mch)]);
    let r = v2_call(
        &app.http,
        &format!("{}/pay/refundquery", sp.base_url()),
        &sp,
        rq,
        st,
    )
    .await;
    assert_eq!(r["refund_status_0"], "SUCCESS", "{r:?}");
}

#[tokio::test]
async fn v3_partner_endpoints_and_notifications() {
    let app = spawn().await;
    let (sp, sub) = open_sp(&app).await;
    let sub_mch = s(&sub, "mchId");
    let sub_app = s(&sub, "subAppId");
    let rx = receiver(0, true).await;
    let base = sp.base_url();
    let no = out_trade_no();
    let body = json!({
        "sp_appid": sp.app_id(), "sp_mchid": sp.mch_id(), "sub_appid": sub_app, "sub_mchid": sub_mch,
        "description": "门店消费", "out_trade_no": no, "notify_url": rx.url,
        "attach": "cashdesk-store:S1",
        "amount": {"total": 188, "currency": "CNY"}, "payer": {"sub_openid": "oSubBuyer0002"},
    });
    // The direct endpoints are not a service provider's, nor the partner
    // ones a direct merchant's.
    let direct = json!({
        "appid": sp.app_id(), "mchid": sp.mch_id(), "description": "x", "out_trade_no": no,
        "notify_url": rx.url, "amount": {"total": 188, "currency": "CNY"},
    });
    let r = v3_call(
        &app.http,
        base,
        &sp,
        "POST",
        "/v3/pay/transactions/native",
        Some(direct),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("NO_AUTH"))
    );
    let plain = app.open_merchant("MD5").await;
    let r = v3_call(
        &app.http,
        plain.base_url(),
        &plain,
        "POST",
        "/v3/pay/partner/transactions/native",
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("NO_AUTH"))
    );
    // Another service provider's sub-merchant; a wrong sub_appid.
    let (_, other_sub) = open_sp(&app).await;
    let mut foreign = body.clone();
    foreign["sub_mchid"] = other_sub["mchId"].clone();
    let r = v3_call(
        &app.http,
        base,
        &sp,
        "POST",
        "/v3/pay/partner/transactions/jsapi",
        Some(foreign),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("NO_AUTH"))
    );
    let mut wrong_app = body.clone();
    wrong_app["sub_appid"] = other_sub["subAppId"].clone();
    let r = v3_call(
        &app.http,
        base,
        &sp,
        "POST",
        "/v3/pay/partner/transactions/jsapi",
        Some(wrong_app),
    )
    .await;
    assert_eq!(r.json()["code"], "APPID_MCHID_NOT_MATCH");
    let mut no_appid = body.clone();
    no_appid.as_object_mut().unwrap().remove("sub_appid");
    let r = v3_call(
        &app.http,
        base,
        &sp,
        "POST",
        "/v3/pay/partner/transactions/jsapi",
        Some(no_appid),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("PARAM_ERROR")),
        "sub_openid needs sub_appid"
    );

    let r = v3_call(
        &app.http,
        base,
        &sp,
        "POST",
        "/v3/pay/partner/transactions/jsapi",
        Some(body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()["prepay_id"]
            .as_str()
            .is_some_and(|p| p.starts_with("wx"))
    );

    let q = format!(
        "/v3/pay/partner/transactions/out-trade-no/{no}?sp_mchid={}&sub_mchid={sub_mch}",
        sp.mch_id()
    );
    let t = v3_call(&app.http, base, &sp, "GET", &q, None).await.json();
    assert_eq!(
        (
            t["sp_appid"].as_str(),
            t["sp_mchid"].as_str(),
            t["sub_appid"].as_str(),
            t["sub_mchid"].as_str(),
            t["trade_state"].as_str()
        ),
        (
            Some(sp.app_id()),
            Some(sp.mch_id()),
            Some(sub_app),
            Some(sub_mch),
            Some("NOTPAY")
        )
    );
    assert!(t.get("mchid").is_none() && t.get("appid").is_none(), "{t}");
    let r = v3_call(
        &app.http,
        base,
        &sp,
        "GET",
        &format!(
            "/v3/pay/partner/transactions/out-trade-no/{no}?sp_mchid={}&sub_mchid={}",
            sp.mch_id(),
            s(&other_sub, "mchId")
        ),
        None,
    )
    .await;
    assert_eq!(r.status, 403, "another service provider's sub-merchant");

    let (status, _) = app.pay(&no, "SUCCESS").await;
    assert_eq!(status, 200);
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    verify_v3_signature(&sp, &reqwest_headers(&got[0].headers), &got[0].body);
    let envelope: Value = serde_json::from_str(&got[0].body).unwrap();
    let res = decrypt_resource(&sp, &envelope);
    assert_eq!(
        (
            res["sp_mchid"].as_str(),
            res["sub_mchid"].as_str(),
            res["sub_appid"].as_str(),
            res["payer"]["sub_openid"].as_str(),
            res["attach"].as_str(),
            res["trade_state"].as_str()
        ),
        (
            Some(sp.mch_id()),
            Some(sub_mch),
            Some(sub_app),
            Some("oSubBuyer0002"),
            Some("cashdesk-store:S1"),
            Some("SUCCESS")
        )
    );

    // Refunds: a service provider names the sub-merchant.
    let refund_no = format!("R{no}");
    let rb = json!({
        "out_trade_no": no, "out_refund_no": refund_no, "notify_url": rx.url,
        "amount": {"refund": 88, "total": 188, "currency": "CNY"},
    });
    let r = v3_call(
        &app.http,
        base,
        &sp,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(rb.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("PARAM_ERROR"))
    );
    let mut rb = rb;
    rb["sub_mchid"] = json!(sub_mch);
    let r = v3_call(
        &app.http,
        base,
        &sp,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(rb),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let res = decrypt_resource(&sp, &serde_json::from_str(&got[1].body).unwrap());
    assert_eq!(
        (
            res["sp_mchid"].as_str(),
            res["sub_mchid"].as_str(),
            res["refund_status"].as_str()
        ),
        (Some(sp.mch_id()), Some(sub_mch), Some("SUCCESS"))
    );
    assert!(res.get("mchid").is_none(), "{res}");
    let r = v3_call(
        &app.http,
        base,
        &sp,
        "GET",
        &format!("/v3/refund/domestic/refunds/{refund_no}?sub_mchid={sub_mch}"),
        None,
    )
    .await;
    assert_eq!(r.json()["status"], "SUCCESS", "{}", r.body);

    // Close a second partner order.
    let no2 = out_trade_no();
    let body2 = json!({
        "sp_appid": sp.app_id(), "sp_mchid": sp.mch_id(), "sub_mchid": sub_mch,
        "description": "x", "out_trade_no": no2, "notify_url": rx.url,
        "amount": {"total": 1, "currency": "CNY"},
    });
    let r = v3_call(
        &app.http,
        base,
        &sp,
        "POST",
        "/v3/pay/partner/transactions/native",
        Some(body2),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = v3_call(
        &app.http,
        base,
        &sp,
        "POST",
        &format!("/v3/pay/partner/transactions/out-trade-no/{no2}/close"),
        Some(json!({"sp_mchid": sp.mch_id(), "sub_mchid": sub_mch})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let q = format!(
        "/v3/pay/partner/transactions/out-trade-no/{no2}?sp_mchid={}&sub_mchid={sub_mch}",
        sp.mch_id()
    );
    assert_eq!(
        v3_call(&app.http, base, &sp, "GET", &q, None).await.json()["trade_state"],
        "CLOSED"
    );
}

fn reqwest_headers(h: &axum::http::HeaderMap) -> reqwest::header::HeaderMap {
    let mut out = reqwest::header::HeaderMap::new();
    for (k, v) in h {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()),
            reqwest::header::HeaderValue::from_bytes(v.as_bytes()),
        ) {
            out.insert(name, value);
        }
    }
    out
}
