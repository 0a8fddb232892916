//! WeChat Pay (`wx-pay`): API v2 ([`v2`], XML, MD5 / HMAC-SHA256) and API v3
//! ([`v3`], JSON, SHA256withRSA), chosen by the config's `apiVersion`.
//!
//! This module owns what both versions share: the channel's factory
//! (credential validation and construction), the credential shapes, the
//! scene → trade type mapping and URL joining. Wire types live in [`wire`].
//!
//! Service-provider mode (服务商模式): a config may be a service provider's
//! account whose stores are its sub-merchants. A store's identity
//! ([`wire::SubMerchantIdentity`], `{subMchId, subAppId?}`) makes every call
//! for its orders a partner call: v2 adds `sub_mch_id` (and `sub_appid`,
//! the payer as `sub_openid`) to unifiedorder, orderquery, closeorder,
//! refund and refundquery; v3 uses `/v3/pay/partner/transactions/…`
//! (`sp_appid`, `sp_mchid`, `sub_appid`, `sub_mchid`, `payer.sp_openid` or
//! `payer.sub_openid`), `?sp_mchid=&sub_mchid=` on query, `sub_mchid` on
//! refunds. Signing is the service provider's, as WeChat requires.
//! Notifications of partner orders carry the sub-merchant, which
//! [`crate::Channel::check_merchant`] compares with the order's store.
//!
//! Base URLs may carry a path prefix (the sandbox is mounted under
//! `/sandbox/wechat`); requests go to `base + "/" + api path`, and v3 signs the
//! full path of the URL actually requested (prefix included), as any HTTP
//! client of WeChat does.

pub mod v2;
pub mod v3;
pub mod wire;

use std::sync::Arc;

use cashdesk_core::{ChannelType, SceneCode};
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use url::Url;

use crate::channel::Channel;
use crate::error::ChannelError;
use crate::registry::{ChannelEnv, ChannelFactory, ChannelSpec, IdentitySummary};
use wire::{SubMerchantIdentity, V2Credentials, V3Credentials};

/// WeChat Pay's production API host.
pub const PRODUCTION_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// Scenes both versions support.
pub const SCENES: &[SceneCode] = &[
    SceneCode::Mini,
    SceneCode::Jsapi,
    SceneCode::Native,
    SceneCode::H5,
    SceneCode::App,
];

/// How WeChat names a scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TradeKind {
    Jsapi,
    Native,
    H5,
    App,
}

impl TradeKind {
    pub(crate) fn for_scene(scene: SceneCode) -> Result<Self, ChannelError> {
        match scene {
            SceneCode::Mini | SceneCode::Jsapi => Ok(Self::Jsapi),
            SceneCode::Native => Ok(Self::Native),
            SceneCode::H5 => Ok(Self::H5),
            SceneCode::App => Ok(Self::App),
            other => Err(ChannelError::invalid_request(format!(
                "scene {other} is not available on WeChat Pay (use mini, jsapi, native, h5 or app)"
            ))),
        }
    }
}

/// The factory registered in [`crate::registry::FACTORIES`].
pub struct WechatFactory;

impl ChannelFactory for WechatFactory {
    fn channel_type(&self) -> ChannelType {
        ChannelType::WxPay
    }

    fn api_versions(&self) -> &'static [&'static str] {
        &["v2", "v3"]
    }

    fn validate(&self, api_version: &str, credentials: &serde_json::Value) -> Result<(), String> {
        match api_version {
            "v2" => V2Credentials::parse(credentials)?.check().map(|_| ()),
            _ => V3Credentials::parse(credentials)?.check().map(|_| ()),
        }
    }

    /// Both versions: `{subMchId, subAppId?}` (service-provider mode).
    fn validate_store_identity(
        &self,
        _api_version: &str,
        identity: &serde_json::Value,
    ) -> Result<IdentitySummary, String> {
        let checked = SubMerchantIdentity::parse(identity)?.check()?;
        Ok(IdentitySummary {
            mch_id: Some(checked.sub_mch_id),
            secret_fields: &[],
        })
    }

    fn build(
        &self,
        spec: &ChannelSpec<'_>,
        env: &ChannelEnv,
    ) -> Result<Arc<dyn Channel>, ChannelError> {
        let base = parse_base_url(spec.base_url.unwrap_or(PRODUCTION_BASE_URL))
            .map_err(ChannelError::config)?;
        match spec.api_version {
            "v2" => {
                let creds = V2Credentials::parse(spec.credentials).map_err(ChannelError::config)?;
                Ok(Arc::new(v2::WxPayV2::new(spec.mch_id, creds, base, env)?))
            }
            _ => {
                let creds = V3Credentials::parse(spec.credentials).map_err(ChannelError::config)?;
                Ok(Arc::new(v3::WxPayV3::new(spec.mch_id, creds, base, env)?))
            }
        }
    }
}

/// [`crate::Channel::check_merchant`] for both versions: the sub-merchant
/// a notification names (`key`: v2 `sub_mch_id`, v3 `sub_mchid`) must be
/// the store's, and a notification for the config's own orders must name
/// none. `app_key` (`sub_appid`) is compared when both sides have one.
pub(crate) fn check_sub_merchant(
    notified: &crate::NotifiedMerchant,
    store: Option<&crate::StoreMerchant>,
    key: &str,
    app_key: &str,
) -> Result<(), crate::NotifyError> {
    let sub = wire::SubMerchant::of(store)
        .map_err(|e| crate::NotifyError::mismatch(e.message().to_owned()))?;
    let got = notified.get(key);
    match (&sub, got) {
        (None, None) => return Ok(()),
        (Some(s), Some(g)) if s.sub_mch_id == g => {}
        (Some(s), g) => {
            return Err(crate::NotifyError::mismatch(format!(
                "{key} `{}` is not the sub-merchant {} of store {}",
                g.unwrap_or(""),
                s.sub_mch_id,
                store.map_or("", |s| s.store_id.as_str())
            )));
        }
        (None, Some(g)) => {
            return Err(crate::NotifyError::mismatch(format!(
                "{key} `{g}` names a sub-merchant, the order is paid to the config's own account"
            )));
        }
    }
    if let (Some(want), Some(got)) = (
        sub.as_ref().and_then(|s| s.sub_app_id.as_deref()),
        notified.get(app_key),
    ) && want != got
    {
        return Err(crate::NotifyError::mismatch(format!(
            "{app_key} `{got}` is not the store's AppID {want}"
        )));
    }
    Ok(())
}

/// The AppID a JSAPI/mini payer's openid belongs to, and whether it is
/// the store's own (sent as `sub_openid`) rather than the config's
/// (`openid`, or `sp_openid` for a partner order). `wanted` is the
/// request's [`crate::PayRequest::payer_app_id`]; `None` means the store's
/// AppID when it has one, else the config's.
pub(crate) fn payer_app(
    config_app_id: &str,
    sub: Option<&wire::SubMerchant>,
    wanted: Option<&str>,
) -> Result<(String, bool), ChannelError> {
    let store_app = sub.and_then(|s| s.sub_app_id.as_deref());
    match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        None => Ok(store_app.map_or_else(
            || (config_app_id.to_owned(), false),
            |a| (a.to_owned(), true),
        )),
        Some(w) if store_app == Some(w) => Ok((w.to_owned(), true)),
        Some(w) if w == config_app_id => Ok((w.to_owned(), false)),
        Some(w) => Err(ChannelError::invalid_request(format!(
            "openidAppId `{w}` is neither the channel config's AppID nor the store's subAppId"
        ))),
    }
}

/// An http(s) base URL without query or fragment.
pub(crate) fn parse_base_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("base URL `{s}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("base URL `{s}` must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "base URL `{s}` must not have credentials, a query or a fragment"
        ));
    }
    Ok(url)
}

/// `base` + `path` (path starts with `/` or not; query allowed in `path`).
pub(crate) fn join_url(base: &Url, path: &str) -> String {
    let b = base.as_str().trim_end_matches('/');
    let p = path.trim_start_matches('/');
    format!("{b}/{p}")
}

/// At most `max` bytes of `s`, cut on a character boundary.
pub(crate) fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A non-empty, trimmed field.
pub(crate) fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, String> {
    let v = value.trim();
    if v.is_empty() {
        Err(format!("credentials.{field} is required"))
    } else {
        Ok(v)
    }
}

pub(crate) fn parse_private_key(field: &str, pem: &str) -> Result<RsaPrivateKey, String> {
    RsaPrivateKey::from_pem(pem)
        .map_err(|e| format!("credentials.{field} is not a usable RSA private key: {e}"))
}

pub(crate) fn parse_public_key(field: &str, pem: &str) -> Result<RsaPublicKey, String> {
    RsaPublicKey::from_pem(pem)
        .map_err(|e| format!("credentials.{field} is not a usable RSA public key: {e}"))
}

pub(crate) fn check_ca_pem(pem: &str) -> Result<(), String> {
    match reqwest::Certificate::from_pem_bundle(pem.as_bytes()) {
        Ok(c) if !c.is_empty() => Ok(()),
        Ok(_) => Err("credentials.caCertPem holds no certificate".into()),
        Err(e) => Err(format!(
            "credentials.caCertPem is not a PEM certificate: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payer_is_a_user_of_the_store_or_the_config_app() {
        let with = wire::SubMerchant {
            sub_mch_id: "1900000109".into(),
            sub_app_id: Some("wxStore".into()),
        };
        let without = wire::SubMerchant {
            sub_app_id: None,
            ..with.clone()
        };
        let own = |a: &str, sub| (a.to_owned(), sub);
        assert_eq!(payer_app("wxSp", None, None).unwrap(), own("wxSp", false));
        assert_eq!(
            payer_app("wxSp", Some(&without), None).unwrap(),
            own("wxSp", false)
        );
        assert_eq!(
            payer_app("wxSp", Some(&with), None).unwrap(),
            own("wxStore", true)
        );
        assert_eq!(
            payer_app("wxSp", Some(&with), Some("wxSp")).unwrap(),
            own("wxSp", false)
        );
        assert_eq!(
            payer_app("wxSp", Some(&with), Some(" wxStore ")).unwrap(),
            own("wxStore", true)
        );
        assert_eq!(
            payer_app("wxSp", None, Some("wxSp")).unwrap(),
            own("wxSp", false)
        );
        for (sub, wanted) in [
            (None, "wxStore"),
            (Some(&without), "wxStore"),
            (Some(&with), "wxOther"),
        ] {
            let e = payer_app("wxSp", sub, Some(wanted)).unwrap_err();
            assert!(e.to_string().contains("openidAppId"), "{e}");
        }
    }

    #[test]
    fn urls_and_truncation() {
        let base = parse_base_url("http://127.0.0.1:1/sandbox/wechat/").unwrap();
        assert_eq!(
            join_url(&base, "/v3/pay"),
            "http://127.0.0.1:1/sandbox/wechat/v3/pay"
        );
        let base = parse_base_url(PRODUCTION_BASE_URL).unwrap();
        assert_eq!(
            join_url(&base, "pay/unifiedorder"),
            "https://api.mch.weixin.qq.com/pay/unifiedorder"
        );
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("https://u:p@x").is_err());
        assert_eq!(truncate_bytes("中文", 4), "中");
        assert_eq!(truncate_bytes("abc", 5), "abc");
    }

    #[test]
    fn scenes() {
        assert_eq!(
            TradeKind::for_scene(SceneCode::Mini).unwrap(),
            TradeKind::Jsapi
        );
        assert!(TradeKind::for_scene(SceneCode::Wap).is_err());
    }
}
