//! WeChat Pay v3 signatures, both ways: the merchant's `Authorization`
//! header parsed and verified (on the path as received or without the
//! mount prefix), and the platform's `Wechatpay-*` headers on every answer
//! and notification.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;

use super::{V3Error, err, sign_error};
use crate::Shared;
use crate::merchants::Merchant;
use crate::pki::Pki;

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

pub(super) fn signed(pki: &Pki, status: StatusCode, value: Option<Value>) -> Response {
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

pub(super) fn verify(
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
