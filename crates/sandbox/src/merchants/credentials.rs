//! What the test API hands out when it opens a merchant: each channel's
//! config fields in exactly the shape a cashdesk channel config (or store
//! identity) takes, so an operator can paste them; and how they are made
//! from a merchant record and the sandbox's keys.

use serde::{Deserialize, Serialize};

use super::{AlipayMerchant, LakalaMerchant, Merchant, Merchants};
use crate::pki::Pki;

/// What `POST /sandbox/api/merchants {"channelType":"wx-pay","spMchId"}`
/// returns: the sub-merchant and, in `identity`, the store identity a
/// cashdesk store takes at the service provider's `wx-pay` config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubMerchantCredentials {
    pub mch_id: String,
    pub sp_mch_id: String,
    pub sub_app_id: String,
    /// `{subMchId, subAppId}`.
    pub identity: serde_json::Value,
    /// The AppSecret of the mini-program `subAppId`, for its access
    /// tokens (subscribe messages, [`crate::subscribe`]).
    #[serde(default)]
    pub sub_app_secret: String,
}

/// What `POST /sandbox/api/merchants {"channelType":"lakala","appId"}`
/// returns: the store's numbers and, in `identity`, the store identity at
/// that app's `lakala` config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LakalaStoreCredentials {
    pub mch_id: String,
    pub app_id: String,
    pub merchant_no: String,
    pub term_no: String,
    /// `{merchantNo, termNo}`.
    pub identity: serde_json::Value,
}

/// What `POST /sandbox/api/merchants {"channelType":"ali-pay","isvAppId"}`
/// returns: a new merchant that authorized the app `isvAppId`, and in
/// `identity` the store identity at that app's `ali-pay` config.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlipayAuthCredentials {
    /// The authorizing merchant's pid (`seller_id`).
    pub mch_id: String,
    pub isv_app_id: String,
    pub auth_app_id: String,
    pub seller_id: String,
    pub app_auth_token: String,
    /// `{appAuthToken, authAppId, sellerId}`.
    pub identity: serde_json::Value,
}

impl std::fmt::Debug for AlipayAuthCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayAuthCredentials")
            .field("mch_id", &self.mch_id)
            .field("auth_app_id", &self.auth_app_id)
            .finish_non_exhaustive()
    }
}

/// What `POST /sandbox/api/merchants` returns: the `wx-pay` channel config
/// fields (`credentials` for both API versions, `mchId`, `baseUrl`) plus the
/// HTTPS base URL that serves every path, the v2 refund (mutual TLS) included.
///
/// ```json
/// {"mchId": "19…",
///  "credentialsV2": {"appId", "apiKey", "signType", "certPem", "keyPem", "caCertPem", "refundBaseUrl",
///                    "appSecret"},
///  "credentialsV3": {"appId", "serialNo", "privateKeyPem", "apiV3Key", "platformSerial",
///                    "platformPublicKeyPem", "platformCertPem", "appSecret"},
///  "baseUrl": "http://…/sandbox/wechat", "tlsBaseUrl": "https://127.0.0.1:…/sandbox/wechat"}
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantCredentials {
    pub mch_id: String,
    pub credentials_v2: CredentialsV2,
    pub credentials_v3: CredentialsV3,
    /// Plain-HTTP base (`<public_url>/sandbox/wechat`): every path but the v2 refund.
    pub base_url: String,
    /// HTTPS base of the mTLS listener: every v2 and v3 path, including
    /// `secapi/pay/refund`. Trust `credentialsV2.caCertPem` to reach it.
    pub tls_base_url: String,
    /// A service provider: open sub-merchants under `mchId`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub service_provider: bool,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsV2 {
    pub app_id: String,
    pub api_key: String,
    pub sign_type: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_cert_pem: String,
    /// Where `secapi/pay/refund` goes: the HTTPS listener (same as
    /// `tlsBaseUrl`). The cashdesk `wx-pay` adapter reads this optional
    /// field; with it, `baseUrl` can stay the plain-HTTP base.
    pub refund_base_url: String,
    /// The official account's AppSecret: the cashier page's WeChat OAuth
    /// (code → openid) for JSAPI payments. Not used by Pay itself.
    pub app_secret: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsV3 {
    pub app_id: String,
    pub serial_no: String,
    pub private_key_pem: String,
    pub api_v3_key: String,
    pub platform_serial: String,
    pub platform_public_key_pem: String,
    pub platform_cert_pem: String,
    /// The official account's AppSecret (see [`CredentialsV2::app_secret`]).
    pub app_secret: String,
}

impl std::fmt::Debug for CredentialsV2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsV2")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CredentialsV3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsV3")
            .field("app_id", &self.app_id)
            .field("serial_no", &self.serial_no)
            .finish_non_exhaustive()
    }
}

/// What `POST /sandbox/api/merchants {"channelType":"ali-pay"}` returns: the
/// `ali-pay` config in both credential shapes.
///
/// ```json
/// {"mchId": "2088…",
///  "credentials": {"appId", "privateKeyPem", "alipayPublicKeyPem", "sellerId"},
///  "credentialsCert": {"appId", "privateKeyPem", "appCertPem", "alipayCertPem",
///                      "alipayRootCertPem", "sellerId"},
///  "baseUrl": "http://…/sandbox/alipay/gateway.do"}
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlipayMerchantCredentials {
    pub mch_id: String,
    pub credentials: AlipayCredentials,
    pub credentials_cert: AlipayCertCredentials,
    /// Replaces `https://openapi.alipay.com/gateway.do`.
    pub base_url: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlipayCredentials {
    pub app_id: String,
    pub private_key_pem: String,
    pub alipay_public_key_pem: String,
    pub seller_id: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlipayCertCredentials {
    pub app_id: String,
    pub private_key_pem: String,
    pub app_cert_pem: String,
    pub alipay_cert_pem: String,
    pub alipay_root_cert_pem: String,
    pub seller_id: String,
}

impl std::fmt::Debug for AlipayCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayCredentials")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AlipayCertCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayCertCredentials")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// What `POST /sandbox/api/merchants {"channelType":"lakala"}` returns.
///
/// ```json
/// {"mchId": "822…",
///  "credentials": {"appId", "serialNo", "privateKeyPem", "lklCertPem",
///                  "lklNotifyCertPem", "merchantNo", "termNo", "subAppId"},
///  "baseUrl": "http://…/sandbox/lakala"}
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LakalaMerchantCredentials {
    pub mch_id: String,
    pub credentials: LakalaCredentials,
    /// Replaces the Lakala host (`https://s2.lakala.com`); paths follow it
    /// (`<baseUrl>/api/v3/labs/trans/preorder`).
    pub base_url: String,
    /// The AppSecret of the mini-program `credentials.subAppId`, for its
    /// access tokens (subscribe messages, [`crate::subscribe`]).
    #[serde(default)]
    pub sub_app_secret: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LakalaCredentials {
    pub app_id: String,
    pub serial_no: String,
    pub private_key_pem: String,
    pub lkl_cert_pem: String,
    pub lkl_notify_cert_pem: String,
    pub merchant_no: String,
    pub term_no: String,
    /// The WeChat AppID for `mini`/`jsapi` (the adapter's `subAppId`).
    pub sub_app_id: String,
}

impl std::fmt::Debug for LakalaCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakalaCredentials")
            .field("app_id", &self.app_id)
            .field("merchant_no", &self.merchant_no)
            .finish_non_exhaustive()
    }
}

impl Merchants {
    pub fn alipay_credentials(
        &self,
        m: &AlipayMerchant,
        pki: &Pki,
        base_url: &str,
    ) -> AlipayMerchantCredentials {
        AlipayMerchantCredentials {
            mch_id: m.pid.clone(),
            credentials: AlipayCredentials {
                app_id: m.app_id.clone(),
                private_key_pem: m.private_key_pem.clone(),
                alipay_public_key_pem: pki.alipay.public_key_pem.clone(),
                seller_id: m.pid.clone(),
            },
            credentials_cert: AlipayCertCredentials {
                app_id: m.app_id.clone(),
                private_key_pem: m.private_key_pem.clone(),
                app_cert_pem: m.app_cert_pem.clone(),
                alipay_cert_pem: pki.alipay.cert_pem.clone(),
                alipay_root_cert_pem: pki.alipay.root_cert_pem.clone(),
                seller_id: m.pid.clone(),
            },
            base_url: base_url.to_owned(),
        }
    }

    pub fn lakala_credentials(
        &self,
        m: &LakalaMerchant,
        pki: &Pki,
        base_url: &str,
    ) -> LakalaMerchantCredentials {
        LakalaMerchantCredentials {
            mch_id: m.merchant_no.clone(),
            credentials: LakalaCredentials {
                app_id: m.app_id.clone(),
                serial_no: m.serial_no.clone(),
                private_key_pem: m.private_key_pem.clone(),
                lkl_cert_pem: pki.lakala.cert_pem.clone(),
                lkl_notify_cert_pem: pki.lakala.notify_cert_pem.clone(),
                merchant_no: m.merchant_no.clone(),
                term_no: m.term_no.clone(),
                sub_app_id: m.sub_app_id.clone(),
            },
            base_url: base_url.to_owned(),
            sub_app_secret: m.mini_program_secret(),
        }
    }

    pub fn credentials(
        &self,
        m: &Merchant,
        pki: &Pki,
        base_url: &str,
        tls_base_url: &str,
    ) -> MerchantCredentials {
        MerchantCredentials {
            mch_id: m.mch_id.clone(),
            credentials_v2: CredentialsV2 {
                app_id: m.app_id.clone(),
                api_key: m.api_key.clone(),
                sign_type: m.sign_type.clone(),
                cert_pem: m.cert_pem.clone(),
                key_pem: m.key_pem.clone(),
                ca_cert_pem: pki.ca_cert_pem().to_owned(),
                refund_base_url: tls_base_url.to_owned(),
                app_secret: m.app_secret(),
            },
            credentials_v3: CredentialsV3 {
                app_id: m.app_id.clone(),
                serial_no: m.serial_no.clone(),
                private_key_pem: m.key_pem.clone(),
                api_v3_key: m.api_v3_key.clone(),
                platform_serial: pki.platform_serial.clone(),
                platform_public_key_pem: pki.platform_public_key_pem.clone(),
                platform_cert_pem: pki.platform_cert_pem.clone(),
                app_secret: m.app_secret(),
            },
            base_url: base_url.to_owned(),
            tls_base_url: tls_base_url.to_owned(),
            service_provider: m.service_provider,
        }
    }
}
