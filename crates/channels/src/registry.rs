//! Building adapters from channel configs.
//!
//! Each channel module exports one [`ChannelFactory`]; [`FACTORIES`] lists
//! them. The server calls [`build_channel`] with a config's fields and gets an
//! `Arc<dyn Channel>`; the admin API calls [`validate_credentials`] to refuse
//! a bad config before it is stored. A factory also declares the channel's
//! [`ChannelMeta`] (names, scenes, capabilities; [`channel_meta`]), so the
//! server keeps no per-channel table. Adding a channel adds a module and one
//! entry in [`FACTORIES`]; nothing else matches on the channel type.
//!
//! `apiVersion` may be left out for a channel that speaks one version
//! (Alipay's `gateway.do` is `v2`, Lakala's labs API `v3`): its
//! [`ChannelFactory::default_api_version`] applies. WeChat Pay has two
//! versions with different credentials, so there it stays required. A
//! version that is given is always checked.

use std::sync::Arc;

use cashdesk_core::ChannelType;

use crate::channel::Channel;
use crate::error::ChannelError;
use crate::http::HttpSettings;
use crate::meta::ChannelMeta;

/// What every adapter gets from the server besides its config.
#[derive(Debug, Clone)]
pub struct ChannelEnv {
    /// cashdesk's public base URL (e.g. `https://pay.example.com`), used
    /// where a channel wants the merchant's site (WeChat H5 `wap_url`).
    pub public_url: String,
    /// The full notify URL of this config:
    /// `{public_url}/api/cashier-desk/notify/{configId}`.
    pub notify_url: String,
    pub http: HttpSettings,
    /// Extra trusted root CA certificates (PEM) for outbound HTTPS, on top
    /// of the web PKI roots. Verification is never turned off.
    pub extra_root_ca_pems: Vec<String>,
    /// Replaces the production hosts of the channel's web OAuth (WeChat's
    /// `open.weixin.qq.com` and `api.weixin.qq.com`, see
    /// [`crate::PayerOAuth`]): the sandbox, a test double. `None`: the
    /// channel's own.
    pub oauth_base_url: Option<String>,
}

/// One config's identity, as stored.
#[derive(Debug, Clone, Copy)]
pub struct ChannelSpec<'a> {
    pub api_version: &'a str,
    pub mch_id: &'a str,
    pub credentials: &'a serde_json::Value,
    /// Replaces the channel's production base URL (sandbox, test doubles).
    pub base_url: Option<&'a str>,
}

/// What a valid store identity amounts to (see [`validate_store_identity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySummary {
    /// The merchant id the store is paid to at the channel (WeChat
    /// `sub_mch_id`, Lakala `merchant_no`, Alipay seller id); `None` when
    /// the identity does not name one (the config's `mchId` stands).
    pub mch_id: Option<String>,
    /// Fields whose values are secrets: shown masked, never logged.
    pub secret_fields: &'static [&'static str],
}

/// Builds one channel's adapters and says what the channel is.
pub trait ChannelFactory: Sync {
    /// The channel's names, scenes and capabilities.
    fn meta(&self) -> &'static ChannelMeta;
    fn channel_type(&self) -> ChannelType {
        self.meta().channel_type
    }
    /// Accepted `apiVersion` values (lowercase).
    fn api_versions(&self) -> &'static [&'static str];
    /// The version used when a config gives none; `None` = `apiVersion`
    /// is required.
    fn default_api_version(&self) -> Option<&'static str> {
        None
    }
    /// Check credentials for `api_version` (already known to be accepted).
    fn validate(&self, api_version: &str, credentials: &serde_json::Value) -> Result<(), String>;
    /// Check a store's own merchant identity for configs of this channel
    /// and `api_version` (the [`crate::StoreMerchant`] fields its adapters
    /// read). The default: this channel has none.
    fn validate_store_identity(
        &self,
        api_version: &str,
        identity: &serde_json::Value,
    ) -> Result<IdentitySummary, String> {
        let _ = (api_version, identity);
        Err(format!(
            "{} has no per-store merchant identity",
            self.channel_type()
        ))
    }
    fn build(
        &self,
        spec: &ChannelSpec<'_>,
        env: &ChannelEnv,
    ) -> Result<Arc<dyn Channel>, ChannelError>;
}

/// Every channel cashdesk can speak to.
pub static FACTORIES: &[&dyn ChannelFactory] = &[
    &crate::wechat::WechatFactory,
    &crate::alipay::AlipayFactory,
    &crate::lakala::LakalaFactory,
];

fn factory(channel_type: ChannelType) -> Option<&'static dyn ChannelFactory> {
    FACTORIES
        .iter()
        .copied()
        .find(|f| f.channel_type() == channel_type)
}

/// What cashdesk knows about a channel type (see [`crate::meta`]); `None`
/// for a type no factory builds.
pub fn channel_meta(channel_type: ChannelType) -> Option<&'static ChannelMeta> {
    factory(channel_type).map(|f| f.meta())
}

/// Every channel type cashdesk can speak to, in registry order.
pub fn channel_types() -> impl Iterator<Item = ChannelType> {
    FACTORIES.iter().map(|f| f.channel_type())
}

fn checked_version(f: &dyn ChannelFactory, api_version: &str) -> Result<String, String> {
    let v = api_version.trim().to_ascii_lowercase();
    if v.is_empty() {
        return f.default_api_version().map(str::to_owned).ok_or_else(|| {
            format!(
                "apiVersion is required for {} (one of {})",
                f.channel_type(),
                f.api_versions().join(", ")
            )
        });
    }
    if f.api_versions().contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(format!(
            "apiVersion `{api_version}` is not supported for {} (expected one of {})",
            f.channel_type(),
            f.api_versions().join(", ")
        ))
    }
}

/// The version a config speaks: `api_version` checked and lowercased, or
/// the channel's default when it is absent or empty.
pub fn resolve_api_version(
    channel_type: ChannelType,
    api_version: Option<&str>,
) -> Result<String, String> {
    let f = factory(channel_type)
        .ok_or_else(|| format!("channel type {channel_type} is not available yet"))?;
    checked_version(f, api_version.unwrap_or(""))
}

/// Refuse credentials that could not work, with a message for the operator
/// (names the field; never echoes a secret).
pub fn validate_credentials(
    channel_type: ChannelType,
    api_version: &str,
    credentials: &serde_json::Value,
) -> Result<(), String> {
    let f = factory(channel_type)
        .ok_or_else(|| format!("channel type {channel_type} is not available yet"))?;
    let v = checked_version(f, api_version)?;
    f.validate(&v, credentials)
}

/// Refuse a store identity the config's adapter could not use, with a
/// message for the operator (names the field; never echoes a secret);
/// otherwise what it amounts to. Checked when the identity is stored, as
/// credentials are.
pub fn validate_store_identity(
    channel_type: ChannelType,
    api_version: &str,
    identity: &serde_json::Value,
) -> Result<IdentitySummary, String> {
    let f = factory(channel_type)
        .ok_or_else(|| format!("channel type {channel_type} is not available yet"))?;
    let v = checked_version(f, api_version)?;
    if !identity.is_object() {
        return Err("identity must be a JSON object".to_owned());
    }
    f.validate_store_identity(&v, identity)
}

/// Build the adapter for one channel config.
pub fn build_channel(
    channel_type: ChannelType,
    api_version: &str,
    mch_id: &str,
    credentials: &serde_json::Value,
    base_url: Option<&str>,
    env: &ChannelEnv,
) -> Result<Arc<dyn Channel>, ChannelError> {
    let f = factory(channel_type).ok_or_else(|| {
        ChannelError::config(format!("channel type {channel_type} is not available yet"))
    })?;
    let v = checked_version(f, api_version).map_err(ChannelError::config)?;
    f.validate(&v, credentials).map_err(ChannelError::config)?;
    if mch_id.trim().is_empty() {
        return Err(ChannelError::config("mchId is required"));
    }
    let spec = ChannelSpec {
        api_version: &v,
        mch_id,
        credentials,
        base_url: base_url.filter(|s| !s.trim().is_empty()),
    };
    f.build(&spec, env)
}
