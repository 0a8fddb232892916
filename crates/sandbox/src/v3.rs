//! WeChat Pay API v3 (JSON) front end: `/sandbox/wechat/v3/...`.
//!
//! Every request must carry `Authorization: WECHATPAY2-SHA256-RSA2048
//! mchid=…,nonce_str=…,timestamp=…,serial_no=…,signature=…` over
//! `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n` — the path exactly as
//! received, so a merchant signs what it sends, or the same path without
//! the sandbox's mount prefix `/sandbox/wechat` ([`MOUNT_PREFIX`]): SDKs
//! differ when their base URL has a path — wechatpay-java and -go sign the
//! full path they send, wechatpayv3 (Python) signs the canonical `/v3/...`
//! path as at `api.mch.weixin.qq.com` — and both must work — verified with the public key
//! of the merchant certificate whose serial is `serial_no`, timestamp within
//! 300 s. Errors are `{code, message}` with WeChat's HTTP statuses. Every
//! response, errors and 204s included, is signed with the platform key over
//! `TIMESTAMP\nNONCE\nBODY\n` (Wechatpay-Timestamp/Nonce/Signature/Serial).
//!
//! Service providers (服务商) use the partner endpoints
//! (`/v3/pay/partner/transactions/{jsapi|native|h5|app}` with `sp_appid`,
//! `sp_mchid`, `sub_appid`, `sub_mchid`, `payer.sp_openid|sub_openid`;
//! query `?sp_mchid=&sub_mchid=`; close `{sp_mchid, sub_mchid}`) and name
//! `sub_mchid` in refunds (`?sub_mchid=` on the refund query); the
//! sub-merchant must be one of theirs and `sub_appid` its AppID. A service
//! provider cannot use the direct-merchant endpoints, nor a direct
//! merchant the partner ones (403 `NO_AUTH`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::faults::{CallFault, FaultKind};
use crate::ledger::{
    Api, LedgerError, NewRefund, Order, OrderExt, OrderRef, PartnerOrder, PayState, Refund,
    RefundStatus, TradeType,
};
use crate::merchants::{Merchant, SubMerchant};
use crate::pki::Pki;
use crate::reqlog::NewEntry;
use crate::{Shared, validate};

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/sandbox/wechat/v3/pay/transactions/jsapi",
            post(create_jsapi),
        )
        .route(
            "/sandbox/wechat/v3/pay/transactions/native",
            post(create_native),
        )
        .route("/sandbox/wechat/v3/pay/transactions/h5", post(create_h5))
        .route("/sandbox/wechat/v3/pay/transactions/app", post(create_app))
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/jsapi",
            post(partner_jsapi),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/native",
            post(partner_native),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/h5",
            post(partner_h5),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/app",
            post(partner_app),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/out-trade-no/{no}",
            get(partner_query_by_out_trade_no),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/id/{id}",
            get(partner_query_by_id),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/out-trade-no/{no}/close",
            post(partner_close),
        )
        .route(
            "/sandbox/wechat/v3/pay/transactions/out-trade-no/{no}",
            get(query_by_out_trade_no),
        )
        .route(
            "/sandbox/wechat/v3/pay/transactions/out-trade-no/{no}/close",
            post(close),
        )
        .route(
            "/sandbox/wechat/v3/pay/transactions/id/{id}",
            get(query_by_id),
        )
        .route("/sandbox/wechat/v3/refund/domestic/refunds", post(refund))
        .route(
            "/sandbox/wechat/v3/refund/domestic/refunds/{no}",
            get(refund_query),
        )
        .route("/sandbox/wechat/v3/certificates", get(certificates))
}

#[derive(Debug)]
pub struct V3Error {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> V3Error {
    V3Error {
        status,
        code,
        message: message.into(),
    }
}

fn param(message: impl Into<String>) -> V3Error {
    err(StatusCode::BAD_REQUEST, "PARAM_ERROR", message)
}

fn sign_error(message: impl Into<String>) -> V3Error {
    err(StatusCode::UNAUTHORIZED, "SIGN_ERROR", message)
}

enum Op {
    Create(TradeType, &'static str),
    Query(OrderRef),
    Close(String),
    PartnerCreate(TradeType, &'static str),
    PartnerQuery(OrderRef),
    PartnerClose(String),
    Refund,
    RefundQuery(String),
    Certificates,
}

type Outcome = Result<(StatusCode, Option<Value>), V3Error>;

macro_rules! create_handler {
    ($name:ident, $tt:expr, $kind:literal) => {
        async fn $name(
            State(s): State<Arc<Shared>>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            entry(s, Op::Create($tt, $kind), Method::POST, uri, headers, body).await
        }
    };
}
create_handler!(create_jsapi, TradeType::Jsapi, "jsapi");
create_handler!(create_native, TradeType::Native, "native");
create_handler!(create_h5, TradeType::Mweb, "h5");
create_handler!(create_app, TradeType::App, "app");

macro_rules! partner_create_handler {
    ($name:ident, $tt:expr, $kind:literal) => {
        async fn $name(
            State(s): State<Arc<Shared>>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            entry(
                s,
                Op::PartnerCreate($tt, $kind),
                Method::POST,
                uri,
                headers,
                body,
            )
            .await
        }
    };
}
partner_create_handler!(partner_jsapi, TradeType::Jsapi, "jsapi");
partner_create_handler!(partner_native, TradeType::Native, "native");
partner_create_handler!(partner_h5, TradeType::Mweb, "h5");
partner_create_handler!(partner_app, TradeType::App, "app");

async fn partner_query_by_out_trade_no(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(no): Path<String>,
    headers: HeaderMap,
) -> Response {
    let op = Op::PartnerQuery(OrderRef::OutTradeNo(no));
    entry(s, op, Method::GET, uri, headers, Bytes::new()).await
}

async fn partner_query_by_id(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let op = Op::PartnerQuery(OrderRef::TransactionId(id));
    entry(s, op, Method::GET, uri, headers, Bytes::new()).await
}

async fn partner_close(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(no): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(s, Op::PartnerClose(no), Method::POST, uri, headers, body).await
}

async fn query_by_out_trade_no(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(no): Path<String>,
    headers: HeaderMap,
) -> Response {
    entry(
        s,
        Op::Query(OrderRef::OutTradeNo(no)),
        Method::GET,
        uri,
        headers,
        Bytes::new(),
    )
    .await
}

async fn query_by_id(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    entry(
        s,
        Op::Query(OrderRef::TransactionId(id)),
        Method::GET,
        uri,
        headers,
        Bytes::new(),
    )
    .await
}

async fn close(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(no): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(s, Op::Close(no), Method::POST, uri, headers, body).await
}

async fn refund(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(s, Op::Refund, Method::POST, uri, headers, body).await
}

async fn refund_query(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(no): Path<String>,
    headers: HeaderMap,
) -> Response {
    entry(
        s,
        Op::RefundQuery(no),
        Method::GET,
        uri,
        headers,
        Bytes::new(),
    )
    .await
}

async fn certificates(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    entry(s, Op::Certificates, Method::GET, uri, headers, Bytes::new()).await
}

async fn entry(
    s: Arc<Shared>,
    op: Op,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path())
        .to_owned();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(parse_authorization);
    // A partner call is logged (and matched by faults) under the
    // sub-merchant whose order it is.
    let sub_hint = query_param(&uri, "sub_mchid").or_else(|| {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["sub_mchid"].as_str().map(str::to_owned))
    });
    let mch_hint = match &auth {
        Some(Ok(a)) => sub_hint.or_else(|| Some(a.mchid.clone())),
        _ => None,
    };
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let log = |status: StatusCode, result: &str, detail: Option<String>| {
        s.log.push(NewEntry {
            kind: "api",
            method: method.as_str(),
            target: &path_and_query,
            mch_id: mch_hint.as_deref(),
            status: status.as_u16(),
            result,
            detail,
            request_body: Some(&body_text),
        })
    };

    if let Some(fault) = s.faults.take_call(mch_hint.as_deref(), uri.path()) {
        let resp = fault_response(&s.pki, fault).await;
        log(resp.status(), "FAULT", Some(format!("{:?}", fault.kind)));
        return resp;
    }

    let outcome = match auth {
        None => Err(sign_error("缺少Authorization请求头")),
        Some(Err(e)) => Err(e),
        Some(Ok(a)) => match verify(&s, &a, method.as_str(), &path_and_query, &body) {
            Ok(m) => dispatch(&s, &m, op, &uri, &body),
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok((status, value)) => {
            log(status, "SUCCESS", None);
            signed(&s.pki, status, value)
        }
        Err(e) => {
            log(e.status, e.code, Some(e.message.clone()));
            signed(
                &s.pki,
                e.status,
                Some(json!({"code": e.code, "message": e.message})),
            )
        }
    }
}

pub(crate) async fn fault_response(pki: &Pki, fault: CallFault) -> Response {
    match fault.kind {
        FaultKind::SystemError => signed(
            pki,
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(json!({"code": "SYSTEM_ERROR", "message": "系统错误（沙箱故障注入）"})),
        ),
        FaultKind::Timeout => {
            tokio::time::sleep(fault.delay).await;
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
    }
}

/// The platform's signature headers over `body`.
pub(crate) fn signature_headers(
    pki: &Pki,
    body: &[u8],
    tamper: bool,
) -> Vec<(&'static str, String)> {
    let ts = Utc::now().timestamp().to_string();
    let nonce = cashdesk_crypto::random::nonce_str(32);
    let mut msg = Vec::with_capacity(body.len() + 64);
    msg.extend_from_slice(ts.as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(nonce.as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(body);
    msg.push(b'\n');
    if tamper {
        msg.extend_from_slice(b"tampered");
    }
    let signature = pki
        .platform_key
        .sign_sha256_base64(&msg)
        .unwrap_or_default();
    vec![
        ("Wechatpay-Timestamp", ts),
        ("Wechatpay-Nonce", nonce),
        ("Wechatpay-Signature", signature),
        ("Wechatpay-Serial", pki.platform_serial.clone()),
        (
            "Wechatpay-Signature-Type",
            "WECHATPAY2-SHA256-RSA2048".to_owned(),
        ),
    ]
}

fn signed(pki: &Pki, status: StatusCode, value: Option<Value>) -> Response {
    let body = value
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_default();
    let mut resp = (status, body.clone()).into_response();
    let h = resp.headers_mut();
    for (name, value) in signature_headers(pki, &body, false) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&format!("08{}", cashdesk_crypto::random::nonce_str(30))) {
        h.insert("Request-ID", v);
    }
    if !body.is_empty() {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    resp
}

#[derive(Debug)]
pub struct Authorization {
    pub mchid: String,
    nonce_str: String,
    timestamp: String,
    serial_no: String,
    signature: String,
}

/// `WECHATPAY2-SHA256-RSA2048 k="v",k="v",…` (order free, quotes required).
pub fn parse_authorization(value: &str) -> Result<Authorization, V3Error> {
    let rest = value
        .strip_prefix("WECHATPAY2-SHA256-RSA2048 ")
        .ok_or_else(|| sign_error("Authorization认证类型必须为WECHATPAY2-SHA256-RSA2048"))?;
    let mut fields = std::collections::HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| sign_error("Authorization格式错误"))?;
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| sign_error(format!("Authorization中{k}的值必须带双引号")))?;
        fields.insert(k.trim().to_owned(), v.to_owned());
    }
    let mut take = |k: &str| {
        fields
            .remove(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| sign_error(format!("Authorization缺少{k}")))
    };
    Ok(Authorization {
        mchid: take("mchid")?,
        nonce_str: take("nonce_str")?,
        timestamp: take("timestamp")?,
        serial_no: take("serial_no")?,
        signature: take("signature")?,
    })
}

/// The path prefix the sandbox's WeChat routes live under.
pub const MOUNT_PREFIX: &str = "/sandbox/wechat";

/// The paths a v3 signature may cover: as received, and (for SDKs that
/// sign WeChat's canonical path whatever their base URL) without
/// [`MOUNT_PREFIX`].
fn signed_paths(path: &str) -> impl Iterator<Item = &str> {
    let canonical = path
        .strip_prefix(MOUNT_PREFIX)
        .filter(|rest| rest.starts_with("/v3/"));
    std::iter::once(path).chain(canonical)
}

fn verify(
    s: &Shared,
    a: &Authorization,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Arc<Merchant>, V3Error> {
    let m = s
        .merchants
        .get(&a.mchid)
        .ok_or_else(|| err(StatusCode::BAD_REQUEST, "MCH_NOT_EXISTS", "商户号不存在"))?;
    if a.serial_no != m.serial_no {
        return Err(sign_error(
            "商户证书序列号有误（serial_no与商户API证书不符）",
        ));
    }
    let ts: i64 = a
        .timestamp
        .parse()
        .map_err(|_| sign_error("timestamp格式错误"))?;
    if (Utc::now().timestamp() - ts).abs() > 300 {
        return Err(sign_error("请求时间戳与当前时间相差超过5分钟"));
    }
    let key = m.v3_public_key().map_err(|_| {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SYSTEM_ERROR",
            "商户证书不可用",
        )
    })?;
    let verified = signed_paths(path).any(|signed| {
        let mut msg =
            format!("{method}\n{signed}\n{}\n{}\n", a.timestamp, a.nonce_str).into_bytes();
        msg.extend_from_slice(body);
        msg.push(b'\n');
        key.verify_sha256_base64(&msg, &a.signature).is_ok()
    });
    if !verified {
        return Err(sign_error("错误的签名，验签失败"));
    }
    Ok(m)
}

fn query_param(uri: &axum::http::Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, V3Error> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(param("请求体必须是JSON对象")),
        Err(e) => Err(param(format!("请求体不是合法的JSON: {e}"))),
    }
}

fn json_at<'a>(obj: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = obj.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn opt_str<'a>(obj: &'a Map<String, Value>, path: &str) -> Result<Option<&'a str>, V3Error> {
    match json_at(obj, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(param(format!(
            "输入源“/body/{}”映射到字段“{path}”类型错误，应为字符串",
            path.replace('.', "/")
        ))),
    }
}

fn req_str<'a>(obj: &'a Map<String, Value>, path: &str) -> Result<&'a str, V3Error> {
    opt_str(obj, path)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| param(format!("{path}为必填参数")))
}

fn req_int(obj: &Map<String, Value>, path: &str) -> Result<i64, V3Error> {
    let v = json_at(obj, path).ok_or_else(|| param(format!("{path}为必填参数")))?;
    let n = v
        .as_i64()
        .ok_or_else(|| param(format!("{path}必须为整数")))?;
    if n <= 0 || n > cashdesk_core::money::MAX_FEN {
        return Err(param(format!("{path}必须为正整数（分）")));
    }
    Ok(n)
}

fn no_auth(message: &str) -> V3Error {
    err(StatusCode::FORBIDDEN, "NO_AUTH", message)
}

/// The service provider's sub-merchant `sub_mchid` (403 otherwise).
fn sub_of(s: &Shared, m: &Merchant, sub_mchid: &str) -> Result<Arc<SubMerchant>, V3Error> {
    s.merchants
        .sub_of(&m.mch_id, sub_mchid)
        .ok_or_else(|| no_auth("特约商户sub_mchid不存在或未与服务商建立受理关系"))
}

/// Whose book a refund call works on: a service provider names its
/// sub-merchant (`sub_mchid`), a direct merchant may not.
fn refund_book(s: &Shared, m: &Merchant, sub_mchid: Option<&str>) -> Result<String, V3Error> {
    match (m.service_provider, sub_mchid.filter(|v| !v.is_empty())) {
        (true, Some(sub)) => Ok(sub_of(s, m, sub)?.mch_id.clone()),
        (true, None) => Err(param("服务商退款sub_mchid为必填参数")),
        (false, Some(_)) => Err(no_auth("非服务商商户号不能传sub_mchid")),
        (false, None) => Ok(m.mch_id.clone()),
    }
}

fn dispatch(s: &Shared, m: &Arc<Merchant>, op: Op, uri: &axum::http::Uri, body: &[u8]) -> Outcome {
    let now = Utc::now();
    let direct_only = || {
        if m.service_provider {
            Err(no_auth(
                "服务商商户号不能调用直连商户接口，请使用服务商（partner）接口",
            ))
        } else {
            Ok(())
        }
    };
    let partner_only = || {
        if m.service_provider {
            Ok(())
        } else {
            Err(no_auth("非服务商商户号不能调用服务商（partner）接口"))
        }
    };
    match op {
        Op::Create(tt, kind) => {
            direct_only()?;
            create(s, m, tt, kind, body, now, false)
        }
        Op::PartnerCreate(tt, kind) => {
            partner_only()?;
            create(s, m, tt, kind, body, now, true)
        }
        Op::PartnerQuery(r) => {
            partner_only()?;
            let sp = query_param(uri, "sp_mchid").ok_or_else(|| param("sp_mchid为必填参数"))?;
            if sp != m.mch_id {
                return Err(param("sp_mchid与Authorization中的商户号不一致"));
            }
            let sub_mchid =
                query_param(uri, "sub_mchid").ok_or_else(|| param("sub_mchid为必填参数"))?;
            let sub = sub_of(s, m, &sub_mchid)?;
            let order = s
                .ledger
                .find(&sub.mch_id, &r)
                .ok_or_else(|| err(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"))?;
            Ok((StatusCode::OK, Some(transaction_json(&order, now))))
        }
        Op::PartnerClose(no) => {
            partner_only()?;
            let obj = parse_body(body)?;
            if req_str(&obj, "sp_mchid")? != m.mch_id {
                return Err(param("sp_mchid与Authorization中的商户号不一致"));
            }
            let sub = sub_of(s, m, req_str(&obj, "sub_mchid")?)?;
            match s.ledger.close(&sub.mch_id, &no, now) {
                Ok(_) | Err(LedgerError::OrderClosed) => Ok((StatusCode::NO_CONTENT, None)),
                Err(LedgerError::OrderPaid) => {
                    Err(err(StatusCode::BAD_REQUEST, "ORDERPAID", "订单已支付"))
                }
                Err(_) => Err(err(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在")),
            }
        }
        Op::Query(r) => {
            direct_only()?;
            let mchid = query_param(uri, "mchid").ok_or_else(|| param("mchid为必填参数"))?;
            if mchid != m.mch_id {
                return Err(param("mchid与Authorization中的商户号不一致"));
            }
            let order = s
                .ledger
                .find(&m.mch_id, &r)
                .ok_or_else(|| err(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"))?;
            Ok((StatusCode::OK, Some(transaction_json(&order, now))))
        }
        Op::Close(no) => {
            direct_only()?;
            let obj = parse_body(body)?;
            if req_str(&obj, "mchid")? != m.mch_id {
                return Err(param("mchid与Authorization中的商户号不一致"));
            }
            match s.ledger.close(&m.mch_id, &no, now) {
                Ok(_) | Err(LedgerError::OrderClosed) => Ok((StatusCode::NO_CONTENT, None)),
                Err(LedgerError::OrderPaid) => {
                    Err(err(StatusCode::BAD_REQUEST, "ORDERPAID", "订单已支付"))
                }
                Err(_) => Err(err(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在")),
            }
        }
        Op::Refund => create_refund(s, m, body, now),
        Op::RefundQuery(no) => {
            let book = refund_book(s, m, query_param(uri, "sub_mchid").as_deref())?;
            let r = s
                .ledger
                .find_refund(&book, &no)
                .ok_or_else(|| err(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "退款单不存在"))?;
            Ok((StatusCode::OK, Some(refund_json(&r))))
        }
        Op::Certificates => {
            let nonce = cashdesk_crypto::random::nonce_str(12);
            let ciphertext = cashdesk_crypto::aead::aes_gcm_encrypt(
                m.api_v3_key.as_bytes(),
                nonce.as_bytes(),
                b"certificate",
                s.pki.platform_cert_pem.as_bytes(),
            )
            .map_err(|_| {
                err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "SYSTEM_ERROR",
                    "系统错误",
                )
            })?;
            Ok((
                StatusCode::OK,
                Some(json!({"data": [{
                    "serial_no": s.pki.platform_serial,
                    "effective_time": "1975-01-01T08:00:00+08:00",
                    "expire_time": "4096-01-01T08:00:00+08:00",
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": base64::engine::general_purpose::STANDARD.encode(ciphertext),
                    }
                }]})),
            ))
        }
    }
}

fn create(
    s: &Shared,
    m: &Merchant,
    tt: TradeType,
    kind: &str,
    body: &[u8],
    now: DateTime<Utc>,
    partner: bool,
) -> Outcome {
    let obj = parse_body(body)?;
    let (appid_field, mchid_field) = if partner {
        ("sp_appid", "sp_mchid")
    } else {
        ("appid", "mchid")
    };
    let appid = req_str(&obj, appid_field)?;
    let mchid = req_str(&obj, mchid_field)?;
    if mchid != m.mch_id {
        return Err(param(format!(
            "{mchid_field}与Authorization中的商户号不一致"
        )));
    }
    if appid != m.app_id {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "APPID_MCHID_NOT_MATCH",
            format!("{appid_field}和{mchid_field}不匹配"),
        ));
    }
    // A partner order: the sub-merchant's book, its AppID when named.
    let (book, sub_appid) = if partner {
        let sub = sub_of(s, m, req_str(&obj, "sub_mchid")?)?;
        let sub_appid = opt_str(&obj, "sub_appid")?.filter(|a| !a.is_empty());
        if sub_appid.is_some_and(|a| a != sub.app_id) {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "APPID_MCHID_NOT_MATCH",
                "sub_appid和sub_mchid不匹配",
            ));
        }
        (sub.mch_id.clone(), sub_appid)
    } else {
        (m.mch_id.clone(), None)
    };
    let description = req_str(&obj, "description")?;
    if description.len() > 127 {
        return Err(param("description长度不能超过127字节"));
    }
    let out_trade_no = req_str(&obj, "out_trade_no")?;
    validate::out_trade_no(out_trade_no, 6).map_err(param)?;
    let notify_url = req_str(&obj, "notify_url")?;
    s.check_notify_url(notify_url).map_err(param)?;
    let total = req_int(&obj, "amount.total")?;
    if opt_str(&obj, "amount.currency")?.is_some_and(|c| c != "CNY") {
        return Err(param("amount.currency只支持CNY"));
    }
    let attach = opt_str(&obj, "attach")?.filter(|a| !a.is_empty());
    if attach.is_some_and(|a| a.len() > 128) {
        return Err(param("attach长度不能超过128字节"));
    }
    let expire_at = match opt_str(&obj, "time_expire")? {
        None => None,
        Some(t) => {
            let t = DateTime::parse_from_rfc3339(t)
                .map_err(|_| param("time_expire必须为rfc3339格式（如2018-06-08T10:34:56+08:00）"))?
                .with_timezone(&Utc);
            if t <= now {
                return Err(param("time_expire时间过短"));
            }
            Some(t)
        }
    };
    let (openid, sub_openid) = if partner {
        let sub_openid = opt_str(&obj, "payer.sub_openid")?.filter(|o| !o.is_empty());
        if sub_openid.is_some() && sub_appid.is_none() {
            return Err(param("传了payer.sub_openid时，sub_appid为必填参数"));
        }
        (
            opt_str(&obj, "payer.sp_openid")?.filter(|o| !o.is_empty()),
            sub_openid,
        )
    } else {
        (
            opt_str(&obj, "payer.openid")?.filter(|o| !o.is_empty()),
            None,
        )
    };
    if openid.is_some_and(|o| !crate::oauth::openid_matches(o, appid)) {
        return Err(param(if partner {
            "payer.sp_openid和sp_appid不匹配"
        } else {
            "payer.openid和appid不匹配"
        }));
    }
    if let (Some(o), Some(a)) = (sub_openid, sub_appid)
        && !crate::oauth::openid_matches(o, a)
    {
        return Err(param("payer.sub_openid和sub_appid不匹配"));
    }
    match tt {
        TradeType::Jsapi if openid.is_none() && sub_openid.is_none() => {
            return Err(param(if partner {
                "payer.sp_openid和payer.sub_openid必须二选一"
            } else {
                "payer.openid为必填参数"
            }));
        }
        TradeType::Mweb => {
            req_str(&obj, "scene_info.payer_client_ip")?;
            req_str(&obj, "scene_info.h5_info.type")?;
        }
        _ => {}
    }
    let openid = if tt == TradeType::Jsapi { openid } else { None };
    let sub_openid = if tt == TradeType::Jsapi {
        sub_openid
    } else {
        None
    };
    let fingerprint = [
        "v3",
        appid,
        kind,
        description,
        &total.to_string(),
        openid.unwrap_or(""),
        attach.unwrap_or(""),
        notify_url,
        sub_appid.unwrap_or(""),
        sub_openid.unwrap_or(""),
    ]
    .join("\u{1f}");
    let ext = if partner {
        OrderExt::WechatPartner(PartnerOrder {
            sp_mch_id: m.mch_id.clone(),
            sub_app_id: sub_appid.map(str::to_owned),
            sub_openid: sub_openid.map(str::to_owned),
        })
    } else {
        OrderExt::None
    };
    let order = Order {
        mch_id: book,
        appid: appid.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        api: Api::V3,
        trade_type: tt,
        description: description.to_owned(),
        total,
        openid: openid.map(str::to_owned),
        attach: attach.map(str::to_owned),
        notify_url: notify_url.to_owned(),
        prepay_id: crate::ledger::new_prepay_id(now),
        created_at: now,
        expire_at,
        state: PayState::NotPay,
        refunded: 0,
        fingerprint,
        ext,
    };
    let order = s.ledger.create_order(order, now).map_err(|e| match e {
        LedgerError::OrderPaid => err(StatusCode::BAD_REQUEST, "ORDERPAID", "该订单已支付"),
        LedgerError::OrderClosed => err(StatusCode::BAD_REQUEST, "ORDER_CLOSED", "订单已关闭"),
        _ => err(
            StatusCode::FORBIDDEN,
            "OUT_TRADE_NO_USED",
            "商户订单号重复（同一订单号的请求参数与原请求不一致）",
        ),
    })?;
    let value = match tt {
        TradeType::Jsapi | TradeType::App => json!({"prepay_id": order.prepay_id}),
        TradeType::Native => json!({"code_url": s.payer_url(&order.prepay_id)}),
        TradeType::Mweb => json!({"h5_url": s.mweb_url(&order.prepay_id)}),
    };
    Ok((StatusCode::OK, Some(value)))
}

fn create_refund(s: &Shared, m: &Merchant, body: &[u8], now: DateTime<Utc>) -> Outcome {
    let obj = parse_body(body)?;
    let book = refund_book(s, m, opt_str(&obj, "sub_mchid")?)?;
    let order = match (
        opt_str(&obj, "transaction_id")?,
        opt_str(&obj, "out_trade_no")?,
    ) {
        (Some(id), _) if !id.is_empty() => OrderRef::TransactionId(id.to_owned()),
        (_, Some(no)) if !no.is_empty() => OrderRef::OutTradeNo(no.to_owned()),
        _ => return Err(param("transaction_id和out_trade_no必须二选一")),
    };
    let out_refund_no = req_str(&obj, "out_refund_no")?;
    validate::out_refund_no(out_refund_no).map_err(param)?;
    let amount = req_int(&obj, "amount.refund")?;
    let total = req_int(&obj, "amount.total")?;
    if req_str(&obj, "amount.currency")? != "CNY" {
        return Err(param("amount.currency只支持CNY"));
    }
    let reason = opt_str(&obj, "reason")?.filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > 80) {
        return Err(param("reason长度不能超过80个字符"));
    }
    let notify_url = opt_str(&obj, "notify_url")?.filter(|u| !u.is_empty());
    if let Some(u) = notify_url {
        s.check_notify_url(u).map_err(param)?;
    }
    let (refund, _, new) = s
        .ledger
        .refund(
            NewRefund {
                mch_id: book,
                order,
                out_refund_no: out_refund_no.to_owned(),
                amount,
                total,
                reason: reason.map(str::to_owned),
                notify_url: notify_url.map(str::to_owned),
                api: Api::V3,
            },
            now,
        )
        .map_err(|e| match e {
            LedgerError::OrderNotExist => {
                err(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "订单不存在")
            }
            LedgerError::NotEnough => err(StatusCode::FORBIDDEN, "NOT_ENOUGH", "订单可退金额不足"),
            LedgerError::TradeState => err(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "订单未支付，不能退款",
            ),
            LedgerError::TotalMismatch => err(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "订单金额与实际支付金额不一致",
            ),
            _ => err(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "退款单号重复，且订单金额或退款金额与之前请求不一致",
            ),
        })?;
    if new {
        s.schedule_refund_completion(&refund);
    }
    Ok((StatusCode::OK, Some(refund_json(&refund))))
}

/// A transaction as the v3 query returns it and the notification encrypts
/// it; a partner order names the service provider and the sub-merchant.
pub fn transaction_json(o: &Order, now: DateTime<Utc>) -> Value {
    if let Some(p) = o.partner() {
        let mut v = direct_transaction_json(o, now);
        if let Some(obj) = v.as_object_mut() {
            obj.remove("appid");
            obj.remove("mchid");
            obj.insert("sp_appid".into(), json!(o.appid));
            obj.insert("sp_mchid".into(), json!(p.sp_mch_id));
            obj.insert("sub_mchid".into(), json!(o.mch_id));
            if let Some(a) = &p.sub_app_id {
                obj.insert("sub_appid".into(), json!(a));
            }
            if let Some(payer) = obj.get_mut("payer").and_then(Value::as_object_mut) {
                let sp_openid = payer.remove("openid");
                if p.sub_openid.is_none()
                    && let Some(sp) = sp_openid
                {
                    payer.insert("sp_openid".into(), sp);
                }
                if let Some(sub) = &p.sub_openid {
                    payer.insert("sub_openid".into(), json!(sub));
                }
            }
        }
        return v;
    }
    direct_transaction_json(o, now)
}

fn direct_transaction_json(o: &Order, now: DateTime<Utc>) -> Value {
    let mut v = json!({
        "appid": o.appid,
        "mchid": o.mch_id,
        "out_trade_no": o.out_trade_no,
        "trade_state": o.trade_state(now),
        "trade_state_desc": o.trade_state_desc(now),
        "attach": o.attach.clone().unwrap_or_default(),
        "amount": {"total": o.total, "currency": "CNY", "payer_currency": "CNY"},
    });
    if let Some((transaction_id, paid_at, openid)) = o.paid() {
        v["transaction_id"] = json!(transaction_id);
        v["trade_type"] = json!(o.trade_type.as_str());
        v["bank_type"] = json!("OTHERS");
        v["success_time"] = json!(cashdesk_core::time::to_rfc3339_cn(paid_at));
        v["payer"] = json!({"openid": openid});
        v["amount"]["payer_total"] = json!(o.total);
        v["promotion_detail"] = json!([]);
    }
    v
}

pub fn refund_json(r: &Refund) -> Value {
    let mut v = json!({
        "refund_id": r.refund_id,
        "out_refund_no": r.out_refund_no,
        "transaction_id": r.transaction_id,
        "out_trade_no": r.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": cashdesk_core::time::to_rfc3339_cn(r.created_at),
        "status": match r.status { RefundStatus::Processing => "PROCESSING", RefundStatus::Success => "SUCCESS" },
        "funds_account": "AVAILABLE",
        "amount": {
            "total": r.total,
            "refund": r.amount,
            "payer_total": r.total,
            "payer_refund": r.amount,
            "settlement_total": r.total,
            "settlement_refund": r.amount,
            "discount_refund": 0,
            "currency": "CNY",
        },
        "promotion_detail": [],
    });
    if let Some(t) = r.success_at {
        v["success_time"] = json!(cashdesk_core::time::to_rfc3339_cn(t));
    }
    v
}

/// Used by the API module to answer a JSON error in the v3 style (unsigned:
/// the sandbox's own test API is not part of the WeChat protocol).
pub fn plain_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"code": code, "message": message.into()})),
    )
        .into_response()
}
