//! The merchant API's requests and responses (the `data` of the
//! envelope), endpoint by endpoint. The server builds the responses
//! (crates/server/src/wire.rs converts its store models into them); the
//! SDK sends the requests and reads the responses.

use cashdesk_core::{BindingState, OrderState, RefundState, ResultCode, SignType};
use serde::{Deserialize, Serialize};

use crate::pay_data::PayData;
use crate::string_or_number;

/// `POST /api/cashier-desk/unified/orders`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentChannel {
    /// The binding id.
    pub id: String,
    pub app_id: String,
    pub app_name: String,
    pub channel_id: String,
    /// `wx-pay`, `ali-pay`, `lakala`, … (a string: newer servers may
    /// know more channels).
    pub channel_type: String,
    pub channel_name: String,
    /// The channel's human name of the scene, when it has one.
    pub scene_name: Option<String>,
    pub scene_code: String,
    pub config_id: String,
    pub mch_id: Option<String>,
    /// Where to pay with it: `{public_url}/api/cashier-desk/payment`.
    pub url: String,
    /// `POST`.
    pub method: String,
    /// `application/json`.
    pub enctype: String,
    #[serde(default)]
    pub sort: i64,
}

/// The answer to [`CreateOrderRequest`] (the same again for the same
/// `outTradeNo` and body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyBindingRequest {
    pub channel_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyBindingResponse {
    pub binding_id: String,
    pub state: BindingState,
}

/// `POST /api/cashier-desk-sa/register` (operator token unless the server
/// has open registration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterAppResponse {
    pub app_id: String,
    pub app_key: String,
    pub sign_type: SignType,
}

/// `GET /api/cashier-desk/platform-keys`: cashdesk's public keys, which
/// verify responses and notifications for RSA2/SM2 apps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformKeys {
    pub rsa_public_key_pem: String,
    pub sm2_public_key_pem: String,
}

/// `POST /api/cashier-desk/refunds`: refund `amount` fen of a paid order
/// (partial refunds allowed). Idempotent by `out_refund_no`: the same body
/// again gets the refund as it stands now; another body gets 409.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResponse {
    pub order_id: String,
    /// `wx-pay`, `ali-pay` or `lakala`.
    pub channel_type: String,
    /// `mini`, `jsapi`, `native`, `h5`, `app`, `wap`, `page`, `qr`.
    pub scene_code: String,
    pub pay_data: PayData,
}
