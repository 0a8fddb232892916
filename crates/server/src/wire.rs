//! The server's answers. The merchant-facing types (responses, `payData`,
//! the notification body) are the contract crate's (`cashdesk-api`,
//! crates/api): one definition the server serializes and the SDK parses,
//! pinned by golden tests there. This module converts the store's models
//! into them — functions, not `From` impls, as both sides are foreign
//! here — and holds the operator's views (documented in docs/api.md, never
//! carrying a secret), which only the server has.

use cashdesk_core::time::{to_cn_datetime, to_rfc3339_cn};
use cashdesk_core::{
    BindingState, ChannelType, NotifyId, OrderState, RefundState, ResultCode, SceneCode, SignType,
};
use cashdesk_store::{
    App, AttemptOutcome, AuditEntry, Binding, BoundChannel, Channel, Notification,
    NotificationAttempt, NotificationState, NotifyType, Order, Refund,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

pub use cashdesk_api::{
    ApplyBindingResponse, CreateOrderResponse, MerchantNotification, OrderSignature, PayResult,
    PaymentChannel, PaymentList, PaymentResponse, PlatformKeys, RefundResult, RegisterAppResponse,
};

pub fn time(t: DateTime<Utc>) -> String {
    to_rfc3339_cn(t)
}

/// A human name for a scene, as the seed cashier shows it: the channel's
/// own ([`cashdesk_channels::ChannelMeta::scene_name`]).
pub fn scene_name(channel_type: ChannelType, scene: SceneCode) -> Option<&'static str> {
    cashdesk_channels::channel_meta(channel_type).and_then(|m| m.scene_name(scene))
}

/// One channel the buyer may pay with: `bound` offered to `app`.
pub fn payment_channel(app: &App, bound: &BoundChannel, public_url: &str) -> PaymentChannel {
    PaymentChannel {
        id: bound.binding.binding_id.to_string(),
        app_id: app.app_id.to_string(),
        app_name: app.app_name.clone(),
        channel_id: bound.channel.channel_id.to_string(),
        channel_type: bound.config.channel_type.as_str().to_owned(),
        channel_name: bound.channel.channel_name.clone(),
        scene_name: scene_name(bound.config.channel_type, bound.channel.scene_code)
            .map(str::to_owned),
        scene_code: bound.channel.scene_code.as_str().to_owned(),
        config_id: bound.config.config_id.to_string(),
        mch_id: Some(bound.config.mch_id.clone()),
        url: format!("{public_url}/api/cashier-desk/payment"),
        method: "POST".to_owned(),
        enctype: "application/json".to_owned(),
        sort: i64::from(bound.channel.sort),
    }
}

/// `query-pay-result` and `close`: the order as the merchant sees it.
pub fn pay_result(o: &Order) -> PayResult {
    PayResult {
        order_id: o.order_id.to_string(),
        out_trade_no: o.out_trade_no.to_string(),
        amount: o.amount.get(),
        state: o.state,
        result_code: o.state.result_code(),
        channel_id: o.channel.as_ref().map(|c| c.channel_id.to_string()),
        channel_type: o
            .channel
            .as_ref()
            .map(|c| c.channel_type.as_str().to_owned()),
        mch_id: o.channel.as_ref().map(|c| c.mch_id.clone()),
        transaction_id: o.transaction_id.clone(),
        pay_time: o.pay_time.map(to_cn_datetime),
        refunded_amount: o.refunded_amount.get(),
        result_error_code: o.result_error_code.clone(),
        result_error_msg: o.result_error_msg.clone(),
        store_id: o.store_id.as_ref().map(|s| s.to_string()),
        attach: o.attach.clone(),
        paid_after_close: o.paid_after_close,
    }
}

// --- admin views ---

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    pub app_id: String,
    pub app_name: String,
    pub sign_type: SignType,
    pub public_key_pem: Option<String>,
    pub notify_url: Option<cashdesk_core::NotifyUrl>,
    pub refund_review: bool,
    /// Who decides refund applications, within how many days, and what
    /// the timeout decides.
    pub refund_applications: cashdesk_core::RefundApplicationPolicy,
    pub auto_refund_paid_after_close: bool,
    pub enabled: bool,
    pub created_at: String,
    /// After a key rotation: until when the previous key is still
    /// accepted (absent when there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_key_valid_until: Option<String>,
    /// Whether the app has signed a request with its current key since the
    /// last rotation; until then notifications to a shared-key app are
    /// signed with the previous key.
    pub key_confirmed: bool,
}

/// The answer to an app key rotation: the new key, shown this once
/// (shared-key apps; RSA2/SM2 apps registered a new public key), and until
/// when the previous one is still accepted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotatedKeyView {
    pub app_id: String,
    pub sign_type: SignType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    pub previous_key_valid_until: String,
}

/// The answer to an app settings change: the app afterwards, and when the
/// notify URL was changed, how many undelivered notifications were
/// readdressed to the new one.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSettingsView {
    #[serde(flatten)]
    pub app: AppView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications_readdressed: Option<u64>,
}

impl From<&App> for AppView {
    fn from(a: &App) -> Self {
        Self {
            app_id: a.app_id.to_string(),
            app_name: a.app_name.clone(),
            sign_type: a.sign_type,
            public_key_pem: a.public_key_pem.clone(),
            notify_url: a.notify_url.clone(),
            refund_review: a.refund_review,
            refund_applications: a.refund_applications,
            auto_refund_paid_after_close: a.auto_refund_paid_after_close,
            enabled: a.enabled,
            created_at: time(a.created_at),
            previous_key_valid_until: a.previous_key_at(Utc::now()).map(|p| time(p.valid_until)),
            key_confirmed: a.key_confirmed,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelConfigView {
    pub config_id: String,
    pub channel_type: ChannelType,
    pub name: String,
    pub mch_id: String,
    pub api_version: Option<String>,
    /// Same keys as stored, every value replaced by `"***"`.
    pub credentials: Value,
    pub base_url: Option<String>,
    pub enabled: bool,
    pub created_at: String,
    /// When the credentials were last replaced (absent: as created).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_updated_at: Option<String>,
    /// What the channel can do, from its factory.
    pub capabilities: Option<ChannelCapabilities>,
}

/// A channel type's capabilities as the admin API shows them: the scenes
/// a channel of the config may have, whether a refund's answer is its
/// outcome (`SYNC`) or the outcome comes later by notification or query
/// (`ASYNC`), and the app whose browser can pay JSAPI after the channel's
/// web OAuth (`wechat`; the config needs `credentials.appSecret`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelCapabilities {
    pub scenes: Vec<SceneCode>,
    pub refunds: &'static str,
    #[serde(rename = "payerOAuth")]
    pub payer_oauth: Option<&'static str>,
}

impl ChannelCapabilities {
    pub fn of(channel_type: ChannelType) -> Option<Self> {
        cashdesk_channels::channel_meta(channel_type).map(|m| Self {
            scenes: m.scene_codes().collect(),
            refunds: m.refunds.as_str(),
            payer_oauth: m.payer_oauth.map(|a| a.as_str()),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    pub channel_id: String,
    pub config_id: String,
    pub scene_code: SceneCode,
    pub scene_name: Option<String>,
    pub channel_name: String,
    pub sort: i32,
    pub enabled: bool,
    pub created_at: String,
}

impl ChannelView {
    pub fn new(c: &Channel, channel_type: Option<ChannelType>) -> Self {
        Self {
            channel_id: c.channel_id.to_string(),
            config_id: c.config_id.to_string(),
            scene_code: c.scene_code,
            scene_name: channel_type
                .and_then(|t| scene_name(t, c.scene_code))
                .map(str::to_owned),
            channel_name: c.channel_name.clone(),
            sort: c.sort,
            enabled: c.enabled,
            created_at: time(c.created_at),
        }
    }
}

/// A store as the operator sees it, with its identities.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreView {
    pub app_id: String,
    pub store_id: String,
    pub name: String,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub identities: Vec<StoreIdentityView>,
}

impl StoreView {
    pub fn new(s: &cashdesk_store::MerchantStore, identities: Vec<StoreIdentityView>) -> Self {
        Self {
            app_id: s.app_id.to_string(),
            store_id: s.store_id.to_string(),
            name: s.name.clone(),
            enabled: s.enabled,
            created_at: time(s.created_at),
            updated_at: time(s.updated_at),
            identities,
        }
    }
}

/// A store's identity at one channel config: secret fields (an Alipay
/// app auth token) replaced by `"***"`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreIdentityView {
    pub config_id: String,
    /// `None` if the config is gone.
    pub channel_type: Option<ChannelType>,
    /// The merchant id the store is paid to at that config.
    pub mch_id: String,
    pub identity: Value,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingView {
    pub binding_id: String,
    pub app_id: String,
    pub channel_id: String,
    pub store_id: Option<String>,
    pub state: BindingState,
    pub created_at: String,
    pub auto_approve_at: Option<String>,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
}

impl From<&Binding> for BindingView {
    fn from(b: &Binding) -> Self {
        Self {
            binding_id: b.binding_id.to_string(),
            app_id: b.app_id.to_string(),
            channel_id: b.channel_id.to_string(),
            store_id: b.store_id.as_ref().map(|s| s.to_string()),
            state: b.state,
            created_at: time(b.created_at),
            auto_approve_at: b.auto_approve_at.map(time),
            decided_at: b.decided_at.map(time),
            decided_by: b.decided_by.clone(),
        }
    }
}

/// An order as the operator sees it (the cashier token is left out: it is
/// the buyer's credential).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub app_id: String,
    pub out_trade_no: String,
    pub amount: i64,
    pub order_title: String,
    pub goods_desc: String,
    pub third_party_user: String,
    pub notify_url: Option<cashdesk_core::NotifyUrl>,
    pub return_url: Option<String>,
    pub store_id: Option<String>,
    pub attach: Option<String>,
    pub client_ip: Option<String>,
    pub expire_at: String,
    pub state: OrderState,
    pub result_code: ResultCode,
    pub channel_id: Option<String>,
    pub channel_type: Option<String>,
    pub config_id: Option<String>,
    pub mch_id: Option<String>,
    pub scene_code: Option<String>,
    pub transaction_id: Option<String>,
    pub pay_time: Option<String>,
    pub refunded_amount: i64,
    pub result_error_code: Option<String>,
    pub result_error_msg: Option<String>,
    pub paid_after_close: bool,
    pub created_at: String,
    pub updated_at: String,
    /// The channel's fee on the payment, once a reconciliation read it
    /// (`GET /api/admin/orders/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_fee: Option<ChannelFeeView>,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        Self {
            order_id: o.order_id.to_string(),
            app_id: o.app_id.to_string(),
            out_trade_no: o.out_trade_no.to_string(),
            amount: o.amount.get(),
            order_title: o.order_title.clone(),
            goods_desc: o.goods_desc.clone(),
            third_party_user: o.third_party_user.clone(),
            notify_url: o.notify_url.clone(),
            return_url: o.return_url.clone(),
            store_id: o.store_id.as_ref().map(|s| s.to_string()),
            attach: o.attach.clone(),
            client_ip: o.client_ip.clone(),
            expire_at: time(o.expire_at),
            state: o.state,
            result_code: o.state.result_code(),
            channel_id: o.channel.as_ref().map(|c| c.channel_id.to_string()),
            channel_type: o
                .channel
                .as_ref()
                .map(|c| c.channel_type.as_str().to_owned()),
            config_id: o.channel.as_ref().map(|c| c.config_id.to_string()),
            mch_id: o.channel.as_ref().map(|c| c.mch_id.clone()),
            scene_code: o.channel.as_ref().map(|c| c.scene_code.as_str().to_owned()),
            transaction_id: o.transaction_id.clone(),
            pay_time: o.pay_time.map(to_cn_datetime),
            refunded_amount: o.refunded_amount.get(),
            result_error_code: o.result_error_code.clone(),
            result_error_msg: o.result_error_msg.clone(),
            paid_after_close: o.paid_after_close,
            created_at: time(o.created_at),
            updated_at: time(o.updated_at),
            channel_fee: None,
        }
    }
}

/// The channel's fee on one payment or refund as a reconciliation read it
/// from the bill of `billDate`: yuan with 5 decimals as the bill states it
/// (negative on a refund), rounded to the fen, and the rate.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelFeeView {
    pub fee: String,
    pub fee_fen: i64,
    pub rate: Option<String>,
    pub bill_date: String,
    pub config_id: String,
}

impl From<&cashdesk_store::RecordedFee> for ChannelFeeView {
    fn from(f: &cashdesk_store::RecordedFee) -> Self {
        Self {
            fee: crate::recon::views::fee_yuan(f.fee.fee_e5),
            fee_fen: crate::recon::views::e5_to_fen(f.fee.fee_e5),
            rate: f.fee.rate.clone(),
            bill_date: f.bill_date.to_string(),
            config_id: f.config_id.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Value,
    /// The actor's role (`app` for a signed merchant request; absent for
    /// cashdesk itself and for entries older than roles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The client address the action came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The object before and after the change, where the action has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

impl From<&AuditEntry> for AuditView {
    fn from(a: &AuditEntry) -> Self {
        Self {
            at: time(a.at),
            actor: a.actor.clone(),
            action: a.action.clone(),
            target: a.target.clone(),
            detail: a.detail.clone(),
            role: a.role.clone(),
            ip: a.ip.clone(),
            before: a.before.clone(),
            after: a.after.clone(),
        }
    }
}

/// A refund as the merchant sees it (`POST /refunds`, `GET
/// /refunds/{outRefundNo}`); `refundedAmount` is its order's.
pub fn refund_result(r: &Refund, order: &Order) -> RefundResult {
    RefundResult {
        refund_id: r.refund_id.to_string(),
        out_refund_no: r.out_refund_no.to_string(),
        out_trade_no: order.out_trade_no.to_string(),
        order_id: r.order_id.to_string(),
        amount: r.amount.get(),
        state: r.state,
        reason: r.reason.clone(),
        channel_refund_id: r.channel_refund_id.clone(),
        error_code: r.error_code.clone(),
        error_msg: r.error_msg.clone(),
        refunded_amount: order.refunded_amount.get(),
        created_at: time(r.created_at),
        finished_at: r.finished_at.map(time),
    }
}

/// A refund as the operator sees it: the merchant's view plus the app,
/// the notify URL and the poller's bookkeeping.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    #[serde(flatten)]
    pub refund: RefundResult,
    pub app_id: String,
    pub notify_url: Option<cashdesk_core::NotifyUrl>,
    pub order_amount: i64,
    pub order_state: OrderState,
    pub updated_at: String,
    pub next_query_at: Option<String>,
    pub query_attempts: u32,
    /// The channel's fee given back on the refund, once a reconciliation
    /// read it (`GET /api/admin/refunds/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_fee: Option<ChannelFeeView>,
}

impl RefundView {
    pub fn new(r: &Refund, order: &Order) -> Self {
        Self {
            refund: refund_result(r, order),
            app_id: r.app_id.to_string(),
            notify_url: r.notify_url.clone(),
            order_amount: order.amount.get(),
            order_state: order.state,
            updated_at: time(r.updated_at),
            next_query_at: r.next_query_at.map(time),
            query_attempts: r.query_attempts,
            channel_fee: None,
        }
    }
}

/// A `PAY_*` notification about `order` as it is after the event
/// (`state`/`resultCode` are the order's).
pub fn order_notification(
    notify_id: &NotifyId,
    notify_type: NotifyType,
    order: &Order,
) -> MerchantNotification {
    let ch = order.channel.as_ref();
    MerchantNotification {
        notify_id: notify_id.to_string(),
        notify_type: notify_type.as_str().to_owned(),
        app_id: order.app_id.to_string(),
        order_id: order.order_id.to_string(),
        out_trade_no: order.out_trade_no.to_string(),
        amount: order.amount.get(),
        state: order.state.as_str().to_owned(),
        result_code: Some(order.state.result_code().as_str().to_owned()),
        channel_id: ch.map(|c| c.channel_id.to_string()),
        channel_type: ch.map(|c| c.channel_type.as_str().to_owned()),
        mch_id: ch.map(|c| c.mch_id.clone()),
        transaction_id: order.transaction_id.clone(),
        pay_time: order.pay_time.map(to_cn_datetime),
        store_id: order.store_id.as_ref().map(|s| s.to_string()),
        attach: order.attach.clone(),
        paid_after_close: order.paid_after_close,
        refund_id: None,
        out_refund_no: None,
        refund_amount: None,
        error_code: None,
        error_msg: None,
    }
}

/// A `REFUND_*` notification about `refund` as it is after the event:
/// `state`/`resultCode` are the refund's (`SUCCESS` → `SUCCESS`; `FAIL` or
/// `REJECTED` → `FAIL`), with the refund's fields; the order's fields are
/// the paid order's, which a refund does not change.
pub fn refund_notification(
    notify_id: &NotifyId,
    notify_type: NotifyType,
    refund: &Refund,
    order: &Order,
) -> MerchantNotification {
    let mut body = order_notification(notify_id, notify_type, order);
    body.state = refund.state.as_str().to_owned();
    body.result_code = Some(
        match refund.state {
            RefundState::Success => ResultCode::Success,
            _ => ResultCode::Fail,
        }
        .as_str()
        .to_owned(),
    );
    body.refund_id = Some(refund.refund_id.to_string());
    body.out_refund_no = Some(refund.out_refund_no.to_string());
    body.refund_amount = Some(refund.amount.get());
    body.error_code = refund.error_code.clone();
    body.error_msg = refund.error_msg.clone();
    body
}

/// A notification as the operator sees it, with its attempts when one is
/// shown alone.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    pub notify_id: String,
    pub app_id: String,
    pub order_id: String,
    pub refund_id: Option<String>,
    pub notify_type: NotifyType,
    pub url: cashdesk_core::NotifyUrl,
    pub state: NotificationState,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
    /// The exact JSON that is POSTed (parsed, for reading).
    pub body: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptView>>,
}

impl From<&Notification> for NotificationView {
    fn from(n: &Notification) -> Self {
        Self {
            notify_id: n.notify_id.to_string(),
            app_id: n.app_id.to_string(),
            order_id: n.order_id.to_string(),
            refund_id: n.refund_id.as_ref().map(|r| r.to_string()),
            notify_type: n.notify_type,
            url: n.url.clone(),
            state: n.state,
            attempts: n.attempts,
            next_attempt_at: (n.state == NotificationState::Pending)
                .then(|| time(n.next_attempt_at)),
            lease_owner: n.lease_owner.clone(),
            lease_until: n.lease_until.map(time),
            created_at: time(n.created_at),
            delivered_at: n.delivered_at.map(time),
            last_error: n.last_error.clone(),
            body: serde_json::from_str(&n.body).unwrap_or_else(|_| Value::String(n.body.clone())),
            attempt_log: None,
        }
    }
}

/// One logged delivery attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub at: String,
    /// The instance (lease owner) that made it.
    pub owner: String,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// The first bytes of the reply (at most 512).
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    /// `DELIVERED`, `RETRY_AT` (with `retryAt`) or `FAILED`.
    pub outcome: &'static str,
    pub retry_at: Option<String>,
}

impl From<&NotificationAttempt> for AttemptView {
    fn from(a: &NotificationAttempt) -> Self {
        let (outcome, retry_at) = match a.outcome {
            AttemptOutcome::Delivered => ("DELIVERED", None),
            AttemptOutcome::RetryAt(t) => ("RETRY_AT", Some(time(t))),
            AttemptOutcome::Failed => ("FAILED", None),
        };
        Self {
            at: time(a.at),
            owner: a.owner.clone(),
            http_status: a.http_status,
            latency_ms: a.latency_ms,
            response_excerpt: a.response_excerpt.clone(),
            error: a.error.clone(),
            outcome,
            retry_at,
        }
    }
}
