//! A test double of Alipay's gateway (axum on 127.0.0.1:0), mounted at
//! `/ali/gateway.do` to prove `baseUrl` replaces the whole gateway URL. It
//! verifies each request's RSA2 signature as Alipay does (its own,
//! independent signing-string code), checks the certificate-mode SNs, and
//! answers with `{"<method>_response":…,"sign":…}` signed over the member's
//! exact text — written with `\/` escapes, as Alipay does, so an adapter that
//! re-serialized the JSON before verifying would fail.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cashdesk_channels::{ChannelEnv, HttpSettings};
use cashdesk_crypto::cert::{Certificate, alipay_root_cert_sn};
use cashdesk_crypto::rsa::RsaPrivateKey;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

pub const APP_ID: &str = "2021000117600001";
pub const SELLER_ID: &str = "2088721000000001";
pub const MCH_ID: &str = "2088721000000001";
pub const NOTIFY_URL: &str = "https://pay.example.com/api/cashier-desk/notify/C01ALI";
pub const RETURN_URL: &str = "https://shop.example.com/paid";

/// Keys and certificates shared by the whole test binary.
pub struct Keys {
    /// The merchant's application key (signs requests).
    pub app: RsaPrivateKey,
    /// Alipay's key (signs answers and notifications).
    pub alipay: RsaPrivateKey,
    /// Certificate mode: app cert, Alipay cert, root cert file.
    pub app_cert_pem: String,
    pub alipay_cert_pem: String,
    pub root_cert_pem: String,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let app = RsaPrivateKey::generate_2048().unwrap();
        let alipay = RsaPrivateKey::generate_2048().unwrap();
        let root = RsaPrivateKey::generate_2048().unwrap();
        let root_key = KeyPair::from_pem(&root.to_pkcs8_pem()).unwrap();
        let mut root_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root_params.distinguished_name.push(
            DnType::CommonName,
            "Ant Financial Certification Authority R1",
        );
        root_params
            .distinguished_name
            .push(DnType::OrganizationName, "Ant Financial");
        root_params
            .distinguished_name
            .push(DnType::CountryName, "CN");
        let root_cert = root_params.self_signed(&root_key).unwrap();
        let issuer = Issuer::new(root_params, root_key);
        let leaf = |key: &RsaPrivateKey, cn: &str, serial: &[u8]| {
            let kp = KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
            p.signed_by(&kp, &issuer).unwrap().pem()
        };
        Keys {
            app_cert_pem: leaf(&app, APP_ID, &[0x20, 0x21, 0x01]),
            alipay_cert_pem: leaf(&alipay, "支付宝(中国)网络技术有限公司", &[0x20, 0x21, 0x02]),
            root_cert_pem: root_cert.pem(),
            app,
            alipay,
        }
    })
}

/// Public-key mode credentials (with sellerId and returnUrl).
pub fn creds() -> Value {
    json!({
        "appId": APP_ID,
        "privateKeyPem": keys().app.to_pkcs8_pem(),
        "alipayPublicKeyPem": keys().alipay.public_key().to_spki_pem(),
        "sellerId": SELLER_ID,
        "returnUrl": RETURN_URL,
    })
}

/// Certificate mode credentials.
pub fn cert_creds() -> Value {
    json!({
        "appId": APP_ID,
        "privateKeyPem": keys().app.to_pkcs8_pem(),
        "appCertPem": keys().app_cert_pem,
        "alipayCertPem": keys().alipay_cert_pem,
        "alipayRootCertPem": keys().root_cert_pem,
    })
}

pub fn app_cert_sn() -> String {
    Certificate::from_pem(&keys().app_cert_pem)
        .unwrap()
        .alipay_sn()
}

pub fn alipay_cert_sn() -> String {
    Certificate::from_pem(&keys().alipay_cert_pem)
        .unwrap()
        .alipay_sn()
}

pub fn root_cert_sn() -> String {
    alipay_root_cert_sn(&keys().root_cert_pem).unwrap()
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

/// Alipay's string to sign, written independently of the adapter's.
pub fn string_to_sign(params: &BTreeMap<String, String>, skip: &[&str]) -> String {
    params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !skip.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Parse a form / query string (`+` is a space).
pub fn form(s: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Verify a parameter set the way Alipay verifies the merchant's requests.
pub fn verify_app_signature(params: &BTreeMap<String, String>) -> bool {
    let Some(sign) = params.get("sign") else {
        return false;
    };
    keys()
        .app
        .public_key()
        .verify_sha256_base64(string_to_sign(params, &["sign"]).as_bytes(), sign)
        .is_ok()
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    None,
    /// 40004 ACQ.SYSTEM_ERROR, signed.
    SystemError,
    /// 20000 Service Currently Unavailable, signed.
    Unavailable,
    Http500,
    /// Answer after 3 s (the client gives up after 0.8 s).
    Timeout,
    /// A signed 40004 refusal with this sub_code / sub_msg.
    Business(&'static str, &'static str),
    /// Signed by another key.
    BadSign,
    /// No `sign` member.
    Unsigned,
    /// Certificate mode: announce another `alipay_cert_sn`.
    WrongCertSn,
    /// Tamper with the member after signing (one character of the payload).
    Tampered,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub content_type: String,
    pub params: BTreeMap<String, String>,
    pub biz: Value,
}

pub struct Double {
    pub fault: Mutex<Fault>,
    pub requests: Mutex<Vec<Recorded>>,
    /// Certificate mode expected (SNs checked, `alipay_cert_sn` answered).
    pub cert_mode: bool,
    /// What `alipay.trade.query` answers: a trade_status or `NOT_EXIST`.
    pub trade_status: Mutex<String>,
    /// The paid amount reported (yuan text, as Alipay writes it).
    pub paid_amount: Mutex<String>,
    /// Whether `send_pay_date` is in a TRADE_CLOSED answer (refunded in full).
    pub closed_after_pay: Mutex<bool>,
    /// `fund_change` of `alipay.trade.refund`.
    pub fund_change: Mutex<&'static str>,
    /// Whether `fastpay.refund.query` finds the refund.
    pub refund_found: Mutex<bool>,
    /// What the bill method answers.
    pub bill: Mutex<BillAnswer>,
    /// The file served at [`BILL_PATH`].
    pub bill_file: Mutex<Vec<u8>>,
}

/// Where the double serves the bill file (on its own host, as a sandbox
/// does).
pub const BILL_PATH: &str = "/dwbill/downloadBillFile.resource";

#[derive(Debug, Clone, PartialEq)]
pub enum BillAnswer {
    /// A link to [`BILL_PATH`] on this double.
    File,
    /// This link, whatever it is.
    Url(String),
    /// `bill_file_code=EMPTY_DATA_WITH_BILL_FILE` (and a link).
    EmptyDay,
}

impl Double {
    pub fn new(cert_mode: bool) -> Arc<Self> {
        Arc::new(Self {
            fault: Mutex::new(Fault::None),
            requests: Mutex::new(Vec::new()),
            cert_mode,
            trade_status: Mutex::new("WAIT_BUYER_PAY".into()),
            paid_amount: Mutex::new("1.00".into()),
            closed_after_pay: Mutex::new(false),
            fund_change: Mutex::new("Y"),
            refund_found: Mutex::new(true),
            bill: Mutex::new(BillAnswer::File),
            bill_file: Mutex::new(Vec::new()),
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

/// `{"<member>":<payload>,"sign":…}` with `/` written as `\/`.
fn answer(d: &Double, member: &str, payload: &Value) -> Response {
    let text = payload.to_string().replace('/', "\\/");
    let fault = d.fault();
    let mut sign = keys().alipay.sign_sha256_base64(text.as_bytes()).unwrap();
    if fault == Fault::BadSign {
        sign = keys().app.sign_sha256_base64(text.as_bytes()).unwrap();
    }
    let text = if fault == Fault::Tampered {
        text.replacen("\"msg\"", "\"Msg\"", 1)
    } else {
        text
    };
    let mut body = format!("{{\"{member}\":{text}");
    if fault != Fault::Unsigned {
        body.push_str(&format!(",\"sign\":\"{sign}\""));
    }
    if d.cert_mode {
        let sn = if fault == Fault::WrongCertSn {
            "0123456789abcdef0123456789abcdef".to_owned()
        } else {
            alipay_cert_sn()
        };
        body.push_str(&format!(",\"alipay_cert_sn\":\"{sn}\""));
    }
    body.push('}');
    ([("content-type", "text/html;charset=utf-8")], body).into_response()
}

fn error_payload(code: &str, msg: &str, sub_code: &str, sub_msg: &str) -> Value {
    json!({"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg})
}

async fn handle(
    State(d): State<Arc<Double>>,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut params = form(uri.query().unwrap_or(""));
    params.extend(form(std::str::from_utf8(&body).unwrap_or("")));
    let biz: Value = params
        .get("biz_content")
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    d.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_owned(),
        content_type,
        params: params.clone(),
        biz: biz.clone(),
    });
    if uri.path() == BILL_PATH {
        return (
            [("content-type", "application/octet-stream")],
            d.bill_file.lock().unwrap().clone(),
        )
            .into_response();
    }
    if uri.path() != "/ali/gateway.do" {
        return (StatusCode::NOT_FOUND, "no such path").into_response();
    }
    if d.fault() == Fault::Timeout {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if d.fault() == Fault::Http500 {
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    let method = params.get("method").cloned().unwrap_or_default();
    let member = format!("{}_response", method.replace('.', "_"));
    // Authentication as Alipay does it; failures are answered unsigned.
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let cert_ok = if d.cert_mode {
        get("app_cert_sn") == app_cert_sn() && get("alipay_root_cert_sn") == root_cert_sn()
    } else {
        !params.contains_key("app_cert_sn")
    };
    let common_ok = get("app_id") == APP_ID
        && get("format") == "JSON"
        && get("charset") == "utf-8"
        && get("sign_type") == "RSA2"
        && get("version") == "1.0"
        && cashdesk_core::time::parse_cn_datetime(get("timestamp")).is_some();
    if !common_ok || !cert_ok || !verify_app_signature(&params) {
        let body = json!({"error_response": error_payload(
            "40002", "Invalid Arguments", "isv.invalid-signature", "验签出错")});
        return (
            [("content-type", "text/html;charset=utf-8")],
            body.to_string(),
        )
            .into_response();
    }
    match d.fault() {
        Fault::SystemError => {
            return answer(
                &d,
                &member,
                &error_payload("40004", "Business Failed", "ACQ.SYSTEM_ERROR", "系统错误"),
            );
        }
        Fault::Unavailable => {
            return answer(
                &d,
                &member,
                &error_payload(
                    "20000",
                    "Service Currently Unavailable",
                    "isp.unknow-error",
                    "系统繁忙",
                ),
            );
        }
        Fault::Business(sub, msg) => {
            return answer(
                &d,
                &member,
                &error_payload("40004", "Business Failed", sub, msg),
            );
        }
        _ => {}
    }
    let ok = |mut v: Value| {
        v["code"] = json!("10000");
        v["msg"] = json!("Success");
        v
    };
    let param_error =
        |msg: &str| error_payload("40004", "Business Failed", "ACQ.INVALID_PARAMETER", msg);
    let no = biz["out_trade_no"].as_str().unwrap_or("").to_owned();
    let amount_ok = |field: &str| {
        biz[field]
            .as_str()
            .is_some_and(|a| cashdesk_core::Fen::from_yuan("a", a).is_ok() && a.contains('.'))
    };
    let payload = match method.as_str() {
        "alipay.trade.create" => {
            if !amount_ok("total_amount")
                || get("notify_url") != NOTIFY_URL
                || biz["subject"].as_str().is_none_or(str::is_empty)
                || (biz["buyer_id"].is_null() == biz["buyer_open_id"].is_null())
            {
                param_error("参数有误")
            } else {
                ok(
                    json!({"out_trade_no": no, "trade_no": format!("2024010222001400000{}", &no[no.len().saturating_sub(6)..])}),
                )
            }
        }
        "alipay.trade.precreate" => {
            if !amount_ok("total_amount") || get("notify_url") != NOTIFY_URL {
                param_error("参数有误")
            } else {
                ok(
                    json!({"out_trade_no": no, "qr_code": "https://qr.alipay.com/bax03431ljhokirwl38f00a7"}),
                )
            }
        }
        "alipay.trade.query" => {
            let status = d.trade_status.lock().unwrap().clone();
            if status == "NOT_EXIST" {
                error_payload(
                    "40004",
                    "Business Failed",
                    "ACQ.TRADE_NOT_EXIST",
                    "交易不存在",
                )
            } else {
                let mut v = ok(json!({
                    "out_trade_no": no, "trade_no": "2024010222001400001234567890",
                    "trade_status": status, "buyer_logon_id": "159****5620",
                    "total_amount": *d.paid_amount.lock().unwrap(),
                }));
                let paid = status == "TRADE_SUCCESS"
                    || status == "TRADE_FINISHED"
                    || (status == "TRADE_CLOSED" && *d.closed_after_pay.lock().unwrap());
                if paid {
                    v["send_pay_date"] = json!("2024-01-02 11:04:05");
                }
                v
            }
        }
        "alipay.trade.close" => {
            if *d.trade_status.lock().unwrap() == "NOT_EXIST" {
                error_payload(
                    "40004",
                    "Business Failed",
                    "ACQ.TRADE_NOT_EXIST",
                    "交易不存在",
                )
            } else {
                ok(json!({"out_trade_no": no, "trade_no": "2024010222001400001234567890"}))
            }
        }
        "alipay.trade.refund" => {
            if !amount_ok("refund_amount")
                || biz["out_request_no"].as_str().is_none_or(str::is_empty)
            {
                param_error("参数有误")
            } else {
                ok(json!({
                    "out_trade_no": no, "trade_no": "2024010222001400001234567890",
                    "fund_change": *d.fund_change.lock().unwrap(),
                    "refund_fee": biz["refund_amount"], "gmt_refund_pay": "2024-01-02 11:05:00",
                }))
            }
        }
        "alipay.trade.fastpay.refund.query" => {
            if *d.refund_found.lock().unwrap() {
                ok(json!({
                    "out_trade_no": no, "trade_no": "2024010222001400001234567890",
                    "out_request_no": biz["out_request_no"], "total_amount": "1.00",
                    "refund_amount": "0.30", "refund_status": "REFUND_SUCCESS",
                    "gmt_refund_pay": "2024-01-02 11:05:00",
                }))
            } else {
                ok(json!({}))
            }
        }
        "alipay.data.dataservice.bill.downloadurl.query" => {
            let date_ok = biz["bill_date"]
                .as_str()
                .is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok());
            if biz["bill_type"] != "trade" || !date_ok || biz["secure"] != "true" {
                error_payload(
                    "40004",
                    "Business Failed",
                    "isv.invalid_arguments",
                    "入参不合法",
                )
            } else {
                let host = headers
                    .get("host")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let date = biz["bill_date"]
                    .as_str()
                    .unwrap_or_default()
                    .replace('-', "");
                let here = format!(
                    "http://{host}{BILL_PATH}?bizType=trade&userId={SELLER_ID}0156&fileType=csv.zip\
                     &bizDates={date}&downloadFileName={SELLER_ID}0156_{date}.csv.zip&token=t0k3n"
                );
                match d.bill.lock().unwrap().clone() {
                    BillAnswer::File => ok(json!({"bill_download_url": here})),
                    BillAnswer::Url(url) => ok(json!({"bill_download_url": url})),
                    BillAnswer::EmptyDay => ok(json!({
                        "bill_download_url": here,
                        "bill_file_code": "EMPTY_DATA_WITH_BILL_FILE",
                    })),
                }
            }
        }
        _ => error_payload(
            "40004",
            "Business Failed",
            "isv.invalid-method",
            "不存在的方法名",
        ),
    };
    answer(&d, &member, &payload)
}
