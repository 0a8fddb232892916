//! Lakala open platform v3 front end: `/sandbox/lakala/api/v3/labs/...`
//! (the credentials' `baseUrl` is `<public_url>/sandbox/lakala`, standing
//! for `https://s2.lakala.com`).
//!
//! Every request is a JSON POST `{"req_time":"yyyyMMddHHmmss","version":"3.0",
//! "req_data":{…}}` with `Authorization: LKLAPI-SHA256withRSA appid="…",
//! serial_no="…",timestamp="…",nonce_str="…",signature="…"` over
//! `appid\nserial_no\ntimestamp\nnonce_str\nbody\n` (raw body bytes),
//! verified with the key of the app's certificate whose serial is
//! `serial_no`, timestamp within 300 s. Every answer is
//! `{"code","msg","resp_time","resp_data"}` with the headers
//! `Lklapi-Appid`, `Lklapi-Serial` (the Lakala certificate's serial),
//! `Lklapi-Timestamp`, `Lklapi-Nonce`, `Lklapi-Signature` over
//! `appid\nserial\ntimestamp\nnonce\nbody\n`, signed with Lakala's platform
//! key (`lklCertPem`). Notifications are signed with a *different* key
//! (`lklNotifyCertPem`): `Authorization: LKLAPI-SHA256withRSA
//! timestamp="…",nonce_str="…",signature="…"` over `timestamp\nnonce_str\nbody\n`,
//! acknowledged by `{"code":"SUCCESS","message":"执行成功"}`.
//!
//! Scenes (`trans_type`): 71 WeChat mini-program (`account_type` WECHAT,
//! `acc_busi_fields.sub_appid` + `user_id` → `acc_resp_fields` with the
//! `wx.requestPayment` parameters `app_id, time_stamp, nonce_str, package,
//! sign_type, pay_sign`, plus `prepay_id`), 51 JSAPI (WECHAT as 71; ALIPAY /
//! UQRCODEPAY with `user_id` → `prepay_id` = the wallet trade number), 41
//! Native (`code` = the payer page), 81 Alipay H5 (`redirect_url` = the
//! payer page, and `form_data`, an HTML form posting to it). `pay_sign` is
//! computed with Lakala's platform key over the v3 mini-program message:
//! the real one comes from WeChat and cannot be checked by the merchant
//! either.
//!
//! Trade states: CREATE (unpaid), SUCCESS, FAIL (`result: FAIL` of the test
//! API), CLOSE (closed or expired), PART_REFUND, REFUND. A refund is itself
//! a trade with its own `out_trade_no` (the refund number); tradequery
//! answers it too (`trade_type` REFUND).
//!
//! A Lakala app transacts for its own `merchant_no`/`term_no` and for its
//! store terminals' (the stores of a chain, opened through the test API
//! with `{"channelType":"lakala","appId":…}`); any other pair is refused
//! (`BBS11009`). The order book, the request log (`mchId`) and faults are
//! keyed by `merchant_no`.
//!
//! # UNCONFIRMED choices (PROTOCOLS.md leaves them open; all here)
//!
//! - Close and refund paths: `/api/v3/labs/relation/close` and
//!   `/api/v3/labs/relation/refund` (as PROTOCOLS.md lists them). There is
//!   no refund-query endpoint: refunds are synchronous (`trade_state`
//!   SUCCESS in the answer) and can be looked up with tradequery by the
//!   refund's `out_trade_no`. No refund notification is sent.
//! - Notifications go out only for successful payments (like WeChat v3);
//!   a failed payment is found by query. Retry schedule: WeChat's
//!   ([`crate::lakala_notify_schedule`]).
//! - Expiry: `acc_busi_fields.timeout_express`, whole minutes (an expired
//!   unpaid trade reads CLOSE; not notified).
//! - `subject` at most 42 bytes ([`SUBJECT_MAX_BYTES`]).
//! - Timestamp window 300 s. Error codes: see [`codes`]; gateway failures
//!   (signature, unknown appid, malformed envelope) answer HTTP 401/400
//!   with those codes, business failures HTTP 200.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::faults::{CallFault, FaultKind, NotifyFaults};
use crate::ledger::{
    Api, LakalaOrder, LedgerError, NewRefund, Order, OrderExt, OrderRef, PayState, Refund,
    TradeType,
};
use crate::merchants::LakalaMerchant;
use crate::pki::Pki;
use crate::reqlog::NewEntry;

/// `subject`: String(42), "at most 42 bytes" (UNCONFIRMED; the adapter's
/// `lakala::choices::SUBJECT_MAX_BYTES` mirrors it).
pub const SUBJECT_MAX_BYTES: usize = 42;

/// The sandbox's Lakala result codes (UNCONFIRMED except `BBS00000`).
pub mod codes {
    pub const SUCCESS: &str = "BBS00000";
    /// System error: the result is unknown, query again (integrators treat
    /// BBS10000 like BBS11112/BBS11105, "processing").
    pub const SYSTEM_ERROR: &str = "BBS10000";
    pub const SIGN_ERROR: &str = "BBS10001";
    pub const PARAM_ERROR: &str = "BBS10002";
    pub const ORDER_NOT_EXIST: &str = "BBS11001";
    pub const OUT_TRADE_NO_USED: &str = "BBS11002";
    pub const ORDER_PAID: &str = "BBS11004";
    pub const ORDER_CLOSED: &str = "BBS11005";
    pub const REFUND_EXCEEDS: &str = "BBS11006";
    pub const TRADE_STATE_ERROR: &str = "BBS11007";
    /// The merchant or terminal number is not the app's (nor one of its
    /// stores').
    pub const MERCHANT_NOT_BOUND: &str = "BBS11009";
}

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/lakala/api/v3/labs/trans/preorder", post(preorder))
        .route(
            "/sandbox/lakala/api/v3/labs/query/tradequery",
            post(tradequery),
        )
        .route("/sandbox/lakala/api/v3/labs/relation/close", post(close))
        .route("/sandbox/lakala/api/v3/labs/relation/refund", post(refund))
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Preorder,
    Query,
    Close,
    Refund,
}

#[derive(Debug)]
struct LklError {
    status: StatusCode,
    code: &'static str,
    msg: String,
}

fn err(code: &'static str, msg: impl Into<String>) -> LklError {
    LklError {
        status: StatusCode::OK,
        code,
        msg: msg.into(),
    }
}

fn param(msg: impl Into<String>) -> LklError {
    err(codes::PARAM_ERROR, msg)
}

fn auth(msg: impl Into<String>) -> LklError {
    LklError {
        status: StatusCode::UNAUTHORIZED,
        code: codes::SIGN_ERROR,
        msg: msg.into(),
    }
}

macro_rules! handler {
    ($name:ident, $op:expr) => {
        async fn $name(
            State(s): State<Arc<Shared>>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            entry(s, $op, uri.path(), &headers, &body).await
        }
    };
}
handler!(preorder, Op::Preorder);
handler!(tradequery, Op::Query);
handler!(close, Op::Close);
handler!(refund, Op::Refund);

struct Authorization {
    appid: String,
    serial_no: String,
    timestamp: String,
    nonce_str: String,
    signature: String,
}

/// `LKLAPI-SHA256withRSA k="v",…` (order free, quotes required).
fn parse_authorization(value: &str) -> Result<Authorization, LklError> {
    let rest = value
        .strip_prefix("LKLAPI-SHA256withRSA ")
        .ok_or_else(|| auth("Authorization认证类型必须为LKLAPI-SHA256withRSA"))?;
    let mut fields = std::collections::HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| auth("Authorization格式错误"))?;
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| auth(format!("Authorization中{k}的值必须带双引号")))?;
        fields.insert(k.trim().to_owned(), v.to_owned());
    }
    let mut take = |k: &str| {
        fields
            .remove(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| auth(format!("Authorization缺少{k}")))
    };
    Ok(Authorization {
        appid: take("appid")?,
        serial_no: take("serial_no")?,
        timestamp: take("timestamp")?,
        nonce_str: take("nonce_str")?,
        signature: take("signature")?,
    })
}

fn verify(s: &Shared, a: &Authorization, body: &[u8]) -> Result<Arc<LakalaMerchant>, LklError> {
    let m = s
        .merchants
        .lakala(&a.appid)
        .ok_or_else(|| auth("appid不存在"))?;
    if !a.serial_no.eq_ignore_ascii_case(&m.serial_no) {
        return Err(auth("证书序列号serial_no与appid不匹配"));
    }
    let ts: i64 = a.timestamp.parse().map_err(|_| auth("timestamp格式错误"))?;
    if (Utc::now().timestamp() - ts).abs() > 300 {
        return Err(auth("请求时间戳与当前时间相差超过5分钟"));
    }
    let mut msg = format!(
        "{}\n{}\n{}\n{}\n",
        a.appid, a.serial_no, a.timestamp, a.nonce_str
    )
    .into_bytes();
    msg.extend_from_slice(body);
    msg.push(b'\n');
    let key = cashdesk_crypto::rsa::RsaPublicKey::from_pem(&m.cert_pem)
        .map_err(|_| auth("商户证书不可用"))?;
    key.verify_sha256_base64(&msg, &a.signature)
        .map_err(|_| auth("验签失败，请检查签名数据"))?;
    Ok(m)
}

/// Lakala's response signature headers over `body`, for `appid`.
fn response_headers(pki: &Pki, appid: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let ts = Utc::now().timestamp().to_string();
    let nonce = cashdesk_crypto::random::nonce_str(12);
    let mut msg = format!("{appid}\n{}\n{ts}\n{nonce}\n", pki.lakala.serial).into_bytes();
    msg.extend_from_slice(body);
    msg.push(b'\n');
    let signature = pki.lakala.key.sign_sha256_base64(&msg).unwrap_or_default();
    vec![
        ("Lklapi-Appid", appid.to_owned()),
        ("Lklapi-Serial", pki.lakala.serial.clone()),
        ("Lklapi-Timestamp", ts),
        ("Lklapi-Nonce", nonce),
        ("Lklapi-Signature", signature),
        (
            "Lklapi-Traceid",
            hex::encode(cashdesk_crypto::random::bytes(8)),
        ),
    ]
}

/// The notification `Authorization` header over `body`, with the notify key.
pub(crate) fn notify_authorization(pki: &Pki, body: &[u8], tamper: bool) -> String {
    let ts = Utc::now().timestamp().to_string();
    let nonce = cashdesk_crypto::random::nonce_str(12);
    let mut msg = format!("{ts}\n{nonce}\n").into_bytes();
    msg.extend_from_slice(body);
    msg.push(b'\n');
    if tamper {
        msg.extend_from_slice(b"tampered");
    }
    let signature = pki
        .lakala
        .notify_key
        .sign_sha256_base64(&msg)
        .unwrap_or_default();
    format!(
        "LKLAPI-SHA256withRSA timestamp=\"{ts}\",nonce_str=\"{nonce}\",signature=\"{signature}\""
    )
}

fn signed(pki: &Pki, appid: &str, status: StatusCode, value: &Value) -> Response {
    let body = value.to_string().into_bytes();
    let headers = response_headers(pki, appid, &body);
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    resp
}

fn envelope(code: &str, msg: &str, data: Option<Value>, now: DateTime<Utc>) -> Value {
    json!({
        "code": code,
        "msg": msg,
        "resp_time": cashdesk_core::time::to_compact(now),
        "resp_data": data.unwrap_or(Value::Null),
    })
}

async fn entry(s: Arc<Shared>, op: Op, path: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let mch_hint = parsed
        .as_ref()
        .and_then(|v| v["req_data"]["merchant_no"].as_str())
        .map(str::to_owned);
    let auth_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(parse_authorization);
    let appid = match &auth_header {
        Some(Ok(a)) => a.appid.clone(),
        _ => String::new(),
    };
    let body_text = String::from_utf8_lossy(body).into_owned();
    let log = |status: StatusCode, result: &str, detail: Option<String>| {
        s.log.push(NewEntry {
            kind: "api",
            method: "POST",
            target: path,
            mch_id: mch_hint.as_deref(),
            status: status.as_u16(),
            result,
            detail,
            request_body: Some(&body_text),
        })
    };

    if let Some(fault) = s.faults.take_call(mch_hint.as_deref(), path) {
        let resp = fault_response(&s.pki, &appid, fault).await;
        log(resp.status(), "FAULT", Some(format!("{:?}", fault.kind)));
        return resp;
    }

    let now = Utc::now();
    let outcome = match auth_header {
        None => Err(auth("缺少Authorization请求头")),
        Some(Err(e)) => Err(e),
        Some(Ok(a)) => verify(&s, &a, body).and_then(|m| {
            let data = req_data(parsed.as_ref())?;
            dispatch(&s, &m, op, data, now)
        }),
    };
    match outcome {
        Ok(data) => {
            log(StatusCode::OK, "SUCCESS", None);
            signed(
                &s.pki,
                &appid,
                StatusCode::OK,
                &envelope(codes::SUCCESS, "成功", Some(Value::Object(data)), now),
            )
        }
        Err(e) => {
            log(e.status, e.code, Some(e.msg.clone()));
            signed(
                &s.pki,
                &appid,
                e.status,
                &envelope(e.code, &e.msg, None, now),
            )
        }
    }
}

async fn fault_response(pki: &Pki, appid: &str, fault: CallFault) -> Response {
    match fault.kind {
        FaultKind::SystemError => signed(
            pki,
            appid,
            StatusCode::OK,
            &envelope(
                codes::SYSTEM_ERROR,
                "系统异常，请稍后重试（沙箱故障注入）",
                None,
                Utc::now(),
            ),
        ),
        _ => crate::faults::bare_reply(fault).await,
    }
}

fn req_data(v: Option<&Value>) -> Result<&Map<String, Value>, LklError> {
    let bad = |m: &str| LklError {
        status: StatusCode::BAD_REQUEST,
        code: codes::PARAM_ERROR,
        msg: m.to_owned(),
    };
    let v = v.ok_or_else(|| bad("请求体不是合法的JSON"))?;
    if v["version"] != "3.0" {
        return Err(bad("version必须为3.0"));
    }
    let req_time = v["req_time"].as_str().unwrap_or("");
    if cashdesk_core::time::parse_compact(req_time).is_none() {
        return Err(bad("req_time格式为yyyyMMddHHmmss"));
    }
    v["req_data"]
        .as_object()
        .ok_or_else(|| bad("req_data必须为JSON对象"))
}

fn opt_str<'a>(d: &'a Map<String, Value>, path: &str) -> Result<Option<&'a str>, LklError> {
    let mut parts = path.split('.');
    let mut cur = parts.next().and_then(|p| d.get(p));
    for p in parts {
        cur = cur.and_then(|c| c.get(p));
    }
    match cur {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(param(format!("{path}必须为字符串"))),
    }
}

fn req_str<'a>(d: &'a Map<String, Value>, path: &str) -> Result<&'a str, LklError> {
    opt_str(d, path)?.ok_or_else(|| param(format!("{path}不能为空")))
}

fn alnum(field: &str, v: &str, max: usize, extra: &[u8]) -> Result<(), LklError> {
    if v.is_empty()
        || v.len() > max
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    {
        return Err(param(format!("{field}格式错误")));
    }
    Ok(())
}

/// A positive amount in fen, as a string of digits.
fn fen(field: &str, v: &str) -> Result<i64, LklError> {
    if v.is_empty() || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 12
    {
        return Err(param(format!("{field}必须为正整数（单位分）")));
    }
    let n: i64 = v.parse().map_err(|_| param(format!("{field}格式错误")))?;
    if n > cashdesk_core::money::MAX_FEN {
        return Err(param(format!("{field}超出范围")));
    }
    Ok(n)
}

/// merchant_no and term_no of a request.
fn merchant_term(d: &Map<String, Value>) -> Result<(&str, &str), LklError> {
    let merchant_no = req_str(d, "merchant_no")?;
    alnum("merchant_no", merchant_no, 32, &[])?;
    let term_no = req_str(d, "term_no")?;
    alnum("term_no", term_no, 32, &[])?;
    Ok((merchant_no, term_no))
}

fn digits(n: usize) -> String {
    cashdesk_crypto::random::bytes(n)
        .into_iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

fn lakala_ext(o: &Order) -> Option<&LakalaOrder> {
    match &o.ext {
        OrderExt::Lakala(l) => Some(l),
        _ => None,
    }
}

/// The payer id the test API uses when none is given: an Alipay-shaped
/// user id for ALIPAY, else the ledger's default (an openid).
pub(crate) fn default_payer(o: &Order) -> Option<String> {
    lakala_ext(o)
        .filter(|l| l.account_type == "ALIPAY")
        .map(|_| crate::alipay::new_buyer_id())
}

/// Lakala's trade_state of an order now.
pub fn trade_state(o: &Order, now: DateTime<Utc>) -> &'static str {
    match &o.state {
        PayState::Success { .. } if o.refunded >= o.total => "REFUND",
        PayState::Success { .. } if o.refunded > 0 => "PART_REFUND",
        PayState::Success { .. } => "SUCCESS",
        PayState::NotPay if !o.expired(now) => "CREATE",
        PayState::PayError => "FAIL",
        _ => "CLOSE",
    }
}

fn state_desc(state: &str) -> &'static str {
    match state {
        "SUCCESS" => "交易成功",
        "PART_REFUND" => "部分退款",
        "REFUND" => "全部退款",
        "CREATE" => "下单成功",
        "FAIL" => "交易失败",
        _ => "订单关闭",
    }
}

fn dispatch(
    s: &Shared,
    m: &LakalaMerchant,
    op: Op,
    d: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Map<String, Value>, LklError> {
    let (merchant_no, term_no) = merchant_term(d)?;
    if !s
        .merchants
        .lakala_terminal_of(&m.app_id, merchant_no, term_no)
    {
        return Err(err(
            codes::MERCHANT_NOT_BOUND,
            "商户号或终端号不属于该appid（merchant_no/term_no未绑定）",
        ));
    }
    match op {
        Op::Preorder => create(s, m, d, now),
        Op::Query => {
            let (merchant_no, _) = merchant_term(d)?;
            let order = match (opt_str(d, "trade_no")?, opt_str(d, "out_trade_no")?) {
                (Some(t), _) => s
                    .ledger
                    .find_by_prepay(t)
                    .filter(|o| o.mch_id == merchant_no && o.api == Api::Lakala),
                (None, Some(no)) => s
                    .ledger
                    .find(merchant_no, &OrderRef::OutTradeNo(no.to_owned()))
                    .filter(|o| o.api == Api::Lakala),
                (None, None) => return Err(param("out_trade_no和trade_no不能同时为空")),
            };
            if let Some(o) = order {
                return Ok(trade_json(&o, now));
            }
            // A refund is a trade too, with its own out_trade_no.
            let refund = match opt_str(d, "out_trade_no")? {
                Some(no) => s
                    .ledger
                    .find_refund(merchant_no, no)
                    .filter(|r| r.api == Api::Lakala),
                None => None,
            };
            let r = refund.ok_or_else(|| err(codes::ORDER_NOT_EXIST, "订单不存在"))?;
            let origin = s
                .ledger
                .find(merchant_no, &OrderRef::OutTradeNo(r.out_trade_no.clone()))
                .ok_or_else(|| err(codes::ORDER_NOT_EXIST, "订单不存在"))?;
            Ok(refund_json(&r, &origin))
        }
        Op::Close => {
            let (merchant_no, _) = merchant_term(d)?;
            req_str(d, "location_info.request_ip")?;
            let order = match (
                opt_str(d, "origin_trade_no")?,
                opt_str(d, "origin_out_trade_no")?,
            ) {
                (Some(t), _) => s
                    .ledger
                    .find_by_prepay(t)
                    .filter(|o| o.mch_id == merchant_no && o.api == Api::Lakala),
                (None, Some(no)) => s
                    .ledger
                    .find(merchant_no, &OrderRef::OutTradeNo(no.to_owned()))
                    .filter(|o| o.api == Api::Lakala),
                (None, None) => {
                    return Err(param("origin_out_trade_no和origin_trade_no不能同时为空"));
                }
            }
            .ok_or_else(|| err(codes::ORDER_NOT_EXIST, "订单不存在"))?;
            match s.ledger.close(merchant_no, &order.out_trade_no, now) {
                Ok(_) | Err(LedgerError::OrderClosed) => {}
                Err(LedgerError::OrderPaid) => {
                    return Err(err(codes::ORDER_PAID, "订单已支付，不能关闭"));
                }
                Err(_) => return Err(err(codes::ORDER_NOT_EXIST, "订单不存在")),
            }
            let mut out = Map::new();
            out.insert("origin_trade_no".into(), json!(order.prepay_id));
            out.insert("origin_out_trade_no".into(), json!(order.out_trade_no));
            out.insert(
                "trade_time".into(),
                json!(cashdesk_core::time::to_compact(now)),
            );
            Ok(out)
        }
        Op::Refund => create_refund(s, d, now),
    }
}

fn create(
    s: &Shared,
    m: &LakalaMerchant,
    d: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Map<String, Value>, LklError> {
    let (merchant_no, term_no) = merchant_term(d)?;
    let out_trade_no = req_str(d, "out_trade_no")?;
    alnum("out_trade_no", out_trade_no, 32, b"_-")?;
    let account_type = req_str(d, "account_type")?;
    if !matches!(account_type, "WECHAT" | "ALIPAY" | "UQRCODEPAY") {
        return Err(param("account_type取值为WECHAT、ALIPAY、UQRCODEPAY"));
    }
    let trans_type = req_str(d, "trans_type")?;
    let total = fen("total_amount", req_str(d, "total_amount")?)?;
    req_str(d, "location_info.request_ip")?;
    let subject = opt_str(d, "subject")?.unwrap_or("");
    if subject.len() > SUBJECT_MAX_BYTES {
        return Err(param("subject长度不能超过42个字节"));
    }
    let notify_url = opt_str(d, "notify_url")?.unwrap_or("");
    if !notify_url.is_empty() {
        s.check_notify_url(notify_url).map_err(param)?;
    }
    let remark = opt_str(d, "remark")?;
    // Expiry in whole minutes (`acc_busi_fields.timeout_express`; UNCONFIRMED).
    let expire_at = match opt_str(d, "acc_busi_fields.timeout_express")? {
        None => None,
        Some(m) => {
            let minutes: i64 = m
                .parse()
                .ok()
                .filter(|n| (1..=43200).contains(n))
                .ok_or_else(|| param("acc_busi_fields.timeout_express为1到43200的整数（分钟）"))?;
            Some(now + chrono::Duration::minutes(minutes))
        }
    };
    let sub_appid = opt_str(d, "acc_busi_fields.sub_appid")?;
    let user_id = opt_str(d, "acc_busi_fields.user_id")?;
    let trade_type = match (trans_type, account_type) {
        ("71", "WECHAT") | ("51", "WECHAT") => {
            if sub_appid.is_none() || user_id.is_none() {
                return Err(param(
                    "微信JSAPI/小程序支付acc_busi_fields.sub_appid和user_id不能为空",
                ));
            }
            TradeType::Jsapi
        }
        ("71", _) => return Err(param("trans_type=71仅支持account_type=WECHAT")),
        ("51", _) => {
            if user_id.is_none() {
                return Err(param("JSAPI支付acc_busi_fields.user_id不能为空"));
            }
            TradeType::Jsapi
        }
        ("41", _) => TradeType::Native,
        ("81", "ALIPAY") => TradeType::Mweb,
        ("81", _) => return Err(param("trans_type=81仅支持account_type=ALIPAY")),
        _ => return Err(param("trans_type取值为41、51、71、81")),
    };
    let fingerprint = [
        "lakala",
        &m.app_id,
        account_type,
        trans_type,
        &total.to_string(),
        user_id.unwrap_or(""),
        sub_appid.unwrap_or(""),
        notify_url,
        term_no,
    ]
    .join("\u{1f}");
    let acc_trade_no = match account_type {
        "WECHAT" => format!("4200{}", digits(24)),
        "ALIPAY" => format!(
            "{}22001{}",
            &cashdesk_core::time::to_compact(now)[..8],
            digits(15)
        ),
        _ => digits(20),
    };
    let order = Order {
        mch_id: merchant_no.to_owned(),
        appid: m.app_id.clone(),
        out_trade_no: out_trade_no.to_owned(),
        api: Api::Lakala,
        trade_type,
        description: subject.to_owned(),
        total,
        openid: user_id.map(str::to_owned),
        attach: remark.map(str::to_owned),
        notify_url: notify_url.to_owned(),
        prepay_id: format!("{}{}", cashdesk_core::time::to_compact(now), digits(8)),
        created_at: now,
        expire_at,
        state: PayState::NotPay,
        refunded: 0,
        fingerprint,
        ext: OrderExt::Lakala(LakalaOrder {
            app_id: m.app_id.clone(),
            term_no: term_no.to_owned(),
            account_type: account_type.to_owned(),
            trans_type: trans_type.to_owned(),
            log_no: format!("66{}", digits(12)),
            acc_trade_no,
            sub_appid: sub_appid.map(str::to_owned),
            remark: remark.map(str::to_owned),
        }),
    };
    let order = s.ledger.create_order(order, now).map_err(|e| match e {
        LedgerError::OrderPaid => err(codes::ORDER_PAID, "订单已支付"),
        LedgerError::OrderClosed => err(codes::ORDER_CLOSED, "订单已关闭"),
        _ => err(
            codes::OUT_TRADE_NO_USED,
            "商户订单号重复（同一out_trade_no的请求参数不一致）",
        ),
    })?;
    let l = lakala_ext(&order)
        .cloned()
        .ok_or_else(|| err(codes::SYSTEM_ERROR, "系统异常"))?;
    let acc_resp = match (trans_type, account_type) {
        ("71", _) | ("51", "WECHAT") => {
            let app_id = l.sub_appid.clone().unwrap_or_default();
            let ts = now.timestamp().to_string();
            let nonce = cashdesk_crypto::random::nonce_str(32);
            let prepay_id = format!("wx{}", order.prepay_id);
            let package = format!("prepay_id={prepay_id}");
            let msg = format!("{app_id}\n{ts}\n{nonce}\n{package}\n");
            let pay_sign = s
                .pki
                .lakala
                .key
                .sign_sha256_base64(msg.as_bytes())
                .unwrap_or_default();
            json!({
                "prepay_id": prepay_id,
                "app_id": app_id,
                "time_stamp": ts,
                "nonce_str": nonce,
                "package": package,
                "sign_type": "RSA",
                "pay_sign": pay_sign,
            })
        }
        ("51", _) => json!({"prepay_id": l.acc_trade_no}),
        ("41", _) => json!({"code": s.lakala_payer_url(&order.prepay_id)}),
        _ => {
            let url = s.lakala_payer_url(&order.prepay_id);
            json!({
                "redirect_url": url,
                "form_data": format!(
                    "<form name=\"punchout_form\" method=\"get\" action=\"{url}\"></form><script>document.forms[0].submit();</script>"
                ),
            })
        }
    };
    let mut out = Map::new();
    out.insert("merchant_no".into(), json!(order.mch_id));
    out.insert("out_trade_no".into(), json!(order.out_trade_no));
    out.insert("trade_no".into(), json!(order.prepay_id));
    out.insert("log_no".into(), json!(l.log_no));
    out.insert("settle_merchant_no".into(), json!(order.mch_id));
    out.insert("settle_term_no".into(), json!(l.term_no));
    out.insert("acc_resp_fields".into(), acc_resp);
    Ok(out)
}

fn create_refund(
    s: &Shared,
    d: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Map<String, Value>, LklError> {
    let (merchant_no, _) = merchant_term(d)?;
    let out_refund_no = req_str(d, "out_trade_no")?;
    alnum("out_trade_no", out_refund_no, 32, b"_-")?;
    let amount = fen("refund_amount", req_str(d, "refund_amount")?)?;
    req_str(d, "location_info.request_ip")?;
    let reason = opt_str(d, "refund_reason")?.map(str::to_owned);
    let origin = match (
        opt_str(d, "origin_trade_no")?,
        opt_str(d, "origin_out_trade_no")?,
        opt_str(d, "origin_log_no")?,
    ) {
        (Some(t), _, _) => s
            .ledger
            .find_by_prepay(t)
            .filter(|o| o.mch_id == merchant_no && o.api == Api::Lakala),
        (None, Some(no), _) => s
            .ledger
            .find(merchant_no, &OrderRef::OutTradeNo(no.to_owned()))
            .filter(|o| o.api == Api::Lakala),
        (None, None, Some(log_no)) => s.ledger.find_any_by(|o| {
            o.mch_id == merchant_no && lakala_ext(o).is_some_and(|l| l.log_no == log_no)
        }),
        (None, None, None) => {
            return Err(param(
                "origin_out_trade_no、origin_trade_no、origin_log_no不能同时为空",
            ));
        }
    }
    .ok_or_else(|| err(codes::ORDER_NOT_EXIST, "原交易不存在"))?;
    let (r, order, new) = s
        .ledger
        .refund(
            NewRefund {
                mch_id: merchant_no.to_owned(),
                order: OrderRef::OutTradeNo(origin.out_trade_no.clone()),
                out_refund_no: out_refund_no.to_owned(),
                amount,
                total: origin.total,
                reason,
                notify_url: None,
                api: Api::Lakala,
            },
            now,
        )
        .map_err(|e| match e {
            LedgerError::NotEnough => err(codes::REFUND_EXCEEDS, "退款金额超出可退金额"),
            LedgerError::TradeState => err(codes::TRADE_STATE_ERROR, "原交易未支付成功，不能退款"),
            LedgerError::RefundMismatch => err(
                codes::OUT_TRADE_NO_USED,
                "退款请求号重复（同一out_trade_no的退款参数不一致）",
            ),
            _ => err(codes::ORDER_NOT_EXIST, "原交易不存在"),
        })?;
    let r = if new {
        s.ledger
            .complete_refund(merchant_no, &r.out_refund_no, now)
            .unwrap_or(r)
    } else {
        r
    };
    Ok(refund_json(&r, &order))
}

fn refund_json(r: &Refund, origin: &Order) -> Map<String, Value> {
    let l = lakala_ext(origin);
    let mut m = Map::new();
    m.insert("merchant_no".into(), json!(r.mch_id));
    m.insert("out_trade_no".into(), json!(r.out_refund_no));
    m.insert("trade_no".into(), json!(r.refund_id));
    m.insert(
        "log_no".into(),
        json!(format!(
            "66{}",
            &r.refund_id[r.refund_id.len().saturating_sub(12)..]
        )),
    );
    m.insert("trade_type".into(), json!("REFUND"));
    m.insert("trade_state".into(), json!("SUCCESS"));
    m.insert("trade_state_desc".into(), json!("退款成功"));
    m.insert("total_amount".into(), json!(origin.total.to_string()));
    m.insert("refund_amount".into(), json!(r.amount.to_string()));
    m.insert("payer_amount".into(), json!(r.amount.to_string()));
    m.insert(
        "trade_time".into(),
        json!(cashdesk_core::time::to_compact(
            r.success_at.unwrap_or(r.created_at)
        )),
    );
    m.insert("origin_trade_no".into(), json!(origin.prepay_id));
    m.insert("origin_out_trade_no".into(), json!(origin.out_trade_no));
    if let Some(l) = l {
        m.insert("origin_log_no".into(), json!(l.log_no));
        m.insert("account_type".into(), json!(l.account_type));
        m.insert("acc_trade_no".into(), json!(l.acc_trade_no));
    }
    m
}

fn trade_json(o: &Order, now: DateTime<Utc>) -> Map<String, Value> {
    let state = trade_state(o, now);
    let mut m = Map::new();
    m.insert("merchant_no".into(), json!(o.mch_id));
    m.insert("out_trade_no".into(), json!(o.out_trade_no));
    m.insert("trade_no".into(), json!(o.prepay_id));
    m.insert("trade_state".into(), json!(state));
    m.insert("trade_state_desc".into(), json!(state_desc(state)));
    m.insert("total_amount".into(), json!(o.total.to_string()));
    m.insert("settle_merchant_no".into(), json!(o.mch_id));
    if let Some(l) = lakala_ext(o) {
        m.insert("log_no".into(), json!(l.log_no));
        m.insert("account_type".into(), json!(l.account_type));
        m.insert("trans_type".into(), json!(l.trans_type));
        m.insert("settle_term_no".into(), json!(l.term_no));
        if let Some(r) = &l.remark {
            m.insert("remark".into(), json!(r));
        }
        if o.paid().is_some() {
            m.insert("acc_trade_no".into(), json!(l.acc_trade_no));
        }
    }
    if let Some((_, paid_at, payer)) = o.paid() {
        m.insert("payer_amount".into(), json!(o.total.to_string()));
        m.insert("acc_settle_amount".into(), json!(o.total.to_string()));
        m.insert("acc_mdiscount_amount".into(), json!("0"));
        m.insert("acc_discount_amount".into(), json!("0"));
        m.insert(
            "trade_time".into(),
            json!(cashdesk_core::time::to_compact(paid_at)),
        );
        m.insert("user_id2".into(), json!(payer));
        m.insert("bank_type".into(), json!("OTHERS"));
        m.insert("card_type".into(), json!("99"));
        m.insert("refund_amount".into(), json!(o.refunded.to_string()));
    }
    m
}

/// The payment notification body (JSON) for a paid order.
pub(crate) fn notification_body(o: &Order, faults: &NotifyFaults, now: DateTime<Utc>) -> String {
    let mut m = trade_json(o, now);
    let total = o.total + i64::from(faults.tamper_amount);
    m.insert("trade_status".into(), json!("SUCCESS"));
    m.insert("total_amount".into(), json!(total.to_string()));
    m.insert("payer_amount".into(), json!(total.to_string()));
    m.insert("acc_settle_amount".into(), json!(total.to_string()));
    m.insert("notify_url".into(), json!(o.notify_url));
    if let Some(l) = lakala_ext(o) {
        m.insert("term_no".into(), json!(l.term_no));
    }
    m.remove("refund_amount");
    Value::Object(m).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_parsing() {
        let a = parse_authorization(
            "LKLAPI-SHA256withRSA appid=\"OP1\",serial_no=\"ab\",timestamp=\"1\",nonce_str=\"n\",signature=\"s\"",
        )
        .unwrap();
        assert_eq!((a.appid.as_str(), a.serial_no.as_str()), ("OP1", "ab"));
        assert!(parse_authorization("Bearer x").is_err());
        assert!(parse_authorization("LKLAPI-SHA256withRSA appid=OP1").is_err());
        assert!(
            parse_authorization("LKLAPI-SHA256withRSA appid=\"OP1\",serial_no=\"ab\"").is_err()
        );
    }

    #[test]
    fn amounts_are_positive_fen() {
        assert_eq!(fen("a", "101").unwrap(), 101);
        for bad in ["0", "01", "1.00", "-1", "", "1e3"] {
            assert!(fen("a", bad).is_err(), "{bad}");
        }
    }
}
