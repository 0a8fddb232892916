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
//!
//! This file is the registry (loading, lookups, openings, the journal);
//! `records` holds what is kept about each kind of merchant, `credentials`
//! the shapes handed out to operators and how they are made.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use cashdesk_crypto::wxv2::WxSignType;
use serde::{Deserialize, Serialize};

use crate::journal::Journal;
use crate::pki::Pki;

mod credentials;
mod records;

pub use credentials::{
    AlipayAuthCredentials, AlipayCertCredentials, AlipayCredentials, AlipayMerchantCredentials,
    CredentialsV2, CredentialsV3, LakalaCredentials, LakalaMerchantCredentials,
    LakalaStoreCredentials, MerchantCredentials, SubMerchantCredentials,
};
pub use records::{AlipayAuth, AlipayMerchant, LakalaMerchant, LakalaStore, Merchant, SubMerchant};

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
            sub_app_secret: records::derived_app_secret(&sp.api_key, &sub.app_id),
        })
    }

    /// The AppSecret of the mini-program `app_id`: a WeChat merchant's
    /// official account / mini-program ([`Merchant::app_secret`]), a
    /// sub-merchant's `sub_appid` or a Lakala merchant's `subAppId`
    /// ([`records::derived_app_secret`]); `None` when no sandbox merchant
    /// has that AppID.
    pub fn mini_program_secret(&self, app_id: &str) -> Option<String> {
        if let Some(m) = self.by_app_id(app_id) {
            return Some(m.app_secret());
        }
        let sub = self
            .subs
            .read()
            .ok()?
            .values()
            .find(|s| s.app_id == app_id)
            .cloned();
        if let Some(sub) = sub {
            let sp = self.get(&sub.sp_mch_id)?;
            return Some(records::derived_app_secret(&sp.api_key, app_id));
        }
        self.lakala
            .read()
            .ok()?
            .values()
            .find(|l| l.sub_app_id == app_id)
            .map(|l| l.mini_program_secret())
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
