//! Wire types of the merchant API (camelCase JSON, ARCHITECTURE.md §5.2 and
//! the server contract). Requests use plain strings and integers: the server
//! is the one that validates, and tests must be able to send what a careless
//! merchant would. Optional response fields are `Option`, so `null` and an
//! absent field read the same.

use cashdesk_core::{BindingState, OrderState, RefundState, ResultCode, SignType};
use serde::{Deserialize, Deserializer, Serialize};

/// `{code, msg, data, responseTime}`: every `/api` response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub code: i64,
    pub msg: String,
    #[serde(default = "none")]
    pub data: Option<T>,
    #[serde(default)]
    pub response_time: i64,
}

fn none<T>() -> Option<T> {
    None
}

/// Accepts a JSON string or number (e.g. a unix timestamp) as a string.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrOrNum {
        S(String),
        N(serde_json::Number),
    }
    Ok(match StrOrNum::deserialize(d)? {
        StrOrNum::S(s) => s,
        StrOrNum::N(n) => n.to_string(),
    })
}

/// `POST /api/cashier-desk/unified/orders`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderRequest {
    pub out_trade_no: String,
    /// Fen (1 yuan = 100).
    pub amount: i64,
    pub order_title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goods_desc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub third_party_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

impl CreateOrderRequest {
    /// The three required fields; set the others directly.
    pub fn new(
        out_trade_no: impl Into<String>,
        amount: i64,
        order_title: impl Into<String>,
    ) -> Self {
        Self {
            out_trade_no: out_trade_no.into(),
            amount,
            order_title: order_title.into(),
            ..Self::default()
        }
    }
}

/// cashdesk's signature over `appId\noutTradeNo\ntimestamp\nnonce\n`, for a
/// front end to show the order came from cashdesk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSignature {
    pub app_id: String,
    pub nonce: String,
    #[serde(deserialize_with = "string_or_number")]
    pub timestamp: String,
    pub signature: String,
    pub out_trade_no: String,
}

/// One channel the buyer may pay with (an approved binding).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentChannel {
    /// The binding id.
    pub id: String,
    pub app_id: String,
    pub app_name: String,
    pub channel_id: String,
    pub channel_type: String,
    pub channel_name: String,
    pub scene_name: Option<String>,
    pub scene_code: String,
    pub config_id: String,
    pub mch_id: Option<String>,
    pub url: String,
    pub method: String,
    pub enctype: String,
    #[serde(default)]
    pub sort: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderResponse {
    pub order_id: String,
    pub out_trade_no: String,
    pub token: String,
    pub cashier_url: String,
    /// RFC 3339.
    pub expire_at: String,
    pub signature: OrderSignature,
    #[serde(default)]
    pub channels: Vec<PaymentChannel>,
}

/// `GET /api/cashier-desk/payment/list?token=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentList {
    pub order_id: String,
    pub out_trade_no: String,
    pub amount: i64,
    pub order_title: String,
    pub expire_at: String,
    pub state: OrderState,
    pub app_id: String,
    pub app_name: String,
    #[serde(default)]
    pub channels: Vec<PaymentChannel>,
}

/// `query-pay-result` and `close`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayResult {
    pub order_id: String,
    pub out_trade_no: String,
    pub amount: i64,
    pub state: OrderState,
    pub result_code: ResultCode,
    pub channel_id: Option<String>,
    pub channel_type: Option<String>,
    pub mch_id: Option<String>,
    pub transaction_id: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, Asia/Shanghai.
    pub pay_time: Option<String>,
    #[serde(default)]
    pub refunded_amount: i64,
    pub result_error_code: Option<String>,
    pub result_error_msg: Option<String>,
    pub store_id: Option<String>,
    pub attach: Option<String>,
    #[serde(default)]
    pub paid_after_close: bool,
}

/// `POST /api/cashier-desk-sa/apply/binding-channel`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyBindingRequest {
    pub channel_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyBindingResponse {
    pub binding_id: String,
    pub state: BindingState,
}

/// `POST /api/cashier-desk-sa/register` (operator token unless the server
/// has open registration).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterAppRequest {
    pub app_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_type: Option<SignType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_pem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_review: Option<bool>,
    /// Refund a payment that arrives for an already closed order
    /// automatically.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_refund_paid_after_close: Option<bool>,
}

/// The app key is shown once: store it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterAppResponse {
    pub app_id: String,
    pub app_key: String,
    pub sign_type: SignType,
}

/// `GET /api/cashier-desk/platform-keys`: cashdesk's public keys, which
/// verify responses and notifications for RSA2/SM2 apps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformKeys {
    pub rsa_public_key_pem: String,
    pub sm2_public_key_pem: String,
}

/// `POST /api/cashier-desk/refunds`: refund `amount` fen of a paid order
/// (partial refunds allowed). Idempotent by `out_refund_no`: the same body
/// again gets the refund as it stands now; another body gets 409.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRefundRequest {
    pub out_trade_no: String,
    /// The merchant's refund number, unique per app (at most 64 of
    /// `[A-Za-z0-9_-|*]`).
    pub out_refund_no: String,
    /// Fen.
    pub amount: i64,
    /// At most 80 characters (WeChat's limit); shown to the buyer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
}

impl CreateRefundRequest {
    pub fn new(
        out_trade_no: impl Into<String>,
        out_refund_no: impl Into<String>,
        amount: i64,
    ) -> Self {
        Self {
            out_trade_no: out_trade_no.into(),
            out_refund_no: out_refund_no.into(),
            amount,
            ..Self::default()
        }
    }
}

/// A refund as the merchant API answers it (`POST /refunds`,
/// `GET /refunds/{outRefundNo}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundResult {
    pub refund_id: String,
    pub out_refund_no: String,
    pub out_trade_no: String,
    pub order_id: String,
    /// Fen.
    pub amount: i64,
    /// `PENDING_REVIEW`, `PROCESSING`, `SUCCESS`, `FAIL` or `REJECTED`.
    pub state: RefundState,
    pub reason: Option<String>,
    /// The channel's refund id, once known.
    pub channel_refund_id: Option<String>,
    /// Why the channel refused (state `FAIL`), or what it reported.
    pub error_code: Option<String>,
    pub error_msg: Option<String>,
    /// The order's refunded amount so far (successful refunds only), fen.
    #[serde(default)]
    pub refunded_amount: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, once final.
    pub finished_at: Option<String>,
}

/// `POST /api/cashier-desk/payment`: pay an order with one channel bound to
/// the app, server to server. `openid` (WeChat mini/jsapi; also Lakala's
/// WeChat scenes) or `buyer_id` (Alipay mini-program) names the payer;
/// `client_ip` is the buyer's address (WeChat H5 needs it, here or on the
/// order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequest {
    pub out_trade_no: String,
    pub channel_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// The WeChat AppID `openid` belongs to, when it is not the default
    /// (the store's `subAppId`, else the config's `appId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openid_app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

impl PaymentRequest {
    /// The two required fields; add the payer or the buyer's IP with the
    /// `with_*` methods.
    pub fn new(out_trade_no: impl Into<String>, channel_id: impl Into<String>) -> Self {
        Self {
            out_trade_no: out_trade_no.into(),
            channel_id: channel_id.into(),
            ..Self::default()
        }
    }

    pub fn with_openid(mut self, openid: impl Into<String>) -> Self {
        self.openid = Some(openid.into());
        self
    }

    /// The payer's openid under the WeChat AppID `app_id` (for example a
    /// service provider's user paying a store that has its own AppID).
    pub fn with_openid_of(mut self, openid: impl Into<String>, app_id: impl Into<String>) -> Self {
        self.openid = Some(openid.into());
        self.openid_app_id = Some(app_id.into());
        self
    }

    pub fn with_buyer_id(mut self, buyer_id: impl Into<String>) -> Self {
        self.buyer_id = Some(buyer_id.into());
        self
    }

    pub fn with_client_ip(mut self, client_ip: impl Into<String>) -> Self {
        self.client_ip = Some(client_ip.into());
        self
    }
}

/// The answer to [`PaymentRequest`]: the order is now `PAYING` with this
/// channel, and `pay_data` is what the buyer's front end needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResponse {
    pub order_id: String,
    /// `wx-pay`, `ali-pay` or `lakala`.
    pub channel_type: String,
    /// `mini`, `jsapi`, `native`, `h5`, `app`, `wap`, `page`, `qr`.
    pub scene_code: String,
    pub pay_data: PayData,
}

/// `payData`, by shape. Its shape follows from the channel and the scene,
/// which the response names too; the SDK recognises it by its fields (each
/// shape has fields the others lack), so a match on this enum is the whole
/// dispatch a front end needs. A shape this SDK does not know (a newer
/// server, a new channel) arrives as [`PayData::Other`] with the JSON as
/// sent, never as an error. Serializing gives back the JSON cashdesk sent,
/// field for field, so `pay_data` can be handed to a front end as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum PayData {
    /// WeChat Pay `mini`/`jsapi` (and Lakala's WeChat scenes): the object
    /// `wx.requestPayment` / `WeixinJSBridge.invoke('getBrandWCPayRequest')`
    /// takes.
    RequestPayment(WxRequestPayment),
    /// WeChat Pay `app`: the WeChat app SDK's `PayReq`.
    WxApp(WxAppPayReq),
    /// `native` (WeChat Pay, Lakala): the code URL to show as a QR code,
    /// and cashdesk's SVG rendering of it. On the sandbox the code URL is an
    /// `http` link to the sandbox payer page; real WeChat gives
    /// `weixin://wxpay/bizpayurl?pr=…`, which only WeChat's scanner opens.
    Native {
        code_url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qr_svg_url: Option<String>,
    },
    /// `h5`: the channel's page to send the buyer's browser to (WeChat's
    /// `mweb_url`; append `&redirect_url=…` as WeChat documents).
    H5 { h5_url: String },
    /// Alipay `wap`/`page`: a signed GET URL and the same request as an
    /// auto-submitting HTML form.
    Redirect { redirect_url: String, form: String },
    /// Alipay `app`: the signed order string the Alipay app SDK takes.
    AlipayApp { order_string: String },
    /// Alipay `qr` (precreate): the QR code content.
    QrCode { qr_code: String },
    /// Alipay `mini` (and Lakala's Alipay JSAPI): the trade number for
    /// `my.tradePay`.
    TradeNo { trade_no: String },
    /// Any other shape, as sent.
    Other(serde_json::Value),
}

/// `wx.requestPayment` parameters. v2: `sign_type` is the channel config's
/// (`MD5` or `HMAC-SHA256`) and `pay_sign` its signature over `appId`,
/// `nonceStr`, `package`, `signType`, `timeStamp`; v3: `RSA`, SHA256withRSA
/// over `appId\ntimeStamp\nnonceStr\npackage\n`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WxRequestPayment {
    pub app_id: String,
    /// Unix seconds, as a string (what WeChat wants).
    #[serde(deserialize_with = "string_or_number")]
    pub time_stamp: String,
    pub nonce_str: String,
    /// `prepay_id=…`.
    pub package: String,
    pub sign_type: String,
    pub pay_sign: String,
}

/// The WeChat app SDK's `PayReq` (field names as WeChat spells them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WxAppPayReq {
    pub appid: String,
    pub partnerid: String,
    pub prepayid: String,
    /// `Sign=WXPay`.
    pub package: String,
    pub noncestr: String,
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

    /// A URL to send the buyer's browser to (H5, Alipay wap/page).
    pub fn redirect_url(&self) -> Option<&str> {
        match self {
            PayData::H5 { h5_url } => Some(h5_url),
            PayData::Redirect { redirect_url, .. } => Some(redirect_url),
            _ => None,
        }
    }

    /// The JSON as cashdesk sent it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
