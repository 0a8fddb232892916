//! Matching a day's bill against cashdesk's book, line by line, without
//! the database: the caller loads the config's paid orders and successful
//! refunds of a window around the day, feeds the bill's records as they
//! are read, and gets the findings, the lines it could not place (for a
//! lookup in the store) and the local entries the bill lacks.
//!
//! A payment line is matched by cashdesk's order id (the channel's
//! `out_trade_no`), a refund line by cashdesk's refund id (`out_refund_no`).
//! The local window is one day wider on each side than the bill's day, so
//! a payment booked just before midnight by one side and just after by the
//! other matches (ARCHITECTURE: the channel's day is China Standard Time).

mod local;

use std::collections::{HashMap, HashSet};

use cashdesk_channels::bill::{BillRecord, BillSummary, RecordKind};
use cashdesk_core::{Fen, FindingKind, FindingStatus};
use cashdesk_store::{NewFinding, ReconOrder, ReconRefund};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use local::{Local, Owner};

/// China Standard Time, the channels' day.
pub use cashdesk_core::time::shanghai as cst;

/// The day (China Standard Time) of an instant.
pub fn cst_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&cst()).date_naive()
}

/// The UTC instant at which a China day starts.
pub fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_local_timezone(cst())
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&Utc)
}

/// What the matching counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub lines: i64,
    pub matched: i64,
    pub paid: i64,
    pub refunded: i64,
    /// The fees the bill states, in 1/100000 yuan.
    pub fee_e5: i64,
}

/// What a bill moved for one app and store (the daily statement).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved {
    pub payments: i64,
    pub gross: i64,
    pub refunds: i64,
    pub refunded: i64,
    /// 1/100000 yuan.
    pub fee_e5: i64,
}

/// One day's matching.
pub struct Matcher {
    day: NaiveDate,
    /// The window's paid orders and successful refunds ([`local`]).
    local: Local,
    /// Lines already counted, when a day has several bills that may
    /// overlap (a provider's bill and its sub-merchants').
    seen_lines: Option<HashSet<(bool, String)>>,
    pub findings: Vec<NewFinding>,
    /// Payment lines for orders not paid in the window: the caller looks
    /// each one up (an unpaid order is `CHANNEL_ONLY` and may be repaired;
    /// one paid outside the window is compared there).
    pub unplaced_payments: Vec<BillRecord>,
    pub unplaced_refunds: Vec<BillRecord>,
    /// Subjects of the previous day that this bill explains (paid locally
    /// on the day before, booked by the channel on this day).
    pub explains_previous: Vec<String>,
    pub totals: Totals,
    /// What the bill moved per (app, store) — `("", "")` for lines that
    /// are no cashdesk order — as booked by name ([`Matcher::book`]);
    /// [`Matcher::statement`] adds the lines matched here.
    statement: HashMap<(String, String), Moved>,
    /// What the matched lines moved, per interned (app, store).
    booked: hashbrown::HashMap<Owner, Moved>,
}

impl Matcher {
    /// `orders` and `refunds`: the config's paid orders and successful
    /// refunds from the start of the day before to the end of the day after.
    /// `overlapping`: whether several bills of the day are fed (lines seen
    /// twice are counted once).
    pub fn new(
        day: NaiveDate,
        orders: Vec<ReconOrder>,
        refunds: Vec<ReconRefund>,
        overlapping: bool,
    ) -> Self {
        let mut m = Self::empty(day, overlapping);
        orders.iter().for_each(|o| m.add_order(o));
        refunds.iter().for_each(|r| m.add_refund(r));
        m
    }

    /// A matching without local entries yet: add the window's orders and
    /// refunds as the store reads them ([`Matcher::add_order`],
    /// [`Matcher::add_refund`]), then feed the bill.
    pub fn empty(day: NaiveDate, overlapping: bool) -> Self {
        Self {
            day,
            local: Local::new(),
            seen_lines: overlapping.then(HashSet::new),
            findings: Vec::new(),
            unplaced_payments: Vec::new(),
            unplaced_refunds: Vec::new(),
            explains_previous: Vec::new(),
            totals: Totals::default(),
            statement: HashMap::new(),
            booked: hashbrown::HashMap::new(),
        }
    }

    /// One of the window's paid orders (a second with the same id
    /// replaces the first).
    pub fn add_order(&mut self, o: &ReconOrder) {
        self.local.add_order(o);
    }

    /// One of the window's successful refunds.
    pub fn add_refund(&mut self, r: &ReconRefund) {
        self.local.add_refund(r);
    }

    /// Books a successful bill line on `(app, store)`'s statement.
    pub fn book(&mut self, app: &str, store: &str, rec: &BillRecord) {
        let m = self
            .statement
            .entry((app.to_owned(), store.to_owned()))
            .or_default();
        m.add(rec);
    }

    /// What the bill moved per (app, store): the lines matched here and
    /// those booked by name.
    pub fn statement(&self) -> HashMap<(String, String), Moved> {
        let mut all = self.statement.clone();
        for (owner, moved) in &self.booked {
            let (app, store) = self.local.owner_names(*owner);
            all.entry((app.to_owned(), store.to_owned()))
                .or_default()
                .merge(moved);
        }
        all
    }

    /// One bill line.
    pub fn feed(&mut self, rec: BillRecord) {
        if let Some(seen) = &mut self.seen_lines {
            let key = match rec.kind {
                RecordKind::Payment => rec.transaction_id.clone(),
                RecordKind::Refund => rec.out_refund_no.clone().unwrap_or_default(),
            };
            if !seen.insert((rec.kind == RecordKind::Refund, key)) {
                return;
            }
        }
        self.totals.lines += 1;
        self.totals.fee_e5 += rec.fee.as_deref().and_then(fee_e5).unwrap_or(0);
        match rec.kind {
            RecordKind::Payment => self.payment(rec),
            RecordKind::Refund => self.refund(rec),
        }
    }

    fn payment(&mut self, rec: BillRecord) {
        let success = rec.state == "SUCCESS";
        if success {
            self.totals.paid += rec.amount.get();
        }
        let Some(slot) = self.local.order(&rec.out_trade_no) else {
            if success {
                self.unplaced_payments.push(rec);
            }
            return;
        };
        self.local.see_order(slot);
        if cst_day(self.local.pay_time(slot)) < self.day {
            self.explains_previous
                .push(order_subject(self.local.order_id(slot)));
        }
        if success {
            self.booked
                .entry(self.local.order_owner(slot))
                .or_default()
                .add(&rec);
        }
        if !success {
            let local = self.local.full_order(slot);
            self.findings.push(payment_finding(
                FindingKind::StateMismatch,
                &rec,
                Some(&local),
                format!(
                    "cashdesk has order {} paid; the channel's line says {}",
                    local.order_id, rec.state
                ),
            ));
        } else if rec.amount != self.local.order_amount(slot) {
            let local = self.local.full_order(slot);
            self.findings.push(amount_mismatch(&rec, &local));
        } else {
            self.totals.matched += 1;
        }
    }

    fn refund(&mut self, rec: BillRecord) {
        self.totals.refunded += rec.amount.get();
        let id = rec.out_refund_no.as_deref().unwrap_or_default();
        let Some(slot) = self.local.refund(id) else {
            self.unplaced_refunds.push(rec);
            return;
        };
        self.local.see_refund(slot);
        if cst_day(self.local.finished_at(slot)) < self.day {
            self.explains_previous
                .push(refund_subject(self.local.refund_id(slot)));
        }
        self.booked
            .entry(self.local.refund_owner(slot))
            .or_default()
            .add(&rec);
        if rec.state == "SUCCESS" && rec.amount == self.local.refund_amount(slot) {
            self.totals.matched += 1;
            return;
        }
        let local = self.local.full_refund(slot);
        if rec.state != "SUCCESS" {
            self.findings.push(refund_finding(
                FindingKind::RefundStateMismatch,
                &rec,
                Some(&local),
                format!(
                    "cashdesk has refund {} succeeded; the channel's line says {}",
                    local.refund_id, rec.state
                ),
            ));
        } else {
            self.findings.push(refund_finding(
                FindingKind::RefundAmountMismatch,
                &rec,
                Some(&local),
                format!(
                    "refund {}: the channel gave back {} yuan, cashdesk recorded {} yuan",
                    local.refund_id,
                    rec.amount.to_yuan(),
                    local.amount.to_yuan()
                ),
            ));
        }
    }

    /// Checks the bill's own summary against its lines (one bill at a time:
    /// `totals_before` is what the matcher had counted before this bill).
    pub fn check_summary(&mut self, scope: &str, summary: &BillSummary, totals_before: &Totals) {
        let lines = self.totals.lines - totals_before.lines;
        let paid = self.totals.paid - totals_before.paid;
        let refunded = self.totals.refunded - totals_before.refunded;
        let stated = (
            i64::try_from(summary.count).unwrap_or(i64::MAX),
            summary.paid_total.get(),
            summary.refund_total.get(),
        );
        // Overlapping bills skip lines seen in another one, so only the
        // amounts of a bill read alone are comparable.
        if self.seen_lines.is_some() || stated == (lines, paid, refunded) {
            return;
        }
        self.findings.push(NewFinding {
            kind: FindingKind::SummaryMismatch,
            subject: format!("summary:{scope}"),
            status: FindingStatus::Open,
            order_id: None,
            refund_id: None,
            channel_amount: Some(summary.paid_total),
            local_amount: Some(Fen::from_stored(paid)),
            detail: format!(
                "the bill's summary states {} lines, {} yuan paid and {} yuan refunded; its lines add up to {} lines, {} yuan and {} yuan",
                stated.0,
                summary.paid_total.to_yuan(),
                summary.refund_total.to_yuan(),
                lines,
                Fen::from_stored(paid).to_yuan(),
                Fen::from_stored(refunded).to_yuan()
            ),
            evidence: json!({
                "scope": scope,
                "summary": {"count": summary.count, "paid": summary.paid_total.get(), "refunded": summary.refund_total.get()},
                "lines": {"count": lines, "paid": paid, "refunded": refunded},
            }),
        });
    }

    /// The paid orders of the day that no line matched, and the refunds
    /// likewise: `LOCAL_ONLY` candidates (the caller looks at the previous
    /// day's bill before it reports them).
    pub fn unmatched_local(&self) -> (Vec<ReconOrder>, Vec<ReconRefund>) {
        let orders = self
            .local
            .unseen_orders()
            .filter(|&s| cst_day(self.local.pay_time(s)) == self.day)
            .map(|s| self.local.full_order(s))
            .collect();
        let refunds = self
            .local
            .unseen_refunds()
            .filter(|&s| cst_day(self.local.finished_at(s)) == self.day)
            .map(|s| self.local.full_refund(s))
            .collect();
        (orders, refunds)
    }
}

impl Moved {
    fn add(&mut self, rec: &BillRecord) {
        match rec.kind {
            RecordKind::Payment => {
                self.payments += 1;
                self.gross += rec.amount.get();
            }
            RecordKind::Refund => {
                self.refunds += 1;
                self.refunded += rec.amount.get();
            }
        }
        self.fee_e5 += rec.fee.as_deref().and_then(fee_e5).unwrap_or(0);
    }

    fn merge(&mut self, other: &Moved) {
        self.payments += other.payments;
        self.gross += other.gross;
        self.refunds += other.refunds;
        self.refunded += other.refunded;
        self.fee_e5 += other.fee_e5;
    }
}

/// A store id as the statement keys it (`""`: no store).
pub fn store_of(store: Option<&cashdesk_core::StoreId>) -> &str {
    store.map_or("", |s| s.as_str())
}

pub fn order_subject(order_id: &str) -> String {
    format!("order:{order_id}")
}

pub fn refund_subject(refund_id: &str) -> String {
    format!("refund:{refund_id}")
}

/// A fee as the bill writes it (`0.00600`, `-0.01`) in 1/100000 yuan.
pub fn fee_e5(text: &str) -> Option<i64> {
    let (neg, t) = match text.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.trim()),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty()
        || frac.len() > 5
        || !(int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    // The decimals as hundred-thousandths, without a string per line.
    let frac_e5 = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(5)
        .fold(0, |v, b| v * 10 + i64::from(b - b'0'));
    let v = int
        .parse::<i64>()
        .ok()?
        .checked_mul(100_000)?
        .checked_add(frac_e5)?;
    Some(if neg { -v } else { v })
}

fn record_evidence(rec: &BillRecord) -> serde_json::Value {
    json!({
        "at": rec.at,
        "mchId": rec.mch_id,
        "subMchId": rec.sub_mch_id,
        "outTradeNo": rec.out_trade_no,
        "transactionId": rec.transaction_id,
        "outRefundNo": rec.out_refund_no,
        "channelRefundId": rec.channel_refund_id,
        "amount": rec.amount.get(),
        "state": rec.state,
        "fee": rec.fee,
        "rate": rec.rate,
    })
}

/// A finding about a payment line, with the local order when there is one.
pub fn payment_finding(
    kind: FindingKind,
    rec: &BillRecord,
    local: Option<&ReconOrder>,
    detail: String,
) -> NewFinding {
    NewFinding {
        kind,
        subject: match local {
            Some(o) => order_subject(o.order_id.as_str()),
            None => format!("trade:{}", rec.transaction_id),
        },
        status: FindingStatus::Open,
        order_id: Some(rec.out_trade_no.clone()),
        refund_id: None,
        channel_amount: Some(rec.amount),
        local_amount: local.map(|o| o.amount),
        detail,
        evidence: json!({
            "bill": record_evidence(rec),
            "local": local.map(|o| json!({"state": o.state, "amount": o.amount.get(), "payTime": o.pay_time, "transactionId": o.transaction_id})),
        }),
    }
}

pub fn amount_mismatch(rec: &BillRecord, local: &ReconOrder) -> NewFinding {
    payment_finding(
        FindingKind::AmountMismatch,
        rec,
        Some(local),
        format!(
            "order {}: the channel took {} yuan, cashdesk recorded {} yuan",
            local.order_id,
            rec.amount.to_yuan(),
            local.amount.to_yuan()
        ),
    )
}

/// A finding about a refund line.
pub fn refund_finding(
    kind: FindingKind,
    rec: &BillRecord,
    local: Option<&ReconRefund>,
    detail: String,
) -> NewFinding {
    let id = rec.out_refund_no.clone().unwrap_or_default();
    NewFinding {
        kind,
        subject: match local {
            Some(r) => refund_subject(r.refund_id.as_str()),
            None => format!(
                "trade:{}",
                rec.channel_refund_id.clone().unwrap_or_else(|| id.clone())
            ),
        },
        status: FindingStatus::Open,
        order_id: Some(rec.out_trade_no.clone()),
        refund_id: Some(id),
        channel_amount: Some(rec.amount),
        local_amount: local.map(|r| r.amount),
        detail,
        evidence: json!({
            "bill": record_evidence(rec),
            "local": local.map(|r| json!({"state": r.state, "amount": r.amount.get(), "finishedAt": r.finished_at, "channelRefundId": r.channel_refund_id})),
        }),
    }
}

/// `LOCAL_ONLY` for a paid order no bill line has.
pub fn local_only(o: &ReconOrder) -> NewFinding {
    NewFinding {
        kind: FindingKind::LocalOnly,
        subject: order_subject(o.order_id.as_str()),
        status: FindingStatus::Open,
        order_id: Some(o.order_id.as_str().to_owned()),
        refund_id: None,
        channel_amount: None,
        local_amount: Some(o.amount),
        detail: format!(
            "cashdesk has order {} paid ({} yuan, transaction {}); the channel's bill has no such payment",
            o.order_id,
            o.amount.to_yuan(),
            o.transaction_id.as_deref().unwrap_or("-")
        ),
        evidence: json!({"local": {"state": o.state, "amount": o.amount.get(), "payTime": o.pay_time, "transactionId": o.transaction_id, "appId": o.app_id, "storeId": o.store_id}}),
    }
}

/// `REFUND_LOCAL_ONLY` for a successful refund no bill line has.
pub fn refund_local_only(r: &ReconRefund) -> NewFinding {
    NewFinding {
        kind: FindingKind::RefundLocalOnly,
        subject: refund_subject(r.refund_id.as_str()),
        status: FindingStatus::Open,
        order_id: Some(r.order_id.as_str().to_owned()),
        refund_id: Some(r.refund_id.as_str().to_owned()),
        channel_amount: None,
        local_amount: Some(r.amount),
        detail: format!(
            "cashdesk has refund {} of order {} succeeded ({} yuan); the channel's bill has no such refund",
            r.refund_id,
            r.order_id,
            r.amount.to_yuan()
        ),
        evidence: json!({"local": {"state": r.state, "amount": r.amount.get(), "finishedAt": r.finished_at, "channelRefundId": r.channel_refund_id, "appId": r.app_id, "storeId": r.store_id}}),
    }
}

#[cfg(test)]
mod tests;
