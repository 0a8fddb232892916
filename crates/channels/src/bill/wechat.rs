//! The WeChat Pay trade bill (交易账单), the same text from v3
//! `GET /v3/bill/tradebill` and v2 `downloadbill` (PROTOCOLS-2 §1.1.1):
//! a header row, detail rows, a summary header (first field `总交易单数`)
//! and one summary row. Fields are separated by `,`, not quoted, and every
//! field of a detail or summary row starts with one backtick. The file may
//! start with a UTF-8 byte order mark and may end its lines with `\r\n`.
//!
//! Columns are found by name, and each has the names of both layouts that
//! are served (the current one and the legacy one without 免充值券: e.g.
//! `应结订单金额` or `总金额`), so a column added, removed or moved does not
//! break the reader; a column it needs and cannot find is an error before
//! any record is handed out.

use std::io::BufRead;

use cashdesk_core::Fen;
use cashdesk_core::time::parse_cn_datetime;

use super::{BillError, BillRecord, BillSummary, RecordKind};

/// The first field of the detail header.
const DETAIL_FIRST: &str = "交易时间";
/// The first field of the summary header.
const SUMMARY_FIRST: &str = "总交易单数";

/// A column of the detail rows, by its names in the layouts served.
type Column = &'static [&'static str];

const TIME: Column = &["交易时间"];
const MCH_ID: Column = &["商户号"];
const SUB_MCH_ID: Column = &["特约商户号", "子商户号"];
const TRANSACTION_ID: Column = &["微信订单号"];
const OUT_TRADE_NO: Column = &["商户订单号"];
const TRADE_STATE: Column = &["交易状态"];
const SETTLED_AMOUNT: Column = &["应结订单金额", "总金额"];
const CHANNEL_REFUND_ID: Column = &["微信退款单号"];
const OUT_REFUND_NO: Column = &["商户退款单号"];
const REFUND_AMOUNT: Column = &["退款金额"];
const REFUND_STATE: Column = &["退款状态"];
const FEE: Column = &["手续费"];
const RATE: Column = &["费率"];

/// Where each column is in this file's header.
struct Layout {
    width: usize,
    time: usize,
    mch_id: usize,
    sub_mch_id: Option<usize>,
    transaction_id: usize,
    out_trade_no: usize,
    trade_state: usize,
    settled_amount: usize,
    channel_refund_id: Option<usize>,
    out_refund_no: Option<usize>,
    refund_amount: Option<usize>,
    refund_state: Option<usize>,
    fee: Option<usize>,
    rate: Option<usize>,
}

impl Layout {
    fn of(header: &[&str], line: usize) -> Result<Self, BillError> {
        let find = |c: Column| header.iter().position(|h| c.contains(h));
        let need = |c: Column| {
            find(c).ok_or_else(|| {
                BillError::new(line, format!("the header has no column {}", c.join(" or ")))
            })
        };
        Ok(Self {
            width: header.len(),
            time: need(TIME)?,
            mch_id: need(MCH_ID)?,
            sub_mch_id: find(SUB_MCH_ID),
            transaction_id: need(TRANSACTION_ID)?,
            out_trade_no: need(OUT_TRADE_NO)?,
            trade_state: need(TRADE_STATE)?,
            settled_amount: need(SETTLED_AMOUNT)?,
            channel_refund_id: find(CHANNEL_REFUND_ID),
            out_refund_no: find(OUT_REFUND_NO),
            refund_amount: find(REFUND_AMOUNT),
            refund_state: find(REFUND_STATE),
            fee: find(FEE),
            rate: find(RATE),
        })
    }

    fn record(&self, fields: &[&str], line: usize) -> Result<BillRecord, BillError> {
        if fields.len() != self.width {
            return Err(BillError::new(
                line,
                format!(
                    "{} fields where the header has {}",
                    fields.len(),
                    self.width
                ),
            ));
        }
        let at_field = |i: Option<usize>| i.map(|i| fields[i]).filter(|s| !is_blank(s));
        let text = |i: usize, name: &str| {
            let s = fields[i];
            if s.is_empty() {
                Err(BillError::new(line, format!("{name} is empty")))
            } else {
                Ok(s.to_owned())
            }
        };
        let amount = |i: usize, name: &'static str| {
            Fen::from_yuan(name, fields[i])
                .map_err(|e| BillError::new(line, format!("{name}: {}", e.reason)))
        };
        let at = parse_cn_datetime(fields[self.time]).ok_or_else(|| {
            BillError::new(
                line,
                format!(
                    "交易时间 `{}` is not yyyy-MM-dd HH:mm:ss",
                    fields[self.time]
                ),
            )
        })?;
        let trade_state = text(self.trade_state, "交易状态")?;
        let refund = trade_state == "REFUND";
        let (kind, amount, state) = if refund {
            let i = self
                .refund_amount
                .ok_or_else(|| BillError::new(line, "a refund line, and no column 退款金额"))?;
            let state = at_field(self.refund_state).unwrap_or("SUCCESS").to_owned();
            (RecordKind::Refund, amount(i, "退款金额")?, state)
        } else {
            (
                RecordKind::Payment,
                amount(self.settled_amount, "应结订单金额")?,
                trade_state,
            )
        };
        let (out_refund_no, channel_refund_id) = if refund {
            let no = at_field(self.out_refund_no)
                .ok_or_else(|| BillError::new(line, "a refund line without 商户退款单号"))?;
            (
                Some(no.to_owned()),
                at_field(self.channel_refund_id).map(str::to_owned),
            )
        } else {
            (None, None)
        };
        Ok(BillRecord {
            kind,
            at,
            mch_id: text(self.mch_id, "商户号")?,
            sub_mch_id: at_field(self.sub_mch_id).map(str::to_owned),
            out_trade_no: text(self.out_trade_no, "商户订单号")?,
            transaction_id: text(self.transaction_id, "微信订单号")?,
            out_refund_no,
            channel_refund_id,
            amount,
            state,
            fee: self
                .fee
                .map(|i| fields[i])
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            rate: self
                .rate
                .map(|i| fields[i])
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        })
    }
}

/// `0` stands for "none" in the id columns (payment lines carry
/// `微信退款单号=0`; normal merchants `特约商户号=0`).
fn is_blank(s: &str) -> bool {
    s.is_empty() || s == "0"
}

/// A detail or summary row's fields, each without its leading backtick.
fn data_fields(row: &str) -> Vec<&str> {
    row.split(',')
        .map(|f| f.strip_prefix('`').unwrap_or(f).trim())
        .collect()
}

/// Reads a trade bill from `reader`, handing each detail record to
/// `on_record` as it is read, and returns the bill's own summary. An empty
/// text is an error (a day without trades has no bill at all: the channel
/// answers `NO_STATEMENT_EXIST` / `20002` instead).
pub fn read_trade_bill<R: BufRead>(
    reader: R,
    mut on_record: impl FnMut(BillRecord),
) -> Result<BillSummary, BillError> {
    let mut layout: Option<Layout> = None;
    let mut summary_header: Option<Vec<String>> = None;
    let mut summary: Option<BillSummary> = None;
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| BillError::new(n, format!("cannot be read: {e}")))?;
        let line = line.trim_end_matches('\r');
        let line = if n == 1 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        if line.trim().is_empty() {
            continue;
        }
        if summary.is_some() {
            return Err(BillError::new(n, "text after the summary row"));
        }
        match (&layout, &summary_header) {
            (None, _) => {
                let header: Vec<&str> = line.split(',').map(str::trim).collect();
                if header.first() != Some(&DETAIL_FIRST) {
                    return Err(BillError::new(
                        n,
                        format!("a trade bill starts with the header `{DETAIL_FIRST},…`"),
                    ));
                }
                layout = Some(Layout::of(&header, n)?);
            }
            (Some(_), Some(names)) => {
                summary = Some(read_summary(names, &data_fields(line), n)?);
            }
            (Some(l), None) => {
                if line.starts_with(SUMMARY_FIRST) {
                    summary_header = Some(line.split(',').map(|s| s.trim().to_owned()).collect());
                } else {
                    on_record(l.record(&data_fields(line), n)?);
                }
            }
        }
    }
    summary.ok_or_else(|| BillError::new(0, "the bill ends without its summary row"))
}

fn read_summary(names: &[String], fields: &[&str], line: usize) -> Result<BillSummary, BillError> {
    if fields.len() != names.len() {
        return Err(BillError::new(
            line,
            format!(
                "{} summary fields where its header has {}",
                fields.len(),
                names.len()
            ),
        ));
    }
    let get = |alternatives: &[&str]| {
        names
            .iter()
            .position(|n| alternatives.contains(&n.as_str()))
            .map(|i| fields[i])
            .ok_or_else(|| {
                BillError::new(
                    line,
                    format!("the summary has no {}", alternatives.join(" or ")),
                )
            })
    };
    // Totals, not payments: a day may pass the 100 million yuan one
    // payment may be.
    let amount = |alternatives: &[&str]| -> Result<Fen, BillError> {
        let s = get(alternatives)?;
        super::total_from_yuan(s).ok_or_else(|| {
            BillError::new(
                line,
                format!(
                    "{}: `{s}` is not a yuan amount with at most two decimals",
                    alternatives[0]
                ),
            )
        })
    };
    let count = get(&["总交易单数"])?;
    Ok(BillSummary {
        count: count
            .parse()
            .map_err(|_| BillError::new(line, format!("总交易单数 `{count}` is not a count")))?,
        paid_total: amount(&["应结订单总金额", "总交易额"])?,
        // A SUCCESS-only bill's summary has no refund column.
        refund_total: if names.iter().any(|n| n == "退款总金额" || n == "总退款金额") {
            amount(&["退款总金额", "总退款金额"])?
        } else {
            Fen::ZERO
        },
    })
}

#[cfg(test)]
mod tests;
