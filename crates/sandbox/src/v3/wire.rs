//! v3's JSON: reading request bodies and query strings (WeChat's
//! `PARAM_ERROR` messages for missing or mistyped fields) and writing
//! transactions and refunds as the queries answer and the notifications
//! encrypt them.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{V3Error, param};
use crate::ledger::{Order, Refund, RefundStatus};

pub(super) fn query_param(uri: &axum::http::Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub(super) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, V3Error> {
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

pub(super) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
) -> Result<Option<&'a str>, V3Error> {
    match json_at(obj, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(param(format!(
            "输入源“/body/{}”映射到字段“{path}”类型错误，应为字符串",
            path.replace('.', "/")
        ))),
    }
}

pub(super) fn req_str<'a>(obj: &'a Map<String, Value>, path: &str) -> Result<&'a str, V3Error> {
    opt_str(obj, path)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| param(format!("{path}为必填参数")))
}

pub(super) fn req_int(obj: &Map<String, Value>, path: &str) -> Result<i64, V3Error> {
    let v = json_at(obj, path).ok_or_else(|| param(format!("{path}为必填参数")))?;
    let n = v
        .as_i64()
        .ok_or_else(|| param(format!("{path}必须为整数")))?;
    if n <= 0 || n > cashdesk_core::money::MAX_FEN {
        return Err(param(format!("{path}必须为正整数（分）")));
    }
    Ok(n)
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
