//! Lakala's signatures: the request `Authorization`
//! (`LKLAPI-SHA256withRSA`) parsed and verified with the app's
//! certificate; answers signed with the platform key (`Lklapi-*` headers);
//! notifications signed with the separate notify key.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;

use super::{LklError, auth};
use crate::Shared;
use crate::merchants::LakalaMerchant;
use crate::pki::Pki;

pub(super) struct Authorization {
    pub(super) appid: String,
    serial_no: String,
    timestamp: String,
    nonce_str: String,
    signature: String,
}

/// `LKLAPI-SHA256withRSA k="v",…` (order free, quotes required).
pub(super) fn parse_authorization(value: &str) -> Result<Authorization, LklError> {
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

pub(super) fn verify(
    s: &Shared,
    a: &Authorization,
    body: &[u8],
) -> Result<Arc<LakalaMerchant>, LklError> {
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

pub(super) fn signed(pki: &Pki, appid: &str, status: StatusCode, value: &Value) -> Response {
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
}
