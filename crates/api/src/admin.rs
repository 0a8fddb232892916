//! The filters of the operator lists (`GET /api/admin/orders`, `…/refunds`,
//! `…/bindings`, `…/notifications`), as query-string parameters. The SDK's
//! `AdminClient` and the CLI send them; the server reads the query string
//! itself (each parameter by its own rule, a refusal naming it: see
//! crates/server/src/admin/), and its tests check that every name here is
//! one it reads.
//!
//! Every filter is optional; an absent one is not sent.

use cashdesk_core::BindingState;
use serde::{Deserialize, Serialize};

/// A list filter as `name=value` pairs (names in alphabetical order, unset
/// filters left out), ready to be URL-encoded.
pub trait QueryPairs: Serialize {
    fn query_pairs(&self) -> Vec<(String, String)> {
        let serde_json::Value::Object(fields) =
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        else {
            return Vec::new();
        };
        fields
            .into_iter()
            .filter_map(|(name, value)| match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some((name, s)),
                other => Some((name, other.to_string())),
            })
            .collect()
    }
}

/// Filters of `GET /api/admin/orders` (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OrderQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Only this store's orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// An order state such as `CREATED` or `SUCCESS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The merchant's order number (unique per app; orders of every app
    /// that used it unless `app_id` is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    /// 1 to 500 (server default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// An orderId: only older orders (paging).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

impl QueryPairs for OrderQuery {}

/// Filters of `GET /api/admin/refunds` (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RefundQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Only the refunds of this order (an orderId).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// A refund state such as `PENDING_REVIEW` or `PROCESSING`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// 1 to 500 (server default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// A refundId: only older refunds (paging).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

impl QueryPairs for RefundQuery {}

/// Filters of `GET /api/admin/bindings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BindingQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<BindingState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

impl QueryPairs for BindingQuery {}

/// Filters of `GET /api/admin/notifications` (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NotificationQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// 1 to 500 (server default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// A notifyId: only older notifications (paging).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

impl QueryPairs for NotificationQuery {}

/// Filters of `GET /api/admin/reconciliations` (newest day first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReconRunQuery {
    /// The bill day, `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
    /// `RUNNING`, `NOT_READY`, `FAILED` or `DONE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// 1 to 500 (server default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl QueryPairs for ReconRunQuery {}

/// Filters of `GET /api/admin/reconciliations/findings` (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FindingQuery {
    /// The bill day, `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
    /// `CHANNEL_ONLY`, `LOCAL_ONLY`, `AMOUNT_MISMATCH`, … (docs/reconciliation.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `OPEN`, `REPAIRED` or `RESOLVED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// 1 to 1000 (server default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// A findingId: only older findings (paging).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

impl QueryPairs for FindingQuery {}

/// `POST /api/admin/reconciliations/run`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconRunRequest {
    /// The bill day, `YYYY-MM-DD` (a day that is over in China).
    pub date: String,
    /// One channel config; absent: every enabled one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
    /// Download the bill again instead of reading the kept copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refetch: Option<bool>,
}

/// Filters of `GET /api/admin/reconciliations/statement` (`format=csv`
/// asks for CSV instead of the JSON envelope).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StatementQuery {
    /// The bill day, `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// 1 to 1000 (server default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl QueryPairs for StatementQuery {}
