//! End-to-end tests of the channel sandboxes (WeChat Pay, Alipay, Lakala),
//! speaking the protocol the way a merchant does: raw reqwest, XML/JSON/forms
//! by hand, signatures with cashdesk-crypto, a local receiver for
//! notifications.

mod alipay;
mod alipay_bills;
mod bills;
mod exposure;
mod faults;
mod lakala;
mod notify;
mod partner;
mod refunds;
mod subscribe;
mod v2;
mod v3;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use cashdesk_crypto::wxv2::{self, WxSignType};
use cashdesk_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

pub struct TestApp {
    pub sandbox: Sandbox,
    /// `http://127.0.0.1:<port>` (the host server's mount).
    pub origin: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// Bodies posted to the host's `/api/cashier-desk/notify/{id}`.
    pub own_notify: Arc<Mutex<Vec<String>>>,
}

/// A sandbox on a fresh port with `schedule`, notifying every loopback
/// URL (the tests' receivers listen there), on `dir` or a new folder.
pub async fn spawn_with(schedule: Vec<Duration>, dir: Option<tempfile::TempDir>) -> TestApp {
    spawn_configured(dir, |c| {
        *c = c.clone().with_notify_schedule(schedule);
        c.tls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.notify_targets.loopback_path = Some("/".into());
    })
    .await
}

/// A sandbox on a fresh port, its config ([`SandboxConfig::new`]'s
/// defaults) changed by `configure`. The host router also answers
/// `/api/cashier-desk/notify/{id}` like a cashdesk would (v2 XML
/// acknowledgement), recording what it gets in [`TestApp::own_notify`].
pub async fn spawn_configured(
    dir: Option<tempfile::TempDir>,
    configure: impl FnOnce(&mut SandboxConfig),
) -> TestApp {
    let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let mut config = SandboxConfig::new(dir.path(), origin.clone());
    configure(&mut config);
    let sandbox = Sandbox::start(config).await.unwrap();
    let own_notify: Arc<Mutex<Vec<String>>> = Arc::default();
    let store = own_notify.clone();
    let router = sandbox.router().route(
        "/api/cashier-desk/notify/{id}",
        axum::routing::post(move |body: String| {
            store.lock().unwrap().push(body);
            async { "<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>" }
        }),
    );
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestApp {
        sandbox,
        origin,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        dir,
        own_notify,
    }
}

pub async fn spawn() -> TestApp {
    spawn_with(vec![Duration::from_millis(100); 4], None).await
}

/// A merchant's view of its sandbox credentials.
#[derive(Clone)]
pub struct Merchant {
    pub creds: Value,
}

impl Merchant {
    pub fn mch_id(&self) -> &str {
        self.creds["mchId"].as_str().unwrap()
    }
    pub fn app_id(&self) -> &str {
        self.creds["credentialsV2"]["appId"].as_str().unwrap()
    }
    pub fn api_key(&self) -> &str {
        self.creds["credentialsV2"]["apiKey"].as_str().unwrap()
    }
    pub fn api_v3_key(&self) -> &str {
        self.creds["credentialsV3"]["apiV3Key"].as_str().unwrap()
    }
    pub fn base_url(&self) -> &str {
        self.creds["baseUrl"].as_str().unwrap()
    }
    pub fn tls_base_url(&self) -> &str {
        self.creds["tlsBaseUrl"].as_str().unwrap()
    }
    pub fn platform_key(&self) -> RsaPublicKey {
        RsaPublicKey::from_pem(
            self.creds["credentialsV3"]["platformCertPem"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    }
    pub fn platform_serial(&self) -> &str {
        self.creds["credentialsV3"]["platformSerial"]
            .as_str()
            .unwrap()
    }

    /// A client for the HTTPS listener: trusts the sandbox CA, presents
    /// this merchant's certificate when `with_cert`.
    pub fn tls_client(&self, with_cert: bool) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(
            self.creds["credentialsV2"]["caCertPem"]
                .as_str()
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(20));
        if with_cert {
            let pem = format!(
                "{}\n{}",
                self.creds["credentialsV2"]["certPem"].as_str().unwrap(),
                self.creds["credentialsV2"]["keyPem"].as_str().unwrap()
            );
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }
}

impl TestApp {
    pub async fn open_merchant(&self, sign_type: &str) -> Merchant {
        let resp = self
            .http
            .post(format!("{}/sandbox/api/merchants", self.origin))
            .json(&json!({"channelType": "wx-pay", "signType": sign_type}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        Merchant {
            creds: resp.json().await.unwrap(),
        }
    }

    pub async fn pay(&self, out_trade_no: &str, result: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/sandbox/api/pay", self.origin))
            .json(&json!({"channelType": "wx-pay", "outTradeNo": out_trade_no, "result": result}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    pub async fn fault(&self, body: Value) {
        let resp = self
            .http
            .post(format!("{}/sandbox/api/faults", self.origin))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }
}

pub fn out_trade_no() -> String {
    format!("T{}", cashdesk_crypto::random::nonce_str(20))
}

// ---- v2 (XML) ----

pub fn to_xml(p: &BTreeMap<String, String>) -> String {
    let mut s = String::from("<xml>");
    for (k, v) in p {
        s.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
    }
    s.push_str("</xml>");
    s
}

pub fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Sign `p` (adding appid, mch_id, nonce_str, sign_type), POST it, parse the
/// answer and verify its signature when it is a `return_code=SUCCESS` one.
pub async fn v2_call(
    client: &reqwest::Client,
    url: &str,
    m: &Merchant,
    mut p: BTreeMap<String, String>,
    sign_type: WxSignType,
) -> BTreeMap<String, String> {
    p.entry("appid".into()).or_insert_with(|| m.app_id().into());
    p.entry("mch_id".into())
        .or_insert_with(|| m.mch_id().into());
    p.insert("nonce_str".into(), cashdesk_crypto::random::nonce_str(32));
    if sign_type == WxSignType::HmacSha256 {
        p.insert("sign_type".into(), "HMAC-SHA256".into());
    }
    let sign = wxv2::sign(&p, m.api_key(), sign_type);
    p.insert("sign".into(), sign);
    v2_post_raw(client, url, m, &to_xml(&p), sign_type).await
}

pub async fn v2_post_raw(
    client: &reqwest::Client,
    url: &str,
    m: &Merchant,
    body: &str,
    sign_type: WxSignType,
) -> BTreeMap<String, String> {
    let resp = client.post(url).body(body.to_owned()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let f = cashdesk_sandbox::xml::parse(&text).unwrap();
    if f["return_code"] == "SUCCESS" {
        assert!(
            wxv2::verify(&f, m.api_key(), sign_type),
            "response signature: {text}"
        );
    } else {
        assert!(!f.contains_key("sign"), "FAIL answers are unsigned");
    }
    f
}

pub fn unified(trade_type: &str, no: &str, notify_url: &str) -> BTreeMap<String, String> {
    let mut p = params(&[
        ("body", "sandbox test"),
        ("out_trade_no", no),
        ("total_fee", "101"),
        ("spbill_create_ip", "127.0.0.1"),
        ("notify_url", notify_url),
        ("trade_type", trade_type),
    ]);
    match trade_type {
        "JSAPI" => {
            p.insert("openid".into(), "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into());
        }
        "NATIVE" => {
            p.insert("product_id".into(), "p1".into());
        }
        "MWEB" => {
            p.insert(
                "scene_info".into(),
                r#"{"h5_info":{"type":"Wap","wap_url":"https://m.example.com","wap_name":"shop"}}"#
                    .into(),
            );
        }
        _ => {}
    }
    p
}

// ---- v3 (JSON) ----

pub struct V3Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl V3Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

pub fn v3_authorization(
    m: &Merchant,
    method: &str,
    path_and_query: &str,
    body: &str,
    ts: i64,
) -> String {
    let key = RsaPrivateKey::from_pem(m.creds["credentialsV3"]["privateKeyPem"].as_str().unwrap())
        .unwrap();
    let nonce = cashdesk_crypto::random::nonce_str(32);
    let msg = format!("{method}\n{path_and_query}\n{ts}\n{nonce}\n{body}\n");
    let sig = key.sign_sha256_base64(msg.as_bytes()).unwrap();
    format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{sig}\",timestamp=\"{ts}\",serial_no=\"{}\"",
        m.mch_id(),
        m.creds["credentialsV3"]["serialNo"].as_str().unwrap()
    )
}

/// Call a v3 endpoint with a signed Authorization and verify the response
/// signature against the configured platform certificate.
pub async fn v3_call(
    client: &reqwest::Client,
    base: &str,
    m: &Merchant,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> V3Response {
    let url = reqwest::Url::parse(&format!("{base}{path}")).unwrap();
    let pq = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = v3_authorization(m, method, &pq, &body, chrono::Utc::now().timestamp());
    v3_send(client, url, m, method, &body, &auth).await
}

pub async fn v3_send(
    client: &reqwest::Client,
    url: reqwest::Url,
    m: &Merchant,
    method: &str,
    body: &str,
    auth: &str,
) -> V3Response {
    let mut req = client
        .request(method.parse().unwrap(), url)
        .header("Authorization", auth)
        .header("Accept", "application/json");
    if method == "POST" {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    verify_v3_signature(m, &headers, &body);
    V3Response {
        status,
        headers,
        body,
    }
}

pub fn verify_v3_signature(m: &Merchant, headers: &reqwest::header::HeaderMap, body: &str) {
    let h = |n: &str| {
        headers
            .get(n)
            .unwrap_or_else(|| panic!("missing {n}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(h("Wechatpay-Serial"), m.platform_serial());
    let ts: i64 = h("Wechatpay-Timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 300);
    let msg = format!("{ts}\n{}\n{body}\n", h("Wechatpay-Nonce"));
    m.platform_key()
        .verify_sha256_base64(msg.as_bytes(), &h("Wechatpay-Signature"))
        .expect("platform signature verifies");
}

pub fn decrypt_resource(m: &Merchant, notification: &Value) -> Value {
    use base64::Engine as _;
    let r = &notification["resource"];
    assert_eq!(r["algorithm"], "AEAD_AES_256_GCM");
    let ct = base64::engine::general_purpose::STANDARD
        .decode(r["ciphertext"].as_str().unwrap())
        .unwrap();
    let plain = cashdesk_crypto::aead::aes_gcm_decrypt(
        m.api_v3_key().as_bytes(),
        r["nonce"].as_str().unwrap().as_bytes(),
        r["associated_data"].as_str().unwrap().as_bytes(),
        &ct,
    )
    .unwrap();
    serde_json::from_slice(&plain).unwrap()
}

// ---- notification receiver ----

#[derive(Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
    pub at: Instant,
}

pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "expected {n} notifications, got {}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.all()
    }
}

/// A merchant notify endpoint on 127.0.0.1:0 that refuses the first
/// `fail_first` deliveries and acknowledges the rest, in the v2 (XML) or
/// v3 (status) way.
pub async fn receiver(fail_first: usize, v3: bool) -> Receiver {
    if v3 {
        receiver_with(
            fail_first,
            (204, String::new()),
            (500, r#"{"code":"FAIL","message":"busy"}"#.to_owned()),
        )
        .await
    } else {
        receiver_with(
            fail_first,
            (
                200,
                "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>".to_owned(),
            ),
            (
                200,
                "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[busy]]></return_msg></xml>".to_owned(),
            ),
        )
        .await
    }
}

/// A notify endpoint answering `fail` (status, body) to the first
/// `fail_first` deliveries and `ok` to the rest.
pub async fn receiver_with(fail_first: usize, ok: (u16, String), fail: (u16, String)) -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let store = store.clone();
            let (ok, fail) = (ok.clone(), fail.clone());
            async move {
                let n = {
                    let mut g = store.lock().unwrap();
                    g.push(Received {
                        headers,
                        body,
                        at: Instant::now(),
                    });
                    g.len()
                };
                let (status, body) = if n > fail_first { ok } else { fail };
                (axum::http::StatusCode::from_u16(status).unwrap(), body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver { url, got }
}

#[tokio::test]
async fn merchant_credentials_have_the_channel_config_shape_and_persist() {
    let app = spawn().await;
    let m = app.open_merchant("HMAC-SHA256").await;
    let c = &m.creds;
    let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "baseUrl",
            "credentialsV2",
            "credentialsV3",
            "mchId",
            "tlsBaseUrl"
        ]
    );
    assert_eq!(m.mch_id().len(), 10);
    assert!(m.app_id().starts_with("wx"));
    assert_eq!(m.api_key().len(), 32);
    assert_eq!(m.api_v3_key().len(), 32);
    assert_eq!(c["credentialsV2"]["signType"], "HMAC-SHA256");
    assert_eq!(c["credentialsV3"]["appId"], m.app_id());
    assert_eq!(m.base_url(), format!("{}/sandbox/wechat", app.origin));
    assert_eq!(m.tls_base_url(), app.sandbox.refund_tls_url());
    assert_eq!(c["credentialsV2"]["refundBaseUrl"], m.tls_base_url());
    assert!(m.tls_base_url().starts_with("https://127.0.0.1:"));
    assert_eq!(c["credentialsV2"]["caCertPem"], app.sandbox.ca_cert_pem());

    // The API certificate: serial is the v3 serial_no, and its key is the v3 key.
    let cert = cashdesk_crypto::cert::Certificate::from_pem(
        c["credentialsV2"]["certPem"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(
        cert.serial_hex(),
        c["credentialsV3"]["serialNo"].as_str().unwrap()
    );
    assert_eq!(
        c["credentialsV2"]["keyPem"],
        c["credentialsV3"]["privateKeyPem"]
    );
    let key =
        RsaPrivateKey::from_pem(c["credentialsV3"]["privateKeyPem"].as_str().unwrap()).unwrap();
    let sig = key.sign_sha256(b"x").unwrap();
    cert.rsa_public_key()
        .unwrap()
        .verify_sha256(b"x", &sig)
        .unwrap();
    // Platform certificate and public key agree, and the serial is the cert's.
    let platform = cashdesk_crypto::cert::Certificate::from_pem(
        c["credentialsV3"]["platformCertPem"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(platform.serial_hex(), m.platform_serial());
    assert_eq!(
        platform.rsa_public_key().unwrap(),
        RsaPublicKey::from_pem(c["credentialsV3"]["platformPublicKeyPem"].as_str().unwrap())
            .unwrap()
    );

    // Unsupported channel types are refused.
    let resp = app
        .http
        .post(format!("{}/sandbox/api/merchants", app.origin))
        .json(&json!({"channelType": "unionpay"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // The files holding keys are private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for f in ["merchants.jsonl", "pki.json", "ledger.jsonl"] {
            let mode = std::fs::metadata(app.dir.path().join("sandbox").join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }

    // A restart on the same folder keeps the CA, the platform key and the merchant.
    let ca = app.sandbox.ca_cert_pem();
    app.sandbox.shutdown().await;
    let TestApp { dir, .. } = app;
    let app = spawn_with(vec![Duration::from_millis(100)], Some(dir)).await;
    assert_eq!(app.sandbox.ca_cert_pem(), ca);
    let mut m2 = m.clone();
    m2.creds["baseUrl"] = json!(app.sandbox.base_url());
    let f = v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m2.base_url()),
        &m2,
        unified("APP", &out_trade_no(), "http://127.0.0.1:9/notify"),
        WxSignType::HmacSha256,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS", "{f:?}");
    // And the platform signature still verifies with the old credentials.
    let r = v3_call(
        &app.http,
        &app.sandbox.base_url(),
        &m2,
        "GET",
        &format!(
            "/v3/pay/transactions/out-trade-no/NOPE000001?mchid={}",
            m2.mch_id()
        ),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn payer_page_pays_and_cancels_without_javascript() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let rx = receiver(0, false).await;
    let no = out_trade_no();
    let f = v2_call(
        &app.http,
        &format!("{}/pay/unifiedorder", m.base_url()),
        &m,
        unified("NATIVE", &no, &rx.url),
        WxSignType::Md5,
    )
    .await;
    let code_url = f["code_url"].clone();
    assert!(code_url.starts_with(&format!("{}/sandbox/wechat/pay/wx", app.origin)));

    let html = app
        .http
        .get(&code_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("SANDBOX"));
    assert!(html.contains("¥1.01"));
    assert!(html.contains(m.mch_id()));
    assert!(html.contains("<form method=\"post\""));
    assert!(!html.contains("<script"));
    assert!(
        !html.contains("src=") && !html.contains("<link"),
        "no external assets"
    );

    let resp = app
        .http
        .post(&code_url)
        .form(&[("action", "cancel")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let q = v2_call(
        &app.http,
        &format!("{}/pay/orderquery", m.base_url()),
        &m,
        params(&[("out_trade_no", &no)]),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(q["trade_state"], "NOTPAY");

    let resp = app
        .http
        .post(&code_url)
        .form(&[("action", "pay")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Payment successful"));
    rx.wait_for(1, Duration::from_secs(5)).await;
    let q = v2_call(
        &app.http,
        &format!("{}/pay/orderquery", m.base_url()),
        &m,
        params(&[("out_trade_no", &no)]),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(q["trade_state"], "SUCCESS");
    let resp = app
        .http
        .post(&code_url)
        .form(&[("action", "pay")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);

    let missing = app
        .http
        .get(format!("{}/sandbox/wechat/pay/wxnope", app.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn request_log_shows_calls_and_notifications() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let rx = receiver(0, false).await;
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
    rx.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log: Value = app
        .http
        .get(format!(
            "{}/sandbox/api/requests?mchId={}",
            app.origin,
            m.mch_id()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log["requests"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["kind"] == "api"
        && e["target"] == "/sandbox/wechat/pay/unifiedorder"
        && e["result"] == "SUCCESS"));
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "payer" && e["result"] == "PAID")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "notify" && e["result"] == "ACKED")
    );
    // Keys never appear in the log.
    let text = log.to_string();
    assert!(!text.contains(m.api_key()));
}

#[tokio::test]
async fn wechat_oauth_issues_single_use_codes_for_the_openid() {
    let app = spawn_configured(None, |c| c.oauth_domains = vec!["shop.example.com".into()]).await;
    let m = app.open_merchant("MD5").await;
    let secret = m.creds["credentialsV2"]["appSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(secret.len(), 32);
    assert_eq!(m.creds["credentialsV3"]["appSecret"], secret.as_str());
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = |appid: &str, scope: &str| {
        reqwest::Url::parse_with_params(
            &format!("{}/sandbox/wechat/connect/oauth2/authorize", app.origin),
            &[
                ("appid", appid),
                ("redirect_uri", "https://shop.example.com/back?x=1"),
                ("response_type", "code"),
                ("scope", scope),
                ("state", "abc123"),
            ],
        )
        .unwrap()
    };
    // Unknown appid or scope: WeChat's error page, no redirect.
    for url in [
        authorize("wxnope", "snsapi_base"),
        authorize(m.app_id(), "snsapi_all"),
    ] {
        let resp = no_redirect.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.text().await.unwrap().contains("SANDBOX"));
    }
    let resp = no_redirect
        .get(authorize(m.app_id(), "snsapi_base"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let back = reqwest::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.host_str(), Some("shop.example.com"));
    let q: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!((q["x"].as_str(), q["state"].as_str()), ("1", "abc123"));
    let code = q["code"].clone();
    let exchange = |appid: &str, secret: &str, code: &str| {
        reqwest::Url::parse_with_params(
            &format!("{}/sandbox/wechat/sns/oauth2/access_token", app.origin),
            &[
                ("appid", appid),
                ("secret", secret),
                ("code", code),
                ("grant_type", "authorization_code"),
            ],
        )
        .unwrap()
    };
    let call = |url: reqwest::Url| {
        let http = app.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200, "WeChat answers errors with HTTP 200");
            r.json::<Value>().await.unwrap()
        }
    };
    let v = call(exchange(m.app_id(), "wrong", &code)).await;
    assert_eq!(v["errcode"], 40125);
    let v = call(exchange("wxnope", &secret, &code)).await;
    assert_eq!(v["errcode"], 40013);
    let v = call(exchange(m.app_id(), &secret, &code)).await;
    let openid = v["openid"].as_str().unwrap().to_owned();
    assert_eq!(openid.len(), 28);
    assert_eq!(v["scope"], "snsapi_base");
    assert_eq!(v["expires_in"], 7200);
    let v = call(exchange(m.app_id(), &secret, &code)).await;
    assert_eq!(v["errcode"], 40163, "a code is used once");
    let v = call(exchange(m.app_id(), &secret, "made-up")).await;
    assert_eq!(v["errcode"], 40029);
    // The same user comes back with the same openid.
    let resp = no_redirect
        .get(authorize(m.app_id(), "snsapi_base"))
        .send()
        .await
        .unwrap();
    let back = reqwest::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code2 = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_ne!(code2, code);
    let v = call(exchange(m.app_id(), &secret, &code2)).await;
    assert_eq!(v["openid"], openid.as_str());
}
