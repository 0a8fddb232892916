//! API v2: every trade type, both sign types, the error shapes.

use cashdesk_crypto::wxv2::{self, WxSignType};

use crate::*;

#[tokio::test]
async fn unifiedorder_each_trade_type_and_sign_type() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let url = format!("{}/pay/unifiedorder", m.base_url());
    for sign_type in [WxSignType::Md5, WxSignType::HmacSha256] {
        for tt in ["JSAPI", "NATIVE", "MWEB", "APP"] {
            let f = v2_call(
                &app.http,
                &url,
                &m,
                unified(tt, &out_trade_no(), "http://127.0.0.1:9/n"),
                sign_type,
            )
            .await;
            assert_eq!(f["return_code"], "SUCCESS", "{f:?}");
            assert_eq!(f["result_code"], "SUCCESS", "{tt} {f:?}");
            assert_eq!(f["trade_type"], tt);
            assert_eq!(f["appid"], m.app_id());
            assert_eq!(f["mch_id"], m.mch_id());
            let prepay = &f["prepay_id"];
            assert!(prepay.starts_with("wx") && prepay.len() == 36, "{prepay}");
            assert_eq!(f.contains_key("code_url"), tt == "NATIVE");
            assert_eq!(f.contains_key("mweb_url"), tt == "MWEB");
            if tt == "MWEB" {
                // The merchant appends &redirect_url=… to it.
                assert!(f["mweb_url"].contains("?package="));
            }
        }
    }
}

#[tokio::test]
async fn unifiedorder_field_rules() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let url = format!("{}/pay/unifiedorder", m.base_url());
    let call = |p| v2_call(&app.http, &url, &m, p, WxSignType::Md5);

    let mut p = unified("JSAPI", &out_trade_no(), "http://127.0.0.1:9/n");
    p.remove("openid");
    let f = call(p).await;
    assert_eq!(
        (f["result_code"].as_str(), f["err_code"].as_str()),
        ("FAIL", "PARAM_ERROR")
    );
    assert!(f["err_code_des"].contains("openid"));

    let mut p = unified("MWEB", &out_trade_no(), "http://127.0.0.1:9/n");
    p.remove("scene_info");
    assert_eq!(call(p).await["err_code"], "PARAM_ERROR");

    for bad_fee in ["0", "-1", "1.5", "abc"] {
        let mut p = unified("APP", &out_trade_no(), "http://127.0.0.1:9/n");
        p.insert("total_fee".into(), bad_fee.into());
        assert_eq!(
            call(p).await["err_code"],
            "PARAM_ERROR",
            "total_fee={bad_fee}"
        );
    }
    let p = unified("APP", &"A".repeat(33), "http://127.0.0.1:9/n");
    assert_eq!(call(p).await["err_code"], "PARAM_ERROR");
    let mut p = unified("APP", &out_trade_no(), "http://127.0.0.1:9/n");
    p.insert("trade_type".into(), "MICROPAY".into());
    assert_eq!(call(p).await["err_code"], "PARAM_ERROR");
    let mut p = unified("APP", &out_trade_no(), "http://127.0.0.1:9/n");
    p.remove("notify_url");
    assert_eq!(call(p).await["err_code"], "PARAM_ERROR");

    // Wrong appid for this merchant.
    let mut p = unified("APP", &out_trade_no(), "http://127.0.0.1:9/n");
    p.insert("appid".into(), "wx0000000000000000".into());
    assert_eq!(call(p).await["err_code"], "APPID_MCHID_NOT_MATCH");

    // Same out_trade_no: same parameters → the same prepay; different → refused.
    let no = out_trade_no();
    let first = call(unified("APP", &no, "http://127.0.0.1:9/n")).await;
    let again = call(unified("APP", &no, "http://127.0.0.1:9/n")).await;
    assert_eq!(first["prepay_id"], again["prepay_id"]);
    let mut changed = unified("APP", &no, "http://127.0.0.1:9/n");
    changed.insert("total_fee".into(), "102".into());
    let f = call(changed).await;
    assert_eq!(f["err_code"], "INVALID_REQUEST", "{f:?}");

    // Paid → ORDERPAID.
    let (status, _) = app.pay(&no, "SUCCESS").await;
    assert_eq!(status, 200);
    assert_eq!(
        call(unified("APP", &no, "http://127.0.0.1:9/n")).await["err_code"],
        "ORDERPAID"
    );
}

#[tokio::test]
async fn bad_signatures_and_bad_xml_are_refused() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let url = format!("{}/pay/unifiedorder", m.base_url());
    let mut p = unified("APP", &out_trade_no(), "http://127.0.0.1:9/n");
    p.insert("appid".into(), m.app_id().into());
    p.insert("mch_id".into(), m.mch_id().into());
    p.insert("nonce_str".into(), "n1".into());

    // Signed with the wrong key.
    let mut bad = p.clone();
    bad.insert(
        "sign".into(),
        wxv2::sign(&p, "0".repeat(32).as_str(), WxSignType::Md5),
    );
    let f = v2_post_raw(&app.http, &url, &m, &to_xml(&bad), WxSignType::Md5).await;
    assert_eq!(f["return_code"], "FAIL");
    assert_eq!(f["err_code"], "SIGNERROR");

    // HMAC signature but sign_type absent (so MD5 is expected).
    let mut bad = p.clone();
    bad.insert(
        "sign".into(),
        wxv2::sign(&p, m.api_key(), WxSignType::HmacSha256),
    );
    let f = v2_post_raw(&app.http, &url, &m, &to_xml(&bad), WxSignType::Md5).await;
    assert_eq!(f["err_code"], "SIGNERROR");

    // A field changed after signing.
    let mut bad = p.clone();
    bad.insert("sign".into(), wxv2::sign(&p, m.api_key(), WxSignType::Md5));
    bad.insert("total_fee".into(), "1".into());
    let f = v2_post_raw(&app.http, &url, &m, &to_xml(&bad), WxSignType::Md5).await;
    assert_eq!(f["err_code"], "SIGNERROR");

    // Unknown sign type.
    let mut bad = p.clone();
    bad.insert("sign_type".into(), "SHA1".into());
    bad.insert(
        "sign".into(),
        wxv2::sign(&bad, m.api_key(), WxSignType::Md5),
    );
    let f = v2_post_raw(&app.http, &url, &m, &to_xml(&bad), WxSignType::Md5).await;
    assert_eq!(f["return_code"], "FAIL");

    // Unknown merchant.
    let mut bad = p.clone();
    bad.insert("mch_id".into(), "1000000000".into());
    bad.insert(
        "sign".into(),
        wxv2::sign(&bad, m.api_key(), WxSignType::Md5),
    );
    let f = v2_post_raw(&app.http, &url, &m, &to_xml(&bad), WxSignType::Md5).await;
    assert_eq!(f["return_code"], "FAIL");

    // XXE: a DOCTYPE is refused before anything is read.
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        to_xml(&p).replace("<body><![CDATA[sandbox test]]></body>", "<body>&x;</body>")
    );
    let f = v2_post_raw(&app.http, &url, &m, &xxe, WxSignType::Md5).await;
    assert_eq!(f["return_code"], "FAIL");
    assert_eq!(f["err_code"], "XML_FORMAT_ERROR");
    let f = v2_post_raw(&app.http, &url, &m, "{\"json\":true}", WxSignType::Md5).await;
    assert_eq!(f["err_code"], "XML_FORMAT_ERROR");

    // None of these created the order.
    let q = v2_call(
        &app.http,
        &format!("{}/pay/orderquery", m.base_url()),
        &m,
        params(&[("out_trade_no", &p["out_trade_no"])]),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(q["err_code"], "ORDERNOTEXIST");
}

#[tokio::test]
async fn orderquery_and_closeorder() {
    let app = spawn().await;
    let m = app.open_merchant("HMAC-SHA256").await;
    let st = WxSignType::HmacSha256;
    let base = m.base_url().to_owned();
    let no = out_trade_no();
    v2_call(
        &app.http,
        &format!("{base}/pay/unifiedorder"),
        &m,
        unified("JSAPI", &no, "http://127.0.0.1:9/n"),
        st,
    )
    .await;

    let q = v2_call(
        &app.http,
        &format!("{base}/pay/orderquery"),
        &m,
        params(&[("out_trade_no", &no)]),
        st,
    )
    .await;
    assert_eq!(q["result_code"], "SUCCESS");
    assert_eq!(q["trade_state"], "NOTPAY");
    assert_eq!(q["total_fee"], "101");

    let c = v2_call(
        &app.http,
        &format!("{base}/pay/closeorder"),
        &m,
        params(&[("out_trade_no", &no)]),
        st,
    )
    .await;
    assert_eq!(c["result_code"], "SUCCESS", "{c:?}");
    let c = v2_call(
        &app.http,
        &format!("{base}/pay/closeorder"),
        &m,
        params(&[("out_trade_no", &no)]),
        st,
    )
    .await;
    assert_eq!(c["err_code"], "ORDERCLOSED");
    let q = v2_call(
        &app.http,
        &format!("{base}/pay/orderquery"),
        &m,
        params(&[("out_trade_no", &no)]),
        st,
    )
    .await;
    assert_eq!(q["trade_state"], "CLOSED");
    let (status, body) = app.pay(&no, "SUCCESS").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        v2_call(
            &app.http,
            &format!("{base}/pay/unifiedorder"),
            &m,
            unified("JSAPI", &no, "http://127.0.0.1:9/n"),
            st
        )
        .await["err_code"],
        "ORDERCLOSED"
    );

    let c = v2_call(
        &app.http,
        &format!("{base}/pay/closeorder"),
        &m,
        params(&[("out_trade_no", "nope")]),
        st,
    )
    .await;
    assert_eq!(c["err_code"], "ORDERNOTEXIST");

    // Paid orders cannot be closed; the query shows the payment.
    let no = out_trade_no();
    v2_call(
        &app.http,
        &format!("{base}/pay/unifiedorder"),
        &m,
        unified("JSAPI", &no, "http://127.0.0.1:9/n"),
        st,
    )
    .await;
    let (_, paid) = app.pay(&no, "SUCCESS").await;
    let c = v2_call(
        &app.http,
        &format!("{base}/pay/closeorder"),
        &m,
        params(&[("out_trade_no", &no)]),
        st,
    )
    .await;
    assert_eq!(c["err_code"], "ORDERPAID");
    let q = v2_call(
        &app.http,
        &format!("{base}/pay/orderquery"),
        &m,
        params(&[("transaction_id", paid["transactionId"].as_str().unwrap())]),
        st,
    )
    .await;
    assert_eq!(q["trade_state"], "SUCCESS");
    assert_eq!(q["out_trade_no"], no);
    assert_eq!(q["openid"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    assert_eq!(q["time_end"].len(), 14);

    // A failed payment.
    let no = out_trade_no();
    v2_call(
        &app.http,
        &format!("{base}/pay/unifiedorder"),
        &m,
        unified("APP", &no, "http://127.0.0.1:9/n"),
        st,
    )
    .await;
    let (status, body) = app.pay(&no, "FAIL").await;
    assert_eq!(
        (status, body["tradeState"].as_str()),
        (200, Some("PAYERROR"))
    );
    let q = v2_call(
        &app.http,
        &format!("{base}/pay/orderquery"),
        &m,
        params(&[("out_trade_no", &no)]),
        st,
    )
    .await;
    assert_eq!(q["trade_state"], "PAYERROR");
}
