//! The state every handler sees: the store, the master key, the config,
//! cashdesk's platform key pairs, the metrics, the channel adapters, this
//! instance's identity, the outbox worker's wake-up signal and the HTTP
//! edge's state. Cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use cashdesk_crypto::Secret;
use cashdesk_crypto::rsa::RsaPrivateKey;
use cashdesk_crypto::secretbox::MasterKey;
use cashdesk_crypto::sm::Sm2PrivateKey;
use cashdesk_store::Store;

use crate::channel_cache::ChannelCache;
use crate::config::Config;
use crate::edge::Edge;
use crate::metrics::Metrics;

/// cashdesk's own key pairs: they sign responses and notifications for
/// RSA2/SM2 apps. Generated once per database, stored sealed.
pub struct PlatformKeys {
    pub rsa: RsaPrivateKey,
    pub sm2: Sm2PrivateKey,
    pub rsa_public_pem: String,
    pub sm2_public_pem: String,
}

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub master_key: MasterKey,
    pub config: Config,
    /// Without a trailing slash.
    pub public_url: String,
    pub platform: PlatformKeys,
    pub metrics: Metrics,
    pub admin_token: Secret,
    /// Channel adapters by config id.
    pub channels: ChannelCache,
    /// When each config was last reconciled after a key-problem
    /// notification (one reconciliation per config per interval).
    pub reconciled_at:
        std::sync::Mutex<std::collections::HashMap<cashdesk_core::ConfigId, std::time::Instant>>,
    /// This instance in leases and attempt logs: `host:pid:uuid`, unique
    /// per process and application.
    pub instance_id: String,
    /// Wakes this instance's notification delivery worker when a terminal
    /// event has written an outbox row (other instances find it by polling).
    pub outbox_wake: tokio::sync::Notify,
    /// `POST /payment` calls in flight, one per order at a time.
    pub payment_flights: crate::service::payments::PaymentFlights,
    /// Posture, rate limits, trusted proxies, sampled warnings.
    pub edge: Edge,
}

/// `host:pid:uuid` for [`Inner::instance_id`].
pub fn new_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let id = cashdesk_crypto::random::nonce_str(12);
    format!("{host}:{}:{id}", std::process::id())
}

#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
