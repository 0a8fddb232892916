//! WeChat Pay API v2 (XML) front end: `/sandbox/wechat/pay/*` and the
//! mutual-TLS `/sandbox/wechat/secapi/pay/refund`.
//!
//! Order of checks, as WeChat does it: the body must be XML (no DOCTYPE);
//! `mch_id` must name a sandbox merchant; the refund must come over mutual
//! TLS with that merchant's certificate; `sign_type` must be MD5 or
//! HMAC-SHA256 (absent = MD5); the signature must verify; `appid` must be
//! the merchant's; then the endpoint's own fields. Failures before the
//! signature is known good are `return_code=FAIL` answers without a
//! signature (a bad signature also carries `err_code=SIGNERROR`; a
//! `notify_url` the sandbox may not notify, [`crate::targets`], is
//! `return_msg=invalid notify_url: …`, as WeChat words it); business
//! failures are `return_code=SUCCESS, result_code=FAIL, err_code=…`, signed
//! like successes with the request's sign type.
//!
//! Service providers (服务商): a service provider's every call names a
//! sub-merchant (`sub_mch_id`, which must be one of its own; `sub_appid`,
//! when given, must be that sub-merchant's AppID, and `sub_openid` needs
//! it); the order lives in the sub-merchant's book, the answers name
//! `sub_mch_id` (and `sub_appid`) back. A direct merchant may not name a
//! sub-merchant, and a service provider may not take payments of its own.
//! The request log's `mchId` of a partner call is the sub-merchant.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, OriginalUri, State};
use axum::http::{Extensions, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cashdesk_crypto::wxv2::{self, WxSignType};
use chrono::{DateTime, Utc};

use crate::faults::{CallFault, FaultKind};
use crate::ledger::{
    Api, LedgerError, NewRefund, Order, OrderExt, OrderRef, PartnerOrder, PayState, Refund,
    RefundStatus, TradeType,
};
use crate::merchants::{Merchant, SubMerchant};
use crate::reqlog::NewEntry;
use crate::tls::TlsPeer;
use crate::{Shared, validate, xml};

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/wechat/pay/unifiedorder", post(unifiedorder))
        .route("/sandbox/wechat/pay/orderquery", post(orderquery))
        .route("/sandbox/wechat/pay/closeorder", post(closeorder))
        .route("/sandbox/wechat/pay/refundquery", post(refundquery))
        .route("/sandbox/wechat/secapi/pay/refund", post(refund))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    UnifiedOrder,
    OrderQuery,
    CloseOrder,
    Refund,
    RefundQuery,
}

macro_rules! handler {
    ($name:ident, $ep:expr) => {
        async fn $name(
            State(s): State<Arc<Shared>>,
            OriginalUri(uri): OriginalUri,
            ext: Extensions,
            body: Bytes,
        ) -> Response {
            let peer_cert = ext
                .get::<ConnectInfo<TlsPeer>>()
                .and_then(|c| c.0.client_cert.clone());
            call(
                s,
                $ep,
                uri.path(),
                peer_cert.as_deref().map(Vec::as_slice),
                &body,
            )
            .await
        }
    };
}
handler!(unifiedorder, Endpoint::UnifiedOrder);
handler!(orderquery, Endpoint::OrderQuery);
handler!(closeorder, Endpoint::CloseOrder);
handler!(refundquery, Endpoint::RefundQuery);
handler!(refund, Endpoint::Refund);

/// A business error: `err_code`, `err_code_des`.
type BizError = (&'static str, String);

enum Outcome {
    /// `return_code=FAIL`, unsigned.
    ReturnFail {
        msg: String,
        err_code: Option<&'static str>,
    },
    /// `return_code=SUCCESS`, signed; `Err` gives `result_code=FAIL`.
    Result {
        merchant: Arc<Merchant>,
        sign_type: WxSignType,
        /// A partner call's `sub_mch_id` and `sub_appid`, named back.
        sub: Option<(String, Option<String>)>,
        result: Result<BTreeMap<String, String>, BizError>,
    },
}

/// Whose book a call works on: the merchant's own, or (a service
/// provider's call) the sub-merchant's.
struct Party {
    book: String,
    sub: Option<Arc<SubMerchant>>,
}

fn return_fail(msg: impl Into<String>) -> Outcome {
    Outcome::ReturnFail {
        msg: msg.into(),
        err_code: None,
    }
}

fn param_error(msg: impl Into<String>) -> BizError {
    ("PARAM_ERROR", msg.into())
}

fn xml_response(status: StatusCode, text: String) -> Response {
    let mut resp = (status, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    resp
}

async fn call(
    s: Arc<Shared>,
    ep: Endpoint,
    path: &str,
    peer_cert: Option<&[u8]>,
    body: &[u8],
) -> Response {
    let text = String::from_utf8_lossy(body);
    let parsed = xml::parse(&text);
    // A partner call is logged (and matched by faults) under the
    // sub-merchant whose order it is.
    let mch_hint = parsed
        .as_ref()
        .ok()
        .and_then(|p| p.get("sub_mch_id").or_else(|| p.get("mch_id")))
        .cloned();
    let log = |status: u16, result: &str, detail: Option<String>| {
        s.log.push(NewEntry {
            kind: "api",
            method: "POST",
            target: path,
            mch_id: mch_hint.as_deref(),
            status,
            result,
            detail,
            request_body: Some(&text),
        })
    };

    if let Some(fault) = s.faults.take_call(mch_hint.as_deref(), path) {
        let merchant = mch_hint.as_deref().and_then(|id| s.merchants.get(id));
        let sign_type = parsed
            .as_ref()
            .ok()
            .and_then(|p| p.get("sign_type"))
            .and_then(|t| WxSignType::parse(t))
            .unwrap_or(WxSignType::Md5);
        let resp = fault_response(fault, merchant, sign_type).await;
        log(
            resp.status().as_u16(),
            "FAULT",
            Some(format!("{:?}", fault.kind)),
        );
        return resp;
    }

    let outcome = match parsed {
        Ok(params) => handle(&s, ep, peer_cert, &params),
        Err(e) => Outcome::ReturnFail {
            msg: format!("XML格式错误: {e}"),
            err_code: Some("XML_FORMAT_ERROR"),
        },
    };
    let (text, result, detail) = render(outcome);
    log(200, &result, detail);
    xml_response(StatusCode::OK, text)
}

fn render(outcome: Outcome) -> (String, String, Option<String>) {
    match outcome {
        Outcome::ReturnFail { msg, err_code } => {
            let mut f = BTreeMap::new();
            f.insert("return_code".to_owned(), "FAIL".to_owned());
            f.insert("return_msg".to_owned(), msg.clone());
            if let Some(code) = err_code {
                f.insert("err_code".to_owned(), code.to_owned());
                f.insert("err_code_des".to_owned(), msg.clone());
            }
            (
                xml::render(&f),
                err_code.unwrap_or("FAIL").to_owned(),
                Some(msg),
            )
        }
        Outcome::Result {
            merchant,
            sign_type,
            sub,
            result,
        } => {
            let (mut f, code, detail) = match result {
                Ok(fields) => {
                    let mut f = fields;
                    f.insert("result_code".to_owned(), "SUCCESS".to_owned());
                    (f, "SUCCESS".to_owned(), None)
                }
                Err((code, des)) => {
                    let mut f = BTreeMap::new();
                    f.insert("result_code".to_owned(), "FAIL".to_owned());
                    f.insert("err_code".to_owned(), code.to_owned());
                    f.insert("err_code_des".to_owned(), des.clone());
                    (f, code.to_owned(), Some(des))
                }
            };
            f.insert("return_code".to_owned(), "SUCCESS".to_owned());
            f.insert("return_msg".to_owned(), "OK".to_owned());
            f.insert("appid".to_owned(), merchant.app_id.clone());
            f.insert("mch_id".to_owned(), merchant.mch_id.clone());
            if let Some((sub_mch_id, sub_appid)) = sub {
                f.insert("sub_mch_id".to_owned(), sub_mch_id);
                if let Some(a) = sub_appid {
                    f.insert("sub_appid".to_owned(), a);
                }
            }
            f.insert(
                "nonce_str".to_owned(),
                cashdesk_crypto::random::nonce_str(16),
            );
            let sign = wxv2::sign(&f, &merchant.api_key, sign_type);
            f.insert("sign".to_owned(), sign);
            (xml::render(&f), code, detail)
        }
    }
}

async fn fault_response(
    fault: CallFault,
    merchant: Option<Arc<Merchant>>,
    sign_type: WxSignType,
) -> Response {
    match (fault.kind, merchant) {
        (FaultKind::SystemError, Some(merchant)) => {
            let (text, _, _) = render(Outcome::Result {
                merchant,
                sign_type,
                sub: None,
                result: Err((
                    "SYSTEMERROR",
                    "系统错误（沙箱故障注入），请用相同参数重试".into(),
                )),
            });
            xml_response(StatusCode::OK, text)
        }
        (FaultKind::SystemError, None) => {
            let (text, _, _) = render(return_fail("系统繁忙，请稍后再试（沙箱故障注入）"));
            xml_response(StatusCode::OK, text)
        }
        (_, _) => crate::faults::bare_reply(fault).await,
    }
}

fn handle(
    s: &Shared,
    ep: Endpoint,
    peer_cert: Option<&[u8]>,
    p: &BTreeMap<String, String>,
) -> Outcome {
    let Some(mch_id) = p.get("mch_id").filter(|v| !v.is_empty()) else {
        return return_fail("缺少参数mch_id");
    };
    let Some(merchant) = s.merchants.get(mch_id) else {
        return return_fail("商户号mch_id不存在");
    };
    if ep == Endpoint::Refund {
        match peer_cert {
            None => return return_fail("证书错误：请求未携带商户API证书（secapi接口需要双向TLS）"),
            Some(der) if der != merchant.cert_der.as_slice() => {
                return return_fail("证书错误：客户端证书与商户号不匹配");
            }
            Some(_) => {}
        }
    }
    let sign_type = match p.get("sign_type").map(String::as_str) {
        None | Some("") => WxSignType::Md5,
        Some(t) => match WxSignType::parse(t) {
            Some(t) => t,
            None => return return_fail("sign_type参数错误，只支持MD5和HMAC-SHA256"),
        },
    };
    if !wxv2::verify(p, &merchant.api_key, sign_type) {
        return Outcome::ReturnFail {
            msg: "签名错误".into(),
            err_code: Some("SIGNERROR"),
        };
    }
    // A well-formed notify_url this sandbox may not notify: refused the
    // way WeChat refuses a notify_url it will not call, `return_code=FAIL`
    // (`return_msg` says why). A malformed one is a PARAM_ERROR below.
    if matches!(ep, Endpoint::UnifiedOrder | Endpoint::Refund)
        && let Some(url) = optional(p, "notify_url")
        && validate::notify_url(url).is_ok()
        && let Err(msg) = s.notify_target_allowed(url)
    {
        return return_fail(format!("invalid notify_url: {msg}"));
    }
    let sub = optional(p, "sub_mch_id")
        .map(|id| (id.to_owned(), optional(p, "sub_appid").map(str::to_owned)));
    let result = (|| {
        let appid = required(p, "appid")?;
        if appid != merchant.app_id {
            return Err(("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配".to_owned()));
        }
        let nonce = required(p, "nonce_str")?;
        if nonce.len() > 32 {
            return Err(param_error("nonce_str长度不能超过32个字符"));
        }
        let party = party(s, &merchant, p)?;
        let now = s.now();
        match ep {
            Endpoint::UnifiedOrder => unified_order(s, &merchant, &party, p, sign_type, now),
            Endpoint::OrderQuery => order_query(s, &party, p, now),
            Endpoint::CloseOrder => close_order(s, &party, p, now),
            Endpoint::Refund => create_refund(s, &party, p, sign_type, now),
            Endpoint::RefundQuery => refund_query(s, &party, p),
        }
    })();
    Outcome::Result {
        merchant,
        sign_type,
        sub,
        result,
    }
}

/// The sub-merchant rules (see the module comment).
fn party(s: &Shared, m: &Merchant, p: &BTreeMap<String, String>) -> Result<Party, BizError> {
    let sub_mch_id = optional(p, "sub_mch_id");
    if !m.service_provider {
        if sub_mch_id.is_some() || optional(p, "sub_appid").is_some() {
            return Err((
                "NOAUTH",
                "商户无此接口权限：非服务商商户号不能传sub_mch_id".to_owned(),
            ));
        }
        return Ok(Party {
            book: m.mch_id.clone(),
            sub: None,
        });
    }
    let id = sub_mch_id.ok_or_else(|| param_error("服务商模式下缺少参数sub_mch_id"))?;
    let sub = s.merchants.sub_of(&m.mch_id, id).ok_or_else(|| {
        (
            "NOAUTH",
            "特约商户sub_mch_id不存在或不属于该服务商".to_owned(),
        )
    })?;
    if let Some(a) = optional(p, "sub_appid")
        && a != sub.app_id
    {
        return Err((
            "APPID_MCHID_NOT_MATCH",
            "sub_appid和sub_mch_id不匹配".to_owned(),
        ));
    }
    Ok(Party {
        book: sub.mch_id.clone(),
        sub: Some(sub),
    })
}

fn required<'a>(p: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, BizError> {
    p.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| param_error(format!("缺少参数{name}")))
}

fn optional<'a>(p: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

fn fee(p: &BTreeMap<String, String>, name: &str) -> Result<i64, BizError> {
    let v = required(p, name)?;
    match v.parse::<i64>() {
        Ok(n) if n > 0 && n <= cashdesk_core::money::MAX_FEN && !v.starts_with('+') => Ok(n),
        _ => Err(param_error(format!("{name}必须为正整数（单位：分）"))),
    }
}

fn fields<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

fn unified_order(
    s: &Shared,
    m: &Merchant,
    party: &Party,
    p: &BTreeMap<String, String>,
    sign_type: WxSignType,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, String>, BizError> {
    let body = required(p, "body")?;
    if body.len() > 128 {
        return Err(param_error("body长度不能超过128字节"));
    }
    let out_trade_no = required(p, "out_trade_no")?;
    validate::out_trade_no(out_trade_no, 0).map_err(param_error)?;
    let total = fee(p, "total_fee")?;
    let ip = required(p, "spbill_create_ip")?;
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(param_error("spbill_create_ip必须是合法的IP地址"));
    }
    let notify_url = required(p, "notify_url")?;
    validate::notify_url(notify_url).map_err(param_error)?;
    let tt = TradeType::parse_v2(required(p, "trade_type")?)
        .ok_or_else(|| param_error("trade_type参数错误，只支持JSAPI、NATIVE、APP、MWEB"))?;
    if optional(p, "fee_type").is_some_and(|t| t != "CNY") {
        return Err(param_error("fee_type只支持CNY"));
    }
    let openid = optional(p, "openid");
    let sub_openid = optional(p, "sub_openid");
    if sub_openid.is_some() && optional(p, "sub_appid").is_none() {
        return Err(param_error("传了sub_openid时，sub_appid为必传参数"));
    }
    if sub_openid.is_some() && party.sub.is_none() {
        return Err(param_error("sub_openid仅用于服务商模式"));
    }
    if openid.is_some_and(|o| !crate::oauth::openid_matches(o, &m.app_id)) {
        return Err(param_error("appid和openid不匹配"));
    }
    if let (Some(o), Some(a)) = (sub_openid, optional(p, "sub_appid"))
        && !crate::oauth::openid_matches(o, a)
    {
        return Err(param_error("sub_appid和sub_openid不匹配"));
    }
    match tt {
        TradeType::Jsapi if openid.is_none() && sub_openid.is_none() => {
            return Err(param_error(
                "trade_type=JSAPI时（即JSAPI支付），必须传openid或sub_openid",
            ));
        }
        TradeType::Native if optional(p, "product_id").is_none() => {
            return Err(param_error("trade_type=NATIVE时，product_id为必传参数"));
        }
        TradeType::Mweb => {
            let scene = optional(p, "scene_info")
                .ok_or_else(|| param_error("trade_type=MWEB时，scene_info为必传参数"))?;
            let ok = serde_json::from_str::<serde_json::Value>(scene)
                .ok()
                .is_some_and(|v| v.get("h5_info").is_some_and(|h| h.is_object()));
            if !ok {
                return Err(param_error("scene_info格式错误，应为包含h5_info对象的JSON"));
            }
        }
        _ => {}
    }
    let attach = optional(p, "attach");
    if attach.is_some_and(|a| a.len() > 127) {
        return Err(param_error("attach长度不能超过127字节"));
    }
    let expire_at = match optional(p, "time_expire") {
        None => None,
        Some(t) => {
            let t = cashdesk_core::time::parse_compact(t)
                .ok_or_else(|| param_error("time_expire格式错误，应为yyyyMMddHHmmss"))?;
            if t <= now {
                return Err(param_error("time_expire时间过短"));
            }
            Some(t)
        }
    };
    let appid = required(p, "appid")?;
    let fingerprint = [
        "v2",
        appid,
        sign_type.as_str(),
        body,
        &total.to_string(),
        tt.as_str(),
        openid.unwrap_or(""),
        optional(p, "product_id").unwrap_or(""),
        attach.unwrap_or(""),
        notify_url,
        optional(p, "sub_appid").unwrap_or(""),
        sub_openid.unwrap_or(""),
    ]
    .join("\u{1f}");
    let ext = match &party.sub {
        Some(_) => OrderExt::WechatPartner(PartnerOrder {
            sp_mch_id: m.mch_id.clone(),
            sub_app_id: optional(p, "sub_appid").map(str::to_owned),
            sub_openid: sub_openid
                .filter(|_| tt == TradeType::Jsapi)
                .map(str::to_owned),
        }),
        None => OrderExt::None,
    };
    let order = Order {
        mch_id: party.book.clone(),
        appid: appid.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        api: Api::V2(sign_type),
        trade_type: tt,
        description: body.to_owned(),
        total,
        openid: openid.filter(|_| tt == TradeType::Jsapi).map(str::to_owned),
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
        LedgerError::OrderPaid => ("ORDERPAID", "该订单已支付".to_owned()),
        LedgerError::OrderClosed => ("ORDERCLOSED", "订单已关闭".to_owned()),
        _ => (
            "INVALID_REQUEST",
            "201 商户订单号重复（订单重入时，要求参数值与原请求一致）".to_owned(),
        ),
    })?;
    let code_url = if tt == TradeType::Native {
        s.payer_url(&order.prepay_id)
    } else {
        String::new()
    };
    let mweb_url = if tt == TradeType::Mweb {
        s.mweb_url(&order.prepay_id)
    } else {
        String::new()
    };
    Ok(fields([
        ("trade_type", tt.as_str().to_owned()),
        ("prepay_id", order.prepay_id),
        ("code_url", code_url),
        ("mweb_url", mweb_url),
        (
            "device_info",
            optional(p, "device_info").unwrap_or("").to_owned(),
        ),
    ]))
}

fn find_order(s: &Shared, party: &Party, p: &BTreeMap<String, String>) -> Result<Order, BizError> {
    let r = match (optional(p, "transaction_id"), optional(p, "out_trade_no")) {
        (Some(id), _) => OrderRef::TransactionId(id.to_owned()),
        (None, Some(no)) => OrderRef::OutTradeNo(no.to_owned()),
        (None, None) => return Err(param_error("transaction_id和out_trade_no必须二选一")),
    };
    s.ledger
        .find(&party.book, &r)
        .ok_or_else(|| ("ORDERNOTEXIST", "此交易订单号不存在".to_owned()))
}

fn order_query(
    s: &Shared,
    party: &Party,
    p: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, String>, BizError> {
    let o = find_order(s, party, p)?;
    let mut f = fields([
        ("out_trade_no", o.out_trade_no.clone()),
        ("trade_state", o.trade_state(now).to_owned()),
        ("trade_state_desc", o.trade_state_desc(now).to_owned()),
        ("total_fee", o.total.to_string()),
        ("fee_type", "CNY".to_owned()),
        ("attach", o.attach.clone().unwrap_or_default()),
        ("trade_type", o.trade_type.as_str().to_owned()),
    ]);
    if let Some((transaction_id, paid_at, openid)) = o.paid() {
        f.extend(fields([
            ("transaction_id", transaction_id.to_owned()),
            ("openid", openid.to_owned()),
            ("is_subscribe", "N".to_owned()),
            ("bank_type", "OTHERS".to_owned()),
            ("cash_fee", o.total.to_string()),
            ("cash_fee_type", "CNY".to_owned()),
            ("time_end", cashdesk_core::time::to_compact(paid_at)),
        ]));
        if let Some(sub_openid) = o.partner().and_then(|p| p.sub_openid.clone()) {
            f.insert("sub_openid".into(), sub_openid);
        }
    }
    Ok(f)
}

fn close_order(
    s: &Shared,
    party: &Party,
    p: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, String>, BizError> {
    let no = required(p, "out_trade_no")?;
    match s.ledger.close(&party.book, no, now) {
        Ok(_) => Ok(BTreeMap::new()),
        Err(LedgerError::OrderPaid) => Err(("ORDERPAID", "订单已支付，不能发起关单".into())),
        Err(LedgerError::OrderClosed) => Err(("ORDERCLOSED", "订单已关闭，无法重复关闭".into())),
        Err(_) => Err(("ORDERNOTEXIST", "订单不存在".into())),
    }
}

fn create_refund(
    s: &Shared,
    party: &Party,
    p: &BTreeMap<String, String>,
    sign_type: WxSignType,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, String>, BizError> {
    let order = match (optional(p, "transaction_id"), optional(p, "out_trade_no")) {
        (Some(id), _) => OrderRef::TransactionId(id.to_owned()),
        (None, Some(no)) => OrderRef::OutTradeNo(no.to_owned()),
        (None, None) => return Err(param_error("transaction_id和out_trade_no必须二选一")),
    };
    let out_refund_no = required(p, "out_refund_no")?;
    validate::out_refund_no(out_refund_no).map_err(param_error)?;
    let total = fee(p, "total_fee")?;
    let amount = fee(p, "refund_fee")?;
    if optional(p, "refund_fee_type").is_some_and(|t| t != "CNY") {
        return Err(param_error("refund_fee_type只支持CNY"));
    }
    let notify_url = optional(p, "notify_url");
    if let Some(u) = notify_url {
        validate::notify_url(u).map_err(param_error)?;
    }
    let reason = optional(p, "refund_desc");
    let (refund, _, new) = s
        .ledger
        .refund(
            NewRefund {
                mch_id: party.book.clone(),
                order,
                out_refund_no: out_refund_no.to_owned(),
                amount,
                total,
                reason: reason.map(str::to_owned),
                notify_url: notify_url.map(str::to_owned),
                api: Api::V2(sign_type),
            },
            now,
        )
        .map_err(|e| match e {
            LedgerError::OrderNotExist => ("ORDERNOTEXIST", "订单号不存在".to_owned()),
            LedgerError::TradeState => (
                "TRADE_STATE_ERROR",
                "订单状态错误：订单未支付，不能退款".to_owned(),
            ),
            LedgerError::NotEnough => (
                "NOTENOUGH",
                "可退金额不足：退款总金额不能超过订单金额".to_owned(),
            ),
            LedgerError::TotalMismatch => (
                "INVALID_REQUEST",
                "订单金额total_fee与实际支付金额不一致".to_owned(),
            ),
            _ => (
                "INVALID_REQUEST",
                "订单金额或退款金额与之前请求不一致，请核实后再试".to_owned(),
            ),
        })?;
    if new {
        s.schedule_refund_completion(&refund);
    }
    Ok(fields([
        ("transaction_id", refund.transaction_id.clone()),
        ("out_trade_no", refund.out_trade_no.clone()),
        ("out_refund_no", refund.out_refund_no.clone()),
        ("refund_id", refund.refund_id.clone()),
        ("refund_fee", refund.amount.to_string()),
        ("settlement_refund_fee", refund.amount.to_string()),
        ("total_fee", refund.total.to_string()),
        ("settlement_total_fee", refund.total.to_string()),
        ("cash_fee", refund.total.to_string()),
        ("cash_refund_fee", refund.amount.to_string()),
        ("refund_channel", String::new()),
    ]))
}

fn refund_query(
    s: &Shared,
    party: &Party,
    p: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, BizError> {
    let not_found = || {
        (
            "REFUNDNOTEXIST",
            "退款订单查询失败：订单号错误或订单状态不正确".to_owned(),
        )
    };
    // WeChat's precedence: refund_id > out_refund_no > transaction_id > out_trade_no.
    let (out_trade_no, refunds): (String, Vec<Refund>) = if let Some(id) = optional(p, "refund_id")
    {
        let r = s
            .ledger
            .find_refund_by_id(&party.book, id)
            .ok_or_else(not_found)?;
        (r.out_trade_no.clone(), vec![r])
    } else if let Some(no) = optional(p, "out_refund_no") {
        let r = s
            .ledger
            .find_refund(&party.book, no)
            .ok_or_else(not_found)?;
        (r.out_trade_no.clone(), vec![r])
    } else if optional(p, "transaction_id").is_some() || optional(p, "out_trade_no").is_some() {
        let o = find_order(s, party, p).map_err(|_| not_found())?;
        let refunds = s.ledger.refunds_of(&party.book, &o.out_trade_no);
        (o.out_trade_no, refunds)
    } else {
        return Err(param_error(
            "refund_id、out_refund_no、transaction_id、out_trade_no必须四选一",
        ));
    };
    if refunds.is_empty() {
        return Err(not_found());
    }
    let order = s
        .ledger
        .find(&party.book, &OrderRef::OutTradeNo(out_trade_no))
        .ok_or_else(not_found)?;
    let mut f = fields([
        ("out_trade_no", order.out_trade_no.clone()),
        (
            "transaction_id",
            order.paid().map(|p| p.0.to_owned()).unwrap_or_default(),
        ),
        ("total_fee", order.total.to_string()),
        ("cash_fee", order.total.to_string()),
        ("refund_count", refunds.len().to_string()),
        (
            "refund_fee",
            refunds.iter().map(|r| r.amount).sum::<i64>().to_string(),
        ),
    ]);
    for (n, r) in refunds.iter().enumerate() {
        let status = match r.status {
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Success => "SUCCESS",
        };
        f.extend(fields([
            (&format!("out_refund_no_{n}"), r.out_refund_no.clone()),
            (&format!("refund_id_{n}"), r.refund_id.clone()),
            (&format!("refund_channel_{n}"), "ORIGINAL".to_owned()),
            (&format!("refund_fee_{n}"), r.amount.to_string()),
            (&format!("settlement_refund_fee_{n}"), r.amount.to_string()),
            (&format!("refund_status_{n}"), status.to_owned()),
            (
                &format!("refund_account_{n}"),
                "REFUND_SOURCE_UNSETTLED_FUNDS".to_owned(),
            ),
            (
                &format!("refund_recv_accout_{n}"),
                "支付用户的零钱".to_owned(),
            ),
            (
                &format!("refund_success_time_{n}"),
                r.success_at
                    .map(cashdesk_core::time::to_cn_datetime)
                    .unwrap_or_default(),
            ),
        ]));
    }
    Ok(f)
}
