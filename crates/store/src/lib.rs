//! cashdesk-store: the [`Store`] trait and its SQLite and PostgreSQL
//! implementations, chosen by the database URL ([`connect`]).
//!
//! Every state change is a compare-and-set (`UPDATE … WHERE state IN (…)`),
//! so two racing writers produce one transition. What must happen together
//! happens in one transaction: a terminal transition and its merchant
//! notification (the outbox), a refund's success and its order's refunded
//! amount, a refund and the refundable-amount check. Work shared by many
//! instances is claimed with leases (the outbox, the poller) and scheduled
//! jobs run under cluster-wide leases ([`Store::try_acquire_lease`]).
//! Stores of an app and their merchant identities per channel config are
//! kept sealed ([`StoreIdentity`]); an order keeps a copy of the identity
//! it is paid with ([`Order::store_identity_sealed`], written with its
//! channel in one compare-and-set).
//! Migrations live per
//! backend under `migrations/{sqlite,postgres}` and are applied by
//! [`Store::migrate`] (on start and by `cashdesk migrate`).
//!
//! Layout: the queries and the row decoding are written once
//! (`common.rs`, `rows.rs`) because both engines accept the same SQL text
//! (`$n` placeholders, `ON CONFLICT`, `RETURNING`); `sqlite.rs` and
//! `postgres.rs` own only what differs: connecting, migrations, binding
//! values and the storage of timestamps (SQLite: INTEGER unix microseconds,
//! PostgreSQL: TIMESTAMPTZ; both keep microseconds and sort correctly).
//! A time read back is therefore the time written, truncated to the
//! microsecond.

mod common;
pub mod model;
mod postgres;
mod rows;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use cashdesk_core::{
    AppId, BindingId, BindingState, ChannelId, ConfigId, NotifyId, OrderId, OutRefundNo,
    OutTradeNo, RefundId, StoreId,
};
use chrono::{DateTime, Duration, Utc};

pub use model::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key already exists (e.g. an id collision).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced row does not exist (e.g. a channel's config).
    #[error("not found: {0}")]
    NotFound(String),
    /// A stored value could not be parsed back into its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("unsupported database URL `{0}` (use sqlite:… or postgres://…)")]
    UnsupportedUrl(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A write was not stored: its SQLite group commit failed, or the
    /// writer has stopped (see the `sqlite` module). Nothing of it
    /// remains; the caller may retry.
    #[error("database write failed: {0}")]
    WriteFailed(String),
}

/// Classifies database errors, so `?` on a query gives the variant callers
/// act on: a unique violation is a [`StoreError::Conflict`], a foreign-key
/// violation a [`StoreError::NotFound`] (the referenced row is missing), a
/// value that cannot be decoded a [`StoreError::Corrupt`].
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &e {
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => StoreError::Conflict(db.message().to_owned()),
                ErrorKind::ForeignKeyViolation => StoreError::NotFound(db.message().to_owned()),
                _ => StoreError::Database(e),
            },
            sqlx::Error::ColumnDecode { index, source } => {
                StoreError::Corrupt(format!("column {index}: {source}"))
            }
            sqlx::Error::Decode(source) => StoreError::Corrupt(source.to_string()),
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything cashdesk keeps. Implemented once per backend; the contract
/// tests in `tests/` run against both.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Apply pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// A cheap round trip (health check).
    async fn ping(&self) -> Result<()>;

    // --- settings: small shared values (platform keys, …) ---
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Insert unless present; returns the value that is stored afterwards
    /// (ours, or the one another instance stored first).
    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<String>;

    // --- request nonces (replay protection across instances) ---
    /// Record `nonce` for `app_id` until `expires_at`. `true` if it was not
    /// seen (or only an expired copy was), `false` for a replay.
    async fn use_nonce(
        &self,
        app_id: &AppId,
        nonce: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Delete expired nonces; returns how many.
    async fn purge_nonces(&self, now: DateTime<Utc>) -> Result<u64>;

    // --- apps ---
    async fn insert_app(&self, app: &App) -> Result<()>;
    async fn get_app(&self, app_id: &AppId) -> Result<Option<App>>;
    async fn list_apps(&self) -> Result<Vec<App>>;
    /// `false` if no such app.
    async fn set_app_enabled(&self, app_id: &AppId, enabled: bool) -> Result<bool>;
    /// Change the settings that are `Some` in `update`; the app as stored
    /// afterwards, `None` if no such app. A new notify URL also becomes
    /// the URL of the app's notifications that are not delivered (pending
    /// or failed) and were addressed to its old one (orders that named
    /// their own URL keep it), in the same transaction; the second value
    /// is how many were readdressed.
    async fn update_app_settings(
        &self,
        app_id: &AppId,
        update: &AppSettingsUpdate,
    ) -> Result<Option<(App, u64)>>;
    /// Replaces the app's key (sealed; RSA2/SM2 apps: and its public key):
    /// the current one becomes the previous key, accepted until
    /// `previous_valid_until`; a previous key from an earlier rotation is
    /// dropped. The app is unconfirmed until [`Store::confirm_app_key`].
    /// `None` if the app does not exist.
    async fn rotate_app_key(
        &self,
        app_id: &AppId,
        key_sealed: &[u8],
        public_key_pem: Option<&str>,
        previous_valid_until: DateTime<Utc>,
    ) -> Result<Option<App>>;
    /// Records that the app signed a request with its current key.
    async fn confirm_app_key(&self, app_id: &AppId) -> Result<()>;

    // --- channel configs and channels ---
    async fn insert_channel_config(&self, config: &ChannelConfig) -> Result<()>;
    async fn get_channel_config(&self, config_id: &ConfigId) -> Result<Option<ChannelConfig>>;
    async fn list_channel_configs(&self) -> Result<Vec<ChannelConfig>>;
    async fn set_channel_config_enabled(&self, config_id: &ConfigId, enabled: bool)
    -> Result<bool>;
    /// Replaces the sealed credentials; `None` if the config does not exist.
    async fn replace_channel_credentials(
        &self,
        config_id: &ConfigId,
        credentials_sealed: &[u8],
        at: DateTime<Utc>,
    ) -> Result<Option<ChannelConfig>>;
    /// `NotFound` if the config does not exist.
    async fn insert_channel(&self, channel: &Channel) -> Result<()>;
    async fn get_channel(&self, channel_id: &ChannelId) -> Result<Option<Channel>>;
    async fn list_channels(&self) -> Result<Vec<Channel>>;
    async fn set_channel_enabled(&self, channel_id: &ChannelId, enabled: bool) -> Result<bool>;

    // --- bindings ---
    /// Unique per (app, channel, store). Applying again returns the
    /// existing binding, whatever its state.
    async fn insert_binding(&self, binding: &Binding) -> Result<Inserted<Binding>>;
    async fn get_binding(&self, binding_id: &BindingId) -> Result<Option<Binding>>;
    async fn list_bindings(&self, filter: &BindingFilter) -> Result<Vec<Binding>>;
    /// PENDING → `to` (APPROVED or REJECTED), compare-and-set. `None` if the
    /// binding is not pending (or does not exist).
    async fn decide_binding(
        &self,
        binding_id: &BindingId,
        to: BindingState,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Binding>>;
    /// Approve every pending binding whose `auto_approve_at` has passed.
    async fn approve_due_bindings(&self, now: DateTime<Utc>) -> Result<u64>;
    /// What an order of `app_id` (and `store_id`) may be paid with: approved
    /// bindings for the app (app-wide, or for that store), enabled channel,
    /// enabled config; one entry per channel (a store binding wins over an
    /// app-wide one), ordered by `sort` then channel id.
    async fn bound_channels(
        &self,
        app_id: &AppId,
        store_id: Option<&StoreId>,
    ) -> Result<Vec<BoundChannel>>;

    // --- stores and their merchant identities ---
    /// `Conflict` if the app already has this store, `NotFound` if the app
    /// does not exist.
    async fn insert_store(&self, store: &MerchantStore) -> Result<()>;
    async fn get_store(&self, app_id: &AppId, store_id: &StoreId) -> Result<Option<MerchantStore>>;
    /// Ordered by app then store id; every app's when `app_id` is `None`.
    async fn list_stores(&self, app_id: Option<&AppId>) -> Result<Vec<MerchantStore>>;
    /// Changes what `update` sets and `updated_at`; `None` if no such store.
    async fn update_store(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        update: &StoreUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<MerchantStore>>;
    /// Insert or replace the store's identity at the config (one upsert;
    /// a replacement keeps `created_at`). Returns the stored row.
    /// `NotFound` if the store or the config does not exist.
    async fn put_store_identity(&self, identity: &StoreIdentity) -> Result<StoreIdentity>;
    async fn get_store_identity(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        config_id: &ConfigId,
    ) -> Result<Option<StoreIdentity>>;
    /// Ordered by config id.
    async fn list_store_identities(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
    ) -> Result<Vec<StoreIdentity>>;
    /// `false` if there was none. Orders already paying with it keep their
    /// copy ([`Order::store_identity_sealed`]).
    async fn delete_store_identity(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        config_id: &ConfigId,
    ) -> Result<bool>;

    // --- orders ---
    /// Insert, or return the existing order with the same (app, outTradeNo).
    async fn insert_order(&self, order: &NewOrder) -> Result<Inserted<Order>>;
    async fn get_order(&self, order_id: &OrderId) -> Result<Option<Order>>;
    async fn get_order_by_out_trade_no(
        &self,
        app_id: &AppId,
        out_trade_no: &OutTradeNo,
    ) -> Result<Option<Order>>;
    async fn get_order_by_token(&self, token: &str) -> Result<Option<Order>>;
    /// Newest first.
    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>>;

    /// The one way an order's state changes after creation (the server's
    /// settlement module calls it): a compare-and-set — `Some((updated,
    /// notification))` if applied, `None` if the order's state was not in
    /// `t.from` (or the order does not exist) — and, when it applies, the
    /// outbox row `notification` in the same transaction: either both are stored or
    /// neither (a lost compare-and-set writes no notification; a failed
    /// notification insert, e.g. a duplicate `notify_id`, undoes the
    /// transition and is returned as the error). The notification is due
    /// at `t.now`; it must belong to this order.
    async fn transition_order_notify(
        &self,
        order_id: &OrderId,
        t: &OrderTransition,
        notification: Option<&NewNotification>,
    ) -> Result<Option<(Order, Option<Notification>)>>;
    /// Set when the poller should next query a PAYING order (also settable
    /// in the transition to PAYING: [`OrderTransition::next_query_at`]).
    /// `false` if no such order.
    async fn schedule_order_query(&self, order_id: &OrderId, at: DateTime<Utc>) -> Result<bool>;
    /// Claim up to `limit` PAYING orders that are due for a channel query
    /// (`next_query_at <= now`, or never scheduled and
    /// `updated_at <= now - schedule.first_after`) and not expired
    /// (`expire_at > now`: those belong to the expiry job). Each claimed
    /// order's `query_attempts` is incremented and its `next_query_at`
    /// pushed to `now + schedule.delay_after(query_attempts)`, in the same
    /// statement, so concurrent claimers (threads or instances) never get
    /// the same order in one round (PostgreSQL `FOR UPDATE SKIP LOCKED`).
    /// Returns the orders as updated, soonest due next first. Claiming
    /// changes neither the state nor `updated_at`. `limit` 0 means 100;
    /// at most 1000.
    async fn claim_orders_to_query(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        schedule: &QuerySchedule,
    ) -> Result<Vec<Order>>;
    /// CREATED or PAYING orders whose `expire_at <= now`, soonest expired
    /// first, at most `limit` (0: 100). A plain read: run the expiry job
    /// under a cluster lease ([`Store::try_acquire_lease`]) and close with
    /// a compare-and-set.
    async fn list_expired_orders(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>>;

    // --- refunds ---
    /// Store a refund if the order can take it, atomically: in one
    /// transaction holding the order (PostgreSQL: its row locked `FOR
    /// UPDATE`; SQLite: `BEGIN IMMEDIATE`), so concurrent requests never
    /// refund more than the order's amount. In order:
    /// 1. a refund with the same (app, outRefundNo) → `Existing` (whatever
    ///    its order or state; the caller compares `request_hash`);
    /// 2. order `refund.order_id` of `refund.app_id` missing →
    ///    `Err(NotFound)`;
    /// 3. order not SUCCESS / PART_REFUNDED / REFUNDED →
    ///    `OrderNotRefundable`;
    /// 4. order amount − Σ refunds that hold an amount
    ///    ([`cashdesk_core::RefundState::holds_amount`]) < `refund.amount`
    ///    → `ExceedsRefundable`;
    /// 5. otherwise `New`, in state `initial`.
    ///
    /// The order itself is not changed (its state and `refunded_amount`
    /// follow completed refunds only, see [`Store::transition_refund`]).
    async fn insert_refund(
        &self,
        refund: &NewRefund,
        initial: InitialRefundState,
    ) -> Result<RefundInsert>;
    async fn get_refund(&self, refund_id: &RefundId) -> Result<Option<Refund>>;
    async fn get_refund_by_out_refund_no(
        &self,
        app_id: &AppId,
        out_refund_no: &OutRefundNo,
    ) -> Result<Option<Refund>>;
    /// Newest first.
    async fn list_refunds(&self, filter: &RefundFilter) -> Result<Vec<Refund>>;
    /// Compare-and-set on a refund, with its consequences, in one
    /// transaction: `Some((refund, notification))` if applied, `None` if
    /// the refund's state was not in `t.from` (or it does not exist), and
    /// then nothing is written. When `t.to` is SUCCESS the refund's amount
    /// is added to the order's `refunded_amount` and the order becomes
    /// REFUNDED (all refunded) or PART_REFUNDED (if it was SUCCESS or
    /// PART_REFUNDED; other states are kept); a refund
    /// reaches SUCCESS once (SUCCESS in `from` is ignored then), so the
    /// amount is never counted twice. The optional outbox row is written
    /// in the same transaction, due at `t.now`.
    async fn transition_refund(
        &self,
        refund_id: &RefundId,
        t: &RefundTransition,
        notification: Option<&NewNotification>,
    ) -> Result<Option<(Refund, Option<Notification>)>>;
    /// As [`Store::schedule_order_query`], for a PROCESSING refund.
    async fn schedule_refund_query(&self, refund_id: &RefundId, at: DateTime<Utc>) -> Result<bool>;
    /// As [`Store::claim_orders_to_query`], for PROCESSING refunds (no
    /// expiry).
    async fn claim_refunds_to_query(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        schedule: &QuerySchedule,
    ) -> Result<Vec<Refund>>;

    // --- merchant notifications (the outbox) ---
    /// Lease up to `limit` due notifications to `owner` until `now +
    /// lease`. Due: PENDING, `next_attempt_at <= now`, and no live lease
    /// (none, or `lease_until <= now`: the lease of a dead worker is taken
    /// over). One statement: PostgreSQL `FOR UPDATE SKIP LOCKED`, so
    /// concurrent claimers on any number of instances get disjoint rows;
    /// SQLite runs it under its single write lock. Oldest due first;
    /// `limit` 0 means 100, at most 1000. `owner` must identify one worker of one process (e.g.
    /// `host:pid:uuid`): the lease checks compare it.
    async fn claim_due_notifications(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Notification>>;
    /// Record a delivery attempt and its outcome, if `owner` still holds
    /// the lease (it claimed the notification and nobody took it over or
    /// resent it since); `false` and nothing written otherwise. When it
    /// applies, in one transaction: the attempt is logged (excerpt cut to
    /// [`RESPONSE_EXCERPT_MAX`] bytes), `attempts` incremented,
    /// `last_error` set to `attempt.error`, the lease released, and the
    /// state set by `outcome`: `Delivered` → DELIVERED (`delivered_at =
    /// attempt.at`), `RetryAt(t)` → PENDING due at `t`, `Failed` → FAILED.
    async fn record_notification_attempt(
        &self,
        notify_id: &NotifyId,
        owner: &str,
        attempt: &NewAttempt,
        outcome: AttemptOutcome,
    ) -> Result<bool>;
    async fn get_notification(&self, notify_id: &NotifyId) -> Result<Option<Notification>>;
    /// Newest first.
    async fn list_notifications(&self, filter: &NotificationFilter) -> Result<Vec<Notification>>;
    /// Oldest first.
    async fn list_notification_attempts(
        &self,
        notify_id: &NotifyId,
    ) -> Result<Vec<NotificationAttempt>>;
    /// An operator's resend: whatever its state, the notification becomes
    /// PENDING and due at `now`, with the same `notify_id`, its attempts
    /// count and history kept. A live lease (`lease_until > now`) is kept:
    /// its holder may be sending it this moment, so nobody else claims it
    /// until the holder records its attempt (whose outcome then applies)
    /// or the lease runs out; an expired lease is dropped. `None` if no
    /// such notification.
    async fn resend_notification(
        &self,
        notify_id: &NotifyId,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>>;

    // --- cluster-wide leases for scheduled jobs ---
    /// Take or extend the lease `name` for `owner` until `now + ttl`:
    /// `true` if it was free, expired (`lease_until <= now`) or already
    /// `owner`'s; `false` while another owner holds it. One statement, so
    /// exactly one of several racing instances gets a free lease.
    async fn try_acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool>;
    /// Give the lease up if `owner` holds it; `true` if it did.
    async fn release_lease(&self, name: &str, owner: &str) -> Result<bool>;

    // --- audit ---
    async fn insert_audit(&self, entry: &AuditEntry) -> Result<()>;
    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>>;
}

/// Options for [`connect`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
        }
    }
}

/// Open the store for a URL: `sqlite:path` / `sqlite://path` (created if
/// missing; WAL, busy timeout), `sqlite::memory:` (tests; one connection) or
/// `postgres://…` / `postgresql://…`. Does not migrate: call
/// [`Store::migrate`].
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let backend = sqlite::Sqlite::connect(url, options).await?;
        Ok(Arc::new(common::SqlStore::new(backend)))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let backend = postgres::Postgres::connect(url, options).await?;
        Ok(Arc::new(common::SqlStore::new(backend)))
    } else {
        // Only the scheme: the rest may carry a password.
        Err(StoreError::UnsupportedUrl(match url.split_once(':') {
            Some((scheme, _)) => format!("{scheme}:…"),
            None => url.to_owned(),
        }))
    }
}
