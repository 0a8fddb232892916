//! The cashier page's two languages: Simplified Chinese (the default: the
//! buyers are in mainland China) and English, chosen by the browser's
//! `Accept-Language`. Every string a buyer reads is a field of [`Texts`], so
//! a template cannot name a string that one language lacks. Channel names
//! are the channels' own ([`cashdesk_channels::ChannelMeta::name`], in both
//! languages), picked with [`Lang::pick`].

use cashdesk_channels::LocalText;

/// A language the cashier page speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The best of zh / en for an `Accept-Language` header: the highest
    /// `q` wins (ties: the first listed), languages other than Chinese and
    /// English are skipped, `q=0` means "not this one"; nothing usable →
    /// Chinese.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else {
            return Lang::Zh;
        };
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let primary = tag.split('-').next().unwrap_or("");
            let lang = match primary {
                "zh" => Lang::Zh,
                "en" => Lang::En,
                _ => continue,
            };
            let mut q = 1.0f32;
            for p in pieces {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            if !(q > 0.0 && q <= 1.0) {
                continue;
            }
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Zh, |(_, l)| l)
    }

    /// A channel's name (or any [`LocalText`]) in this language.
    pub fn pick(self, text: LocalText) -> &'static str {
        match self {
            Lang::Zh => text.zh,
            Lang::En => text.en,
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }
}

/// Everything the buyer reads, in one language.
pub struct Texts {
    /// `lang` attribute of the page.
    pub code: &'static str,
    pub checkout: &'static str,
    pub amount_due: &'static str,
    pub order_no: &'static str,
    pub time_left: &'static str,
    pub choose: &'static str,
    pub no_channels: &'static str,
    pub being_paid: &'static str,
    pub pay_with: &'static str,
    pub scan_title: &'static str,
    pub scan_hint: &'static str,
    pub qr_alt: &'static str,
    pub waiting: &'static str,
    pub i_have_paid: &'static str,
    pub other_way: &'static str,
    pub phone_title: &'static str,
    pub phone_hint: &'static str,
    pub phone_qr_alt: &'static str,
    pub jsapi_title: &'static str,
    pub jsapi_hint: &'static str,
    pub jsapi_cancelled: &'static str,
    pub jsapi_failed: &'static str,
    pub paid_title: &'static str,
    pub paid_body: &'static str,
    pub returning: &'static str,
    pub back_to_shop: &'static str,
    pub failed_title: &'static str,
    pub failed_body: &'static str,
    pub closed_title: &'static str,
    pub closed_body: &'static str,
    pub expired_title: &'static str,
    pub expired_body: &'static str,
    pub pending_title: &'static str,
    pub pending_body: &'static str,
    pub refresh: &'static str,
    pub unknown_title: &'static str,
    pub unknown_body: &'static str,
    pub unavailable_title: &'static str,
    pub unavailable_body: &'static str,
    pub not_configured: &'static str,
    pub secured_by: &'static str,
    pub scene_qr: &'static str,
    pub scene_mobile_web: &'static str,
    pub scene_in_wechat: &'static str,
    pub scene_web: &'static str,
    pub scene_on_phone: &'static str,
}

pub static ZH: Texts = Texts {
    code: "zh-CN",
    checkout: "收银台",
    amount_due: "支付金额",
    order_no: "订单号",
    time_left: "剩余支付时间",
    choose: "选择支付方式",
    no_channels: "当前环境没有可用的支付方式。请换一个浏览器或设备打开此页面，或联系商户。",
    being_paid: "此订单正在使用以下方式支付。如需改用其他方式，请联系商户重新下单。",
    pay_with: "使用以下方式支付",
    scan_title: "扫码支付",
    scan_hint: "请使用对应的支付应用扫描二维码完成支付，支付后页面将自动跳转。",
    qr_alt: "支付二维码",
    waiting: "等待支付结果…",
    i_have_paid: "我已完成支付",
    other_way: "返回收银台",
    phone_title: "请在手机上继续",
    phone_hint: "此支付方式需在手机上完成：请用手机扫描二维码打开收银台。",
    phone_qr_alt: "收银台页面二维码",
    jsapi_title: "正在调起微信支付…",
    jsapi_hint: "如未弹出支付窗口，请确认在微信中打开并允许运行脚本。",
    jsapi_cancelled: "您已取消支付，可以重新选择支付方式。",
    jsapi_failed: "支付未完成，请稍后重试或选择其他支付方式。",
    paid_title: "支付成功",
    paid_body: "您的付款已完成，感谢您的购买。",
    returning: "即将返回商户页面…",
    back_to_shop: "返回商户",
    failed_title: "支付失败",
    failed_body: "本次支付未成功，请联系商户重新下单。",
    closed_title: "订单已关闭",
    closed_body: "该订单已关闭，无法继续支付。",
    expired_title: "订单已过期",
    expired_body: "支付时间已过，请返回商户重新下单。",
    pending_title: "等待支付结果",
    pending_body: "正在确认支付结果，请稍候。如已付款，无需重复支付。",
    refresh: "刷新",
    unknown_title: "支付链接无效",
    unknown_body: "该支付链接不存在或已失效，请返回商户重新获取。",
    unavailable_title: "该支付方式暂不可用",
    unavailable_body: "请稍后重试，或选择其他支付方式。",
    not_configured: "该支付方式未完成配置，请选择其他支付方式。",
    secured_by: "由 cashdesk 提供收银服务",
    scene_qr: "扫码支付",
    scene_mobile_web: "手机网页支付",
    scene_in_wechat: "微信内支付",
    scene_web: "网页支付",
    scene_on_phone: "请在手机上完成",
};

pub static EN: Texts = Texts {
    code: "en",
    checkout: "Checkout",
    amount_due: "Amount due",
    order_no: "Order number",
    time_left: "Time left to pay",
    choose: "Choose how to pay",
    no_channels: "No way to pay works here. Open this page in another browser or device, or contact the shop.",
    being_paid: "This order is being paid this way. To pay another way, ask the shop for a new order.",
    pay_with: "Pay with",
    scan_title: "Scan to pay",
    scan_hint: "Scan the QR code with the payment app. This page moves on by itself once you have paid.",
    qr_alt: "Payment QR code",
    waiting: "Waiting for the payment…",
    i_have_paid: "I have paid",
    other_way: "Back to checkout",
    phone_title: "Continue on your phone",
    phone_hint: "This way to pay works on a phone: scan the QR code to open this checkout there.",
    phone_qr_alt: "QR code of this checkout page",
    jsapi_title: "Opening WeChat Pay…",
    jsapi_hint: "If no payment sheet appears, make sure this page is open in WeChat with JavaScript on.",
    jsapi_cancelled: "You cancelled the payment. You can choose again.",
    jsapi_failed: "The payment did not go through. Try again in a moment or choose another way.",
    paid_title: "Payment successful",
    paid_body: "Your payment is complete. Thank you for your purchase.",
    returning: "Taking you back to the shop…",
    back_to_shop: "Back to the shop",
    failed_title: "Payment failed",
    failed_body: "The payment did not succeed. Please ask the shop for a new order.",
    closed_title: "Order closed",
    closed_body: "This order was closed and can no longer be paid.",
    expired_title: "Order expired",
    expired_body: "The time to pay has run out. Go back to the shop to order again.",
    pending_title: "Waiting for the payment result",
    pending_body: "We are confirming the payment. If you have paid, do not pay again.",
    refresh: "Refresh",
    unknown_title: "Payment link not valid",
    unknown_body: "This payment link does not exist or is no longer valid. Ask the shop for a new one.",
    unavailable_title: "This way to pay is not available right now",
    unavailable_body: "Try again in a moment, or choose another way to pay.",
    not_configured: "This way to pay is not fully set up. Please choose another way.",
    secured_by: "Checkout by cashdesk",
    scene_qr: "Scan a QR code",
    scene_mobile_web: "Mobile web",
    scene_in_wechat: "Inside WeChat",
    scene_web: "Web page",
    scene_on_phone: "Finish on a phone",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_choice() {
        assert_eq!(Lang::from_accept_language(None), Lang::Zh);
        assert_eq!(Lang::from_accept_language(Some("")), Lang::Zh);
        assert_eq!(Lang::from_accept_language(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::from_accept_language(Some("zh-CN,zh;q=0.9,en;q=0.8")),
            Lang::Zh
        );
        assert_eq!(
            Lang::from_accept_language(Some("fr-FR,en;q=0.5,zh;q=0.4")),
            Lang::En
        );
        assert_eq!(
            Lang::from_accept_language(Some("en;q=0.3, zh-TW;q=0.8")),
            Lang::Zh
        );
        assert_eq!(Lang::from_accept_language(Some("de, fr")), Lang::Zh);
        assert_eq!(Lang::from_accept_language(Some("en;q=0")), Lang::Zh);
        assert_eq!(Lang::from_accept_language(Some("EN-gb")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("en;q=garbage")), Lang::Zh);
        assert_eq!(Lang::En.texts().code, "en");
        assert_eq!(Lang::Zh.texts().code, "zh-CN");
    }
}
