//! [`PayData`]: what the buyer's front end needs to pay, one variant per
//! shape a channel hands out. The channel adapters (crates/channels) build
//! it, the server sends it as `payData` (`POST /api/cashier-desk/payment`,
//! docs/api.md), the SDK parses it back into the same variants.

use serde::{Deserialize, Serialize};

use crate::string_or_number;

/// `payData`, by shape.
///
/// Untagged: each variant serializes as the bare object the channel's
/// front-end API takes, never wrapped in a variant name. Its shape follows
/// from the channel and the scene, which the response names too; parsing
/// recognises it by its fields (each shape has fields the others lack), so
/// a match on this enum is the whole dispatch a front end needs. A shape
/// this side does not know (a newer server, a new channel) parses as
/// [`PayData::Other`] with the JSON as sent, never as an error.
/// Serializing gives back the JSON cashdesk sent, field for field, so
/// `payData` can be handed to a front end as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum PayData {
    /// WeChat Pay `mini`/`jsapi`, Lakala's WeChat `mini`/`jsapi`: the
    /// object `wx.requestPayment` / `WeixinJSBridge`
    /// `getBrandWCPayRequest` takes.
    RequestPayment(WxRequestPayment),
    /// WeChat Pay `app`: the WeChat app SDK's `PayReq`.
    WxApp(WxAppPayReq),
    /// `native` (WeChat Pay, Lakala): the code URL to show as a QR code,
    /// `{codeUrl, qrSvgUrl?}`; `qr_svg_url` is filled in by the server (its
    /// SVG rendering of the code). On the sandbox the code URL is an `http`
    /// link to the sandbox payer page; real WeChat gives
    /// `weixin://wxpay/bizpayurl?pr=…`, which only WeChat's scanner opens.
    Native {
        code_url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qr_svg_url: Option<String>,
    },
    /// `h5` (WeChat Pay, Lakala's Alipay H5): the channel's page to send
    /// the buyer's browser to, `{h5Url}` (WeChat's `mweb_url`; append
    /// `&redirect_url=…` as WeChat documents).
    H5 { h5_url: String },
    /// Alipay `wap`/`page`: `{redirectUrl, form}`, a signed GET URL of the
    /// gateway and the same request as an auto-submitting HTML form.
    Redirect { redirect_url: String, form: String },
    /// Alipay `app`: `{orderString}`, the signed order string the Alipay
    /// app SDK takes.
    AlipayApp { order_string: String },
    /// Alipay `qr` (`alipay.trade.precreate`): `{qrCode, qrSvgUrl?}`, the
    /// QR code content and the server's SVG rendering of it.
    QrCode {
        qr_code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qr_svg_url: Option<String>,
    },
    /// Alipay `mini`, Lakala's Alipay `jsapi`: `{tradeNo}` for
    /// `my.tradePay` / `AlipayJSBridge` `tradePay`.
    TradeNo { trade_no: String },
    /// Any other shape, as sent (the server never builds it).
    Other(serde_json::Value),
}

/// `wx.requestPayment` parameters, in WeChat's spelling. v2: `sign_type` is
/// the channel config's (`MD5` or `HMAC-SHA256`) and `pay_sign` its
/// signature over `appId`, `nonceStr`, `package`, `signType`, `timeStamp`;
/// v3: `RSA`, SHA256withRSA over `appId\ntimeStamp\nnonceStr\npackage\n`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WxRequestPayment {
    pub app_id: String,
    /// Unix seconds, as a string (what WeChat wants; a number reads too).
    #[serde(deserialize_with = "string_or_number")]
    pub time_stamp: String,
    pub nonce_str: String,
    /// `prepay_id=…`.
    pub package: String,
    pub sign_type: String,
    pub pay_sign: String,
}

/// The WeChat app SDK's `PayReq` (field names as WeChat spells them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WxAppPayReq {
    pub appid: String,
    pub partnerid: String,
    pub prepayid: String,
    /// `Sign=WXPay`.
    pub package: String,
    pub noncestr: String,
    /// Unix seconds, as a string (a number reads too).
    #[serde(deserialize_with = "string_or_number")]
    pub timestamp: String,
    pub sign: String,
}

impl PayData {
    /// The `wx.requestPayment` parameters, when that is the shape.
    pub fn request_payment(&self) -> Option<&WxRequestPayment> {
        match self {
            PayData::RequestPayment(p) => Some(p),
            _ => None,
        }
    }

    /// The code URL of a Native payment.
    pub fn code_url(&self) -> Option<&str> {
        match self {
            PayData::Native { code_url, .. } => Some(code_url),
            _ => None,
        }
    }

    /// The content of the QR code the buyer scans (Native `codeUrl`,
    /// Alipay `qrCode`); `None` for every other shape.
    pub fn qr_content(&self) -> Option<&str> {
        match self {
            PayData::Native { code_url: c, .. } | PayData::QrCode { qr_code: c, .. } => Some(c),
            _ => None,
        }
    }

    /// A URL to send the buyer's browser to (`h5Url`, Alipay
    /// `redirectUrl`); `None` for every other shape.
    pub fn redirect_url(&self) -> Option<&str> {
        match self {
            PayData::H5 { h5_url: u }
            | PayData::Redirect {
                redirect_url: u, ..
            } => Some(u),
            _ => None,
        }
    }

    /// Sets the server's SVG rendering of a QR shape (`qrSvgUrl`); other
    /// shapes are left alone.
    pub fn set_qr_svg_url(&mut self, url: String) {
        if let PayData::Native { qr_svg_url, .. } | PayData::QrCode { qr_svg_url, .. } = self {
            *qr_svg_url = Some(url);
        }
    }

    /// The JSON as cashdesk sent it (what `payData` is).
    pub fn to_json(&self) -> serde_json::Value {
        // Every field is a string or JSON already: serializing cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
