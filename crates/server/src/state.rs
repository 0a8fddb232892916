//! The state every handler sees: the store, the master key, the config,
//! cashdesk's platform key pairs, the metrics and the channel adapters. Cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use cashdesk_crypto::Secret;
use cashdesk_crypto::rsa::RsaPrivateKey;
use cashdesk_crypto::secretbox::MasterKey;
use cashdesk_crypto::sm::Sm2PrivateKey;
use cashdesk_store::Store;

use crate::channel_cache::ChannelCache;
use crate::config::Config;
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
}

#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
