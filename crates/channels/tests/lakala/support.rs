//! A test double of Lakala's open platform v3 (axum on 127.0.0.1:0), mounted
//! under `/lkl` to prove base-URL prefixes work. It checks each request's
//! `Authorization: LKLAPI-SHA256withRSA …` exactly as Lakala does (its own,
//! independent parser), answers with `Lklapi-*` headers signed by the
//! platform key, or with the fault a test asks for.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cashdesk_channels::{ChannelEnv, HttpSettings};
use cashdesk_crypto::random::nonce_str;
use cashdesk_crypto::rsa::RsaPrivateKey;
use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::{Value, json};

pub const APP_ID: &str = "OP00000003";
pub const SERIAL_NO: &str = "00dfba8194c41b84cf";
pub const MERCHANT_NO: &str = "822290059430BCW";
pub const TERM_NO: &str = "29034705";
pub const SUB_APP_ID: &str = "wx0ed4a4f0fdbc0f79";
/// A chain store's own numbers under the same Lakala app.
pub const STORE_MERCHANT_NO: &str = "822290059430S02";
pub const STORE_TERM_NO: &str = "29034799";
pub const MCH_ID: &str = "822290059430BCW";
pub const NOTIFY_URL: &str = "https://pay.example.com/api/cashier-desk/notify/C01LKL";
/// The serial of the platform certificate (`Lklapi-Serial`).
pub const PLATFORM_SERIAL: &str = "0A1B2C3D";

pub struct Keys {
    pub merchant: RsaPrivateKey,
    pub platform: RsaPrivateKey,
    pub notify: RsaPrivateKey,
    pub platform_cert_pem: String,
    pub notify_cert_pem: String,
}

fn cert(key: &RsaPrivateKey, cn: &str, serial: &[u8]) -> String {
    let kp = KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
    p.self_signed(&kp).unwrap().pem()
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let platform = RsaPrivateKey::generate_2048().unwrap();
        let notify = RsaPrivateKey::generate_2048().unwrap();
        Keys {
            platform_cert_pem: cert(&platform, "lkl-open-api", &[0x0A, 0x1B, 0x2C, 0x3D]),
            notify_cert_pem: cert(&notify, "lkl-notify", &[0x0B, 0x00]),
            merchant: RsaPrivateKey::generate_2048().unwrap(),
            platform,
            notify,
        }
    })
}

pub fn creds() -> Value {
    json!({
        "appId": APP_ID,
        "serialNo": SERIAL_NO,
        "privateKeyPem": keys().merchant.to_pkcs8_pem(),
        "lklCertPem": keys().platform_cert_pem,
        "lklNotifyCertPem": keys().notify_cert_pem,
        "merchantNo": MERCHANT_NO,
        "termNo": TERM_NO,
        "subAppId": SUB_APP_ID,
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

/// `k="v"` pairs after `LKLAPI-SHA256withRSA `, parsed independently.
pub fn auth_params(header: &str) -> Option<BTreeMap<String, String>> {
    let rest = header.strip_prefix("LKLAPI-SHA256withRSA ")?;
    rest.split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let v = v.strip_prefix('"')?.strip_suffix('"')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Lines joined with `\n`, each terminated by `\n`.
pub fn lines(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::new();
    for p in parts {
        m.extend_from_slice(p);
        m.push(b'\n');
    }
    m
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    None,
    /// A signed `BBS99999` answer.
    SystemError,
    Http500,
    Timeout,
    /// A signed refusal with this code and message.
    Business(&'static str, &'static str),
    /// Signed by another key (the notify key).
    BadSign,
    /// No `Lklapi-*` headers.
    Unsigned,
    /// Signed with the right key, announced under another serial.
    WrongSerial,
    /// Signed for another appid.
    WrongAppid,
    /// The body changed after signing.
    Tampered,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: String,
    pub body: Value,
}

pub struct Double {
    pub fault: Mutex<Fault>,
    pub requests: Mutex<Vec<Recorded>>,
    /// tradequery's trade_state, or `NOT_FOUND`.
    pub trade_state: Mutex<String>,
    pub paid_amount: Mutex<i64>,
    /// The refund's trade_state (refund and refund query).
    pub refund_state: Mutex<String>,
    /// Answers name another merchant than the request's.
    pub wrong_merchant: Mutex<bool>,
}

impl Double {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            fault: Mutex::new(Fault::None),
            requests: Mutex::new(Vec::new()),
            trade_state: Mutex::new("CREATE".into()),
            paid_amount: Mutex::new(100),
            refund_state: Mutex::new("SUCCESS".into()),
            wrong_merchant: Mutex::new(false),
        })
    }
    pub fn set_fault(&self, f: Fault) {
        *self.fault.lock().unwrap() = f;
    }
    fn fault(&self) -> Fault {
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
}

pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

pub fn router(d: Arc<Double>) -> Router {
    Router::new().fallback(handle).with_state(d)
}

/// Headers Lakala signs an answer with.
pub fn sign_answer(
    body: &[u8],
    appid: &str,
    serial: &str,
    key: &RsaPrivateKey,
) -> Vec<(&'static str, String)> {
    let ts = chrono::Utc::now().timestamp().to_string();
    let nonce = nonce_str(12);
    let msg = lines(&[
        appid.as_bytes(),
        serial.as_bytes(),
        ts.as_bytes(),
        nonce.as_bytes(),
        body,
    ]);
    vec![
        ("Lklapi-Appid", appid.to_owned()),
        ("Lklapi-Serial", serial.to_owned()),
        ("Lklapi-Timestamp", ts),
        ("Lklapi-Nonce", nonce),
        ("Lklapi-Signature", key.sign_sha256_base64(&msg).unwrap()),
    ]
}

fn reply(d: &Double, code: &str, msg: &str, resp_data: Value) -> Response {
    let body = json!({
        "code": code, "msg": msg, "resp_time": "20240102110405", "resp_data": resp_data,
    })
    .to_string();
    let fault = d.fault();
    let appid = if fault == Fault::WrongAppid {
        "OP99999999"
    } else {
        APP_ID
    };
    let serial = if fault == Fault::WrongSerial {
        "FFFF"
    } else {
        PLATFORM_SERIAL
    };
    let key = if fault == Fault::BadSign {
        &keys().notify
    } else {
        &keys().platform
    };
    let headers = sign_answer(body.as_bytes(), appid, serial, key);
    let body = if fault == Fault::Tampered {
        body.replace("\"msg\"", "\"Msg\"")
    } else {
        body
    };
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    if fault != Fault::Unsigned {
        for (k, v) in headers {
            resp.headers_mut().insert(k, v.parse().unwrap());
        }
    }
    resp
}

/// Check `Authorization` as Lakala does.
fn authenticated(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(p) = auth_params(auth) else {
        return false;
    };
    let field = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    if field("appid") != APP_ID || field("serial_no") != SERIAL_NO {
        return false;
    }
    let Ok(ts) = field("timestamp").parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 || field("nonce_str").is_empty() {
        return false;
    }
    let msg = lines(&[
        field("appid").as_bytes(),
        field("serial_no").as_bytes(),
        field("timestamp").as_bytes(),
        field("nonce_str").as_bytes(),
        body,
    ]);
    keys()
        .merchant
        .public_key()
        .verify_sha256_base64(&msg, field("signature"))
        .is_ok()
}

async fn handle(
    State(d): State<Arc<Double>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    d.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_owned(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        body: parsed.clone(),
    });
    if d.fault() == Fault::Timeout {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if d.fault() == Fault::Http500 {
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    if !authenticated(&headers, &body) {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"code": "BBS10001", "msg": "验签失败"}).to_string(),
        )
            .into_response();
    }
    match d.fault() {
        Fault::SystemError => return reply(&d, "BBS99999", "系统繁忙", Value::Null),
        Fault::Business(code, msg) => return reply(&d, code, msg, Value::Null),
        _ => {}
    }
    let envelope_ok = parsed["version"] == "3.0"
        && parsed["req_time"]
            .as_str()
            .and_then(cashdesk_core::time::parse_compact)
            .is_some();
    let r = &parsed["req_data"];
    // The config's own numbers, or the chain store's.
    let ours = (r["merchant_no"] == MERCHANT_NO && r["term_no"] == TERM_NO)
        || (r["merchant_no"] == STORE_MERCHANT_NO && r["term_no"] == STORE_TERM_NO);
    // Answers name the merchant asked for (or, as a fault, another).
    let merchant = if *d.wrong_merchant.lock().unwrap() {
        json!("822999999999999")
    } else {
        r["merchant_no"].clone()
    };
    if !envelope_ok || !ours {
        return reply(&d, "BBS11000", "参数错误", Value::Null);
    }
    let digits = |v: &Value| {
        v.as_str()
            .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    };
    let param_error = || reply(&d, "BBS11000", "参数错误", Value::Null);
    let path = uri.path().strip_prefix("/lkl").unwrap_or("");
    let no = r["out_trade_no"].as_str().unwrap_or("").to_owned();
    match path {
        "/api/v3/labs/trans/preorder" => {
            let ok = digits(&r["total_amount"])
                && r["notify_url"] == NOTIFY_URL
                && r["location_info"]["request_ip"].is_string()
                && r["subject"].as_str().is_some_and(|s| !s.is_empty());
            if !ok {
                return param_error();
            }
            let acc = &r["acc_busi_fields"];
            let fields = match (
                r["account_type"].as_str().unwrap_or(""),
                r["trans_type"].as_str().unwrap_or(""),
            ) {
                ("WECHAT", "71" | "51") => {
                    if acc["sub_appid"] != SUB_APP_ID || !acc["user_id"].is_string() {
                        return param_error();
                    }
                    json!({
                        "prepay_id": "wx2024010211040512345",
                        "app_id": SUB_APP_ID, "time_stamp": "1704164645",
                        "nonce_str": "8c1b2e6f4a", "package": "prepay_id=wx2024010211040512345",
                        "sign_type": "RSA", "pay_sign": "c2lnbmVkLWJ5LWxha2FsYQ==",
                    })
                }
                ("ALIPAY", "51") => {
                    if !acc["user_id"].is_string() {
                        return param_error();
                    }
                    json!({"prepay_id": "2024010222001400001234567890"})
                }
                ("ALIPAY", "41") => json!({"code": "https://qr.alipay.com/bax08861"}),
                ("ALIPAY", "81") => {
                    json!({"redirect_url": "https://openapi.alipay.com/gateway.do?h5=1"})
                }
                _ => return param_error(),
            };
            reply(
                &d,
                "BBS00000",
                "成功",
                json!({
                    "merchant_no": merchant, "out_trade_no": no,
                    "trade_no": "20240102110113130266250000001", "log_no": "66250000001",
                    "acc_resp_fields": fields,
                }),
            )
        }
        "/api/v3/labs/query/tradequery" => {
            let refund = no.starts_with('R');
            let state = if refund {
                d.refund_state.lock().unwrap().clone()
            } else {
                d.trade_state.lock().unwrap().clone()
            };
            if state == "NOT_FOUND" {
                return reply(&d, "BBS11001", "交易不存在", Value::Null);
            }
            let mut t = json!({
                "merchant_no": merchant, "out_trade_no": no,
                "trade_no": "20240102110113130266250000001", "trade_state": state,
                "account_type": "WECHAT",
            });
            if refund {
                t["refund_amount"] = json!("30");
                t["trade_time"] = json!("20240102110500");
            } else if matches!(state.as_str(), "SUCCESS" | "PART_REFUND" | "REFUND") {
                t["total_amount"] = json!(d.paid_amount.lock().unwrap().to_string());
                t["trade_time"] = json!("20240102110405");
                t["acc_trade_no"] = json!("4200000001202401021234567890");
            }
            reply(&d, "BBS00000", "成功", t)
        }
        "/api/v3/labs/relation/close" => {
            if !r["origin_out_trade_no"].is_string() {
                return param_error();
            }
            if *d.trade_state.lock().unwrap() == "NOT_FOUND" {
                return reply(&d, "BBS11001", "交易不存在", Value::Null);
            }
            reply(&d, "BBS00000", "成功", json!({"merchant_no": merchant}))
        }
        "/api/v3/labs/relation/refund" => {
            if !digits(&r["refund_amount"]) || !r["origin_out_trade_no"].is_string() {
                return param_error();
            }
            reply(
                &d,
                "BBS00000",
                "成功",
                json!({
                    "merchant_no": merchant, "out_trade_no": no,
                    "trade_no": "20240102110500130266250000002",
                    "refund_amount": r["refund_amount"], "trade_state": *d.refund_state.lock().unwrap(),
                    "trade_time": "20240102110500",
                }),
            )
        }
        _ => (StatusCode::NOT_FOUND, "no such API").into_response(),
    }
}
