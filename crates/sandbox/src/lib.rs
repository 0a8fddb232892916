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
//! (one order book for all: the channel is in [`ledger::Api`]); [`ledger`] holds orders and
//! refunds and their rules; [`notify`] sends notifications with retries;
//! [`faults`] and [`reqlog`] are the test harness; [`pki`] and [`merchants`]
//! own keys, certificates and their persistence; [`tls`] the HTTPS listener
//! (and its port across restarts); [`page`] the payer page; [`oauth`]
//! WeChat's web OAuth (code → openid); [`api`] the test API (and its
//! merchant-opening quota); [`targets`] where notifications may go;
//! `journal` the append-only files behind [`merchants`] and [`ledger`];
//! [`xml`] v2's XML.
//!
//! # Reachable by strangers
//!
//! Nothing here asks for credentials of its own, so nothing a caller says
//! makes the sandbox contact an address of the caller's choosing
//! ([`targets`]), show what another server answered ([`reqlog`]), redirect
//! off its registered domains ([`oauth`]), or grow without bound
//! (merchants are rate-limited and capped, [`api`]; orders, faults, log
//! and OAuth codes are capped). Hosts wrap [`Sandbox::router`] in their
//! own layers (body limit, timeouts, tracing) like any other router.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use cashdesk_crypto::wxv2::WxSignType;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub mod alipay;
pub mod api;
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
mod store;
pub mod targets;
pub mod tls;
pub mod v2;
pub mod v3;
pub mod validate;
pub mod xml;

pub use merchants::{
    AlipayAuthCredentials, AlipayCertCredentials, AlipayCredentials, AlipayMerchantCredentials,
    CredentialsV2, CredentialsV3, LakalaCredentials, LakalaMerchantCredentials,
    LakalaStoreCredentials, MerchantCredentials, SubMerchantCredentials,
};
pub use notify::NotifyObservation;
pub use targets::NotifyTargets;

use ledger::{Api, LedgerError, Order, OrderRef, Refund};
use notify::{Format, Job, Msg};
use reqlog::NewEntry;

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

/// How long an accepted refund stays PROCESSING before it succeeds and its
/// notification goes out.
const REFUND_SETTLE: Duration = Duration::from_millis(100);

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

/// Hands the order book's journal lines to the OS every
/// [`ledger::FLUSH_EVERY`] (changes flush too when they come often), and a
/// last time at shutdown.
async fn flush_periodically(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ledger::FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || s.ledger.flush()).await;
    }
    let _ = tokio::task::spawn_blocking(move || shared.ledger.flush()).await;
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
    pub(crate) log: reqlog::RequestLog,
    pub(crate) oauth: oauth::Codes,
    notifier: mpsc::UnboundedSender<Msg>,
    notify_observer: Option<mpsc::UnboundedSender<notify::NotifyObservation>>,
    pub(crate) notify_policy: targets::Policy,
    pub(crate) oauth_domains: oauth::Domains,
    pub(crate) merchant_gate: api::MerchantGate,
    max_merchants: usize,
}

/// A running sandbox. Dropping it stops its listener and notifier too.
pub struct Sandbox {
    shared: Arc<Shared>,
    tls_addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Sandbox {
    /// Load (or create) the CA, platform key, merchants and order book,
    /// start the HTTPS listener and the notification sender.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        let public = url::Url::parse(&config.public_url)
            .with_context(|| format!("sandbox public_url `{}` is not a URL", config.public_url))?;
        anyhow::ensure!(
            matches!(public.scheme(), "http" | "https") && public.host_str().is_some(),
            "sandbox public_url must be an http(s) URL with a host"
        );
        let public_url = config.public_url.trim_end_matches('/').to_owned();
        let public_host = public
            .host_str()
            .unwrap_or("localhost")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let notify_policy = config
            .notify_targets
            .compile()
            .context("sandbox notify targets")?;
        let oauth_domains = oauth::Domains::new(&public, &config.oauth_domains)?;
        let merchant_gate = api::MerchantGate::new(&config.merchant_quota)?;

        let dir = config.data_dir.join("sandbox");
        let max_orders = config.max_orders;
        let (pki, merchants, (ledger, processing), remembered_port) = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                store::ensure_private_dir(&dir)?;
                Ok((
                    pki::Pki::load_or_create(&dir)?,
                    merchants::Merchants::load(&dir)?,
                    ledger::Ledger::open(&dir, max_orders)?,
                    tls::remembered_port(&dir),
                ))
            })
            .await
            .context("sandbox startup task")??
        };

        let tcp = match config.tls_listen {
            Some(listen) => tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding the sandbox HTTPS listener on {listen}"))?,
            None => tls::bind_remembered(&dir, remembered_port).await?,
        };
        let tls_addr = tcp.local_addr().context("sandbox HTTPS listener address")?;
        let tls_host = if tls_addr.ip().is_unspecified() {
            public_host.clone()
        } else {
            tls_addr.ip().to_string()
        };
        let mut names = vec![public_host];
        if !tls_addr.ip().is_unspecified() {
            names.push(tls_addr.ip().to_string());
        }
        let server_cert = pki.issue_server_cert(&names)?;
        let tls_config = tls::server_config(
            pki.ca_cert_der(),
            &server_cert.cert_der,
            &server_cert.key_der,
        )?;
        let host_part = if tls_host.contains(':') {
            format!("[{tls_host}]")
        } else {
            tls_host
        };
        let tls_base_url = format!("https://{host_part}:{}/sandbox/wechat", tls_addr.port());

        let (notify_tx, notify_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            own_notify_prefix: targets::own_notify_prefix(&public_url),
            public_url,
            tls_base_url,
            pki,
            merchants,
            ledger,
            faults: faults::Faults::default(),
            log: reqlog::RequestLog::default(),
            oauth: oauth::Codes::default(),
            notifier: notify_tx,
            notify_observer: config.notify_observer.clone(),
            notify_policy,
            oauth_domains,
            merchant_gate,
            max_merchants: config.max_merchants,
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);

        let (listener, acceptor) = tls::spawn_acceptor(tcp, tls_config, shutdown_rx.clone())?;
        let app = build_router(shared.clone());
        let mut server_shutdown = shutdown_rx.clone();
        let server = tokio::spawn(async move {
            let served = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<tls::TlsPeer>(),
            )
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.changed().await;
            })
            .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "sandbox HTTPS listener stopped");
            }
        });
        let notifier = tokio::spawn(notify::run_channels(
            shared.clone(),
            notify_rx,
            notify::Schedules {
                wechat: config.notify_schedule,
                alipay: config.alipay_notify_schedule,
                lakala: config.lakala_notify_schedule,
            },
            REFUND_SETTLE,
            shutdown_rx.clone(),
        ));
        let flusher = tokio::spawn(flush_periodically(shared.clone(), shutdown_rx));
        // Refunds accepted before a restart settle (and notify) again.
        for r in &processing {
            shared.schedule_refund_completion(r);
        }
        tracing::info!(https = %shared.tls_base_url, "payment channel sandbox started");
        Ok(Sandbox {
            shared,
            tls_addr,
            shutdown_tx,
            tasks: Mutex::new(vec![acceptor, server, notifier, flusher]),
        })
    }

    /// Every sandbox route with its full path (`/sandbox/wechat/...`,
    /// `/sandbox/api/...`), to be merged at `/` by the host server.
    pub fn router(&self) -> Router {
        build_router(self.shared.clone())
    }

    /// The HTTPS base URL, `https://127.0.0.1:<port>/sandbox/wechat`: the v2
    /// refund is `<this>/secapi/pay/refund`, and every other v2/v3 path is
    /// served here too, so it is the `baseUrl` a v2 channel config uses.
    pub fn refund_tls_url(&self) -> String {
        self.shared.tls_base_url.clone()
    }

    /// The plain-HTTP base URL, `<public_url>/sandbox/wechat`.
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// The address the HTTPS listener is bound to.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
    }

    /// The sandbox CA certificate (PEM): what the merchant side trusts for
    /// the HTTPS listener; it also issued the client and platform certificates.
    pub fn ca_cert_pem(&self) -> String {
        self.shared.pki.ca_cert_pem().to_owned()
    }

    /// Open a sandbox merchant directly (what `POST /sandbox/api/merchants`
    /// does), e.g. for a demo setup.
    pub async fn open_wechat_merchant(
        &self,
        sign_type: Option<&str>,
    ) -> anyhow::Result<MerchantCredentials> {
        let sign_type = match sign_type {
            None => WxSignType::Md5,
            Some(t) => WxSignType::parse(t).with_context(|| format!("unknown sign type `{t}`"))?,
        };
        self.shared.clone().open_merchant(sign_type, false).await
    }

    /// Open a WeChat service provider (`{"channelType":"wx-pay",
    /// "serviceProvider":true}`).
    pub async fn open_wechat_service_provider(&self) -> anyhow::Result<MerchantCredentials> {
        self.shared
            .clone()
            .open_merchant(WxSignType::HmacSha256, true)
            .await
    }

    /// Open a sub-merchant of the service provider `sp_mch_id`
    /// (`{"channelType":"wx-pay","spMchId":…}`).
    pub fn open_wechat_sub_merchant(
        &self,
        sp_mch_id: &str,
    ) -> anyhow::Result<SubMerchantCredentials> {
        self.shared.merchants.open_sub_merchant(sp_mch_id)
    }

    /// Open a store terminal of the Lakala app `app_id`
    /// (`{"channelType":"lakala","appId":…}`).
    pub fn open_lakala_store(&self, app_id: &str) -> anyhow::Result<LakalaStoreCredentials> {
        self.shared.merchants.open_lakala_store(app_id)
    }

    /// Open an Alipay merchant that authorizes the app `isv_app_id`
    /// (`{"channelType":"ali-pay","isvAppId":…}`).
    pub async fn open_alipay_authorization(
        &self,
        isv_app_id: &str,
    ) -> anyhow::Result<AlipayAuthCredentials> {
        let shared = self.shared.clone();
        let isv = isv_app_id.to_owned();
        self.shared
            .merchant_gate
            .keygen(move || shared.merchants.open_alipay_authorized(&shared.pki, &isv))
            .await
            .context("opening a sandbox Alipay authorization")
    }

    /// Open a sandbox Alipay app (what `POST /sandbox/api/merchants
    /// {"channelType":"ali-pay"}` does).
    pub async fn open_alipay_merchant(&self) -> anyhow::Result<AlipayMerchantCredentials> {
        let shared = self.shared.clone();
        self.shared
            .merchant_gate
            .keygen(move || shared.open_alipay_blocking())
            .await
            .context("opening a sandbox Alipay app")
    }

    /// Open a sandbox Lakala app (what `POST /sandbox/api/merchants
    /// {"channelType":"lakala"}` does).
    pub async fn open_lakala_merchant(&self) -> anyhow::Result<LakalaMerchantCredentials> {
        let shared = self.shared.clone();
        self.shared
            .merchant_gate
            .keygen(move || shared.open_lakala_blocking())
            .await
            .context("opening a sandbox Lakala app")
    }

    /// `<public_url>/sandbox/alipay/gateway.do`: an `ali-pay` config's `baseUrl`.
    pub fn alipay_gateway_url(&self) -> String {
        self.shared.alipay_gateway_url()
    }

    /// `<public_url>/sandbox/lakala`: a `lakala` config's `baseUrl`.
    pub fn lakala_base_url(&self) -> String {
        self.shared.lakala_base_url()
    }

    /// Stop the HTTPS listener and the notifier (in-flight notifications
    /// are abandoned). Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for mut task in tasks {
            if tokio::time::timeout(Duration::from_secs(3), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

fn build_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(v2::router())
        .merge(v3::router())
        .merge(alipay::router())
        .merge(lakala::router())
        .merge(page::router())
        .merge(oauth::router())
        .merge(api::router())
        .with_state(shared)
}

/// 8-4-4-4-12 hex, the shape of WeChat v3 notification ids.
fn notification_id() -> String {
    let h = hex::encode(cashdesk_crypto::random::bytes(16));
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl Shared {
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

    /// The payer paid (or failed): update the order and notify.
    pub(crate) fn pay(
        &self,
        mch_id: &str,
        out_trade_no: &str,
        success: bool,
        openid: Option<String>,
        via: &str,
    ) -> Result<Order, LedgerError> {
        let now = chrono::Utc::now();
        let existing = self
            .ledger
            .find(mch_id, &OrderRef::OutTradeNo(out_trade_no.to_owned()));
        let api = existing.as_ref().map(|o| o.api);
        let result = match api {
            // Alipay has no failed state: a payment that does not happen
            // leaves the trade to be closed (as its timeout does).
            Some(Api::Alipay) if !success => self.ledger.close(mch_id, out_trade_no, now),
            Some(Api::Alipay) => {
                let buyer = openid.or_else(|| Some(alipay::new_buyer_id()));
                self.ledger.pay(mch_id, out_trade_no, true, buyer, now)
            }
            Some(Api::Lakala) => {
                let payer = openid.or_else(|| existing.as_ref().and_then(lakala::default_payer));
                self.ledger.pay(mch_id, out_trade_no, success, payer, now)
            }
            _ => self.ledger.pay(mch_id, out_trade_no, success, openid, now),
        };
        self.log.push(NewEntry {
            kind: "payer",
            method: "POST",
            target: out_trade_no,
            mch_id: Some(mch_id),
            status: if result.is_ok() { 200 } else { 409 },
            result: match &result {
                Ok(_) if success => "PAID",
                Ok(_) if api == Some(Api::Alipay) => "CLOSED",
                Ok(_) => "PAYERROR",
                Err(_) => "REFUSED",
            },
            detail: Some(format!("via {via}")),
            request_body: None,
        });
        let order = result?;
        self.notify_payment(&order);
        Ok(order)
    }

    pub(crate) fn notify_payment(&self, o: &Order) {
        if o.notify_url.is_empty() {
            return;
        }
        match o.api {
            Api::Alipay => {
                let faults = self.faults.take_notify_for("ali-pay", &o.mch_id);
                let (id, body) = alipay::notification(self, o, None, &faults);
                self.enqueue(
                    id,
                    &o.mch_id,
                    &o.out_trade_no,
                    &o.notify_url,
                    "pay",
                    body,
                    Format::Alipay,
                    &faults,
                );
                return;
            }
            Api::Lakala => {
                // Like v3, no failed-payment notification: the merchant
                // finds out by query (UNCONFIRMED, see `lakala`).
                if o.paid().is_none() {
                    return;
                }
                let faults = self.faults.take_notify_for("lakala", &o.mch_id);
                let body = lakala::notification_body(o, &faults, chrono::Utc::now());
                let format = Format::Lakala {
                    tamper_signature: faults.tamper_signature,
                };
                let id = notification_id();
                self.enqueue(
                    id,
                    &o.mch_id,
                    &o.out_trade_no,
                    &o.notify_url,
                    "pay",
                    body,
                    format,
                    &faults,
                );
                return;
            }
            Api::V2(_) | Api::V3 => {}
        }
        let Some(m) = self.wechat_signer(o) else {
            return;
        };
        if o.api == Api::V3 && o.paid().is_none() {
            // v3 has no failed-payment event: the merchant finds out by query.
            return;
        }
        let faults = self.faults.take_notify(&o.mch_id);
        let id = notification_id();
        let (body, format) = match o.api {
            Api::V2(sign_type) => (notify::v2_pay(&m, o, sign_type, &faults), Format::V2),
            Api::Alipay | Api::Lakala => return,
            Api::V3 => {
                let mut plain = v3::transaction_json(o, chrono::Utc::now());
                if faults.tamper_amount {
                    plain["amount"]["total"] = json!(o.total + 1);
                    plain["amount"]["payer_total"] = json!(o.total + 1);
                }
                match notify::v3_body(
                    &m,
                    &id,
                    "TRANSACTION.SUCCESS",
                    "支付成功",
                    "transaction",
                    &plain,
                ) {
                    Ok(body) => (
                        body,
                        Format::V3 {
                            tamper_signature: faults.tamper_signature,
                        },
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "building a v3 notification failed");
                        return;
                    }
                }
            }
        };
        self.enqueue(
            id,
            &o.mch_id,
            &o.out_trade_no,
            &o.notify_url,
            "pay",
            body,
            format,
            &faults,
        );
    }

    pub(crate) fn notify_refund(&self, r: &Refund) {
        if r.api == Api::Alipay {
            // Alipay reports a refund as a trade notification to the
            // order's notify_url (carried in `r.notify_url`).
            let (Some(url), Some(o)) = (
                r.notify_url.as_deref().filter(|u| !u.is_empty()),
                self.ledger
                    .find(&r.mch_id, &OrderRef::OutTradeNo(r.out_trade_no.clone())),
            ) else {
                return;
            };
            let faults = self.faults.take_notify_for("ali-pay", &r.mch_id);
            let (id, body) = alipay::notification(self, &o, Some(r), &faults);
            self.enqueue(
                id,
                &r.mch_id,
                &r.out_trade_no,
                url,
                "refund",
                body,
                Format::Alipay,
                &faults,
            );
            return;
        }
        let order = self
            .ledger
            .find(&r.mch_id, &OrderRef::OutTradeNo(r.out_trade_no.clone()));
        let (Some(m), Some(url)) = (
            order.as_ref().and_then(|o| self.wechat_signer(o)),
            r.notify_url.as_deref(),
        ) else {
            return;
        };
        let partner = order.as_ref().and_then(|o| o.partner().cloned());
        let faults = self.faults.take_notify(&r.mch_id);
        let id = notification_id();
        let (body, format) = match r.api {
            Api::V2(_) => (
                notify::v2_refund(&m, r, partner.as_ref(), &faults),
                Format::V2,
            ),
            Api::Alipay | Api::Lakala => return,
            Api::V3 => {
                let amount = r.amount + i64::from(faults.tamper_amount);
                let mut plain = json!({
                    "mchid": r.mch_id,
                    "out_trade_no": r.out_trade_no,
                    "transaction_id": r.transaction_id,
                    "out_refund_no": r.out_refund_no,
                    "refund_id": r.refund_id,
                    "refund_status": "SUCCESS",
                    "success_time": r.success_at.map(cashdesk_core::time::to_rfc3339_cn),
                    "user_received_account": "支付用户零钱",
                    "amount": {"total": r.total, "refund": amount, "payer_total": r.total, "payer_refund": amount},
                });
                if let (Some(p), Some(o)) = (&partner, plain.as_object_mut()) {
                    // A partner refund names the service provider and the
                    // sub-merchant instead of mchid.
                    o.remove("mchid");
                    o.insert("sp_mchid".into(), json!(p.sp_mch_id));
                    o.insert("sub_mchid".into(), json!(r.mch_id));
                }
                match notify::v3_body(&m, &id, "REFUND.SUCCESS", "退款成功", "refund", &plain) {
                    Ok(body) => (
                        body,
                        Format::V3 {
                            tamper_signature: faults.tamper_signature,
                        },
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "building a v3 refund notification failed");
                        return;
                    }
                }
            }
        };
        self.enqueue(
            id,
            &r.mch_id,
            &r.out_trade_no,
            url,
            "refund",
            body,
            format,
            &faults,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn enqueue(
        &self,
        id: String,
        mch_id: &str,
        out_trade_no: &str,
        url: &str,
        what: &'static str,
        body: String,
        format: Format,
        faults: &faults::NotifyFaults,
    ) {
        if faults.drop {
            self.log.push(NewEntry {
                kind: "notify",
                method: "POST",
                target: url,
                mch_id: Some(mch_id),
                status: 0,
                result: "DROPPED",
                detail: Some(format!(
                    "{what} notification {id} dropped by fault injection"
                )),
                request_body: Some(&body),
            });
            return;
        }
        let _ = self.notifier.send(Msg::Send(Job {
            id,
            mch_id: mch_id.to_owned(),
            out_trade_no: out_trade_no.to_owned(),
            url: url.to_owned(),
            what,
            body,
            format,
            copies: faults.copies,
            delay: faults.delay,
        }));
    }

    pub(crate) fn schedule_refund_completion(&self, r: &Refund) {
        let _ = self.notifier.send(Msg::CompleteRefund {
            mch_id: r.mch_id.clone(),
            out_refund_no: r.out_refund_no.clone(),
        });
    }
}
