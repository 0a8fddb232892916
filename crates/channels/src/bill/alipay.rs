//! The Alipay trade bill (`bill_type=trade`, PROTOCOLS-2 §1.3): a zip of
//! GBK CSV files, `<pid>0156_<yyyyMMdd>_业务明细.csv` (one line per
//! payment or refund) and `<pid>0156_<yyyyMMdd>_业务明细(汇总).csv` (totals
//! per store and a `合计` row).
//!
//! The reader works on the zip itself (it needs to seek to the members) and
//! streams the detail member: lines are cut at `\n` and decoded one by one
//! (the `text` module says why that is exact for GBK), so memory is one
//! line whatever the size of the day. Before the first record is handed out
//! the detail member is read once to the end, which makes the zip check its
//! CRC-32: a damaged or truncated file hands out nothing, as a WeChat bill
//! with a wrong SHA-1 hands out nothing.
//!
//! Members are found by name, never by position: the name ends with
//! `_业务明细.csv` (or `_业务明细(汇总).csv`), decoded from GBK since Alipay
//! does not set the zip's UTF-8 flag (a name that carries the flag is read
//! as UTF-8). Inside the detail member, `#` lines are comments (the
//! account, the dates, the list markers, the footer), the header is the
//! first other line and must start with `支付宝交易号`, and columns are
//! found by name (layouts with more columns exist, e.g. the bank-ISV one
//! with `手续费（元）,费率,实收净额（元）,交易方式`); full-width and ASCII
//! parentheses in names are the same. A row must have as many cells as the
//! header.
//!
//! What a record says, and why:
//! - `业务类型` `交易` is a [`RecordKind::Payment`], `退款` a
//!   [`RecordKind::Refund`] (`out_trade_no` stays the original order's
//!   `商户订单号`; `out_refund_no` is `退款批次号/请求号`, the refund's
//!   `out_request_no`). Alipay has no refund id of its own in the bill.
//!   The bill only lists completed business, so every state is `SUCCESS`.
//! - The amount is the one cashdesk's own book has: a payment's
//!   `订单金额（元）` (the order's `total_amount`; `商家实收` is what is left
//!   after merchant-funded discounts), a refund's `商家实收（元）` without
//!   its minus sign. Refund rows carry negative amounts in both columns;
//!   whether a refund's `订单金额` is its `refund_amount` is UNCONFIRMED,
//!   so the refund column is [`REFUND_AMOUNT`], one constant to change.
//! - `at` is `完成时间` (`创建时间` when it is empty), China time; a refund's
//!   `创建时间` is its order's, its `完成时间` the refund's.
//! - `fee` is `手续费（元）` when the layout has it (bank-ISV accounts, whose
//!   `服务费` is Alipay's part only), else `服务费（元）`; `rate` is `费率`.
//!   Both as the bill writes them.
//! - `mch_id` is the merchant's PID: the account of the `#账号：[…]` line
//!   (else the member name's first part) is the PID followed by `0156`,
//!   which is cut off (PROTOCOLS-2 §1.3: `userId` = PID + `0156`).
//!
//! The summary comes from the footer, `#交易合计：N笔，商家实收共X元，…` and
//! `#退款合计：M笔，商家实收退款共-Y元，…` (wording UNCONFIRMED, so it is
//! read loosely: the count before `笔`, the first amount between `共` and
//! `元`); without both footer lines, from the `合计` row of the 汇总 member;
//! without either, the bill is refused. The footer's totals are sums of
//! `商家实收`, the records' amounts are not (payments use `订单金额`), so
//! the summary is put in the records' terms: each total is the stated
//! `商家实收` total plus, over the rows of that kind, (record amount −
//! |商家实收|) — the discounts the rows state. Comparing the records with
//! the summary then checks exactly what the footer states (the rows'
//! `商家实收` add up to it, and the counts), and with no discounts (as for
//! cashdesk's own orders) the totals are the footer's figures unchanged.
//! The 汇总 `合计` row has only one `商家实收` (payments and refunds together,
//! read as net: UNCONFIRMED), so there the refund total is the refund
//! rows' own sum and the check covers the net and the counts.

mod text;

use std::borrow::Cow;
use std::io::{BufReader, Read, Seek};

use cashdesk_core::Fen;
use cashdesk_core::time::parse_cn_datetime;
use zip::ZipArchive;

use super::{BillError, BillRecord, BillSummary, RecordKind};
use text::{GbkLines, cells};

/// The end of the detail member's name.
pub const DETAIL_SUFFIX: &str = "_业务明细.csv";
/// The end of the summary member's name.
pub const SUMMARY_SUFFIX: &str = "_业务明细(汇总).csv";

/// The largest decompressed member read (a million lines are ~300 MB):
/// a bound on the work a hostile zip can cause.
const MAX_MEMBER_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// The first cell of the detail header.
const DETAIL_FIRST: &str = "支付宝交易号";
/// The first cell of the summary member's header and of its total row.
const SUMMARY_FIRST: &str = "门店编号";
const SUMMARY_TOTAL: &str = "合计";
/// The account comment (`#账号：[20887226827483540156]`).
const ACCOUNT_PREFIX: &str = "账号";
/// What follows the PID in the account (`0156`).
const ACCOUNT_SUFFIX: &str = "0156";

/// A column, by its names in the layouts served (first found wins).
type Column = &'static [&'static str];

const TRADE_NO: Column = &["支付宝交易号"];
const OUT_TRADE_NO: Column = &["商户订单号"];
const BIZ_TYPE: Column = &["业务类型"];
const CREATED: Column = &["创建时间"];
const FINISHED: Column = &["完成时间"];
const ORDER_AMOUNT: Column = &["订单金额（元）"];
const RECEIVED: Column = &["商家实收（元）"];
const REFUND_NO: Column = &["退款批次号/请求号"];
const FEE: Column = &["手续费（元）", "服务费（元）"];
const RATE: Column = &["费率"];

/// The column a payment record's amount comes from.
pub const PAYMENT_AMOUNT: Column = ORDER_AMOUNT;
/// The column a refund record's amount comes from (without its sign); see
/// the module comment for why it is not `订单金额（元）`.
pub const REFUND_AMOUNT: Column = RECEIVED;

/// `业务类型` values.
const PAYMENT: &str = "交易";
const REFUND: &str = "退款";

/// Reads an Alipay trade bill zip, handing each record of the detail member
/// to `on_record` as it is read, and returns the bill's own summary in the
/// records' terms (see the module comment).
pub fn read_trade_zip<R: Read + Seek>(
    src: R,
    mut on_record: impl FnMut(BillRecord),
) -> Result<BillSummary, BillError> {
    let mut zip = ZipArchive::new(src)
        .map_err(|e| BillError::new(0, format!("the file is not a readable zip: {e}")))?;
    let detail = find_member(&mut zip, DETAIL_SUFFIX)?
        .ok_or_else(|| BillError::new(0, format!("the zip has no member *{DETAIL_SUFFIX}")))?;
    check_member(&mut zip, &detail)?;
    let member = zip
        .by_index(detail.index)
        .map_err(|e| BillError::new(0, format!("{}: cannot be opened: {e}", detail.name)))?;
    let lines = GbkLines::new(BufReader::with_capacity(
        64 * 1024,
        member.take(MAX_MEMBER_BYTES),
    ));
    let read = read_detail(lines, account_of_member(&detail.name), &mut on_record)?;
    let stated = match read.footer {
        Footer {
            trades: Some(t),
            refunds: Some(r),
        } => Stated {
            count: t.count.checked_add(r.count),
            paid: Some(t.amount),
            refunded: Some(r.amount.abs()),
        },
        _ => {
            let summary = find_member(&mut zip, SUMMARY_SUFFIX)?.ok_or_else(|| {
                BillError::new(
                    0,
                    format!(
                        "the detail has no footer (#交易合计 and #退款合计) and the zip no \
                         member *{SUMMARY_SUFFIX}"
                    ),
                )
            })?;
            let total = read_summary_member(&mut zip, &summary)?;
            // The 合计 row's 商家实收 is payments and refunds together:
            // split it with the refund rows' own total.
            Stated {
                count: total.count,
                paid: total.net.checked_add(read.sums.refund_received),
                refunded: Some(read.sums.refund_received),
            }
        }
    };
    stated.in_record_terms(&read.sums)
}

/// A zip member by index and its name as text.
struct Member {
    index: usize,
    name: String,
}

/// The one member whose name ends with `suffix`; two are an error (which
/// one would be the bill?).
fn find_member<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    suffix: &str,
) -> Result<Option<Member>, BillError> {
    let mut found: Option<Member> = None;
    for index in 0..zip.len() {
        let file = zip
            .by_index_raw(index)
            .map_err(|e| BillError::new(0, format!("zip member {index} cannot be read: {e}")))?;
        // Without the UTF-8 flag `name()` is CP437, which has no CJK, so
        // it can only match when the flag is set; Alipay's names are GBK.
        let gbk = encoding_rs::GBK
            .decode_without_bom_handling(file.name_raw())
            .0;
        let name = if file.name().ends_with(suffix) {
            file.name().to_owned()
        } else if gbk.ends_with(suffix) {
            gbk.into_owned()
        } else {
            continue;
        };
        if let Some(first) = &found {
            return Err(BillError::new(
                0,
                format!(
                    "the zip has two members *{suffix}: {} and {name}",
                    first.name
                ),
            ));
        }
        found = Some(Member { index, name });
    }
    Ok(found)
}

/// Reads a member to its end, which makes the zip check its size and
/// CRC-32.
fn check_member<R: Read + Seek>(zip: &mut ZipArchive<R>, member: &Member) -> Result<(), BillError> {
    let file = zip
        .by_index(member.index)
        .map_err(|e| BillError::new(0, format!("{}: cannot be opened: {e}", member.name)))?;
    let read = std::io::copy(&mut file.take(MAX_MEMBER_BYTES + 1), &mut std::io::sink())
        .map_err(|e| BillError::new(0, format!("{} is damaged: {e}", member.name)))?;
    if read > MAX_MEMBER_BYTES {
        return Err(BillError::new(
            0,
            format!("{} is larger than {MAX_MEMBER_BYTES} bytes", member.name),
        ));
    }
    Ok(())
}

/// The account as the member name has it (`<pid>0156_<yyyyMMdd>_…`).
fn account_of_member(name: &str) -> Option<String> {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.split('_')
        .next()
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}

/// The merchant's PID from the bill's account (PID + `0156`).
fn pid(account: &str) -> String {
    account
        .strip_suffix(ACCOUNT_SUFFIX)
        .filter(|p| !p.is_empty())
        .unwrap_or(account)
        .to_owned()
}

/// Header and cell names compare with full-width and ASCII parentheses
/// alike.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |c: char| match c {
        '（' => '(',
        '）' => ')',
        c => c,
    };
    a.chars().map(norm).eq(b.chars().map(norm))
}

fn find(header: &[Cow<'_, str>], column: Column) -> Option<usize> {
    column
        .iter()
        .find_map(|name| header.iter().position(|h| same_name(h, name)))
}

fn need(header: &[Cow<'_, str>], column: Column, line: usize) -> Result<usize, BillError> {
    find(header, column).ok_or_else(|| {
        BillError::new(
            line,
            format!("the header has no column {}", column.join(" or ")),
        )
    })
}

/// A yuan amount that may be negative, in fen.
fn signed_fen(name: &'static str, s: &str, line: usize) -> Result<i64, BillError> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let fen = Fen::from_yuan(name, digits)
        .map_err(|e| BillError::new(line, format!("{name}: {}", e.reason)))?
        .get();
    Ok(if negative { -fen } else { fen })
}

/// Where each column is in this file's header.
struct Layout {
    width: usize,
    trade_no: usize,
    out_trade_no: usize,
    biz_type: usize,
    created: usize,
    finished: usize,
    payment_amount: usize,
    refund_amount: usize,
    received: usize,
    refund_no: usize,
    fee: Option<usize>,
    rate: Option<usize>,
}

/// What one row adds to the totals: its kind, its record amount and its
/// `商家实收` without the sign.
struct Row {
    record: BillRecord,
    received: i64,
}

impl Layout {
    fn of(header: &[Cow<'_, str>], line: usize) -> Result<Self, BillError> {
        Ok(Self {
            width: header.len(),
            trade_no: need(header, TRADE_NO, line)?,
            out_trade_no: need(header, OUT_TRADE_NO, line)?,
            biz_type: need(header, BIZ_TYPE, line)?,
            created: need(header, CREATED, line)?,
            finished: need(header, FINISHED, line)?,
            payment_amount: need(header, PAYMENT_AMOUNT, line)?,
            refund_amount: need(header, REFUND_AMOUNT, line)?,
            received: need(header, RECEIVED, line)?,
            refund_no: need(header, REFUND_NO, line)?,
            fee: find(header, FEE),
            rate: find(header, RATE),
        })
    }

    fn row(&self, cells: &[Cow<'_, str>], mch_id: &str, line: usize) -> Result<Row, BillError> {
        if cells.len() != self.width {
            return Err(BillError::new(
                line,
                format!("{} cells where the header has {}", cells.len(), self.width),
            ));
        }
        let cell = |i: usize| cells[i].as_ref();
        let text = |i: usize, name: &str| {
            let s = cell(i);
            if s.is_empty() {
                Err(BillError::new(line, format!("{name} is empty")))
            } else {
                Ok(s.to_owned())
            }
        };
        let optional = |i: Option<usize>| i.map(cell).filter(|s| !s.is_empty()).map(str::to_owned);
        let (time_name, time) = if cell(self.finished).is_empty() {
            ("创建时间", cell(self.created))
        } else {
            ("完成时间", cell(self.finished))
        };
        let at = parse_cn_datetime(time).ok_or_else(|| {
            BillError::new(
                line,
                format!("{time_name} `{time}` is not yyyy-MM-dd HH:mm:ss"),
            )
        })?;
        let received = signed_fen("商家实收（元）", cell(self.received), line)?.abs();
        let (kind, amount, out_refund_no) = match cell(self.biz_type) {
            PAYMENT => {
                let amount = signed_fen("订单金额（元）", cell(self.payment_amount), line)?;
                if amount < 0 {
                    return Err(BillError::new(line, "a payment with a negative amount"));
                }
                (RecordKind::Payment, amount, None)
            }
            REFUND => {
                let amount = signed_fen("商家实收（元）", cell(self.refund_amount), line)?.abs();
                let no = text(self.refund_no, "退款批次号/请求号")?;
                (RecordKind::Refund, amount, Some(no))
            }
            other => {
                return Err(BillError::new(
                    line,
                    format!("业务类型 `{other}` is neither {PAYMENT} nor {REFUND}"),
                ));
            }
        };
        Ok(Row {
            record: BillRecord {
                kind,
                at,
                mch_id: mch_id.to_owned(),
                sub_mch_id: None,
                out_trade_no: text(self.out_trade_no, "商户订单号")?,
                transaction_id: text(self.trade_no, "支付宝交易号")?,
                out_refund_no,
                channel_refund_id: None,
                amount: Fen::from_stored(amount),
                state: "SUCCESS".to_owned(),
                fee: optional(self.fee),
                rate: optional(self.rate),
            },
            received,
        })
    }
}

/// One footer line: its count and its (first) amount, signed, in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FooterLine {
    count: u64,
    amount: i64,
}

#[derive(Debug, Default)]
struct Footer {
    trades: Option<FooterLine>,
    refunds: Option<FooterLine>,
}

/// Sums over the rows, for the summary (fen; `i64` so that the
/// differences can be negative while they are added up).
#[derive(Debug, Default)]
struct Sums {
    /// Σ (record amount − |商家实收|) for payments and for refunds.
    payment_adjust: i64,
    refund_adjust: i64,
    /// Σ |商家实收| of the refund rows.
    refund_received: i64,
}

struct Detail {
    footer: Footer,
    sums: Sums,
}

/// The totals the file states, in `商家实收` terms.
struct Stated {
    count: Option<u64>,
    paid: Option<i64>,
    refunded: Option<i64>,
}

impl Stated {
    fn in_record_terms(&self, sums: &Sums) -> Result<BillSummary, BillError> {
        let total = |stated: Option<i64>, adjust: i64, what: &str| {
            stated
                .and_then(|s| s.checked_add(adjust))
                .filter(|t| *t >= 0)
                .map(Fen::from_stored)
                .ok_or_else(|| {
                    BillError::new(0, format!("the bill's {what} total is out of range"))
                })
        };
        Ok(BillSummary {
            count: self
                .count
                .ok_or_else(|| BillError::new(0, "the bill's count is out of range"))?,
            paid_total: total(self.paid, sums.payment_adjust, "payment")?,
            refund_total: total(self.refunded, sums.refund_adjust, "refund")?,
        })
    }
}

/// Reads the detail member's lines (see the module comment).
fn read_detail<R: std::io::BufRead>(
    lines: GbkLines<R>,
    member_account: Option<String>,
    on_record: &mut impl FnMut(BillRecord),
) -> Result<Detail, BillError> {
    let mut account: Option<String> = None;
    let mut layout: Option<(Layout, String)> = None;
    let mut list_ended = false;
    let mut footer = Footer::default();
    let mut sums = Sums::default();
    let overflow = |n: usize| BillError::new(n, "the amounts add up beyond range");
    for line in lines {
        let (n, line) = line?;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start_matches('#').trim();
            if layout.is_some() && comment.contains("业务明细列表") {
                list_ended = true;
            } else if let Some(a) = comment_value(comment, ACCOUNT_PREFIX) {
                account = Some(a);
            } else if comment.starts_with("交易合计") {
                footer.trades = footer_line(comment);
            } else if comment.starts_with("退款合计") {
                footer.refunds = footer_line(comment);
            }
            continue;
        }
        let row_cells = cells(&line, n)?;
        match &layout {
            None => {
                if row_cells.first().map(AsRef::as_ref) != Some(DETAIL_FIRST) {
                    return Err(BillError::new(
                        n,
                        format!("the detail starts with the header `{DETAIL_FIRST},…`"),
                    ));
                }
                let mch_id = account
                    .as_deref()
                    .or(member_account.as_deref())
                    .ok_or_else(|| {
                        BillError::new(
                            n,
                            "no #账号 line before the header and no account in the name",
                        )
                    })?;
                layout = Some((Layout::of(&row_cells, n)?, pid(mch_id)));
            }
            Some(_) if list_ended => {
                return Err(BillError::new(n, "a row after the end of the list"));
            }
            Some((l, mch_id)) => {
                let row = l.row(&row_cells, mch_id, n)?;
                let adjust = row.record.amount.get() - row.received;
                let slot = match row.record.kind {
                    RecordKind::Payment => &mut sums.payment_adjust,
                    RecordKind::Refund => {
                        sums.refund_received = sums
                            .refund_received
                            .checked_add(row.received)
                            .ok_or_else(|| overflow(n))?;
                        &mut sums.refund_adjust
                    }
                };
                *slot = slot.checked_add(adjust).ok_or_else(|| overflow(n))?;
                on_record(row.record);
            }
        }
    }
    if layout.is_none() {
        return Err(BillError::new(
            0,
            format!("the detail has no header `{DETAIL_FIRST},…`"),
        ));
    }
    Ok(Detail { footer, sums })
}

/// The value of a `#名称：[value]` comment (full-width or ASCII colon,
/// brackets optional).
fn comment_value(comment: &str, name: &str) -> Option<String> {
    let rest = comment.strip_prefix(name)?;
    let rest = rest
        .strip_prefix('：')
        .or_else(|| rest.strip_prefix(':'))?
        .trim();
    let rest = rest.strip_prefix('[').unwrap_or(rest);
    let value = rest.split(']').next().unwrap_or(rest).trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// `交易合计：N笔，商家实收共X元，商家优惠共0.00元` → `(N, X)`, read loosely:
/// the digits before the first `笔`, the first amount between `共` and
/// `元` after it.
fn footer_line(comment: &str) -> Option<FooterLine> {
    let (before, after) = comment.split_once('笔')?;
    let digits: String = before
        .chars()
        .rev()
        .skip_while(|c| c.is_whitespace())
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let count = digits.parse().ok()?;
    let (_, amount) = after.split_once('共')?;
    let (amount, _) = amount.split_once('元')?;
    let amount = signed_fen("footer", amount.trim(), 0).ok()?;
    Some(FooterLine { count, amount })
}

/// The `合计` row of the 汇总 member.
struct SummaryTotal {
    count: Option<u64>,
    /// `商家实收（元）`: payments and refunds together.
    net: i64,
}

fn read_summary_member<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    member: &Member,
) -> Result<SummaryTotal, BillError> {
    let file = zip
        .by_index(member.index)
        .map_err(|e| BillError::new(0, format!("{}: cannot be opened: {e}", member.name)))?;
    let in_member =
        |e: BillError| BillError::new(e.line, format!("{}: {}", member.name, e.message));
    let mut names: Option<Vec<String>> = None;
    for line in GbkLines::new(BufReader::new(file.take(MAX_MEMBER_BYTES))) {
        let (n, line) = line.map_err(in_member)?;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let row = cells(&line, n).map_err(in_member)?;
        let Some(names) = &names else {
            if row.first().map(AsRef::as_ref) == Some(SUMMARY_FIRST) {
                names = Some(row.iter().map(|c| c.clone().into_owned()).collect());
            }
            continue;
        };
        if row.first().map(AsRef::as_ref) != Some(SUMMARY_TOTAL) {
            continue;
        }
        if row.len() != names.len() {
            return Err(in_member(BillError::new(
                n,
                format!("{} cells where the header has {}", row.len(), names.len()),
            )));
        }
        let get = |name: &str| {
            names
                .iter()
                .position(|h| same_name(h, name))
                .map(|i| row[i].as_ref())
                .ok_or_else(|| in_member(BillError::new(n, format!("no column {name}"))))
        };
        let count = |name: &str| -> Result<u64, BillError> {
            let s = get(name)?;
            s.parse()
                .map_err(|_| in_member(BillError::new(n, format!("{name} `{s}` is not a count"))))
        };
        let trades = count("交易订单总笔数")?;
        let refunds = count("退款订单总笔数")?;
        let net = signed_fen("商家实收（元）", get("商家实收（元）")?, n).map_err(in_member)?;
        return Ok(SummaryTotal {
            count: trades.checked_add(refunds),
            net,
        });
    }
    Err(BillError::new(
        0,
        format!(
            "the detail has no footer (#交易合计 and #退款合计) and {} no {SUMMARY_TOTAL} row",
            member.name
        ),
    ))
}

#[cfg(test)]
mod tests;
