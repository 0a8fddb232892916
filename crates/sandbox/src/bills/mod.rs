//! Bills (对账单) from the order book, the part every channel shares:
//! which lines fall on a day for a merchant, with the bill faults
//! ([`crate::faults`]) applied, the fee the sandbox charges, and the
//! short-lived download links ([`Downloads`]). Each channel renders the
//! result in its own format next to its protocol: WeChat's trade-bill text
//! (v3 `tradebill` and v2 `downloadbill`) in `v3::billtext`, Alipay's zip of
//! GBK CSV files in `alipay::bill`.
//!
//! # What falls on a day
//!
//! A day is a China day (UTC+8, the channels' time zone), midnight to
//! midnight. A payment is on the day its order was paid (the order's
//! `paid_at`), a refund on the day it was accepted (its `created_at`, as
//! WeChat dates a refund line at its acceptance), with the state it has
//! when the bill is made (WeChat's 退款状态 `PROCESSING` or `SUCCESS`). An
//! order paid and refunded on one day gives two lines. Lines are in time
//! order.
//!
//! Bills exist only for days that are over (before today, China time, by
//! the sandbox's [`crate::clock`]) and for the last three months, as
//! WeChat keeps them; earlier or later days are refused by each channel in
//! its own words.
//!
//! # Fees
//!
//! The sandbox charges 0.60% (WeChat 费率 `0.60%`, Alipay 服务费), rounded
//! half up to the fen per line ([`fee_fen`]): a 1.00 yuan payment costs
//! 0.01 yuan (0.006 rounds up), 0.50 yuan costs 0.00. A refund gives back
//! the fee of the refunded amount, rounded the same way (WeChat writes it
//! negative on the refund line). WeChat prints fees with 5 decimals
//! (`0.01000`); Alipay with 2.

use chrono::{DateTime, Months, NaiveDate, NaiveTime, TimeDelta, Utc};

use crate::Shared;
use crate::faults::BillFaults;
use crate::ledger::{Api, Order, OrderExt, PartnerOrder, PayState, Refund, TradeType};

mod downloads;

pub use downloads::{Download, Downloads, MAX_DOWNLOAD_BYTES, MAX_DOWNLOADS};

/// The fee rate, in ten-thousandths (60 = 0.60%).
pub const FEE_RATE_BP: i64 = 60;

/// How far back bills go (WeChat: "只能下载三个月以内的账单").
pub const MONTHS_KEPT: u32 = 3;

/// Whose lines a bill holds.
#[derive(Debug, Clone, Copy)]
pub enum Book<'a> {
    /// A direct WeChat merchant: its own orders, made through v2 or v3.
    Wechat { mch_id: &'a str },
    /// A WeChat service provider: its sub-merchants' orders, or one's.
    WechatPartner {
        sp_mch_id: &'a str,
        sub_mch_id: Option<&'a str>,
    },
    /// An Alipay merchant (its pid): the trades it received.
    Alipay { pid: &'a str },
}

impl Book<'_> {
    pub fn holds(&self, o: &Order) -> bool {
        match *self {
            Book::Wechat { mch_id } => {
                matches!(o.api, Api::V2(_) | Api::V3) && o.partner().is_none() && o.mch_id == mch_id
            }
            Book::WechatPartner {
                sp_mch_id,
                sub_mch_id,
            } => {
                o.partner().is_some_and(|p| p.sp_mch_id == sp_mch_id)
                    && sub_mch_id.is_none_or(|sub| o.mch_id == sub)
            }
            Book::Alipay { pid } => o.api == Api::Alipay && o.mch_id == pid,
        }
    }

    /// The channel type the bill faults of this book are filed under.
    fn channel_type(&self) -> &'static str {
        match self {
            Book::Wechat { .. } | Book::WechatPartner { .. } => "wx-pay",
            Book::Alipay { .. } => "ali-pay",
        }
    }

    /// The merchant numbers a fault's `mchId` may name for this bill.
    fn mch_ids(&self) -> Vec<&str> {
        match *self {
            Book::Wechat { mch_id } => vec![mch_id],
            Book::WechatPartner {
                sp_mch_id,
                sub_mch_id,
            } => std::iter::once(sp_mch_id).chain(sub_mch_id).collect(),
            Book::Alipay { pid } => vec![pid],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Payment,
    Refund,
}

/// One line of a bill.
#[derive(Debug, Clone)]
pub struct Line {
    pub kind: LineKind,
    /// When it happened: the payment, or the refund's acceptance.
    pub at: DateTime<Utc>,
    /// The order (for a refund line, the refunded order).
    pub order: Order,
    pub refund: Option<Refund>,
    /// Fen: what was paid (the order's total, unless a fault changed it),
    /// or what was refunded.
    pub amount: i64,
}

impl Line {
    /// The channel's number of the trade.
    pub fn transaction_id(&self) -> &str {
        self.order.paid().map(|(id, _, _)| id).unwrap_or_default()
    }

    /// The payer as the channel knows them (openid, Alipay buyer id).
    pub fn payer(&self) -> &str {
        self.order.paid().map(|(_, _, p)| p).unwrap_or_default()
    }

    /// The sandbox's fee on this line in fen: positive on a payment,
    /// negative (given back) on a refund.
    pub fn fee(&self) -> i64 {
        match self.kind {
            LineKind::Payment => fee_fen(self.amount),
            LineKind::Refund => -fee_fen(self.amount),
        }
    }
}

/// A day's bill, ready to render.
#[derive(Debug, Clone, Default)]
pub struct DayBill {
    /// In time order. Empty: the day has no bill.
    pub lines: Vec<Line>,
    /// Fen the summary adds to the money in (BILL_BAD_SUMMARY).
    pub summary_bias: i64,
}

impl DayBill {
    pub fn payments(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| l.kind == LineKind::Payment)
    }

    pub fn refunds(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| l.kind == LineKind::Refund)
    }
}

/// What a bill request is answered with.
#[derive(Debug, Clone)]
pub enum Made {
    /// BILL_GENERATING: not yet.
    Generating,
    /// The bill (maybe without lines: then there is none).
    Bill(DayBill),
}

/// Why a day has no bill to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayError {
    /// Today or later (China time): the day is not over.
    NotOver,
    /// More than [`MONTHS_KEPT`] months ago.
    TooOld,
}

/// The sandbox's 0.60% fee on `fen`, rounded half up to the fen.
pub fn fee_fen(fen: i64) -> i64 {
    (fen.abs() * FEE_RATE_BP + 5_000) / 10_000 * fen.signum()
}

/// `fen` as yuan with 2 decimals, `-` when negative.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

/// `fen` as yuan with 5 decimals (WeChat's 手续费), `-` when negative.
pub fn yuan5(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}000", fen.abs() / 100, fen.abs() % 100)
}

/// The China day `now` falls on.
pub fn cn_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&cashdesk_core::time::shanghai())
        .date_naive()
}

/// The instants a China day starts and ends (`[from, to)`).
pub fn cn_day_bounds(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = day
        .and_time(NaiveTime::MIN)
        .and_local_timezone(cashdesk_core::time::shanghai())
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    (from, from + TimeDelta::days(1))
}

/// Whether `day` has a bill to ask for at `now` (see the module comment).
pub fn check_day(day: NaiveDate, now: DateTime<Utc>) -> Result<(), DayError> {
    let today = cn_today(now);
    if day >= today {
        return Err(DayError::NotOver);
    }
    let oldest = today
        .checked_sub_months(Months::new(MONTHS_KEPT))
        .unwrap_or(NaiveDate::MIN);
    if day < oldest {
        return Err(DayError::TooOld);
    }
    Ok(())
}

/// The bill of `day` for `book`, the matching bill faults used up and
/// applied. `appid`: whose AppID an extra trade (BILL_EXTRA_TRADE) names.
pub fn make(s: &Shared, book: Book<'_>, day: NaiveDate, appid: &str) -> Made {
    let (from, to) = cn_day_bounds(day);
    let (paid, refunds) = s.ledger.lines_between(from, to, |o| book.holds(o));
    let mut lines: Vec<Line> = paid
        .into_iter()
        .filter_map(|order| {
            let at = order.paid()?.1;
            Some(Line {
                kind: LineKind::Payment,
                at,
                amount: order.total,
                order,
                refund: None,
            })
        })
        .chain(refunds.into_iter().map(|(refund, order)| Line {
            kind: LineKind::Refund,
            at: refund.created_at,
            amount: refund.amount,
            order,
            refund: Some(refund),
        }))
        .collect();
    let faults = s
        .faults
        .take_bill(book.channel_type(), &book.mch_ids(), !lines.is_empty());
    if faults.generating {
        return Made::Generating;
    }
    apply(&mut lines, &faults, book, day, appid);
    lines.sort_by(|a, b| {
        (a.at, &a.order.out_trade_no, a.kind == LineKind::Refund).cmp(&(
            b.at,
            &b.order.out_trade_no,
            b.kind == LineKind::Refund,
        ))
    });
    Made::Bill(DayBill {
        summary_bias: if faults.bad_summary && !lines.is_empty() {
            1
        } else {
            0
        },
        lines,
    })
}

/// The shaping faults, in a fixed order: extra trades first (so an
/// amount fault naming one finds it), then amounts, then omissions.
fn apply(lines: &mut Vec<Line>, faults: &BillFaults, book: Book<'_>, day: NaiveDate, appid: &str) {
    for (no, amount) in &faults.extra_trade {
        lines.push(extra_trade(book, day, appid, no.as_deref(), *amount));
    }
    for target in &faults.amount_diff {
        let first_in_time = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.kind == LineKind::Payment)
            .filter(|(_, l)| target.as_ref().is_none_or(|no| &l.order.out_trade_no == no))
            .min_by_key(|(_, l)| (l.at, l.order.out_trade_no.clone()))
            .map(|(i, _)| i);
        if let Some(i) = first_in_time {
            lines[i].amount += 1;
        }
    }
    for target in &faults.omit_refund {
        lines.retain(|l| {
            l.kind != LineKind::Refund
                || target
                    .as_ref()
                    .is_some_and(|no| l.refund.as_ref().is_none_or(|r| !refund_named(r, no)))
        });
    }
}

/// Whether `no` names the refund `r` (Alipay keeps refunds under
/// `<out_trade_no>#<out_request_no>`, and is named by its out_request_no).
fn refund_named(r: &Refund, no: &str) -> bool {
    r.out_refund_no == no
        || r.out_refund_no
            .split_once('#')
            .is_some_and(|(_, request_no)| request_no == no)
}

fn digits(n: usize) -> String {
    cashdesk_crypto::random::bytes(n)
        .into_iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// A successful payment of an order the book never had, at noon (China
/// time) of `day`.
fn extra_trade(book: Book<'_>, day: NaiveDate, appid: &str, no: Option<&str>, amount: i64) -> Line {
    let at = cn_day_bounds(day).0 + TimeDelta::hours(12);
    let date = day.format("%Y%m%d").to_string();
    let (mch_id, api, ext, transaction_id, payer) = match book {
        Book::Wechat { mch_id } => (
            mch_id,
            Api::V3,
            OrderExt::None,
            format!("420000{date}{}", digits(14)),
            crate::ledger::new_openid(),
        ),
        Book::WechatPartner {
            sp_mch_id,
            sub_mch_id,
        } => (
            sub_mch_id.unwrap_or(sp_mch_id),
            Api::V3,
            match sub_mch_id {
                Some(_) => OrderExt::WechatPartner(PartnerOrder {
                    sp_mch_id: sp_mch_id.to_owned(),
                    sub_app_id: None,
                    sub_openid: None,
                }),
                None => OrderExt::None,
            },
            format!("420000{date}{}", digits(14)),
            crate::ledger::new_openid(),
        ),
        Book::Alipay { pid } => (
            pid,
            Api::Alipay,
            OrderExt::None,
            format!("{date}22001{}", digits(15)),
            crate::alipay::new_buyer_id(),
        ),
    };
    let out_trade_no = no
        .map(str::to_owned)
        .unwrap_or_else(|| format!("SBXEXTRA{}", digits(16)));
    let order = Order {
        mch_id: mch_id.to_owned(),
        appid: appid.to_owned(),
        out_trade_no,
        api,
        trade_type: TradeType::Native,
        description: "sandbox extra trade".to_owned(),
        total: amount,
        openid: None,
        attach: None,
        notify_url: String::new(),
        prepay_id: transaction_id.clone(),
        created_at: at,
        expire_at: None,
        state: PayState::Success {
            transaction_id,
            paid_at: at,
            openid: payer,
        },
        refunded: 0,
        fingerprint: String::new(),
        ext,
    };
    Line {
        kind: LineKind::Payment,
        at,
        amount,
        order,
        refund: None,
    }
}

#[cfg(test)]
mod tests;
