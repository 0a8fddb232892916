//! [`Sandbox`], a running sandbox: its start (keys, merchants and order
//! book loaded off the async workers, the HTTPS listener with a
//! certificate for its names, the notifier, the journal flusher), its URLs
//! and merchant openers for hosts and tests, and its shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use cashdesk_crypto::wxv2::WxSignType;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::{
    AlipayAuthCredentials, AlipayMerchantCredentials, LakalaMerchantCredentials,
    LakalaStoreCredentials, MerchantCredentials, SandboxConfig, Shared, SubMerchantCredentials,
    alipay, api, bills, clock, faults, lakala, ledger, merchants, notify, oauth, page, pki, reqlog,
    store, subscribe, targets, tls, v2, v2bill, v3,
};

/// How long an accepted refund stays PROCESSING before it succeeds and its
/// notification goes out.
const REFUND_SETTLE: Duration = Duration::from_millis(100);

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
            clock: clock::Clock::default(),
            downloads: bills::Downloads::default(),
            log: reqlog::RequestLog::default(),
            oauth: oauth::Codes::default(),
            subscribe_tokens: subscribe::tokens::Tokens::default(),
            subscribe_inbox: subscribe::inbox::Inbox::default(),
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

    /// Move the sandbox's clock to the real time plus `offset`
    /// ([`crate::clock`]; at most [`crate::clock::MAX_OFFSET`] either way).
    pub fn set_clock_offset(&self, offset: chrono::TimeDelta) -> Result<(), String> {
        self.shared.clock.set_offset(offset)
    }

    /// The sandbox's now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.now()
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
        .merge(v2bill::router())
        .merge(v3::router())
        .merge(alipay::router())
        .merge(lakala::router())
        .merge(page::router())
        .merge(oauth::router())
        .merge(subscribe::router())
        .merge(api::router())
        .with_state(shared)
}
