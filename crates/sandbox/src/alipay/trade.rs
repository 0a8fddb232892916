//! How an Alipay trade reads: its `trade_status`, amounts in yuan, the
//! buyer (id and masked logon id), the refund number a refund was made
//! with, and the answer of `alipay.trade.query`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::ledger::{AlipayOrder, Order, OrderExt, PayState, Refund};

/// A sandbox buyer's Alipay user id (`2088` + 12 digits).
pub fn new_buyer_id() -> String {
    format!("2088{}", digits(12))
}

pub(super) fn digits(n: usize) -> String {
    cashdesk_crypto::random::bytes(n)
        .into_iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

pub(super) fn yuan(fen: i64) -> String {
    cashdesk_core::Fen::from_stored(fen).to_yuan()
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

pub(super) fn alipay_ext(o: &Order) -> Option<&AlipayOrder> {
    match &o.ext {
        OrderExt::Alipay(a) => Some(a),
        _ => None,
    }
}

pub(super) fn masked_logon_id(buyer_id: &str) -> String {
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

/// The `out_request_no` a refund was made with (its ledger key without
/// the trade, see `flows::refund_key`).
pub(super) fn out_request_no(r: &Refund) -> &str {
    r.out_refund_no
        .split_once('#')
        .map(|(_, no)| no)
        .unwrap_or(&r.out_refund_no)
}

pub(super) fn query_json(o: &Order, now: DateTime<Utc>) -> Map<String, Value> {
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
