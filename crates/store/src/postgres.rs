//! The PostgreSQL backend: one database shared by any number of cashdesk
//! instances.
//!
//! Correctness across instances rests on the statements of the aggregates
//! (`orders.rs`, `outbox.rs`, …: single-statement upserts and
//! compare-and-set updates, which PostgreSQL serialises per row under READ
//! COMMITTED), not on anything held in
//! process. Transactions are ordinary READ COMMITTED ones: a decision that
//! reads before it writes (the refundable amount) first locks the order
//! row `FOR UPDATE`, so every later statement of the transaction reads
//! what the previous holder committed. Claims use `FOR UPDATE SKIP
//! LOCKED`, so workers on any number of instances take disjoint rows
//! without waiting for each other. Migrations take sqlx's advisory lock,
//! so instances starting together apply them once.

use std::str::FromStr;

use async_trait::async_trait;
use futures::TryStreamExt as _;
use sqlx::Arguments;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};

use crate::common::{Arg, Backend, RawRow, Sql, Tx};
use crate::{ConnectOptions, Result, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub(crate) struct Postgres {
    pool: PgPool,
}

impl Postgres {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let connect = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await?;
        Ok(Self { pool })
    }
}

fn arguments(args: Vec<Arg>) -> Result<PgArguments> {
    let mut out = PgArguments::default();
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
impl Backend for Postgres {
    type Tx = PostgresTx;

    fn name(&self) -> &'static str {
        "postgres"
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

    async fn fetch_each<T: RawRow>(
        &self,
        sql: Sql,
        each: &mut (dyn FnMut(T) -> Result<()> + Send),
    ) -> Result<()> {
        let args = arguments(sql.args)?;
        let mut rows = sqlx::query_as_with::<_, T, _>(&sql.text, args).fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            each(row)?;
        }
        Ok(())
    }

    async fn begin(&self) -> Result<PostgresTx> {
        Ok(PostgresTx(self.pool.begin().await?))
    }

    fn for_update(&self) -> &'static str {
        " FOR UPDATE"
    }

    fn skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }

    fn cn_day(&self, col: &str) -> String {
        format!("CAST(FLOOR((EXTRACT(EPOCH FROM {col}) + 28800) / 86400) AS BIGINT)")
    }
}

pub(crate) struct PostgresTx(sqlx::Transaction<'static, sqlx::Postgres>);

#[async_trait]
impl Tx for PostgresTx {
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
