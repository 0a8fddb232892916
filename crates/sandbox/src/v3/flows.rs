//! What each v3 call does to the order book: create (direct and partner),
//! query, close, refund, refund query and the platform certificates, with
//! WeChat's checks and error codes; and who may call what (a service
//! provider only the partner endpoints and for its own sub-merchants).

use std::sync::Arc;

use axum::http::StatusCode;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::wire::{
    opt_str, parse_body, query_param, refund_json, req_int, req_str, transaction_json,
};
use super::{Op, Outcome, V3Error, err, param};
use crate::ledger::{
    Api, LedgerError, NewRefund, Order, OrderExt, OrderRef, PartnerOrder, PayState, TradeType,
};
use crate::merchants::{Merchant, SubMerchant};
use crate::{Shared, validate};

fn no_auth(message: &str) -> V3Error {
    err(StatusCode::FORBIDDEN, "NO_AUTH", message)
}

/// The service provider's sub-merchant `sub_mchid` (403 otherwise).
pub(super) fn sub_of(
    s: &Shared,
    m: &Merchant,
    sub_mchid: &str,
) -> Result<Arc<SubMerchant>, V3Error> {
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

pub(super) fn dispatch(
    s: &Shared,
    m: &Arc<Merchant>,
    op: Op,
    uri: &axum::http::Uri,
    body: &[u8],
) -> Outcome {
    let now = s.now();
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
        Op::TradeBill { via_tls } => super::bill::apply(s, m, uri, via_tls, now),
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
