//! The Alipay sandbox, spoken as a merchant: RSA2-signed gateway calls in
//! public-key and certificate mode, responses verified over the raw
//! `…_response` text, form notifications verified with sign and sign_type
//! removed, refunds, payer pages and faults.

use std::collections::BTreeMap;
use std::time::Duration;

use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};

use crate::*;

pub struct Ali {
    pub creds: Value,
    pub cert_mode: bool,
}

impl Ali {
    pub fn c(&self) -> &Value {
        if self.cert_mode {
            &self.creds["credentialsCert"]
        } else {
            &self.creds["credentials"]
        }
    }
    pub fn app_id(&self) -> &str {
        self.c()["appId"].as_str().unwrap()
    }
    pub fn pid(&self) -> &str {
        self.creds["mchId"].as_str().unwrap()
    }
    pub fn gateway(&self) -> &str {
        self.creds["baseUrl"].as_str().unwrap()
    }
    /// The key that verifies Alipay's signatures in this mode.
    pub fn alipay_key(&self) -> RsaPublicKey {
        if self.cert_mode {
            cashdesk_crypto::cert::Certificate::from_pem(
                self.c()["alipayCertPem"].as_str().unwrap(),
            )
            .unwrap()
            .rsa_public_key()
            .unwrap()
        } else {
            RsaPublicKey::from_pem(self.c()["alipayPublicKeyPem"].as_str().unwrap()).unwrap()
        }
    }
    pub fn cert_mode(&self) -> Ali {
        Ali {
            creds: self.creds.clone(),
            cert_mode: true,
        }
    }

    /// Signed common + given parameters for `method`.
    pub fn signed_params(
        &self,
        method: &str,
        biz: &Value,
        extra: &[(&str, &str)],
    ) -> BTreeMap<String, String> {
        let mut p: BTreeMap<String, String> = BTreeMap::new();
        p.insert("app_id".into(), self.app_id().into());
        p.insert("method".into(), method.into());
        p.insert("format".into(), "JSON".into());
        p.insert("charset".into(), "utf-8".into());
        p.insert("sign_type".into(), "RSA2".into());
        p.insert(
            "timestamp".into(),
            cashdesk_core::time::to_cn_datetime(chrono::Utc::now()),
        );
        p.insert("version".into(), "1.0".into());
        p.insert("biz_content".into(), biz.to_string());
        if self.cert_mode {
            let app_cert = cashdesk_crypto::cert::Certificate::from_pem(
                self.c()["appCertPem"].as_str().unwrap(),
            )
            .unwrap();
            p.insert("app_cert_sn".into(), app_cert.alipay_sn());
            p.insert(
                "alipay_root_cert_sn".into(),
                cashdesk_crypto::cert::alipay_root_cert_sn(
                    self.c()["alipayRootCertPem"].as_str().unwrap(),
                )
                .unwrap(),
            );
        }
        for (k, v) in extra {
            p.insert((*k).into(), (*v).into());
        }
        let content = content(&p, &["sign"]);
        let key = RsaPrivateKey::from_pem(self.c()["privateKeyPem"].as_str().unwrap()).unwrap();
        p.insert(
            "sign".into(),
            key.sign_sha256_base64(content.as_bytes()).unwrap(),
        );
        p
    }

    /// POST a signed call (common parameters in the query string,
    /// biz_content in the form body, as Alipay's SDKs do) and verify the
    /// answer over its raw text. Returns the inner object.
    pub async fn call(
        &self,
        app: &TestApp,
        method: &str,
        biz: Value,
        extra: &[(&str, &str)],
    ) -> Value {
        let mut p = self.signed_params(method, &biz, extra);
        let biz_content = p.remove("biz_content").unwrap();
        let url = reqwest::Url::parse_with_params(self.gateway(), p.iter()).unwrap();
        let resp = app
            .http
            .post(url)
            .form(&[("biz_content", biz_content)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        self.verify_response(method, &text)
    }

    pub fn verify_response(&self, method: &str, text: &str) -> Value {
        let v: Value = serde_json::from_str(text).unwrap();
        let key = if v.get("error_response").is_some() {
            "error_response".to_owned()
        } else {
            format!("{}_response", method.replace('.', "_"))
        };
        let raw = raw_value(text, &key).unwrap_or_else(|| panic!("no {key} in {text}"));
        self.alipay_key()
            .verify_sha256_base64(raw.as_bytes(), v["sign"].as_str().unwrap())
            .unwrap_or_else(|_| panic!("response signature over the raw text: {text}"));
        if self.cert_mode {
            let cert = cashdesk_crypto::cert::Certificate::from_pem(
                self.c()["alipayCertPem"].as_str().unwrap(),
            )
            .unwrap();
            assert_eq!(v["alipay_cert_sn"], cert.alipay_sn());
        } else {
            assert!(v.get("alipay_cert_sn").is_none());
        }
        v[&key].clone()
    }

    /// The raw text of a repeated precreate (same parameters: same trade).
    pub async fn last_text(&self, app: &TestApp, no: &str, notify_url: &str) -> String {
        let p = self.signed_params(
            "alipay.trade.precreate",
            &json!({"out_trade_no": no, "total_amount": "1.01", "subject": "sandbox 测试"}),
            &[("notify_url", notify_url)],
        );
        app.http
            .post(self.gateway())
            .form(&p)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Verify a notification / return form: sign and sign_type removed.
    pub fn verifies(&self, form: &BTreeMap<String, String>) -> bool {
        let c = content(form, &["sign", "sign_type"]);
        self.alipay_key()
            .verify_sha256_base64(c.as_bytes(), &form["sign"])
            .is_ok()
    }
}

pub fn content(p: &BTreeMap<String, String>, skip: &[&str]) -> String {
    p.iter()
        .filter(|(k, v)| !v.is_empty() && !skip.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The exact text of the JSON object under `"key":` in `text`.
pub fn raw_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let bytes = text.as_bytes();
    let (mut depth, mut in_str, mut esc) = (0i32, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

pub fn form(body: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub async fn open_alipay(app: &TestApp) -> Ali {
    let resp = app
        .http
        .post(format!("{}/sandbox/api/merchants", app.origin))
        .json(&json!({"channelType": "ali-pay"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    Ali {
        creds: resp.json().await.unwrap(),
        cert_mode: false,
    }
}

pub async fn alipay_receiver(fail_first: usize) -> Receiver {
    receiver_with(fail_first, (200, "success".into()), (200, "fail".into())).await
}

pub async fn pay(app: &TestApp, channel: &str, no: &str, result: &str) -> (u16, Value) {
    let resp = app
        .http
        .post(format!("{}/sandbox/api/pay", app.origin))
        .json(&json!({"channelType": channel, "outTradeNo": no, "result": result}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn ali_no() -> String {
    format!("A{}", cashdesk_crypto::random::nonce_str(20))
}

#[tokio::test]
async fn alipay_credentials_have_both_config_shapes_and_persist() {
    let app = spawn().await;
    let a = open_alipay(&app).await;
    let c = &a.creds;
    let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["baseUrl", "credentials", "credentialsCert", "mchId"]);
    let mut k1: Vec<&str> = c["credentials"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    k1.sort();
    assert_eq!(
        k1,
        ["alipayPublicKeyPem", "appId", "privateKeyPem", "sellerId"]
    );
    let mut k2: Vec<&str> = c["credentialsCert"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    k2.sort();
    assert_eq!(
        k2,
        [
            "alipayCertPem",
            "alipayRootCertPem",
            "appCertPem",
            "appId",
            "privateKeyPem",
            "sellerId"
        ]
    );
    assert!(a.pid().starts_with("2088") && a.pid().len() == 16);
    assert_eq!(c["credentials"]["sellerId"], a.pid());
    assert_eq!(a.app_id().len(), 16);
    assert_eq!(
        a.gateway(),
        format!("{}/sandbox/alipay/gateway.do", app.origin)
    );
    assert_eq!(a.gateway(), app.sandbox.alipay_gateway_url());
    // The Alipay certificate carries the Alipay public key.
    assert_eq!(a.alipay_key(), a.cert_mode().alipay_key());
    // The root file holds an RSA root and a non-RSA one (skipped in the SN).
    let roots = cashdesk_crypto::cert::Certificate::all_from_pem(
        c["credentialsCert"]["alipayRootCertPem"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(roots.len(), 2);
    assert!(roots[0].is_rsa_signed() && !roots[1].is_rsa_signed());
    // The app certificate is the app key's.
    let app_cert = cashdesk_crypto::cert::Certificate::from_pem(
        c["credentialsCert"]["appCertPem"].as_str().unwrap(),
    )
    .unwrap();
    let key = RsaPrivateKey::from_pem(c["credentials"]["privateKeyPem"].as_str().unwrap()).unwrap();
    assert_eq!(app_cert.rsa_public_key().unwrap(), key.public_key());

    // A restart keeps the app and the Alipay key.
    app.sandbox.shutdown().await;
    let TestApp { dir, .. } = app;
    let app = spawn_with(vec![Duration::from_millis(100)], Some(dir)).await;
    let mut a2 = Ali {
        creds: a.creds.clone(),
        cert_mode: false,
    };
    a2.creds["baseUrl"] = json!(app.sandbox.alipay_gateway_url());
    let r = a2
        .call(
            &app,
            "alipay.trade.query",
            json!({"out_trade_no": "NOPE"}),
            &[],
        )
        .await;
    assert_eq!(r["sub_code"], "ACQ.TRADE_NOT_EXIST");
    let r = a2
        .cert_mode()
        .call(
            &app,
            "alipay.trade.query",
            json!({"out_trade_no": "NOPE"}),
            &[],
        )
        .await;
    assert_eq!(r["code"], "40004");
}

#[tokio::test]
async fn alipay_precreate_pay_notify_refund_in_public_key_mode() {
    let app = spawn_with(vec![Duration::from_millis(150); 5], None).await;
    let a = open_alipay(&app).await;
    let rx = alipay_receiver(1).await;
    let no = ali_no();
    let r = a
        .call(
            &app,
            "alipay.trade.precreate",
            json!({"out_trade_no": no, "total_amount": "1.01", "subject": "sandbox 测试"}),
            &[("notify_url", &rx.url)],
        )
        .await;
    assert_eq!(
        (r["code"].as_str(), r["msg"].as_str()),
        (Some("10000"), Some("Success"))
    );
    let qr = r["qr_code"].as_str().unwrap();
    // `/` is escaped in the raw text, as Alipay's is: re-serialising the
    // parsed value would not give the signed bytes.
    let raw = raw_value(
        &a.last_text(&app, no.as_str(), &rx.url).await,
        "alipay_trade_precreate_response",
    )
    .unwrap()
    .to_owned();
    assert!(
        raw.contains("http:\\/\\/") && !raw.contains("http://"),
        "{raw}"
    );
    assert_ne!(
        raw,
        serde_json::from_str::<Value>(&raw).unwrap().to_string()
    );
    assert!(qr.starts_with(&format!("{}/sandbox/alipay/pay/", app.origin)));
    let q = a
        .call(&app, "alipay.trade.query", json!({"out_trade_no": no}), &[])
        .await;
    assert_eq!(q["trade_status"], "WAIT_BUYER_PAY");
    assert_eq!(q["total_amount"], "1.01");
    let trade_no = q["trade_no"].as_str().unwrap().to_owned();
    assert_eq!(trade_no.len(), 28);

    let (status, paid) = pay(&app, "ali-pay", &no, "SUCCESS").await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["tradeState"], "TRADE_SUCCESS");
    assert_eq!(paid["transactionId"], trade_no.as_str());
    // Refused once ("fail"), acknowledged by "success", then silence.
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.count(), 2);
    assert!(got[1].at - got[0].at >= Duration::from_millis(140));
    assert!(
        got[0].headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let n = form(&got[0].body);
    assert!(a.verifies(&n), "notification signature: {}", got[0].body);
    assert_eq!(n["sign_type"], "RSA2");
    assert_eq!(n["notify_type"], "trade_status_sync");
    assert_eq!(n["trade_status"], "TRADE_SUCCESS");
    assert_eq!(n["app_id"], a.app_id());
    assert_eq!(n["seller_id"], a.pid());
    assert_eq!(n["out_trade_no"], no);
    assert_eq!(n["trade_no"], trade_no);
    for f in [
        "total_amount",
        "receipt_amount",
        "buyer_pay_amount",
        "invoice_amount",
    ] {
        assert_eq!(n[f], "1.01", "{f}");
    }
    assert!(n["buyer_id"].starts_with("2088"));
    assert_eq!(n["gmt_payment"].len(), 19);
    let fund: Value = serde_json::from_str(&n["fund_bill_list"]).unwrap();
    assert_eq!(fund[0]["amount"], "1.01");
    // Verification is over the fields as sent: a changed field fails.
    let mut forged = n.clone();
    forged.insert("total_amount".into(), "0.01".into());
    assert!(!a.verifies(&forged));

    let q = a
        .call(
            &app,
            "alipay.trade.query",
            json!({"trade_no": trade_no}),
            &[],
        )
        .await;
    assert_eq!(q["trade_status"], "TRADE_SUCCESS");
    assert_eq!(q["buyer_user_id"], n["buyer_id"].as_str());
    assert_eq!(q["buyer_pay_amount"], "1.01");

    // Partial refund, idempotent by out_request_no.
    let r = a
        .call(
            &app,
            "alipay.trade.refund",
            json!({"out_trade_no": no, "refund_amount": "0.30", "out_request_no": "r1"}),
            &[],
        )
        .await;
    assert_eq!(r["code"], "10000", "{r}");
    assert_eq!(
        (r["fund_change"].as_str(), r["refund_fee"].as_str()),
        (Some("Y"), Some("0.30"))
    );
    let again = a
        .call(
            &app,
            "alipay.trade.refund",
            json!({"out_trade_no": no, "refund_amount": "0.30", "out_request_no": "r1"}),
            &[],
        )
        .await;
    assert_eq!(
        (again["fund_change"].as_str(), again["refund_fee"].as_str()),
        (Some("N"), Some("0.30"))
    );
    let discordant = a
        .call(
            &app,
            "alipay.trade.refund",
            json!({"out_trade_no": no, "refund_amount": "0.31", "out_request_no": "r1"}),
            &[],
        )
        .await;
    assert_eq!(discordant["sub_code"], "ACQ.DISCORDANT_REPEAT_REQUEST");
    let too_much = a
        .call(
            &app,
            "alipay.trade.refund",
            json!({"out_trade_no": no, "refund_amount": "0.72", "out_request_no": "r2"}),
            &[],
        )
        .await;
    assert_eq!(
        (
            too_much["code"].as_str(),
            too_much["msg"].as_str(),
            too_much["sub_code"].as_str()
        ),
        (
            Some("40004"),
            Some("Business Failed"),
            Some("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
        )
    );
    let bad_amount = a
        .call(
            &app,
            "alipay.trade.refund",
            json!({"out_trade_no": no, "refund_amount": "0.001", "out_request_no": "r3"}),
            &[],
        )
        .await;
    assert_eq!(bad_amount["sub_code"], "ACQ.INVALID_PARAMETER");

    // The refund is notified as a trade notification.
    let got = rx.wait_for(3, Duration::from_secs(5)).await;
    let rn = form(&got[2].body);
    assert!(a.verifies(&rn));
    assert_eq!(rn["trade_status"], "TRADE_SUCCESS");
    assert_eq!(rn["out_biz_no"], "r1");
    assert_eq!(rn["refund_fee"], "0.30");
    assert!(rn.contains_key("gmt_refund"));

    let rq = a
        .call(
            &app,
            "alipay.trade.fastpay.refund.query",
            json!({"out_trade_no": no, "out_request_no": "r1"}),
            &[],
        )
        .await;
    assert_eq!(rq["refund_amount"], "0.30");
    assert_eq!(rq["total_amount"], "1.01");
    assert_eq!(rq["refund_status"], "REFUND_SUCCESS");
    let unknown = a
        .call(
            &app,
            "alipay.trade.fastpay.refund.query",
            json!({"out_trade_no": no, "out_request_no": "nope"}),
            &[],
        )
        .await;
    assert_eq!(unknown["code"], "10000");
    assert!(
        unknown.get("refund_amount").is_none(),
        "no such refund: {unknown}"
    );

    // Refunding the rest closes the trade.
    let r = a
        .call(
            &app,
            "alipay.trade.refund",
            json!({"trade_no": trade_no, "refund_amount": "0.71", "out_request_no": "r2"}),
            &[],
        )
        .await;
    assert_eq!(r["refund_fee"], "1.01");
    let q = a
        .call(&app, "alipay.trade.query", json!({"out_trade_no": no}), &[])
        .await;
    assert_eq!(q["trade_status"], "TRADE_CLOSED");
    let got = rx.wait_for(4, Duration::from_secs(5)).await;
    let last = form(&got[3].body);
    assert_eq!(
        (last["trade_status"].as_str(), last["out_biz_no"].as_str()),
        ("TRADE_CLOSED", "r2")
    );
}

#[tokio::test]
async fn alipay_create_and_close_in_certificate_mode() {
    let app = spawn().await;
    let a = open_alipay(&app).await.cert_mode();
    let rx = alipay_receiver(0).await;
    let no = ali_no();
    let missing_buyer = a
        .call(
            &app,
            "alipay.trade.create",
            json!({"out_trade_no": no, "total_amount": "0.1", "subject": "mini"}),
            &[],
        )
        .await;
    assert_eq!(missing_buyer["sub_code"], "ACQ.INVALID_PARAMETER");
    let r = a
        .call(
            &app,
            "alipay.trade.create",
            json!({"out_trade_no": no, "total_amount": "0.1", "subject": "mini", "buyer_id": "2088102146225135", "product_code": "JSAPI_PAY"}),
            &[("notify_url", &rx.url)],
        )
        .await;
    assert_eq!(r["code"], "10000", "{r}");
    let trade_no = r["trade_no"].as_str().unwrap().to_owned();
    // Same out_trade_no and parameters: the same trade; different: refused.
    let again = a
        .call(&app, "alipay.trade.create", json!({"out_trade_no": no, "total_amount": "0.1", "subject": "mini", "buyer_id": "2088102146225135", "product_code": "JSAPI_PAY"}), &[("notify_url", &rx.url)])
        .await;
    assert_eq!(again["trade_no"], trade_no.as_str());
    let changed = a
        .call(&app, "alipay.trade.create", json!({"out_trade_no": no, "total_amount": "0.2", "subject": "mini", "buyer_id": "2088102146225135"}), &[("notify_url", &rx.url)])
        .await;
    assert_eq!(changed["sub_code"], "ACQ.CONTEXT_INCONSISTENT");
    let q = a
        .call(&app, "alipay.trade.query", json!({"out_trade_no": no}), &[])
        .await;
    assert_eq!(
        (q["total_amount"].as_str(), q["trade_status"].as_str()),
        (Some("0.10"), Some("WAIT_BUYER_PAY"))
    );

    let c = a
        .call(&app, "alipay.trade.close", json!({"out_trade_no": no}), &[])
        .await;
    assert_eq!(
        (c["code"].as_str(), c["trade_no"].as_str()),
        (Some("10000"), Some(trade_no.as_str()))
    );
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let n = form(&got[0].body);
    assert!(a.verifies(&n));
    assert_eq!(n["trade_status"], "TRADE_CLOSED");
    assert!(!n.contains_key("gmt_payment"));
    let q = a
        .call(
            &app,
            "alipay.trade.query",
            json!({"trade_no": trade_no}),
            &[],
        )
        .await;
    assert_eq!(q["trade_status"], "TRADE_CLOSED");
    let (status, _) = pay(&app, "ali-pay", &no, "SUCCESS").await;
    assert_eq!(status, 409);
    let refund = a
        .call(
            &app,
            "alipay.trade.refund",
            json!({"out_trade_no": no, "refund_amount": "0.10"}),
            &[],
        )
        .await;
    assert_eq!(refund["sub_code"], "ACQ.TRADE_HAS_CLOSE");

    // A wrong certificate SN is refused.
    let mut p = a.signed_params("alipay.trade.query", &json!({"out_trade_no": no}), &[]);
    p.insert(
        "app_cert_sn".into(),
        "0123456789abcdef0123456789abcdef".into(),
    );
    let text = app
        .http
        .get(reqwest::Url::parse_with_params(a.gateway(), p.iter()).unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = a.verify_response("alipay.trade.query", &text);
    assert_eq!(
        (r["code"].as_str(), r["sub_code"].as_str()),
        (Some("40002"), Some("isv.invalid-app-cert-sn"))
    );
}

#[tokio::test]
async fn alipay_signature_and_gateway_errors() {
    let app = spawn().await;
    let a = open_alipay(&app).await;
    let other = open_alipay(&app).await;
    let biz = json!({"out_trade_no": "X1"});

    // Signed with another app's key.
    let mut p = other.signed_params("alipay.trade.query", &biz, &[]);
    p.insert("app_id".into(), a.app_id().into());
    let text = app
        .http
        .post(a.gateway())
        .form(&p)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = a.verify_response("alipay.trade.query", &text);
    assert_eq!(
        (
            r["code"].as_str(),
            r["msg"].as_str(),
            r["sub_code"].as_str()
        ),
        (
            Some("40002"),
            Some("Invalid Arguments"),
            Some("isv.invalid-signature")
        )
    );
    let expected = content(&p, &["sign"]);
    assert!(r["sub_msg"].as_str().unwrap().ends_with(&expected), "{r}");

    // sign_type is part of the signed content of a request.
    let mut p = a.signed_params("alipay.trade.query", &biz, &[]);
    let without_sign_type = content(&p, &["sign", "sign_type"]);
    let key = RsaPrivateKey::from_pem(a.c()["privateKeyPem"].as_str().unwrap()).unwrap();
    p.insert(
        "sign".into(),
        key.sign_sha256_base64(without_sign_type.as_bytes())
            .unwrap(),
    );
    let text = app
        .http
        .post(a.gateway())
        .form(&p)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        a.verify_response("alipay.trade.query", &text)["sub_code"],
        "isv.invalid-signature"
    );

    // Unknown method and app: error_response.
    let p = a.signed_params("alipay.trade.nope", &biz, &[]);
    let text = app
        .http
        .post(a.gateway())
        .form(&p)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = a.verify_response("alipay.trade.nope", &text);
    assert_eq!(r["sub_code"], "isv.invalid-method");
    let mut p = a.signed_params("alipay.trade.query", &biz, &[]);
    p.insert("app_id".into(), "2021000000000000".into());
    let text = app
        .http
        .post(a.gateway())
        .form(&p)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        a.verify_response("alipay.trade.query", &text)["sub_code"],
        "isv.invalid-app-id"
    );
    // Missing sign, stale timestamp.
    let mut p = a.signed_params("alipay.trade.query", &biz, &[]);
    p.remove("sign");
    let text = app
        .http
        .post(a.gateway())
        .form(&p)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = a.verify_response("alipay.trade.query", &text);
    assert_eq!(
        (r["code"].as_str(), r["sub_code"].as_str()),
        (Some("40001"), Some("isv.missing-signature"))
    );
    let r = a
        .call(
            &app,
            "alipay.trade.query",
            biz.clone(),
            &[("timestamp", "2020-01-01 00:00:00")],
        )
        .await;
    assert_eq!(r["sub_code"], "isv.invalid-timestamp");
    // Business errors.
    let r = a.call(&app, "alipay.trade.query", biz.clone(), &[]).await;
    assert_eq!(
        (
            r["code"].as_str(),
            r["sub_code"].as_str(),
            r["sub_msg"].as_str()
        ),
        (
            Some("40004"),
            Some("ACQ.TRADE_NOT_EXIST"),
            Some("交易不存在")
        )
    );
    let r = a
        .call(
            &app,
            "alipay.trade.precreate",
            json!({"out_trade_no": "X2", "total_amount": "1.001", "subject": "s"}),
            &[],
        )
        .await;
    assert_eq!(r["sub_code"], "ACQ.INVALID_PARAMETER");
    // Nothing was created by the failures.
    let r = a
        .call(
            &app,
            "alipay.trade.query",
            json!({"out_trade_no": "X2"}),
            &[],
        )
        .await;
    assert_eq!(r["sub_code"], "ACQ.TRADE_NOT_EXIST");
}

#[tokio::test]
async fn alipay_wap_page_and_app_orders_land_on_the_payer_page() {
    let app = spawn().await;
    let a = open_alipay(&app).await;
    let rx = alipay_receiver(0).await;

    // wap: a signed GET URL, opened by the browser.
    let no = ali_no();
    let p = a.signed_params(
        "alipay.trade.wap.pay",
        &json!({"out_trade_no": no, "total_amount": "2.50", "subject": "wap", "product_code": "QUICK_WAP_WAY"}),
        &[("notify_url", &rx.url), ("return_url", "https://shop.example.com/back?x=1")],
    );
    let url = reqwest::Url::parse_with_params(a.gateway(), p.iter()).unwrap();
    let resp = app.http.get(url.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("SANDBOX") && html.contains("¥2.50") && html.contains(a.pid()));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("<link"));
    let q = a
        .call(&app, "alipay.trade.query", json!({"out_trade_no": no}), &[])
        .await;
    let trade_no = q["trade_no"].as_str().unwrap().to_owned();
    let page_url = format!("{}/sandbox/alipay/pay/{trade_no}", app.origin);
    assert!(html.contains(&format!("action=\"/sandbox/alipay/pay/{trade_no}\"")));
    // Cancel changes nothing; Pay pays and offers the signed return.
    let resp = app
        .http
        .post(&page_url)
        .form(&[("action", "cancel")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .http
        .post(&page_url)
        .form(&[("action", "pay")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    let href = html
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let back = reqwest::Url::parse(&href).unwrap();
    assert_eq!(back.host_str(), Some("shop.example.com"));
    let ret: BTreeMap<String, String> = back
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(ret["x"], "1");
    let mut signed = ret.clone();
    signed.remove("x");
    assert!(a.verifies(&signed));
    assert_eq!(ret["method"], "alipay.trade.wap.pay.return");
    assert_eq!(ret["total_amount"], "2.50");
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(form(&got[0].body)["out_trade_no"], no);
    let resp = app
        .http
        .post(&page_url)
        .form(&[("action", "pay")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);

    // page: an auto-submitted POST form lands on the same kind of page.
    let no = ali_no();
    let p = a.signed_params(
        "alipay.trade.page.pay",
        &json!({"out_trade_no": no, "total_amount": "3", "subject": "pc", "product_code": "FAST_INSTANT_TRADE_PAY"}),
        &[],
    );
    let resp = app
        .http
        .post(format!("{}?charset=utf-8", a.gateway()))
        .form(&p)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("¥3.00"));
    // A tampered one shows an error page.
    let mut bad = p.clone();
    bad.insert("biz_content".into(), json!({"out_trade_no": no, "total_amount": "0.01", "subject": "pc", "product_code": "FAST_INSTANT_TRADE_PAY"}).to_string());
    let resp = app.http.post(a.gateway()).form(&bad).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("isv.invalid-signature"));

    // app: the signed order string, submitted by the "wallet" through the test API.
    let no = ali_no();
    let p = a.signed_params(
        "alipay.trade.app.pay",
        &json!({"out_trade_no": no, "total_amount": "0.01", "subject": "app"}),
        &[("notify_url", &rx.url)],
    );
    let order_string = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(p.iter())
        .finish();
    let resp = app
        .http
        .post(format!("{}/sandbox/api/pay", app.origin))
        .json(&json!({"channelType": "ali-pay", "orderString": order_string, "result": "SUCCESS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["outTradeNo"].as_str(), v["tradeState"].as_str()),
        (Some(no.as_str()), Some("TRADE_SUCCESS"))
    );
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(form(&got[1].body)["total_amount"], "0.01");
    // A forged order string is refused.
    let resp = app
        .http
        .post(format!("{}/sandbox/api/pay", app.origin))
        .json(&json!({"channelType": "ali-pay", "orderString": order_string.replace("0.01", "0.02"), "result": "SUCCESS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn alipay_faults_and_failed_payment() {
    let app = spawn().await;
    let a = open_alipay(&app).await;
    let rx = alipay_receiver(0).await;
    let precreate = |no: String| {
        let a = &a;
        let app = &app;
        let url = rx.url.clone();
        async move {
            let r = a
                .call(
                    app,
                    "alipay.trade.precreate",
                    json!({"out_trade_no": no, "total_amount": "0.10", "subject": "f"}),
                    &[("notify_url", &url)],
                )
                .await;
            assert_eq!(r["code"], "10000", "{r}");
        }
    };

    // A WeChat fault does not touch Alipay; an Alipay one does, by method.
    app.fault(json!({"channelType": "wx-pay", "fault": "SYSTEMERROR"}))
        .await;
    app.fault(json!({"channelType": "ali-pay", "fault": "SYSTEMERROR", "mchId": a.pid(), "pathContains": "alipay.trade.precreate"})).await;
    let no = ali_no();
    let r = a
        .call(
            &app,
            "alipay.trade.precreate",
            json!({"out_trade_no": no, "total_amount": "0.10", "subject": "f"}),
            &[],
        )
        .await;
    assert_eq!(
        (r["code"].as_str(), r["sub_code"].as_str()),
        (Some("20000"), Some("isp.unknow-error"))
    );
    let q = a
        .call(&app, "alipay.trade.query", json!({"out_trade_no": no}), &[])
        .await;
    assert_eq!(
        q["sub_code"], "ACQ.TRADE_NOT_EXIST",
        "the failed call created nothing"
    );
    app.http
        .delete(format!("{}/sandbox/api/faults", app.origin))
        .send()
        .await
        .unwrap();

    // Tampered signature, then tampered amount.
    for fault in ["TAMPER_SIGNATURE", "TAMPER_AMOUNT"] {
        let no = ali_no();
        precreate(no.clone()).await;
        app.fault(json!({"channelType": "ali-pay", "fault": fault}))
            .await;
        pay(&app, "ali-pay", &no, "SUCCESS").await;
    }
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let (n0, n1) = (form(&got[0].body), form(&got[1].body));
    let (sig_broken, amount_changed) = if a.verifies(&n0) { (n1, n0) } else { (n0, n1) };
    assert!(!a.verifies(&sig_broken));
    assert_eq!(sig_broken["total_amount"], "0.10");
    assert!(a.verifies(&amount_changed));
    assert_eq!(amount_changed["total_amount"], "0.11");

    // Duplicates and drops.
    let no = ali_no();
    precreate(no.clone()).await;
    app.fault(json!({"channelType": "ali-pay", "fault": "DUPLICATE_NOTIFY", "copies": 3}))
        .await;
    pay(&app, "ali-pay", &no, "SUCCESS").await;
    rx.wait_for(5, Duration::from_secs(5)).await;
    let no = ali_no();
    precreate(no.clone()).await;
    app.fault(json!({"channelType": "ali-pay", "fault": "DROP_NOTIFY"}))
        .await;
    pay(&app, "ali-pay", &no, "SUCCESS").await;

    // A failed payment closes the trade and says so.
    let no = ali_no();
    precreate(no.clone()).await;
    let (status, v) = pay(&app, "ali-pay", &no, "FAIL").await;
    assert_eq!(
        (status, v["tradeState"].as_str()),
        (200, Some("TRADE_CLOSED"))
    );
    let got = rx.wait_for(6, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 6, "the dropped notification never came");
    let closed = form(&got[5].body);
    assert_eq!(
        (
            closed["out_trade_no"].as_str(),
            closed["trade_status"].as_str()
        ),
        (no.as_str(), "TRADE_CLOSED")
    );

    // The request log names the pid and never holds a key.
    let log: Value = app
        .http
        .get(format!(
            "{}/sandbox/api/requests?mchId={}",
            app.origin,
            a.pid()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log["requests"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["target"]
        == "/sandbox/alipay/gateway.do?method=alipay.trade.precreate"
        && e["result"] == "SUCCESS"));
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "notify" && e["result"] == "DROPPED")
    );
    let text = log.to_string();
    let key_body: String = a.c()["privateKeyPem"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(!text.contains(&key_body));
}

/// App authorization (应用授权): a merchant opened with `isvAppId`
/// authorizes that app; calls with its `app_auth_token` work on the
/// authorizer's trades (its seller id, its book), notifications name it as
/// `auth_app_id`; a token not issued to the calling app is refused.
#[tokio::test]
async fn alipay_app_auth_tokens_act_for_the_authorizing_merchant() {
    let app = spawn().await;
    let isv = open_alipay(&app).await;
    let other_isv = open_alipay(&app).await;
    let resp = app
        .http
        .post(format!("{}/sandbox/api/merchants", app.origin))
        .json(&json!({"channelType": "ali-pay", "isvAppId": isv.app_id()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let auth: Value = resp.json().await.unwrap();
    let token = auth["appAuthToken"].as_str().unwrap();
    let seller = auth["sellerId"].as_str().unwrap();
    let auth_app = auth["authAppId"].as_str().unwrap();
    assert_eq!(auth["mchId"], seller);
    assert_eq!(
        auth["identity"],
        json!({"appAuthToken": token, "authAppId": auth_app, "sellerId": seller})
    );
    assert_ne!(seller, isv.pid());
    // An authorization for an app that does not exist.
    let resp = app
        .http
        .post(format!("{}/sandbox/api/merchants", app.origin))
        .json(&json!({"channelType": "ali-pay", "isvAppId": "2021999999999999"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let rx = alipay_receiver(0).await;
    let no = ali_no();
    let biz = json!({"out_trade_no": no, "total_amount": "0.50", "subject": "门店"});
    // The token of another app, or an unknown one: refused, nothing created.
    for (who, t) in [(&other_isv, token), (&isv, "202401BBnotatoken")] {
        let r = who
            .call(
                &app,
                "alipay.trade.precreate",
                biz.clone(),
                &[("notify_url", &rx.url), ("app_auth_token", t)],
            )
            .await;
        assert_eq!(
            (r["code"].as_str(), r["sub_code"].as_str()),
            (Some("20001"), Some("aop.invalid-app-auth-token")),
            "{r}"
        );
    }
    let r = isv
        .call(
            &app,
            "alipay.trade.precreate",
            biz,
            &[("notify_url", &rx.url), ("app_auth_token", token)],
        )
        .await;
    assert_eq!(r["code"], "10000", "{r}");
    // The trade is the authorizer's: not found without the token.
    let q = isv
        .call(&app, "alipay.trade.query", json!({"out_trade_no": no}), &[])
        .await;
    assert_eq!(q["sub_code"], "ACQ.TRADE_NOT_EXIST", "{q}");
    let q = isv
        .call(
            &app,
            "alipay.trade.query",
            json!({"out_trade_no": no}),
            &[("app_auth_token", token)],
        )
        .await;
    assert_eq!(q["trade_status"], "WAIT_BUYER_PAY", "{q}");
    // The request log files it under the authorizer's pid.
    let log: Value = app
        .http
        .get(format!(
            "{}/sandbox/api/requests?mchId={seller}&kind=api",
            app.origin
        ))
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
            .any(|e| e["requestBody"]
                .as_str()
                .is_some_and(|b| b.contains("app_auth_token"))),
        "{log}"
    );

    let (status, paid) = pay(&app, "ali-pay", &no, "SUCCESS").await;
    assert_eq!((status, paid["mchId"].as_str()), (200, Some(seller)));
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let n = form(&got[0].body);
    assert!(isv.verifies(&n), "{}", got[0].body);
    assert_eq!(
        (
            n["app_id"].as_str(),
            n["auth_app_id"].as_str(),
            n["seller_id"].as_str()
        ),
        (isv.app_id(), auth_app, seller)
    );
    // Refund under the authorization too.
    let r = isv
        .call(
            &app,
            "alipay.trade.refund",
            json!({"out_trade_no": no, "refund_amount": "0.20", "out_request_no": "RF1"}),
            &[("app_auth_token", token)],
        )
        .await;
    assert_eq!(
        (r["code"].as_str(), r["fund_change"].as_str()),
        (Some("10000"), Some("Y")),
        "{r}"
    );
}
