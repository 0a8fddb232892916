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
//! Faults (see [`crate::faults`]) are matched against
//! `/sandbox/alipay/gateway.do?method=<method>`; `mchId` is the pid.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::faults::{CallFault, FaultKind, NotifyFaults};
use crate::ledger::{
    AlipayOrder, Api, LedgerError, NewRefund, Order, OrderExt, OrderRef, PayState, Refund,
    TradeType,
};
use crate::merchants::AlipayMerchant;
use crate::reqlog::NewEntry;

pub fn router() -> Router<Arc<Shared>> {
    Router::new().route(
        "/sandbox/alipay/gateway.do",
        get(gateway_get).post(gateway_post),
    )
}

const SERVER_METHODS: &[&str] = &[
    "alipay.trade.create",
    "alipay.trade.precreate",
    "alipay.trade.query",
    "alipay.trade.close",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
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

/// A sandbox buyer's Alipay user id (`2088` + 12 digits).
pub fn new_buyer_id() -> String {
    format!("2088{}", digits(12))
}

fn digits(n: usize) -> String {
    cashdesk_crypto::random::bytes(n)
        .into_iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// 28 digits: date, `22001`, 15 random digits (Alipay's trade_no shape).
fn new_trade_no(now: DateTime<Utc>) -> String {
    format!(
        "{}22001{}",
        &cashdesk_core::time::to_compact(now)[..8],
        digits(15)
    )
}

fn yuan(fen: i64) -> String {
    cashdesk_core::Fen::from_stored(fen).to_yuan()
}

fn parse_yuan(field: &'static str, s: &str) -> Result<i64, AliError> {
    let fen = cashdesk_core::Fen::from_yuan(field, s)
        .map_err(|_| bad_param(format!("{field}格式错误：{s}（单位元，最多两位小数）")))?
        .get();
    if fen <= 0 || fen > 10_000_000_000 {
        return Err(bad_param(format!("{field}取值范围为[0.01,100000000]：{s}")));
    }
    Ok(fen)
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
        let now = Utc::now();
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

fn biz_content(req: &Request) -> Result<Map<String, Value>, AliError> {
    let text = req
        .params
        .get("biz_content")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| missing("isv.missing-biz-content", "biz_content"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid(
            "isv.invalid-biz-content",
            "biz_content不是合法的JSON对象",
        )),
    }
}

fn opt_str<'a>(b: &'a Map<String, Value>, k: &str) -> Result<Option<&'a str>, AliError> {
    match b.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad_param(format!("{k}必须为字符串"))),
    }
}

fn req_str<'a>(b: &'a Map<String, Value>, k: &str) -> Result<&'a str, AliError> {
    opt_str(b, k)?.ok_or_else(|| bad_param(format!("缺少必选参数{k}")))
}

fn check_out_trade_no(no: &str) -> Result<(), AliError> {
    if no.is_empty() || no.len() > 64 || !no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(bad_param(
            "out_trade_no只能为字母、数字、下划线，长度不超过64",
        ));
    }
    Ok(())
}

/// The trade named by `out_trade_no` or `trade_no` (one is required).
fn find_trade(s: &Shared, pid: &str, b: &Map<String, Value>) -> Result<Order, AliError> {
    let order = match (opt_str(b, "trade_no")?, opt_str(b, "out_trade_no")?) {
        (Some(trade_no), _) => s
            .ledger
            .find_by_prepay(trade_no)
            .filter(|o| o.mch_id == pid && o.api == Api::Alipay),
        (None, Some(no)) => s
            .ledger
            .find(pid, &OrderRef::OutTradeNo(no.to_owned()))
            .filter(|o| o.api == Api::Alipay),
        (None, None) => return Err(bad_param("out_trade_no和trade_no不能同时为空")),
    };
    order.ok_or_else(not_exist)
}

/// Alipay's trade_status of an order now.
pub fn trade_status(o: &Order, now: DateTime<Utc>) -> &'static str {
    match &o.state {
        PayState::Success { .. } if o.refunded >= o.total => "TRADE_CLOSED",
        PayState::Success { .. } => "TRADE_SUCCESS",
        PayState::NotPay if !o.expired(now) => "WAIT_BUYER_PAY",
        _ => "TRADE_CLOSED",
    }
}

fn alipay_ext(o: &Order) -> Option<&AlipayOrder> {
    match &o.ext {
        OrderExt::Alipay(a) => Some(a),
        _ => None,
    }
}

fn masked_logon_id(buyer_id: &str) -> String {
    let tail: String = buyer_id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sbx***{tail}@sandbox.alipay")
}

fn dispatch(s: &Shared, req: &Request, now: DateTime<Utc>) -> Result<Answer, AliError> {
    let pid = req.book.pid.as_str();
    match req.method.as_str() {
        "alipay.trade.create"
        | "alipay.trade.precreate"
        | "alipay.trade.wap.pay"
        | "alipay.trade.page.pay"
        | "alipay.trade.app.pay" => create(s, req, now),
        "alipay.trade.query" => {
            let b = biz_content(req)?;
            let o = find_trade(s, pid, &b)?;
            Ok(Answer::Json(query_json(&o, now)))
        }
        "alipay.trade.close" => {
            let b = biz_content(req)?;
            let o = find_trade(s, pid, &b)?;
            match s.ledger.close(pid, &o.out_trade_no, now) {
                Ok(closed) => {
                    let mut closed = closed;
                    if let Some(u) = req.params.get("notify_url").filter(|u| !u.is_empty()) {
                        closed.notify_url = u.clone();
                    }
                    s.notify_payment(&closed);
                }
                Err(LedgerError::OrderClosed) => {}
                Err(LedgerError::OrderPaid) => {
                    return Err(biz(
                        "ACQ.TRADE_STATUS_ERROR",
                        "交易状态不合法（交易已支付）",
                    ));
                }
                Err(_) => return Err(not_exist()),
            }
            let mut m = Map::new();
            m.insert("trade_no".into(), json!(o.prepay_id));
            m.insert("out_trade_no".into(), json!(o.out_trade_no));
            Ok(Answer::Json(m))
        }
        "alipay.trade.refund" => refund(s, req, now),
        "alipay.trade.fastpay.refund.query" => {
            let b = biz_content(req)?;
            let o = find_trade(s, pid, &b)?;
            let request_no = req_str(&b, "out_request_no")?;
            let mut m = Map::new();
            m.insert("trade_no".into(), json!(o.prepay_id));
            m.insert("out_trade_no".into(), json!(o.out_trade_no));
            m.insert("out_request_no".into(), json!(request_no));
            if let Some(r) = s
                .ledger
                .find_refund(pid, &refund_key(&o.out_trade_no, request_no))
            {
                m.insert("total_amount".into(), json!(yuan(o.total)));
                m.insert("refund_amount".into(), json!(yuan(r.amount)));
                m.insert("refund_status".into(), json!("REFUND_SUCCESS"));
                if let Some(reason) = &r.reason {
                    m.insert("refund_reason".into(), json!(reason));
                }
                if let Some(t) = r.success_at {
                    m.insert(
                        "gmt_refund_pay".into(),
                        json!(cashdesk_core::time::to_cn_datetime(t)),
                    );
                }
            }
            Ok(Answer::Json(m))
        }
        _ => Err(invalid("isv.invalid-method", "不存在的方法名")),
    }
}

/// The ledger key of a refund: out_request_no is unique per trade, not per
/// merchant, so the trade is part of it.
fn refund_key(out_trade_no: &str, out_request_no: &str) -> String {
    format!("{out_trade_no}#{out_request_no}")
}

fn out_request_no(r: &Refund) -> &str {
    r.out_refund_no
        .split_once('#')
        .map(|(_, no)| no)
        .unwrap_or(&r.out_refund_no)
}

fn parse_expiry(
    b: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AliError> {
    if let Some(t) = opt_str(b, "time_expire")? {
        let at = cashdesk_core::time::parse_cn_datetime(t)
            .ok_or_else(|| bad_param("time_expire格式为yyyy-MM-dd HH:mm:ss"))?;
        if at <= now {
            return Err(bad_param("time_expire不能早于当前时间"));
        }
        return Ok(Some(at));
    }
    let Some(t) = opt_str(b, "timeout_express")? else {
        return Ok(None);
    };
    let bad = || bad_param("timeout_express取值范围1m～15d，如90m、2h、1d");
    let (num, unit) = t.split_at(t.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let minutes = match unit {
        "m" => n,
        "h" => n * 60,
        "d" => n * 1440,
        _ => return Err(bad()),
    };
    if !(1..=21600).contains(&minutes) {
        return Err(bad());
    }
    Ok(Some(now + chrono::Duration::minutes(minutes)))
}

fn create(s: &Shared, req: &Request, now: DateTime<Utc>) -> Result<Answer, AliError> {
    let b = biz_content(req)?;
    // The trade is the book's (the authorizer's, with a token); the
    // calling app stays its app_id.
    let m = &req.book;
    let out_trade_no = req_str(&b, "out_trade_no")?;
    check_out_trade_no(out_trade_no)?;
    let total = parse_yuan("total_amount", req_str(&b, "total_amount")?)?;
    let subject = req_str(&b, "subject")?;
    if subject.chars().count() > 256 {
        return Err(bad_param("subject长度不能超过256"));
    }
    if let Some(seller) = opt_str(&b, "seller_id")?
        && seller != m.pid
    {
        return Err(biz(
            "ACQ.SELLER_NOT_EXIST",
            "卖家不存在（seller_id与应用签约的pid不一致）",
        ));
    }
    let method = req.method.as_str();
    let (expected_product, trade_type) = match method {
        "alipay.trade.create" => (None, TradeType::Jsapi),
        "alipay.trade.precreate" => (None, TradeType::Native),
        "alipay.trade.wap.pay" => (Some("QUICK_WAP_WAY"), TradeType::Mweb),
        "alipay.trade.page.pay" => (Some("FAST_INSTANT_TRADE_PAY"), TradeType::Mweb),
        _ => (Some("QUICK_MSECURITY_PAY"), TradeType::App),
    };
    let product_code = opt_str(&b, "product_code")?;
    if let Some(expected) = expected_product {
        match product_code {
            Some(p) if p != expected => {
                return Err(biz(
                    "ACQ.PRODUCT_CODE_ERROR",
                    format!("product_code应为{expected}"),
                ));
            }
            None if method != "alipay.trade.app.pay" => {
                return Err(bad_param("缺少必选参数product_code"));
            }
            _ => {}
        }
    }
    let buyer_id = opt_str(&b, "buyer_id")?;
    let buyer_open_id = opt_str(&b, "buyer_open_id")?;
    if method == "alipay.trade.create" && buyer_id.is_none() && buyer_open_id.is_none() {
        return Err(bad_param("buyer_id和buyer_open_id不能同时为空"));
    }
    let expire_at = parse_expiry(&b, now)?;
    let notify_url = req.params.get("notify_url").cloned().unwrap_or_default();
    let return_url = req
        .params
        .get("return_url")
        .filter(|u| !u.is_empty())
        .cloned();
    let body = opt_str(&b, "body")?.map(str::to_owned);
    let passback = opt_str(&b, "passback_params")?.map(str::to_owned);
    let token = req
        .params
        .get("app_auth_token")
        .filter(|t| !t.is_empty())
        .cloned();
    let fingerprint = [
        "alipay",
        method,
        &total.to_string(),
        subject,
        buyer_id.unwrap_or(""),
        buyer_open_id.unwrap_or(""),
        &notify_url,
        token.as_deref().unwrap_or(""),
    ]
    .join("\u{1f}");
    let order = Order {
        mch_id: m.pid.clone(),
        appid: req.merchant.app_id.clone(),
        out_trade_no: out_trade_no.to_owned(),
        api: Api::Alipay,
        trade_type,
        description: subject.to_owned(),
        total,
        openid: buyer_id.map(str::to_owned),
        attach: passback.clone(),
        notify_url,
        prepay_id: new_trade_no(now),
        created_at: now,
        expire_at,
        state: PayState::NotPay,
        refunded: 0,
        fingerprint,
        ext: OrderExt::Alipay(AlipayOrder {
            method: method.to_owned(),
            product_code: product_code.unwrap_or("").to_owned(),
            seller_id: m.pid.clone(),
            buyer_open_id: buyer_open_id.map(str::to_owned),
            return_url,
            passback_params: passback,
            body,
            app_auth_token: token,
        }),
    };
    let order = s.ledger.create_order(order, now).map_err(|e| match e {
        LedgerError::OrderPaid => biz("ACQ.TRADE_HAS_SUCCESS", "交易已被支付"),
        LedgerError::OrderClosed => biz("ACQ.TRADE_HAS_CLOSE", "交易已经关闭"),
        _ => biz(
            "ACQ.CONTEXT_INCONSISTENT",
            "交易信息被篡改（同一out_trade_no的参数不一致）",
        ),
    })?;
    let mut out = Map::new();
    out.insert("out_trade_no".into(), json!(order.out_trade_no));
    match method {
        "alipay.trade.create" => {
            out.insert("trade_no".into(), json!(order.prepay_id));
        }
        "alipay.trade.precreate" => {
            out.insert(
                "qr_code".into(),
                json!(s.alipay_payer_url(&order.prepay_id)),
            );
        }
        _ => return Ok(Answer::Page(Box::new(order))),
    }
    Ok(Answer::Json(out))
}

fn refund(s: &Shared, req: &Request, now: DateTime<Utc>) -> Result<Answer, AliError> {
    let b = biz_content(req)?;
    let pid = req.book.pid.as_str();
    let o = find_trade(s, pid, &b)?;
    let amount = parse_yuan("refund_amount", req_str(&b, "refund_amount")?)?;
    let request_no = opt_str(&b, "out_request_no")?
        .unwrap_or(&o.out_trade_no)
        .to_owned();
    if request_no.len() > 64 {
        return Err(bad_param("out_request_no长度不能超过64"));
    }
    let reason = opt_str(&b, "refund_reason")?.map(str::to_owned);
    let (refund, order, new) = s
        .ledger
        .refund(
            NewRefund {
                mch_id: pid.to_owned(),
                order: OrderRef::OutTradeNo(o.out_trade_no.clone()),
                out_refund_no: refund_key(&o.out_trade_no, &request_no),
                amount,
                total: o.total,
                reason,
                notify_url: Some(o.notify_url.clone()).filter(|u| !u.is_empty()),
                api: Api::Alipay,
            },
            now,
        )
        .map_err(|e| match e {
            LedgerError::NotEnough => biz("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限"),
            LedgerError::RefundMismatch => biz(
                "ACQ.DISCORDANT_REPEAT_REQUEST",
                "不一致的请求（同一out_request_no的退款金额不同）",
            ),
            LedgerError::TradeState if o.state == PayState::Closed || o.expired(now) => {
                biz("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            }
            LedgerError::TradeState => {
                biz("ACQ.TRADE_STATUS_ERROR", "交易状态不合法（交易未支付）")
            }
            _ => not_exist(),
        })?;
    let refund = if new {
        // Alipay refunds synchronously: settled before the answer.
        let done = s
            .ledger
            .complete_refund(pid, &refund.out_refund_no, now)
            .unwrap_or(refund);
        s.notify_refund(&done);
        done
    } else {
        refund
    };
    let buyer = order
        .paid()
        .map(|(_, _, b)| b.to_owned())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("trade_no".into(), json!(order.prepay_id));
    m.insert("out_trade_no".into(), json!(order.out_trade_no));
    m.insert("buyer_logon_id".into(), json!(masked_logon_id(&buyer)));
    m.insert("buyer_user_id".into(), json!(buyer));
    m.insert("fund_change".into(), json!(if new { "Y" } else { "N" }));
    m.insert("refund_fee".into(), json!(yuan(order.refunded)));
    m.insert("send_back_fee".into(), json!(yuan(refund.amount)));
    m.insert(
        "gmt_refund_pay".into(),
        json!(cashdesk_core::time::to_cn_datetime(
            refund.success_at.unwrap_or(now)
        )),
    );
    Ok(Answer::Json(m))
}

fn query_json(o: &Order, now: DateTime<Utc>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("trade_no".into(), json!(o.prepay_id));
    m.insert("out_trade_no".into(), json!(o.out_trade_no));
    m.insert("trade_status".into(), json!(trade_status(o, now)));
    m.insert("total_amount".into(), json!(yuan(o.total)));
    m.insert("subject".into(), json!(o.description));
    match o.paid() {
        Some((_, paid_at, buyer)) => {
            m.insert("buyer_logon_id".into(), json!(masked_logon_id(buyer)));
            m.insert("buyer_user_id".into(), json!(buyer));
            m.insert("buyer_pay_amount".into(), json!(yuan(o.total)));
            m.insert("receipt_amount".into(), json!(yuan(o.total)));
            m.insert("invoice_amount".into(), json!(yuan(o.total)));
            m.insert("point_amount".into(), json!("0.00"));
            m.insert(
                "send_pay_date".into(),
                json!(cashdesk_core::time::to_cn_datetime(paid_at)),
            );
            m.insert(
                "fund_bill_list".into(),
                json!([{"amount": yuan(o.total), "fund_channel": "ALIPAYACCOUNT"}]),
            );
        }
        None => {
            m.insert("buyer_pay_amount".into(), json!("0.00"));
            m.insert("receipt_amount".into(), json!("0.00"));
            m.insert("invoice_amount".into(), json!("0.00"));
            m.insert("point_amount".into(), json!("0.00"));
        }
    }
    if let Some(open_id) = alipay_ext(o).and_then(|a| a.buyer_open_id.as_deref()) {
        m.insert("buyer_open_id".into(), json!(open_id));
    }
    m
}

fn tamper_signature(sig: &str) -> String {
    let mut chars: Vec<char> = sig.chars().collect();
    if let Some(c) = chars.first_mut() {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

/// The app of the merchant whose trade `o` is (`auth_app_id`): the
/// authorizer's for a trade made with an app auth token, else the caller's.
fn auth_app_id(s: &Shared, o: &Order) -> String {
    s.merchants
        .alipay_by_pid(&o.mch_id)
        .map(|m| m.app_id.clone())
        .unwrap_or_else(|| o.appid.clone())
}

/// An asynchronous notification for `o` (paid or closed), or for a refund
/// of it: `(notify_id, form body)`.
pub(crate) fn notification(
    s: &Shared,
    o: &Order,
    refund: Option<&Refund>,
    faults: &NotifyFaults,
) -> (String, String) {
    let now = Utc::now();
    let notify_id = format!(
        "{}{}",
        &cashdesk_core::time::to_compact(now)[..8],
        hex::encode(cashdesk_crypto::random::bytes(13))
    );
    let total = o.total + i64::from(faults.tamper_amount);
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            f.insert(k.to_owned(), v);
        }
    };
    put("notify_time", cashdesk_core::time::to_cn_datetime(now));
    put("notify_type", "trade_status_sync".into());
    put("notify_id", notify_id.clone());
    put("charset", "utf-8".into());
    put("version", "1.0".into());
    put("sign_type", "RSA2".into());
    put("app_id", o.appid.clone());
    put("auth_app_id", auth_app_id(s, o));
    put("trade_no", o.prepay_id.clone());
    put("out_trade_no", o.out_trade_no.clone());
    put("subject", o.description.clone());
    put("trade_status", trade_status(o, now).into());
    put("total_amount", yuan(total));
    put(
        "gmt_create",
        cashdesk_core::time::to_cn_datetime(o.created_at),
    );
    if let Some(a) = alipay_ext(o) {
        put("seller_id", a.seller_id.clone());
        put("body", a.body.clone().unwrap_or_default());
        put(
            "passback_params",
            a.passback_params.clone().unwrap_or_default(),
        );
        put("buyer_open_id", a.buyer_open_id.clone().unwrap_or_default());
    }
    match o.paid() {
        Some((_, paid_at, buyer)) => {
            put("buyer_id", buyer.to_owned());
            put("buyer_logon_id", masked_logon_id(buyer));
            put("receipt_amount", yuan(total));
            put("invoice_amount", yuan(total));
            put("buyer_pay_amount", yuan(total));
            put("point_amount", "0.00".into());
            put("gmt_payment", cashdesk_core::time::to_cn_datetime(paid_at));
            put(
                "fund_bill_list",
                json!([{"amount": yuan(total), "fundChannel": "ALIPAYACCOUNT"}]).to_string(),
            );
        }
        None => {
            put("gmt_close", cashdesk_core::time::to_cn_datetime(now));
        }
    }
    if let Some(r) = refund {
        put("out_biz_no", out_request_no(r).to_owned());
        put("refund_fee", yuan(o.refunded));
        put(
            "gmt_refund",
            cashdesk_core::time::to_cn_datetime(r.success_at.unwrap_or(now)),
        );
        if o.refunded >= o.total {
            put("gmt_close", cashdesk_core::time::to_cn_datetime(now));
        }
    }
    let content = sign_content(&f, &["sign", "sign_type"]);
    let mut sign = s
        .pki
        .alipay
        .key
        .sign_sha256_base64(content.as_bytes())
        .unwrap_or_default();
    if faults.tamper_signature {
        sign = tamper_signature(&sign);
    }
    f.insert("sign".into(), sign);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(f.iter())
        .finish();
    (notify_id, body)
}

/// The signed synchronous return (`return_url?…`) shown after a page or wap
/// payment, as Alipay redirects the browser: trade fields plus
/// `method=<method>.return`, signed like a notification.
pub(crate) fn return_url(s: &Shared, o: &Order) -> Option<String> {
    let a = alipay_ext(o)?;
    let base = a.return_url.as_deref()?;
    let mut url = url::Url::parse(base).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let mut f = BTreeMap::new();
    f.insert("charset".to_owned(), "utf-8".to_owned());
    f.insert("out_trade_no".to_owned(), o.out_trade_no.clone());
    f.insert("method".to_owned(), format!("{}.return", a.method));
    f.insert("total_amount".to_owned(), yuan(o.total));
    f.insert("trade_no".to_owned(), o.prepay_id.clone());
    f.insert("auth_app_id".to_owned(), auth_app_id(s, o));
    f.insert("version".to_owned(), "1.0".to_owned());
    f.insert("app_id".to_owned(), o.appid.clone());
    f.insert("sign_type".to_owned(), "RSA2".to_owned());
    f.insert("seller_id".to_owned(), a.seller_id.clone());
    f.insert(
        "timestamp".to_owned(),
        cashdesk_core::time::to_cn_datetime(Utc::now()),
    );
    let content = sign_content(&f, &["sign", "sign_type"]);
    let sign = s
        .pki
        .alipay
        .key
        .sign_sha256_base64(content.as_bytes())
        .ok()?;
    f.insert("sign".to_owned(), sign);
    url.query_pairs_mut().extend_pairs(f.iter());
    Some(url.to_string())
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
    match create(s, &req, Utc::now()) {
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

    #[test]
    fn yuan_parsing_is_exact() {
        assert_eq!(parse_yuan("total_amount", "0.1").unwrap(), 10);
        assert_eq!(parse_yuan("total_amount", "0.10").unwrap(), 10);
        assert_eq!(parse_yuan("total_amount", "12").unwrap(), 1200);
        assert!(parse_yuan("total_amount", "0").is_err());
        assert!(parse_yuan("total_amount", "0.001").is_err());
        assert!(parse_yuan("total_amount", "-1").is_err());
        assert!(parse_yuan("total_amount", "1e2").is_err());
    }

    #[test]
    fn trade_numbers_look_like_alipay() {
        let t = new_trade_no(Utc::now());
        assert_eq!(t.len(), 28);
        assert!(t.bytes().all(|b| b.is_ascii_digit()));
        assert!(new_buyer_id().starts_with("2088"));
    }
}
