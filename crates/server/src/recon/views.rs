//! What the operator API and the CLI show of reconciliation, and the
//! operator's use cases: run (one config or all), list runs, list and
//! resolve findings.

use cashdesk_core::{ConfigId, FindingId, FindingStatus};
use cashdesk_store::{Finding, FindingFilter, ReconRun, ReconRunFilter};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;

use super::{RunOptions, run_day};
use crate::access::Principal;
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconRunView {
    pub config_id: String,
    pub date: String,
    pub state: String,
    pub attempts: u32,
    pub message: Option<String>,
    pub bills: Vec<cashdesk_store::StoredBill>,
    pub lines: i64,
    pub matched: i64,
    /// Fen.
    pub paid_total: i64,
    pub refund_total: i64,
    /// Yuan with 5 decimals, as the bill states fees.
    pub fee_total: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub next_try_at: Option<DateTime<Utc>>,
}

impl From<&ReconRun> for ReconRunView {
    fn from(r: &ReconRun) -> Self {
        Self {
            config_id: r.config_id.to_string(),
            date: r.bill_date.to_string(),
            state: r.state.as_str().to_owned(),
            attempts: r.attempts,
            message: r.message.clone(),
            bills: r.bills.clone(),
            lines: r.lines,
            matched: r.matched,
            paid_total: r.paid_total.get(),
            refund_total: r.refund_total.get(),
            fee_total: fee_yuan(r.fee_total_e5),
            started_at: r.started_at,
            finished_at: r.finished_at,
            next_try_at: r.next_try_at,
        }
    }
}

/// 1/100000 yuan as `-0.00600`.
pub fn fee_yuan(e5: i64) -> String {
    let sign = if e5 < 0 { "-" } else { "" };
    let a = e5.unsigned_abs();
    format!("{sign}{}.{:05}", a / 100_000, a % 100_000)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingView {
    pub finding_id: String,
    pub config_id: String,
    pub date: String,
    pub kind: String,
    pub subject: String,
    pub status: String,
    pub order_id: Option<String>,
    pub refund_id: Option<String>,
    /// Fen.
    pub channel_amount: Option<i64>,
    pub local_amount: Option<i64>,
    pub detail: String,
    pub evidence: serde_json::Value,
    pub note: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Finding> for FindingView {
    fn from(f: &Finding) -> Self {
        Self {
            finding_id: f.finding_id.to_string(),
            config_id: f.config_id.to_string(),
            date: f.bill_date.to_string(),
            kind: f.kind.as_str().to_owned(),
            subject: f.subject.clone(),
            status: f.status.as_str().to_owned(),
            order_id: f.order_id.clone(),
            refund_id: f.refund_id.clone(),
            channel_amount: f.channel_amount.map(|a| a.get()),
            local_amount: f.local_amount.map(|a| a.get()),
            detail: f.detail.clone(),
            evidence: f.evidence.clone(),
            note: f.note.clone(),
            resolved_by: f.resolved_by.clone(),
            resolved_at: f.resolved_at,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// Runs (config, day) for one config, or for every enabled config.
pub async fn run(
    state: &AppState,
    day: NaiveDate,
    config_id: Option<&ConfigId>,
    options: RunOptions,
) -> ServiceResult<Vec<ReconRunView>> {
    let configs: Vec<ConfigId> = match config_id {
        Some(c) => vec![c.clone()],
        None => state
            .store
            .list_channel_configs()
            .await?
            .into_iter()
            .filter(|c| c.enabled)
            .map(|c| c.config_id)
            .collect(),
    };
    let mut out = Vec::with_capacity(configs.len());
    for c in configs {
        out.push(ReconRunView::from(&run_day(state, &c, day, options).await?));
    }
    Ok(out)
}

pub async fn list_runs(state: &AppState, f: &ReconRunFilter) -> ServiceResult<Vec<ReconRunView>> {
    Ok(state
        .store
        .list_recon_runs(f)
        .await?
        .iter()
        .map(ReconRunView::from)
        .collect())
}

pub async fn list_findings(state: &AppState, f: &FindingFilter) -> ServiceResult<Vec<FindingView>> {
    Ok(state
        .store
        .list_findings(f)
        .await?
        .iter()
        .map(FindingView::from)
        .collect())
}

fn finding_id(id: &str) -> ServiceResult<FindingId> {
    FindingId::parse(id).ok_or_else(|| ServiceError::not_found(format!("finding {id}")))
}

pub async fn get_finding(state: &AppState, id: &str) -> ServiceResult<FindingView> {
    let f = state
        .store
        .get_finding(&finding_id(id)?)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("finding {id}")))?;
    Ok(FindingView::from(&f))
}

/// `OPEN → RESOLVED` with the operator's note, audited with the change.
pub async fn resolve(
    state: &AppState,
    id: &str,
    note: &str,
    by: &Principal,
) -> ServiceResult<FindingView> {
    let fid = finding_id(id)?;
    let audit = by
        .audit("recon.finding.resolve", fid.as_str(), json!({"note": note}))
        .with_change(json!({"status": "OPEN"}), json!({"status": "RESOLVED"}));
    if let Some(f) = state.store.resolve_finding(&fid, note, &audit).await? {
        return Ok(FindingView::from(&f));
    }
    match state.store.get_finding(&fid).await? {
        None => Err(ServiceError::not_found(format!("finding {id}"))),
        Some(f) => Err(ServiceError::state_not_allowed(format!(
            "finding {id} is {}, only an OPEN finding can be resolved",
            f.status
        ))),
    }
}

/// Whether `status` may be asked for in a filter (every status may).
pub fn parse_status(s: &str) -> Option<FindingStatus> {
    FindingStatus::parse(&s.to_ascii_uppercase())
}

/// One row of the daily statement, in fen and in yuan (2 decimals). Fees
/// are rounded to the fen half away from zero (the exact figure, 5
/// decimals as WeChat states it, is `feesExact`); `net` = gross − refunded
/// − fees.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementView {
    pub date: String,
    pub config_id: String,
    pub channel_type: String,
    /// `""`: lines of the bill that are no cashdesk order.
    pub app_id: String,
    pub store_id: String,
    pub payments: i64,
    pub gross_fen: i64,
    pub gross: String,
    pub refunds: i64,
    pub refunded_fen: i64,
    pub refunded: String,
    pub fees_fen: i64,
    pub fees: String,
    pub fees_exact: String,
    pub net_fen: i64,
    pub net: String,
}

/// 1/100000 yuan to fen, half away from zero.
pub fn e5_to_fen(e5: i64) -> i64 {
    let (q, r) = (e5 / 1000, e5 % 1000);
    if r.abs() >= 500 { q + r.signum() } else { q }
}

/// Fen as yuan with 2 decimals (`-0.05`).
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

impl From<&cashdesk_store::StatementRow> for StatementView {
    fn from(r: &cashdesk_store::StatementRow) -> Self {
        let fees = e5_to_fen(r.fees_e5);
        let net = r.gross.get() - r.refunded.get() - fees;
        Self {
            date: r.bill_date.to_string(),
            config_id: r.config_id.to_string(),
            channel_type: r.channel_type.clone(),
            app_id: r.app_id.clone(),
            store_id: r.store_id.clone(),
            payments: r.payments,
            gross_fen: r.gross.get(),
            gross: yuan(r.gross.get()),
            refunds: r.refunds,
            refunded_fen: r.refunded.get(),
            refunded: yuan(r.refunded.get()),
            fees_fen: fees,
            fees: yuan(fees),
            fees_exact: fee_yuan(r.fees_e5),
            net_fen: net,
            net: yuan(net),
        }
    }
}

pub async fn statement(
    state: &AppState,
    f: &cashdesk_store::StatementFilter,
) -> ServiceResult<Vec<StatementView>> {
    Ok(state
        .store
        .list_statement(f)
        .await?
        .iter()
        .map(StatementView::from)
        .collect())
}

/// The statement as CSV (RFC 4180; ids and decimal figures only, so no
/// cell needs quoting).
pub fn statement_csv(rows: &[StatementView]) -> String {
    let mut out = String::from(
        "date,configId,channelType,appId,storeId,payments,grossFen,gross,refunds,refundedFen,refunded,feesFen,fees,feesExact,netFen,net\r\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
            r.date,
            r.config_id,
            r.channel_type,
            r.app_id,
            r.store_id,
            r.payments,
            r.gross_fen,
            r.gross,
            r.refunds,
            r.refunded_fen,
            r.refunded,
            r.fees_fen,
            r.fees,
            r.fees_exact,
            r.net_fen,
            r.net
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_in_fen_and_yuan() {
        assert_eq!(e5_to_fen(600), 1);
        assert_eq!(e5_to_fen(499), 0);
        assert_eq!(e5_to_fen(-600), -1);
        assert_eq!(e5_to_fen(-1_000), -1);
        assert_eq!(yuan(12_345), "123.45");
        assert_eq!(yuan(-5), "-0.05");
        assert_eq!(fee_yuan(-600), "-0.00600");
    }
}
