//! What each Alipay method does to the order book: create (every
//! `alipay.trade.*` order method), query, close, refund and refund query,
//! with Alipay's `biz_content` rules and `ACQ.*` codes.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::trade::{digits, masked_logon_id, query_json, yuan};
use super::{AliError, Answer, Request, bad_param, biz, invalid, missing, not_exist};
use crate::Shared;
use crate::ledger::{
    AlipayOrder, Api, LedgerError, NewRefund, Order, OrderExt, OrderRef, PayState, TradeType,
};

/// 28 digits: date, `22001`, 15 random digits (Alipay's trade_no shape).
fn new_trade_no(now: DateTime<Utc>) -> String {
    format!(
        "{}22001{}",
        &cashdesk_core::time::to_compact(now)[..8],
        digits(15)
    )
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

pub(super) fn dispatch(s: &Shared, req: &Request, now: DateTime<Utc>) -> Result<Answer, AliError> {
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
        "alipay.data.dataservice.bill.downloadurl.query" => {
            super::bill::query(s, req, &biz_content(req)?, now)
        }
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

pub(super) fn create(s: &Shared, req: &Request, now: DateTime<Utc>) -> Result<Answer, AliError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(super::super::new_buyer_id().starts_with("2088"));
    }
}
