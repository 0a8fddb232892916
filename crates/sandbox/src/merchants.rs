//! Sandbox merchants: opened through the test API, persisted in
//! `<data_dir>/sandbox/merchants.jsonl`, and handed out in exactly the shape a
//! cashdesk channel config takes (`wx-pay`, `ali-pay`, `lakala`), so an
//! operator can paste them.
//!
//! # Persistence
//!
//! `merchants.jsonl` is an append-only journal ([`crate::journal`]): each
//! opening appends one line (`{"t":"wechat"|"alipay"|"lakala"|"sub"|
//! "lakalaStore"|"alipayAuth", …}`) and fsyncs it before the credentials
//! are handed out, so opening a merchant costs one line, never a rewrite of
//! every merchant. A start reads `merchants.json`, the whole-file format
//! earlier versions wrote (kept as it is, never written again), then
//! replays the journal.
//!
//! - An Alipay app has an app id, a pid (`2088…`, the seller id), an RSA key
//!   pair and, for certificate mode, an app certificate issued by the
//!   sandbox Alipay root. One app answers in both modes: the mode is chosen
//!   per request by the presence of `app_cert_sn`.
//! - A Lakala app (`OP…`) has a key pair whose certificate serial is its
//!   `serial_no`, and a default `merchant_no`/`term_no`. Like an institution
//!   on Lakala's open platform it transacts for the stores of a chain too:
//!   each store terminal (`lakala_stores`, opened with
//!   `{"channelType":"lakala","appId":"OP…"}`) has its own numbers, and the
//!   sandbox accepts from an app only its own numbers and its stores'.
//! - A WeChat merchant may be a service provider (服务商, `serviceProvider`);
//!   its sub-merchants (特约商户, `sub_merchants`, opened with
//!   `{"channelType":"wx-pay","spMchId":"…"}`) have their own `mch_id` and
//!   AppID but no keys: the service provider signs every call for them.
//! - An Alipay app may act for other merchants that authorized it
//!   (应用授权): `alipay_auth` holds each `app_auth_token`, the app it was
//!   issued to and the authorizing merchant's app (opened together with
//!   `{"channelType":"ali-pay","isvAppId":"…"}`).
//!
//! The files hold key material in clear (API keys, the APIv3 key, the
//! merchant private key): it is written with mode 0600 inside a 0700 folder.
//! These are sandbox keys, worthless outside this sandbox; encrypting them
//! under a master key the sandbox would have to keep next to them would add
//! nothing. In memory the secrets are never printed (`Debug` redacts them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use cashdesk_crypto::wxv2::WxSignType;
use serde::{Deserialize, Serialize};

use crate::journal::Journal;
use crate::pki::Pki;

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

impl LakalaMerchant {
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

#[derive(Serialize, Deserialize)]
struct MerchantsFile {
    version: u32,
    merchants: Vec<Merchant>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    alipay: Vec<AlipayMerchant>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lakala: Vec<LakalaMerchant>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sub_merchants: Vec<SubMerchant>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lakala_stores: Vec<LakalaStore>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    alipay_auth: Vec<AlipayAuth>,
}

pub struct Merchants {
    by_id: RwLock<HashMap<String, Arc<Merchant>>>,
    /// Alipay apps by app id.
    alipay: RwLock<HashMap<String, Arc<AlipayMerchant>>>,
    /// Lakala apps by app id.
    lakala: RwLock<HashMap<String, Arc<LakalaMerchant>>>,
    /// WeChat sub-merchants by mch_id.
    subs: RwLock<HashMap<String, Arc<SubMerchant>>>,
    /// Lakala store terminals by merchant_no.
    lakala_stores: RwLock<HashMap<String, Arc<LakalaStore>>>,
    /// Alipay app authorizations by token.
    alipay_auth: RwLock<HashMap<String, Arc<AlipayAuth>>>,
    /// The journal; its lock also serialises openings, so two cannot
    /// pick the same id.
    journal: Mutex<Journal>,
}

fn digits(n: usize) -> String {
    cashdesk_crypto::random::bytes(n)
        .into_iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

impl Merchants {
    /// Read `merchants.json` (earlier versions' file) if there is one,
    /// then replay `merchants.jsonl`. Blocking file I/O.
    pub fn load(dir: &std::path::Path) -> anyhow::Result<Self> {
        let mut records = Vec::new();
        let legacy = dir.join("merchants.json");
        if legacy.exists() {
            let text = std::fs::read_to_string(&legacy)
                .with_context(|| format!("reading {}", legacy.display()))?;
            let file: MerchantsFile = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", legacy.display()))?;
            anyhow::ensure!(
                file.version == 1,
                "unknown merchants.json version {}",
                file.version
            );
            records.extend(file.merchants.into_iter().map(Record::Wechat));
            records.extend(file.alipay.into_iter().map(Record::Alipay));
            records.extend(file.lakala.into_iter().map(Record::Lakala));
            records.extend(file.sub_merchants.into_iter().map(Record::Sub));
            records.extend(file.lakala_stores.into_iter().map(Record::LakalaStore));
            records.extend(file.alipay_auth.into_iter().map(Record::AlipayAuth));
        }
        let (journal, replayed) = Journal::open::<Record>(&dir.join("merchants.jsonl"))?;
        records.extend(replayed.records);
        let mut by_id = HashMap::new();
        let mut alipay = HashMap::new();
        let mut lakala = HashMap::new();
        let mut subs = HashMap::new();
        let mut lakala_stores = HashMap::new();
        let mut alipay_auth = HashMap::new();
        for record in records {
            match record {
                Record::Wechat(mut m) => {
                    m.cert_der = crate::store::pem_to_der(&m.cert_pem)
                        .with_context(|| format!("certificate of sandbox merchant {}", m.mch_id))?;
                    by_id.insert(m.mch_id.clone(), Arc::new(m));
                }
                Record::Alipay(m) => {
                    alipay.insert(m.app_id.clone(), Arc::new(m));
                }
                Record::Lakala(mut m) => {
                    if m.sub_app_id.is_empty() {
                        m.sub_app_id = LakalaMerchant::derived_sub_app_id(&m.app_id);
                    }
                    lakala.insert(m.app_id.clone(), Arc::new(m));
                }
                Record::Sub(m) => {
                    subs.insert(m.mch_id.clone(), Arc::new(m));
                }
                Record::LakalaStore(m) => {
                    lakala_stores.insert(m.merchant_no.clone(), Arc::new(m));
                }
                Record::AlipayAuth(a) => {
                    alipay_auth.insert(a.app_auth_token.clone(), Arc::new(a));
                }
            }
        }
        Ok(Self {
            by_id: RwLock::new(by_id),
            alipay: RwLock::new(alipay),
            lakala: RwLock::new(lakala),
            subs: RwLock::new(subs),
            lakala_stores: RwLock::new(lakala_stores),
            alipay_auth: RwLock::new(alipay_auth),
            journal: Mutex::new(journal),
        })
    }

    /// How many merchants of every kind there are.
    pub fn count(&self) -> usize {
        fn len<T>(m: &RwLock<HashMap<String, T>>) -> usize {
            m.read().map(|m| m.len()).unwrap_or_default()
        }
        len(&self.by_id)
            + len(&self.alipay)
            + len(&self.lakala)
            + len(&self.subs)
            + len(&self.lakala_stores)
            + len(&self.alipay_auth)
    }

    fn lock_journal(&self) -> anyhow::Result<std::sync::MutexGuard<'_, Journal>> {
        self.journal
            .lock()
            .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))
    }

    /// The WeChat merchant whose official account is `app_id`.
    pub fn by_app_id(&self, app_id: &str) -> Option<Arc<Merchant>> {
        self.by_id
            .read()
            .ok()?
            .values()
            .find(|m| m.app_id == app_id)
            .cloned()
    }

    pub fn get(&self, mch_id: &str) -> Option<Arc<Merchant>> {
        self.by_id.read().ok()?.get(mch_id).cloned()
    }

    /// Open a merchant: ids, keys, certificate; persisted before it is returned.
    /// CPU-heavy (RSA key generation) and does file I/O: call it off the
    /// async workers.
    pub fn open(
        &self,
        pki: &Pki,
        sign_type: WxSignType,
        service_provider: bool,
    ) -> anyhow::Result<Arc<Merchant>> {
        let mut journal = self.lock_journal()?;
        let mut mch_id;
        loop {
            mch_id = format!("19{}", digits(8));
            if self.get(&mch_id).is_none() {
                break;
            }
        }
        let issued = pki.issue_merchant_cert(&mch_id)?;
        let merchant = Merchant {
            app_id: format!("wx{}", hex::encode(cashdesk_crypto::random::bytes(8))),
            api_key: cashdesk_crypto::random::nonce_str(32),
            sign_type: sign_type.as_str().to_owned(),
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
            serial_no: issued.serial_hex,
            api_v3_key: cashdesk_crypto::random::nonce_str(32),
            created_at: chrono::Utc::now().to_rfc3339(),
            cert_der: issued.cert_der,
            mch_id: mch_id.clone(),
            service_provider,
        };
        let merchant = Arc::new(merchant);
        save(&mut journal, Added::Wechat(&merchant))?;
        self.by_id
            .write()
            .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))?
            .insert(mch_id, merchant.clone());
        Ok(merchant)
    }

    pub fn alipay(&self, app_id: &str) -> Option<Arc<AlipayMerchant>> {
        self.alipay.read().ok()?.get(app_id).cloned()
    }

    pub fn lakala(&self, app_id: &str) -> Option<Arc<LakalaMerchant>> {
        self.lakala.read().ok()?.get(app_id).cloned()
    }

    /// The Alipay app whose pid is `pid`.
    pub fn alipay_by_pid(&self, pid: &str) -> Option<Arc<AlipayMerchant>> {
        self.alipay
            .read()
            .ok()?
            .values()
            .find(|m| m.pid == pid)
            .cloned()
    }

    /// Open an Alipay app (key pair, pid, app certificate); persisted before
    /// it is returned. CPU-heavy: call it off the async workers.
    pub fn open_alipay(&self, pki: &Pki) -> anyhow::Result<Arc<AlipayMerchant>> {
        let mut journal = self.lock_journal()?;
        let (app_id, pid) = loop {
            let app_id = format!("2021{}", digits(12));
            let pid = format!("2088{}", digits(12));
            if self.alipay(&app_id).is_none() && self.alipay_by_pid(&pid).is_none() {
                break (app_id, pid);
            }
        };
        let key = cashdesk_crypto::rsa::RsaPrivateKey::generate_2048()
            .context("generating an Alipay app key")?;
        let private_key_pem = key.to_pkcs8_pem();
        let cert = pki.issue_alipay_app_cert(&app_id, &private_key_pem)?;
        let app_cert_sn = cashdesk_crypto::cert::Certificate::from_pem(&cert.cert_pem)
            .context("reading the app certificate")?
            .alipay_sn();
        let m = Arc::new(AlipayMerchant {
            app_id: app_id.clone(),
            pid,
            public_key_pem: key.public_key().to_spki_pem(),
            private_key_pem,
            app_cert_pem: cert.cert_pem,
            app_cert_sn,
            created_at: chrono::Utc::now().to_rfc3339(),
        });
        save(&mut journal, Added::Alipay(&m))?;
        self.alipay
            .write()
            .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))?
            .insert(app_id, m.clone());
        Ok(m)
    }

    /// Open a Lakala app with a default merchant and terminal number;
    /// persisted before it is returned. CPU-heavy.
    pub fn open_lakala(&self, pki: &Pki) -> anyhow::Result<Arc<LakalaMerchant>> {
        let mut journal = self.lock_journal()?;
        let app_id = loop {
            let app_id = format!("OP{}", digits(8));
            if self.lakala(&app_id).is_none() {
                break app_id;
            }
        };
        let issued = pki.issue_merchant_cert(&app_id)?;
        let m = Arc::new(LakalaMerchant {
            app_id: app_id.clone(),
            serial_no: issued.serial_hex.to_ascii_lowercase(),
            private_key_pem: issued.key_pem,
            cert_pem: issued.cert_pem,
            merchant_no: format!("822{}", digits(12)),
            term_no: digits(8),
            sub_app_id: LakalaMerchant::derived_sub_app_id(&app_id),
            created_at: chrono::Utc::now().to_rfc3339(),
        });
        save(&mut journal, Added::Lakala(&m))?;
        self.lakala
            .write()
            .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))?
            .insert(app_id, m.clone());
        Ok(m)
    }

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

    // --- service providers, chain stores, app authorizations ---

    pub fn sub(&self, mch_id: &str) -> Option<Arc<SubMerchant>> {
        self.subs.read().ok()?.get(mch_id).cloned()
    }

    /// The sub-merchant `mch_id` of the service provider `sp_mch_id`.
    pub fn sub_of(&self, sp_mch_id: &str, mch_id: &str) -> Option<Arc<SubMerchant>> {
        self.sub(mch_id).filter(|s| s.sp_mch_id == sp_mch_id)
    }

    /// Open a sub-merchant under the service provider `sp_mch_id`
    /// (`mch_id` and AppID; no keys). Persisted before it is returned.
    pub fn open_sub_merchant(&self, sp_mch_id: &str) -> anyhow::Result<SubMerchantCredentials> {
        let sp = self
            .get(sp_mch_id)
            .with_context(|| format!("no sandbox WeChat merchant {sp_mch_id}"))?;
        anyhow::ensure!(
            sp.service_provider,
            "sandbox WeChat merchant {sp_mch_id} is not a service provider (open one with serviceProvider: true)"
        );
        let mut journal = self.lock_journal()?;
        let mch_id = loop {
            let id = format!("19{}", digits(8));
            if self.get(&id).is_none() && self.sub(&id).is_none() {
                break id;
            }
        };
        let sub = Arc::new(SubMerchant {
            mch_id: mch_id.clone(),
            sp_mch_id: sp.mch_id.clone(),
            app_id: format!("wx{}", hex::encode(cashdesk_crypto::random::bytes(8))),
            created_at: chrono::Utc::now().to_rfc3339(),
        });
        save(&mut journal, Added::Sub(&sub))?;
        self.subs
            .write()
            .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))?
            .insert(mch_id, sub.clone());
        Ok(SubMerchantCredentials {
            mch_id: sub.mch_id.clone(),
            sp_mch_id: sub.sp_mch_id.clone(),
            sub_app_id: sub.app_id.clone(),
            identity: serde_json::json!({"subMchId": sub.mch_id, "subAppId": sub.app_id}),
        })
    }

    /// Whether the Lakala app `app_id` may transact with these numbers:
    /// its own, or one of its store terminals'.
    pub fn lakala_terminal_of(&self, app_id: &str, merchant_no: &str, term_no: &str) -> bool {
        if self
            .lakala(app_id)
            .is_some_and(|m| m.merchant_no == merchant_no && m.term_no == term_no)
        {
            return true;
        }
        self.lakala_stores.read().ok().is_some_and(|stores| {
            stores
                .get(merchant_no)
                .is_some_and(|s| s.app_id == app_id && s.term_no == term_no)
        })
    }

    /// Open a store terminal (merchant and terminal numbers) under the
    /// Lakala app `app_id`. Persisted before it is returned.
    pub fn open_lakala_store(&self, app_id: &str) -> anyhow::Result<LakalaStoreCredentials> {
        let app = self
            .lakala(app_id)
            .with_context(|| format!("no sandbox Lakala app {app_id}"))?;
        let mut journal = self.lock_journal()?;
        let merchant_no = loop {
            let no = format!("822{}", digits(12));
            let taken = self
                .lakala_stores
                .read()
                .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))?
                .contains_key(&no);
            if !taken && no != app.merchant_no {
                break no;
            }
        };
        let store = Arc::new(LakalaStore {
            app_id: app.app_id.clone(),
            merchant_no: merchant_no.clone(),
            term_no: digits(8),
            created_at: chrono::Utc::now().to_rfc3339(),
        });
        save(&mut journal, Added::LakalaStore(&store))?;
        self.lakala_stores
            .write()
            .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))?
            .insert(merchant_no, store.clone());
        Ok(LakalaStoreCredentials {
            mch_id: store.merchant_no.clone(),
            app_id: store.app_id.clone(),
            merchant_no: store.merchant_no.clone(),
            term_no: store.term_no.clone(),
            identity: serde_json::json!({"merchantNo": store.merchant_no, "termNo": store.term_no}),
        })
    }

    /// The authorization behind an `app_auth_token`.
    pub fn alipay_auth(&self, token: &str) -> Option<Arc<AlipayAuth>> {
        self.alipay_auth.read().ok()?.get(token).cloned()
    }

    /// Open an Alipay merchant (app and pid) that authorizes the app
    /// `isv_app_id` to call for it. CPU-heavy (a key pair); persisted.
    pub fn open_alipay_authorized(
        &self,
        pki: &Pki,
        isv_app_id: &str,
    ) -> anyhow::Result<AlipayAuthCredentials> {
        anyhow::ensure!(
            self.alipay(isv_app_id).is_some(),
            "no sandbox Alipay app {isv_app_id}"
        );
        let merchant = self.open_alipay(pki)?;
        let mut journal = self.lock_journal()?;
        let auth = Arc::new(AlipayAuth {
            app_auth_token: format!(
                "{}BB{}",
                &chrono::Utc::now().format("%Y%m").to_string(),
                hex::encode(cashdesk_crypto::random::bytes(16))
            ),
            isv_app_id: isv_app_id.to_owned(),
            auth_app_id: merchant.app_id.clone(),
            created_at: chrono::Utc::now().to_rfc3339(),
        });
        save(&mut journal, Added::AlipayAuth(&auth))?;
        self.alipay_auth
            .write()
            .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))?
            .insert(auth.app_auth_token.clone(), auth.clone());
        Ok(AlipayAuthCredentials {
            mch_id: merchant.pid.clone(),
            isv_app_id: auth.isv_app_id.clone(),
            auth_app_id: auth.auth_app_id.clone(),
            seller_id: merchant.pid.clone(),
            app_auth_token: auth.app_auth_token.clone(),
            identity: serde_json::json!({
                "appAuthToken": auth.app_auth_token,
                "authAppId": auth.auth_app_id,
                "sellerId": merchant.pid,
            }),
        })
    }
}

/// One line of `merchants.jsonl`.
#[derive(Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
enum Record {
    Wechat(Merchant),
    Alipay(AlipayMerchant),
    Lakala(LakalaMerchant),
    Sub(SubMerchant),
    LakalaStore(LakalaStore),
    AlipayAuth(AlipayAuth),
}

/// The same, borrowed, for writing.
#[derive(Serialize)]
#[serde(tag = "t", rename_all = "camelCase")]
enum Added<'a> {
    Wechat(&'a Merchant),
    Alipay(&'a AlipayMerchant),
    Lakala(&'a LakalaMerchant),
    Sub(&'a SubMerchant),
    LakalaStore(&'a LakalaStore),
    AlipayAuth(&'a AlipayAuth),
}

/// Append `added` and fsync it: the merchant exists once this returns.
fn save(journal: &mut Journal, added: Added<'_>) -> anyhow::Result<()> {
    journal.append(&added)?;
    journal.sync()
}
