//! The Lakala sandbox, spoken as a merchant: `LKLAPI-SHA256withRSA`
//! requests, response headers verified with the Lakala certificate,
//! notifications verified with the separate notify certificate.

use std::time::Duration;

use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};

use crate::*;

pub struct Lkl {
    pub creds: Value,
}

pub struct LklResponse {
    pub status: u16,
    pub body: String,
}

impl LklResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

impl Lkl {
    fn c(&self, k: &str) -> &str {
        self.creds["credentials"][k].as_str().unwrap()
    }
    pub fn merchant_no(&self) -> &str {
        self.c("merchantNo")
    }
    pub fn term_no(&self) -> &str {
        self.c("termNo")
    }

    pub fn authorization(&self, body: &str) -> String {
        let key = RsaPrivateKey::from_pem(self.c("privateKeyPem")).unwrap();
        let ts = chrono::Utc::now().timestamp();
        let nonce = cashdesk_crypto::random::nonce_str(12);
        let msg = format!(
            "{}\n{}\n{ts}\n{nonce}\n{body}\n",
            self.c("appId"),
            self.c("serialNo")
        );
        let sig = key.sign_sha256_base64(msg.as_bytes()).unwrap();
        format!(
            "LKLAPI-SHA256withRSA appid=\"{}\",serial_no=\"{}\",timestamp=\"{ts}\",nonce_str=\"{nonce}\",signature=\"{sig}\"",
            self.c("appId"),
            self.c("serialNo")
        )
    }

    /// POST `req_data` in the v3 envelope, signed; verify the answer's
    /// Lklapi-* signature with `lklCertPem`.
    pub async fn call(&self, app: &TestApp, path: &str, req_data: Value) -> LklResponse {
        let body = json!({
            "req_time": cashdesk_core::time::to_compact(chrono::Utc::now()),
            "version": "3.0",
            "req_data": req_data,
        })
        .to_string();
        let auth = self.authorization(&body);
        self.send(app, path, body, &auth).await
    }

    pub async fn send(&self, app: &TestApp, path: &str, body: String, auth: &str) -> LklResponse {
        let resp = app
            .http
            .post(format!("{}{path}", self.creds["baseUrl"].as_str().unwrap()))
            .header("Authorization", auth)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let body = resp.text().await.unwrap();
        let get = |n: &str| {
            h.get(n)
                .unwrap_or_else(|| panic!("missing {n}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let lkl_cert = cashdesk_crypto::cert::Certificate::from_pem(self.c("lklCertPem")).unwrap();
        assert_eq!(
            get("Lklapi-Serial"),
            lkl_cert.serial_hex().to_ascii_lowercase()
        );
        let msg = format!(
            "{}\n{}\n{}\n{}\n{body}\n",
            get("Lklapi-Appid"),
            get("Lklapi-Serial"),
            get("Lklapi-Timestamp"),
            get("Lklapi-Nonce")
        );
        lkl_cert
            .rsa_public_key()
            .unwrap()
            .verify_sha256_base64(msg.as_bytes(), &get("Lklapi-Signature"))
            .expect("Lakala response signature verifies");
        LklResponse { status, body }
    }

    /// Verify a notification with the notify certificate.
    pub fn notification_verifies(&self, r: &Received, with_cert: &str) -> bool {
        let auth = r.headers["authorization"].to_str().unwrap();
        let rest = auth.strip_prefix("LKLAPI-SHA256withRSA ").unwrap();
        let field = |k: &str| {
            rest.split(',')
                .find_map(|p| p.trim().strip_prefix(&format!("{k}=\"")))
                .unwrap()
                .trim_end_matches('"')
                .to_owned()
        };
        let msg = format!(
            "{}\n{}\n{}\n",
            field("timestamp"),
            field("nonce_str"),
            r.body
        );
        RsaPublicKey::from_pem(self.c(with_cert))
            .unwrap()
            .verify_sha256_base64(msg.as_bytes(), &field("signature"))
            .is_ok()
    }

    pub fn preorder(
        &self,
        no: &str,
        trans_type: &str,
        account_type: &str,
        notify_url: &str,
    ) -> Value {
        json!({
            "merchant_no": self.merchant_no(), "term_no": self.term_no(), "out_trade_no": no,
            "account_type": account_type, "trans_type": trans_type, "total_amount": "101",
            "location_info": {"request_ip": "127.0.0.1"}, "subject": "lakala test", "notify_url": notify_url,
            "acc_busi_fields": {"sub_appid": "wx1234567890abcdef", "user_id": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        })
    }
}

pub async fn open_lakala(app: &TestApp) -> Lkl {
    let resp = app
        .http
        .post(format!("{}/sandbox/api/merchants", app.origin))
        .json(&json!({"channelType": "lakala"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    Lkl {
        creds: resp.json().await.unwrap(),
    }
}

pub async fn lakala_receiver(fail_first: usize) -> Receiver {
    receiver_with(
        fail_first,
        (200, r#"{"code":"SUCCESS","message":"执行成功"}"#.into()),
        (200, r#"{"code":"FAIL","message":"busy"}"#.into()),
    )
    .await
}

pub const PREORDER: &str = "/api/v3/labs/trans/preorder";
const QUERY: &str = "/api/v3/labs/query/tradequery";
const CLOSE: &str = "/api/v3/labs/relation/close";
const REFUND: &str = "/api/v3/labs/relation/refund";

fn lkl_no() -> String {
    format!("L{}", cashdesk_crypto::random::nonce_str(20))
}

#[tokio::test]
async fn lakala_credentials_have_the_config_shape() {
    let app = spawn().await;
    let l = open_lakala(&app).await;
    let mut keys: Vec<&str> = l
        .creds
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["baseUrl", "credentials", "mchId", "subAppSecret"]);
    let mut ck: Vec<&str> = l.creds["credentials"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    ck.sort();
    assert_eq!(
        ck,
        [
            "appId",
            "lklCertPem",
            "lklNotifyCertPem",
            "merchantNo",
            "privateKeyPem",
            "serialNo",
            "subAppId",
            "termNo"
        ]
    );
    // The WeChat AppID for mini/jsapi: AppID-shaped, distinct per app.
    let sub = l.c("subAppId");
    assert!(sub.starts_with("wx") && sub.len() == 18, "{sub}");
    assert_eq!(l.creds["mchId"], l.merchant_no());
    assert_eq!(
        l.creds["baseUrl"].as_str().unwrap(),
        app.sandbox.lakala_base_url()
    );
    assert!(l.c("appId").starts_with("OP"));
    assert_eq!(l.merchant_no().len(), 15);
    assert_eq!(l.term_no().len(), 8);
    // Two different Lakala keys: responses and notifications.
    assert_ne!(
        RsaPublicKey::from_pem(l.c("lklCertPem")).unwrap(),
        RsaPublicKey::from_pem(l.c("lklNotifyCertPem")).unwrap()
    );
}

#[tokio::test]
async fn lakala_mini_program_pay_notify_query_refund() {
    let app = spawn_with(vec![Duration::from_millis(150); 5], None).await;
    let l = open_lakala(&app).await;
    let rx = lakala_receiver(1).await;
    let no = lkl_no();
    let r = l
        .call(&app, PREORDER, l.preorder(&no, "71", "WECHAT", &rx.url))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["code"], "BBS00000", "{v}");
    assert_eq!(v["resp_time"].as_str().unwrap().len(), 14);
    let d = &v["resp_data"];
    assert_eq!(d["merchant_no"], l.merchant_no());
    assert_eq!(d["out_trade_no"], no.as_str());
    let trade_no = d["trade_no"].as_str().unwrap().to_owned();
    let f = &d["acc_resp_fields"];
    assert_eq!(f["app_id"], "wx1234567890abcdef");
    assert_eq!(f["sign_type"], "RSA");
    assert!(f["package"].as_str().unwrap().starts_with("prepay_id=wx"));
    for k in ["time_stamp", "nonce_str", "pay_sign", "prepay_id"] {
        assert!(f[k].as_str().is_some_and(|s| !s.is_empty()), "{k}");
    }
    // Missing openid for 71 is refused.
    let mut bad = l.preorder(&lkl_no(), "71", "WECHAT", &rx.url);
    bad["acc_busi_fields"] = json!({"sub_appid": "wx1"});
    assert_eq!(l.call(&app, PREORDER, bad).await.json()["code"], "BBS10002");
    // subject is at most 42 bytes: 14 Chinese characters fit, 15 do not.
    let mut bad = l.preorder(&lkl_no(), "71", "WECHAT", &rx.url);
    bad["subject"] = json!("拿".repeat(15));
    assert_eq!(l.call(&app, PREORDER, bad).await.json()["code"], "BBS10002");
    let mut ok = l.preorder(&lkl_no(), "71", "WECHAT", &rx.url);
    ok["subject"] = json!("拿".repeat(14));
    assert_eq!(l.call(&app, PREORDER, ok).await.json()["code"], "BBS00000");

    let q = l
        .call(
            &app,
            QUERY,
            json!({"merchant_no": l.merchant_no(), "term_no": l.term_no(), "out_trade_no": no}),
        )
        .await
        .json();
    assert_eq!(q["resp_data"]["trade_state"], "CREATE");

    let (status, paid) = crate::alipay::pay(&app, "lakala", &no, "SUCCESS").await;
    assert_eq!(
        (status, paid["tradeState"].as_str()),
        (200, Some("SUCCESS"))
    );
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.count(), 2, "acknowledged on the second attempt");
    for g in &got {
        assert!(l.notification_verifies(g, "lklNotifyCertPem"));
        assert!(
            !l.notification_verifies(g, "lklCertPem"),
            "the notify key is separate"
        );
    }
    assert_ne!(
        got[0].headers["authorization"],
        got[1].headers["authorization"]
    );
    let n: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(n["trade_status"], "SUCCESS");
    assert_eq!(n["out_trade_no"], no.as_str());
    assert_eq!(n["trade_no"], trade_no.as_str());
    assert_eq!(n["merchant_no"], l.merchant_no());
    assert_eq!(n["total_amount"], "101");
    assert_eq!(n["account_type"], "WECHAT");
    assert_eq!(n["user_id2"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    assert!(n["acc_trade_no"].as_str().unwrap().starts_with("4200"));
    assert_eq!(n["trade_time"].as_str().unwrap().len(), 14);

    let q = l
        .call(
            &app,
            QUERY,
            json!({"merchant_no": l.merchant_no(), "term_no": l.term_no(), "trade_no": trade_no}),
        )
        .await
        .json();
    assert_eq!(q["resp_data"]["trade_state"], "SUCCESS");
    assert_eq!(q["resp_data"]["acc_trade_no"], n["acc_trade_no"]);

    // Refunds: partial, idempotent, bounded; a refund is a trade too.
    let refund = |amount: &str, rno: &str| {
        json!({"merchant_no": l.merchant_no(), "term_no": l.term_no(), "out_trade_no": rno, "refund_amount": amount,
               "origin_out_trade_no": no, "location_info": {"request_ip": "127.0.0.1"}, "refund_reason": "test"})
    };
    let r = l.call(&app, REFUND, refund("40", "R1")).await.json();
    assert_eq!(r["code"], "BBS00000", "{r}");
    assert_eq!(
        (
            r["resp_data"]["trade_state"].as_str(),
            r["resp_data"]["refund_amount"].as_str()
        ),
        (Some("SUCCESS"), Some("40"))
    );
    assert_eq!(r["resp_data"]["origin_trade_no"], trade_no.as_str());
    let again = l.call(&app, REFUND, refund("40", "R1")).await.json();
    assert_eq!(again["resp_data"]["trade_no"], r["resp_data"]["trade_no"]);
    assert_eq!(
        l.call(&app, REFUND, refund("62", "R2")).await.json()["code"],
        "BBS11006"
    );
    let q = l
        .call(
            &app,
            QUERY,
            json!({"merchant_no": l.merchant_no(), "term_no": l.term_no(), "out_trade_no": no}),
        )
        .await
        .json();
    assert_eq!(q["resp_data"]["trade_state"], "PART_REFUND");
    let rq = l
        .call(
            &app,
            QUERY,
            json!({"merchant_no": l.merchant_no(), "term_no": l.term_no(), "out_trade_no": "R1"}),
        )
        .await
        .json();
    assert_eq!(
        (
            rq["resp_data"]["trade_type"].as_str(),
            rq["resp_data"]["refund_amount"].as_str()
        ),
        (Some("REFUND"), Some("40"))
    );
    l.call(&app, REFUND, refund("61", "R2")).await;
    let q = l
        .call(
            &app,
            QUERY,
            json!({"merchant_no": l.merchant_no(), "term_no": l.term_no(), "out_trade_no": no}),
        )
        .await
        .json();
    assert_eq!(q["resp_data"]["trade_state"], "REFUND");
    // Closing a paid order is refused.
    let c = l.call(&app, CLOSE, json!({"merchant_no": l.merchant_no(), "term_no": l.term_no(), "origin_out_trade_no": no, "location_info": {"request_ip": "127.0.0.1"}})).await.json();
    assert_eq!(c["code"], "BBS11004");
    assert_eq!(rx.count(), 2, "refunds are not notified");
}

#[tokio::test]
async fn lakala_scenes_close_and_errors() {
    let app = spawn().await;
    let l = open_lakala(&app).await;
    let rx = lakala_receiver(0).await;

    let mut native = l.preorder(&lkl_no(), "41", "ALIPAY", &rx.url);
    native["acc_busi_fields"] = Value::Null;
    let native = l.call(&app, PREORDER, native).await.json();
    let code = native["resp_data"]["acc_resp_fields"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(code.starts_with(&format!("{}/sandbox/lakala/pay/", app.origin)));
    let html = app
        .http
        .get(&code)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("SANDBOX")
            && html.contains("¥1.01")
            && html.contains("<form method=\"post\"")
    );
    assert!(!html.contains("<script") && !html.contains("src="));
    let resp = app
        .http
        .post(&code)
        .form(&[("action", "pay")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let n: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(n["account_type"], "ALIPAY");
    assert!(n["user_id2"].as_str().unwrap().starts_with("2088"));

    let h5 = l
        .call(
            &app,
            PREORDER,
            l.preorder(&lkl_no(), "81", "ALIPAY", &rx.url),
        )
        .await
        .json();
    assert!(
        h5["resp_data"]["acc_resp_fields"]["redirect_url"]
            .as_str()
            .unwrap()
            .contains("/sandbox/lakala/pay/")
    );
    let jsapi = l
        .call(
            &app,
            PREORDER,
            l.preorder(&lkl_no(), "51", "ALIPAY", &rx.url),
        )
        .await
        .json();
    assert_eq!(
        jsapi["resp_data"]["acc_resp_fields"]["prepay_id"]
            .as_str()
            .unwrap()
            .len(),
        28
    );
    let wrong = l
        .call(
            &app,
            PREORDER,
            l.preorder(&lkl_no(), "81", "WECHAT", &rx.url),
        )
        .await
        .json();
    assert_eq!(wrong["code"], "BBS10002");

    // Close: idempotent; the closed order cannot be paid.
    let no = lkl_no();
    l.call(&app, PREORDER, l.preorder(&no, "41", "WECHAT", &rx.url))
        .await;
    let close = json!({"merchant_no": l.merchant_no(), "term_no": l.term_no(), "origin_out_trade_no": no, "location_info": {"request_ip": "127.0.0.1"}});
    for _ in 0..2 {
        let c = l.call(&app, CLOSE, close.clone()).await.json();
        assert_eq!(c["code"], "BBS00000", "{c}");
    }
    let q = l
        .call(
            &app,
            QUERY,
            json!({"merchant_no": l.merchant_no(), "term_no": l.term_no(), "out_trade_no": no}),
        )
        .await
        .json();
    assert_eq!(q["resp_data"]["trade_state"], "CLOSE");
    assert_eq!(
        crate::alipay::pay(&app, "lakala", &no, "SUCCESS").await.0,
        409
    );
    // Same out_trade_no, different amount.
    let mut changed = l.preorder(&no, "41", "WECHAT", &rx.url);
    changed["total_amount"] = json!("102");
    assert_eq!(
        l.call(&app, PREORDER, changed).await.json()["code"],
        "BBS11005"
    );

    // Failed payment: state FAIL, no notification.
    let no = lkl_no();
    l.call(&app, PREORDER, l.preorder(&no, "41", "WECHAT", &rx.url))
        .await;
    let (_, v) = crate::alipay::pay(&app, "lakala", &no, "FAIL").await;
    assert_eq!(v["tradeState"], "FAIL");

    // Signature errors: 401, signed, nothing created.
    let other = open_lakala(&app).await;
    let no = lkl_no();
    let body = json!({"req_time": cashdesk_core::time::to_compact(chrono::Utc::now()), "version": "3.0", "req_data": l.preorder(&no, "41", "WECHAT", &rx.url)}).to_string();
    let forged = other
        .authorization(&body)
        .replace(other.c("appId"), l.c("appId"))
        .replace(other.c("serialNo"), l.c("serialNo"));
    let r = l.send(&app, PREORDER, body.clone(), &forged).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("BBS10001"))
    );
    let r = l.send(&app, PREORDER, body.clone(), "Bearer nope").await;
    assert_eq!(r.status, 401);
    let tampered = body.replace("\"101\"", "\"1\"");
    let r = l
        .send(&app, PREORDER, tampered, &l.authorization(&body))
        .await;
    assert_eq!(r.status, 401);
    let q = l
        .call(
            &app,
            QUERY,
            json!({"merchant_no": l.merchant_no(), "term_no": l.term_no(), "out_trade_no": no}),
        )
        .await
        .json();
    assert_eq!(q["code"], "BBS11001");
    // A bad envelope.
    let r = l
        .send(
            &app,
            PREORDER,
            "{\"version\":\"2.0\"}".into(),
            &l.authorization("{\"version\":\"2.0\"}"),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("BBS10002"))
    );
}

#[tokio::test]
async fn two_stores_on_one_lakala_app_keep_their_merchant_numbers() {
    let app = spawn().await;
    let l = open_lakala(&app).await;
    let (rx1, rx2) = (lakala_receiver(0).await, lakala_receiver(0).await);
    // The second store's numbers, opened under the app.
    let resp = app
        .http
        .post(format!("{}/sandbox/api/merchants", app.origin))
        .json(&json!({"channelType": "lakala", "appId": l.c("appId")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let store: Value = resp.json().await.unwrap();
    let store2 = store["merchantNo"].as_str().unwrap().to_owned();
    let store2 = store2.as_str();
    let term2 = store["termNo"].as_str().unwrap().to_owned();
    assert_eq!(
        store["identity"],
        json!({"merchantNo": store2, "termNo": term2}),
        "pasteable as a cashdesk store identity"
    );
    let no = lkl_no();
    l.call(&app, PREORDER, l.preorder(&no, "41", "WECHAT", &rx1.url))
        .await;
    // Numbers that are not the app's (nor its stores') are refused.
    for (m, t) in [("822000000000002", "T0000002"), (store2, "T0000002")] {
        let mut foreign = l.preorder(&lkl_no(), "41", "WECHAT", &rx2.url);
        foreign["merchant_no"] = json!(m);
        foreign["term_no"] = json!(t);
        let r = l.call(&app, PREORDER, foreign).await.json();
        assert_eq!(r["code"], "BBS11009", "{r}");
    }
    let mut other = l.preorder(&no, "41", "WECHAT", &rx2.url);
    other["merchant_no"] = json!(store2);
    other["term_no"] = json!(term2);
    let r = l.call(&app, PREORDER, other).await.json();
    assert_eq!(
        (r["code"].as_str(), r["resp_data"]["merchant_no"].as_str()),
        (Some("BBS00000"), Some(store2))
    );
    // The same out_trade_no at two merchants is two orders: say which.
    let resp = app
        .http
        .post(format!("{}/sandbox/api/pay", app.origin))
        .json(&json!({"channelType": "lakala", "outTradeNo": no, "result": "SUCCESS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let resp = app
        .http
        .post(format!("{}/sandbox/api/pay", app.origin))
        .json(&json!({"channelType": "lakala", "outTradeNo": no, "result": "SUCCESS", "mchId": store2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = rx2.wait_for(1, Duration::from_secs(5)).await;
    let n: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(
        (n["merchant_no"].as_str(), n["term_no"].as_str()),
        (Some(store2), Some(term2.as_str()))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx1.count(), 0);
    // The refused call with the store's number and a wrong terminal is
    // filed under that number too.
    for (m, count) in [(l.merchant_no(), 1), (store2, 2)] {
        let log: Value = app
            .http
            .get(format!(
                "{}/sandbox/api/requests?mchId={m}&kind=api",
                app.origin
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entries = log["requests"].as_array().unwrap();
        assert_eq!(entries.len(), count, "{m}: {log}");
        assert_eq!(
            entries[0]["target"],
            "/sandbox/lakala/api/v3/labs/trans/preorder"
        );
    }
}

#[tokio::test]
async fn lakala_faults() {
    let app = spawn().await;
    let l = open_lakala(&app).await;
    let rx = lakala_receiver(0).await;
    app.fault(json!({"channelType": "lakala", "fault": "SYSTEMERROR", "mchId": l.merchant_no(), "pathContains": "preorder"})).await;
    let no = lkl_no();
    let r = l
        .call(&app, PREORDER, l.preorder(&no, "41", "WECHAT", &rx.url))
        .await
        .json();
    assert_eq!(r["code"], "BBS10000");
    let r = l
        .call(&app, PREORDER, l.preorder(&no, "41", "WECHAT", &rx.url))
        .await
        .json();
    assert_eq!(r["code"], "BBS00000");

    app.fault(json!({"channelType": "lakala", "fault": "HTTP_500"}))
        .await;
    let resp = app
        .http
        .post(format!("{}{QUERY}", l.creds["baseUrl"].as_str().unwrap()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.headers().get("Lklapi-Signature").is_none());

    app.fault(json!({"channelType": "lakala", "fault": "TAMPER_SIGNATURE"}))
        .await;
    crate::alipay::pay(&app, "lakala", &no, "SUCCESS").await;
    let no2 = lkl_no();
    l.call(&app, PREORDER, l.preorder(&no2, "41", "WECHAT", &rx.url))
        .await;
    app.fault(json!({"channelType": "lakala", "fault": "TAMPER_AMOUNT"}))
        .await;
    crate::alipay::pay(&app, "lakala", &no2, "SUCCESS").await;
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let by_no = |no: &str| got.iter().find(|g| g.body.contains(no)).unwrap().clone();
    let (a, b) = (by_no(&no), by_no(&no2));
    assert!(!l.notification_verifies(&a, "lklNotifyCertPem"));
    assert!(l.notification_verifies(&b, "lklNotifyCertPem"));
    let nb: Value = serde_json::from_str(&b.body).unwrap();
    assert_eq!(nb["total_amount"], "102");
}
