//! What the sandbox keeps about each merchant (one journal line each):
//! WeChat merchants and their sub-merchants, Alipay apps and their
//! authorizations, Lakala apps and their store terminals. Key material is
//! kept in clear (see the registry's comment); `Debug` never prints it.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Merchant {
    pub mch_id: String,
    pub app_id: String,
    /// APIv2 key (32 characters).
    pub api_key: String,
    /// The sign type suggested in the credentials (the sandbox accepts both).
    pub sign_type: String,
    /// API client certificate issued by the sandbox CA (CN = mch_id).
    pub cert_pem: String,
    /// Its RSA private key, PKCS#8 PEM; also the v3 signing key.
    pub key_pem: String,
    /// The certificate's serial, upper hex (v3 `serial_no`).
    pub serial_no: String,
    /// APIv3 key (32 characters), for AEAD_AES_256_GCM.
    pub api_v3_key: String,
    pub created_at: String,
    /// A service provider (服务商): it takes payments only for its
    /// sub-merchants, through `sub_mch_id` / the partner endpoints.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub service_provider: bool,
    /// DER of `cert_pem`, to recognise the client certificate on the mTLS listener.
    #[serde(skip)]
    pub cert_der: Vec<u8>,
}

impl std::fmt::Debug for Merchant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merchant")
            .field("mch_id", &self.mch_id)
            .field("app_id", &self.app_id)
            .field("serial_no", &self.serial_no)
            .finish_non_exhaustive()
    }
}

impl Merchant {
    /// The AppSecret of the merchant's official account (`app_id`), for
    /// the OAuth code → openid exchange. Derived from the API key, so
    /// merchants saved before OAuth existed have one too.
    pub fn app_secret(&self) -> String {
        let d = cashdesk_crypto::digest::sha256(
            format!("sandbox app secret\n{}", self.api_key).as_bytes(),
        );
        hex::encode(&d[..16])
    }

    pub fn v3_public_key(&self) -> anyhow::Result<cashdesk_crypto::rsa::RsaPublicKey> {
        cashdesk_crypto::rsa::RsaPublicKey::from_pem(&self.cert_pem).context("merchant certificate")
    }
}

/// A WeChat sub-merchant (特约商户) of a service provider: its own
/// `mch_id` and AppID, no keys (the service provider signs for it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubMerchant {
    pub mch_id: String,
    pub sp_mch_id: String,
    /// The sub-merchant's own AppID (its mini-program): `sub_appid`.
    pub app_id: String,
    pub created_at: String,
}

/// A store terminal of a Lakala app: its own merchant and terminal numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LakalaStore {
    pub app_id: String,
    pub merchant_no: String,
    pub term_no: String,
    pub created_at: String,
}

/// An Alipay app authorization (应用授权): `token` lets `isv_app_id` call
/// for the merchant whose app is `auth_app_id`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlipayAuth {
    pub app_auth_token: String,
    pub isv_app_id: String,
    pub auth_app_id: String,
    pub created_at: String,
}

impl std::fmt::Debug for AlipayAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayAuth")
            .field("isv_app_id", &self.isv_app_id)
            .field("auth_app_id", &self.auth_app_id)
            .finish_non_exhaustive()
    }
}

/// A sandbox Alipay app.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlipayMerchant {
    pub app_id: String,
    /// The pid (`2088` + 12 digits): `seller_id` of every trade.
    pub pid: String,
    /// The app private key, PKCS#8 PEM.
    pub private_key_pem: String,
    /// The app public key (SPKI PEM): verifies requests in both modes.
    pub public_key_pem: String,
    /// Certificate mode: the app's certificate and its SN (`app_cert_sn`).
    pub app_cert_pem: String,
    pub app_cert_sn: String,
    pub created_at: String,
}

impl std::fmt::Debug for AlipayMerchant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayMerchant")
            .field("app_id", &self.app_id)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// A sandbox Lakala app.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LakalaMerchant {
    pub app_id: String,
    /// The serial of the app's certificate, lowercase hex (`serial_no`).
    pub serial_no: String,
    pub private_key_pem: String,
    pub cert_pem: String,
    /// The default merchant and terminal numbers.
    pub merchant_no: String,
    pub term_no: String,
    /// The WeChat AppID (mini-program / official account) bound to the
    /// merchant, for WeChat `mini`/`jsapi` payments (`sub_appid`). Files
    /// written before it existed get one derived from the app id on load.
    #[serde(default)]
    pub sub_app_id: String,
    pub created_at: String,
}

/// The AppSecret of a mini-program the sandbox has no merchant record of
/// its own for (a sub-merchant's `sub_appid`, a Lakala merchant's
/// `subAppId`): derived from the owner's key material (`seed`) and the
/// AppID, so it is stable across restarts and not guessable.
pub fn derived_app_secret(seed: &str, app_id: &str) -> String {
    let d = cashdesk_crypto::digest::sha256(
        format!("sandbox mini-program secret\n{seed}\n{app_id}").as_bytes(),
    );
    hex::encode(&d[..16])
}

impl LakalaMerchant {
    /// The AppSecret of the merchant's mini-program (`sub_app_id`).
    pub fn mini_program_secret(&self) -> String {
        derived_app_secret(&self.private_key_pem, &self.sub_app_id)
    }

    /// A `wx` + 16 hex AppID derived from the Lakala app id (stable across
    /// restarts, distinct per app).
    pub fn derived_sub_app_id(app_id: &str) -> String {
        let d = cashdesk_crypto::digest::sha256(
            format!("sandbox lakala sub_appid\n{app_id}").as_bytes(),
        );
        format!("wx{}", hex::encode(&d[..8]))
    }
}

impl std::fmt::Debug for LakalaMerchant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakalaMerchant")
            .field("app_id", &self.app_id)
            .field("merchant_no", &self.merchant_no)
            .finish_non_exhaustive()
    }
}
