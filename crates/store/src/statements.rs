//! The daily statement: per (config, day, app, store), what the channel's
//! bill moved — payments, gross, refunds, fees — as the latest
//! reconciliation of that day read it (each run replaces its day's rows),
//! and the channel's fee and rate on each line, per order or refund.

use async_trait::async_trait;
use cashdesk_core::{ConfigId, Fen};
use chrono::NaiveDate;

use crate::common::{Backend, Sql, SqlStore, Tx, page_size};
use crate::recon::{day, parse_day, where_clause};
use crate::rows::id;
use crate::{Result, StoreError};

/// One statement row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRow {
    pub config_id: ConfigId,
    pub bill_date: NaiveDate,
    /// `""` for the bill's lines that are no cashdesk order.
    pub app_id: String,
    /// `""` for orders without a store.
    pub store_id: String,
    pub channel_type: String,
    pub payments: i64,
    pub gross: Fen,
    pub refunds: i64,
    pub refunded: Fen,
    /// 1/100000 yuan (WeChat states fees with 5 decimals).
    pub fees_e5: i64,
}

/// [`Statements::list_statement`]: every field narrows.
#[derive(Debug, Clone, Default)]
pub struct StatementFilter {
    pub bill_date: Option<NaiveDate>,
    pub config_id: Option<ConfigId>,
    pub app_id: Option<String>,
    pub store_id: Option<String>,
    pub limit: u32,
}

/// The channel's fee on one bill line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFee {
    /// cashdesk's order id (a payment line) or refund id (a refund line).
    pub subject_id: String,
    /// 1/100000 yuan, negative on a refund.
    pub fee_e5: i64,
    /// As the bill writes it (`0.60%`).
    pub rate: Option<String>,
}

/// A recorded [`LineFee`] with the day and config whose bill stated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFee {
    pub config_id: ConfigId,
    pub bill_date: NaiveDate,
    pub fee: LineFee,
}

#[async_trait]
pub trait Statements: Send + Sync {
    /// Records (or replaces) the fee of each line, a batch per statement.
    async fn record_fees(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
        fees: &[LineFee],
    ) -> Result<()>;
    /// The fee recorded for an order or refund id.
    async fn get_fee(&self, subject_id: &str) -> Result<Option<RecordedFee>>;
    /// Replaces the statement of (config, day) with `rows`, in one
    /// transaction.
    async fn replace_statement(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
        rows: &[StatementRow],
    ) -> Result<()>;
    /// Newest day first, then by config, app and store.
    async fn list_statement(&self, filter: &StatementFilter) -> Result<Vec<StatementRow>>;
}

const COLS: &str = "config_id, bill_date, app_id, store_id, channel_type, payments, gross, refunds, refunded, fees";

#[async_trait]
impl<B: Backend> Statements for SqlStore<B> {
    async fn replace_statement(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
        rows: &[StatementRow],
    ) -> Result<()> {
        let mut tx = self.backend.begin().await?;
        tx.execute(
            Sql::new("DELETE FROM recon_statements WHERE config_id = $1 AND bill_date = $2")
                .bind(config_id.as_str())
                .bind(day(bill_date)),
        )
        .await?;
        for r in rows {
            let sql = Sql::new(format!(
                "INSERT INTO recon_statements ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(config_id.as_str())
            .bind(day(bill_date))
            .bind(r.app_id.as_str())
            .bind(r.store_id.as_str())
            .bind(r.channel_type.as_str())
            .bind(r.payments)
            .bind(r.gross.get())
            .bind(r.refunds)
            .bind(r.refunded.get())
            .bind(r.fees_e5);
            tx.execute(sql).await?;
        }
        tx.commit().await
    }

    async fn record_fees(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
        fees: &[LineFee],
    ) -> Result<()> {
        // One transaction (one commit) for the batch. 50 rows a statement:
        // SQLite finds each `$n` by a linear scan of the statement's
        // parameters when sqlx binds it, so a statement's binding costs
        // the square of their number, and a row of a 200-row statement
        // (602 parameters) four times what it costs in a 50-row one.
        let mut tx = self.backend.begin().await?;
        for chunk in fees.chunks(50) {
            let mut sql = Sql::new("").bind(config_id.as_str()).bind(day(bill_date));
            let rows: Vec<String> = chunk
                .iter()
                .map(|f| {
                    format!(
                        "({}, $1, $2, {}, {})",
                        sql.push_arg(f.subject_id.as_str()),
                        sql.push_arg(f.fee_e5),
                        sql.push_arg(f.rate.as_deref())
                    )
                })
                .collect();
            sql.text = format!(
                "INSERT INTO recon_fees (subject_id, config_id, bill_date, fee, rate) VALUES {} \
                 ON CONFLICT (subject_id) DO UPDATE SET config_id = excluded.config_id, \
                 bill_date = excluded.bill_date, fee = excluded.fee, rate = excluded.rate",
                rows.join(", ")
            );
            tx.execute(sql).await?;
        }
        tx.commit().await
    }

    async fn get_fee(&self, subject_id: &str) -> Result<Option<RecordedFee>> {
        let sql = Sql::new(
            "SELECT subject_id, config_id, bill_date, fee, rate FROM recon_fees WHERE subject_id = $1",
        )
        .bind(subject_id);
        self.one::<RawFee, RecordedFee>(sql).await
    }

    async fn list_statement(&self, f: &StatementFilter) -> Result<Vec<StatementRow>> {
        let mut sql = Sql::new("");
        let mut cond = Vec::new();
        if let Some(d) = f.bill_date {
            cond.push(format!("bill_date = {}", sql.push_arg(day(d))));
        }
        if let Some(c) = &f.config_id {
            cond.push(format!("config_id = {}", sql.push_arg(c.as_str())));
        }
        if let Some(a) = &f.app_id {
            cond.push(format!("app_id = {}", sql.push_arg(a.as_str())));
        }
        if let Some(s) = &f.store_id {
            cond.push(format!("store_id = {}", sql.push_arg(s.as_str())));
        }
        let limit = sql.push_arg(i64::from(page_size(f.limit)));
        sql.text = format!(
            "SELECT {COLS} FROM recon_statements {} \
             ORDER BY bill_date DESC, config_id, app_id, store_id LIMIT {limit}",
            where_clause(&cond)
        );
        self.all::<RawRow, StatementRow>(sql).await
    }
}

#[derive(sqlx::FromRow)]
struct RawRow {
    config_id: String,
    bill_date: String,
    app_id: String,
    store_id: String,
    channel_type: String,
    payments: i64,
    gross: i64,
    refunds: i64,
    refunded: i64,
    fees: i64,
}

impl TryFrom<RawRow> for StatementRow {
    type Error = StoreError;

    fn try_from(r: RawRow) -> Result<Self> {
        Ok(StatementRow {
            config_id: id("recon_statements.config_id", r.config_id, ConfigId::parse)?,
            bill_date: parse_day("recon_statements.bill_date", r.bill_date)?,
            app_id: r.app_id,
            store_id: r.store_id,
            channel_type: r.channel_type,
            payments: r.payments,
            gross: Fen::from_stored(r.gross),
            refunds: r.refunds,
            refunded: Fen::from_stored(r.refunded),
            fees_e5: r.fees,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RawFee {
    subject_id: String,
    config_id: String,
    bill_date: String,
    fee: i64,
    rate: Option<String>,
}

impl TryFrom<RawFee> for RecordedFee {
    type Error = StoreError;

    fn try_from(r: RawFee) -> Result<Self> {
        Ok(RecordedFee {
            config_id: id("recon_fees.config_id", r.config_id, ConfigId::parse)?,
            bill_date: parse_day("recon_fees.bill_date", r.bill_date)?,
            fee: LineFee {
                subject_id: r.subject_id,
                fee_e5: r.fee,
                rate: r.rate,
            },
        })
    }
}
