//! Lakala's JSON: reading the request envelope and `req_data` fields
//! (Lakala's `BBS10002` messages), and writing trades and refunds as
//! tradequery answers and the payment notification carries them.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{LklError, codes, param};
use crate::faults::NotifyFaults;
use crate::ledger::{LakalaOrder, Order, OrderExt, PayState, Refund};

pub(super) fn req_data(v: Option<&Value>) -> Result<&Map<String, Value>, LklError> {
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

pub(super) fn opt_str<'a>(
    d: &'a Map<String, Value>,
    path: &str,
) -> Result<Option<&'a str>, LklError> {
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

pub(super) fn req_str<'a>(d: &'a Map<String, Value>, path: &str) -> Result<&'a str, LklError> {
    opt_str(d, path)?.ok_or_else(|| param(format!("{path}不能为空")))
}

pub(super) fn alnum(field: &str, v: &str, max: usize, extra: &[u8]) -> Result<(), LklError> {
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
pub(super) fn fen(field: &str, v: &str) -> Result<i64, LklError> {
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
pub(super) fn merchant_term(d: &Map<String, Value>) -> Result<(&str, &str), LklError> {
    let merchant_no = req_str(d, "merchant_no")?;
    alnum("merchant_no", merchant_no, 32, &[])?;
    let term_no = req_str(d, "term_no")?;
    alnum("term_no", term_no, 32, &[])?;
    Ok((merchant_no, term_no))
}

pub(super) fn lakala_ext(o: &Order) -> Option<&LakalaOrder> {
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

pub(super) fn refund_json(r: &Refund, origin: &Order) -> Map<String, Value> {
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

pub(super) fn trade_json(o: &Order, now: DateTime<Utc>) -> Map<String, Value> {
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
    fn amounts_are_positive_fen() {
        assert_eq!(fen("a", "101").unwrap(), 101);
        for bad in ["0", "01", "1.00", "-1", "", "1e3"] {
            assert!(fen("a", bad).is_err(), "{bad}");
        }
    }
}
