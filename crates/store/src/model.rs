//! Rows as the rest of cashdesk sees them: parsed domain types, never raw
//! strings. Secrets are stored sealed (see `cashdesk_crypto::secretbox`);
//! the store never sees them in clear.

use cashdesk_core::{
    AppId, BindingId, BindingState, ChannelId, ChannelType, ConfigId, Fen, OrderId, OrderState,
    OutTradeNo, SceneCode, SignType, StoreId,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub app_id: AppId,
    pub app_name: String,
    pub sign_type: SignType,
    /// The app key sealed under the master key (AAD `app:<appId>:key`).
    pub app_key_sealed: Vec<u8>,
    /// RSA2/SM2 apps: the app's public key (PEM).
    pub public_key_pem: Option<String>,
    pub notify_url: Option<String>,
    pub refund_review: bool,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConfig {
    pub config_id: ConfigId,
    pub channel_type: ChannelType,
    pub name: String,
    pub mch_id: String,
    pub api_version: Option<String>,
    /// The credentials JSON sealed under the master key (AAD `config:<configId>:credentials`).
    pub credentials_sealed: Vec<u8>,
    pub base_url: Option<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub channel_id: ChannelId,
    pub config_id: ConfigId,
    pub scene_code: SceneCode,
    pub channel_name: String,
    pub sort: i32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub binding_id: BindingId,
    pub app_id: AppId,
    pub channel_id: ChannelId,
    /// `None`: the binding holds for every store of the app.
    pub store_id: Option<StoreId>,
    pub state: BindingState,
    pub created_at: DateTime<Utc>,
    /// When a pending binding is approved automatically, if configured.
    pub auto_approve_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
}

/// An approved binding of an enabled channel of an enabled config: what an
/// order may be paid with.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundChannel {
    pub binding: Binding,
    pub channel: Channel,
    pub config: ChannelConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub order_id: OrderId,
    pub app_id: AppId,
    pub out_trade_no: OutTradeNo,
    pub amount: Fen,
    pub order_title: String,
    pub goods_desc: String,
    pub third_party_user: String,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub store_id: Option<StoreId>,
    pub attach: Option<String>,
    pub client_ip: Option<String>,
    /// Opaque random cashier token (unique).
    pub token: String,
    pub expire_at: DateTime<Utc>,
    /// Hash of the merchant's request body, for idempotency (same body → same answer).
    pub request_hash: String,
    /// The `data` of the original answer, returned again on an identical retry.
    pub response: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub order_id: OrderId,
    pub app_id: AppId,
    pub out_trade_no: OutTradeNo,
    pub amount: Fen,
    pub order_title: String,
    pub goods_desc: String,
    pub third_party_user: String,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub store_id: Option<StoreId>,
    pub attach: Option<String>,
    pub client_ip: Option<String>,
    pub token: String,
    pub expire_at: DateTime<Utc>,
    pub request_hash: String,
    pub response: serde_json::Value,
    pub state: OrderState,
    /// The channel the buyer chose (set when the order moves to PAYING).
    pub channel: Option<OrderChannel>,
    pub transaction_id: Option<String>,
    pub pay_time: Option<DateTime<Utc>>,
    pub refunded_amount: Fen,
    pub result_error_code: Option<String>,
    pub result_error_msg: Option<String>,
    pub paid_after_close: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderChannel {
    pub channel_id: ChannelId,
    pub channel_type: ChannelType,
    pub config_id: ConfigId,
    pub mch_id: String,
    pub scene_code: SceneCode,
}

/// A compare-and-set on an order: applied only if the order's state is one
/// of `from`. Fields left `None` are not changed.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderTransition {
    pub from: Vec<OrderState>,
    pub to: OrderState,
    pub channel: Option<OrderChannel>,
    pub transaction_id: Option<String>,
    pub pay_time: Option<DateTime<Utc>>,
    pub result_error_code: Option<String>,
    pub result_error_msg: Option<String>,
    pub paid_after_close: Option<bool>,
    pub now: DateTime<Utc>,
}

impl OrderTransition {
    pub fn new(from: &[OrderState], to: OrderState, now: DateTime<Utc>) -> Self {
        Self {
            from: from.to_vec(),
            to,
            channel: None,
            transaction_id: None,
            pay_time: None,
            result_error_code: None,
            result_error_msg: None,
            paid_after_close: None,
            now,
        }
    }
}

/// The outcome of an insert that may meet an existing row with the same key.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted<T> {
    New(T),
    Existing(T),
}

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub app_id: Option<AppId>,
    pub state: Option<OrderState>,
    /// Only orders whose id sorts before this one (ids are time-ordered).
    pub before: Option<OrderId>,
    /// Page size; 0 means the default (100), larger than 1000 means 1000.
    pub limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct BindingFilter {
    pub app_id: Option<AppId>,
    pub state: Option<BindingState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}
