//! Reconciliation: one run per (channel config, bill day), the findings of
//! its latest matching, and the reads of cashdesk's own book the matching
//! needs (a config's payments and refunds in a time window).
//!
//! A run is a row keyed by (config, day): starting it again replaces its
//! counters, never its key. Findings are keyed by (config, day, kind,
//! subject), so a rerun that sees the same difference updates the same
//! finding: [`Reconciliations::save_findings`] keeps an operator's
//! resolution (and a repair) and deletes only the `OPEN` findings the
//! rerun no longer sees.

use async_trait::async_trait;
use cashdesk_core::{
    AppId, ConfigId, Fen, FindingId, FindingKind, FindingStatus, OrderId, OrderState, ReconState,
    RefundId, RefundState, StoreId,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::insert_audit_in;
use crate::common::{Backend, Sql, SqlStore, Tx, page_size, state_literals, tx_one};
use crate::rows::{
    ORDER_COLS, RawOrder, Ts, app_id, corrupt, count, id, json, json_text, store_id,
};
use crate::{AuditEntry, Order, Result, StoreError};

/// The reconciliation of one (config, day).
#[derive(Debug, Clone, PartialEq)]
pub struct ReconRun {
    pub config_id: ConfigId,
    pub bill_date: NaiveDate,
    pub state: ReconState,
    /// How many times it has been started.
    pub attempts: u32,
    /// Why it is not `DONE` (or what it noticed when it is).
    pub message: Option<String>,
    /// The bill files kept for it.
    pub bills: Vec<StoredBill>,
    /// Bill lines read and lines matched.
    pub lines: i64,
    pub matched: i64,
    /// Money in and money back by the bill.
    pub paid_total: Fen,
    pub refund_total: Fen,
    /// The channel's fees by the bill, in 1/100000 yuan.
    pub fee_total_e5: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When a `NOT_READY` or `FAILED` run is tried again.
    pub next_try_at: Option<DateTime<Utc>>,
}

/// A bill file in the data folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredBill {
    /// Whose bill: `""` for the config's own account, else the
    /// sub-merchant (WeChat service-provider mode).
    pub scope: String,
    /// Relative to the data folder.
    pub path: String,
    pub format: String,
    pub compression: String,
    pub sha1: Option<String>,
    pub size: u64,
}

/// [`Reconciliations::list_recon_runs`]: every field narrows; newest day first.
#[derive(Debug, Clone, Default)]
pub struct ReconRunFilter {
    pub bill_date: Option<NaiveDate>,
    pub config_id: Option<ConfigId>,
    pub state: Option<ReconState>,
    pub limit: u32,
}

/// A difference as a run sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFinding {
    pub kind: FindingKind,
    /// What it is about, stable across reruns: `order:<id>`, `refund:<id>`,
    /// `trade:<channel's id>`, `summary`.
    pub subject: String,
    /// `OPEN`, or `REPAIRED` when the run repaired it.
    pub status: FindingStatus,
    pub order_id: Option<String>,
    pub refund_id: Option<String>,
    pub channel_amount: Option<Fen>,
    pub local_amount: Option<Fen>,
    /// What an operator reads first.
    pub detail: String,
    /// The bill line and the local record as seen.
    pub evidence: serde_json::Value,
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub finding_id: FindingId,
    pub config_id: ConfigId,
    pub bill_date: NaiveDate,
    pub kind: FindingKind,
    pub subject: String,
    pub status: FindingStatus,
    pub order_id: Option<String>,
    pub refund_id: Option<String>,
    pub channel_amount: Option<Fen>,
    pub local_amount: Option<Fen>,
    pub detail: String,
    pub evidence: serde_json::Value,
    pub note: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// [`Reconciliations::list_findings`]: every field narrows; newest first,
/// paged with `before` (a finding id).
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub bill_date: Option<NaiveDate>,
    pub config_id: Option<ConfigId>,
    pub kind: Option<FindingKind>,
    pub status: Option<FindingStatus>,
    pub before: Option<FindingId>,
    pub limit: u32,
}

/// A paid order as the matching needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconOrder {
    pub order_id: OrderId,
    pub app_id: AppId,
    pub store_id: Option<StoreId>,
    pub amount: Fen,
    pub state: OrderState,
    pub transaction_id: Option<String>,
    pub pay_time: DateTime<Utc>,
}

/// A successful refund as the matching needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconRefund {
    pub refund_id: RefundId,
    pub order_id: OrderId,
    pub app_id: AppId,
    pub store_id: Option<StoreId>,
    pub amount: Fen,
    pub state: RefundState,
    pub channel_refund_id: Option<String>,
    pub finished_at: DateTime<Utc>,
}

/// Reconciliation runs and findings.
#[async_trait]
pub trait Reconciliations: Send + Sync {
    /// Marks the run of (config, day) `RUNNING` (creating it), counts the
    /// attempt and returns it. Call under the run's lease.
    async fn start_recon_run(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<ReconRun>;
    /// Stores a run's outcome (every field but the key, `attempts` and
    /// `started_at`).
    async fn finish_recon_run(&self, run: &ReconRun) -> Result<()>;
    async fn get_recon_run(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
    ) -> Result<Option<ReconRun>>;
    async fn list_recon_runs(&self, filter: &ReconRunFilter) -> Result<Vec<ReconRun>>;
    /// Records what the run `run_token` saw for (config, day), in one
    /// transaction: each finding is inserted or, when its (kind, subject)
    /// is already there, updated unless an operator resolved it or it was
    /// repaired (those keep their status, note and evidence); then the
    /// `OPEN` findings of that (config, day) the run did not see are
    /// deleted.
    async fn save_findings(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
        run_token: &str,
        findings: &[NewFinding],
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Deletes the `OPEN` findings of `kind` for (config, day) about
    /// `subjects` (a neighbouring day's bill explained them).
    async fn clear_open_findings(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
        kind: FindingKind,
        subjects: &[String],
    ) -> Result<u64>;
    async fn list_findings(&self, filter: &FindingFilter) -> Result<Vec<Finding>>;
    async fn get_finding(&self, finding_id: &FindingId) -> Result<Option<Finding>>;
    /// `OPEN → RESOLVED` with the operator's note (compare-and-set), and
    /// `audit` in the same transaction; `None` if the finding is not open.
    async fn resolve_finding(
        &self,
        finding_id: &FindingId,
        note: &str,
        audit: &AuditEntry,
    ) -> Result<Option<Finding>>;
    /// The number of `OPEN` findings per kind (kinds without any left out).
    async fn open_findings_by_kind(&self) -> Result<Vec<(FindingKind, i64)>>;
    /// The paid orders of a config whose `pay_time` is in `[from, to)`,
    /// handed to `each` as they are read: a busy config's window is
    /// millions of orders, which the caller keeps compactly rather than
    /// as a `Vec` of these.
    async fn recon_orders(
        &self,
        config_id: &ConfigId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        each: &mut (dyn FnMut(ReconOrder) + Send),
    ) -> Result<()>;
    /// The successful refunds of a config's orders whose `finished_at` is
    /// in `[from, to)`, handed to `each` as they are read.
    async fn recon_refunds(
        &self,
        config_id: &ConfigId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        each: &mut (dyn FnMut(ReconRefund) + Send),
    ) -> Result<()>;
    /// The orders of a config created in `[from, to)` that went to its
    /// channel (the config is recorded) and are not paid: `CREATED`,
    /// `PAYING`, `CLOSED` or `FAILED`. Reconciliation by queries asks the
    /// channel about each (a payment whose notification was lost).
    async fn recon_unpaid_sent_orders(
        &self,
        config_id: &ConfigId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Order>>;
}

const RUN_COLS: &str = "config_id, bill_date, state, attempts, message, bills, lines, matched, \
     paid_total, refund_total, fee_total, started_at, finished_at, next_try_at";

const FINDING_COLS: &str = "finding_id, config_id, bill_date, kind, subject, status, order_id, \
     refund_id, channel_amount, local_amount, detail, evidence, note, resolved_by, resolved_at, \
     created_at, updated_at";

pub(crate) fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub(crate) fn parse_day(column: &str, s: String) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| corrupt(column, &s))
}

#[async_trait]
impl<B: Backend> Reconciliations for SqlStore<B> {
    async fn start_recon_run(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<ReconRun> {
        let sql = Sql::new(format!(
            "INSERT INTO recon_runs (config_id, bill_date, state, attempts, started_at) \
             VALUES ($1, $2, 'RUNNING', 1, $3) \
             ON CONFLICT (config_id, bill_date) DO UPDATE SET state = 'RUNNING', \
             attempts = recon_runs.attempts + 1, started_at = excluded.started_at, \
             finished_at = NULL, next_try_at = NULL \
             RETURNING {RUN_COLS}"
        ))
        .bind(config_id.as_str())
        .bind(day(bill_date))
        .bind(now);
        self.one::<RawRun, ReconRun>(sql)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("reconciliation of {config_id}")))
    }

    async fn finish_recon_run(&self, run: &ReconRun) -> Result<()> {
        let bills = serde_json::to_string(&run.bills)
            .map_err(|e| StoreError::Corrupt(format!("recon_runs.bills: {e}")))?;
        let sql = Sql::new(
            "UPDATE recon_runs SET state = $3, message = $4, bills = $5, lines = $6, \
             matched = $7, paid_total = $8, refund_total = $9, fee_total = $10, \
             finished_at = $11, next_try_at = $12 \
             WHERE config_id = $1 AND bill_date = $2",
        )
        .bind(run.config_id.as_str())
        .bind(day(run.bill_date))
        .bind(run.state.as_str())
        .bind(run.message.as_deref())
        .bind(bills)
        .bind(run.lines)
        .bind(run.matched)
        .bind(run.paid_total.get())
        .bind(run.refund_total.get())
        .bind(run.fee_total_e5)
        .bind(run.finished_at)
        .bind(run.next_try_at);
        match self.backend.execute(sql).await? {
            0 => Err(StoreError::NotFound(format!(
                "reconciliation of {} on {}",
                run.config_id, run.bill_date
            ))),
            _ => Ok(()),
        }
    }

    async fn get_recon_run(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
    ) -> Result<Option<ReconRun>> {
        let sql = Sql::new(format!(
            "SELECT {RUN_COLS} FROM recon_runs WHERE config_id = $1 AND bill_date = $2"
        ))
        .bind(config_id.as_str())
        .bind(day(bill_date));
        self.one::<RawRun, ReconRun>(sql).await
    }

    async fn list_recon_runs(&self, f: &ReconRunFilter) -> Result<Vec<ReconRun>> {
        let mut sql = Sql::new("");
        let mut cond = Vec::new();
        if let Some(d) = f.bill_date {
            cond.push(format!("bill_date = {}", sql.push_arg(day(d))));
        }
        if let Some(c) = &f.config_id {
            cond.push(format!("config_id = {}", sql.push_arg(c.as_str())));
        }
        if let Some(s) = f.state {
            cond.push(format!("state = {}", sql.push_arg(s.as_str())));
        }
        let limit = sql.push_arg(i64::from(page_size(f.limit)));
        sql.text = format!(
            "SELECT {RUN_COLS} FROM recon_runs {} ORDER BY bill_date DESC, config_id LIMIT {limit}",
            where_clause(&cond)
        );
        self.all::<RawRun, ReconRun>(sql).await
    }

    async fn save_findings(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
        run_token: &str,
        findings: &[NewFinding],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.backend.begin().await?;
        for f in findings {
            // An operator's resolution and a repair are kept as they are;
            // an OPEN finding takes what this run saw.
            let sql = Sql::new(format!(
                "INSERT INTO recon_findings ({FINDING_COLS}, seen_by) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, NULL, $13, $13, $14) \
                 ON CONFLICT (config_id, bill_date, kind, subject) DO UPDATE SET \
                 seen_by = excluded.seen_by, \
                 status = CASE WHEN recon_findings.status = 'OPEN' THEN excluded.status ELSE recon_findings.status END, \
                 detail = CASE WHEN recon_findings.status = 'OPEN' THEN excluded.detail ELSE recon_findings.detail END, \
                 evidence = CASE WHEN recon_findings.status = 'OPEN' THEN excluded.evidence ELSE recon_findings.evidence END, \
                 channel_amount = CASE WHEN recon_findings.status = 'OPEN' THEN excluded.channel_amount ELSE recon_findings.channel_amount END, \
                 local_amount = CASE WHEN recon_findings.status = 'OPEN' THEN excluded.local_amount ELSE recon_findings.local_amount END, \
                 updated_at = CASE WHEN recon_findings.status = 'OPEN' THEN excluded.updated_at ELSE recon_findings.updated_at END"
            ))
            .bind(FindingId::generate().as_str())
            .bind(config_id.as_str())
            .bind(day(bill_date))
            .bind(f.kind.as_str())
            .bind(f.subject.as_str())
            .bind(f.status.as_str())
            .bind(f.order_id.as_deref())
            .bind(f.refund_id.as_deref())
            .bind(f.channel_amount.map(Fen::get))
            .bind(f.local_amount.map(Fen::get))
            .bind(f.detail.as_str())
            .bind(json_text("recon_findings.evidence", &f.evidence)?)
            .bind(now)
            .bind(run_token);
            tx.execute(sql).await?;
        }
        let sql = Sql::new(
            "DELETE FROM recon_findings WHERE config_id = $1 AND bill_date = $2 \
             AND status = 'OPEN' AND seen_by <> $3",
        )
        .bind(config_id.as_str())
        .bind(day(bill_date))
        .bind(run_token);
        tx.execute(sql).await?;
        tx.commit().await
    }

    async fn clear_open_findings(
        &self,
        config_id: &ConfigId,
        bill_date: NaiveDate,
        kind: FindingKind,
        subjects: &[String],
    ) -> Result<u64> {
        let mut cleared = 0;
        for chunk in subjects.chunks(200) {
            let mut sql = Sql::new("")
                .bind(config_id.as_str())
                .bind(day(bill_date))
                .bind(kind.as_str());
            let list: Vec<String> = chunk.iter().map(|s| sql.push_arg(s.as_str())).collect();
            sql.text = format!(
                "DELETE FROM recon_findings WHERE config_id = $1 AND bill_date = $2 \
                 AND kind = $3 AND status = 'OPEN' AND subject IN ({})",
                list.join(", ")
            );
            cleared += self.backend.execute(sql).await?;
        }
        Ok(cleared)
    }

    async fn list_findings(&self, f: &FindingFilter) -> Result<Vec<Finding>> {
        let mut sql = Sql::new("");
        let mut cond = Vec::new();
        if let Some(d) = f.bill_date {
            cond.push(format!("bill_date = {}", sql.push_arg(day(d))));
        }
        if let Some(c) = &f.config_id {
            cond.push(format!("config_id = {}", sql.push_arg(c.as_str())));
        }
        if let Some(k) = f.kind {
            cond.push(format!("kind = {}", sql.push_arg(k.as_str())));
        }
        if let Some(s) = f.status {
            cond.push(format!("status = {}", sql.push_arg(s.as_str())));
        }
        if let Some(b) = &f.before {
            cond.push(format!("finding_id < {}", sql.push_arg(b.as_str())));
        }
        let limit = sql.push_arg(i64::from(page_size(f.limit)));
        sql.text = format!(
            "SELECT {FINDING_COLS} FROM recon_findings {} ORDER BY finding_id DESC LIMIT {limit}",
            where_clause(&cond)
        );
        self.all::<RawFinding, Finding>(sql).await
    }

    async fn get_finding(&self, finding_id: &FindingId) -> Result<Option<Finding>> {
        let sql = Sql::new(format!(
            "SELECT {FINDING_COLS} FROM recon_findings WHERE finding_id = $1"
        ))
        .bind(finding_id.as_str());
        self.one::<RawFinding, Finding>(sql).await
    }

    async fn resolve_finding(
        &self,
        finding_id: &FindingId,
        note: &str,
        audit: &AuditEntry,
    ) -> Result<Option<Finding>> {
        let mut tx = self.backend.begin().await?;
        let sql = Sql::new(format!(
            "UPDATE recon_findings SET status = 'RESOLVED', note = $2, resolved_by = $3, \
             resolved_at = $4, updated_at = $4 WHERE finding_id = $1 AND status = 'OPEN' \
             RETURNING {FINDING_COLS}"
        ))
        .bind(finding_id.as_str())
        .bind(note)
        .bind(audit.actor.as_str())
        .bind(audit.at);
        let resolved = tx_one::<_, RawFinding, Finding>(&mut tx, sql).await?;
        if resolved.is_some() {
            insert_audit_in(&mut tx, audit).await?;
            tx.commit().await?;
        }
        Ok(resolved)
    }

    async fn open_findings_by_kind(&self) -> Result<Vec<(FindingKind, i64)>> {
        let sql = Sql::new(
            "SELECT kind, COUNT(*) AS n FROM recon_findings WHERE status = 'OPEN' GROUP BY kind",
        );
        let rows = self.backend.fetch_all::<RawCount>(sql).await?;
        rows.into_iter()
            .map(|r| {
                FindingKind::parse(&r.kind)
                    .map(|k| (k, r.n))
                    .ok_or_else(|| corrupt("recon_findings.kind", &r.kind))
            })
            .collect()
    }

    async fn recon_orders(
        &self,
        config_id: &ConfigId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        each: &mut (dyn FnMut(ReconOrder) + Send),
    ) -> Result<()> {
        let paid = state_literals(
            OrderState::ALL
                .iter()
                .filter(|s| s.is_paid())
                .map(|s| s.as_str()),
        );
        let sql = Sql::new(format!(
            "SELECT order_id, app_id, store_id, amount, state, transaction_id, pay_time \
             FROM orders WHERE config_id = $1 AND pay_time >= $2 AND pay_time < $3 \
             AND pay_time IS NOT NULL AND state IN ({paid})"
        ))
        .bind(config_id.as_str())
        .bind(from)
        .bind(to);
        self.backend
            .fetch_each::<RawReconOrder>(sql, &mut |raw| {
                each(ReconOrder::try_from(raw)?);
                Ok(())
            })
            .await
    }

    async fn recon_refunds(
        &self,
        config_id: &ConfigId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        each: &mut (dyn FnMut(ReconRefund) + Send),
    ) -> Result<()> {
        let sql = Sql::new(
            "SELECT r.refund_id, r.order_id, r.app_id, o.store_id, r.amount, r.state, \
             r.channel_refund_id, r.finished_at \
             FROM refunds r JOIN orders o ON o.order_id = r.order_id \
             WHERE r.state = 'SUCCESS' AND r.finished_at IS NOT NULL \
             AND r.finished_at >= $2 AND r.finished_at < $3 AND o.config_id = $1",
        )
        .bind(config_id.as_str())
        .bind(from)
        .bind(to);
        self.backend
            .fetch_each::<RawReconRefund>(sql, &mut |raw| {
                each(ReconRefund::try_from(raw)?);
                Ok(())
            })
            .await
    }

    async fn recon_unpaid_sent_orders(
        &self,
        config_id: &ConfigId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Order>> {
        let unpaid = state_literals(
            [
                OrderState::Created,
                OrderState::Paying,
                OrderState::Closed,
                OrderState::Failed,
            ]
            .iter()
            .map(|s| s.as_str()),
        );
        // orders_config_created_at (config_id, created_at).
        let sql = Sql::new(format!(
            "SELECT {ORDER_COLS} FROM orders WHERE config_id = $1 \
             AND created_at >= $2 AND created_at < $3 AND state IN ({unpaid}) \
             ORDER BY created_at"
        ))
        .bind(config_id.as_str())
        .bind(from)
        .bind(to);
        self.all::<RawOrder, Order>(sql).await
    }
}

pub(crate) fn where_clause(cond: &[String]) -> String {
    if cond.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", cond.join(" AND "))
    }
}

#[derive(sqlx::FromRow)]
struct RawRun {
    config_id: String,
    bill_date: String,
    state: String,
    attempts: i32,
    message: Option<String>,
    bills: String,
    lines: i64,
    matched: i64,
    paid_total: i64,
    refund_total: i64,
    fee_total: i64,
    started_at: Ts,
    finished_at: Option<Ts>,
    next_try_at: Option<Ts>,
}

impl TryFrom<RawRun> for ReconRun {
    type Error = StoreError;

    fn try_from(r: RawRun) -> Result<Self> {
        Ok(ReconRun {
            config_id: id("recon_runs.config_id", r.config_id, ConfigId::parse)?,
            bill_date: parse_day("recon_runs.bill_date", r.bill_date)?,
            state: ReconState::parse(&r.state)
                .ok_or_else(|| corrupt("recon_runs.state", &r.state))?,
            attempts: count("recon_runs.attempts", r.attempts)?,
            message: r.message,
            bills: serde_json::from_str(&r.bills)
                .map_err(|e| StoreError::Corrupt(format!("recon_runs.bills: {e}")))?,
            lines: r.lines,
            matched: r.matched,
            paid_total: Fen::from_stored(r.paid_total),
            refund_total: Fen::from_stored(r.refund_total),
            fee_total_e5: r.fee_total,
            started_at: r.started_at.0,
            finished_at: r.finished_at.map(|t| t.0),
            next_try_at: r.next_try_at.map(|t| t.0),
        })
    }
}

#[derive(sqlx::FromRow)]
struct RawFinding {
    finding_id: String,
    config_id: String,
    bill_date: String,
    kind: String,
    subject: String,
    status: String,
    order_id: Option<String>,
    refund_id: Option<String>,
    channel_amount: Option<i64>,
    local_amount: Option<i64>,
    detail: String,
    evidence: String,
    note: Option<String>,
    resolved_by: Option<String>,
    resolved_at: Option<Ts>,
    created_at: Ts,
    updated_at: Ts,
}

impl TryFrom<RawFinding> for Finding {
    type Error = StoreError;

    fn try_from(r: RawFinding) -> Result<Self> {
        Ok(Finding {
            finding_id: id("recon_findings.finding_id", r.finding_id, FindingId::parse)?,
            config_id: id("recon_findings.config_id", r.config_id, ConfigId::parse)?,
            bill_date: parse_day("recon_findings.bill_date", r.bill_date)?,
            kind: FindingKind::parse(&r.kind)
                .ok_or_else(|| corrupt("recon_findings.kind", &r.kind))?,
            subject: r.subject,
            status: FindingStatus::parse(&r.status)
                .ok_or_else(|| corrupt("recon_findings.status", &r.status))?,
            order_id: r.order_id,
            refund_id: r.refund_id,
            channel_amount: r.channel_amount.map(Fen::from_stored),
            local_amount: r.local_amount.map(Fen::from_stored),
            detail: r.detail,
            evidence: json("recon_findings.evidence", &r.evidence)?,
            note: r.note,
            resolved_by: r.resolved_by,
            resolved_at: r.resolved_at.map(|t| t.0),
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RawCount {
    kind: String,
    n: i64,
}

#[derive(sqlx::FromRow)]
struct RawReconOrder {
    order_id: String,
    app_id: String,
    store_id: Option<String>,
    amount: i64,
    state: String,
    transaction_id: Option<String>,
    pay_time: Ts,
}

impl TryFrom<RawReconOrder> for ReconOrder {
    type Error = StoreError;

    fn try_from(r: RawReconOrder) -> Result<Self> {
        Ok(ReconOrder {
            order_id: id("orders.order_id", r.order_id, OrderId::parse)?,
            app_id: app_id("orders.app_id", r.app_id)?,
            store_id: store_id("orders.store_id", r.store_id)?,
            amount: Fen::from_stored(r.amount),
            state: OrderState::parse(&r.state).ok_or_else(|| corrupt("orders.state", &r.state))?,
            transaction_id: r.transaction_id,
            pay_time: r.pay_time.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RawReconRefund {
    refund_id: String,
    order_id: String,
    app_id: String,
    store_id: Option<String>,
    amount: i64,
    state: String,
    channel_refund_id: Option<String>,
    finished_at: Ts,
}

impl TryFrom<RawReconRefund> for ReconRefund {
    type Error = StoreError;

    fn try_from(r: RawReconRefund) -> Result<Self> {
        Ok(ReconRefund {
            refund_id: id("refunds.refund_id", r.refund_id, RefundId::parse)?,
            order_id: id("refunds.order_id", r.order_id, OrderId::parse)?,
            app_id: app_id("refunds.app_id", r.app_id)?,
            store_id: store_id("orders.store_id", r.store_id)?,
            amount: Fen::from_stored(r.amount),
            state: RefundState::parse(&r.state)
                .ok_or_else(|| corrupt("refunds.state", &r.state))?,
            channel_refund_id: r.channel_refund_id,
            finished_at: r.finished_at.0,
        })
    }
}
