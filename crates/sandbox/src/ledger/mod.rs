//! The sandbox's order book: orders and refunds per merchant, with WeChat's
//! rules (out_trade_no unique per merchant across v2 and v3, re-submission
//! with identical parameters returns the same prepay, with different ones is
//! refused; refunds never exceed the paid amount; a refund number is
//! idempotent). Both API front ends call these methods and only translate
//! the outcome into their wire shapes, so v2 and v3 cannot drift apart.
//!
//! # Kept across restarts, bounded
//!
//! The book lives in memory and, when opened on a folder ([`Ledger::open`]),
//! in `<data_dir>/sandbox/ledger.jsonl`: every change appends the order or
//! refund as it now is (one JSON line, [`crate::journal`]); a start replays
//! the lines in order (the last line of an order or refund wins). Lines are
//! buffered and handed to the OS at least every [`FLUSH_EVERY`] (and at
//! shutdown), never fsynced: a crash of the process loses at most the last
//! ~100 ms of changes, a crash of the machine what the OS had not written.
//! It is a simulator: a merchant that lost a payment that way finds it
//! missing on its next query, as after any outage. Notifications still
//! owed at a restart are not resent; refunds still `PROCESSING` are settled
//! (and notified) again after the restart.
//!
//! When the file holds more than twice the lines it needs (plus
//! [`COMPACT_SLACK`]) it is rewritten with one line per live order and
//! refund — at open, or as it grows — so it stays within a small multiple
//! of the book.
//!
//! The book keeps at most `max_orders` orders (anyone can open a merchant
//! and make orders): past it the oldest order is forgotten with its
//! refunds, in memory and (at the next compaction) on disk. A replay applies
//! the same cap in the same order.
//!
//! One mutex guards everything; every operation is short (the journal line
//! is serialised under it, so lines are in the order of the changes).
//!
//! This file is the book itself (indexes, cap, journal, the rules of each
//! change); `model` holds what an order and a refund are, and the shapes of
//! the numbers the channels hand out.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::journal::Journal;

mod model;
#[cfg(test)]
mod tests;

pub use model::{
    AlipayOrder, Api, LakalaOrder, LedgerError, NewRefund, Order, OrderExt, OrderRef, PartnerOrder,
    PayState, Refund, RefundStatus, TradeType, new_openid, new_prepay_id,
};
use model::{new_refund_id, new_transaction_id};

/// The default of [`crate::SandboxConfig::max_orders`].
pub const DEFAULT_MAX_ORDERS: usize = 100_000;

/// Buffered journal lines reach the OS at least this often.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Lines beyond twice the live records that trigger a compaction.
const COMPACT_SLACK: u64 = 10_000;

type Key = (String, String);

/// One journal line: an order or a refund as it is after a change.
#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
enum Record {
    Order(Box<Order>),
    Refund(Box<Refund>),
}

/// The same, borrowed, for writing.
#[derive(Serialize)]
#[serde(tag = "t", rename_all = "lowercase")]
enum RecordRef<'a> {
    Order(&'a Order),
    Refund(&'a Refund),
}

struct Inner {
    orders: HashMap<Key, Order>,
    by_prepay: HashMap<String, Key>,
    by_transaction: HashMap<String, Key>,
    /// out_trade_no → the merchants whose book has it (the test API
    /// addresses orders by out_trade_no alone).
    by_out_trade_no: HashMap<String, Vec<String>>,
    refunds: HashMap<Key, Refund>,
    refunds_by_id: HashMap<String, Key>,
    /// An order's refunds' out_refund_no, oldest first.
    refunds_by_order: HashMap<Key, Vec<String>>,
    /// Order keys, oldest first: who is forgotten at the cap.
    age: VecDeque<Key>,
    max_orders: usize,
    journal: Option<Journal>,
    last_flush: Instant,
}

pub struct Ledger {
    inner: Mutex<Inner>,
}

impl Default for Ledger {
    /// An in-memory book of [`DEFAULT_MAX_ORDERS`] orders.
    fn default() -> Self {
        Self::in_memory(DEFAULT_MAX_ORDERS)
    }
}

impl Inner {
    fn new(max_orders: usize) -> Self {
        Self {
            orders: HashMap::new(),
            by_prepay: HashMap::new(),
            by_transaction: HashMap::new(),
            by_out_trade_no: HashMap::new(),
            refunds: HashMap::new(),
            refunds_by_id: HashMap::new(),
            refunds_by_order: HashMap::new(),
            age: VecDeque::new(),
            max_orders: max_orders.max(1),
            journal: None,
            last_flush: Instant::now(),
        }
    }

    /// Insert a new order (forgetting the oldest at the cap) or replace an
    /// existing one, keeping every index.
    fn put_order(&mut self, order: Order) {
        let key = (order.mch_id.clone(), order.out_trade_no.clone());
        if let Some((transaction_id, _, _)) = order.paid() {
            self.by_transaction
                .insert(transaction_id.to_owned(), key.clone());
        }
        if let Some(existing) = self.orders.get_mut(&key) {
            *existing = order;
            return;
        }
        while self.orders.len() >= self.max_orders {
            let Some(oldest) = self.age.pop_front() else {
                break;
            };
            self.forget(&oldest);
        }
        self.by_prepay.insert(order.prepay_id.clone(), key.clone());
        self.by_out_trade_no
            .entry(key.1.clone())
            .or_default()
            .push(key.0.clone());
        self.age.push_back(key.clone());
        self.orders.insert(key, order);
    }

    /// Drop an order and its refunds from memory.
    fn forget(&mut self, key: &Key) {
        let Some(order) = self.orders.remove(key) else {
            return;
        };
        self.by_prepay.remove(&order.prepay_id);
        if let Some((transaction_id, _, _)) = order.paid() {
            self.by_transaction.remove(transaction_id);
        }
        if let Some(mchs) = self.by_out_trade_no.get_mut(&key.1) {
            mchs.retain(|m| m != &key.0);
            if mchs.is_empty() {
                self.by_out_trade_no.remove(&key.1);
            }
        }
        for out_refund_no in self.refunds_by_order.remove(key).unwrap_or_default() {
            if let Some(r) = self.refunds.remove(&(key.0.clone(), out_refund_no)) {
                self.refunds_by_id.remove(&r.refund_id);
            }
        }
    }

    /// Insert or replace a refund of a known order (`false`: its order is
    /// not in the book).
    fn put_refund(&mut self, refund: Refund) -> bool {
        let order_key = (refund.mch_id.clone(), refund.out_trade_no.clone());
        if !self.orders.contains_key(&order_key) {
            return false;
        }
        let key = (refund.mch_id.clone(), refund.out_refund_no.clone());
        if !self.refunds.contains_key(&key) {
            self.refunds_by_id
                .insert(refund.refund_id.clone(), key.clone());
            self.refunds_by_order
                .entry(order_key)
                .or_default()
                .push(key.1.clone());
        }
        self.refunds.insert(key, refund);
        true
    }

    fn record(&mut self, r: RecordRef<'_>) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let mut result = journal.append(&r);
        if result.is_ok() && self.last_flush.elapsed() >= FLUSH_EVERY {
            result = journal.flush();
            self.last_flush = Instant::now();
        }
        if result.is_ok() {
            result = self.compact_if_large();
        }
        if let Err(e) = result {
            tracing::error!(error = %format!("{e:#}"), "the sandbox order book stops being saved");
            self.journal = None;
        }
    }

    fn live_records(&self) -> u64 {
        (self.orders.len() + self.refunds.len()) as u64
    }

    fn compact_if_large(&mut self) -> anyhow::Result<()> {
        let live = self.live_records();
        match &self.journal {
            Some(j) if j.lines() > 2 * live + COMPACT_SLACK => self.compact(),
            _ => Ok(()),
        }
    }

    /// Rewrite the journal with one line per live order and refund,
    /// oldest order first, each followed by its refunds.
    fn compact(&mut self) -> anyhow::Result<()> {
        let Some(mut journal) = self.journal.take() else {
            return Ok(());
        };
        let records = self.age.iter().filter_map(|key| {
            let order = self.orders.get(key)?;
            let refunds = self
                .refunds_by_order
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|no| self.refunds.get(&(key.0.clone(), no.clone())))
                .map(RecordRef::Refund);
            Some(std::iter::once(RecordRef::Order(order)).chain(refunds))
        });
        let result = journal.rewrite(records.flatten());
        self.journal = Some(journal);
        result
    }
}

impl Ledger {
    /// A book that is not saved (tests).
    pub fn in_memory(max_orders: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::new(max_orders)),
        }
    }

    /// The book saved in `<dir>/ledger.jsonl`, replayed from it; also
    /// returns the refunds still `PROCESSING` (to be settled again).
    /// Blocking file I/O.
    pub fn open(dir: &Path, max_orders: usize) -> anyhow::Result<(Ledger, Vec<Refund>)> {
        let (journal, replayed) = Journal::open::<Record>(&dir.join("ledger.jsonl"))?;
        let mut inner = Inner::new(max_orders);
        for record in replayed.records {
            match record {
                Record::Order(o) => inner.put_order(*o),
                Record::Refund(r) => {
                    inner.put_refund(*r);
                }
            }
        }
        let processing = inner
            .refunds
            .values()
            .filter(|r| r.status == RefundStatus::Processing)
            .cloned()
            .collect();
        inner.journal = Some(journal);
        if replayed.bad_lines > 0 {
            inner.compact()?;
        } else {
            inner.compact_if_large()?;
        }
        Ok((
            Ledger {
                inner: Mutex::new(inner),
            },
            processing,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single insert or field write), so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand buffered journal lines to the OS (the periodic flusher and
    /// shutdown call this).
    pub fn flush(&self) {
        let mut inner = self.lock();
        let Some(journal) = inner.journal.as_mut() else {
            return;
        };
        if !journal.unflushed() {
            return;
        }
        if let Err(e) = journal.flush() {
            tracing::error!(error = %format!("{e:#}"), "the sandbox order book stops being saved");
            inner.journal = None;
        }
        inner.last_flush = Instant::now();
    }

    /// How many orders the book holds.
    pub fn order_count(&self) -> usize {
        self.lock().orders.len()
    }

    /// Create the order, or return the existing one when the same
    /// out_trade_no comes again with the same parameters.
    pub fn create_order(&self, order: Order, now: DateTime<Utc>) -> Result<Order, LedgerError> {
        let mut inner = self.lock();
        let key = (order.mch_id.clone(), order.out_trade_no.clone());
        if let Some(existing) = inner.orders.get(&key) {
            return match existing.trade_state(now) {
                "SUCCESS" | "REFUND" => Err(LedgerError::OrderPaid),
                "CLOSED" | "PAYERROR" => Err(LedgerError::OrderClosed),
                _ if existing.fingerprint != order.fingerprint => Err(LedgerError::OutTradeNoUsed),
                _ => Ok(existing.clone()),
            };
        }
        inner.record(RecordRef::Order(&order));
        inner.put_order(order.clone());
        Ok(order)
    }

    pub fn find(&self, mch_id: &str, r: &OrderRef) -> Option<Order> {
        let inner = self.lock();
        let key = match r {
            OrderRef::OutTradeNo(no) => (mch_id.to_owned(), no.clone()),
            OrderRef::TransactionId(id) => inner
                .by_transaction
                .get(id)
                .filter(|k| k.0 == mch_id)?
                .clone(),
        };
        inner.orders.get(&key).cloned()
    }

    pub fn find_by_prepay(&self, prepay_id: &str) -> Option<Order> {
        let inner = self.lock();
        let key = inner.by_prepay.get(prepay_id)?;
        inner.orders.get(key).cloned()
    }

    /// Every merchant's order with this out_trade_no (the test API is
    /// addressed by out_trade_no alone).
    pub fn find_any(&self, out_trade_no: &str) -> Vec<Order> {
        let inner = self.lock();
        let Some(mchs) = inner.by_out_trade_no.get(out_trade_no) else {
            return Vec::new();
        };
        mchs.iter()
            .filter_map(|m| {
                inner
                    .orders
                    .get(&(m.clone(), out_trade_no.to_owned()))
                    .cloned()
            })
            .collect()
    }

    /// The first order matching `pred` (slow path; small sandbox books).
    pub fn find_any_by(&self, pred: impl Fn(&Order) -> bool) -> Option<Order> {
        self.lock().orders.values().find(|o| pred(o)).cloned()
    }

    pub fn close(
        &self,
        mch_id: &str,
        out_trade_no: &str,
        now: DateTime<Utc>,
    ) -> Result<Order, LedgerError> {
        let mut inner = self.lock();
        let order = inner
            .orders
            .get_mut(&(mch_id.to_owned(), out_trade_no.to_owned()))
            .ok_or(LedgerError::OrderNotExist)?;
        match order.trade_state(now) {
            "SUCCESS" | "REFUND" => Err(LedgerError::OrderPaid),
            "CLOSED" => Err(LedgerError::OrderClosed),
            _ => {
                order.state = PayState::Closed;
                let order = order.clone();
                inner.record(RecordRef::Order(&order));
                Ok(order)
            }
        }
    }

    /// The payer paid (or the payment failed): NOTPAY → SUCCESS | PAYERROR.
    pub fn pay(
        &self,
        mch_id: &str,
        out_trade_no: &str,
        success: bool,
        payer_openid: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Order, LedgerError> {
        let mut inner = self.lock();
        let key = (mch_id.to_owned(), out_trade_no.to_owned());
        let order = inner
            .orders
            .get_mut(&key)
            .ok_or(LedgerError::OrderNotExist)?;
        match order.trade_state(now) {
            "SUCCESS" | "REFUND" => return Err(LedgerError::OrderPaid),
            "CLOSED" | "PAYERROR" => return Err(LedgerError::OrderClosed),
            _ => {}
        }
        if !success {
            order.state = PayState::PayError;
            let order = order.clone();
            inner.record(RecordRef::Order(&order));
            return Ok(order);
        }
        let transaction_id = if order.api.numbers_trade_at_creation() {
            order.prepay_id.clone()
        } else {
            new_transaction_id(now)
        };
        let openid = order
            .openid
            .clone()
            .or(payer_openid)
            .unwrap_or_else(new_openid);
        order.state = PayState::Success {
            transaction_id: transaction_id.clone(),
            paid_at: now,
            openid,
        };
        let order = order.clone();
        inner.by_transaction.insert(transaction_id, key);
        inner.record(RecordRef::Order(&order));
        Ok(order)
    }

    /// Accept a refund (PROCESSING), or return the existing one for a
    /// repeated out_refund_no with the same parameters (`false` = not new).
    pub fn refund(
        &self,
        r: NewRefund,
        now: DateTime<Utc>,
    ) -> Result<(Refund, Order, bool), LedgerError> {
        let mut inner = self.lock();
        let order_key = match &r.order {
            OrderRef::OutTradeNo(no) => (r.mch_id.clone(), no.clone()),
            OrderRef::TransactionId(id) => inner
                .by_transaction
                .get(id)
                .filter(|k| k.0 == r.mch_id)
                .cloned()
                .ok_or(LedgerError::OrderNotExist)?,
        };
        let refund_key = (r.mch_id.clone(), r.out_refund_no.clone());
        let order = inner
            .orders
            .get(&order_key)
            .ok_or(LedgerError::OrderNotExist)?;
        if let Some(existing) = inner.refunds.get(&refund_key) {
            if existing.out_trade_no != order.out_trade_no
                || existing.amount != r.amount
                || existing.total != r.total
            {
                return Err(LedgerError::RefundMismatch);
            }
            return Ok((existing.clone(), order.clone(), false));
        }
        let Some((transaction_id, _, _)) = order.paid() else {
            return Err(LedgerError::TradeState);
        };
        if r.total != order.total {
            return Err(LedgerError::TotalMismatch);
        }
        match order.refunded.checked_add(r.amount) {
            Some(sum) if sum <= order.total => {}
            _ => return Err(LedgerError::NotEnough),
        }
        let refund = Refund {
            mch_id: r.mch_id,
            out_refund_no: r.out_refund_no,
            refund_id: new_refund_id(now),
            out_trade_no: order.out_trade_no.clone(),
            transaction_id: transaction_id.to_owned(),
            amount: r.amount,
            total: order.total,
            reason: r.reason,
            notify_url: r.notify_url,
            api: r.api,
            status: RefundStatus::Processing,
            created_at: now,
            success_at: None,
        };
        let order = {
            let order = inner
                .orders
                .get_mut(&order_key)
                .ok_or(LedgerError::OrderNotExist)?;
            order.refunded += refund.amount;
            order.clone()
        };
        inner.put_refund(refund.clone());
        inner.record(RecordRef::Order(&order));
        inner.record(RecordRef::Refund(&refund));
        Ok((refund, order, true))
    }

    /// The refund reached the payer: PROCESSING → SUCCESS.
    pub fn complete_refund(
        &self,
        mch_id: &str,
        out_refund_no: &str,
        now: DateTime<Utc>,
    ) -> Option<Refund> {
        let mut inner = self.lock();
        let refund = inner
            .refunds
            .get_mut(&(mch_id.to_owned(), out_refund_no.to_owned()))?;
        if refund.status != RefundStatus::Processing {
            return Some(refund.clone());
        }
        refund.status = RefundStatus::Success;
        refund.success_at = Some(now);
        let refund = refund.clone();
        inner.record(RecordRef::Refund(&refund));
        Some(refund)
    }

    pub fn find_refund(&self, mch_id: &str, out_refund_no: &str) -> Option<Refund> {
        self.lock()
            .refunds
            .get(&(mch_id.to_owned(), out_refund_no.to_owned()))
            .cloned()
    }

    pub fn find_refund_by_id(&self, mch_id: &str, refund_id: &str) -> Option<Refund> {
        let inner = self.lock();
        let key = inner
            .refunds_by_id
            .get(refund_id)
            .filter(|k| k.0 == mch_id)?;
        inner.refunds.get(key).cloned()
    }

    /// The book's lines in `[from, to)` among the orders `holds` accepts:
    /// the orders paid then, and the refunds accepted then (each with its
    /// order). A scan of the whole book under the lock: bills are asked
    /// for a few times a day, and the book is capped.
    pub fn lines_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        holds: impl Fn(&Order) -> bool,
    ) -> (Vec<Order>, Vec<(Refund, Order)>) {
        let inner = self.lock();
        let within = |t: DateTime<Utc>| from <= t && t < to;
        let paid = inner
            .orders
            .values()
            .filter(|o| o.paid().is_some_and(|(_, at, _)| within(at)) && holds(o))
            .cloned()
            .collect();
        let refunds = inner
            .refunds
            .values()
            .filter(|r| within(r.created_at))
            .filter_map(|r| {
                let o = inner
                    .orders
                    .get(&(r.mch_id.clone(), r.out_trade_no.clone()))?;
                holds(o).then(|| (r.clone(), o.clone()))
            })
            .collect();
        (paid, refunds)
    }

    /// The order's refunds, oldest first.
    pub fn refunds_of(&self, mch_id: &str, out_trade_no: &str) -> Vec<Refund> {
        let inner = self.lock();
        let key = (mch_id.to_owned(), out_trade_no.to_owned());
        inner
            .refunds_by_order
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|no| inner.refunds.get(&(mch_id.to_owned(), no.clone())))
            .cloned()
            .collect()
    }
}
