//! Lakala wire types: the credential shape of a `lakala` channel config and
//! the v3 JSON bodies (`{req_time, version, req_data}` out,
//! `{code, msg, resp_data}` back). Unknown fields are ignored: Lakala adds
//! fields without notice, and the signature covers the raw body anyway.

use cashdesk_crypto::Secret;
use cashdesk_crypto::cert::Certificate;
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

use crate::support::{check_ca_pem, parse_private_key, required, secret};

/// `{appId, serialNo, privateKeyPem, lklCertPem, lklNotifyCertPem,
/// merchantNo, termNo}`, plus optional `subAppId` (the WeChat AppID —
/// mini-program or official account — bound to the merchant, needed for
/// WeChat `mini`/`jsapi` payments) and `caCertPem` (an extra trusted root
/// for HTTPS, e.g. a sandbox).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LakalaCredentials {
    pub app_id: String,
    /// The serial of the merchant's API certificate (Lakala's console shows it).
    pub serial_no: String,
    #[serde(deserialize_with = "secret")]
    pub private_key_pem: Secret,
    /// Lakala's platform certificate: verifies API responses.
    pub lkl_cert_pem: String,
    /// Lakala's notification certificate: verifies notifications.
    pub lkl_notify_cert_pem: String,
    pub merchant_no: String,
    pub term_no: String,
    #[serde(default)]
    pub sub_app_id: Option<String>,
    #[serde(default)]
    pub ca_cert_pem: Option<String>,
}

pub(crate) struct CheckedLakala {
    pub private_key: RsaPrivateKey,
    pub lkl_key: RsaPublicKey,
    /// Upper hex serial of `lklCertPem` (what `Lklapi-Serial` must name).
    pub lkl_serial: String,
    pub notify_key: RsaPublicKey,
}

fn cert_key(field: &str, pem: &str) -> Result<(RsaPublicKey, String), String> {
    let cert = Certificate::from_pem(pem)
        .map_err(|e| format!("credentials.{field} is not a certificate: {e}"))?;
    let key = cert
        .rsa_public_key()
        .map_err(|e| format!("credentials.{field} has no RSA public key: {e}"))?;
    Ok((key, cert.serial_hex()))
}

impl LakalaCredentials {
    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        Self::deserialize(v).map_err(|e| format!("credentials for Lakala: {e}"))
    }

    pub(crate) fn check(&self) -> Result<CheckedLakala, String> {
        required("appId", &self.app_id)?;
        required("serialNo", &self.serial_no)?;
        required("merchantNo", &self.merchant_no)?;
        required("termNo", &self.term_no)?;
        let private_key = parse_private_key("privateKeyPem", self.private_key_pem.expose())?;
        let (lkl_key, lkl_serial) = cert_key("lklCertPem", &self.lkl_cert_pem)?;
        let (notify_key, _) = cert_key("lklNotifyCertPem", &self.lkl_notify_cert_pem)?;
        if let Some(ca) = self.ca_cert_pem.as_deref().filter(|s| !s.trim().is_empty()) {
            check_ca_pem(ca)?;
        }
        Ok(CheckedLakala {
            private_key,
            lkl_key,
            lkl_serial,
            notify_key,
        })
    }
}

/// A store's own merchant at a `lakala` config: `{merchantNo, termNo,
/// subAppId?}`. One Lakala app (the config's `appId` and keys) transacts
/// for every store of a chain, each under its own merchant and terminal
/// numbers; `subAppId` replaces the config's for the store's WeChat
/// mini-program. Unknown fields are refused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminalIdentity {
    pub merchant_no: String,
    pub term_no: String,
    #[serde(default)]
    pub sub_app_id: Option<String>,
}

/// Merchant and terminal numbers a request is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Terminal {
    pub merchant_no: String,
    pub term_no: String,
    pub sub_app_id: Option<String>,
}

fn number(field: &str, v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty()
        || v.len() > 32
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "identity.{field} must be letters and digits (at most 32)"
        ));
    }
    Ok(v.to_owned())
}

impl TerminalIdentity {
    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        Self::deserialize(v).map_err(|e| format!("identity for Lakala: {e}"))
    }

    pub(crate) fn check(&self) -> Result<Terminal, String> {
        Ok(Terminal {
            merchant_no: number("merchantNo", &self.merchant_no)?,
            term_no: number("termNo", &self.term_no)?,
            sub_app_id: match self.sub_app_id.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(a) => Some(number("subAppId", a)?),
            },
        })
    }
}

// ---- requests ----

/// Every request body: `{"req_time":"yyyyMMddHHmmss","version":"3.0","req_data":{…}}`.
#[derive(Debug, Serialize)]
pub struct Envelope<T> {
    pub req_time: String,
    pub version: &'static str,
    pub req_data: T,
}

#[derive(Debug, Serialize)]
pub struct LocationInfo {
    pub request_ip: String,
}

/// Wallet-specific fields of a preorder.
#[derive(Debug, Default, Serialize)]
pub struct AccBusiFields {
    /// WeChat: the AppID the openid belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_appid: Option<String>,
    /// WeChat openid or Alipay user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Minutes the preorder stays payable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_express: Option<String>,
}

/// `/api/v3/labs/trans/preorder`.
#[derive(Debug, Serialize)]
pub struct PreorderRequest {
    pub merchant_no: String,
    pub term_no: String,
    pub out_trade_no: String,
    pub account_type: &'static str,
    pub trans_type: &'static str,
    /// Fen, as a string.
    pub total_amount: String,
    pub location_info: LocationInfo,
    pub subject: String,
    pub notify_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_busi_fields: Option<AccBusiFields>,
}

/// `/api/v3/labs/query/tradequery`.
#[derive(Debug, Serialize)]
pub struct TradeQueryRequest {
    pub merchant_no: String,
    pub term_no: String,
    pub out_trade_no: String,
}

/// `/api/v3/labs/relation/close`.
#[derive(Debug, Serialize)]
pub struct CloseRequestBody {
    pub merchant_no: String,
    pub term_no: String,
    pub origin_out_trade_no: String,
    pub location_info: LocationInfo,
}

/// `/api/v3/labs/relation/refund`: `out_trade_no` is the refund's own
/// number, `origin_out_trade_no` the order's.
#[derive(Debug, Serialize)]
pub struct RefundRequestBody {
    pub merchant_no: String,
    pub term_no: String,
    pub out_trade_no: String,
    /// Fen, as a string.
    pub refund_amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
    pub origin_out_trade_no: String,
    pub location_info: LocationInfo,
}

// ---- responses ----

/// Every answer: `{"code":"BBS00000","msg":"…","resp_time":"…","resp_data":{…}}`.
#[derive(Debug, Deserialize)]
pub struct ResponseEnvelope {
    pub code: String,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub resp_data: Option<serde_json::Value>,
}

/// `resp_data` of a preorder.
#[derive(Debug, Default, Deserialize)]
pub struct PreorderResponse {
    #[serde(default)]
    pub merchant_no: Option<String>,
    #[serde(default)]
    pub out_trade_no: Option<String>,
    #[serde(default)]
    pub trade_no: Option<String>,
    #[serde(default)]
    pub acc_resp_fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A trade as tradequery, refund and notifications describe it.
#[derive(Debug, Default, Deserialize)]
pub struct Trade {
    #[serde(default)]
    pub merchant_no: Option<String>,
    #[serde(default)]
    pub out_trade_no: Option<String>,
    #[serde(default)]
    pub trade_no: Option<String>,
    #[serde(default)]
    pub acc_trade_no: Option<String>,
    #[serde(default)]
    pub trade_state: Option<String>,
    #[serde(default)]
    pub trade_status: Option<String>,
    #[serde(default)]
    pub trade_state_desc: Option<String>,
    #[serde(default)]
    pub total_amount: Option<FenText>,
    #[serde(default)]
    pub refund_amount: Option<FenText>,
    /// `yyyyMMddHHmmss`, Asia/Shanghai.
    #[serde(default)]
    pub trade_time: Option<String>,
    /// Notifications name the terminal too.
    #[serde(default)]
    pub term_no: Option<String>,
    /// The preorder's `remark`, echoed.
    #[serde(default)]
    pub remark: Option<String>,
}

/// A fen amount as Lakala writes it: a string of digits (`"100"`), or a
/// JSON integer. Anything else (signs, decimals, blanks) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FenText(pub i64);

impl<'de> Deserialize<'de> for FenText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected an amount in fen, got {other}"
                )));
            }
        };
        if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(format!(
                "`{text}` is not an amount in fen"
            )));
        }
        text.parse()
            .map(FenText)
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not an amount in fen")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fen_text_is_strict() {
        let f = |v: serde_json::Value| serde_json::from_value::<FenText>(v);
        assert_eq!(f(json!("100")).unwrap(), FenText(100));
        assert_eq!(f(json!(100)).unwrap(), FenText(100));
        for bad in [
            json!("1.00"),
            json!("+1"),
            json!(" 1"),
            json!(""),
            json!(-1),
            json!(1.5),
        ] {
            assert!(f(bad.clone()).is_err(), "{bad} accepted");
        }
    }
}
