//! Rows as the database returns them, and their conversion into the domain
//! types of `model.rs`.
//!
//! Both backends decode a row into the same raw struct (plain strings,
//! integers, bytes and [`Ts`]); the parsing into domain types happens here,
//! once. A value that does not parse (an unknown state, a malformed id, a
//! negative amount) is a [`StoreError::Corrupt`], never a panic: the
//! database is outside input too.

use cashdesk_core::{
    AppId, BindingId, BindingState, ChannelId, ChannelType, ConfigId, Fen, NotifyId, NotifyUrl,
    OrderId, OrderState, OutRefundNo, OutTradeNo, RefundApplicationMode, RefundApplicationPolicy,
    RefundId, RefundState, SceneCode, SignType, StoreId, TimeoutDecision,
};
use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

use crate::{
    App, AttemptOutcome, AuditEntry, AuditRecord, Binding, BoundChannel, Channel, ChannelConfig,
    MerchantStore, Notification, NotificationAttempt, NotificationState, NotifyType, Order,
    OrderChannel, PreviousAppKey, Refund, StoreError, StoreIdentity,
};

/// A stored instant. SQLite keeps it as INTEGER unix microseconds (sorts
/// and compares as a number; no text-format pitfalls), PostgreSQL as
/// TIMESTAMPTZ (also microseconds). Both backends therefore round-trip a
/// time to the same precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ts(pub DateTime<Utc>);

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Sqlite>>::encode(self.0.timestamp_micros(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let micros = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        DateTime::from_timestamp_micros(micros)
            .map(Ts)
            .ok_or_else(|| format!("timestamp {micros} µs is out of range").into())
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(Ts)
    }
}

pub(crate) fn corrupt(column: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{column} = `{value}`"))
}

pub(crate) fn id<T>(
    column: &str,
    value: String,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(&value).ok_or_else(|| corrupt(column, &value))
}

fn notify_url(column: &str, value: String) -> Result<NotifyUrl, StoreError> {
    NotifyUrl::parse("notifyUrl", &value)
        .map_err(|e| StoreError::Corrupt(format!("{column}: {}", e.reason)))
}

fn opt_notify_url(column: &str, value: Option<String>) -> Result<Option<NotifyUrl>, StoreError> {
    value.map(|v| notify_url(column, v)).transpose()
}

pub(crate) fn app_id(column: &str, value: String) -> Result<AppId, StoreError> {
    id(column, value, |s| AppId::parse(s).ok())
}

/// `''` (bindings: every store of the app) and NULL (orders) both mean
/// "no store".
pub(crate) fn store_id(column: &str, value: Option<String>) -> Result<Option<StoreId>, StoreError> {
    match value {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => id(column, s, |s| StoreId::parse(s).ok()).map(Some),
    }
}

pub(crate) fn json(column: &str, value: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(value)
        .map_err(|e| StoreError::Corrupt(format!("{column}: not JSON ({e})")))
}

/// JSON text for a TEXT column (both backends store documents as text: the
/// store never looks inside them).
pub(crate) fn json_text(column: &str, value: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) const APP_COLS: &str = "app_id, app_name, sign_type, app_key_sealed, public_key_pem, \
     notify_url, refund_review, enabled, created_at, auto_refund_paid_after_close, \
     previous_key_sealed, previous_public_key_pem, previous_key_until, key_confirmed, \
     refund_application_mode, refund_application_days, refund_application_timeout";

#[derive(sqlx::FromRow)]
pub(crate) struct RawApp {
    app_id: String,
    app_name: String,
    sign_type: String,
    app_key_sealed: Vec<u8>,
    public_key_pem: Option<String>,
    notify_url: Option<String>,
    refund_review: bool,
    enabled: bool,
    created_at: Ts,
    auto_refund_paid_after_close: bool,
    previous_key_sealed: Option<Vec<u8>>,
    previous_public_key_pem: Option<String>,
    previous_key_until: Option<Ts>,
    key_confirmed: bool,
    refund_application_mode: String,
    refund_application_days: i32,
    refund_application_timeout: String,
}

impl TryFrom<RawApp> for App {
    type Error = StoreError;

    fn try_from(r: RawApp) -> Result<Self, StoreError> {
        Ok(App {
            app_id: app_id("apps.app_id", r.app_id)?,
            app_name: r.app_name,
            sign_type: id("apps.sign_type", r.sign_type, SignType::parse)?,
            app_key_sealed: r.app_key_sealed,
            public_key_pem: r.public_key_pem,
            notify_url: opt_notify_url("apps.notify_url", r.notify_url)?,
            refund_review: r.refund_review,
            auto_refund_paid_after_close: r.auto_refund_paid_after_close,
            enabled: r.enabled,
            created_at: r.created_at.0,
            previous_key: match (r.previous_key_sealed, r.previous_key_until) {
                (Some(key_sealed), Some(until)) => Some(PreviousAppKey {
                    key_sealed,
                    public_key_pem: r.previous_public_key_pem,
                    valid_until: until.0,
                }),
                _ => None,
            },
            key_confirmed: r.key_confirmed,
            refund_applications: RefundApplicationPolicy {
                mode: RefundApplicationMode::parse(&r.refund_application_mode).ok_or_else(
                    || corrupt("apps.refund_application_mode", &r.refund_application_mode),
                )?,
                days: u32::try_from(r.refund_application_days).map_err(|_| {
                    corrupt(
                        "apps.refund_application_days",
                        &r.refund_application_days.to_string(),
                    )
                })?,
                on_timeout: TimeoutDecision::parse(&r.refund_application_timeout).ok_or_else(
                    || {
                        corrupt(
                            "apps.refund_application_timeout",
                            &r.refund_application_timeout,
                        )
                    },
                )?,
            },
        })
    }
}

pub(crate) const CONFIG_COLS: &str = "config_id, channel_type, name, mch_id, api_version, \
     credentials_sealed, base_url, enabled, created_at, credentials_updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct RawConfig {
    config_id: String,
    channel_type: String,
    name: String,
    mch_id: String,
    api_version: Option<String>,
    credentials_sealed: Vec<u8>,
    base_url: Option<String>,
    enabled: bool,
    created_at: Ts,
    credentials_updated_at: Option<Ts>,
}

impl TryFrom<RawConfig> for ChannelConfig {
    type Error = StoreError;

    fn try_from(r: RawConfig) -> Result<Self, StoreError> {
        Ok(ChannelConfig {
            config_id: id("channel_configs.config_id", r.config_id, ConfigId::parse)?,
            channel_type: id(
                "channel_configs.channel_type",
                r.channel_type,
                ChannelType::parse,
            )?,
            name: r.name,
            mch_id: r.mch_id,
            api_version: r.api_version,
            credentials_sealed: r.credentials_sealed,
            base_url: r.base_url,
            enabled: r.enabled,
            created_at: r.created_at.0,
            credentials_updated_at: r.credentials_updated_at.map(|t| t.0),
        })
    }
}

pub(crate) const CHANNEL_COLS: &str =
    "channel_id, config_id, scene_code, channel_name, sort, enabled, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct RawChannel {
    channel_id: String,
    config_id: String,
    scene_code: String,
    channel_name: String,
    sort: i32,
    enabled: bool,
    created_at: Ts,
}

impl TryFrom<RawChannel> for Channel {
    type Error = StoreError;

    fn try_from(r: RawChannel) -> Result<Self, StoreError> {
        Ok(Channel {
            channel_id: id("channels.channel_id", r.channel_id, ChannelId::parse)?,
            config_id: id("channels.config_id", r.config_id, ConfigId::parse)?,
            scene_code: id("channels.scene_code", r.scene_code, SceneCode::parse)?,
            channel_name: r.channel_name,
            sort: r.sort,
            enabled: r.enabled,
            created_at: r.created_at.0,
        })
    }
}

pub(crate) const BINDING_COLS: &str = "binding_id, app_id, channel_id, store_id, state, \
     created_at, auto_approve_at, decided_at, decided_by";

#[derive(sqlx::FromRow)]
pub(crate) struct RawBinding {
    binding_id: String,
    app_id: String,
    channel_id: String,
    store_id: String,
    state: String,
    created_at: Ts,
    auto_approve_at: Option<Ts>,
    decided_at: Option<Ts>,
    decided_by: Option<String>,
}

impl TryFrom<RawBinding> for Binding {
    type Error = StoreError;

    fn try_from(r: RawBinding) -> Result<Self, StoreError> {
        Ok(Binding {
            binding_id: id("bindings.binding_id", r.binding_id, BindingId::parse)?,
            app_id: app_id("bindings.app_id", r.app_id)?,
            channel_id: id("bindings.channel_id", r.channel_id, ChannelId::parse)?,
            store_id: store_id("bindings.store_id", Some(r.store_id))?,
            state: id("bindings.state", r.state, BindingState::parse)?,
            created_at: r.created_at.0,
            auto_approve_at: r.auto_approve_at.map(|t| t.0),
            decided_at: r.decided_at.map(|t| t.0),
            decided_by: r.decided_by,
        })
    }
}

/// The columns of `bindings b JOIN channels c JOIN channel_configs g`,
/// aliased so the three tables' `created_at`/`enabled` do not collide.
pub(crate) const BOUND_COLS: &str = "b.binding_id, b.app_id, b.channel_id, b.store_id, b.state, \
     b.created_at, b.auto_approve_at, b.decided_at, b.decided_by, \
     c.config_id AS c_config_id, c.scene_code AS c_scene_code, c.channel_name AS c_channel_name, \
     c.sort AS c_sort, c.enabled AS c_enabled, c.created_at AS c_created_at, \
     g.channel_type AS g_channel_type, g.name AS g_name, g.mch_id AS g_mch_id, \
     g.api_version AS g_api_version, g.credentials_sealed AS g_credentials_sealed, \
     g.base_url AS g_base_url, g.enabled AS g_enabled, g.created_at AS g_created_at, \
     g.credentials_updated_at AS g_credentials_updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct RawBound {
    #[sqlx(flatten)]
    binding: RawBinding,
    c_config_id: String,
    c_scene_code: String,
    c_channel_name: String,
    c_sort: i32,
    c_enabled: bool,
    c_created_at: Ts,
    g_channel_type: String,
    g_name: String,
    g_mch_id: String,
    g_api_version: Option<String>,
    g_credentials_sealed: Vec<u8>,
    g_base_url: Option<String>,
    g_enabled: bool,
    g_created_at: Ts,
    g_credentials_updated_at: Option<Ts>,
}

impl TryFrom<RawBound> for BoundChannel {
    type Error = StoreError;

    fn try_from(r: RawBound) -> Result<Self, StoreError> {
        let channel = Channel::try_from(RawChannel {
            channel_id: r.binding.channel_id.clone(),
            config_id: r.c_config_id.clone(),
            scene_code: r.c_scene_code,
            channel_name: r.c_channel_name,
            sort: r.c_sort,
            enabled: r.c_enabled,
            created_at: r.c_created_at,
        })?;
        let config = ChannelConfig::try_from(RawConfig {
            config_id: r.c_config_id,
            channel_type: r.g_channel_type,
            name: r.g_name,
            mch_id: r.g_mch_id,
            api_version: r.g_api_version,
            credentials_sealed: r.g_credentials_sealed,
            base_url: r.g_base_url,
            enabled: r.g_enabled,
            created_at: r.g_created_at,
            credentials_updated_at: r.g_credentials_updated_at,
        })?;
        Ok(BoundChannel {
            binding: Binding::try_from(r.binding)?,
            channel,
            config,
        })
    }
}

pub(crate) const ORDER_COLS: &str = "order_id, app_id, out_trade_no, amount, order_title, \
     goods_desc, third_party_user, notify_url, return_url, store_id, attach, client_ip, token, \
     expire_at, request_hash, response, state, channel_id, channel_type, config_id, mch_id, \
     scene_code, transaction_id, pay_time, refunded_amount, result_error_code, result_error_msg, \
     paid_after_close, created_at, updated_at, next_query_at, query_attempts, store_identity_sealed";

#[derive(sqlx::FromRow)]
pub(crate) struct RawOrder {
    order_id: String,
    app_id: String,
    out_trade_no: String,
    amount: i64,
    order_title: String,
    goods_desc: String,
    third_party_user: String,
    notify_url: Option<String>,
    return_url: Option<String>,
    store_id: Option<String>,
    attach: Option<String>,
    client_ip: Option<String>,
    token: String,
    expire_at: Ts,
    request_hash: String,
    response: String,
    state: String,
    channel_id: Option<String>,
    channel_type: Option<String>,
    config_id: Option<String>,
    mch_id: Option<String>,
    scene_code: Option<String>,
    transaction_id: Option<String>,
    pay_time: Option<Ts>,
    refunded_amount: i64,
    result_error_code: Option<String>,
    result_error_msg: Option<String>,
    paid_after_close: bool,
    created_at: Ts,
    updated_at: Ts,
    next_query_at: Option<Ts>,
    query_attempts: i32,
    store_identity_sealed: Option<Vec<u8>>,
}

impl TryFrom<RawOrder> for Order {
    type Error = StoreError;

    fn try_from(r: RawOrder) -> Result<Self, StoreError> {
        // The chosen channel is five columns written together; all set or
        // all NULL.
        let channel = match (
            r.channel_id,
            r.channel_type,
            r.config_id,
            r.mch_id,
            r.scene_code,
        ) {
            (None, None, None, None, None) => None,
            (
                Some(channel_id),
                Some(channel_type),
                Some(config_id),
                Some(mch_id),
                Some(scene_code),
            ) => Some(OrderChannel {
                channel_id: id("orders.channel_id", channel_id, ChannelId::parse)?,
                channel_type: id("orders.channel_type", channel_type, ChannelType::parse)?,
                config_id: id("orders.config_id", config_id, ConfigId::parse)?,
                mch_id,
                scene_code: id("orders.scene_code", scene_code, SceneCode::parse)?,
            }),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "orders.channel_* of {} are partly NULL",
                    r.order_id
                )));
            }
        };
        if r.amount <= 0 {
            return Err(corrupt("orders.amount", &r.amount.to_string()));
        }
        if r.refunded_amount < 0 || r.refunded_amount > r.amount {
            return Err(corrupt(
                "orders.refunded_amount",
                &r.refunded_amount.to_string(),
            ));
        }
        Ok(Order {
            order_id: id("orders.order_id", r.order_id, OrderId::parse)?,
            app_id: app_id("orders.app_id", r.app_id)?,
            out_trade_no: id("orders.out_trade_no", r.out_trade_no, |s| {
                OutTradeNo::parse(s).ok()
            })?,
            amount: Fen::from_stored(r.amount),
            order_title: r.order_title,
            goods_desc: r.goods_desc,
            third_party_user: r.third_party_user,
            notify_url: opt_notify_url("orders.notify_url", r.notify_url)?,
            return_url: r.return_url,
            store_id: store_id("orders.store_id", r.store_id)?,
            attach: r.attach,
            client_ip: r.client_ip,
            token: r.token,
            expire_at: r.expire_at.0,
            request_hash: r.request_hash,
            response: json("orders.response", &r.response)?,
            state: id("orders.state", r.state, OrderState::parse)?,
            channel,
            transaction_id: r.transaction_id,
            pay_time: r.pay_time.map(|t| t.0),
            refunded_amount: Fen::from_stored(r.refunded_amount),
            result_error_code: r.result_error_code,
            result_error_msg: r.result_error_msg,
            paid_after_close: r.paid_after_close,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
            next_query_at: r.next_query_at.map(|t| t.0),
            query_attempts: count("orders.query_attempts", r.query_attempts)?,
            store_identity_sealed: r.store_identity_sealed,
        })
    }
}

/// A non-negative counter stored as INTEGER.
pub(crate) fn count(column: &str, value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(column, &value.to_string()))
}

pub(crate) const REFUND_COLS: &str = "refund_id, app_id, order_id, out_refund_no, amount, reason, \
     notify_url, state, request_hash, channel_refund_id, error_code, error_msg, created_at, \
     updated_at, finished_at, next_query_at, query_attempts";

#[derive(sqlx::FromRow)]
pub(crate) struct RawRefund {
    refund_id: String,
    app_id: String,
    order_id: String,
    out_refund_no: String,
    amount: i64,
    reason: Option<String>,
    notify_url: Option<String>,
    state: String,
    request_hash: String,
    channel_refund_id: Option<String>,
    error_code: Option<String>,
    error_msg: Option<String>,
    created_at: Ts,
    updated_at: Ts,
    finished_at: Option<Ts>,
    next_query_at: Option<Ts>,
    query_attempts: i32,
}

impl TryFrom<RawRefund> for Refund {
    type Error = StoreError;

    fn try_from(r: RawRefund) -> Result<Self, StoreError> {
        if r.amount <= 0 {
            return Err(corrupt("refunds.amount", &r.amount.to_string()));
        }
        Ok(Refund {
            refund_id: id("refunds.refund_id", r.refund_id, RefundId::parse)?,
            app_id: app_id("refunds.app_id", r.app_id)?,
            order_id: id("refunds.order_id", r.order_id, OrderId::parse)?,
            out_refund_no: id("refunds.out_refund_no", r.out_refund_no, |s| {
                OutRefundNo::parse(s).ok()
            })?,
            amount: Fen::from_stored(r.amount),
            reason: r.reason,
            notify_url: opt_notify_url("refunds.notify_url", r.notify_url)?,
            state: id("refunds.state", r.state, RefundState::parse)?,
            request_hash: r.request_hash,
            channel_refund_id: r.channel_refund_id,
            error_code: r.error_code,
            error_msg: r.error_msg,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
            finished_at: r.finished_at.map(|t| t.0),
            next_query_at: r.next_query_at.map(|t| t.0),
            query_attempts: count("refunds.query_attempts", r.query_attempts)?,
        })
    }
}

pub(crate) const NOTIFY_COLS: &str = "notify_id, app_id, order_id, refund_id, notify_type, url, \
     body, state, attempts, next_attempt_at, lease_owner, lease_until, created_at, delivered_at, \
     last_error";

#[derive(sqlx::FromRow)]
pub(crate) struct RawNotification {
    notify_id: String,
    app_id: String,
    order_id: String,
    refund_id: Option<String>,
    notify_type: String,
    url: String,
    body: String,
    state: String,
    attempts: i32,
    next_attempt_at: Ts,
    lease_owner: Option<String>,
    lease_until: Option<Ts>,
    created_at: Ts,
    delivered_at: Option<Ts>,
    last_error: Option<String>,
}

impl TryFrom<RawNotification> for Notification {
    type Error = StoreError;

    fn try_from(r: RawNotification) -> Result<Self, StoreError> {
        Ok(Notification {
            notify_id: id("notifications.notify_id", r.notify_id, NotifyId::parse)?,
            app_id: app_id("notifications.app_id", r.app_id)?,
            order_id: id("notifications.order_id", r.order_id, OrderId::parse)?,
            refund_id: r
                .refund_id
                .map(|v| id("notifications.refund_id", v, RefundId::parse))
                .transpose()?,
            notify_type: id(
                "notifications.notify_type",
                r.notify_type,
                NotifyType::parse,
            )?,
            url: notify_url("notifications.url", r.url)?,
            body: r.body,
            state: id("notifications.state", r.state, NotificationState::parse)?,
            attempts: count("notifications.attempts", r.attempts)?,
            next_attempt_at: r.next_attempt_at.0,
            lease_owner: r.lease_owner,
            lease_until: r.lease_until.map(|t| t.0),
            created_at: r.created_at.0,
            delivered_at: r.delivered_at.map(|t| t.0),
            last_error: r.last_error,
        })
    }
}

/// `notification_attempts.outcome`; a retry also stores `retry_at`.
pub(crate) const OUTCOME_DELIVERED: &str = "DELIVERED";
pub(crate) const OUTCOME_RETRY: &str = "RETRY";
pub(crate) const OUTCOME_FAILED: &str = "FAILED";

pub(crate) const ATTEMPT_COLS: &str = "notify_id, at, owner, http_status, latency_ms, \
     response_excerpt, error, outcome, retry_at";

#[derive(sqlx::FromRow)]
pub(crate) struct RawAttempt {
    notify_id: String,
    at: Ts,
    owner: String,
    http_status: Option<i32>,
    latency_ms: i64,
    response_excerpt: Option<String>,
    error: Option<String>,
    outcome: String,
    retry_at: Option<Ts>,
}

impl TryFrom<RawAttempt> for NotificationAttempt {
    type Error = StoreError;

    fn try_from(r: RawAttempt) -> Result<Self, StoreError> {
        let outcome = match (r.outcome.as_str(), r.retry_at) {
            (OUTCOME_DELIVERED, _) => AttemptOutcome::Delivered,
            (OUTCOME_RETRY, Some(at)) => AttemptOutcome::RetryAt(at.0),
            (OUTCOME_FAILED, _) => AttemptOutcome::Failed,
            _ => return Err(corrupt("notification_attempts.outcome", &r.outcome)),
        };
        Ok(NotificationAttempt {
            notify_id: id(
                "notification_attempts.notify_id",
                r.notify_id,
                NotifyId::parse,
            )?,
            at: r.at.0,
            owner: r.owner,
            http_status: r
                .http_status
                .map(|v| {
                    u16::try_from(v)
                        .map_err(|_| corrupt("notification_attempts.http_status", &v.to_string()))
                })
                .transpose()?,
            latency_ms: u64::try_from(r.latency_ms).map_err(|_| {
                corrupt(
                    "notification_attempts.latency_ms",
                    &r.latency_ms.to_string(),
                )
            })?,
            response_excerpt: r.response_excerpt,
            error: r.error,
            outcome,
        })
    }
}

pub(crate) const STORE_COLS: &str = "app_id, store_id, name, enabled, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct RawStore {
    app_id: String,
    store_id: String,
    name: String,
    enabled: bool,
    created_at: Ts,
    updated_at: Ts,
}

impl TryFrom<RawStore> for MerchantStore {
    type Error = StoreError;

    fn try_from(r: RawStore) -> Result<Self, StoreError> {
        Ok(MerchantStore {
            app_id: app_id("stores.app_id", r.app_id)?,
            store_id: id("stores.store_id", r.store_id, |s| StoreId::parse(s).ok())?,
            name: r.name,
            enabled: r.enabled,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

pub(crate) const IDENTITY_COLS: &str =
    "app_id, store_id, config_id, mch_id, identity_sealed, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct RawIdentity {
    app_id: String,
    store_id: String,
    config_id: String,
    mch_id: String,
    identity_sealed: Vec<u8>,
    created_at: Ts,
    updated_at: Ts,
}

impl TryFrom<RawIdentity> for StoreIdentity {
    type Error = StoreError;

    fn try_from(r: RawIdentity) -> Result<Self, StoreError> {
        Ok(StoreIdentity {
            app_id: app_id("store_identities.app_id", r.app_id)?,
            store_id: id("store_identities.store_id", r.store_id, |s| {
                StoreId::parse(s).ok()
            })?,
            config_id: id("store_identities.config_id", r.config_id, ConfigId::parse)?,
            mch_id: r.mch_id,
            identity_sealed: r.identity_sealed,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

pub(crate) const AUDIT_COLS: &str =
    "at, actor, action, target, detail, role, ip, before_json, after_json";

#[derive(sqlx::FromRow)]
pub(crate) struct RawAudit {
    at: Ts,
    actor: String,
    action: String,
    target: String,
    detail: String,
    role: Option<String>,
    ip: Option<String>,
    before_json: Option<String>,
    after_json: Option<String>,
}

impl TryFrom<RawAudit> for AuditEntry {
    type Error = StoreError;

    fn try_from(r: RawAudit) -> Result<Self, StoreError> {
        Ok(AuditEntry {
            at: r.at.0,
            actor: r.actor,
            action: r.action,
            target: r.target,
            detail: json("audit.detail", &r.detail)?,
            role: r.role,
            ip: r.ip,
            before: r
                .before_json
                .map(|v| json("audit.before_json", &v))
                .transpose()?,
            after: r
                .after_json
                .map(|v| json("audit.after_json", &v))
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RawAuditRecord {
    id: i64,
    #[sqlx(flatten)]
    entry: RawAudit,
}

impl TryFrom<RawAuditRecord> for AuditRecord {
    type Error = StoreError;

    fn try_from(r: RawAuditRecord) -> Result<Self, StoreError> {
        Ok(AuditRecord {
            id: r.id,
            entry: r.entry.try_into()?,
        })
    }
}

#[cfg(test)]
mod tests;
