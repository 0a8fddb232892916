//! WeChat Pay (`wx-pay`): API v2 ([`v2`], XML, MD5 / HMAC-SHA256) and API v3
//! ([`v3`], JSON, SHA256withRSA), chosen by the config's `apiVersion`.
//!
//! This module owns what both versions share: the channel's factory
//! (credential validation and construction) and its [`META`] (names,
//! scenes, capabilities), the scene → trade type mapping, the
//! sub-merchant checks of service-provider mode and the official account's
//! web OAuth ([`oauth`], for JSAPI payers on the cashier page) and the
//! mini-program's subscribe messages ([`subscribe`], `api.weixin.qq.com`,
//! not WeChat Pay: used by the server's message queue). Credential
//! shapes live in [`wire`]; each version is split into `client` (signing,
//! calls, error codes), `flows` (the [`Channel`] implementation), `notify`
//! and `wire`.
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

mod oauth;
pub mod subscribe;
pub mod v2;
pub mod v3;
pub mod wire;

use std::sync::Arc;

use cashdesk_core::{ChannelType, SceneCode};

use crate::channel::Channel;
use crate::error::ChannelError;
use crate::meta::{ChannelMeta, LocalText, OAuthApp, RefundSettlement, SceneInfo};
use crate::registry::{ChannelEnv, ChannelFactory, ChannelSpec, IdentitySummary};
use crate::support::parse_base_url;
use wire::{SubMerchantIdentity, V2Credentials, V3Credentials};

/// WeChat Pay's production API host.
pub const PRODUCTION_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// What WeChat Pay is (both versions): names, scenes, capabilities.
pub static META: ChannelMeta = ChannelMeta {
    channel_type: ChannelType::WxPay,
    name: LocalText {
        zh: "微信支付",
        en: "WeChat Pay",
    },
    scenes: &[
        SceneInfo {
            scene: SceneCode::Mini,
            name: "微信小程序支付",
        },
        SceneInfo {
            scene: SceneCode::Jsapi,
            name: "微信公众号支付",
        },
        SceneInfo {
            scene: SceneCode::Native,
            name: "微信扫码支付",
        },
        SceneInfo {
            scene: SceneCode::H5,
            name: "微信H5支付",
        },
        SceneInfo {
            scene: SceneCode::App,
            name: "微信APP支付",
        },
    ],
    payer_oauth: Some(OAuthApp::WeChat),
    refunds: RefundSettlement::Asynchronous,
    // WeChat's H5 page sends the buyer to the `redirect_url` the merchant
    // appends to `mweb_url`.
    h5_return_param: Some("redirect_url"),
    mark_svg: r##"<svg viewBox="0 0 32 32" aria-hidden="true" focusable="false"><rect width="32" height="32" rx="8" fill="#07c160"/><ellipse cx="13.5" cy="13.5" rx="8.5" ry="7" fill="#fff"/><path d="M9 19.5l-1.2 3 3.4-1.8z" fill="#fff"/><ellipse cx="20.5" cy="19" rx="6.8" ry="5.6" fill="#fff" stroke="#07c160" stroke-width="1.2"/><circle cx="10.8" cy="12" r="1.1" fill="#07c160"/><circle cx="16.2" cy="12" r="1.1" fill="#07c160"/><circle cx="18.4" cy="18" r=".9" fill="#07c160"/><circle cx="22.6" cy="18" r=".9" fill="#07c160"/></svg>"##,
};

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
            other => Err(ChannelError::invalid_request(
                "channelId",
                format!(
                    "scene {other} is not available on WeChat Pay (use mini, jsapi, native, h5 or app)"
                ),
            )),
        }
    }
}

/// The factory registered in [`crate::registry::FACTORIES`].
pub struct WechatFactory;

impl ChannelFactory for WechatFactory {
    fn meta(&self) -> &'static ChannelMeta {
        &META
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
        Some(w) => Err(ChannelError::invalid_request(
            "openidAppId",
            format!(
                "openidAppId `{w}` is neither the channel config's AppID nor the store's subAppId"
            ),
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
    fn scenes() {
        assert_eq!(
            TradeKind::for_scene(SceneCode::Mini).unwrap(),
            TradeKind::Jsapi
        );
        assert!(TradeKind::for_scene(SceneCode::Wap).is_err());
        // Every scene the metadata lists has a trade type.
        for s in META.scene_codes() {
            assert!(TradeKind::for_scene(s).is_ok(), "{s}");
        }
    }
}
