//! What Alipay sends after the fact: the asynchronous notification (form
//! POST, signed over every field but `sign` and `sign_type`) and the signed
//! synchronous return URL the browser lands on after a page or wap payment.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::json;

use super::sign_content;
use super::trade::{alipay_ext, masked_logon_id, out_request_no, trade_status, yuan};
use crate::Shared;
use crate::faults::NotifyFaults;
use crate::ledger::{Order, Refund};

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
