//! cashdesk-shop: a reference merchant on the cashdesk SDK, for merchants
//! to copy. A buy-now shop with its own SQLite database:
//!
//! - goods with stock; buy-now reserves stock and makes an order in one
//!   transaction, and reuses the user's pending order for the same goods
//!   (for `reuse_days`) instead of making another ([`orders`]);
//! - cashdesk is asked for the order with the same `outTradeNo` and body
//!   every time, which it answers idempotently, and for the mini-program's
//!   `payData`;
//! - cashdesk's signed notifications settle an order once: stock taken on
//!   `PAY_SUCCESS`, the reservation given back on `PAY_CLOSED` ([`http`],
//!   [`db`]);
//! - the buyer's refund application goes to cashdesk and the shop's staff
//!   decide it ([`refunds`]).
//!
//! [`Shop::build`] binds the listener (port 0 in tests) so tests and
//! `main.rs` start the same thing.

pub mod config;
pub mod db;
pub mod http;
pub mod orders;
pub mod refunds;

use std::net::SocketAddr;

use anyhow::Context as _;
use cashdesk_sdk::SignatureVerifier;
use tokio::net::TcpListener;

pub use config::{Gateway, ShopConfig};
pub use db::Db;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// cashdesk's merchant API, as this shop's app.
    pub gateway: cashdesk_sdk::Client,
    /// Checks cashdesk's notifications.
    pub verifier: SignatureVerifier,
    /// The notify URL given to cashdesk (notifications are signed over it).
    pub notify_url: String,
    pub channel_id: Option<String>,
    pub expire_minutes: u32,
    pub reuse_days: u32,
}

pub struct Shop {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
}

impl Shop {
    pub async fn build(config: ShopConfig) -> anyhow::Result<Shop> {
        anyhow::ensure!(
            (1..=1440).contains(&config.expire_minutes),
            "expire minutes must be 1..=1440 (cashdesk's limit)"
        );
        let gateway = Gateway::resolve(&config)?;
        let db = Db::open(&config.database)
            .await
            .with_context(|| format!("opening {}", config.database.display()))?;
        if config.seed_goods && db.list_goods().await?.is_empty() {
            db.add_goods("coffee", "Coffee", 1, 100).await?;
            db.add_goods("tea", "Tea", 2, 5).await?;
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let notify_url = format!("{}{}", public_url.trim_end_matches('/'), http::NOTIFY_PATH);
        let client =
            cashdesk_sdk::Client::new(&gateway.url, &gateway.app_id, gateway.credentials.clone())?;
        let verifier = SignatureVerifier::new(gateway.app_id.clone(), &gateway.credentials)?;
        let state = AppState {
            db,
            gateway: client,
            verifier,
            notify_url,
            channel_id: gateway.channel_id,
            expire_minutes: config.expire_minutes,
            reuse_days: config.reuse_days,
        };
        Ok(Shop {
            listener,
            local_addr,
            state,
        })
    }

    /// `http://<bound address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets requests in flight end.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr, notify_url = %self.state.notify_url,
            channel = ?self.state.channel_id, "shop serving");
        // Once a minute: pending orders 10 minutes past cashdesk's expiry
        // (its expiry worker runs every second) are closed from here.
        let sweeper = {
            let state = self.state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let before = orders::now() - i64::from(state.expire_minutes) * 60 - 600;
                    if let Err(e) = orders::sweep(&state, before).await {
                        tracing::warn!(error = %e, "sweep");
                    }
                }
            })
        };
        let served = axum::serve(self.listener, http::router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving");
        sweeper.abort();
        served
    }
}
