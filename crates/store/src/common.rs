//! What the store's SQL shares, whichever the backend and the aggregate:
//! [`Sql`] and its [`Arg`]s, the [`Backend`] and [`Tx`] a database engine
//! provides, [`SqlStore`] (the one implementation of [`Store`] and of
//! every aggregate trait, over a backend) and the helpers the aggregates'
//! queries are built with (page sizes, state literals, the poller's claim).
//!
//! SQLite (≥ 3.35) and PostgreSQL accept the same SQL for everything the
//! store does: `$n` placeholders, `INSERT … ON CONFLICT … DO NOTHING/DO
//! UPDATE … WHERE`, `UPDATE … RETURNING`, `WITH … AS MATERIALIZED`. So
//! each query and each compare-and-set is written once, in the file of its
//! aggregate (`settings.rs`, `apps.rs`, `channels.rs`, `merchant_stores.rs`,
//! `orders.rs`, `refunds.rs`, `outbox.rs`, `leases.rs`, `audit.rs`), and a
//! [`Backend`] only runs a [`Sql`] (text plus typed arguments) on its pool
//! or in a write transaction ([`Tx`]), and supplies the one piece of SQL
//! that differs: row locks (`FOR UPDATE [SKIP LOCKED]` on PostgreSQL,
//! nothing on SQLite, whose write transaction is `BEGIN IMMEDIATE`).
//!
//! Concurrency rules every method follows:
//! - a state change is one `UPDATE … WHERE <key> AND state IN (…)
//!   RETURNING …`; the caller learns from the returned row whether it won;
//! - "insert unless present" is one `INSERT … ON CONFLICT DO NOTHING`
//!   followed, when nothing was inserted, by a read of the winner (rows are
//!   never deleted or re-keyed, so the winner is there to be read);
//! - a claim (poller, outbox) is one `UPDATE` of the rows a materialized
//!   sub-select picked (`SKIP LOCKED` on PostgreSQL), pushing their due
//!   time or lease forward, so concurrent claimers get disjoint rows;
//! - what must change together (a transition and its outbox row; a refund,
//!   its order and its outbox row; an attempt and its log line) runs in
//!   one [`Tx`], and a read that decides a write (the refundable amount)
//!   happens in that transaction under the order row's lock. Every
//!   transaction locks the order before the refund, so they cannot
//!   deadlock. On SQLite a transaction takes the write lock at `BEGIN`, so
//!   no read lock is ever upgraded to a write lock (which could fail with
//!   `SQLITE_BUSY` regardless of the busy timeout); and a method never
//!   uses the pool while it holds a transaction (the in-memory database has
//!   one connection).

use async_trait::async_trait;
use cashdesk_core::{AppId, OrderState, RefundState};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::rows::{ORDER_COLS, REFUND_COLS, Ts};
use crate::{QuerySchedule, Result, Store, StoreError};

/// `limit` of the list methods: 0 means the default, and no page is larger
/// than the maximum (callers page with `before`).
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

pub(crate) fn page_size(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    }
}

/// A state name as an SQL string literal (`'PAYING'`).
///
/// States are written into the SQL text rather than bound: several
/// indexes are partial (`… WHERE state = 'PAYING'`), and SQLite checks
/// whether a query may use one by comparing its `state` term with the
/// index's; against a bound parameter that comparison marks the statement
/// to be compiled again every time a value is bound, which cost more than
/// a tenth of the server's CPU under load. As literals the statements are
/// prepared once and keep a stable plan (PostgreSQL plans them the same
/// way). Only the fixed upper-case names of the state enums come here.
pub(crate) fn state_literal(state: &str) -> String {
    assert!(
        !state.is_empty() && state.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
        "not a state name: {state:?}"
    );
    format!("'{state}'")
}

/// Several states as `'A', 'B'` (see [`state_literal`]).
pub(crate) fn state_literals<'a>(states: impl IntoIterator<Item = &'a str>) -> String {
    states
        .into_iter()
        .map(state_literal)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One bound value. The backends map each variant to their own encoding
/// (for [`Arg::Ts`]: microseconds on SQLite, TIMESTAMPTZ on PostgreSQL).
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    I64(Option<i64>),
    I32(Option<i32>),
    Bool(Option<bool>),
    Ts(Option<Ts>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Arg::Bytes(Some(v.to_vec()))
    }
}
impl From<Option<&[u8]>> for Arg {
    fn from(v: Option<&[u8]>) -> Self {
        Arg::Bytes(v.map(<[u8]>::to_vec))
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::I64(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Self {
        Arg::I32(Some(v))
    }
}
impl From<Option<i32>> for Arg {
    fn from(v: Option<i32>) -> Self {
        Arg::I32(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(Some(v))
    }
}
impl From<Option<bool>> for Arg {
    fn from(v: Option<bool>) -> Self {
        Arg::Bool(v)
    }
}
impl From<DateTime<Utc>> for Arg {
    fn from(v: DateTime<Utc>) -> Self {
        Arg::Ts(Some(Ts(v)))
    }
}
impl From<Option<DateTime<Utc>>> for Arg {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Arg::Ts(v.map(Ts))
    }
}

/// A statement and its arguments, `$1` … `$n` in order.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: Vec::new(),
        }
    }

    pub fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Bind `arg` and return its placeholder, for statements assembled
    /// piece by piece (filters, `IN` lists).
    pub fn push_arg(&mut self, arg: impl Into<Arg>) -> String {
        self.args.push(arg.into());
        format!("${}", self.args.len())
    }

    /// The condition of an app scope (`crate::OrderFilter::app_ids`):
    /// `None` for no scope, `FALSE` for an empty one, else
    /// `column IN ($i, …)` with the ids bound.
    pub fn app_scope(&mut self, column: &str, apps: Option<&[AppId]>) -> Option<String> {
        let apps = apps?;
        if apps.is_empty() {
            return Some("FALSE".to_owned());
        }
        let args: Vec<String> = apps.iter().map(|a| self.push_arg(a.as_str())).collect();
        Some(format!("{column} IN ({})", args.join(", ")))
    }
}

/// A raw row type both backends can decode.
pub(crate) trait RawRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

impl<T> RawRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

/// What a database engine provides to [`SqlStore`].
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// A write transaction of this engine.
    type Tx: Tx;

    fn name(&self) -> &'static str;
    async fn migrate(&self) -> Result<()>;
    /// Run a statement; the number of rows it changed.
    async fn execute(&self, sql: Sql) -> Result<u64>;
    async fn fetch_optional<T: RawRow>(&self, sql: Sql) -> Result<Option<T>>;
    async fn fetch_all<T: RawRow>(&self, sql: Sql) -> Result<Vec<T>>;
    /// Hands each row to `each` as it is read, never holding more than a
    /// few: reads too large to collect (a day of a busy config's orders
    /// for reconciliation). An error from `each` stops the read.
    async fn fetch_each<T: RawRow>(
        &self,
        sql: Sql,
        each: &mut (dyn FnMut(T) -> Result<()> + Send),
    ) -> Result<()>;
    /// Open a write transaction. SQLite: `BEGIN IMMEDIATE`, which takes the
    /// database's single write lock up front (waiting out the busy
    /// timeout), so the transaction's reads see the latest commit and no
    /// other writer runs until it ends. PostgreSQL: an ordinary READ
    /// COMMITTED transaction; the caller locks the rows it decides on with
    /// [`Backend::for_update`].
    async fn begin(&self) -> Result<Self::Tx>;
    /// Appended to a `SELECT` inside a transaction to lock the rows it
    /// reads until commit: ` FOR UPDATE` on PostgreSQL; empty on SQLite,
    /// where the transaction already holds the write lock.
    fn for_update(&self) -> &'static str;
    /// Appended to a claim's sub-select: ` FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL (concurrent claimers take disjoint rows without waiting);
    /// empty on SQLite, where each write statement runs alone.
    fn skip_locked(&self) -> &'static str;
    /// The China (UTC+8) day of the stored time `col`, as whole days since
    /// 1970-01-01: the dashboard's per-day grouping.
    fn cn_day(&self, col: &str) -> String;
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls it back
/// (also when a `?` returns early), so a method commits only once every
/// statement has done what it must.
#[async_trait]
pub(crate) trait Tx: Send + Sized {
    async fn execute(&mut self, sql: Sql) -> Result<u64>;
    async fn fetch_optional<T: RawRow>(&mut self, sql: Sql) -> Result<Option<T>>;
    async fn commit(self) -> Result<()>;
}

/// Decode one row read in a transaction.
pub(crate) async fn tx_one<X: Tx, R: RawRow, T: TryFrom<R, Error = StoreError>>(
    tx: &mut X,
    sql: Sql,
) -> Result<Option<T>> {
    tx.fetch_optional::<R>(sql)
        .await?
        .map(T::try_from)
        .transpose()
}

/// The store over one backend.
pub(crate) struct SqlStore<B> {
    pub(crate) backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub fn new(backend: B) -> Self {
        Self { backend }
    }

    pub(crate) async fn one<R: RawRow, T: TryFrom<R, Error = StoreError>>(
        &self,
        sql: Sql,
    ) -> Result<Option<T>> {
        self.backend
            .fetch_optional::<R>(sql)
            .await?
            .map(T::try_from)
            .transpose()
    }

    pub(crate) async fn all<R: RawRow, T: TryFrom<R, Error = StoreError>>(
        &self,
        sql: Sql,
    ) -> Result<Vec<T>> {
        self.backend
            .fetch_all::<R>(sql)
            .await?
            .into_iter()
            .map(T::try_from)
            .collect()
    }
}

/// What differs between the poller's claims of orders and of refunds.
pub(crate) struct QueryClaim {
    table: &'static str,
    key: &'static str,
    cols: &'static str,
    state: &'static str,
    /// Orders past `expire_at` belong to the expiry job, not the poller.
    expires: bool,
}

pub(crate) const ORDER_CLAIM: QueryClaim = QueryClaim {
    table: "orders",
    key: "order_id",
    cols: ORDER_COLS,
    state: OrderState::Paying.as_str(),
    expires: true,
};

pub(crate) const REFUND_CLAIM: QueryClaim = QueryClaim {
    table: "refunds",
    key: "refund_id",
    cols: REFUND_COLS,
    state: RefundState::Processing.as_str(),
    expires: false,
};

/// The poller's claim: due rows pushed forward by the schedule for their
/// next attempt number. The rows are picked in a `MATERIALIZED` CTE, run
/// once: PostgreSQL may rescan a plain `IN (SELECT … LIMIT n FOR UPDATE
/// SKIP LOCKED)` sub-select, and each rescan skips the rows this very
/// statement has just updated and returns others, so the LIMIT would not
/// bound the claim. The new `next_query_at` is a `CASE` over the
/// current `query_attempts` with one bound time per schedule step, so the
/// whole claim is one statement on both engines; the due condition is
/// repeated outside the sub-select so a row changed meanwhile is not
/// taken.
pub(crate) fn claim_query_sql(
    c: &QueryClaim,
    now: DateTime<Utc>,
    limit: u32,
    schedule: &QuerySchedule,
    skip_locked: &str,
) -> Sql {
    let QueryClaim {
        table, key, cols, ..
    } = c;
    let mut sql = Sql::new("");
    let now_p = sql.push_arg(now);
    let state_p = state_literal(c.state);
    let cutoff_p = sql.push_arg(now - schedule.first_after);
    let limit_p = sql.push_arg(i64::from(page_size(limit)));
    // query_attempts = n before the claim: this is claim n + 1.
    let steps = u32::try_from(schedule.delays.len().max(1)).unwrap_or(u32::MAX);
    let mut case = String::from("CASE");
    for n in 0..steps - 1 {
        let at = sql.push_arg(now + schedule.delay_after(n + 1));
        case.push_str(&format!(" WHEN query_attempts = {n} THEN {at}"));
    }
    let last = sql.push_arg(now + schedule.delay_after(steps));
    // One step (zero or one delay): no WHEN arm, and `CASE ELSE x END` is
    // not SQL, so the value stands alone.
    let case = if steps > 1 {
        format!("{case} ELSE {last} END")
    } else {
        last
    };
    let expiry = if c.expires {
        format!(" AND expire_at > {now_p}")
    } else {
        String::new()
    };
    let due = format!(
        "state = {state_p}{expiry} AND (next_query_at <= {now_p} \
         OR (next_query_at IS NULL AND updated_at <= {cutoff_p}))"
    );
    sql.text = format!(
        "WITH picked AS MATERIALIZED (SELECT {key} FROM {table} WHERE {due} \
         ORDER BY COALESCE(next_query_at, updated_at), {key} LIMIT {limit_p}{skip_locked}) \
         UPDATE {table} SET next_query_at = {case}, query_attempts = query_attempts + 1 \
         WHERE {key} IN (SELECT {key} FROM picked) AND {due} RETURNING {cols}"
    );
    sql
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    fn backend(&self) -> &'static str {
        self.backend.name()
    }

    async fn migrate(&self) -> Result<()> {
        self.backend.migrate().await?;
        tracing::debug!(
            backend = self.backend.name(),
            "database schema is up to date"
        );
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.backend.execute(Sql::new("SELECT 1")).await?;
        Ok(())
    }
}
