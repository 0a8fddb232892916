//! The SQLite backend: the embedded default, one file in the data folder.
//!
//! Every connection runs in WAL mode (readers never block the writer),
//! `synchronous = FULL` (a committed payment survives a power cut),
//! `foreign_keys = ON` and a 5 s busy timeout, so writers from the pool
//! queue for the single write lock instead of failing. Single-statement
//! autocommit writes take the write lock up front and honour the busy
//! timeout. Multi-statement writes ([`Backend::begin`]) open with `BEGIN
//! IMMEDIATE` (`pool.begin_with`): a deferred transaction that reads first
//! and then writes can fail with `SQLITE_BUSY` without waiting. Holding the
//! write lock from the start also makes the transaction's reads current
//! until it commits, which is what the row locks of PostgreSQL give there:
//! SQLite needs no `FOR UPDATE` (and has none), and its claims have a
//! single claimer at a time by construction.
//!
//! `sqlite::memory:` (tests) uses one connection that is never recycled:
//! an in-memory database lives as long as its connections, and a shared
//! cache between several would trade `SQLITE_BUSY` waits for
//! `SQLITE_LOCKED` errors.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Arguments;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::common::{Arg, Backend, RawRow, Sql, Tx};
use crate::{ConnectOptions, Result, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub(crate) struct Sqlite {
    pool: SqlitePool,
}

impl Sqlite {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(options.max_connections.max(1))
        };
        Ok(Self {
            pool: pool.connect_with(connect).await?,
        })
    }
}

fn arguments(args: Vec<Arg>) -> Result<SqliteArguments<'static>> {
    let mut out = SqliteArguments::default();
    for arg in args {
        let added = match arg {
            Arg::Text(v) => out.add(v),
            Arg::Bytes(v) => out.add(v),
            Arg::I64(v) => out.add(v),
            Arg::I32(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Ts(v) => out.add(v),
        };
        added.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}

#[async_trait]
impl Backend for Sqlite {
    type Tx = SqliteTx;

    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn execute(&self, sql: Sql) -> Result<u64> {
        let args = arguments(sql.args)?;
        let done = sqlx::query_with(&sql.text, args)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn fetch_optional<T: RawRow>(&self, sql: Sql) -> Result<Option<T>> {
        let args = arguments(sql.args)?;
        Ok(sqlx::query_as_with::<_, T, _>(&sql.text, args)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn fetch_all<T: RawRow>(&self, sql: Sql) -> Result<Vec<T>> {
        let args = arguments(sql.args)?;
        Ok(sqlx::query_as_with::<_, T, _>(&sql.text, args)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn begin(&self) -> Result<SqliteTx> {
        Ok(SqliteTx(self.pool.begin_with("BEGIN IMMEDIATE").await?))
    }

    fn for_update(&self) -> &'static str {
        ""
    }

    fn skip_locked(&self) -> &'static str {
        ""
    }
}

pub(crate) struct SqliteTx(sqlx::Transaction<'static, sqlx::Sqlite>);

#[async_trait]
impl Tx for SqliteTx {
    async fn execute(&mut self, sql: Sql) -> Result<u64> {
        let args = arguments(sql.args)?;
        let done = sqlx::query_with(&sql.text, args)
            .execute(&mut *self.0)
            .await?;
        Ok(done.rows_affected())
    }

    async fn fetch_optional<T: RawRow>(&mut self, sql: Sql) -> Result<Option<T>> {
        let args = arguments(sql.args)?;
        Ok(sqlx::query_as_with::<_, T, _>(&sql.text, args)
            .fetch_optional(&mut *self.0)
            .await?)
    }

    async fn commit(self) -> Result<()> {
        self.0.commit().await?;
        Ok(())
    }
}
