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

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cashdesk_crypto::wxv2::WxSignType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::journal::Journal;

/// The default of [`crate::SandboxConfig::max_orders`].
pub const DEFAULT_MAX_ORDERS: usize = 100_000;

/// Buffered journal lines reach the OS at least this often.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Lines beyond twice the live records that trigger a compaction.
const COMPACT_SLACK: u64 = 10_000;

/// Which API created an order or refund: decides the notification format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V2(WxSignType),
    V3,
    /// Alipay OpenAPI (`gateway.do`).
    Alipay,
    /// Lakala open platform v3.
    Lakala,
}

impl Api {
    fn as_str(self) -> &'static str {
        match self {
            Self::V2(WxSignType::Md5) => "V2:MD5",
            Self::V2(WxSignType::HmacSha256) => "V2:HMAC-SHA256",
            Self::V3 => "V3",
            Self::Alipay => "ALIPAY",
            Self::Lakala => "LAKALA",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "V3" => Some(Self::V3),
            "ALIPAY" => Some(Self::Alipay),
            "LAKALA" => Some(Self::Lakala),
            _ => s
                .strip_prefix("V2:")
                .and_then(WxSignType::parse)
                .map(Self::V2),
        }
    }

    /// The cashdesk `channelType` this API belongs to.
    pub fn channel_type(self) -> &'static str {
        match self {
            Self::V2(_) | Self::V3 => "wx-pay",
            Self::Alipay => "ali-pay",
            Self::Lakala => "lakala",
        }
    }

    /// Alipay and Lakala number a trade when it is created (`trade_no`,
    /// kept in [`Order::prepay_id`]) and keep that number once it is paid;
    /// WeChat assigns its `transaction_id` at payment.
    fn numbers_trade_at_creation(self) -> bool {
        matches!(self, Self::Alipay | Self::Lakala)
    }
}

impl Serialize for Api {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Api {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Api::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown api `{s}`")))
    }
}

/// Channel-specific facts of an order that the shared rules do not need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderExt {
    #[default]
    None,
    Alipay(AlipayOrder),
    Lakala(LakalaOrder),
    /// A WeChat service provider's order for a sub-merchant: the order is
    /// in the sub-merchant's book (`Order::mch_id`), `Order::appid` is the
    /// service provider's AppID.
    WechatPartner(PartnerOrder),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerOrder {
    /// The service provider (it signs every call and notification).
    pub sp_mch_id: String,
    /// `sub_appid` when the order was made with the sub-merchant's AppID.
    pub sub_app_id: Option<String>,
    /// The payer under `sub_appid` (`sub_openid`), when given.
    pub sub_openid: Option<String>,
}

impl Order {
    /// The service-provider part of a partner order.
    pub fn partner(&self) -> Option<&PartnerOrder> {
        match &self.ext {
            OrderExt::WechatPartner(p) => Some(p),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlipayOrder {
    /// `alipay.trade.create`, `…wap.pay`, `…page.pay`, `…precreate`, `…app.pay`.
    pub method: String,
    pub product_code: String,
    /// The app's pid (`seller_id` in notifications).
    pub seller_id: String,
    pub buyer_open_id: Option<String>,
    pub return_url: Option<String>,
    pub passback_params: Option<String>,
    pub body: Option<String>,
    pub app_auth_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LakalaOrder {
    /// The Lakala `appid` that placed the order (its merchant record).
    pub app_id: String,
    pub term_no: String,
    /// WECHAT, ALIPAY, UQRCODEPAY.
    pub account_type: String,
    /// 41, 51, 71, 81.
    pub trans_type: String,
    /// Lakala's reconciliation number (`log_no`, 14 digits).
    pub log_no: String,
    /// The wallet's own transaction number, revealed once paid.
    pub acc_trade_no: String,
    pub sub_appid: Option<String>,
    pub remark: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeType {
    Jsapi,
    Native,
    App,
    Mweb,
}

impl TradeType {
    pub fn parse_v2(s: &str) -> Option<Self> {
        match s {
            "JSAPI" => Some(Self::Jsapi),
            "NATIVE" => Some(Self::Native),
            "APP" => Some(Self::App),
            "MWEB" => Some(Self::Mweb),
            _ => None,
        }
    }
    /// The `trade_type` value (v3 uses the same names, h5 being `MWEB`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jsapi => "JSAPI",
            Self::Native => "NATIVE",
            Self::App => "APP",
            Self::Mweb => "MWEB",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayState {
    NotPay,
    Success {
        transaction_id: String,
        paid_at: DateTime<Utc>,
        openid: String,
    },
    Closed,
    PayError,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub mch_id: String,
    pub appid: String,
    pub out_trade_no: String,
    pub api: Api,
    pub trade_type: TradeType,
    pub description: String,
    pub total: i64,
    pub openid: Option<String>,
    pub attach: Option<String>,
    pub notify_url: String,
    pub prepay_id: String,
    pub created_at: DateTime<Utc>,
    pub expire_at: Option<DateTime<Utc>>,
    pub state: PayState,
    /// Sum of refunds accepted so far (fen).
    pub refunded: i64,
    /// The parameters that must match when the same out_trade_no comes again.
    pub fingerprint: String,
    /// Alipay / Lakala specifics (`OrderExt::None` for WeChat).
    pub ext: OrderExt,
}

impl Order {
    /// WeChat's `trade_state` now: SUCCESS, REFUND, NOTPAY, CLOSED, PAYERROR.
    pub fn trade_state(&self, now: DateTime<Utc>) -> &'static str {
        match &self.state {
            PayState::Success { .. } if self.refunded > 0 => "REFUND",
            PayState::Success { .. } => "SUCCESS",
            PayState::NotPay if self.expired(now) => "CLOSED",
            PayState::NotPay => "NOTPAY",
            PayState::Closed => "CLOSED",
            PayState::PayError => "PAYERROR",
        }
    }

    pub fn trade_state_desc(&self, now: DateTime<Utc>) -> &'static str {
        match self.trade_state(now) {
            "SUCCESS" => "支付成功",
            "REFUND" => "转入退款",
            "NOTPAY" => "未支付",
            "CLOSED" => "已关闭",
            _ => "支付失败",
        }
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expire_at.is_some_and(|t| t <= now)
    }

    pub fn paid(&self) -> Option<(&str, DateTime<Utc>, &str)> {
        match &self.state {
            PayState::Success {
                transaction_id,
                paid_at,
                openid,
            } => Some((transaction_id, *paid_at, openid)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundStatus {
    Processing,
    Success,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refund {
    pub mch_id: String,
    pub out_refund_no: String,
    pub refund_id: String,
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount: i64,
    pub total: i64,
    pub reason: Option<String>,
    pub notify_url: Option<String>,
    pub api: Api,
    pub status: RefundStatus,
    pub created_at: DateTime<Utc>,
    pub success_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("order already paid")]
    OrderPaid,
    #[error("order closed")]
    OrderClosed,
    #[error("order does not exist")]
    OrderNotExist,
    #[error("out_trade_no reused with different parameters")]
    OutTradeNoUsed,
    #[error("order not in a refundable state")]
    TradeState,
    #[error("refund exceeds the refundable amount")]
    NotEnough,
    #[error("total does not match the order amount")]
    TotalMismatch,
    #[error("out_refund_no reused with different parameters")]
    RefundMismatch,
    #[error("refund does not exist")]
    RefundNotExist,
}

pub struct NewRefund {
    pub mch_id: String,
    /// Either an out_trade_no or a transaction_id identifies the order.
    pub order: OrderRef,
    pub out_refund_no: String,
    pub amount: i64,
    pub total: i64,
    pub reason: Option<String>,
    pub notify_url: Option<String>,
    pub api: Api,
}

pub enum OrderRef {
    OutTradeNo(String),
    TransactionId(String),
}

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

fn random_digits(n: usize) -> String {
    cashdesk_crypto::random::bytes(n)
        .into_iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// `wx` + yyyyMMddHHmmss + 20 hex characters (36, like WeChat's).
pub fn new_prepay_id(now: DateTime<Utc>) -> String {
    format!(
        "wx{}{}",
        cashdesk_core::time::to_compact(now),
        hex::encode(cashdesk_crypto::random::bytes(10))
    )
}

/// 28 digits, like WeChat's transaction ids.
fn new_transaction_id(now: DateTime<Utc>) -> String {
    format!(
        "420000{}{}",
        &cashdesk_core::time::to_compact(now)[..8],
        random_digits(14)
    )
}

/// 29 digits, like WeChat's refund ids.
fn new_refund_id(now: DateTime<Utc>) -> String {
    format!(
        "50300{}{}",
        &cashdesk_core::time::to_compact(now)[..8],
        random_digits(16)
    )
}

/// A sandbox payer's openid (28 characters).
pub fn new_openid() -> String {
    format!("oSBX{}", cashdesk_crypto::random::nonce_str(24))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn order(no: &str, fp: &str) -> Order {
        let now = Utc::now();
        Order {
            mch_id: "1900000001".into(),
            appid: "wx1".into(),
            out_trade_no: no.into(),
            api: Api::V3,
            trade_type: TradeType::Native,
            description: "d".into(),
            total: 100,
            openid: None,
            attach: None,
            notify_url: "http://x/n".into(),
            prepay_id: new_prepay_id(now),
            created_at: now,
            expire_at: None,
            state: PayState::NotPay,
            refunded: 0,
            fingerprint: fp.into(),
            ext: OrderExt::None,
        }
    }

    fn refund(no: &str, amount: i64) -> NewRefund {
        NewRefund {
            mch_id: "1900000001".into(),
            order: OrderRef::OutTradeNo("o1".into()),
            out_refund_no: no.into(),
            amount,
            total: 100,
            reason: None,
            notify_url: None,
            api: Api::V3,
        }
    }

    #[test]
    fn order_rules() {
        let l = Ledger::default();
        let now = Utc::now();
        let first = l.create_order(order("o1", "a"), now).unwrap();
        assert_eq!(
            l.create_order(order("o1", "a"), now).unwrap().prepay_id,
            first.prepay_id
        );
        assert_eq!(
            l.create_order(order("o1", "b"), now).unwrap_err(),
            LedgerError::OutTradeNoUsed
        );
        assert_eq!(
            l.refund(refund("r0", 1), now).unwrap_err(),
            LedgerError::TradeState
        );
        l.pay("1900000001", "o1", true, None, now).unwrap();
        assert_eq!(
            l.create_order(order("o1", "a"), now).unwrap_err(),
            LedgerError::OrderPaid
        );
        assert_eq!(
            l.pay("1900000001", "o1", true, None, now).unwrap_err(),
            LedgerError::OrderPaid
        );
        assert_eq!(
            l.close("1900000001", "o1", now).unwrap_err(),
            LedgerError::OrderPaid
        );

        let (r1, o, new) = l.refund(refund("r1", 60), now).unwrap();
        assert!(new);
        assert_eq!(o.refunded, 60);
        assert_eq!(o.trade_state(now), "REFUND");
        let (again, _, new) = l.refund(refund("r1", 60), now).unwrap();
        assert!(!new);
        assert_eq!(again.refund_id, r1.refund_id);
        assert_eq!(
            l.refund(refund("r1", 50), now).unwrap_err(),
            LedgerError::RefundMismatch
        );
        assert_eq!(
            l.refund(refund("r2", 41), now).unwrap_err(),
            LedgerError::NotEnough
        );
        let mut wrong_total = refund("r2", 1);
        wrong_total.total = 99;
        assert_eq!(
            l.refund(wrong_total, now).unwrap_err(),
            LedgerError::TotalMismatch
        );
        l.refund(refund("r2", 40), now).unwrap();
        assert_eq!(
            l.refund(refund("r3", 1), now).unwrap_err(),
            LedgerError::NotEnough
        );
        assert_eq!(l.refunds_of("1900000001", "o1").len(), 2);
    }

    #[test]
    fn close_and_expiry() {
        let l = Ledger::default();
        let now = Utc::now();
        l.create_order(order("o2", "a"), now).unwrap();
        l.close("1900000001", "o2", now).unwrap();
        assert_eq!(
            l.close("1900000001", "o2", now).unwrap_err(),
            LedgerError::OrderClosed
        );
        assert_eq!(
            l.pay("1900000001", "o2", true, None, now).unwrap_err(),
            LedgerError::OrderClosed
        );
        let mut o = order("o3", "a");
        o.expire_at = Some(now - chrono::Duration::seconds(1));
        l.create_order(o, now - chrono::Duration::seconds(10))
            .unwrap();
        assert_eq!(
            l.pay("1900000001", "o3", true, None, now).unwrap_err(),
            LedgerError::OrderClosed
        );
    }

    #[test]
    fn the_oldest_orders_go_at_the_cap_with_their_refunds() {
        let l = Ledger::in_memory(2);
        let now = Utc::now();
        l.create_order(order("o1", "a"), now).unwrap();
        let paid = l.pay("1900000001", "o1", true, None, now).unwrap();
        l.refund(refund("r1", 10), now).unwrap();
        l.create_order(order("o2", "a"), now).unwrap();
        assert_eq!(l.order_count(), 2);
        l.create_order(order("o3", "a"), now).unwrap();
        assert_eq!(l.order_count(), 2);
        let mch = "1900000001";
        assert!(l.find(mch, &OrderRef::OutTradeNo("o1".into())).is_none());
        let (transaction_id, _, _) = paid.paid().unwrap();
        assert!(
            l.find(mch, &OrderRef::TransactionId(transaction_id.to_owned()))
                .is_none()
        );
        assert!(l.find_refund(mch, "r1").is_none());
        assert!(l.find_any("o1").is_empty());
        assert_eq!(l.find_any("o3").len(), 1);
        assert!(l.find_by_prepay(&paid.prepay_id).is_none());
    }

    #[test]
    fn the_book_is_replayed_from_its_journal_and_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let mch = "1900000001";
        {
            let (l, processing) = Ledger::open(dir.path(), 100).unwrap();
            assert!(processing.is_empty());
            l.create_order(order("o1", "a"), now).unwrap();
            l.pay(mch, "o1", true, None, now).unwrap();
            l.refund(refund("r1", 10), now).unwrap();
            l.refund(refund("r2", 20), now).unwrap();
            l.complete_refund(mch, "r1", now).unwrap();
            l.create_order(order("o2", "a"), now).unwrap();
            l.close(mch, "o2", now).unwrap();
            l.flush();
        }
        let (l, processing) = Ledger::open(dir.path(), 100).unwrap();
        let o1 = l.find(mch, &OrderRef::OutTradeNo("o1".into())).unwrap();
        assert_eq!((o1.trade_state(now), o1.refunded), ("REFUND", 30));
        assert_eq!(
            l.find_refund(mch, "r1").unwrap().status,
            RefundStatus::Success
        );
        assert_eq!(
            processing
                .iter()
                .map(|r| r.out_refund_no.as_str())
                .collect::<Vec<_>>(),
            ["r2"]
        );
        let o2 = l.find(mch, &OrderRef::OutTradeNo("o2".into())).unwrap();
        assert_eq!(o2.trade_state(now), "CLOSED");
        assert_eq!(l.refunds_of(mch, "o1").len(), 2);
        // Rules still hold after the replay.
        assert_eq!(
            l.refund(refund("r3", 71), now).unwrap_err(),
            LedgerError::NotEnough
        );
        // A smaller cap replays the newest orders only.
        drop(l);
        let (l, _) = Ledger::open(dir.path(), 1).unwrap();
        assert!(l.find(mch, &OrderRef::OutTradeNo("o1".into())).is_none());
        assert!(l.find(mch, &OrderRef::OutTradeNo("o2".into())).is_some());
        assert!(l.find_refund(mch, "r1").is_none());
    }

    #[test]
    fn a_growing_journal_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let (l, _) = Ledger::open(dir.path(), 10).unwrap();
        for i in 0..(COMPACT_SLACK as usize + 100) {
            l.create_order(order(&format!("o{i}"), "a"), now).unwrap();
        }
        l.flush();
        let lines = std::fs::read_to_string(dir.path().join("ledger.jsonl"))
            .unwrap()
            .lines()
            .count() as u64;
        assert!(lines <= 2 * 10 + COMPACT_SLACK, "{lines}");
        assert_eq!(l.order_count(), 10);
    }
}
