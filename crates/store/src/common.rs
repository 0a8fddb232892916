//! The [`Store`] implementation shared by both backends.
//!
//! SQLite (≥ 3.35) and PostgreSQL accept the same SQL for everything the
//! store does: `$n` placeholders, `INSERT … ON CONFLICT … DO NOTHING/DO
//! UPDATE … WHERE`, `UPDATE … RETURNING`, `WITH … AS MATERIALIZED`. So
//! each query and each compare-and-set is written once, here, and a
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
use cashdesk_core::{
    AppId, BindingId, BindingState, ChannelId, ConfigId, Fen, NotifyId, OrderId, OrderState,
    OutRefundNo, OutTradeNo, RefundId, RefundState, StoreId,
};
use chrono::{DateTime, Duration, Utc};
use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::rows::{
    APP_COLS, ATTEMPT_COLS, AUDIT_COLS, BINDING_COLS, BOUND_COLS, CHANNEL_COLS, CONFIG_COLS,
    IDENTITY_COLS, NOTIFY_COLS, ORDER_COLS, OUTCOME_DELIVERED, OUTCOME_FAILED, OUTCOME_RETRY,
    REFUND_COLS, RawApp, RawAttempt, RawAudit, RawBinding, RawBound, RawChannel, RawConfig,
    RawIdentity, RawNotification, RawOrder, RawRefund, RawStore, STORE_COLS, Ts, json_text,
};
use crate::{
    App, AppSettingsUpdate, AttemptOutcome, AuditEntry, Binding, BindingFilter, BoundChannel,
    Channel, ChannelConfig, InitialRefundState, Inserted, MerchantStore, NewAttempt,
    NewNotification, NewOrder, NewRefund, Notification, NotificationAttempt, NotificationFilter,
    NotificationState, Order, OrderFilter, OrderTransition, QuerySchedule, RESPONSE_EXCERPT_MAX,
    Refund, RefundFilter, RefundInsert, RefundTransition, Result, Store, StoreError, StoreIdentity,
    StoreUpdate,
};

/// Who approved a binding whose `auto_approve_at` passed.
pub(crate) const AUTO_APPROVER: &str = "auto";

/// `limit` of the list methods: 0 means the default, and no page is larger
/// than the maximum (callers page with `before`).
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

fn page_size(limit: u32) -> u32 {
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
fn state_literal(state: &str) -> String {
    assert!(
        !state.is_empty() && state.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
        "not a state name: {state:?}"
    );
    format!("'{state}'")
}

/// Several states as `'A', 'B'` (see [`state_literal`]).
fn state_literals<'a>(states: impl IntoIterator<Item = &'a str>) -> String {
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
    I64(i64),
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
    fn push_arg(&mut self, arg: impl Into<Arg>) -> String {
        self.args.push(arg.into());
        format!("${}", self.args.len())
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
async fn tx_one<X: Tx, R: RawRow, T: TryFrom<R, Error = StoreError>>(
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
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub fn new(backend: B) -> Self {
        Self { backend }
    }

    async fn one<R: RawRow, T: TryFrom<R, Error = StoreError>>(
        &self,
        sql: Sql,
    ) -> Result<Option<T>> {
        self.backend
            .fetch_optional::<R>(sql)
            .await?
            .map(T::try_from)
            .transpose()
    }

    async fn all<R: RawRow, T: TryFrom<R, Error = StoreError>>(&self, sql: Sql) -> Result<Vec<T>> {
        self.backend
            .fetch_all::<R>(sql)
            .await?
            .into_iter()
            .map(T::try_from)
            .collect()
    }

    async fn binding_by_key(
        &self,
        app_id: &AppId,
        channel_id: &ChannelId,
        store_id: Option<&StoreId>,
    ) -> Result<Option<Binding>> {
        let sql = Sql::new(format!(
            "SELECT {BINDING_COLS} FROM bindings WHERE app_id = $1 AND channel_id = $2 AND store_id = $3"
        ))
        .bind(app_id.as_str())
        .bind(channel_id.as_str())
        .bind(store_key(store_id));
        self.one::<RawBinding, _>(sql).await
    }
}

/// `bindings.store_id` is NOT NULL with `''` for "every store of the app", so
/// the unique key (app, channel, store) also holds for app-wide bindings
/// (NULLs would never conflict).
fn store_key(store_id: Option<&StoreId>) -> &str {
    store_id.map_or("", StoreId::as_str)
}

/// The compare-and-set of [`Store::transition_order`]; `None` when it
/// cannot apply (empty `from`).
fn order_transition_sql(order_id: &OrderId, t: &OrderTransition) -> Option<Sql> {
    if t.from.is_empty() {
        return None;
    }
    let ch = t.channel.as_ref();
    let mut sql = Sql::new("")
        .bind(t.to.as_str())
        .bind(t.now)
        .bind(ch.map(|c| c.channel_id.as_str()))
        .bind(ch.map(|c| c.channel_type.as_str()))
        .bind(ch.map(|c| c.config_id.as_str()))
        .bind(ch.map(|c| c.mch_id.as_str()))
        .bind(ch.map(|c| c.scene_code.as_str()))
        .bind(t.transaction_id.as_deref())
        .bind(t.pay_time)
        .bind(t.result_error_code.as_deref())
        .bind(t.result_error_msg.as_deref())
        .bind(t.paid_after_close)
        .bind(order_id.as_str())
        .bind(t.next_query_at)
        .bind(t.store_identity_sealed.as_deref());
    let from = state_literals(t.from.iter().map(|s| s.as_str()));
    // The channel's five columns and the store identity it is used with
    // are replaced together (or not at all): $3 decides for all of them.
    sql.text = format!(
        "UPDATE orders SET state = $1, updated_at = $2, \
         channel_id = CASE WHEN $3 IS NULL THEN channel_id ELSE $3 END, \
         channel_type = CASE WHEN $3 IS NULL THEN channel_type ELSE $4 END, \
         config_id = CASE WHEN $3 IS NULL THEN config_id ELSE $5 END, \
         mch_id = CASE WHEN $3 IS NULL THEN mch_id ELSE $6 END, \
         scene_code = CASE WHEN $3 IS NULL THEN scene_code ELSE $7 END, \
         store_identity_sealed = CASE WHEN $3 IS NULL THEN store_identity_sealed ELSE $15 END, \
         transaction_id = COALESCE($8, transaction_id), \
         pay_time = COALESCE($9, pay_time), \
         result_error_code = COALESCE($10, result_error_code), \
         result_error_msg = COALESCE($11, result_error_msg), \
         paid_after_close = COALESCE($12, paid_after_close), \
         next_query_at = COALESCE($14, next_query_at) \
         WHERE order_id = $13 AND state IN ({from}) RETURNING {ORDER_COLS}"
    );
    Some(sql)
}

/// Write an outbox row inside the caller's transaction, due at `now`.
async fn insert_notification<X: Tx>(
    tx: &mut X,
    n: &NewNotification,
    now: DateTime<Utc>,
) -> Result<Notification> {
    let sql = Sql::new(format!(
        "INSERT INTO notifications (notify_id, app_id, order_id, refund_id, notify_type, url, \
         body, state, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9) RETURNING {NOTIFY_COLS}"
    ))
    .bind(n.notify_id.as_str())
    .bind(n.app_id.as_str())
    .bind(n.order_id.as_str())
    .bind(n.refund_id.as_ref().map(RefundId::as_str))
    .bind(n.notify_type.as_str())
    .bind(n.url.as_str())
    .bind(n.body.as_str())
    .bind(NotificationState::Pending.as_str())
    .bind(now);
    tx_one::<X, RawNotification, Notification>(tx, sql)
        .await?
        .ok_or_else(|| {
            StoreError::Conflict(format!("notification {} was not inserted", n.notify_id))
        })
}

/// What differs between the poller's claims of orders and of refunds.
struct QueryClaim {
    table: &'static str,
    key: &'static str,
    cols: &'static str,
    state: &'static str,
    /// Orders past `expire_at` belong to the expiry job, not the poller.
    expires: bool,
}

const ORDER_CLAIM: QueryClaim = QueryClaim {
    table: "orders",
    key: "order_id",
    cols: ORDER_COLS,
    state: OrderState::Paying.as_str(),
    expires: true,
};

const REFUND_CLAIM: QueryClaim = QueryClaim {
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
fn claim_query_sql(
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

/// Cut a reply excerpt to at most [`RESPONSE_EXCERPT_MAX`] bytes, at a
/// character boundary.
fn excerpt(s: &str) -> &str {
    if s.len() <= RESPONSE_EXCERPT_MAX {
        return s;
    }
    let mut end = RESPONSE_EXCERPT_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The order states a refund may be taken in (REFUNDED only to answer
/// "nothing left" with the refundable amount).
const REFUNDABLE_ORDER_STATES: [OrderState; 3] = [
    OrderState::Success,
    OrderState::PartRefunded,
    OrderState::Refunded,
];

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

    // --- settings ---

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        let sql = Sql::new("SELECT value FROM settings WHERE name = $1").bind(key);
        Ok(self
            .backend
            .fetch_optional::<(String,)>(sql)
            .await?
            .map(|(v,)| v))
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<String> {
        let insert = Sql::new(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(key)
        .bind(value);
        self.backend.execute(insert).await?;
        // Ours or the first writer's: settings are never changed afterwards.
        self.get_setting(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("setting `{key}` vanished after insert")))
    }

    // --- nonces ---

    async fn use_nonce(
        &self,
        app_id: &AppId,
        nonce: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        // One statement: a fresh nonce is inserted; an expired copy is
        // taken over; a live copy makes the upsert's WHERE false, so nothing
        // changes. Under concurrency the database serialises the key, so
        // exactly one caller sees a changed row.
        let sql = Sql::new(
            "INSERT INTO nonces (app_id, nonce, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (app_id, nonce) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE nonces.expires_at <= $4",
        )
        .bind(app_id.as_str())
        .bind(nonce)
        .bind(expires_at)
        .bind(now);
        Ok(self.backend.execute(sql).await? == 1)
    }

    async fn purge_nonces(&self, now: DateTime<Utc>) -> Result<u64> {
        self.backend
            .execute(Sql::new("DELETE FROM nonces WHERE expires_at <= $1").bind(now))
            .await
    }

    // --- apps ---

    async fn insert_app(&self, app: &App) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO apps ({APP_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(app.app_id.as_str())
        .bind(app.app_name.as_str())
        .bind(app.sign_type.as_str())
        .bind(app.app_key_sealed.as_slice())
        .bind(app.public_key_pem.as_deref())
        .bind(app.notify_url.as_deref())
        .bind(app.refund_review)
        .bind(app.enabled)
        .bind(app.created_at)
        .bind(app.auto_refund_paid_after_close)
        .bind(app.previous_key.as_ref().map(|p| p.key_sealed.as_slice()))
        .bind(
            app.previous_key
                .as_ref()
                .and_then(|p| p.public_key_pem.as_deref()),
        )
        .bind(app.previous_key.as_ref().map(|p| p.valid_until))
        .bind(app.key_confirmed);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn get_app(&self, app_id: &AppId) -> Result<Option<App>> {
        let sql = Sql::new(format!("SELECT {APP_COLS} FROM apps WHERE app_id = $1"))
            .bind(app_id.as_str());
        self.one::<RawApp, _>(sql).await
    }

    async fn list_apps(&self) -> Result<Vec<App>> {
        self.all::<RawApp, _>(Sql::new(format!(
            "SELECT {APP_COLS} FROM apps ORDER BY created_at, app_id"
        )))
        .await
    }

    async fn set_app_enabled(&self, app_id: &AppId, enabled: bool) -> Result<bool> {
        let sql = Sql::new("UPDATE apps SET enabled = $1 WHERE app_id = $2")
            .bind(enabled)
            .bind(app_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    async fn update_app_settings(
        &self,
        app_id: &AppId,
        update: &AppSettingsUpdate,
    ) -> Result<Option<(App, u64)>> {
        let mut tx = self.backend.begin().await?;
        // Before the app changes: the subquery reads its old URL.
        let readdressed = match &update.notify_url {
            Some(Some(url)) => {
                let sql = Sql::new(format!(
                    "UPDATE notifications SET url = $1 WHERE app_id = $2 AND state IN ({}) \
                     AND url = (SELECT notify_url FROM apps WHERE app_id = $2)",
                    state_literals([
                        NotificationState::Pending.as_str(),
                        NotificationState::Failed.as_str(),
                    ])
                ))
                .bind(url.as_str())
                .bind(app_id.as_str());
                tx.execute(sql).await?
            }
            _ => 0,
        };
        let sql = Sql::new(format!(
            "UPDATE apps SET refund_review = COALESCE($1, refund_review), \
             auto_refund_paid_after_close = COALESCE($2, auto_refund_paid_after_close), \
             notify_url = CASE WHEN $3 THEN $4 ELSE notify_url END \
             WHERE app_id = $5 RETURNING {APP_COLS}"
        ))
        .bind(update.refund_review)
        .bind(update.auto_refund_paid_after_close)
        .bind(update.notify_url.is_some())
        .bind(update.notify_url.as_ref().and_then(Option::as_deref))
        .bind(app_id.as_str());
        let Some(app) = tx_one::<_, RawApp, App>(&mut tx, sql).await? else {
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some((app, readdressed)))
    }

    async fn rotate_app_key(
        &self,
        app_id: &AppId,
        key_sealed: &[u8],
        public_key_pem: Option<&str>,
        previous_valid_until: DateTime<Utc>,
    ) -> Result<Option<App>> {
        // The right-hand sides read the row as it was before the update.
        let sql = Sql::new(format!(
            "UPDATE apps SET previous_key_sealed = app_key_sealed, \
             previous_public_key_pem = public_key_pem, previous_key_until = $1, \
             app_key_sealed = $2, public_key_pem = $3, key_confirmed = $4 \
             WHERE app_id = $5 RETURNING {APP_COLS}"
        ))
        .bind(previous_valid_until)
        .bind(key_sealed)
        .bind(public_key_pem)
        .bind(false)
        .bind(app_id.as_str());
        self.one::<RawApp, _>(sql).await
    }

    async fn confirm_app_key(&self, app_id: &AppId) -> Result<()> {
        let sql =
            Sql::new("UPDATE apps SET key_confirmed = $1 WHERE app_id = $2 AND key_confirmed = $3")
                .bind(true)
                .bind(app_id.as_str())
                .bind(false);
        self.backend.execute(sql).await?;
        Ok(())
    }

    // --- channel configs and channels ---

    async fn insert_channel_config(&self, c: &ChannelConfig) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO channel_configs ({CONFIG_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(c.config_id.as_str())
        .bind(c.channel_type.as_str())
        .bind(c.name.as_str())
        .bind(c.mch_id.as_str())
        .bind(c.api_version.as_deref())
        .bind(c.credentials_sealed.as_slice())
        .bind(c.base_url.as_deref())
        .bind(c.enabled)
        .bind(c.created_at)
        .bind(c.credentials_updated_at);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn get_channel_config(&self, config_id: &ConfigId) -> Result<Option<ChannelConfig>> {
        let sql = Sql::new(format!(
            "SELECT {CONFIG_COLS} FROM channel_configs WHERE config_id = $1"
        ))
        .bind(config_id.as_str());
        self.one::<RawConfig, _>(sql).await
    }

    async fn list_channel_configs(&self) -> Result<Vec<ChannelConfig>> {
        self.all::<RawConfig, _>(Sql::new(format!(
            "SELECT {CONFIG_COLS} FROM channel_configs ORDER BY config_id"
        )))
        .await
    }

    async fn set_channel_config_enabled(
        &self,
        config_id: &ConfigId,
        enabled: bool,
    ) -> Result<bool> {
        let sql = Sql::new("UPDATE channel_configs SET enabled = $1 WHERE config_id = $2")
            .bind(enabled)
            .bind(config_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    async fn replace_channel_credentials(
        &self,
        config_id: &ConfigId,
        credentials_sealed: &[u8],
        at: DateTime<Utc>,
    ) -> Result<Option<ChannelConfig>> {
        let sql = Sql::new(format!(
            "UPDATE channel_configs SET credentials_sealed = $1, credentials_updated_at = $2 \
             WHERE config_id = $3 RETURNING {CONFIG_COLS}"
        ))
        .bind(credentials_sealed)
        .bind(at)
        .bind(config_id.as_str());
        self.one::<RawConfig, _>(sql).await
    }

    async fn insert_channel(&self, c: &Channel) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO channels ({CHANNEL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(c.channel_id.as_str())
        .bind(c.config_id.as_str())
        .bind(c.scene_code.as_str())
        .bind(c.channel_name.as_str())
        .bind(c.sort)
        .bind(c.enabled)
        .bind(c.created_at);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn get_channel(&self, channel_id: &ChannelId) -> Result<Option<Channel>> {
        let sql = Sql::new(format!(
            "SELECT {CHANNEL_COLS} FROM channels WHERE channel_id = $1"
        ))
        .bind(channel_id.as_str());
        self.one::<RawChannel, _>(sql).await
    }

    async fn list_channels(&self) -> Result<Vec<Channel>> {
        self.all::<RawChannel, _>(Sql::new(format!(
            "SELECT {CHANNEL_COLS} FROM channels ORDER BY channel_id"
        )))
        .await
    }

    async fn set_channel_enabled(&self, channel_id: &ChannelId, enabled: bool) -> Result<bool> {
        let sql = Sql::new("UPDATE channels SET enabled = $1 WHERE channel_id = $2")
            .bind(enabled)
            .bind(channel_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    // --- bindings ---

    async fn insert_binding(&self, b: &Binding) -> Result<Inserted<Binding>> {
        let sql = Sql::new(format!(
            "INSERT INTO bindings ({BINDING_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (app_id, channel_id, store_id) DO NOTHING RETURNING {BINDING_COLS}"
        ))
        .bind(b.binding_id.as_str())
        .bind(b.app_id.as_str())
        .bind(b.channel_id.as_str())
        .bind(store_key(b.store_id.as_ref()))
        .bind(b.state.as_str())
        .bind(b.created_at)
        .bind(b.auto_approve_at)
        .bind(b.decided_at)
        .bind(b.decided_by.as_deref());
        if let Some(new) = self.one::<RawBinding, Binding>(sql).await? {
            return Ok(Inserted::New(new));
        }
        self.binding_by_key(&b.app_id, &b.channel_id, b.store_id.as_ref())
            .await?
            .map(Inserted::Existing)
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "binding {} conflicts but has no twin",
                    b.binding_id
                ))
            })
    }

    async fn get_binding(&self, binding_id: &BindingId) -> Result<Option<Binding>> {
        let sql = Sql::new(format!(
            "SELECT {BINDING_COLS} FROM bindings WHERE binding_id = $1"
        ))
        .bind(binding_id.as_str());
        self.one::<RawBinding, _>(sql).await
    }

    async fn list_bindings(&self, filter: &BindingFilter) -> Result<Vec<Binding>> {
        let mut sql = Sql::new("");
        let mut cond = vec!["TRUE".to_owned()];
        if let Some(app_id) = &filter.app_id {
            cond.push(format!("app_id = {}", sql.push_arg(app_id.as_str())));
        }
        if let Some(state) = filter.state {
            cond.push(format!("state = {}", state_literal(state.as_str())));
        }
        sql.text = format!(
            "SELECT {BINDING_COLS} FROM bindings WHERE {} ORDER BY binding_id",
            cond.join(" AND ")
        );
        self.all::<RawBinding, _>(sql).await
    }

    async fn decide_binding(
        &self,
        binding_id: &BindingId,
        to: BindingState,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Binding>> {
        if to == BindingState::Pending {
            // Not a decision: nothing to apply.
            return Ok(None);
        }
        let sql = Sql::new(format!(
            "UPDATE bindings SET state = $1, decided_at = $2, decided_by = $3 \
             WHERE binding_id = $4 AND state = {} RETURNING {BINDING_COLS}",
            state_literal(BindingState::Pending.as_str())
        ))
        .bind(to.as_str())
        .bind(now)
        .bind(by)
        .bind(binding_id.as_str());
        self.one::<RawBinding, _>(sql).await
    }

    async fn approve_due_bindings(&self, now: DateTime<Utc>) -> Result<u64> {
        let sql = Sql::new(format!(
            "UPDATE bindings SET state = $1, decided_at = $2, decided_by = $3 \
             WHERE state = {} AND auto_approve_at IS NOT NULL AND auto_approve_at <= $2",
            state_literal(BindingState::Pending.as_str())
        ))
        .bind(BindingState::Approved.as_str())
        .bind(now)
        .bind(AUTO_APPROVER);
        self.backend.execute(sql).await
    }

    async fn bound_channels(
        &self,
        app_id: &AppId,
        store_id: Option<&StoreId>,
    ) -> Result<Vec<BoundChannel>> {
        // App-wide bindings (store_id '') always qualify; a store's own
        // binding only for that store. Without a store, $3 is '' too.
        let sql = Sql::new(format!(
            "SELECT {BOUND_COLS} FROM bindings b \
             JOIN channels c ON c.channel_id = b.channel_id \
             JOIN channel_configs g ON g.config_id = c.config_id \
             WHERE b.app_id = $1 AND b.state = {} AND c.enabled AND g.enabled \
             AND (b.store_id = '' OR b.store_id = $2)",
            state_literal(BindingState::Approved.as_str())
        ))
        .bind(app_id.as_str())
        .bind(store_key(store_id));
        let mut rows: Vec<BoundChannel> = self.all::<RawBound, _>(sql).await?;
        // One entry per channel, the store's binding before the app-wide
        // one; then the display order. Sorted here rather than in SQL so the
        // order does not depend on a database collation.
        rows.sort_by(|a, b| {
            (
                a.channel.sort,
                a.channel.channel_id.as_str(),
                a.binding.store_id.is_none(),
            )
                .cmp(&(
                    b.channel.sort,
                    b.channel.channel_id.as_str(),
                    b.binding.store_id.is_none(),
                ))
        });
        rows.dedup_by(|later, first| later.channel.channel_id == first.channel.channel_id);
        Ok(rows)
    }

    // --- stores ---

    async fn insert_store(&self, st: &MerchantStore) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO stores ({STORE_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(st.app_id.as_str())
        .bind(st.store_id.as_str())
        .bind(st.name.as_str())
        .bind(st.enabled)
        .bind(st.created_at)
        .bind(st.updated_at);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn get_store(&self, app_id: &AppId, store_id: &StoreId) -> Result<Option<MerchantStore>> {
        let sql = Sql::new(format!(
            "SELECT {STORE_COLS} FROM stores WHERE app_id = $1 AND store_id = $2"
        ))
        .bind(app_id.as_str())
        .bind(store_id.as_str());
        self.one::<RawStore, _>(sql).await
    }

    async fn list_stores(&self, app_id: Option<&AppId>) -> Result<Vec<MerchantStore>> {
        let sql = match app_id {
            Some(a) => Sql::new(format!(
                "SELECT {STORE_COLS} FROM stores WHERE app_id = $1 ORDER BY app_id, store_id"
            ))
            .bind(a.as_str()),
            None => Sql::new(format!(
                "SELECT {STORE_COLS} FROM stores ORDER BY app_id, store_id"
            )),
        };
        let mut stores: Vec<MerchantStore> = self.all::<RawStore, _>(sql).await?;
        // By bytes, whatever the database collation.
        stores.sort_by(|a, b| {
            (a.app_id.as_str(), a.store_id.as_str()).cmp(&(b.app_id.as_str(), b.store_id.as_str()))
        });
        Ok(stores)
    }

    async fn update_store(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        update: &StoreUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<MerchantStore>> {
        let sql = Sql::new(format!(
            "UPDATE stores SET name = COALESCE($1, name), enabled = COALESCE($2, enabled), \
             updated_at = $3 WHERE app_id = $4 AND store_id = $5 RETURNING {STORE_COLS}"
        ))
        .bind(update.name.as_deref())
        .bind(update.enabled)
        .bind(now)
        .bind(app_id.as_str())
        .bind(store_id.as_str());
        self.one::<RawStore, _>(sql).await
    }

    async fn put_store_identity(&self, i: &StoreIdentity) -> Result<StoreIdentity> {
        // One upsert: a second put replaces the fields and keeps created_at.
        let sql = Sql::new(format!(
            "INSERT INTO store_identities ({IDENTITY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (app_id, store_id, config_id) DO UPDATE SET mch_id = excluded.mch_id, \
             identity_sealed = excluded.identity_sealed, updated_at = excluded.updated_at \
             RETURNING {IDENTITY_COLS}"
        ))
        .bind(i.app_id.as_str())
        .bind(i.store_id.as_str())
        .bind(i.config_id.as_str())
        .bind(i.mch_id.as_str())
        .bind(i.identity_sealed.as_slice())
        .bind(i.created_at)
        .bind(i.updated_at);
        self.one::<RawIdentity, StoreIdentity>(sql)
            .await?
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "identity of store {} at {} was not written",
                    i.store_id, i.config_id
                ))
            })
    }

    async fn get_store_identity(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        config_id: &ConfigId,
    ) -> Result<Option<StoreIdentity>> {
        let sql = Sql::new(format!(
            "SELECT {IDENTITY_COLS} FROM store_identities \
             WHERE app_id = $1 AND store_id = $2 AND config_id = $3"
        ))
        .bind(app_id.as_str())
        .bind(store_id.as_str())
        .bind(config_id.as_str());
        self.one::<RawIdentity, _>(sql).await
    }

    async fn list_store_identities(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
    ) -> Result<Vec<StoreIdentity>> {
        let sql = Sql::new(format!(
            "SELECT {IDENTITY_COLS} FROM store_identities WHERE app_id = $1 AND store_id = $2"
        ))
        .bind(app_id.as_str())
        .bind(store_id.as_str());
        let mut all: Vec<StoreIdentity> = self.all::<RawIdentity, _>(sql).await?;
        all.sort_by(|a, b| a.config_id.cmp(&b.config_id));
        Ok(all)
    }

    async fn delete_store_identity(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        config_id: &ConfigId,
    ) -> Result<bool> {
        let sql = Sql::new(
            "DELETE FROM store_identities WHERE app_id = $1 AND store_id = $2 AND config_id = $3",
        )
        .bind(app_id.as_str())
        .bind(store_id.as_str())
        .bind(config_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    // --- orders ---

    async fn insert_order(&self, o: &NewOrder) -> Result<Inserted<Order>> {
        let sql = Sql::new(format!(
            "INSERT INTO orders (order_id, app_id, out_trade_no, amount, order_title, goods_desc, \
             third_party_user, notify_url, return_url, store_id, attach, client_ip, token, expire_at, \
             request_hash, response, state, refunded_amount, paid_after_close, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20) \
             ON CONFLICT (app_id, out_trade_no) DO NOTHING RETURNING {ORDER_COLS}"
        ))
        .bind(o.order_id.as_str())
        .bind(o.app_id.as_str())
        .bind(o.out_trade_no.as_str())
        .bind(o.amount.get())
        .bind(o.order_title.as_str())
        .bind(o.goods_desc.as_str())
        .bind(o.third_party_user.as_str())
        .bind(o.notify_url.as_deref())
        .bind(o.return_url.as_deref())
        .bind(o.store_id.as_ref().map(StoreId::as_str))
        .bind(o.attach.as_deref())
        .bind(o.client_ip.as_deref())
        .bind(o.token.as_str())
        .bind(o.expire_at)
        .bind(o.request_hash.as_str())
        .bind(json_text("orders.response", &o.response)?)
        .bind(OrderState::Created.as_str())
        .bind(0_i64)
        .bind(false)
        .bind(o.created_at);
        if let Some(new) = self.one::<RawOrder, Order>(sql).await? {
            return Ok(Inserted::New(new));
        }
        // The (app, outTradeNo) key exists: the first insert won. Other
        // unique keys (order id, token) are not covered by DO NOTHING and
        // surface as a Conflict error above.
        self.get_order_by_out_trade_no(&o.app_id, &o.out_trade_no)
            .await?
            .map(Inserted::Existing)
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "order {} conflicts but has no twin",
                    o.out_trade_no
                ))
            })
    }

    async fn get_order(&self, order_id: &OrderId) -> Result<Option<Order>> {
        let sql = Sql::new(format!(
            "SELECT {ORDER_COLS} FROM orders WHERE order_id = $1"
        ))
        .bind(order_id.as_str());
        self.one::<RawOrder, _>(sql).await
    }

    async fn get_order_by_out_trade_no(
        &self,
        app_id: &AppId,
        out_trade_no: &OutTradeNo,
    ) -> Result<Option<Order>> {
        let sql = Sql::new(format!(
            "SELECT {ORDER_COLS} FROM orders WHERE app_id = $1 AND out_trade_no = $2"
        ))
        .bind(app_id.as_str())
        .bind(out_trade_no.as_str());
        self.one::<RawOrder, _>(sql).await
    }

    async fn get_order_by_token(&self, token: &str) -> Result<Option<Order>> {
        let sql = Sql::new(format!("SELECT {ORDER_COLS} FROM orders WHERE token = $1")).bind(token);
        self.one::<RawOrder, _>(sql).await
    }

    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>> {
        let mut sql = Sql::new("");
        let mut cond = vec!["TRUE".to_owned()];
        if let Some(app_id) = &filter.app_id {
            cond.push(format!("app_id = {}", sql.push_arg(app_id.as_str())));
        }
        if let Some(store_id) = &filter.store_id {
            cond.push(format!("store_id = {}", sql.push_arg(store_id.as_str())));
        }
        if let Some(state) = filter.state {
            cond.push(format!("state = {}", state_literal(state.as_str())));
        }
        if let Some(no) = &filter.out_trade_no {
            cond.push(format!("out_trade_no = {}", sql.push_arg(no.as_str())));
        }
        if let Some(before) = &filter.before {
            cond.push(format!("order_id < {}", sql.push_arg(before.as_str())));
        }
        let limit = sql.push_arg(i64::from(page_size(filter.limit)));
        sql.text = format!(
            "SELECT {ORDER_COLS} FROM orders WHERE {} ORDER BY order_id DESC LIMIT {limit}",
            cond.join(" AND ")
        );
        self.all::<RawOrder, _>(sql).await
    }

    async fn transition_order_notify(
        &self,
        order_id: &OrderId,
        t: &OrderTransition,
        notification: Option<&NewNotification>,
    ) -> Result<Option<(Order, Option<Notification>)>> {
        let Some(sql) = order_transition_sql(order_id, t) else {
            return Ok(None);
        };
        let Some(n) = notification else {
            return Ok(self.one::<RawOrder, Order>(sql).await?.map(|o| (o, None)));
        };
        let mut tx = self.backend.begin().await?;
        // The UPDATE locks the order row (PostgreSQL) until commit.
        let Some(order) = tx_one::<_, RawOrder, Order>(&mut tx, sql).await? else {
            return Ok(None); // dropped: rolled back, nothing written
        };
        let notification = insert_notification(&mut tx, n, t.now).await?;
        tx.commit().await?;
        Ok(Some((order, Some(notification))))
    }

    async fn schedule_order_query(&self, order_id: &OrderId, at: DateTime<Utc>) -> Result<bool> {
        let sql = Sql::new("UPDATE orders SET next_query_at = $1 WHERE order_id = $2")
            .bind(at)
            .bind(order_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    async fn claim_orders_to_query(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        schedule: &QuerySchedule,
    ) -> Result<Vec<Order>> {
        let sql = claim_query_sql(
            &ORDER_CLAIM,
            now,
            limit,
            schedule,
            self.backend.skip_locked(),
        );
        let mut orders: Vec<Order> = self.all::<RawOrder, _>(sql).await?;
        // RETURNING has no order; the previous due time is gone, so sort
        // by the new one (same attempt count → same delay).
        orders.sort_by(|a, b| (a.next_query_at, &a.order_id).cmp(&(b.next_query_at, &b.order_id)));
        Ok(orders)
    }

    async fn list_expired_orders(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>> {
        let sql = Sql::new(format!(
            "SELECT {ORDER_COLS} FROM orders WHERE state IN ({}) AND expire_at <= $1 \
             ORDER BY expire_at, order_id LIMIT $2",
            state_literals([OrderState::Created.as_str(), OrderState::Paying.as_str()])
        ))
        .bind(now)
        .bind(i64::from(page_size(limit)));
        self.all::<RawOrder, _>(sql).await
    }

    // --- refunds ---

    async fn insert_refund(
        &self,
        r: &NewRefund,
        initial: InitialRefundState,
    ) -> Result<RefundInsert> {
        let mut tx = self.backend.begin().await?;
        // 1. The order row, locked until commit: every insert_refund and
        //    transition_refund of this order queues here, so the sum read
        //    below cannot change before our insert commits. (SQLite: the
        //    transaction holds the database's write lock already.)
        let order = tx_one::<_, RawOrder, Order>(
            &mut tx,
            Sql::new(format!(
                "SELECT {ORDER_COLS} FROM orders WHERE order_id = $1 AND app_id = $2{}",
                self.backend.for_update()
            ))
            .bind(r.order_id.as_str())
            .bind(r.app_id.as_str()),
        )
        .await?;
        // 2. Idempotency: the same (app, outRefundNo) answers with the
        //    stored refund.
        let existing = tx_one::<_, RawRefund, Refund>(
            &mut tx,
            Sql::new(format!(
                "SELECT {REFUND_COLS} FROM refunds WHERE app_id = $1 AND out_refund_no = $2"
            ))
            .bind(r.app_id.as_str())
            .bind(r.out_refund_no.as_str()),
        )
        .await?;
        if let Some(existing) = existing {
            return Ok(RefundInsert::Existing(existing));
        }
        let Some(order) = order else {
            return Err(StoreError::NotFound(format!(
                "order {} of app {}",
                r.order_id, r.app_id
            )));
        };
        if !REFUNDABLE_ORDER_STATES.contains(&order.state) {
            return Ok(RefundInsert::OrderNotRefundable { state: order.state });
        }
        // 3. What is left: the order's amount minus every refund that still
        //    holds an amount (pending review, processing or done).
        let mut sum = Sql::new("").bind(r.order_id.as_str());
        let holding = state_literals(
            RefundState::ALL
                .iter()
                .filter(|s| s.holds_amount())
                .map(|s| s.as_str()),
        );
        sum.text = format!(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds \
             WHERE order_id = $1 AND state IN ({holding})"
        );
        let (held,): (i64,) = tx.fetch_optional(sum).await?.unwrap_or((0,));
        let refundable = Fen::from_stored((order.amount.get() - held).max(0));
        if r.amount > refundable {
            return Ok(RefundInsert::ExceedsRefundable { refundable });
        }
        // 4. Insert. A concurrent insert of the same (app, outRefundNo) for
        //    another order is not serialised by our order lock: DO NOTHING
        //    makes it an idempotent answer rather than an error.
        let insert = Sql::new(format!(
            "INSERT INTO refunds (refund_id, app_id, order_id, out_refund_no, amount, reason, \
             notify_url, state, request_hash, created_at, updated_at, query_attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 0) \
             ON CONFLICT (app_id, out_refund_no) DO NOTHING RETURNING {REFUND_COLS}"
        ))
        .bind(r.refund_id.as_str())
        .bind(r.app_id.as_str())
        .bind(r.order_id.as_str())
        .bind(r.out_refund_no.as_str())
        .bind(r.amount.get())
        .bind(r.reason.as_deref())
        .bind(r.notify_url.as_deref())
        .bind(initial.state().as_str())
        .bind(r.request_hash.as_str())
        .bind(r.created_at);
        match tx_one::<_, RawRefund, Refund>(&mut tx, insert).await? {
            Some(new) => {
                tx.commit().await?;
                Ok(RefundInsert::New(new))
            }
            None => {
                drop(tx);
                self.get_refund_by_out_refund_no(&r.app_id, &r.out_refund_no)
                    .await?
                    .map(RefundInsert::Existing)
                    .ok_or_else(|| {
                        StoreError::Conflict(format!(
                            "refund {} conflicts but has no twin",
                            r.out_refund_no
                        ))
                    })
            }
        }
    }

    async fn get_refund(&self, refund_id: &RefundId) -> Result<Option<Refund>> {
        let sql = Sql::new(format!(
            "SELECT {REFUND_COLS} FROM refunds WHERE refund_id = $1"
        ))
        .bind(refund_id.as_str());
        self.one::<RawRefund, _>(sql).await
    }

    async fn get_refund_by_out_refund_no(
        &self,
        app_id: &AppId,
        out_refund_no: &OutRefundNo,
    ) -> Result<Option<Refund>> {
        let sql = Sql::new(format!(
            "SELECT {REFUND_COLS} FROM refunds WHERE app_id = $1 AND out_refund_no = $2"
        ))
        .bind(app_id.as_str())
        .bind(out_refund_no.as_str());
        self.one::<RawRefund, _>(sql).await
    }

    async fn list_refunds(&self, filter: &RefundFilter) -> Result<Vec<Refund>> {
        let mut sql = Sql::new("");
        let mut cond = vec!["TRUE".to_owned()];
        if let Some(app_id) = &filter.app_id {
            cond.push(format!("app_id = {}", sql.push_arg(app_id.as_str())));
        }
        if let Some(order_id) = &filter.order_id {
            cond.push(format!("order_id = {}", sql.push_arg(order_id.as_str())));
        }
        if let Some(state) = filter.state {
            cond.push(format!("state = {}", state_literal(state.as_str())));
        }
        if let Some(before) = &filter.before {
            cond.push(format!("refund_id < {}", sql.push_arg(before.as_str())));
        }
        let limit = sql.push_arg(i64::from(page_size(filter.limit)));
        sql.text = format!(
            "SELECT {REFUND_COLS} FROM refunds WHERE {} ORDER BY refund_id DESC LIMIT {limit}",
            cond.join(" AND ")
        );
        self.all::<RawRefund, _>(sql).await
    }

    async fn transition_refund(
        &self,
        refund_id: &RefundId,
        t: &RefundTransition,
        notification: Option<&NewNotification>,
    ) -> Result<Option<(Refund, Option<Notification>)>> {
        let success = t.to == RefundState::Success;
        // A refund reaches SUCCESS once: its amount is added to the order
        // exactly when that happens.
        let from: Vec<RefundState> = t
            .from
            .iter()
            .copied()
            .filter(|s| !(success && *s == RefundState::Success))
            .collect();
        if from.is_empty() {
            return Ok(None);
        }
        let mut tx = self.backend.begin().await?;
        // Lock the order first, as insert_refund does (one lock order, no
        // deadlock between the two).
        let lock = Sql::new(format!(
            "SELECT order_id FROM orders \
             WHERE order_id = (SELECT order_id FROM refunds WHERE refund_id = $1){}",
            self.backend.for_update()
        ))
        .bind(refund_id.as_str());
        let Some((order_id,)) = tx.fetch_optional::<(String,)>(lock).await? else {
            return Ok(None);
        };
        let mut sql = Sql::new("")
            .bind(t.to.as_str())
            .bind(t.now)
            .bind(t.channel_refund_id.as_deref())
            .bind(t.error_code.as_deref())
            .bind(t.error_msg.as_deref())
            .bind(t.finished_at)
            .bind(refund_id.as_str());
        let from = state_literals(from.iter().map(|s| s.as_str()));
        sql.text = format!(
            "UPDATE refunds SET state = $1, updated_at = $2, \
             channel_refund_id = COALESCE($3, channel_refund_id), \
             error_code = COALESCE($4, error_code), error_msg = COALESCE($5, error_msg), \
             finished_at = COALESCE($6, finished_at) \
             WHERE refund_id = $7 AND state IN ({from}) RETURNING {REFUND_COLS}"
        );
        let Some(refund) = tx_one::<_, RawRefund, Refund>(&mut tx, sql).await? else {
            return Ok(None);
        };
        if success {
            // SET expressions read the row's old values on both engines.
            let mut sql = Sql::new("")
                .bind(refund.amount.get())
                .bind(OrderState::Refunded.as_str())
                .bind(OrderState::PartRefunded.as_str())
                .bind(t.now)
                .bind(order_id.as_str());
            let partial = state_literals(
                [OrderState::Success, OrderState::PartRefunded]
                    .iter()
                    .map(|s| s.as_str()),
            );
            sql.text = format!(
                "UPDATE orders SET refunded_amount = refunded_amount + $1, updated_at = $4, \
                 state = CASE WHEN state NOT IN ({partial}) THEN state \
                 WHEN refunded_amount + $1 >= amount THEN $2 ELSE $3 END \
                 WHERE order_id = $5"
            );
            if tx.execute(sql).await? != 1 {
                return Err(StoreError::NotFound(format!("order {order_id}")));
            }
        }
        let notification = match notification {
            Some(n) => Some(insert_notification(&mut tx, n, t.now).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(Some((refund, notification)))
    }

    async fn schedule_refund_query(&self, refund_id: &RefundId, at: DateTime<Utc>) -> Result<bool> {
        let sql = Sql::new("UPDATE refunds SET next_query_at = $1 WHERE refund_id = $2")
            .bind(at)
            .bind(refund_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    async fn claim_refunds_to_query(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        schedule: &QuerySchedule,
    ) -> Result<Vec<Refund>> {
        let sql = claim_query_sql(
            &REFUND_CLAIM,
            now,
            limit,
            schedule,
            self.backend.skip_locked(),
        );
        let mut refunds: Vec<Refund> = self.all::<RawRefund, _>(sql).await?;
        refunds
            .sort_by(|a, b| (a.next_query_at, &a.refund_id).cmp(&(b.next_query_at, &b.refund_id)));
        Ok(refunds)
    }

    // --- merchant notifications ---

    async fn claim_due_notifications(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let due = format!(
            "state = {} AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3)",
            state_literal(NotificationState::Pending.as_str())
        );
        let sql = Sql::new(format!(
            "WITH picked AS MATERIALIZED (SELECT notify_id FROM notifications WHERE {due} \
             ORDER BY next_attempt_at, notify_id LIMIT $4{}) \
             UPDATE notifications SET lease_owner = $1, lease_until = $2 \
             WHERE notify_id IN (SELECT notify_id FROM picked) AND {due} \
             RETURNING {NOTIFY_COLS}",
            self.backend.skip_locked()
        ))
        .bind(owner)
        .bind(now + lease)
        .bind(now)
        .bind(i64::from(page_size(limit)));
        let mut claimed: Vec<Notification> = self.all::<RawNotification, _>(sql).await?;
        claimed.sort_by(|a, b| {
            (a.next_attempt_at, &a.notify_id).cmp(&(b.next_attempt_at, &b.notify_id))
        });
        Ok(claimed)
    }

    async fn record_notification_attempt(
        &self,
        notify_id: &NotifyId,
        owner: &str,
        attempt: &NewAttempt,
        outcome: AttemptOutcome,
    ) -> Result<bool> {
        let (state, next_at, delivered_at, label, retry_at) = match outcome {
            AttemptOutcome::Delivered => (
                NotificationState::Delivered,
                None,
                Some(attempt.at),
                OUTCOME_DELIVERED,
                None,
            ),
            AttemptOutcome::RetryAt(at) => (
                NotificationState::Pending,
                Some(at),
                None,
                OUTCOME_RETRY,
                Some(at),
            ),
            AttemptOutcome::Failed => (NotificationState::Failed, None, None, OUTCOME_FAILED, None),
        };
        let mut tx = self.backend.begin().await?;
        let update = Sql::new(format!(
            "UPDATE notifications SET state = $1, attempts = attempts + 1, \
             next_attempt_at = COALESCE($2, next_attempt_at), \
             delivered_at = COALESCE($3, delivered_at), last_error = $4, \
             lease_owner = NULL, lease_until = NULL \
             WHERE notify_id = $5 AND lease_owner = $6 AND state = {}",
            state_literal(NotificationState::Pending.as_str())
        ))
        .bind(state.as_str())
        .bind(next_at)
        .bind(delivered_at)
        .bind(attempt.error.as_deref())
        .bind(notify_id.as_str())
        .bind(owner);
        if tx.execute(update).await? != 1 {
            return Ok(false); // not ours (any more): rolled back, nothing written
        }
        let latency = i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX);
        let log = Sql::new(format!(
            "INSERT INTO notification_attempts ({ATTEMPT_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(notify_id.as_str())
        .bind(attempt.at)
        .bind(owner)
        .bind(attempt.http_status.map(i32::from))
        .bind(latency)
        .bind(attempt.response_excerpt.as_deref().map(excerpt))
        .bind(attempt.error.as_deref())
        .bind(label)
        .bind(retry_at);
        tx.execute(log).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn get_notification(&self, notify_id: &NotifyId) -> Result<Option<Notification>> {
        let sql = Sql::new(format!(
            "SELECT {NOTIFY_COLS} FROM notifications WHERE notify_id = $1"
        ))
        .bind(notify_id.as_str());
        self.one::<RawNotification, _>(sql).await
    }

    async fn list_notifications(&self, filter: &NotificationFilter) -> Result<Vec<Notification>> {
        let mut sql = Sql::new("");
        let mut cond = vec!["TRUE".to_owned()];
        if let Some(app_id) = &filter.app_id {
            cond.push(format!("app_id = {}", sql.push_arg(app_id.as_str())));
        }
        if let Some(order_id) = &filter.order_id {
            cond.push(format!("order_id = {}", sql.push_arg(order_id.as_str())));
        }
        if let Some(state) = filter.state {
            cond.push(format!("state = {}", state_literal(state.as_str())));
        }
        if let Some(before) = &filter.before {
            cond.push(format!("notify_id < {}", sql.push_arg(before.as_str())));
        }
        let limit = sql.push_arg(i64::from(page_size(filter.limit)));
        sql.text = format!(
            "SELECT {NOTIFY_COLS} FROM notifications WHERE {} ORDER BY notify_id DESC LIMIT {limit}",
            cond.join(" AND ")
        );
        self.all::<RawNotification, _>(sql).await
    }

    async fn list_notification_attempts(
        &self,
        notify_id: &NotifyId,
    ) -> Result<Vec<NotificationAttempt>> {
        let sql = Sql::new(format!(
            "SELECT {ATTEMPT_COLS} FROM notification_attempts WHERE notify_id = $1 ORDER BY id"
        ))
        .bind(notify_id.as_str());
        self.all::<RawAttempt, _>(sql).await
    }

    async fn resend_notification(
        &self,
        notify_id: &NotifyId,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>> {
        // A live lease is kept: its holder may be sending right now, and
        // nobody else may send until it records or its lease runs out.
        let sql = Sql::new(format!(
            "UPDATE notifications SET state = $1, next_attempt_at = $2, \
             lease_owner = CASE WHEN lease_until > $2 THEN lease_owner ELSE NULL END, \
             lease_until = CASE WHEN lease_until > $2 THEN lease_until ELSE NULL END \
             WHERE notify_id = $3 RETURNING {NOTIFY_COLS}"
        ))
        .bind(NotificationState::Pending.as_str())
        .bind(now)
        .bind(notify_id.as_str());
        self.one::<RawNotification, _>(sql).await
    }

    // --- leases ---

    async fn try_acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool> {
        // As use_nonce: one upsert whose WHERE decides; the database
        // serialises the key, so one racer sees a changed row.
        let sql = Sql::new(
            "INSERT INTO leases (name, owner, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
             lease_until = excluded.lease_until \
             WHERE leases.owner = excluded.owner OR leases.lease_until <= $4",
        )
        .bind(name)
        .bind(owner)
        .bind(now + ttl)
        .bind(now);
        Ok(self.backend.execute(sql).await? == 1)
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<bool> {
        let sql = Sql::new("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner);
        Ok(self.backend.execute(sql).await? > 0)
    }

    // --- audit ---

    async fn insert_audit(&self, e: &AuditEntry) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO audit ({AUDIT_COLS}) VALUES ($1, $2, $3, $4, $5)"
        ))
        .bind(e.at)
        .bind(e.actor.as_str())
        .bind(e.action.as_str())
        .bind(e.target.as_str())
        .bind(json_text("audit.detail", &e.detail)?);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let sql = Sql::new(format!(
            "SELECT {AUDIT_COLS} FROM audit ORDER BY id DESC LIMIT $1"
        ))
        .bind(i64::from(page_size(limit)));
        self.all::<RawAudit, _>(sql).await
    }
}
