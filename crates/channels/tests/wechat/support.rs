//! Test doubles of WeChat Pay v2 and v3 (axum on 127.0.0.1:0): they verify
//! each request's signature exactly as WeChat does and answer with signed
//! responses, or with the fault a test asks for. Servers stop with the test's
//! runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cashdesk_channels::xml;
use cashdesk_channels::{ChannelEnv, HttpSettings};
use cashdesk_crypto::random::nonce_str;
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use cashdesk_crypto::wxv2::{self, WxSignType};
use serde_json::{Value, json};

pub const MCH_ID: &str = "1900000109";
pub const APP_ID: &str = "wx2421b1c4370ec43b";
pub const API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
pub const API_V3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
pub const MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
pub const PLATFORM_SERIAL: &str = "PUB_KEY_ID_0119000001092025010100000000";
pub const NOTIFY_URL: &str = "https://pay.example.com/api/cashier-desk/notify/C01TEST";

/// Keys shared by the whole test binary (RSA generation is slow-ish).
pub struct Keys {
    pub merchant: RsaPrivateKey,
    pub platform: RsaPrivateKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        merchant: RsaPrivateKey::generate_2048().unwrap(),
        platform: RsaPrivateKey::generate_2048().unwrap(),
    })
}

pub fn env() -> ChannelEnv {
    ChannelEnv {
        public_url: "https://pay.example.com".into(),
        notify_url: NOTIFY_URL.into(),
        http: HttpSettings {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_millis(800),
        },
        extra_root_ca_pems: vec![],
        oauth_base_url: None,
    }
}

/// What the double does with the requests that follow.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    None,
    /// v2: result_code FAIL / err_code SYSTEMERROR; v3: 500 SYSTEM_ERROR.
    SystemError,
    /// HTTP 500 with a plain body.
    Http500,
    /// Answer after 3 s (the client gives up after 0.8 s).
    Timeout,
    /// A signed business refusal.
    Business(&'static str, &'static str),
    /// A well-formed answer with a wrong signature.
    BadSign,
    /// A well-formed answer without signature.
    Unsigned,
    /// v3: signed with the right key but announced under another serial.
    WrongSerial,
    /// v3: signed, but with a timestamp 10 minutes old.
    StaleTimestamp,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub struct Double {
    pub fault: Mutex<Fault>,
    pub requests: Mutex<Vec<Recorded>>,
    /// trade_state the query answers (or ORDERNOTEXIST / ORDER_NOT_EXIST).
    pub trade_state: Mutex<String>,
    /// Amount the query reports as paid.
    pub paid_amount: Mutex<i64>,
    /// v2 sign type the double expects and answers with.
    pub v2_sign_type: WxSignType,
    /// Partner answers name another sub-merchant than the request's.
    pub wrong_sub_mch: Mutex<bool>,
}

impl Double {
    pub fn new(v2_sign_type: WxSignType) -> Arc<Self> {
        Arc::new(Self {
            fault: Mutex::new(Fault::None),
            requests: Mutex::new(Vec::new()),
            trade_state: Mutex::new("NOTPAY".into()),
            paid_amount: Mutex::new(100),
            v2_sign_type,
            wrong_sub_mch: Mutex::new(false),
        })
    }
    pub fn set_fault(&self, f: Fault) {
        *self.fault.lock().unwrap() = f;
    }
    pub fn fault(&self) -> Fault {
        self.fault.lock().unwrap().clone()
    }
    pub fn last(&self) -> Recorded {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request was made")
    }
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
    fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
        self.requests.lock().unwrap().push(Recorded {
            method: method.to_string(),
            path_and_query: uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: headers.clone(),
            body: body.to_vec(),
        });
    }
}

/// Serve `router` on 127.0.0.1:0; returns the address.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Both doubles; WeChat's paths live under `/wx` to prove base-URL prefixes work.
pub fn router(d: Arc<Double>) -> Router {
    Router::new().fallback(handle).with_state(d)
}

async fn handle(
    State(d): State<Arc<Double>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    d.record(&method, &uri, &headers, &body);
    let path = uri.path().strip_prefix("/wx/").unwrap_or("").to_owned();
    if d.fault() == Fault::Timeout {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if d.fault() == Fault::Http500 {
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    if path.starts_with("v3/") {
        v3(&d, &method, &uri, &headers, &body, &path)
    } else {
        v2(&d, &body, &path)
    }
}

// ---------------- v2 ----------------

fn v2_xml(fields: &BTreeMap<String, String>) -> Response {
    ([("content-type", "text/xml")], xml::to_xml(fields)).into_response()
}

fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn v2_sign(fields: &mut BTreeMap<String, String>, key: &str, kind: WxSignType) {
    fields.remove("sign");
    let s = wxv2::sign(fields, key, kind);
    fields.insert("sign".into(), s);
}

fn v2(d: &Double, body: &[u8], path: &str) -> Response {
    let Ok(req) = xml::parse_flat(body) else {
        return v2_xml(&m(&[
            ("return_code", "FAIL"),
            ("return_msg", "XML格式错误"),
        ]));
    };
    let kind = req
        .get("sign_type")
        .and_then(|s| WxSignType::parse(s))
        .unwrap_or(WxSignType::Md5);
    if kind != d.v2_sign_type || !wxv2::verify(&req, API_KEY, kind) {
        return v2_xml(&m(&[("return_code", "FAIL"), ("return_msg", "签名错误")]));
    }
    if req.get("mch_id").map(String::as_str) != Some(MCH_ID) {
        return v2_xml(&m(&[
            ("return_code", "FAIL"),
            ("return_msg", "mch_id参数格式错误"),
        ]));
    }
    let get = |k: &str| req.get(k).cloned().unwrap_or_default();
    let mut out = m(&[
        ("return_code", "SUCCESS"),
        ("return_msg", "OK"),
        ("appid", APP_ID),
        ("mch_id", MCH_ID),
        ("result_code", "SUCCESS"),
        // An unknown field: must be accepted and covered by the signature.
        ("x_new_field", "future"),
    ]);
    out.insert("nonce_str".into(), nonce_str(16));
    // Service-provider requests: WeChat names the sub-merchant back.
    if let Some(sub) = req.get("sub_mch_id") {
        let echoed = if *d.wrong_sub_mch.lock().unwrap() {
            "1900000999".to_owned()
        } else {
            sub.clone()
        };
        out.insert("sub_mch_id".into(), echoed);
        if let Some(a) = req.get("sub_appid") {
            out.insert("sub_appid".into(), a.clone());
        }
    }
    if req.contains_key("sub_openid") && !req.contains_key("sub_appid") {
        return v2_xml(&m(&[
            ("return_code", "FAIL"),
            ("return_msg", "sub_openid需要sub_appid"),
        ]));
    }
    let fail = |code: &str, msg: &str| {
        let mut f = out.clone();
        f.insert("result_code".into(), "FAIL".into());
        f.insert("err_code".into(), code.into());
        f.insert("err_code_des".into(), msg.into());
        f
    };
    let mut fields = match d.fault() {
        Fault::SystemError => fail("SYSTEMERROR", "系统超时"),
        Fault::Business(code, msg) => fail(code, msg),
        _ => match path {
            "pay/unifiedorder" => {
                let tt = get("trade_type");
                let ok = !get("appid").is_empty()
                    && !get("body").is_empty()
                    && get("total_fee").parse::<i64>().is_ok_and(|v| v > 0)
                    && !get("spbill_create_ip").is_empty()
                    && get("notify_url") == NOTIFY_URL
                    && match tt.as_str() {
                        "JSAPI" => !get("openid").is_empty() || !get("sub_openid").is_empty(),
                        "NATIVE" => !get("product_id").is_empty(),
                        "MWEB" => serde_json::from_str::<Value>(&get("scene_info"))
                            .is_ok_and(|v| v["h5_info"]["type"] == "Wap"),
                        "APP" => true,
                        _ => false,
                    };
                if !ok {
                    fail("PARAM_ERROR", "参数错误")
                } else {
                    let mut f = out.clone();
                    f.insert("trade_type".into(), tt.clone());
                    f.insert("prepay_id".into(), format!("wx{}", get("out_trade_no")));
                    if tt == "NATIVE" {
                        f.insert(
                            "code_url".into(),
                            "weixin://wxpay/bizpayurl?pr=NwY5Mz9".into(),
                        );
                    }
                    if tt == "MWEB" {
                        f.insert(
                            "mweb_url".into(),
                            "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"
                                .into(),
                        );
                    }
                    f
                }
            }
            "pay/orderquery" => {
                let state = d.trade_state.lock().unwrap().clone();
                if state == "ORDERNOTEXIST" {
                    fail("ORDERNOTEXIST", "此交易订单号不存在")
                } else {
                    let mut f = out.clone();
                    f.insert("out_trade_no".into(), get("out_trade_no"));
                    f.insert("trade_state".into(), state.clone());
                    if state == "SUCCESS" || state == "REFUND" {
                        f.insert(
                            "transaction_id".into(),
                            "4200000001202401021234567890".into(),
                        );
                        f.insert(
                            "total_fee".into(),
                            d.paid_amount.lock().unwrap().to_string(),
                        );
                        f.insert("time_end".into(), "20240102110405".into());
                    }
                    f
                }
            }
            "pay/closeorder" => out.clone(),
            "secapi/pay/refund" => {
                let mut f = out.clone();
                for k in ["out_trade_no", "out_refund_no", "total_fee", "refund_fee"] {
                    f.insert(k.into(), get(k));
                }
                f.insert("refund_id".into(), "50000000012024010212345678901".into());
                f
            }
            "pay/refundquery" => {
                let mut f = out.clone();
                f.insert("refund_count".into(), "1".into());
                f.insert("out_refund_no_0".into(), get("out_refund_no"));
                f.insert("refund_id_0".into(), "50000000012024010212345678901".into());
                f.insert("refund_status_0".into(), "SUCCESS".into());
                f.insert("refund_fee_0".into(), "30".into());
                f.insert("refund_success_time_0".into(), "2024-01-02 11:05:00".into());
                f
            }
            _ => return (StatusCode::NOT_FOUND, "no such API").into_response(),
        },
    };
    v2_sign(&mut fields, API_KEY, d.v2_sign_type);
    match d.fault() {
        Fault::BadSign => {
            fields.insert("sign".into(), "0".repeat(32));
        }
        Fault::Unsigned => {
            fields.remove("sign");
        }
        _ => {}
    }
    v2_xml(&fields)
}

// ---------------- v3 ----------------

/// Sign `body` as the platform does: headers for `TIMESTAMP\nNONCE\nBODY\n`.
pub fn v3_sign_headers(
    body: &[u8],
    ts: i64,
    serial: &str,
    key: &RsaPrivateKey,
) -> Vec<(String, String)> {
    let nonce = nonce_str(32);
    let mut msg = format!("{ts}\n{nonce}\n").into_bytes();
    msg.extend_from_slice(body);
    msg.push(b'\n');
    let sig = key.sign_sha256_base64(&msg).unwrap();
    vec![
        ("Wechatpay-Timestamp".into(), ts.to_string()),
        ("Wechatpay-Nonce".into(), nonce),
        ("Wechatpay-Signature".into(), sig),
        ("Wechatpay-Serial".into(), serial.into()),
        (
            "Wechatpay-Signature-Type".into(),
            "WECHATPAY2-SHA256-RSA2048".into(),
        ),
    ]
}

fn v3_reply(d: &Double, status: StatusCode, body: Option<Value>) -> Response {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let fault = d.fault();
    let ts = if fault == Fault::StaleTimestamp {
        now - 600
    } else {
        now
    };
    let serial = if fault == Fault::WrongSerial {
        "PUB_KEY_ID_OTHER"
    } else {
        PLATFORM_SERIAL
    };
    let mut headers = v3_sign_headers(body.as_bytes(), ts, serial, &keys().platform);
    match fault {
        Fault::BadSign => {
            let other = keys()
                .merchant
                .sign_sha256_base64(b"something else")
                .unwrap();
            headers[2].1 = other;
        }
        Fault::Unsigned => headers.clear(),
        _ => {}
    }
    let mut resp = (status, body).into_response();
    for (k, v) in headers {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&v).unwrap(),
        );
    }
    if status != StatusCode::NO_CONTENT {
        resp.headers_mut().insert(
            "content-type",
            axum::http::HeaderValue::from_static("application/json"),
        );
    }
    resp
}

/// Check `Authorization` as WeChat does: the full request path as sent.
fn v3_authenticated(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(rest) = auth.strip_prefix("WECHATPAY2-SHA256-RSA2048 ") else {
        return false;
    };
    let mut p = BTreeMap::new();
    for kv in rest.split(',') {
        let Some((k, v)) = kv.split_once('=') else {
            return false;
        };
        p.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
    }
    if p.get("mchid").map(String::as_str) != Some(MCH_ID)
        || p.get("serial_no").map(String::as_str) != Some(MERCHANT_SERIAL)
    {
        return false;
    }
    let (Some(ts), Some(nonce), Some(sig)) =
        (p.get("timestamp"), p.get("nonce_str"), p.get("signature"))
    else {
        return false;
    };
    let Ok(ts_num) = ts.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - ts_num).abs() > 300 {
        return false;
    }
    let target = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let mut msg = format!("{method}\n{target}\n{ts}\n{nonce}\n").into_bytes();
    msg.extend_from_slice(body);
    msg.push(b'\n');
    keys()
        .merchant
        .public_key()
        .verify_sha256_base64(&msg, sig)
        .is_ok()
}

fn v3(
    d: &Double,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
) -> Response {
    if !v3_authenticated(method, uri, headers, body) {
        // WeChat does not sign answers to requests it cannot authenticate.
        return (
            StatusCode::UNAUTHORIZED,
            json!({"code": "SIGN_ERROR", "message": "签名错误"}).to_string(),
        )
            .into_response();
    }
    match d.fault() {
        Fault::SystemError => {
            return v3_reply(
                d,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(json!({"code": "SYSTEM_ERROR", "message": "系统错误"})),
            );
        }
        Fault::Business(code, msg) => {
            return v3_reply(
                d,
                StatusCode::FORBIDDEN,
                Some(json!({"code": code, "message": msg})),
            );
        }
        _ => {}
    }
    let req: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return v3_reply(
                    d,
                    StatusCode::BAD_REQUEST,
                    Some(json!({"code": "PARAM_ERROR", "message": "JSON"})),
                );
            }
        }
    };
    let param_error = || {
        v3_reply(
            d,
            StatusCode::BAD_REQUEST,
            Some(json!({"code": "PARAM_ERROR", "message": "参数错误"})),
        )
    };
    let segs: Vec<&str> = path.split('/').collect();
    let sub_echo = |sub: &Value| {
        if *d.wrong_sub_mch.lock().unwrap() {
            json!("1900000999")
        } else {
            sub.clone()
        }
    };
    match (method.as_str(), segs.as_slice()) {
        // Service-provider (partner) orders.
        ("POST", ["v3", "pay", "partner", "transactions", kind]) => {
            let common = req["sp_appid"] == APP_ID
                && req["sp_mchid"] == MCH_ID
                && req["sub_mchid"].as_str().is_some_and(|s| !s.is_empty())
                && req.get("appid").is_none()
                && req.get("mchid").is_none()
                && req["notify_url"] == NOTIFY_URL
                && req["amount"]["total"].as_i64().is_some_and(|v| v > 0);
            let specific = match *kind {
                "jsapi" => {
                    let sp = req["payer"]["sp_openid"].is_string();
                    let sub =
                        req["payer"]["sub_openid"].is_string() && req["sub_appid"].is_string();
                    sp != sub
                }
                "h5" => req["scene_info"]["payer_client_ip"].is_string(),
                "native" | "app" => true,
                _ => false,
            };
            if !(common && specific) {
                return param_error();
            }
            let no = req["out_trade_no"].as_str().unwrap_or("");
            let answer = match *kind {
                "native" => json!({"code_url": "weixin://wxpay/bizpayurl?pr=partner"}),
                "h5" => {
                    json!({"h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?p=1"})
                }
                _ => json!({"prepay_id": format!("wx{no}")}),
            };
            v3_reply(d, StatusCode::OK, Some(answer))
        }
        ("GET", ["v3", "pay", "partner", "transactions", "out-trade-no", no]) => {
            let q: BTreeMap<String, String> =
                url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            if q.get("sp_mchid").map(String::as_str) != Some(MCH_ID) || !q.contains_key("sub_mchid")
            {
                return param_error();
            }
            let state = d.trade_state.lock().unwrap().clone();
            let mut t = json!({
                "sp_appid": APP_ID, "sp_mchid": MCH_ID, "sub_mchid": sub_echo(&json!(q["sub_mchid"])),
                "out_trade_no": no, "trade_state": state, "trade_state_desc": "desc",
            });
            if state == "SUCCESS" || state == "REFUND" {
                t["transaction_id"] = json!("4200000001202401021234567890");
                t["success_time"] = json!("2024-01-02T11:04:05+08:00");
                t["amount"] = json!({"total": *d.paid_amount.lock().unwrap(), "currency": "CNY"});
            }
            v3_reply(d, StatusCode::OK, Some(t))
        }
        (
            "POST",
            [
                "v3",
                "pay",
                "partner",
                "transactions",
                "out-trade-no",
                _,
                "close",
            ],
        ) => {
            if req["sp_mchid"] != MCH_ID || !req["sub_mchid"].is_string() {
                return param_error();
            }
            v3_reply(d, StatusCode::NO_CONTENT, None)
        }
        ("POST", ["v3", "pay", "transactions", kind]) => {
            let common = req["appid"] == APP_ID
                && req["mchid"] == MCH_ID
                && req["notify_url"] == NOTIFY_URL
                && req["amount"]["currency"] == "CNY"
                && req["amount"]["total"].as_i64().is_some_and(|v| v > 0)
                && req["description"].as_str().is_some_and(|s| !s.is_empty());
            let specific = match *kind {
                "jsapi" => req["payer"]["openid"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "h5" => {
                    req["scene_info"]["payer_client_ip"].is_string()
                        && req["scene_info"]["h5_info"]["type"] == "Wap"
                }
                "native" | "app" => true,
                _ => false,
            };
            if !(common && specific) {
                return param_error();
            }
            let no = req["out_trade_no"].as_str().unwrap_or("");
            let answer = match *kind {
                "native" => json!({"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}),
                "h5" => {
                    json!({"h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx2"})
                }
                _ => json!({"prepay_id": format!("wx{no}")}),
            };
            v3_reply(d, StatusCode::OK, Some(answer))
        }
        ("GET", ["v3", "pay", "transactions", "out-trade-no", no]) => {
            if uri.query() != Some(&format!("mchid={MCH_ID}")) {
                return param_error();
            }
            let state = d.trade_state.lock().unwrap().clone();
            if state == "ORDER_NOT_EXIST" {
                return v3_reply(
                    d,
                    StatusCode::NOT_FOUND,
                    Some(json!({"code": "ORDER_NOT_EXIST", "message": "订单不存在"})),
                );
            }
            let mut t = json!({
                "appid": APP_ID, "mchid": MCH_ID, "out_trade_no": no,
                "trade_state": state, "trade_state_desc": "desc",
            });
            if state == "SUCCESS" || state == "REFUND" {
                t["transaction_id"] = json!("4200000001202401021234567890");
                t["success_time"] = json!("2024-01-02T11:04:05+08:00");
                t["amount"] = json!({"total": *d.paid_amount.lock().unwrap(), "payer_total": 100, "currency": "CNY"});
            }
            v3_reply(d, StatusCode::OK, Some(t))
        }
        ("POST", ["v3", "pay", "transactions", "out-trade-no", _, "close"]) => {
            if req["mchid"] != MCH_ID {
                return param_error();
            }
            v3_reply(d, StatusCode::NO_CONTENT, None)
        }
        ("POST", ["v3", "refund", "domestic", "refunds"]) => {
            if req["notify_url"] != NOTIFY_URL || !req["amount"]["refund"].is_i64() {
                return param_error();
            }
            v3_reply(
                d,
                StatusCode::OK,
                Some(json!({
                    "refund_id": "50000000382019052709732678859",
                    "out_refund_no": req["out_refund_no"], "out_trade_no": req["out_trade_no"],
                    "status": "PROCESSING",
                    "amount": {"refund": req["amount"]["refund"], "total": req["amount"]["total"], "currency": "CNY"},
                })),
            )
        }
        ("GET", ["v3", "refund", "domestic", "refunds", no]) => v3_reply(
            d,
            StatusCode::OK,
            Some(json!({
                "refund_id": "50000000382019052709732678859", "out_refund_no": no,
                "status": "SUCCESS", "success_time": "2024-01-02T11:05:00+08:00",
                "amount": {"refund": 30, "total": 100, "currency": "CNY"},
            })),
        ),
        _ => v3_reply(
            d,
            StatusCode::NOT_FOUND,
            Some(json!({"code": "NOT_FOUND", "message": path})),
        ),
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn platform_public() -> RsaPublicKey {
    keys().platform.public_key()
}
