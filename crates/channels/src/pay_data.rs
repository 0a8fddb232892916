//! [`PayData`]: what the buyer's front end needs to pay, one variant per
//! shape a channel hands out, built by the adapters and serialized by serde
//! to exactly the JSON `POST /api/cashier-desk/payment` answers as
//! `payData` (docs/api.md). The server matches on the variant (which one is
//! a QR code, which a URL to send the browser to) instead of probing JSON
//! keys; the golden tests below pin every wire shape.
//!
//! The variant names follow the Rust SDK's `PayData` (crates/sdk), which
//! parses these shapes back, so the two can become one type.

use serde::Serialize;

/// The front end's payload for one payment (`payData`).
///
/// Untagged: each variant serializes as the bare object the channel's
/// front-end API takes, never wrapped in a variant name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PayData {
    /// WeChat Pay `mini`/`jsapi`, Lakala's WeChat `mini`/`jsapi`: the object
    /// `wx.requestPayment` / `WeixinJSBridge` `getBrandWCPayRequest` takes.
    RequestPayment(RequestPayment),
    /// WeChat Pay `app`: the WeChat app SDK's `PayReq`.
    WxApp(WxAppPayReq),
    /// `native` (WeChat Pay, Lakala): the code URL to show as a QR code
    /// `{codeUrl, qrSvgUrl?}`; `qr_svg_url` is filled in by the server (its
    /// SVG rendering of the code).
    #[serde(rename_all = "camelCase")]
    Native {
        code_url: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        qr_svg_url: Option<String>,
    },
    /// Alipay `qr` (`alipay.trade.precreate`): `{qrCode, qrSvgUrl?}`.
    #[serde(rename_all = "camelCase")]
    QrCode {
        qr_code: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        qr_svg_url: Option<String>,
    },
    /// `h5` (WeChat Pay, Lakala's Alipay H5): the channel's page to send the
    /// buyer's browser to, `{h5Url}`.
    #[serde(rename_all = "camelCase")]
    H5 { h5_url: String },
    /// Alipay `wap`/`page`: `{redirectUrl, form}`, a signed GET URL of the
    /// gateway and the same parameters as an auto-submitting HTML form.
    #[serde(rename_all = "camelCase")]
    Redirect { redirect_url: String, form: String },
    /// Alipay `app`: `{orderString}`, the signed order string the Alipay
    /// app SDK takes.
    #[serde(rename_all = "camelCase")]
    AlipayApp { order_string: String },
    /// Alipay `mini`, Lakala's Alipay `jsapi`: `{tradeNo}` for
    /// `my.tradePay` / `AlipayJSBridge` `tradePay`.
    #[serde(rename_all = "camelCase")]
    TradeNo { trade_no: String },
}

/// `wx.requestPayment` parameters, in WeChat's spelling. v2: `sign_type` is
/// the config's (`MD5` or `HMAC-SHA256`); v3: `RSA`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestPayment {
    pub app_id: String,
    /// Unix seconds, as a string (what WeChat wants).
    pub time_stamp: String,
    pub nonce_str: String,
    /// `prepay_id=…`.
    pub package: String,
    pub sign_type: String,
    pub pay_sign: String,
}

/// The WeChat app SDK's `PayReq` (field names as WeChat spells them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WxAppPayReq {
    pub appid: String,
    pub partnerid: String,
    pub prepayid: String,
    /// `Sign=WXPay`.
    pub package: String,
    pub noncestr: String,
    pub timestamp: String,
    pub sign: String,
}

impl PayData {
    /// The content of the QR code the buyer scans (`native` code URL,
    /// Alipay `qr_code`); `None` for every other shape.
    pub fn qr_content(&self) -> Option<&str> {
        match self {
            Self::Native { code_url: c, .. } | Self::QrCode { qr_code: c, .. } => Some(c),
            _ => None,
        }
    }

    /// The URL the buyer's browser is sent to (`h5Url`, Alipay
    /// `redirectUrl`); `None` for every other shape.
    pub fn browser_url(&self) -> Option<&str> {
        match self {
            Self::H5 { h5_url: u }
            | Self::Redirect {
                redirect_url: u, ..
            } => Some(u),
            _ => None,
        }
    }

    /// Sets the server's SVG rendering of a QR shape; other shapes are left
    /// alone.
    pub fn set_qr_svg_url(&mut self, url: String) {
        if let Self::Native { qr_svg_url, .. } | Self::QrCode { qr_svg_url, .. } = self {
            *qr_svg_url = Some(url);
        }
    }

    /// The wire JSON (what `payData` is).
    pub fn to_json(&self) -> serde_json::Value {
        // Every field is a string: serializing cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: &PayData) -> String {
        serde_json::to_string(p).unwrap()
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn golden_request_payment() {
        let p = PayData::RequestPayment(RequestPayment {
            app_id: s("wxd930ea5d5a258f4f"),
            time_stamp: s("1490840662"),
            nonce_str: s("5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
            package: s("prepay_id=wx2017033010242291fcfe0db70013231072"),
            sign_type: s("MD5"),
            pay_sign: s("A3C4993E71916E54AE93F5D2B1E888AF"),
        });
        assert_eq!(
            text(&p),
            r#"{"appId":"wxd930ea5d5a258f4f","timeStamp":"1490840662","nonceStr":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS","package":"prepay_id=wx2017033010242291fcfe0db70013231072","signType":"MD5","paySign":"A3C4993E71916E54AE93F5D2B1E888AF"}"#
        );
        assert_eq!(p.qr_content(), None);
        assert_eq!(p.browser_url(), None);
    }

    #[test]
    fn golden_wx_app() {
        let p = PayData::WxApp(WxAppPayReq {
            appid: s("wxd930ea5d5a258f4f"),
            partnerid: s("1900000109"),
            prepayid: s("wx201410272009395522657a690389285100"),
            package: s("Sign=WXPay"),
            noncestr: s("abc"),
            timestamp: s("1414561699"),
            sign: s("SIGN"),
        });
        assert_eq!(
            text(&p),
            r#"{"appid":"wxd930ea5d5a258f4f","partnerid":"1900000109","prepayid":"wx201410272009395522657a690389285100","package":"Sign=WXPay","noncestr":"abc","timestamp":"1414561699","sign":"SIGN"}"#
        );
    }

    #[test]
    fn golden_native_with_and_without_svg() {
        let mut p = PayData::Native {
            code_url: s("weixin://wxpay/bizpayurl?pr=abc"),
            qr_svg_url: None,
        };
        assert_eq!(text(&p), r#"{"codeUrl":"weixin://wxpay/bizpayurl?pr=abc"}"#);
        assert_eq!(p.qr_content(), Some("weixin://wxpay/bizpayurl?pr=abc"));
        p.set_qr_svg_url(s("https://pay.example.com/cashier-desk-web/qr/T.svg"));
        assert_eq!(
            text(&p),
            r#"{"codeUrl":"weixin://wxpay/bizpayurl?pr=abc","qrSvgUrl":"https://pay.example.com/cashier-desk-web/qr/T.svg"}"#
        );
    }

    #[test]
    fn golden_alipay_qr_code() {
        let mut p = PayData::QrCode {
            qr_code: s("https://qr.alipay.com/bax03431"),
            qr_svg_url: None,
        };
        assert_eq!(text(&p), r#"{"qrCode":"https://qr.alipay.com/bax03431"}"#);
        p.set_qr_svg_url(s("https://pay.example.com/cashier-desk-web/qr/T.svg"));
        assert_eq!(
            text(&p),
            r#"{"qrCode":"https://qr.alipay.com/bax03431","qrSvgUrl":"https://pay.example.com/cashier-desk-web/qr/T.svg"}"#
        );
        assert_eq!(p.qr_content(), Some("https://qr.alipay.com/bax03431"));
    }

    #[test]
    fn golden_h5() {
        let mut p = PayData::H5 {
            h5_url: s("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"),
        };
        assert_eq!(
            text(&p),
            r#"{"h5Url":"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"}"#
        );
        assert_eq!(
            p.browser_url(),
            Some("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1")
        );
        // Not a QR shape: nothing to add.
        p.set_qr_svg_url(s("x"));
        assert!(!text(&p).contains("qrSvgUrl"));
    }

    #[test]
    fn golden_redirect() {
        let p = PayData::Redirect {
            redirect_url: s("https://openapi.alipay.com/gateway.do?app_id=1"),
            form: s("<form></form>"),
        };
        assert_eq!(
            text(&p),
            r#"{"redirectUrl":"https://openapi.alipay.com/gateway.do?app_id=1","form":"<form></form>"}"#
        );
        assert_eq!(
            p.browser_url(),
            Some("https://openapi.alipay.com/gateway.do?app_id=1")
        );
    }

    #[test]
    fn golden_alipay_app() {
        let p = PayData::AlipayApp {
            order_string: s("app_id=1&biz_content=%7B%7D&sign=x"),
        };
        assert_eq!(
            text(&p),
            r#"{"orderString":"app_id=1&biz_content=%7B%7D&sign=x"}"#
        );
    }

    #[test]
    fn golden_trade_no() {
        let p = PayData::TradeNo {
            trade_no: s("2024010222001400000000000001"),
        };
        assert_eq!(text(&p), r#"{"tradeNo":"2024010222001400000000000001"}"#);
        assert_eq!(
            p.to_json(),
            serde_json::json!({"tradeNo": "2024010222001400000000000001"})
        );
    }
}
