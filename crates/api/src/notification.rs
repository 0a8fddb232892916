//! The merchant notification (ARCHITECTURE.md §5.3): the JSON body cashdesk
//! POSTs to an order's `notifyUrl` on every terminal event. The server
//! stores the serialized body in its outbox and signs those bytes, so the
//! field order below is part of the wire too (the golden test compares the
//! text). How a merchant verifies it is the SDK's `verify_notification`.

use serde::{Deserialize, Serialize};

/// The body a merchant answers a notification with (HTTP 200) to stop the
/// retries (the text `success` is accepted too).
pub const NOTIFICATION_ACK_BODY: &str = r#"{"code":1000,"msg":"操作成功"}"#;

/// The JSON body of a merchant notification. `notifyType` is one of
/// `PAY_SUCCESS`, `PAY_CLOSED`, `REFUND_SUCCESS`, `REFUND_FAIL`; types and
/// states are strings so a newer server never makes an older merchant fail
/// to acknowledge.
///
/// `PAY_*`: `state`/`resultCode` are the order's after the event.
/// `REFUND_*`: they are the refund's (`SUCCESS` → `SUCCESS`; `FAIL` or
/// `REJECTED` → `FAIL`), with the refund's fields; the order's fields are
/// the paid order's, which a refund does not change. The same event keeps
/// its `notifyId` across delivery attempts: deduplicate on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantNotification {
    pub notify_id: String,
    pub notify_type: String,
    pub app_id: String,
    pub order_id: String,
    pub out_trade_no: String,
    /// Fen.
    pub amount: i64,
    pub state: String,
    /// Always sent; optional when read.
    pub result_code: Option<String>,
    pub channel_id: Option<String>,
    pub channel_type: Option<String>,
    pub mch_id: Option<String>,
    pub transaction_id: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, Asia/Shanghai.
    pub pay_time: Option<String>,
    pub store_id: Option<String>,
    pub attach: Option<String>,
    /// A payment that arrived after the order was closed (the field is
    /// absent otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paid_after_close: bool,
    /// Refund notifications only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// Refund notifications only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_refund_no: Option<String>,
    /// Refund notifications only (fen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<i64>,
    /// `REFUND_FAIL` only: why (the channel's code, `REJECTED`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
}
