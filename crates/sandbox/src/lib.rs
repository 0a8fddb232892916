//! cashdesk-sandbox: protocol-faithful simulators of the payment channels'
//! servers — WeChat Pay (API v2, XML, and API v3, JSON), Alipay OpenAPI
//! (`/sandbox/alipay/gateway.do`, see [`alipay`]) and Lakala open platform
//! v3 (`/sandbox/lakala/api/v3/...`, see [`lakala`]) — with real signatures
//! under sandbox keys, payer pages, a test API and fault injection. Mounted
//! by `cashdesk serve` (routes carry their full paths, under `/sandbox`) and
//! runnable alone as `cashdesk sandbox`. The merchant-side adapters talk to
//! it over HTTP exactly as they talk to `api.mch.weixin.qq.com`,
//! `openapi.alipay.com` or `s2.lakala.com`; only the base URL and keys
//! differ.
//!
//! # Two listeners, one router
//!
//! [`Sandbox::router`] is served by the host application on plain HTTP
//! (`<public_url>/sandbox/wechat/...`). [`Sandbox::start`] also runs its own
//! HTTPS listener (`tls_listen`) with the *same* router, whose certificate
//! is issued by the sandbox CA and which requests (optional) client
//! certificates. WeChat's v2 refund (`secapi/pay/refund`) needs mutual TLS,
//! which the plain mount cannot offer, so one v2 config can be set up
//! either way (both keep TLS verification on, trusting `caCertPem`):
//!
//! - `baseUrl` = the plain base and `credentialsV2.refundBaseUrl` = the
//!   HTTPS base: what `POST /sandbox/api/merchants` returns, pasteable as is
//!   (the cashdesk `wx-pay` adapter sends only the refund to `refundBaseUrl`);
//! - or `baseUrl` = the HTTPS base ([`Sandbox::refund_tls_url`],
//!   `tlsBaseUrl` in the credentials) for everything: every v2 and v3 path
//!   is served there too.
//!
//! The plain mount refuses the v2 refund like WeChat refuses a request
//! without the merchant certificate.
//!
//! # Module map
//!
//! [`v2`], [`v3`], [`alipay`] and [`lakala`] translate the wire formats
//! (one order book for all: the channel is in [`ledger::Api`]; [`v2bill`]
//! is v2's bill download); [`ledger`] holds orders and refunds and their
//! rules; [`bills`] makes the channels' bills (对账单) from it; [`clock`]
//! is the sandbox's time, which tests may move; [`notify`] sends notifications with retries;
//! [`faults`] and [`reqlog`] are the test harness; [`pki`] and [`merchants`]
//! own keys, certificates and their persistence; [`tls`] the HTTPS listener
//! (and its port across restarts); [`page`] the payer page; [`oauth`]
//! WeChat's web OAuth (code → openid); [`subscribe`] the mini-programs'
//! access tokens and subscribe messages (`api.weixin.qq.com`); [`api`]
//! the test API (and its merchant-opening quota); [`targets`] where notifications may go;
//! `journal` the append-only files behind [`merchants`] and [`ledger`];
//! [`xml`] v2's XML. In this crate's root: `running` starts, serves and
//! stops a [`Sandbox`]; `events` is what a payment or a settled refund sets
//! off (the order book, the request log, the notification in the
//! channel's format); this file holds the configuration and the state
//! every handler shares.
//!
//! # Reachable by strangers
//!
//! Nothing here asks for credentials of its own, so nothing a caller says
//! makes the sandbox contact an address of the caller's choosing
//! ([`targets`]), show what another server answered ([`reqlog`]), redirect
//! off its registered domains ([`oauth`]), or grow without bound
//! (merchants are rate-limited and capped, [`api`]; orders, faults, log,
//! OAuth codes and received subscribe messages are capped). Hosts wrap
//! [`Sandbox::router`] in their own layers (body limit, timeouts,
//! tracing) like any other router.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cashdesk_crypto::wxv2::WxSignType;
use tokio::sync::mpsc;

pub mod alipay;
pub mod api;
pub mod bills;
pub mod clock;
mod events;
pub mod faults;
mod journal;
pub mod lakala;
pub mod ledger;
pub mod merchants;
pub mod notify;
pub mod oauth;
pub mod page;
pub mod pki;
pub mod reqlog;
mod running;
mod store;
pub mod subscribe;
pub mod targets;
pub mod tls;
pub mod v2;
pub mod v2bill;
pub mod v3;
pub mod validate;
pub mod xml;

pub use merchants::{
    AlipayAuthCredentials, AlipayCertCredentials, AlipayCredentials, AlipayMerchantCredentials,
    CredentialsV2, CredentialsV3, LakalaCredentials, LakalaMerchantCredentials,
    LakalaStoreCredentials, MerchantCredentials, SubMerchantCredentials,
};
pub use notify::NotifyObservation;
pub use running::Sandbox;
pub use targets::NotifyTargets;

use ledger::Order;
use notify::Msg;

/// WeChat's notification retry schedule: the waits after the first attempt
/// (15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h, 24h4m in all).
pub fn wechat_notify_schedule() -> Vec<Duration> {
    [
        15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
    ]
    .into_iter()
    .map(Duration::from_secs)
    .collect()
}

/// Alipay's notification retry schedule: the waits after the first attempt
/// (4m/10m/10m/1h/2h/6h/15h: eight attempts over about 25 hours).
pub fn alipay_notify_schedule() -> Vec<Duration> {
    [240, 600, 600, 3600, 7200, 21600, 54000]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

/// Lakala's notification retry schedule. Lakala does not publish one
/// (UNCONFIRMED, see [`lakala`]); the sandbox uses WeChat's, the schedule
/// of the wallets Lakala aggregates.
pub fn lakala_notify_schedule() -> Vec<Duration> {
    wechat_notify_schedule()
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Persistent state lives in `<data_dir>/sandbox/` (created 0700):
    /// `pki.json` (CA and platform keys), `merchants.jsonl`
    /// ([`merchants`]), `ledger.jsonl` ([`ledger`]) and `tls-port`
    /// ([`tls`]), all 0600.
    pub data_dir: PathBuf,
    /// Base URL the sandbox's plain-HTTP routes are reachable at, e.g.
    /// `http://127.0.0.1:8080`; used in payer-page URLs, `code_url`,
    /// `mweb_url`/`h5_url` and the credentials' `baseUrl`.
    pub public_url: String,
    /// Waits between WeChat notification attempts
    /// ([`wechat_notify_schedule`], scaled down in tests).
    pub notify_schedule: Vec<Duration>,
    /// Address of the HTTPS (mutual-TLS) listener; `None` = 127.0.0.1 on
    /// the port of the last start (kept in the data folder), else a free one.
    pub tls_listen: Option<SocketAddr>,
    /// Waits between Alipay notification attempts ([`alipay_notify_schedule`]).
    pub alipay_notify_schedule: Vec<Duration>,
    /// Waits between Lakala notification attempts ([`lakala_notify_schedule`]).
    pub lakala_notify_schedule: Vec<Duration>,
    /// Told about every notification attempt (in-process observers such
    /// as `cashdesk bench`); `None`: nobody.
    pub notify_observer: Option<mpsc::UnboundedSender<notify::NotifyObservation>>,
    /// Where notifications may go ([`targets`]). Default
    /// ([`NotifyTargets::new`]): only under
    /// `<public_url>/api/cashier-desk/notify/`, the notify endpoint of the
    /// cashdesk that mounts the sandbox.
    pub notify_targets: NotifyTargets,
    /// Web OAuth domains (网页授权域名, `host` or `host:port`) registered
    /// for every sandbox official account besides the public URL's own
    /// `host[:port]` ([`oauth`]).
    pub oauth_domains: Vec<String>,
    /// How fast `POST /sandbox/api/merchants` opens merchants ([`api`]).
    pub merchant_quota: api::MerchantQuota,
    /// The most merchants (of every kind: WeChat merchants and
    /// sub-merchants, Alipay apps and authorizations, Lakala apps and
    /// terminals) the test API opens; past it, 403 `MERCHANT_LIMIT`.
    pub max_merchants: usize,
    /// The most orders the order book keeps; past it the oldest are
    /// forgotten, with their refunds ([`ledger`]).
    pub max_orders: usize,
}

impl SandboxConfig {
    /// The channels' real retry schedules, the loopback HTTPS port of the
    /// last start (or a free one), notifications only to
    /// `<public_url>/api/cashier-desk/notify/`, the default merchant quota
    /// and caps.
    pub fn new(data_dir: impl Into<PathBuf>, public_url: impl Into<String>) -> Self {
        let public_url = public_url.into();
        Self {
            data_dir: data_dir.into(),
            public_url: public_url.clone(),
            notify_schedule: wechat_notify_schedule(),
            tls_listen: None,
            alipay_notify_schedule: alipay_notify_schedule(),
            lakala_notify_schedule: lakala_notify_schedule(),
            notify_observer: None,
            notify_targets: NotifyTargets::new(&public_url),
            oauth_domains: Vec::new(),
            merchant_quota: api::MerchantQuota::default(),
            max_merchants: DEFAULT_MAX_MERCHANTS,
            max_orders: ledger::DEFAULT_MAX_ORDERS,
        }
    }

    /// Every channel's schedule replaced by `schedule` (tests, demos).
    pub fn with_notify_schedule(mut self, schedule: Vec<Duration>) -> Self {
        self.notify_schedule = schedule.clone();
        self.alipay_notify_schedule = schedule.clone();
        self.lakala_notify_schedule = schedule;
        self
    }
}

/// The default of [`SandboxConfig::max_merchants`].
pub const DEFAULT_MAX_MERCHANTS: usize = 10_000;

/// State shared by every handler and the notifier.
pub struct Shared {
    public_url: String,
    /// `<public_url>/api/cashier-desk/notify/`, named in refusals.
    own_notify_prefix: String,
    tls_base_url: String,
    pub(crate) pki: pki::Pki,
    pub(crate) merchants: merchants::Merchants,
    pub(crate) ledger: ledger::Ledger,
    pub(crate) faults: faults::Faults,
    pub(crate) clock: clock::Clock,
    pub(crate) downloads: bills::Downloads,
    pub(crate) log: reqlog::RequestLog,
    pub(crate) oauth: oauth::Codes,
    pub(crate) subscribe_tokens: subscribe::tokens::Tokens,
    pub(crate) subscribe_inbox: subscribe::inbox::Inbox,
    notifier: mpsc::UnboundedSender<Msg>,
    notify_observer: Option<mpsc::UnboundedSender<notify::NotifyObservation>>,
    pub(crate) notify_policy: targets::Policy,
    pub(crate) oauth_domains: oauth::Domains,
    pub(crate) merchant_gate: api::MerchantGate,
    max_merchants: usize,
}

impl Shared {
    /// The sandbox's now ([`clock`]): what the order book and the bills go by.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// `<public_url>`, the base of the sandbox's own links.
    pub(crate) fn public_url(&self) -> &str {
        &self.public_url
    }

    pub(crate) fn base_url(&self) -> String {
        format!("{}/sandbox/wechat", self.public_url)
    }

    /// The payer page (also Native's `code_url`).
    pub(crate) fn payer_url(&self, prepay_id: &str) -> String {
        format!("{}/pay/{prepay_id}", self.base_url())
    }

    /// H5's `mweb_url`/`h5_url`: carries a query so the merchant can append
    /// `&redirect_url=…` as WeChat documents.
    pub(crate) fn mweb_url(&self, prepay_id: &str) -> String {
        format!(
            "{}?package={}",
            self.payer_url(prepay_id),
            cashdesk_crypto::random::nonce_str(10)
        )
    }

    /// `<public_url>/sandbox/alipay/gateway.do`.
    pub(crate) fn alipay_gateway_url(&self) -> String {
        format!("{}/sandbox/alipay/gateway.do", self.public_url)
    }

    /// The Alipay payer page of a trade (also precreate's `qr_code`).
    pub(crate) fn alipay_payer_url(&self, trade_no: &str) -> String {
        format!("{}/sandbox/alipay/pay/{trade_no}", self.public_url)
    }

    /// `<public_url>/sandbox/lakala`.
    pub(crate) fn lakala_base_url(&self) -> String {
        format!("{}/sandbox/lakala", self.public_url)
    }

    /// The Lakala payer page of a trade (Native `code`, H5 `redirect_url`).
    pub(crate) fn lakala_payer_url(&self, trade_no: &str) -> String {
        format!("{}/pay/{trade_no}", self.lakala_base_url())
    }

    pub(crate) fn open_alipay_blocking(&self) -> anyhow::Result<AlipayMerchantCredentials> {
        let m = self.merchants.open_alipay(&self.pki)?;
        Ok(self
            .merchants
            .alipay_credentials(&m, &self.pki, &self.alipay_gateway_url()))
    }

    pub(crate) fn open_lakala_blocking(&self) -> anyhow::Result<LakalaMerchantCredentials> {
        let m = self.merchants.open_lakala(&self.pki)?;
        Ok(self
            .merchants
            .lakala_credentials(&m, &self.pki, &self.lakala_base_url()))
    }

    pub(crate) async fn open_merchant(
        self: Arc<Self>,
        sign_type: WxSignType,
        service_provider: bool,
    ) -> anyhow::Result<MerchantCredentials> {
        let shared = self.clone();
        self.merchant_gate
            .keygen(move || {
                let m = shared
                    .merchants
                    .open(&shared.pki, sign_type, service_provider)?;
                Ok(shared.merchants.credentials(
                    &m,
                    &shared.pki,
                    &shared.base_url(),
                    &shared.tls_base_url,
                ))
            })
            .await
            .context("opening a sandbox merchant")
    }

    /// A notify URL's form (WeChat's rules, [`validate::notify_url`]) and
    /// whether the notify policy allows it ([`targets`]); `Err` is the
    /// message for the channel's error answer.
    pub(crate) fn check_notify_url(&self, url: &str) -> Result<(), String> {
        validate::notify_url(url)?;
        self.notify_target_allowed(url)
    }

    /// Whether the notify policy allows `url` ([`targets`]).
    pub(crate) fn notify_target_allowed(&self, url: &str) -> Result<(), String> {
        if self.notify_policy.allows(url) {
            Ok(())
        } else {
            Err(self.notify_policy.explain(&self.own_notify_prefix))
        }
    }

    /// The WeChat merchant that signs for an order: the service provider
    /// of a partner order, else the order's merchant.
    pub(crate) fn wechat_signer(&self, o: &Order) -> Option<Arc<merchants::Merchant>> {
        match o.partner() {
            Some(p) => self.merchants.get(&p.sp_mch_id),
            None => self.merchants.get(&o.mch_id),
        }
    }
}
