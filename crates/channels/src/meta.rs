//! What cashdesk knows about a channel without calling it: its names, its
//! scenes and what it can do ([`ChannelMeta`]), declared once by the
//! channel's factory ([`crate::registry::ChannelFactory::meta`]) and looked
//! up with [`crate::channel_meta`].
//!
//! The server keeps no per-channel table of its own: the admin API checks a
//! scene against [`ChannelMeta::supports`], `payment/list` and the admin
//! views name scenes with [`ChannelMeta::scene_name`], the cashier page
//! shows [`ChannelMeta::name`] and [`ChannelMeta::mark_svg`] and picks the
//! JSAPI flow from [`ChannelMeta::payer_oauth`]. Adding a channel adds its
//! metadata here, in its module, and nowhere else.

use cashdesk_core::{ChannelType, SceneCode};

/// A text in the two languages cashdesk's buyer-facing pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalText {
    /// Simplified Chinese.
    pub zh: &'static str,
    pub en: &'static str,
}

/// One scene a channel accepts and its name as `payment/list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SceneInfo {
    pub scene: SceneCode,
    /// The Chinese name merchants know (`微信小程序支付`).
    pub name: &'static str,
}

/// How a refund request's answer relates to its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundSettlement {
    /// The refund call answers the outcome (Alipay: `fund_change = Y` is
    /// the money moved); a query only confirms a repeated call.
    Synchronous,
    /// The refund call only accepts; the outcome comes later by
    /// notification or refund query (WeChat Pay, Lakala).
    Asynchronous,
}

impl RefundSettlement {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synchronous => "SYNC",
            Self::Asynchronous => "ASYNC",
        }
    }
}

/// An in-app browser where a JSAPI payer is identified by a web OAuth the
/// channel offers (see [`crate::PayerOAuth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthApp {
    /// WeChat's built-in browser: the official account's `snsapi_base`
    /// OAuth gives the buyer's openid, `WeixinJSBridge` pays.
    WeChat,
}

impl OAuthApp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WeChat => "wechat",
        }
    }
}

/// Everything the server shows or decides about a channel type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelMeta {
    pub channel_type: ChannelType,
    /// The brand a buyer recognises (`微信支付` / `WeChat Pay`).
    pub name: LocalText,
    /// The scenes its adapters accept, in the order they are listed.
    pub scenes: &'static [SceneInfo],
    /// JSAPI payments can be made from a browser: in this app, after the
    /// channel's web OAuth (a config also needs the OAuth credentials, see
    /// [`crate::Channel::payer_oauth`]).
    pub payer_oauth: Option<OAuthApp>,
    pub refunds: RefundSettlement,
    /// The query parameter a merchant appends to an `h5Url` to bring the
    /// buyer back after paying (WeChat documents `redirect_url`); `None`
    /// when the channel's H5 page returns by itself.
    pub h5_return_param: Option<&'static str>,
    /// The channel's mark as inline SVG (no style attribute, no external
    /// reference: the cashier page's CSP stays strict). Decorative.
    pub mark_svg: &'static str,
}

impl ChannelMeta {
    /// Whether adapters of this channel accept `scene`.
    pub fn supports(&self, scene: SceneCode) -> bool {
        self.scenes.iter().any(|s| s.scene == scene)
    }

    /// The scene's name, when the channel has the scene.
    pub fn scene_name(&self, scene: SceneCode) -> Option<&'static str> {
        self.scenes
            .iter()
            .find(|s| s.scene == scene)
            .map(|s| s.name)
    }

    /// The scene codes, in order.
    pub fn scene_codes(&self) -> impl Iterator<Item = SceneCode> + '_ {
        self.scenes.iter().map(|s| s.scene)
    }
}
