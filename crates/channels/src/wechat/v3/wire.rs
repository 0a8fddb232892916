//! WeChat Pay v3 wire types: the JSON bodies cashdesk sends and reads, and
//! the readers of the values in them (RFC 3339 times, refund statuses).
//! Unknown fields are ignored: WeChat adds fields without notice, and the
//! signature covers the raw body anyway.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::RefundOutcome;

#[derive(Debug, Serialize)]
pub struct V3Amount {
    pub total: i64,
    pub currency: &'static str,
}

#[derive(Debug, Serialize)]
pub struct V3Payer {
    pub openid: String,
}

/// The payer of a partner order: `sp_openid` (under the service
/// provider's AppID) or `sub_openid` (under `sub_appid`).
#[derive(Debug, Serialize)]
pub struct V3PartnerPayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sp_openid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_openid: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct V3H5Info {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Serialize)]
pub struct V3SceneInfo {
    pub payer_client_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h5_info: Option<V3H5Info>,
}

/// `POST /v3/pay/transactions/{jsapi|native|h5|app}`.
#[derive(Debug, Serialize)]
pub struct V3PrepayRequest {
    pub appid: String,
    pub mchid: String,
    pub description: String,
    pub out_trade_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    pub notify_url: String,
    pub amount: V3Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer: Option<V3Payer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene_info: Option<V3SceneInfo>,
}

/// `POST /v3/pay/partner/transactions/{jsapi|native|h5|app}`: a service
/// provider's order for a sub-merchant.
#[derive(Debug, Serialize)]
pub struct V3PartnerPrepayRequest {
    pub sp_appid: String,
    pub sp_mchid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_appid: Option<String>,
    pub sub_mchid: String,
    pub description: String,
    pub out_trade_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    pub notify_url: String,
    pub amount: V3Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer: Option<V3PartnerPayer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene_info: Option<V3SceneInfo>,
}

#[derive(Debug, Deserialize)]
pub struct V3PrepayResponse {
    #[serde(default)]
    pub prepay_id: Option<String>,
    #[serde(default)]
    pub code_url: Option<String>,
    #[serde(default)]
    pub h5_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct V3TransactionAmount {
    #[serde(default)]
    pub total: Option<i64>,
}

/// A transaction: the query answer and the decrypted `TRANSACTION.SUCCESS`
/// resource.
#[derive(Debug, Deserialize)]
pub struct V3Transaction {
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub mchid: Option<String>,
    /// Partner orders name the service provider and the sub-merchant
    /// instead of `appid`/`mchid`.
    #[serde(default)]
    pub sp_appid: Option<String>,
    #[serde(default)]
    pub sp_mchid: Option<String>,
    #[serde(default)]
    pub sub_appid: Option<String>,
    #[serde(default)]
    pub sub_mchid: Option<String>,
    #[serde(default)]
    pub attach: Option<String>,
    pub out_trade_no: String,
    #[serde(default)]
    pub transaction_id: Option<String>,
    pub trade_state: String,
    #[serde(default)]
    pub trade_state_desc: Option<String>,
    #[serde(default)]
    pub success_time: Option<String>,
    #[serde(default)]
    pub amount: Option<V3TransactionAmount>,
}

#[derive(Debug, Serialize)]
pub struct V3CloseRequest {
    pub mchid: String,
}

/// `POST /v3/pay/partner/transactions/out-trade-no/{no}/close`.
#[derive(Debug, Serialize)]
pub struct V3PartnerCloseRequest {
    pub sp_mchid: String,
    pub sub_mchid: String,
}

#[derive(Debug, Serialize)]
pub struct V3RefundAmount {
    pub refund: i64,
    pub total: i64,
    pub currency: &'static str,
}

/// `POST /v3/refund/domestic/refunds`.
#[derive(Debug, Serialize)]
pub struct V3RefundRequest {
    /// A service provider's refund for its sub-merchant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_mchid: Option<String>,
    pub out_trade_no: String,
    pub out_refund_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub notify_url: String,
    pub amount: V3RefundAmount,
}

#[derive(Debug, Deserialize)]
pub struct V3RefundAmountOut {
    pub refund: i64,
    #[serde(default)]
    pub total: Option<i64>,
}

/// A refund: the refund and refund-query answer.
#[derive(Debug, Deserialize)]
pub struct V3Refund {
    #[serde(default)]
    pub refund_id: Option<String>,
    pub out_refund_no: String,
    #[serde(default)]
    pub out_trade_no: Option<String>,
    #[serde(default)]
    pub transaction_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub success_time: Option<String>,
    #[serde(default)]
    pub amount: Option<V3RefundAmountOut>,
}

/// The decrypted `REFUND.*` resource.
#[derive(Debug, Deserialize)]
pub struct V3RefundResource {
    #[serde(default)]
    pub mchid: Option<String>,
    #[serde(default)]
    pub sp_mchid: Option<String>,
    #[serde(default)]
    pub sub_mchid: Option<String>,
    pub out_trade_no: String,
    #[serde(default)]
    pub transaction_id: Option<String>,
    pub out_refund_no: String,
    #[serde(default)]
    pub refund_id: Option<String>,
    pub refund_status: String,
    #[serde(default)]
    pub success_time: Option<String>,
    pub amount: V3RefundAmountOut,
}

/// A v3 error body: `{"code": "...", "message": "..."}`.
#[derive(Debug, Deserialize)]
pub struct V3ErrorBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// A v3 notification envelope.
#[derive(Debug, Deserialize)]
pub struct V3Notification {
    #[serde(default)]
    pub id: Option<String>,
    pub event_type: String,
    #[serde(default)]
    pub resource_type: Option<String>,
    pub resource: V3Resource,
}

#[derive(Debug, Deserialize)]
pub struct V3Resource {
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: Option<String>,
    pub nonce: String,
    #[serde(default)]
    pub original_type: Option<String>,
}

/// An RFC 3339 time (`2018-06-08T10:34:56+08:00`).
pub(super) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A refund's `status` / `refund_status`.
pub(super) fn refund_outcome(status: &str) -> Option<RefundOutcome> {
    match status {
        "SUCCESS" => Some(RefundOutcome::Success),
        "PROCESSING" => Some(RefundOutcome::Processing),
        "CLOSED" => Some(RefundOutcome::Closed),
        "ABNORMAL" => Some(RefundOutcome::Abnormal),
        _ => None,
    }
}
