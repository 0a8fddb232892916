//! The [`Store`] implementation shared by both backends.
//!
//! SQLite (≥ 3.35) and PostgreSQL accept the same SQL for everything the
//! store does today: `$n` placeholders, `INSERT … ON CONFLICT … DO
//! NOTHING/DO UPDATE … WHERE`, `UPDATE … RETURNING`. So each query and each
//! compare-and-set is written once, here, and a [`Backend`] only runs a
//! [`Sql`] (text plus typed arguments) on its pool. Whatever must differ
//! later (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite `BEGIN IMMEDIATE`
//! write transactions) goes into the backend modules.
//!
//! Concurrency rules every method follows:
//! - a state change is one `UPDATE … WHERE <key> AND state IN (…)
//!   RETURNING …`; the caller learns from the returned row whether it won;
//! - "insert unless present" is one `INSERT … ON CONFLICT DO NOTHING`
//!   followed, when nothing was inserted, by a read of the winner (rows are
//!   never deleted or re-keyed, so the winner is there to be read);
//! - no method runs two dependent statements in a transaction, so on SQLite
//!   (WAL) no read lock is ever upgraded to a write lock (which could fail
//!   with `SQLITE_BUSY` regardless of the busy timeout).

use async_trait::async_trait;
use cashdesk_core::{
    AppId, BindingId, BindingState, ChannelId, ConfigId, OrderId, OrderState, OutTradeNo, StoreId,
};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::rows::{
    APP_COLS, AUDIT_COLS, BINDING_COLS, BOUND_COLS, CHANNEL_COLS, CONFIG_COLS, ORDER_COLS, RawApp,
    RawAudit, RawBinding, RawBound, RawChannel, RawConfig, RawOrder, Ts, json_text,
};
use crate::{
    App, AuditEntry, Binding, BindingFilter, BoundChannel, Channel, ChannelConfig, Inserted,
    NewOrder, Order, OrderFilter, OrderTransition, Result, Store, StoreError,
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

/// One bound value. The backends map each variant to their own encoding
/// (for [`Arg::Ts`]: microseconds on SQLite, TIMESTAMPTZ on PostgreSQL).
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Bytes(Vec<u8>),
    I64(i64),
    I32(i32),
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
        Arg::Bytes(v.to_vec())
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Self {
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
    fn name(&self) -> &'static str;
    async fn migrate(&self) -> Result<()>;
    /// Run a statement; the number of rows it changed.
    async fn execute(&self, sql: Sql) -> Result<u64>;
    async fn fetch_optional<T: RawRow>(&self, sql: Sql) -> Result<Option<T>>;
    async fn fetch_all<T: RawRow>(&self, sql: Sql) -> Result<Vec<T>>;
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
            "INSERT INTO apps ({APP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(app.app_id.as_str())
        .bind(app.app_name.as_str())
        .bind(app.sign_type.as_str())
        .bind(app.app_key_sealed.as_slice())
        .bind(app.public_key_pem.as_deref())
        .bind(app.notify_url.as_deref())
        .bind(app.refund_review)
        .bind(app.enabled)
        .bind(app.created_at);
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

    // --- channel configs and channels ---

    async fn insert_channel_config(&self, c: &ChannelConfig) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO channel_configs ({CONFIG_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(c.config_id.as_str())
        .bind(c.channel_type.as_str())
        .bind(c.name.as_str())
        .bind(c.mch_id.as_str())
        .bind(c.api_version.as_deref())
        .bind(c.credentials_sealed.as_slice())
        .bind(c.base_url.as_deref())
        .bind(c.enabled)
        .bind(c.created_at);
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
            cond.push(format!("state = {}", sql.push_arg(state.as_str())));
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
             WHERE binding_id = $4 AND state = $5 RETURNING {BINDING_COLS}"
        ))
        .bind(to.as_str())
        .bind(now)
        .bind(by)
        .bind(binding_id.as_str())
        .bind(BindingState::Pending.as_str());
        self.one::<RawBinding, _>(sql).await
    }

    async fn approve_due_bindings(&self, now: DateTime<Utc>) -> Result<u64> {
        let sql = Sql::new(
            "UPDATE bindings SET state = $1, decided_at = $2, decided_by = $3 \
             WHERE state = $4 AND auto_approve_at IS NOT NULL AND auto_approve_at <= $2",
        )
        .bind(BindingState::Approved.as_str())
        .bind(now)
        .bind(AUTO_APPROVER)
        .bind(BindingState::Pending.as_str());
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
             WHERE b.app_id = $1 AND b.state = $2 AND c.enabled AND g.enabled \
             AND (b.store_id = '' OR b.store_id = $3)"
        ))
        .bind(app_id.as_str())
        .bind(BindingState::Approved.as_str())
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

    async fn transition_order(
        &self,
        order_id: &OrderId,
        t: &OrderTransition,
    ) -> Result<Option<Order>> {
        if t.from.is_empty() {
            return Ok(None);
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
            .bind(order_id.as_str());
        let from: Vec<String> = t.from.iter().map(|s| sql.push_arg(s.as_str())).collect();
        // The channel's five columns are replaced together (or not at all):
        // $3 decides for all of them.
        sql.text = format!(
            "UPDATE orders SET state = $1, updated_at = $2, \
             channel_id = CASE WHEN $3 IS NULL THEN channel_id ELSE $3 END, \
             channel_type = CASE WHEN $3 IS NULL THEN channel_type ELSE $4 END, \
             config_id = CASE WHEN $3 IS NULL THEN config_id ELSE $5 END, \
             mch_id = CASE WHEN $3 IS NULL THEN mch_id ELSE $6 END, \
             scene_code = CASE WHEN $3 IS NULL THEN scene_code ELSE $7 END, \
             transaction_id = COALESCE($8, transaction_id), \
             pay_time = COALESCE($9, pay_time), \
             result_error_code = COALESCE($10, result_error_code), \
             result_error_msg = COALESCE($11, result_error_msg), \
             paid_after_close = COALESCE($12, paid_after_close) \
             WHERE order_id = $13 AND state IN ({}) RETURNING {ORDER_COLS}",
            from.join(", ")
        );
        self.one::<RawOrder, _>(sql).await
    }

    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>> {
        let mut sql = Sql::new("");
        let mut cond = vec!["TRUE".to_owned()];
        if let Some(app_id) = &filter.app_id {
            cond.push(format!("app_id = {}", sql.push_arg(app_id.as_str())));
        }
        if let Some(state) = filter.state {
            cond.push(format!("state = {}", sql.push_arg(state.as_str())));
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
