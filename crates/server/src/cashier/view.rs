//! Pure decisions and formatting for the cashier page, kept apart from the
//! handlers so they are unit-tested without a server: which device the
//! buyer is on, what picking a channel does there ([`Flow`]), how an amount
//! and the time left read, and which name and mark a channel shows. What a
//! channel is called, looks like and can do (web OAuth for JSAPI) comes
//! from its factory's [`cashdesk_channels::ChannelMeta`]; nothing here
//! names a channel.

use cashdesk_channels::{OAuthApp, channel_meta};
use cashdesk_core::{ChannelType, Fen, SceneCode};

use super::i18n::{Lang, Texts};

/// Where the page is open, judged from the `User-Agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// WeChat's built-in browser (`MicroMessenger`): JSAPI payments work,
    /// H5/WAP payments do not (WeChat blocks them).
    WeChat,
    /// A phone or tablet browser.
    Mobile,
    /// Anything else: a computer.
    Desktop,
}

impl Device {
    pub fn from_user_agent(ua: Option<&str>) -> Device {
        let ua = ua.unwrap_or("");
        if ua.contains("MicroMessenger") {
            return Device::WeChat;
        }
        const MOBILE: [&str; 7] = [
            "Mobile",
            "Android",
            "iPhone",
            "iPad",
            "iPod",
            "HarmonyOS",
            "AlipayClient",
        ];
        if MOBILE.iter().any(|m| ua.contains(m)) {
            Device::Mobile
        } else {
            Device::Desktop
        }
    }
}

/// What choosing a channel does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// H5/WAP/page: the browser goes to the channel's URL.
    Redirect,
    /// Native/QR: the page shows the channel's QR code and waits.
    Qr,
    /// JSAPI in WeChat: OAuth for the openid, then the JSAPI bridge.
    WechatJsapi,
    /// A phone-only channel on a computer: a QR code of this page, to
    /// carry on on a phone.
    PageQr,
}

/// The flow of a channel on a device; `None` = not offered there
/// (mini-program and app scenes need the merchant's own app; JSAPI needs
/// the app whose web OAuth the channel offers — WeChat; H5 does not work
/// inside WeChat).
pub fn flow(channel_type: ChannelType, scene: SceneCode, device: Device) -> Option<Flow> {
    let wechat_oauth =
        channel_meta(channel_type).and_then(|m| m.payer_oauth) == Some(OAuthApp::WeChat);
    match (scene, device) {
        (SceneCode::H5 | SceneCode::Wap, Device::Mobile) => Some(Flow::Redirect),
        (SceneCode::H5 | SceneCode::Wap, Device::Desktop) => Some(Flow::PageQr),
        (SceneCode::Page, Device::Mobile | Device::Desktop) => Some(Flow::Redirect),
        (SceneCode::Native | SceneCode::Qr, _) => Some(Flow::Qr),
        (SceneCode::Jsapi, Device::WeChat) if wechat_oauth => Some(Flow::WechatJsapi),
        // Scanned with WeChat, the page opens where JSAPI works.
        (SceneCode::Jsapi, Device::Desktop) if wechat_oauth => Some(Flow::PageQr),
        _ => None,
    }
}

/// `¥12.34`, exactly, from fen.
pub fn amount(fen: Fen) -> String {
    format!("¥{}", fen.to_yuan())
}

/// The time left as `m:ss` or `h:mm:ss` (negative → `0:00`).
pub fn countdown(seconds: i64) -> String {
    let s = seconds.max(0);
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The brand name a buyer recognises, in the page's language.
pub fn brand(lang: Lang, channel_type: ChannelType) -> &'static str {
    channel_meta(channel_type).map_or(channel_type.as_str(), |m| lang.pick(m.name))
}

/// A short note on how the flow goes.
pub fn flow_label(t: &Texts, flow: Flow) -> &'static str {
    match flow {
        Flow::Redirect => t.scene_mobile_web,
        Flow::Qr => t.scene_qr,
        Flow::WechatJsapi => t.scene_in_wechat,
        Flow::PageQr => t.scene_on_phone,
    }
}

/// The channel's mark (inline SVG from its metadata: no request, no
/// style attribute, so the CSP stays strict). Decorative: the name next to
/// it is the accessible label.
pub fn icon(channel_type: ChannelType) -> &'static str {
    channel_meta(channel_type).map_or("", |m| m.mark_svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_yuan() {
        assert_eq!(amount(Fen::from_stored(1234)), "¥12.34");
        assert_eq!(amount(Fen::from_stored(1)), "¥0.01");
        assert_eq!(amount(Fen::from_stored(10)), "¥0.10");
        assert_eq!(amount(Fen::from_stored(100)), "¥1.00");
        assert_eq!(amount(Fen::from_stored(99_999_999_999)), "¥999999999.99");
    }

    #[test]
    fn countdowns() {
        assert_eq!(countdown(0), "0:00");
        assert_eq!(countdown(-5), "0:00");
        assert_eq!(countdown(59), "0:59");
        assert_eq!(countdown(30 * 60 - 19), "29:41");
        assert_eq!(countdown(3600 + 62), "1:01:02");
    }

    #[test]
    fn devices() {
        let wechat = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN";
        let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36";
        let desktop = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        assert_eq!(Device::from_user_agent(Some(wechat)), Device::WeChat);
        assert_eq!(Device::from_user_agent(Some(android)), Device::Mobile);
        assert_eq!(Device::from_user_agent(Some(desktop)), Device::Desktop);
        assert_eq!(Device::from_user_agent(None), Device::Desktop);
    }

    #[test]
    fn flows_per_scene_and_device() {
        use ChannelType::*;
        use Device::*;
        use SceneCode::*;
        assert_eq!(flow(WxPay, H5, Mobile), Some(Flow::Redirect));
        assert_eq!(flow(WxPay, H5, Desktop), Some(Flow::PageQr));
        assert_eq!(flow(WxPay, H5, WeChat), None);
        assert_eq!(flow(WxPay, Native, Desktop), Some(Flow::Qr));
        assert_eq!(flow(WxPay, Native, WeChat), Some(Flow::Qr));
        assert_eq!(flow(WxPay, Jsapi, WeChat), Some(Flow::WechatJsapi));
        assert_eq!(flow(WxPay, Jsapi, Desktop), Some(Flow::PageQr));
        assert_eq!(flow(WxPay, Jsapi, Mobile), None);
        assert_eq!(flow(Lakala, Jsapi, WeChat), None);
        assert_eq!(flow(WxPay, Mini, WeChat), None);
        assert_eq!(flow(WxPay, App, Mobile), None);
        assert_eq!(flow(AliPay, Wap, Mobile), Some(Flow::Redirect));
        assert_eq!(flow(AliPay, Page, Desktop), Some(Flow::Redirect));
        assert_eq!(flow(AliPay, Qr, Mobile), Some(Flow::Qr));
        assert_eq!(flow(AliPay, Wap, WeChat), None);
    }

    #[test]
    fn labels() {
        let en = Lang::En.texts();
        assert_eq!(brand(Lang::Zh, ChannelType::WxPay), "微信支付");
        assert_eq!(brand(Lang::En, ChannelType::AliPay), "Alipay");
        assert_eq!(brand(Lang::En, ChannelType::Lakala), "Lakala");
        assert_eq!(flow_label(en, Flow::Qr), "Scan a QR code");
        for t in ChannelType::ALL {
            assert!(
                icon(*t).starts_with("<svg") && !icon(*t).contains("style"),
                "{t}"
            );
        }
    }
}
