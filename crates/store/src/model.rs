//! Rows as the rest of cashdesk sees them: parsed domain types, never raw
//! strings. Secrets are stored sealed (see `cashdesk_crypto::secretbox`);
//! the store never sees them in clear.

use std::fmt;

use cashdesk_core::{
    AppId, BindingId, BindingState, ChannelId, ChannelType, ConfigId, Fen, NotifyId, NotifyUrl,
    OrderId, OrderState, OutRefundNo, OutTradeNo, RefundApplicationPolicy, RefundId, RefundState,
    SceneCode, SignType, StoreId,
};
use chrono::{DateTime, Duration, Utc};
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
    pub notify_url: Option<NotifyUrl>,
    pub refund_review: bool,
    /// A payment for an order that was already closed (paidAfterClose) is
    /// refunded automatically.
    pub auto_refund_paid_after_close: bool,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    /// The key the app had before its last rotation, while it is still
    /// accepted.
    pub previous_key: Option<PreviousAppKey>,
    /// Whether the app has signed a request with its current key since its
    /// last rotation (true for an app never rotated). Until it has, what
    /// cashdesk signs for a shared-key app is signed with the previous key.
    pub key_confirmed: bool,
    /// Who decides the app's refund applications, and when the timeout does.
    pub refund_applications: RefundApplicationPolicy,
}

/// An app's key before its last rotation: accepted on incoming requests
/// until `valid_until` (the overlap window the operator chose).
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousAppKey {
    /// Sealed like [`App::app_key_sealed`] (same AAD).
    pub key_sealed: Vec<u8>,
    /// RSA2/SM2 apps: the previous public key (PEM).
    pub public_key_pem: Option<String>,
    pub valid_until: DateTime<Utc>,
}

impl App {
    /// The previous key if it is still accepted at `now`.
    pub fn previous_key_at(&self, now: DateTime<Utc>) -> Option<&PreviousAppKey> {
        self.previous_key.as_ref().filter(|p| p.valid_until > now)
    }
}

/// An operator's change of an app's settings: `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppSettingsUpdate {
    pub refund_review: Option<bool>,
    pub refund_applications: Option<RefundApplicationPolicy>,
    pub auto_refund_paid_after_close: Option<bool>,
    /// `Some(None)` removes the app's notify URL.
    pub notify_url: Option<Option<NotifyUrl>>,
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
    /// When the credentials were last replaced (`None`: as created).
    pub credentials_updated_at: Option<DateTime<Utc>>,
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
    pub notify_url: Option<NotifyUrl>,
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
    pub notify_url: Option<NotifyUrl>,
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
    /// When the poller should next ask the channel about this order (while
    /// it is PAYING). `None`: not scheduled explicitly, so due
    /// [`QuerySchedule::first_after`] after `updated_at`.
    pub next_query_at: Option<DateTime<Utc>>,
    /// How many times the poller has claimed this order.
    pub query_attempts: u32,
    /// The store identity the order is being paid with (sealed, as in
    /// [`StoreIdentity::identity_sealed`]); set with the channel when the
    /// order moves to PAYING, `None` when the config's own account is used.
    pub store_identity_sealed: Option<Vec<u8>>,
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
    /// Schedules the poller's next query (typically set on → PAYING).
    pub next_query_at: Option<DateTime<Utc>>,
    /// Written together with `channel` (and only then): the sealed store
    /// identity the channel is used with, `None` for the config's own
    /// account.
    pub store_identity_sealed: Option<Vec<u8>>,
    /// Written in the same transaction as the change, and only if it
    /// happens (an operator's decision is recorded exactly when it takes
    /// effect).
    pub audit: Option<AuditEntry>,
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
            next_query_at: None,
            store_identity_sealed: None,
            audit: None,
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
    /// The caller's app scope: `None` every app, `Some(apps)` only these
    /// (an empty list matches nothing). Applied on top of `app_id`.
    pub app_ids: Option<Vec<AppId>>,
    pub app_id: Option<AppId>,
    /// Only this order (with the other conditions: a scope still applies).
    pub order_id: Option<OrderId>,
    /// Only orders with this channel transaction id.
    pub transaction_id: Option<String>,
    /// Only orders of this buyer (`thirdPartyUser`: WeChat openid, Alipay
    /// buyer id).
    pub buyer_id: Option<String>,
    /// Only orders paid (or being paid) through this channel.
    pub channel_id: Option<ChannelId>,
    /// Only orders of this channel type.
    pub channel_type: Option<ChannelType>,
    /// Only orders created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only orders created before this time.
    pub created_to: Option<DateTime<Utc>>,
    /// Only orders of this store (of any app unless `app_id` is set too).
    pub store_id: Option<StoreId>,
    pub state: Option<OrderState>,
    /// Only orders with this merchant order number (one per app; of any
    /// app unless `app_id` is set too).
    pub out_trade_no: Option<OutTradeNo>,
    /// Only orders whose id sorts before this one (ids are time-ordered).
    pub before: Option<OrderId>,
    /// Page size; 0 means the default (100), larger than 1000 means 1000.
    pub limit: u32,
}

// --- stores ---

/// A store of an app (one shop of a chain): what an order's or a
/// binding's `storeId` names. `(app_id, store_id)` is unique.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantStore {
    pub app_id: AppId,
    pub store_id: StoreId,
    pub name: String,
    /// A disabled store takes no new orders, payments or applications.
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A store's own merchant identity at one channel config: the
/// channel-specific fields (validated by the channel adapter) as a JSON
/// object sealed under the master key, AAD
/// `store:<appId>:<storeId>:<configId>:identity`. The store never sees
/// them in clear.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreIdentity {
    pub app_id: AppId,
    pub store_id: StoreId,
    pub config_id: ConfigId,
    /// The merchant id the identity amounts to at the channel (WeChat
    /// `sub_mch_id`, Lakala `merchant_no`, …), for display and the order's
    /// `mchId`.
    pub mch_id: String,
    pub identity_sealed: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What [`crate::MerchantStores::update_store`] changes; `None` keeps the value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreUpdate {
    pub name: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct BindingFilter {
    /// The caller's app scope, as [`OrderFilter::app_ids`].
    pub app_ids: Option<Vec<AppId>>,
    pub app_id: Option<AppId>,
    pub state: Option<BindingState>,
}

/// The audit log's listing: newest first, each condition optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Actions starting with this (`refund.` matches `refund.approve`).
    pub action_prefix: Option<String>,
    /// Targets starting with this.
    pub target_prefix: Option<String>,
    /// At or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only entries whose id is below this one ([`AuditRecord::id`]).
    pub before: Option<i64>,
    /// Page size; 0 means the default (100), larger than 1000 means 1000.
    pub limit: u32,
}

/// A stored audit entry with its id (ids grow with insertion: the
/// listing's cursor).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: AuditEntry,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
    /// The actor's role (`None`: the system, or an entry older than roles).
    pub role: Option<String>,
    /// The client address the action came from.
    pub ip: Option<String>,
    /// The object before and after the change, where the action has them
    /// (never a secret).
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl AuditEntry {
    /// The entry with the object before and after the change.
    pub fn with_change(mut self, before: serde_json::Value, after: serde_json::Value) -> Self {
        self.before = Some(before);
        self.after = Some(after);
        self
    }
}

/// When the poller asks a channel about a PAYING order or a PROCESSING
/// refund. A claim pushes the row's next query time forward by the delay
/// for its attempt number, so the pushed time also works as the claim's
/// lease: an instance that dies mid-query leaves the row due again later.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySchedule {
    /// A row with no explicit `next_query_at` is first due this long after
    /// its last change (`updated_at`: the move to PAYING / PROCESSING).
    pub first_after: Duration,
    /// After the n-th claim (n ≥ 1) the next query is `delays[n - 1]`
    /// later; past the end the last delay repeats. Empty: `first_after`.
    pub delays: Vec<Duration>,
}

impl QuerySchedule {
    /// The delay before the next query after claim number `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let i = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.delays
            .get(i)
            .or_else(|| self.delays.last())
            .copied()
            .unwrap_or(self.first_after)
    }
}

impl Default for QuerySchedule {
    /// First after a minute, then backing off to every ten minutes.
    fn default() -> Self {
        Self {
            first_after: Duration::seconds(60),
            delays: [60, 120, 300, 600]
                .into_iter()
                .map(Duration::seconds)
                .collect(),
        }
    }
}

// --- refunds ---

/// A merchant's refund request, as [`crate::Refunds::insert_refund`] takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRefund {
    pub refund_id: RefundId,
    pub app_id: AppId,
    pub order_id: OrderId,
    pub out_refund_no: OutRefundNo,
    pub amount: Fen,
    pub reason: Option<String>,
    pub notify_url: Option<NotifyUrl>,
    /// Hash of the merchant's request body (same body → same answer,
    /// another body → 409, decided by the caller).
    pub request_hash: String,
    pub created_at: DateTime<Utc>,
}

/// The state a new refund starts in: `PendingReview` for apps with refund
/// review on, `Processing` otherwise (it goes to the channel at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialRefundState {
    PendingReview,
    Processing,
}

impl InitialRefundState {
    pub fn state(self) -> RefundState {
        match self {
            Self::PendingReview => RefundState::PendingReview,
            Self::Processing => RefundState::Processing,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub refund_id: RefundId,
    pub app_id: AppId,
    pub order_id: OrderId,
    pub out_refund_no: OutRefundNo,
    pub amount: Fen,
    pub reason: Option<String>,
    pub notify_url: Option<NotifyUrl>,
    pub state: RefundState,
    pub request_hash: String,
    /// The channel's refund id, once known.
    pub channel_refund_id: Option<String>,
    pub error_code: Option<String>,
    pub error_msg: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// As for orders: the poller's next query while PROCESSING.
    pub next_query_at: Option<DateTime<Utc>>,
    pub query_attempts: u32,
}

/// The outcome of [`crate::Refunds::insert_refund`].
#[derive(Debug, Clone, PartialEq)]
pub enum RefundInsert {
    /// Stored; the refundable amount was held for it.
    New(Refund),
    /// A refund with the same (app, outRefundNo) exists: returned as stored
    /// (the caller compares `request_hash`). Nothing was changed.
    Existing(Refund),
    /// The amount is more than what is left: `refundable` is the order's
    /// amount minus the refunds that hold an amount
    /// ([`RefundState::holds_amount`]). Nothing was stored.
    ExceedsRefundable { refundable: Fen },
    /// The order is not (or no longer) refundable (not paid, or FINISH).
    /// Nothing was stored.
    OrderNotRefundable { state: OrderState },
}

/// A compare-and-set on a refund: applied only if the refund's state is one
/// of `from`. Fields left `None` are not changed.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundTransition {
    pub from: Vec<RefundState>,
    pub to: RefundState,
    pub channel_refund_id: Option<String>,
    pub error_code: Option<String>,
    pub error_msg: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    /// As [`OrderTransition::audit`].
    pub audit: Option<AuditEntry>,
    pub now: DateTime<Utc>,
}

impl RefundTransition {
    pub fn new(from: &[RefundState], to: RefundState, now: DateTime<Utc>) -> Self {
        Self {
            from: from.to_vec(),
            to,
            channel_refund_id: None,
            error_code: None,
            error_msg: None,
            finished_at: None,
            audit: None,
            now,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RefundFilter {
    /// The caller's app scope, as [`OrderFilter::app_ids`].
    pub app_ids: Option<Vec<AppId>>,
    pub app_id: Option<AppId>,
    pub order_id: Option<OrderId>,
    pub state: Option<RefundState>,
    /// Only refunds whose id sorts before this one (ids are time-ordered).
    pub before: Option<RefundId>,
    /// Page size; 0 means the default (100), larger than 1000 means 1000.
    pub limit: u32,
}

// --- merchant notifications (the outbox) ---

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// The terminal events a merchant is told about (ARCHITECTURE.md §5.3).
    NotifyType {
        PaySuccess = "PAY_SUCCESS",
        PayClosed = "PAY_CLOSED",
        RefundSuccess = "REFUND_SUCCESS",
        RefundFail = "REFUND_FAIL",
    }
);

text_enum!(
    /// `PENDING` (to be sent, or being sent under a lease) → `DELIVERED`
    /// (acknowledged) | `FAILED` (schedule exhausted). An operator's resend
    /// makes any of them `PENDING` again.
    NotificationState {
        Pending = "PENDING",
        Delivered = "DELIVERED",
        Failed = "FAILED",
    }
);

/// An outbox row to write in the same transaction as a state change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// Kept across retries and resends, so merchants can deduplicate.
    pub notify_id: NotifyId,
    pub app_id: AppId,
    pub order_id: OrderId,
    pub refund_id: Option<RefundId>,
    pub notify_type: NotifyType,
    /// Where to POST (the order's or refund's notifyUrl, else the app's).
    pub url: NotifyUrl,
    /// The exact JSON body to send (it is signed at send time).
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub notify_id: NotifyId,
    pub app_id: AppId,
    pub order_id: OrderId,
    pub refund_id: Option<RefundId>,
    pub notify_type: NotifyType,
    pub url: NotifyUrl,
    pub body: String,
    pub state: NotificationState,
    /// Attempts recorded so far (kept across resends).
    pub attempts: u32,
    /// When a PENDING notification is due.
    pub next_attempt_at: DateTime<Utc>,
    /// The worker holding the delivery lease, while it holds it.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The error of the latest attempt (`None` after a delivery).
    pub last_error: Option<String>,
}

/// The longest `response_excerpt` kept for an attempt, in bytes; longer
/// excerpts are cut at a character boundary.
pub const RESPONSE_EXCERPT_MAX: usize = 512;

/// One delivery attempt, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttempt {
    pub at: DateTime<Utc>,
    /// `None` when no HTTP response came (connect error, timeout).
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// The first bytes of the reply (cut to [`RESPONSE_EXCERPT_MAX`]).
    pub response_excerpt: Option<String>,
    /// Why the attempt did not count as acknowledged, if it did not.
    pub error: Option<String>,
}

/// What an attempt leads to, decided by the worker (acknowledgement rules
/// and the retry schedule live in the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(
    tag = "outcome",
    content = "retryAt",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum AttemptOutcome {
    Delivered,
    RetryAt(DateTime<Utc>),
    Failed,
}

/// A logged attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationAttempt {
    pub notify_id: NotifyId,
    pub at: DateTime<Utc>,
    /// The lease owner that made the attempt.
    pub owner: String,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
}

#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    /// The caller's app scope, as [`OrderFilter::app_ids`].
    pub app_ids: Option<Vec<AppId>>,
    pub app_id: Option<AppId>,
    pub order_id: Option<OrderId>,
    pub state: Option<NotificationState>,
    /// Only notifications whose id sorts before this one (time-ordered).
    pub before: Option<NotifyId>,
    /// Page size; 0 means the default (100), larger than 1000 means 1000.
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_schedule_steps_then_repeats_the_last_delay() {
        let s = QuerySchedule {
            first_after: Duration::seconds(60),
            delays: vec![Duration::seconds(10), Duration::seconds(20)],
        };
        assert_eq!(s.delay_after(1), Duration::seconds(10));
        assert_eq!(s.delay_after(2), Duration::seconds(20));
        assert_eq!(s.delay_after(9), Duration::seconds(20));
        assert_eq!(s.delay_after(0), Duration::seconds(10));
        let empty = QuerySchedule {
            first_after: Duration::seconds(7),
            delays: vec![],
        };
        assert_eq!(empty.delay_after(3), Duration::seconds(7));
    }

    #[test]
    fn outbox_names_round_trip() {
        for t in NotifyType::ALL {
            assert_eq!(NotifyType::parse(t.as_str()), Some(*t));
        }
        for s in NotificationState::ALL {
            assert_eq!(NotificationState::parse(s.as_str()), Some(*s));
        }
        assert_eq!(NotifyType::parse("pay_success"), None);
        assert_eq!(
            serde_json::to_value(NotifyType::RefundFail).unwrap(),
            serde_json::json!("REFUND_FAIL")
        );
    }

    #[test]
    fn attempts_serialise_flat() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let a = NotificationAttempt {
            notify_id: NotifyId::generate(),
            at,
            owner: "w".into(),
            http_status: Some(500),
            latency_ms: 3,
            response_excerpt: None,
            error: Some("HTTP 500".into()),
            outcome: AttemptOutcome::RetryAt(at),
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["outcome"], "RETRY_AT");
        assert_eq!(v["retryAt"], "2023-11-14T22:13:20Z");
        assert_eq!(v["httpStatus"], 500);
        let v = serde_json::to_value(NotificationAttempt {
            outcome: AttemptOutcome::Delivered,
            ..a
        })
        .unwrap();
        assert_eq!(v["outcome"], "DELIVERED");
        assert!(v.get("retryAt").is_none());
    }
}
