//! cashdesk-store: the [`Store`] trait and its SQLite and PostgreSQL
//! implementations, chosen by the database URL ([`connect`]).
//!
//! Every state change is a compare-and-set (`UPDATE … WHERE state IN (…)`),
//! so two racing writers produce one transition. Migrations live per
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
    AppId, BindingId, BindingState, ChannelId, ConfigId, OrderId, OutTradeNo, StoreId,
};
use chrono::{DateTime, Utc};

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

    // --- channel configs and channels ---
    async fn insert_channel_config(&self, config: &ChannelConfig) -> Result<()>;
    async fn get_channel_config(&self, config_id: &ConfigId) -> Result<Option<ChannelConfig>>;
    async fn list_channel_configs(&self) -> Result<Vec<ChannelConfig>>;
    async fn set_channel_config_enabled(&self, config_id: &ConfigId, enabled: bool)
    -> Result<bool>;
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
    /// Compare-and-set; `Some(updated)` if applied, `None` if the order's
    /// state was not in `from` (or the order does not exist).
    async fn transition_order(
        &self,
        order_id: &OrderId,
        t: &OrderTransition,
    ) -> Result<Option<Order>>;
    /// Newest first.
    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>>;

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
