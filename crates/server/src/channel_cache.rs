//! Channel adapters per channel config, built from the unsealed credentials
//! with [`cashdesk_channels::build_channel`] and cached by config id.
//!
//! Building an adapter parses keys and builds TLS clients, so it is done
//! once per config, not per request. Every lookup still reads the config
//! row (the caller needs it anyway) and compares a fingerprint of what the
//! adapter was built from (api version, mch id, base URL, sealed
//! credentials): a config changed by another instance sharing the database
//! is rebuilt on first use, without any cross-instance signalling.
//! Disabling a config drops its adapter ([`ChannelCache::invalidate`]);
//! enabling it again rebuilds on first use.
//!
//! Whether a disabled config may still be used is the caller's decision:
//! new payments never reach one (bound channels exclude disabled configs),
//! but notifications, queries and closes for orders already at the channel
//! still go through, because money may already have moved.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cashdesk_channels::{Channel, ChannelEnv, HttpSettings, build_channel};
use cashdesk_core::ConfigId;
use cashdesk_crypto::digest;
use cashdesk_store::ChannelConfig;
use serde_json::Value;

use crate::service::channels::credentials_aad;
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;

/// An adapter and the fingerprint of the config it was built from.
type Entry = (String, Arc<dyn Channel>);

#[derive(Default)]
pub struct ChannelCache {
    inner: RwLock<HashMap<ConfigId, Entry>>,
}

impl ChannelCache {
    /// Drops the adapter of `config_id` (config disabled or changed).
    pub fn invalidate(&self, config_id: &ConfigId) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(config_id);
    }

    /// The adapter last built for `config_id`, without reading the config:
    /// only to answer in the channel's format (a rate-limited notification),
    /// never to verify or call anything.
    pub fn cached(&self, config_id: &ConfigId) -> Option<Arc<dyn Channel>> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.get(config_id).map(|(_, c)| c.clone())
    }

    fn get(&self, config_id: &ConfigId, fingerprint: &str) -> Option<Arc<dyn Channel>> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.get(config_id)
            .filter(|(f, _)| f == fingerprint)
            .map(|(_, c)| c.clone())
    }

    fn put(&self, config_id: &ConfigId, fingerprint: String, channel: Arc<dyn Channel>) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(config_id.clone(), (fingerprint, channel));
    }
}

fn fingerprint(c: &ChannelConfig) -> String {
    let mut material = Vec::new();
    for part in [
        c.channel_type.as_str().as_bytes(),
        c.api_version.as_deref().unwrap_or("").as_bytes(),
        c.mch_id.as_bytes(),
        c.base_url.as_deref().unwrap_or("").as_bytes(),
        &c.credentials_sealed,
    ] {
        material.extend_from_slice(&(part.len() as u64).to_be_bytes());
        material.extend_from_slice(part);
    }
    hex::encode(digest::sha256(&material))
}

/// The notify URL of one config.
pub fn notify_url(state: &AppState, config_id: &ConfigId) -> String {
    format!("{}/api/cashier-desk/notify/{config_id}", state.public_url)
}

/// The credentials of `c` in clear (never logged, never returned).
pub fn unseal_credentials(state: &AppState, c: &ChannelConfig) -> ServiceResult<Value> {
    let plain = state
        .master_key
        .open(
            &c.credentials_sealed,
            credentials_aad(&c.config_id).as_bytes(),
        )
        .map_err(|e| {
            ServiceError::internal(anyhow::anyhow!(
                "cannot open credentials of {}: {e}",
                c.config_id
            ))
        })?;
    serde_json::from_slice(&plain).map_err(|e| {
        ServiceError::internal(anyhow::anyhow!(
            "credentials of {} are not JSON: {e}",
            c.config_id
        ))
    })
}

/// The `ChannelEnv` every adapter of this server gets.
pub fn channel_env(state: &AppState, config_id: &ConfigId) -> ChannelEnv {
    let timeout = std::time::Duration::from_millis(state.config.channel_timeout_ms);
    ChannelEnv {
        public_url: state.public_url.clone(),
        notify_url: notify_url(state, config_id),
        http: HttpSettings {
            connect_timeout: timeout.min(std::time::Duration::from_secs(5)),
            timeout,
        },
        // The adapters add the config's own `caCertPem`; the server trusts
        // nothing more by default.
        extra_root_ca_pems: Vec::new(),
        oauth_base_url: oauth_base_url(state),
    }
}

/// Where channels' web OAuth goes (WeChat's, for JSAPI payers on the
/// cashier page): `wechat_oauth_base_url` when set, else the sandbox when
/// it runs (where it answers: the public URL, or its own loopback
/// listener), else (`None`) the channel's own hosts.
fn oauth_base_url(state: &AppState) -> Option<String> {
    match &state.config.wechat_oauth_base_url {
        Some(base) => Some(base.trim_end_matches('/').to_owned()),
        None => state
            .edge
            .posture
            .sandbox_url
            .as_ref()
            .map(|sandbox| format!("{sandbox}/sandbox/wechat")),
    }
}

/// The adapter for `config` (built or from the cache), wrapped so its
/// order calls are recorded ([`crate::service::timeline::Recorded`]). A config whose
/// stored credentials cannot build an adapter is a 502 CHANNEL_ERROR that
/// names the problem (the operator must fix the config).
pub fn adapter(state: &AppState, config: &ChannelConfig) -> ServiceResult<Arc<dyn Channel>> {
    let fp = fingerprint(config);
    if let Some(c) = state.channels.get(&config.config_id, &fp) {
        return Ok(c);
    }
    let channel = build(state, config)?;
    // Its order calls land in the order timeline.
    let channel = crate::service::timeline::recorded(channel, state.store.clone());
    state.channels.put(&config.config_id, fp, channel.clone());
    Ok(channel)
}

/// A new adapter for `config` from its stored credentials, neither cached
/// nor recorded (the connection test's: it asks about no order of ours).
pub fn build(state: &AppState, config: &ChannelConfig) -> ServiceResult<Arc<dyn Channel>> {
    let credentials = unseal_credentials(state, config)?;
    let channel = build_channel(
        config.channel_type,
        config.api_version.as_deref().unwrap_or(""),
        &config.mch_id,
        &credentials,
        config.base_url.as_deref(),
        &channel_env(state, &config.config_id),
    )
    .map_err(|e| {
        tracing::error!(config_id = %config.config_id, error = %e, "channel config cannot be used");
        ServiceError::ChannelAnswer(format!(
            "channel config {} cannot be used: {e}",
            config.config_id
        ))
    })?;
    Ok(channel)
}
