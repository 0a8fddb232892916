//! Alipay wire types: the credential shapes of an `ali-pay` channel config,
//! the `biz_content` bodies cashdesk sends, and the `…_response` payloads it
//! reads.
//!
//! Responses are decoded from the exact text the signature was verified over
//! (see [`super::AliPay`]); unknown fields are ignored, as Alipay adds fields
//! without notice. Amounts stay yuan strings here and become [`cashdesk_core::Fen`]
//! in the adapter, exactly (never through floats).

use cashdesk_crypto::Secret;
use cashdesk_crypto::cert::{Certificate, alipay_root_cert_sn};
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

use crate::support::{
    check_ca_pem, parse_base_url, parse_private_key, parse_public_key, required, secret,
};

/// Public-key mode: `{appId, privateKeyPem, alipayPublicKeyPem}`.
/// Certificate mode: `{appId, privateKeyPem, appCertPem, alipayCertPem,
/// alipayRootCertPem}`. Both: optional `sellerId` (the merchant's PID,
/// `2088…`, checked in notifications when set), `returnUrl` (where Alipay
/// sends the buyer after a wap/page payment when the order names no
/// [`crate::PayRequest::return_url`]; cashdesk's addition) and `caCertPem`
/// (an extra trusted root for HTTPS, e.g. a sandbox).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlipayCredentials {
    pub app_id: String,
    #[serde(deserialize_with = "secret")]
    pub private_key_pem: Secret,
    #[serde(default)]
    pub alipay_public_key_pem: Option<String>,
    #[serde(default)]
    pub app_cert_pem: Option<String>,
    #[serde(default)]
    pub alipay_cert_pem: Option<String>,
    #[serde(default)]
    pub alipay_root_cert_pem: Option<String>,
    #[serde(default)]
    pub seller_id: Option<String>,
    #[serde(default)]
    pub return_url: Option<String>,
    #[serde(default)]
    pub ca_cert_pem: Option<String>,
}

/// The certificate-mode facts every request and response needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertMode {
    /// `app_cert_sn`, sent with every request.
    pub app_cert_sn: String,
    /// `alipay_root_cert_sn`, sent with every request.
    pub alipay_root_cert_sn: String,
    /// The SN of the configured Alipay public certificate; a response naming
    /// another `alipay_cert_sn` was signed under a key we do not have.
    pub alipay_cert_sn: String,
}

pub(crate) struct CheckedAlipay {
    pub private_key: RsaPrivateKey,
    /// Verifies responses and notifications.
    pub alipay_key: RsaPublicKey,
    pub cert: Option<CertMode>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl AlipayCredentials {
    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        Self::deserialize(v).map_err(|e| format!("credentials for Alipay: {e}"))
    }

    pub(crate) fn check(&self) -> Result<CheckedAlipay, String> {
        required("appId", &self.app_id)?;
        let private_key = parse_private_key("privateKeyPem", self.private_key_pem.expose())?;
        let app_cert = present(&self.app_cert_pem);
        let alipay_cert = present(&self.alipay_cert_pem);
        let root_cert = present(&self.alipay_root_cert_pem);
        let public_key = match present(&self.alipay_public_key_pem) {
            Some(pem) => Some(parse_public_key("alipayPublicKeyPem", pem)?),
            None => None,
        };
        let (alipay_key, cert) = match (app_cert, alipay_cert, root_cert) {
            (None, None, None) => {
                let key = public_key.ok_or_else(|| {
                    "credentials.alipayPublicKeyPem is required (or, in certificate mode, \
                     credentials.appCertPem, credentials.alipayCertPem and \
                     credentials.alipayRootCertPem)"
                        .to_owned()
                })?;
                (key, None)
            }
            (Some(app), Some(alipay), Some(root)) => {
                let app = Certificate::from_pem(app)
                    .map_err(|e| format!("credentials.appCertPem is not a certificate: {e}"))?;
                let app_key = app
                    .rsa_public_key()
                    .map_err(|e| format!("credentials.appCertPem has no RSA public key: {e}"))?;
                if app_key != private_key.public_key() {
                    return Err(
                        "credentials.privateKeyPem is not the private key of credentials.appCertPem"
                            .into(),
                    );
                }
                let alipay = Certificate::from_pem(alipay)
                    .map_err(|e| format!("credentials.alipayCertPem is not a certificate: {e}"))?;
                let key = alipay
                    .rsa_public_key()
                    .map_err(|e| format!("credentials.alipayCertPem has no RSA public key: {e}"))?;
                if public_key.as_ref().is_some_and(|k| *k != key) {
                    return Err(
                        "credentials.alipayPublicKeyPem and credentials.alipayCertPem disagree"
                            .into(),
                    );
                }
                let root_sn = alipay_root_cert_sn(root)
                    .map_err(|e| format!("credentials.alipayRootCertPem: {e}"))?;
                (
                    key,
                    Some(CertMode {
                        app_cert_sn: app.alipay_sn(),
                        alipay_root_cert_sn: root_sn,
                        alipay_cert_sn: alipay.alipay_sn(),
                    }),
                )
            }
            _ => {
                return Err("certificate mode needs all of credentials.appCertPem, \
                     credentials.alipayCertPem and credentials.alipayRootCertPem"
                    .into());
            }
        };
        if let Some(url) = present(&self.return_url) {
            parse_base_url(url).map_err(|e| format!("credentials.returnUrl: {e}"))?;
        }
        if let Some(ca) = present(&self.ca_cert_pem) {
            check_ca_pem(ca)?;
        }
        Ok(CheckedAlipay {
            private_key,
            alipay_key,
            cert,
        })
    }

    pub(crate) fn seller_id(&self) -> Option<String> {
        present(&self.seller_id).map(str::to_owned)
    }

    pub(crate) fn return_url(&self) -> Option<String> {
        present(&self.return_url).map(str::to_owned)
    }

    pub(crate) fn ca_cert_pem(&self) -> Option<&str> {
        present(&self.ca_cert_pem)
    }
}

/// A store's identity at an `ali-pay` config used as a third-party
/// (ISV) app: `{appAuthToken, authAppId, sellerId?}`. The store's own
/// Alipay merchant authorized the config's app (应用授权); `appAuthToken`
/// (a secret) goes with every call made for its orders, `authAppId` is the
/// authorizing merchant's app (`auth_app_id` in notifications) and
/// `sellerId` its pid (`seller_id`), both checked in notifications.
/// Unknown fields are refused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppAuthIdentity {
    #[serde(deserialize_with = "secret")]
    pub app_auth_token: Secret,
    pub auth_app_id: String,
    #[serde(default)]
    pub seller_id: Option<String>,
}

/// A checked [`AppAuthIdentity`].
#[derive(Debug, Clone)]
pub(crate) struct AppAuth {
    pub token: Secret,
    pub auth_app_id: String,
    pub seller_id: Option<String>,
}

impl AppAuthIdentity {
    /// The fields whose values are secrets.
    pub const SECRET_FIELDS: &'static [&'static str] = &["appAuthToken"];

    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        Self::deserialize(v).map_err(|e| format!("identity for Alipay: {e}"))
    }

    pub(crate) fn check(&self) -> Result<AppAuth, String> {
        let token = self.app_auth_token.expose().trim();
        if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "identity.appAuthToken must be the app auth token (printable, at most 128)".into(),
            );
        }
        let auth_app_id = required("authAppId", &self.auth_app_id)
            .map_err(|e| e.replace("credentials.", "identity."))?;
        if !auth_app_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err("identity.authAppId must be an Alipay app id (digits)".into());
        }
        let seller_id = match self.seller_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) if s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit()) => Some(s.to_owned()),
            Some(_) => return Err("identity.sellerId must be a pid (2088 + 12 digits)".into()),
        };
        Ok(AppAuth {
            token: Secret::new(token),
            auth_app_id: auth_app_id.to_owned(),
            seller_id,
        })
    }
}

// ---- biz_content ----

/// The `biz_content` of `alipay.trade.create`, `.precreate`, `.wap.pay`,
/// `.page.pay` and `.app.pay`.
#[derive(Debug, Serialize)]
pub struct TradeBiz {
    pub out_trade_no: String,
    /// Yuan, two decimals.
    pub total_amount: String,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer_open_id: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, Asia/Shanghai.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    /// wap: where the buyer goes when leaving the cashier (required there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quit_url: Option<String>,
    /// URL-encoded, echoed in the notification (wap/page/app only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passback_params: Option<String>,
}

/// `alipay.trade.query` and `alipay.trade.close`.
#[derive(Debug, Serialize)]
pub struct TradeRef {
    pub out_trade_no: String,
}

/// `alipay.trade.refund`.
#[derive(Debug, Serialize)]
pub struct RefundBiz {
    pub out_trade_no: String,
    /// Yuan, two decimals.
    pub refund_amount: String,
    /// The refund's id: makes partial refunds distinct and retries idempotent.
    pub out_request_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
}

/// `alipay.trade.fastpay.refund.query`.
#[derive(Debug, Serialize)]
pub struct RefundQueryBiz {
    pub out_trade_no: String,
    pub out_request_no: String,
    pub query_options: Vec<&'static str>,
}

/// `alipay.data.dataservice.bill.downloadurl.query`.
#[derive(Debug, Serialize)]
pub struct BillUrlBiz {
    /// `trade`: the acquiring trades made through the trade APIs.
    pub bill_type: &'static str,
    /// `yyyy-MM-dd`.
    pub bill_date: String,
    /// `"true"`: the download link is https (else Alipay answers http).
    pub secure: &'static str,
}

// ---- responses ----

/// What every `…_response` (and `error_response`) carries.
#[derive(Debug, Deserialize)]
pub struct Common {
    pub code: String,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub sub_code: Option<String>,
    #[serde(default)]
    pub sub_msg: Option<String>,
}

/// `alipay.trade.create` / `alipay.trade.precreate`.
#[derive(Debug, Deserialize)]
pub struct CreateResponse {
    #[serde(default)]
    pub out_trade_no: Option<String>,
    #[serde(default)]
    pub trade_no: Option<String>,
    #[serde(default)]
    pub qr_code: Option<String>,
}

/// `alipay.trade.query`.
#[derive(Debug, Deserialize)]
pub struct QueryResponse {
    #[serde(default)]
    pub out_trade_no: Option<String>,
    #[serde(default)]
    pub trade_no: Option<String>,
    #[serde(default)]
    pub trade_status: Option<String>,
    #[serde(default)]
    pub total_amount: Option<Yuan>,
    /// `yyyy-MM-dd HH:mm:ss`: when the buyer paid.
    #[serde(default)]
    pub send_pay_date: Option<String>,
}

/// `alipay.trade.refund`.
#[derive(Debug, Deserialize)]
pub struct RefundResponse {
    #[serde(default)]
    pub out_trade_no: Option<String>,
    #[serde(default)]
    pub trade_no: Option<String>,
    /// `Y` when this call moved money; `N` on a repeated call.
    #[serde(default)]
    pub fund_change: Option<String>,
    #[serde(default)]
    pub gmt_refund_pay: Option<String>,
}

/// `alipay.trade.fastpay.refund.query`.
#[derive(Debug, Deserialize)]
pub struct RefundQueryResponse {
    #[serde(default)]
    pub out_trade_no: Option<String>,
    #[serde(default)]
    pub trade_no: Option<String>,
    #[serde(default)]
    pub out_request_no: Option<String>,
    #[serde(default)]
    pub refund_amount: Option<Yuan>,
    #[serde(default)]
    pub refund_status: Option<String>,
    #[serde(default)]
    pub gmt_refund_pay: Option<String>,
}

/// `alipay.data.dataservice.bill.downloadurl.query`.
#[derive(Debug, Deserialize)]
pub struct BillUrlResponse {
    /// Valid for 30 s.
    #[serde(default)]
    pub bill_download_url: Option<String>,
    /// `EMPTY_DATA_WITH_BILL_FILE`: nothing happened that day (an empty
    /// file exists).
    #[serde(default)]
    pub bill_file_code: Option<String>,
}

/// A yuan amount as Alipay writes it: a string (`"0.10"`), occasionally a
/// JSON number. Kept as text; [`cashdesk_core::Fen::from_yuan`] converts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yuan(pub String);

impl<'de> Deserialize<'de> for Yuan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Yuan(s)),
            // serde_json prints a number as it was written when it fits
            // (`0.1` stays `0.1`), and from_yuan refuses anything else.
            serde_json::Value::Number(n) => Ok(Yuan(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a yuan amount, got {other}"
            ))),
        }
    }
}
