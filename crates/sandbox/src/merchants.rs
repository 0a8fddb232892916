//! Sandbox merchants: opened through the test API, persisted in
//! `<data_dir>/sandbox/merchants.json`, and handed out in exactly the shape a
//! cashdesk `wx-pay` channel config takes, so an operator can paste them.
//!
//! The file holds key material in clear (API keys, the APIv3 key, the
//! merchant private key): it is written with mode 0600 inside a 0700 folder.
//! These are sandbox keys, worthless outside this sandbox; encrypting them
//! under a master key the sandbox would have to keep next to them would add
//! nothing. In memory the secrets are never printed (`Debug` redacts them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use cashdesk_crypto::wxv2::WxSignType;
use serde::{Deserialize, Serialize};

use crate::pki::Pki;
use crate::store::write_private_file;

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
    pub fn v3_public_key(&self) -> anyhow::Result<cashdesk_crypto::rsa::RsaPublicKey> {
        cashdesk_crypto::rsa::RsaPublicKey::from_pem(&self.cert_pem).context("merchant certificate")
    }
}

/// What `POST /sandbox/api/merchants` returns: the `wx-pay` channel config
/// fields (`credentials` for both API versions, `mchId`, `baseUrl`) plus the
/// HTTPS base URL that serves every path, the v2 refund (mutual TLS) included.
///
/// ```json
/// {"mchId": "19…",
///  "credentialsV2": {"appId", "apiKey", "signType", "certPem", "keyPem", "caCertPem", "refundBaseUrl"},
///  "credentialsV3": {"appId", "serialNo", "privateKeyPem", "apiV3Key", "platformSerial",
///                    "platformPublicKeyPem", "platformCertPem"},
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

#[derive(Serialize, Deserialize)]
struct MerchantsFile {
    version: u32,
    merchants: Vec<Merchant>,
}

pub struct Merchants {
    path: PathBuf,
    by_id: RwLock<HashMap<String, Arc<Merchant>>>,
    /// Serialises writers so two openings cannot lose each other's merchant.
    write_lock: std::sync::Mutex<()>,
}

fn digits(n: usize) -> String {
    cashdesk_crypto::random::bytes(n)
        .into_iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

impl Merchants {
    pub fn load(dir: &std::path::Path) -> anyhow::Result<Self> {
        let path = dir.join("merchants.json");
        let mut by_id = HashMap::new();
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let file: MerchantsFile = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            anyhow::ensure!(
                file.version == 1,
                "unknown merchants.json version {}",
                file.version
            );
            for mut m in file.merchants {
                m.cert_der = crate::store::pem_to_der(&m.cert_pem)
                    .with_context(|| format!("certificate of sandbox merchant {}", m.mch_id))?;
                by_id.insert(m.mch_id.clone(), Arc::new(m));
            }
        }
        Ok(Self {
            path,
            by_id: RwLock::new(by_id),
            write_lock: std::sync::Mutex::new(()),
        })
    }

    pub fn get(&self, mch_id: &str) -> Option<Arc<Merchant>> {
        self.by_id.read().ok()?.get(mch_id).cloned()
    }

    /// Open a merchant: ids, keys, certificate; persisted before it is returned.
    /// CPU-heavy (RSA key generation) and does file I/O: call it off the
    /// async workers.
    pub fn open(&self, pki: &Pki, sign_type: WxSignType) -> anyhow::Result<Arc<Merchant>> {
        let _guard = self
            .write_lock
            .lock()
            .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))?;
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
        };
        let merchant = Arc::new(merchant);
        let mut all: Vec<Merchant> = {
            let map = self
                .by_id
                .read()
                .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))?;
            map.values().map(|m| (**m).clone()).collect()
        };
        all.push((*merchant).clone());
        all.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then(a.mch_id.cmp(&b.mch_id))
        });
        let json = serde_json::to_string_pretty(&MerchantsFile {
            version: 1,
            merchants: all,
        })
        .context("serialising sandbox merchants")?;
        write_private_file(&self.path, json.as_bytes())?;
        self.by_id
            .write()
            .map_err(|_| anyhow::anyhow!("merchant registry lock poisoned"))?
            .insert(mch_id, merchant.clone());
        Ok(merchant)
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
            },
            credentials_v3: CredentialsV3 {
                app_id: m.app_id.clone(),
                serial_no: m.serial_no.clone(),
                private_key_pem: m.key_pem.clone(),
                api_v3_key: m.api_v3_key.clone(),
                platform_serial: pki.platform_serial.clone(),
                platform_public_key_pem: pki.platform_public_key_pem.clone(),
                platform_cert_pem: pki.platform_cert_pem.clone(),
            },
            base_url: base_url.to_owned(),
            tls_base_url: tls_base_url.to_owned(),
        }
    }
}
