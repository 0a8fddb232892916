//! cashdesk-store: the [`Store`] trait and its SQLite and PostgreSQL
//! implementations, chosen by the database URL ([`connect`]).
//!
//! Every state change is a compare-and-set (`UPDATE … WHERE state IN (…)`),
//! so two racing writers produce one transition. What must happen together
//! happens in one transaction: a terminal transition and its merchant
//! notification (the outbox), a refund's success and its order's refunded
//! amount, a refund and the refundable-amount check. Work shared by many
//! instances is claimed with leases (the outbox, the poller) and scheduled
//! jobs run under cluster-wide leases ([`Leases::try_acquire_lease`]).
//! Stores of an app and their merchant identities per channel config are
//! kept sealed ([`StoreIdentity`]); an order keeps a copy of the identity
//! it is paid with ([`Order::store_identity_sealed`], written with its
//! channel in one compare-and-set).
//! Migrations live per
//! backend under `migrations/{sqlite,postgres}` and are applied by
//! [`Store::migrate`] (on start and by `cashdesk migrate`).
//!
//! Layout: [`Store`] is the sum of one trait per aggregate, each in its
//! own file with its queries: [`Settings`] (and request nonces), [`Apps`],
//! [`Channels`] (channel configs, channels, bindings), [`MerchantStores`]
//! (and their identities), [`Orders`], [`Refunds`], [`Outbox`] (merchant
//! notifications), [`Leases`], [`Audit`] and [`Reconciliations`] (runs and
//! findings), [`Statements`] (the daily statement), [`OrderEvents`] (the
//! order timeline's channel calls, channel notifications and state
//! changes), [`Dashboard`] (the console's figures) and [`Accounts`] (console
//! accounts, their API tokens and sessions). A caller holding
//! `Arc<dyn Store>` calls any of their methods without importing them.
//! The queries and the row decoding are written once (those files,
//! `common.rs` for what they share, `rows.rs`) because both engines accept
//! the same SQL text (`$n` placeholders, `ON CONFLICT`, `RETURNING`);
//! `sqlite.rs` and `postgres.rs` own only what differs: connecting, migrations, binding
//! values and the storage of timestamps (SQLite: INTEGER unix microseconds,
//! PostgreSQL: TIMESTAMPTZ; both keep microseconds and sort correctly).
//! A time read back is therefore the time written, truncated to the
//! microsecond.

mod accounts;
mod applications;
mod apps;
mod audit;
mod channels;
mod common;
mod dashboard;
mod events;
mod leases;
mod merchant_stores;
pub mod model;
mod mp_tokens;
mod orders;
mod outbox;
mod postgres;
mod recon;
mod refunds;
mod rows;
mod settings;
mod sqlite;
mod statements;

use std::sync::Arc;

use async_trait::async_trait;

pub use accounts::{Account, AccountUpdate, Accounts, ApiToken, Session};
pub use applications::{
    ApplicationDecision, ApplicationFilter, RefundApplication, RefundApplications,
};
pub use apps::Apps;
pub use audit::Audit;
pub use channels::Channels;
pub use dashboard::{
    AppStats, ChannelStats, Dashboard, DashboardStats, DayStats, StatsLine, StatsWindow, StoreStats,
};
pub use events::{
    EventOutcome, MAX_SUMMARY_BYTES, NewOrderEvent, OrderEventKind, OrderEventRecord, OrderEvents,
};
pub use leases::Leases;
pub use merchant_stores::MerchantStores;
pub use model::*;
pub use mp_tokens::{MpToken, MpTokens};
pub use orders::Orders;
pub use outbox::Outbox;
pub use recon::{
    Finding, FindingFilter, NewFinding, ReconOrder, ReconRefund, ReconRun, ReconRunFilter,
    Reconciliations, StoredBill,
};
pub use refunds::Refunds;
pub use settings::Settings;
pub use statements::{LineFee, RecordedFee, StatementFilter, StatementRow, Statements};

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

/// Everything cashdesk keeps: every aggregate's trait, and what concerns
/// the database as a whole. Implemented once per backend; the contract
/// tests in `tests/` run against both.
///
/// The server holds an `Arc<dyn Store>`; the methods of the aggregate
/// traits are callable on it without importing those traits (a trait
/// object has its supertraits' methods).
#[async_trait]
pub trait Store:
    Settings
    + Accounts
    + Apps
    + Channels
    + MerchantStores
    + Orders
    + Refunds
    + RefundApplications
    + MpTokens
    + Outbox
    + Leases
    + Audit
    + Reconciliations
    + Statements
    + OrderEvents
    + Dashboard
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Apply pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// A cheap round trip (health check).
    async fn ping(&self) -> Result<()>;
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
