//! WeChat Pay wire types both versions share: the credential shapes of a
//! `wx-pay` channel config and a store's sub-merchant identity. (The v3
//! JSON bodies are in [`super::v3::wire`]; v2 speaks flat XML, read as
//! string maps in `v2::wire`, because its signature covers every field.)
//!
//! Credential parsing ignores unknown fields on purpose: the sandbox hands
//! out one object with v2 and v3 credentials together, and an operator may
//! paste it into either kind of config.

use cashdesk_crypto::Secret;
use cashdesk_crypto::cert::Certificate;
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use cashdesk_crypto::wxv2::WxSignType;
use serde::Deserialize;

use crate::support::{
    check_ca_pem, opt_secret, parse_base_url, parse_private_key, parse_public_key, required, secret,
};

/// v2: `{appId, apiKey, signType: MD5|HMAC-SHA256, certPem?, keyPem?,
/// caCertPem?, refundBaseUrl?, appSecret?}`. `certPem` + `keyPem` (the merchant's
/// `apiclient_cert.pem` / `apiclient_key.pem`) are needed for refunds.
/// `refundBaseUrl` (optional, cashdesk's addition) sends
/// `secapi/pay/refund` to another base URL — the sandbox serves it on its
/// own HTTPS listener; `caCertPem` is an extra trusted root for it.
/// `appSecret` (optional) is the official account's AppSecret, for the web
/// OAuth that gets a JSAPI payer's openid on the cashier page.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V2Credentials {
    pub app_id: String,
    #[serde(deserialize_with = "secret")]
    pub api_key: Secret,
    pub sign_type: String,
    #[serde(default)]
    pub cert_pem: Option<String>,
    #[serde(default, deserialize_with = "opt_secret")]
    pub key_pem: Option<Secret>,
    #[serde(default)]
    pub ca_cert_pem: Option<String>,
    #[serde(default)]
    pub refund_base_url: Option<String>,
    #[serde(default, deserialize_with = "opt_secret")]
    pub app_secret: Option<Secret>,
}

/// What a checked v2 config holds.
pub(crate) struct CheckedV2 {
    pub sign_type: WxSignType,
    /// `keyPem` + `certPem`, the form `reqwest::Identity::from_pem` takes.
    pub identity_pem: Option<Secret>,
}

impl V2Credentials {
    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        Self::deserialize(v).map_err(|e| format!("credentials for WeChat Pay v2: {e}"))
    }

    pub(crate) fn check(&self) -> Result<CheckedV2, String> {
        required("appId", &self.app_id)?;
        let key = required("apiKey", self.api_key.expose())?;
        if key.len() != self.api_key.expose().len() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("credentials.apiKey must be printable ASCII without spaces".into());
        }
        let sign_type = WxSignType::parse(&self.sign_type).ok_or_else(|| {
            format!(
                "credentials.signType must be MD5 or HMAC-SHA256, not `{}`",
                self.sign_type
            )
        })?;
        let identity_pem = match (&self.cert_pem, &self.key_pem) {
            (None, None) => None,
            (Some(cert_pem), Some(key_pem)) => {
                let cert = Certificate::from_pem(cert_pem)
                    .map_err(|e| format!("credentials.certPem is not a certificate: {e}"))?;
                let key = parse_private_key("keyPem", key_pem.expose())?;
                let cert_key = cert
                    .rsa_public_key()
                    .map_err(|e| format!("credentials.certPem has no RSA public key: {e}"))?;
                if cert_key != key.public_key() {
                    return Err(
                        "credentials.keyPem is not the private key of credentials.certPem".into(),
                    );
                }
                let pem = Secret::new(format!(
                    "{}\n{}\n",
                    key_pem.expose().trim(),
                    cert_pem.trim()
                ));
                reqwest::Identity::from_pem(pem.expose().as_bytes()).map_err(|e| {
                    format!("credentials.certPem/keyPem are not a usable client identity: {e}")
                })?;
                Some(pem)
            }
            _ => return Err("credentials.certPem and credentials.keyPem go together".into()),
        };
        if let Some(ca) = &self.ca_cert_pem {
            check_ca_pem(ca)?;
        }
        if let Some(url) = &self.refund_base_url {
            parse_base_url(url).map_err(|e| format!("credentials.refundBaseUrl: {e}"))?;
        }
        Ok(CheckedV2 {
            sign_type,
            identity_pem,
        })
    }
}

/// v3: `{appId, serialNo, privateKeyPem, apiV3Key, platformSerial,
/// platformPublicKeyPem | platformCertPem, caCertPem?, appSecret?}`
/// (`appSecret` as in v2).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V3Credentials {
    pub app_id: String,
    pub serial_no: String,
    #[serde(deserialize_with = "secret")]
    pub private_key_pem: Secret,
    #[serde(deserialize_with = "secret")]
    pub api_v3_key: Secret,
    pub platform_serial: String,
    #[serde(default)]
    pub platform_public_key_pem: Option<String>,
    #[serde(default)]
    pub platform_cert_pem: Option<String>,
    #[serde(default)]
    pub ca_cert_pem: Option<String>,
    #[serde(default, deserialize_with = "opt_secret")]
    pub app_secret: Option<Secret>,
}

pub(crate) struct CheckedV3 {
    pub private_key: RsaPrivateKey,
    pub platform_key: RsaPublicKey,
}

impl V3Credentials {
    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        Self::deserialize(v).map_err(|e| format!("credentials for WeChat Pay v3: {e}"))
    }

    pub(crate) fn check(&self) -> Result<CheckedV3, String> {
        required("appId", &self.app_id)?;
        required("serialNo", &self.serial_no)?;
        let platform_serial = required("platformSerial", &self.platform_serial)?;
        let private_key = parse_private_key("privateKeyPem", self.private_key_pem.expose())?;
        if self.api_v3_key.expose().len() != 32 {
            return Err(
                "credentials.apiV3Key must be exactly 32 bytes (it is the AES-256-GCM key)".into(),
            );
        }
        let from_cert = match &self.platform_cert_pem {
            Some(pem) => {
                let cert = Certificate::from_pem(pem).map_err(|e| {
                    format!("credentials.platformCertPem is not a certificate: {e}")
                })?;
                if !cert.serial_hex().eq_ignore_ascii_case(platform_serial) {
                    return Err(format!(
                        "credentials.platformSerial `{platform_serial}` is not the serial of \
                         credentials.platformCertPem ({})",
                        cert.serial_hex()
                    ));
                }
                Some(cert.rsa_public_key().map_err(|e| {
                    format!("credentials.platformCertPem has no RSA public key: {e}")
                })?)
            }
            None => None,
        };
        let from_key = match &self.platform_public_key_pem {
            Some(pem) => Some(parse_public_key("platformPublicKeyPem", pem)?),
            None => None,
        };
        let platform_key = match (from_cert, from_key) {
            (Some(a), Some(b)) if a != b => {
                return Err(
                    "credentials.platformCertPem and credentials.platformPublicKeyPem disagree"
                        .into(),
                );
            }
            (Some(a), _) => a,
            (None, Some(b)) => b,
            (None, None) => {
                return Err(
                    "credentials.platformPublicKeyPem or credentials.platformCertPem is required"
                        .into(),
                );
            }
        };
        if let Some(ca) = &self.ca_cert_pem {
            check_ca_pem(ca)?;
        }
        Ok(CheckedV3 {
            private_key,
            platform_key,
        })
    }
}

/// A store's identity at a `wx-pay` config in service-provider mode (the
/// config is the service provider's account, 服务商): `{subMchId,
/// subAppId?}`. `subMchId` is the sub-merchant (特约商户) the store is paid
/// to; `subAppId` the sub-merchant's own AppID (its mini-program or
/// official account): with it the payer's openid is sent as `sub_openid`
/// and `wx.requestPayment` gets `appId = subAppId`; without it the openid
/// belongs to the service provider's AppID. Unknown fields are refused (a
/// typo must not silently pay the service provider).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubMerchantIdentity {
    pub sub_mch_id: String,
    #[serde(default)]
    pub sub_app_id: Option<String>,
}

/// A checked [`SubMerchantIdentity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubMerchant {
    pub sub_mch_id: String,
    pub sub_app_id: Option<String>,
}

impl SubMerchantIdentity {
    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        Self::deserialize(v).map_err(|e| format!("identity for WeChat Pay: {e}"))
    }

    pub(crate) fn check(&self) -> Result<SubMerchant, String> {
        let sub_mch_id = self.sub_mch_id.trim();
        if sub_mch_id.is_empty()
            || sub_mch_id.len() > 32
            || !sub_mch_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err("identity.subMchId must be the sub-merchant's mch_id (digits)".into());
        }
        let sub_app_id = match self.sub_app_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) if a.len() <= 32 && a.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                Some(a.to_owned())
            }
            Some(_) => {
                return Err("identity.subAppId must be an AppID (letters and digits)".into());
            }
        };
        Ok(SubMerchant {
            sub_mch_id: sub_mch_id.to_owned(),
            sub_app_id,
        })
    }
}

impl SubMerchant {
    /// The identity a request carries, if any.
    pub(crate) fn of(
        store: Option<&crate::StoreMerchant>,
    ) -> Result<Option<SubMerchant>, crate::ChannelError> {
        store
            .map(|s| {
                SubMerchantIdentity::parse(&serde_json::Value::Object(s.fields.clone()))
                    .and_then(|i| i.check())
                    .map_err(|e| crate::ChannelError::config(format!("store {}: {e}", s.store_id)))
            })
            .transpose()
    }
}
