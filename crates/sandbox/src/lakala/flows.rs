//! What each Lakala call does to the order book: preorder (the scenes of
//! the module comment), trade query (refunds included), close and refund,
//! for the app's own numbers or its stores'.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::wire::{
    alnum, fen, lakala_ext, merchant_term, opt_str, refund_json, req_str, trade_json,
};
use super::{LklError, Op, SUBJECT_MAX_BYTES, codes, err, param};
use crate::Shared;
use crate::ledger::{
    Api, LakalaOrder, LedgerError, NewRefund, Order, OrderExt, OrderRef, PayState, TradeType,
};
use crate::merchants::LakalaMerchant;

fn digits(n: usize) -> String {
    cashdesk_crypto::random::bytes(n)
        .into_iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

pub(super) fn dispatch(
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
