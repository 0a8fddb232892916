//! Alipay OpenAPI front end: `/sandbox/alipay/gateway.do` (GET query or
//! POST form; a POST may carry the common parameters in its query string
//! and `biz_content` in its body, as Alipay's SDKs send them — both are
//! merged).
//!
//! Order of checks, as the gateway does it: `method` (missing or unknown →
//! `error_response`), `app_id`, `sign`/`sign_type` (RSA2 only), `charset`
//! (utf-8), `timestamp` (`yyyy-MM-dd HH:mm:ss`, ±15 min for server calls;
//! page, wap and app orders are opened later by the buyer, so only the
//! format is checked), `version` (1.0), certificate mode (`app_cert_sn` must
//! be the app certificate's SN, `alipay_root_cert_sn` the root file's), the
//! RSA2 signature, then `biz_content` and the method's own rules.
//!
//! The request signature covers every parameter except `sign`, empty values
//! skipped, sorted, `k=v` joined by `&` over raw values (PROTOCOLS.md; the
//! official SDKs keep `sign_type` in the signed content of a request and
//! drop it only when verifying notifications and return URLs). A bad
//! signature answers `40002 isv.invalid-signature` with the string the
//! gateway verified, as Alipay does, so an integrator can compare.
//!
//! Every JSON answer is `{"<method_with_underscores>_response":{…},"sign":"…"}`
//! (`error_response` when the method is missing or unknown), signed with the
//! sandbox Alipay key over the exact text of the inner object, in which `/`
//! is escaped as `\/` like Alipay's, so a verifier that re-serialises fails.
//! Certificate-mode requests get `alipay_cert_sn` too. The content type is
//! `text/html;charset=utf-8`, as Alipay's gateway sends it.
//!
//! Methods: `alipay.trade.create` (mini-program; buyer_id or buyer_open_id
//! → trade_no), `alipay.trade.precreate` (qr_code = the payer page),
//! `alipay.trade.wap.pay`, `alipay.trade.page.pay` and `alipay.trade.app.pay`
//! (the browser or the wallet lands on the gateway with the signed
//! parameters: the answer is the payer page itself, or an HTML error page
//! with status 400), `alipay.trade.query`, `alipay.trade.close`,
//! `alipay.trade.refund` (synchronous, partial via `out_request_no`, which
//! defaults to the out_trade_no; a repeated request answers `fund_change=N`),
//! `alipay.trade.fastpay.refund.query` (an unknown `out_request_no` of a
//! known trade is `10000` without refund fields: Alipay's way of saying
//! "no such refund succeeded").
//!
//! Trade status: WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_CLOSED (closed unpaid,
//! expired, or fully refunded). Notifications ([`notification`]): form POST
//! to the order's `notify_url`, signed over every field but `sign` and
//! `sign_type`, on payment (TRADE_SUCCESS), on close — by the merchant or
//! because the payment failed (`result: FAIL` of the test API) — (TRADE_CLOSED;
//! the close request's own `notify_url` wins when given), and on every
//! refund (TRADE_SUCCESS, or TRADE_CLOSED once fully refunded, with
//! `out_biz_no`, cumulative `refund_fee`, `gmt_refund`). An order that
//! expires unpaid is closed lazily and not notified.
//!
//! App authorization (应用授权): a call carrying `app_auth_token` must use
//! a token issued to its `app_id` (else `20001
//! aop.invalid-app-auth-token`); it then works on the authorizing
//! merchant's trades: their `seller_id` is that merchant's pid and their
//! notifications name it as `auth_app_id` (the caller stays `app_id`).
//! Tokens come from the test API (`{"channelType":"ali-pay","isvAppId"}`).
//!
//! `alipay.data.dataservice.bill.downloadurl.query` (the day's trade bill:
//! a 30-second link to a zip of GBK CSV files, see `bill`).
//!
//! Faults (see [`crate::faults`]) are matched against
//! `/sandbox/alipay/gateway.do?method=<method>`; `mchId` is the pid.
//!
//! Files: this one is the gateway (parameters, the checks above, signed
//! answers, faults); `flows` what each method does to the order book;
//! `trade` how a trade reads (status, yuan, buyer, the query answer);
//! `bill` and `billzip` the trade bill and its archive;
//! `notify` the asynchronous notification and the signed return URL.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::faults::{CallFault, FaultKind};
use crate::ledger::Order;
use crate::merchants::AlipayMerchant;
use crate::reqlog::NewEntry;

mod bill;
mod billzip;
mod flows;
mod notify;
mod trade;

pub(crate) use notify::{notification, return_url};
pub use trade::{new_buyer_id, trade_status};

use flows::{create, dispatch};

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/sandbox/alipay/gateway.do",
            get(gateway_get).post(gateway_post),
        )
        .route(bill::DOWNLOAD_PATH, get(bill::download))
}

const SERVER_METHODS: &[&str] = &[
    "alipay.trade.create",
    "alipay.trade.precreate",
    "alipay.trade.query",
    "alipay.trade.close",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.data.dataservice.bill.downloadurl.query",
];
const PAGE_METHODS: &[&str] = &[
    "alipay.trade.wap.pay",
    "alipay.trade.page.pay",
    "alipay.trade.app.pay",
];

/// An Alipay error: `code`, `msg`, `sub_code`, `sub_msg`.
#[derive(Debug, Clone)]
pub struct AliError {
    code: &'static str,
    sub_code: String,
    sub_msg: String,
}

fn msg_of(code: &str) -> &'static str {
    match code {
        "10000" => "Success",
        "20000" => "Service Currently Unavailable",
        "40001" => "Missing Required Arguments",
        "40002" => "Invalid Arguments",
        "20001" => "Insufficient Token Permissions",
        "40006" => "Insufficient Permissions",
        _ => "Business Failed",
    }
}

fn missing(sub_code: &str, what: &str) -> AliError {
    AliError {
        code: "40001",
        sub_code: sub_code.to_owned(),
        sub_msg: format!("缺少{what}参数"),
    }
}

fn invalid(sub_code: &str, sub_msg: impl Into<String>) -> AliError {
    AliError {
        code: "40002",
        sub_code: sub_code.to_owned(),
        sub_msg: sub_msg.into(),
    }
}

fn biz(sub_code: &str, sub_msg: impl Into<String>) -> AliError {
    AliError {
        code: "40004",
        sub_code: sub_code.to_owned(),
        sub_msg: sub_msg.into(),
    }
}

fn bad_param(sub_msg: impl Into<String>) -> AliError {
    biz("ACQ.INVALID_PARAMETER", sub_msg)
}

fn not_exist() -> AliError {
    biz("ACQ.TRADE_NOT_EXIST", "交易不存在")
}

/// The RSA2 content: every non-empty parameter but those in `skip`, sorted,
/// `k=v` joined by `&`, raw values.
pub fn sign_content(params: &BTreeMap<String, String>, skip: &[&str]) -> String {
    params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !skip.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn parse_pairs(raw: &[u8], into: &mut BTreeMap<String, String>) {
    for (k, v) in url::form_urlencoded::parse(raw) {
        into.insert(k.into_owned(), v.into_owned());
    }
}

async fn gateway_get(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let mut params = BTreeMap::new();
    parse_pairs(q.as_deref().unwrap_or("").as_bytes(), &mut params);
    call(s, "GET", params).await
}

async fn gateway_post(
    State(s): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let mut params = BTreeMap::new();
    parse_pairs(q.as_deref().unwrap_or("").as_bytes(), &mut params);
    parse_pairs(&body, &mut params);
    call(s, "POST", params).await
}

/// What a verified request leads to.
enum Answer {
    Json(Map<String, Value>),
    Page(Box<Order>),
}

struct Request {
    /// The calling app (it signs).
    merchant: Arc<AlipayMerchant>,
    /// Whose trades the call works on: the authorizing merchant when the
    /// call carries an `app_auth_token`, else the caller.
    book: Arc<AlipayMerchant>,
    method: String,
    params: BTreeMap<String, String>,
    cert_mode: bool,
}

async fn call(s: Arc<Shared>, http_method: &str, params: BTreeMap<String, String>) -> Response {
    let method = params.get("method").cloned().unwrap_or_default();
    let merchant = params.get("app_id").and_then(|a| s.merchants.alipay(a));
    // An authorized call is logged (and matched by faults) under the
    // authorizing merchant.
    let mch_hint = params
        .get("app_auth_token")
        .and_then(|t| s.merchants.alipay_auth(t))
        .and_then(|a| s.merchants.alipay(&a.auth_app_id))
        .or_else(|| merchant.clone())
        .map(|m| m.pid.clone());
    let target = format!("/sandbox/alipay/gateway.do?method={method}");
    let logged_body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let log = |status: u16, result: &str, detail: Option<String>| {
        s.log.push(NewEntry {
            kind: "api",
            method: http_method,
            target: &target,
            mch_id: mch_hint.as_deref(),
            status,
            result,
            detail,
            request_body: Some(&logged_body),
        })
    };
    let known =
        SERVER_METHODS.contains(&method.as_str()) || PAGE_METHODS.contains(&method.as_str());
    let is_page = PAGE_METHODS.contains(&method.as_str());
    let response_key = if known {
        format!("{}_response", method.replace('.', "_"))
    } else {
        "error_response".to_owned()
    };
    let cert_mode = params.get("app_cert_sn").is_some_and(|v| !v.is_empty());

    if let Some(fault) = s.faults.take_call(mch_hint.as_deref(), &target) {
        let resp = fault_response(&s, fault, &response_key, cert_mode).await;
        log(
            resp.status().as_u16(),
            "FAULT",
            Some(format!("{:?}", fault.kind)),
        );
        return resp;
    }

    let outcome = check(&s, &method, known, merchant, params).and_then(|req| {
        let now = s.now();
        dispatch(&s, &req, now).map(|a| (a, req.cert_mode))
    });
    match outcome {
        Ok((Answer::Json(mut inner), cert_mode)) => {
            inner.insert("code".into(), json!("10000"));
            inner.insert("msg".into(), json!("Success"));
            log(200, "SUCCESS", None);
            signed_response(&s, &response_key, &Value::Object(inner), cert_mode)
        }
        Ok((Answer::Page(order), _)) => {
            log(200, "SUCCESS", Some("payer page".into()));
            crate::page::alipay_order_page(&order).into_response()
        }
        Err(e) => {
            log(200, &e.sub_code, Some(e.sub_msg.clone()));
            if is_page {
                return crate::page::alipay_error_page(e.code, &e.sub_code, &e.sub_msg);
            }
            signed_response(&s, &response_key, &error_json(&e), cert_mode)
        }
    }
}

fn error_json(e: &AliError) -> Value {
    json!({
        "code": e.code,
        "msg": msg_of(e.code),
        "sub_code": e.sub_code,
        "sub_msg": e.sub_msg,
    })
}

/// `{"<key>":<inner>,"sign":"…"[,"alipay_cert_sn":"…"]}`, signed over the
/// exact inner text, `/` escaped as `\/`.
fn signed_response(s: &Shared, key: &str, inner: &Value, cert_mode: bool) -> Response {
    let inner_text = inner.to_string().replace('/', "\\/");
    let sign = s
        .pki
        .alipay
        .key
        .sign_sha256_base64(inner_text.as_bytes())
        .unwrap_or_default();
    let mut text = format!("{{\"{key}\":{inner_text},\"sign\":\"{sign}\"");
    if cert_mode {
        text.push_str(&format!(",\"alipay_cert_sn\":\"{}\"", s.pki.alipay.cert_sn));
    }
    text.push('}');
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=utf-8"),
    );
    resp
}

async fn fault_response(s: &Shared, fault: CallFault, key: &str, cert_mode: bool) -> Response {
    match fault.kind {
        FaultKind::SystemError => signed_response(
            s,
            key,
            &json!({
                "code": "20000",
                "msg": "Service Currently Unavailable",
                "sub_code": "isp.unknow-error",
                "sub_msg": "系统繁忙（沙箱故障注入）",
            }),
            cert_mode,
        ),
        _ => crate::faults::bare_reply(fault).await,
    }
}

fn check(
    s: &Shared,
    method: &str,
    known: bool,
    merchant: Option<Arc<AlipayMerchant>>,
    params: BTreeMap<String, String>,
) -> Result<Request, AliError> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if method.is_empty() {
        return Err(missing("isv.missing-method", "方法名"));
    }
    if !known {
        return Err(invalid("isv.invalid-method", "不存在的方法名"));
    }
    get("app_id").ok_or_else(|| missing("isv.missing-app-id", "AppID"))?;
    let merchant = merchant.ok_or_else(|| invalid("isv.invalid-app-id", "无效的AppID参数"))?;
    let sign = get("sign").ok_or_else(|| missing("isv.missing-signature", "签名"))?;
    let sign_type =
        get("sign_type").ok_or_else(|| missing("isv.missing-signature-type", "签名类型"))?;
    if sign_type != "RSA2" {
        return Err(invalid(
            "isv.invalid-signature-type",
            "无效的签名类型（沙箱只支持RSA2）",
        ));
    }
    if let Some(c) = get("charset")
        && !c.eq_ignore_ascii_case("utf-8")
    {
        return Err(invalid(
            "isv.invalid-charset",
            "字符集错误（沙箱只支持utf-8）",
        ));
    }
    if let Some(f) = get("format")
        && !f.eq_ignore_ascii_case("json")
    {
        return Err(invalid("isv.invalid-format", "无效的数据格式"));
    }
    let ts = get("timestamp").ok_or_else(|| missing("isv.missing-timestamp", "时间戳"))?;
    let at = cashdesk_core::time::parse_cn_datetime(ts).ok_or_else(|| {
        invalid(
            "isv.invalid-timestamp",
            "非法的时间戳参数（格式为yyyy-MM-dd HH:mm:ss）",
        )
    })?;
    if SERVER_METHODS.contains(&method) && (Utc::now() - at).num_seconds().abs() > 900 {
        return Err(invalid(
            "isv.invalid-timestamp",
            "非法的时间戳参数（与支付宝服务器时间相差超过15分钟）",
        ));
    }
    let version = get("version").ok_or_else(|| missing("isv.missing-version", "版本"))?;
    if version != "1.0" {
        return Err(invalid("isv.invalid-version", "无效的版本号"));
    }
    let cert_mode = get("app_cert_sn").is_some();
    if cert_mode {
        if get("app_cert_sn") != Some(merchant.app_cert_sn.as_str()) {
            return Err(invalid(
                "isv.invalid-app-cert-sn",
                "应用公钥证书序列号不匹配（app_cert_sn）",
            ));
        }
        let root = get("alipay_root_cert_sn")
            .ok_or_else(|| missing("isv.missing-alipay-root-cert-sn", "支付宝根证书序列号"))?;
        if root != s.pki.alipay.root_cert_sn {
            return Err(invalid(
                "isv.invalid-alipay-root-cert-sn",
                "支付宝根证书序列号不匹配（alipay_root_cert_sn）",
            ));
        }
    }
    let content = sign_content(&params, &["sign"]);
    let key = cashdesk_crypto::rsa::RsaPublicKey::from_pem(&merchant.public_key_pem)
        .map_err(|_| invalid("isv.invalid-signature", "应用公钥不可用"))?;
    key.verify_sha256_base64(content.as_bytes(), sign)
        .map_err(|_| {
            invalid(
                "isv.invalid-signature",
                format!(
                    "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}"
                ),
            )
        })?;
    if let Some(u) = get("notify_url") {
        s.check_notify_url(u)
            .map_err(|m| invalid("isv.invalid-notify-url", m))?;
    }
    let book = match get("app_auth_token") {
        None => merchant.clone(),
        Some(t) => {
            let invalid_token = || AliError {
                code: "20001",
                sub_code: "aop.invalid-app-auth-token".to_owned(),
                sub_msg: "无效的应用授权令牌（app_auth_token不存在或未授权给该应用）".to_owned(),
            };
            let auth = s
                .merchants
                .alipay_auth(t)
                .filter(|a| a.isv_app_id == merchant.app_id)
                .ok_or_else(invalid_token)?;
            s.merchants
                .alipay(&auth.auth_app_id)
                .ok_or_else(invalid_token)?
        }
    };
    Ok(Request {
        book,
        merchant,
        method: method.to_owned(),
        params,
        cert_mode,
    })
}

/// For the test API's `orderString`: process a signed
/// page/wap/app order string as the browser or wallet would submit it,
/// returning the order it created (or the error).
pub(crate) fn submit_order_string(s: &Shared, order_string: &str) -> Result<Order, String> {
    let query = match order_string.split_once('?') {
        Some((_, q)) => q,
        None => order_string,
    };
    let mut params = BTreeMap::new();
    parse_pairs(query.as_bytes(), &mut params);
    let method = params.get("method").cloned().unwrap_or_default();
    if !PAGE_METHODS.contains(&method.as_str()) {
        return Err(
            "orderString must be a signed alipay.trade.wap.pay, page.pay or app.pay order string"
                .into(),
        );
    }
    let merchant = params.get("app_id").and_then(|a| s.merchants.alipay(a));
    let req = check(s, &method, true, merchant, params)
        .map_err(|e| format!("{} {}: {}", e.code, e.sub_code, e.sub_msg))?;
    match create(s, &req, s.now()) {
        Ok(Answer::Page(o)) => Ok(*o),
        Ok(Answer::Json(_)) => Err("not a page order".into()),
        Err(e) => Err(format!("{} {}: {}", e.code, e.sub_code, e.sub_msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_content_skips_empty_and_named() {
        let mut p = BTreeMap::new();
        p.insert("sign".to_owned(), "x".to_owned());
        p.insert("sign_type".to_owned(), "RSA2".to_owned());
        p.insert("b".to_owned(), "2".to_owned());
        p.insert("a".to_owned(), "1".to_owned());
        p.insert("empty".to_owned(), String::new());
        assert_eq!(sign_content(&p, &["sign"]), "a=1&b=2&sign_type=RSA2");
        assert_eq!(sign_content(&p, &["sign", "sign_type"]), "a=1&b=2");
    }
}
