//! API v3: signed Authorization, signed responses, the error shapes.

use serde_json::json;

use crate::*;

fn jsapi_body(m: &Merchant, no: &str, notify_url: &str) -> Value {
    json!({
        "appid": m.app_id(),
        "mchid": m.mch_id(),
        "description": "sandbox test",
        "out_trade_no": no,
        "notify_url": notify_url,
        "amount": {"total": 250, "currency": "CNY"},
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
    })
}

#[tokio::test]
async fn jsapi_with_signed_authorization_and_verified_response() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let base = m.base_url().to_owned();
    let no = out_trade_no();
    let r = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(jsapi_body(&m, &no, "http://127.0.0.1:9/n")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let prepay = r.json()["prepay_id"].as_str().unwrap().to_owned();
    assert!(prepay.starts_with("wx"));
    assert_eq!(
        r.headers["Wechatpay-Signature-Type"],
        "WECHATPAY2-SHA256-RSA2048"
    );

    // Same parameters → same prepay; different → OUT_TRADE_NO_USED.
    let again = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(jsapi_body(&m, &no, "http://127.0.0.1:9/n")),
    )
    .await;
    assert_eq!(again.json()["prepay_id"], prepay.as_str());
    let mut changed = jsapi_body(&m, &no, "http://127.0.0.1:9/n");
    changed["amount"]["total"] = json!(251);
    let r = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(changed),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("OUT_TRADE_NO_USED"))
    );

    // Query (the query string is part of the signed message).
    let q = v3_call(
        &app.http,
        &base,
        &m,
        "GET",
        &format!(
            "/v3/pay/transactions/out-trade-no/{no}?mchid={}",
            m.mch_id()
        ),
        None,
    )
    .await;
    assert_eq!(q.status, 200, "{}", q.body);
    assert_eq!(q.json()["trade_state"], "NOTPAY");
    assert_eq!(q.json()["amount"]["total"], 250);

    // The same call works on the HTTPS listener, trusting only the sandbox CA.
    let q = v3_call(
        &m.tls_client(false),
        m.tls_base_url(),
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

    // Close → 204 with a signed empty body; then the query says CLOSED.
    let c = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        &format!("/v3/pay/transactions/out-trade-no/{no}/close"),
        Some(json!({"mchid": m.mch_id()})),
    )
    .await;
    assert_eq!(c.status, 204);
    assert!(c.body.is_empty());
    let q = v3_call(
        &app.http,
        &base,
        &m,
        "GET",
        &format!(
            "/v3/pay/transactions/out-trade-no/{no}?mchid={}",
            m.mch_id()
        ),
        None,
    )
    .await;
    assert_eq!(q.json()["trade_state"], "CLOSED");

    let q = v3_call(
        &app.http,
        &base,
        &m,
        "GET",
        &format!(
            "/v3/pay/transactions/out-trade-no/NOSUCH0001?mchid={}",
            m.mch_id()
        ),
        None,
    )
    .await;
    assert_eq!(
        (q.status, q.json()["code"].as_str()),
        (404, Some("ORDER_NOT_EXIST"))
    );
}

#[tokio::test]
async fn native_h5_app_and_field_rules() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let base = m.base_url().to_owned();
    let mut body = jsapi_body(&m, &out_trade_no(), "http://127.0.0.1:9/n");
    body.as_object_mut().unwrap().remove("payer");
    let r = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/native",
        Some(body.clone()),
    )
    .await;
    assert!(
        r.json()["code_url"]
            .as_str()
            .unwrap()
            .starts_with(&app.origin)
    );

    body["out_trade_no"] = json!(out_trade_no());
    let r = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/app",
        Some(body.clone()),
    )
    .await;
    assert!(r.json()["prepay_id"].as_str().unwrap().starts_with("wx"));

    body["out_trade_no"] = json!(out_trade_no());
    let r = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/h5",
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("PARAM_ERROR")),
        "h5 needs scene_info"
    );
    body["scene_info"] = json!({"payer_client_ip": "127.0.0.1", "h5_info": {"type": "Wap"}});
    let r = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/h5",
        Some(body.clone()),
    )
    .await;
    assert!(
        r.json()["h5_url"]
            .as_str()
            .unwrap()
            .contains("/sandbox/wechat/pay/wx")
    );

    body["out_trade_no"] = json!(out_trade_no());
    let r = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("PARAM_ERROR")),
        "jsapi needs payer.openid"
    );

    let mut bad = jsapi_body(&m, &out_trade_no(), "http://127.0.0.1:9/n");
    bad["amount"]["total"] = json!(0);
    let r = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(bad),
    )
    .await;
    assert_eq!(r.status, 400);
    let mut bad = jsapi_body(&m, "short", "http://127.0.0.1:9/n");
    bad["out_trade_no"] = json!("abc");
    let r = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(bad),
    )
    .await;
    assert_eq!(r.status, 400);
    let mut bad = jsapi_body(&m, &out_trade_no(), "http://127.0.0.1:9/n");
    bad["appid"] = json!("wx0000000000000000");
    let r = v3_call(
        &app.http,
        &base,
        &m,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(bad),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("APPID_MCHID_NOT_MATCH"))
    );
}

#[tokio::test]
async fn bad_authorization_is_refused_with_a_signed_401() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let other = app.open_merchant("MD5").await;
    let path = "/sandbox/wechat/v3/pay/transactions/jsapi";
    let url = reqwest::Url::parse(&format!("{}{path}", app.origin)).unwrap();
    let body = jsapi_body(&m, &out_trade_no(), "http://127.0.0.1:9/n").to_string();
    let now = chrono::Utc::now().timestamp();

    // Body changed after signing.
    let auth = v3_authorization(&m, "POST", path, &body, now);
    let r = v3_send(
        &app.http,
        url.clone(),
        &m,
        "POST",
        &body.replace("250", "1"),
        &auth,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("SIGN_ERROR"))
    );
    // Signed for another path (the same path without the mount prefix
    // verifies: see exposure::v3_signatures_over_the_full_or_the_canonical_path_verify).
    let auth = v3_authorization(
        &m,
        "POST",
        "/sandbox/wechat/v3/pay/transactions/native",
        &body,
        now,
    );
    let r = v3_send(&app.http, url.clone(), &m, "POST", &body, &auth).await;
    assert_eq!(r.status, 401);
    // Stale timestamp.
    let auth = v3_authorization(&m, "POST", path, &body, now - 600);
    let r = v3_send(&app.http, url.clone(), &m, "POST", &body, &auth).await;
    assert_eq!(r.status, 401);
    // Another merchant's key under this mchid / serial.
    let auth =
        v3_authorization(&other, "POST", path, &body, now).replace(other.mch_id(), m.mch_id());
    let r = v3_send(&app.http, url.clone(), &m, "POST", &body, &auth).await;
    assert_eq!(r.status, 401);
    // Wrong scheme, missing header.
    let r = v3_send(&app.http, url.clone(), &m, "POST", &body, "Bearer x").await;
    assert_eq!(r.status, 401);
    // The good one still works.
    let auth = v3_authorization(&m, "POST", path, &body, now);
    let r = v3_send(&app.http, url, &m, "POST", &body, &auth).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn platform_certificates_download_decrypts() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let r = v3_call(&app.http, m.base_url(), &m, "GET", "/v3/certificates", None).await;
    assert_eq!(r.status, 200);
    let item = &r.json()["data"][0];
    assert_eq!(item["serial_no"], m.platform_serial());
    let mut wrapped = json!({"resource": item["encrypt_certificate"].clone()});
    wrapped["resource"]["algorithm"] = json!("AEAD_AES_256_GCM");
    let cert_pem = {
        use base64::Engine as _;
        let r = &wrapped["resource"];
        let ct = base64::engine::general_purpose::STANDARD
            .decode(r["ciphertext"].as_str().unwrap())
            .unwrap();
        String::from_utf8(
            cashdesk_crypto::aead::aes_gcm_decrypt(
                m.api_v3_key().as_bytes(),
                r["nonce"].as_str().unwrap().as_bytes(),
                b"certificate",
                &ct,
            )
            .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        cert_pem,
        m.creds["credentialsV3"]["platformCertPem"]
            .as_str()
            .unwrap()
    );
}
