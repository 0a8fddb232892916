//! `cashdesk recon …`: reconciliation through the operator API
//! (docs/reconciliation.md): run a day or a range of days, list runs, list
//! and show findings, resolve one with a note, export findings as CSV,
//! the daily statement (JSON or CSV).

use std::path::Path;

use anyhow::{Context as _, bail};
use cashdesk_sdk::{FindingQuery, ReconRunQuery, ReconRunRequest, StatementQuery};
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::admin::{client, show};
use crate::cli::AdminOpts;

#[derive(Debug, Args)]
pub struct ReconCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: ReconAction,
}

#[derive(Debug, Subcommand)]
pub enum ReconAction {
    /// Reconcile a day (or every day from --date to --to) for one config
    /// or every enabled one. Reruns read the kept bill; --refetch
    /// downloads it again.
    Run {
        /// The bill day, YYYY-MM-DD (China Standard Time, a day that is over).
        #[arg(long, value_parser = parse_day)]
        date: NaiveDate,
        /// The last day of a range (inclusive, at most 93 days).
        #[arg(long, value_parser = parse_day)]
        to: Option<NaiveDate>,
        /// One channel config (default: every enabled one).
        #[arg(long)]
        config: Option<String>,
        #[arg(long)]
        refetch: bool,
    },
    /// List runs, newest day first.
    List {
        #[arg(long, value_parser = parse_day)]
        date: Option<NaiveDate>,
        #[arg(long)]
        config: Option<String>,
        /// RUNNING, NOT_READY, FAILED or DONE.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// List findings, newest first.
    Findings {
        #[command(flatten)]
        filter: FindingFilterArgs,
        #[arg(long)]
        limit: Option<u32>,
        /// Only findings older than this findingId (paging).
        #[arg(long)]
        before: Option<String>,
    },
    /// Show one finding with its evidence.
    Show { finding_id: String },
    /// Close an OPEN finding with a note (audited).
    Resolve {
        finding_id: String,
        #[arg(long)]
        note: String,
    },
    /// The daily statement per config, app and store: payments, gross,
    /// refunds, fees and net, in fen and in yuan.
    Statement {
        #[arg(long, value_parser = parse_day)]
        date: Option<NaiveDate>,
        #[arg(long)]
        config: Option<String>,
        #[arg(long)]
        app_id: Option<String>,
        #[arg(long)]
        store_id: Option<String>,
        /// CSV on standard output instead of JSON.
        #[arg(long)]
        csv: bool,
    },
    /// Every finding matching the filters as CSV on standard output.
    Export {
        /// CSV (the only format; the flag says what you get).
        #[arg(long, required = true)]
        csv: bool,
        #[command(flatten)]
        filter: FindingFilterArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct FindingFilterArgs {
    #[arg(long, value_parser = parse_day)]
    pub date: Option<NaiveDate>,
    #[arg(long)]
    pub config: Option<String>,
    /// CHANNEL_ONLY, LOCAL_ONLY, AMOUNT_MISMATCH, STATE_MISMATCH,
    /// REFUND_CHANNEL_ONLY, REFUND_LOCAL_ONLY, REFUND_AMOUNT_MISMATCH,
    /// REFUND_STATE_MISMATCH or SUMMARY_MISMATCH.
    #[arg(long)]
    pub kind: Option<String>,
    /// OPEN, REPAIRED or RESOLVED.
    #[arg(long)]
    pub status: Option<String>,
}

impl FindingFilterArgs {
    fn query(&self, limit: Option<u32>, before: Option<String>) -> FindingQuery {
        FindingQuery {
            date: self.date.map(|d| d.to_string()),
            config_id: self.config.clone(),
            kind: self.kind.as_ref().map(|k| k.to_ascii_uppercase()),
            status: self.status.as_ref().map(|s| s.to_ascii_uppercase()),
            limit,
            before,
        }
    }
}

fn parse_day(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("`{s}` is not YYYY-MM-DD"))
}

/// The longest range `recon run` takes (WeChat keeps bills for 3 months).
const MAX_RANGE_DAYS: i64 = 93;

pub async fn recon(
    config: Option<&Path>,
    opts: &AdminOpts,
    action: ReconAction,
) -> anyhow::Result<()> {
    let c = client(config, opts)?;
    match action {
        ReconAction::Run {
            date,
            to,
            config,
            refetch,
        } => {
            let last = to.unwrap_or(date);
            if last < date {
                bail!("--to {last} is before --date {date}");
            }
            if (last - date).num_days() >= MAX_RANGE_DAYS {
                bail!("at most {MAX_RANGE_DAYS} days at once");
            }
            let mut runs = Vec::new();
            let mut day = date;
            while day <= last {
                let r = c
                    .run_reconciliation(&ReconRunRequest {
                        date: day.to_string(),
                        config_id: config.clone(),
                        refetch: refetch.then_some(true),
                    })
                    .await
                    .with_context(|| format!("reconciling {day}"))?;
                runs.extend(r.as_array().cloned().unwrap_or_default());
                day = day.succ_opt().context("date out of range")?;
            }
            show(Ok(Value::Array(runs)))
        }
        ReconAction::List {
            date,
            config,
            state,
            limit,
        } => show(
            c.list_reconciliations(&ReconRunQuery {
                date: date.map(|d| d.to_string()),
                config_id: config,
                state: state.map(|s| s.to_ascii_uppercase()),
                limit,
            })
            .await,
        ),
        ReconAction::Findings {
            filter,
            limit,
            before,
        } => show(c.list_findings(&filter.query(limit, before)).await),
        ReconAction::Show { finding_id } => show(c.get_finding(&finding_id).await),
        ReconAction::Resolve { finding_id, note } => {
            show(c.resolve_finding(&finding_id, &note).await)
        }
        ReconAction::Statement {
            date,
            config,
            app_id,
            store_id,
            csv,
        } => {
            let rows = c
                .reconciliation_statement(&StatementQuery {
                    date: date.map(|d| d.to_string()),
                    config_id: config,
                    app_id,
                    store_id,
                    limit: None,
                })
                .await;
            if !csv {
                return show(rows);
            }
            let rows = rows?.as_array().cloned().unwrap_or_default();
            let mut out = csv_writer();
            write_csv_row(&mut out, STATEMENT_FIELDS.iter().map(|s| (*s).to_owned()))?;
            for r in &rows {
                write_csv_row(&mut out, STATEMENT_FIELDS.iter().map(|k| cell(r, k)))?;
            }
            Ok(())
        }
        ReconAction::Export { csv: _, filter } => {
            let mut out = csv_writer();
            write_csv_row(
                &mut out,
                FINDING_COLUMNS.iter().map(|(c, _)| (*c).to_owned()),
            )?;
            let mut before = None;
            loop {
                let page = c
                    .list_findings(&filter.query(Some(1000), before.clone()))
                    .await?;
                let rows = page.as_array().cloned().unwrap_or_default();
                for f in &rows {
                    write_csv_row(&mut out, FINDING_COLUMNS.iter().map(|(_, k)| cell(f, k)))?;
                }
                match rows.last().and_then(|f| f["findingId"].as_str()) {
                    Some(id) if rows.len() == 1000 => before = Some(id.to_owned()),
                    _ => break,
                }
            }
            Ok(())
        }
    }
}

const STATEMENT_FIELDS: &[&str] = &[
    "date",
    "configId",
    "channelType",
    "appId",
    "storeId",
    "payments",
    "grossFen",
    "gross",
    "refunds",
    "refundedFen",
    "refunded",
    "feesFen",
    "fees",
    "feesExact",
    "netFen",
    "net",
];

/// The findings CSV: (column, field of the finding).
const FINDING_COLUMNS: &[(&str, &str)] = &[
    ("findingId", "findingId"),
    ("date", "date"),
    ("configId", "configId"),
    ("kind", "kind"),
    ("status", "status"),
    ("orderId", "orderId"),
    ("refundId", "refundId"),
    ("channelAmountFen", "channelAmount"),
    ("localAmountFen", "localAmount"),
    ("detail", "detail"),
    ("note", "note"),
    ("resolvedBy", "resolvedBy"),
    ("resolvedAt", "resolvedAt"),
];

fn cell(f: &Value, key: &str) -> String {
    match &f[key] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_writer() -> std::io::BufWriter<std::io::Stdout> {
    std::io::BufWriter::new(std::io::stdout())
}

/// One RFC 4180 row: a cell with a comma, quote or line break is quoted,
/// its quotes doubled; a cell starting with `=`, `+`, `-` or `@` gets a
/// leading `'` so a spreadsheet does not run it as a formula.
fn write_csv_row(
    out: &mut impl std::io::Write,
    cells: impl Iterator<Item = String>,
) -> anyhow::Result<()> {
    let line: Vec<String> = cells.map(|c| csv_cell(&c)).collect();
    writeln!(out, "{}", line.join(","))?;
    out.flush()?;
    Ok(())
}

fn csv_cell(c: &str) -> String {
    let c = if c.starts_with(['=', '+', '-', '@']) && c.parse::<f64>().is_err() {
        format!("'{c}")
    } else {
        c.to_owned()
    };
    if c.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("-12"), "-12");
    }
}
