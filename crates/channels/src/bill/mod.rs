//! Channel bills (对账单): what a channel says it moved on one day, one
//! record per payment or refund, read from the channel's file by column
//! name (never by position: the channels change their layouts) for
//! reconciliation against cashdesk's own book.
//!
//! The readers here are streaming: they take the decoded text line by line
//! ([`std::io::BufRead`]) and hand each record to the caller as it is read,
//! so a bill of any size needs no more memory than one line. Fetching the
//! file (and undoing its gzip or zip) is the adapters' part.
//!
//! Formats: `../shared/design/PROTOCOLS-2.md` §1. WeChat Pay v2 and v3 serve
//! the same trade-bill text ([`wechat`]).

pub mod wechat;

use cashdesk_core::Fen;
use chrono::{DateTime, Utc};

/// Whether a bill line is money in or money back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Payment,
    Refund,
}

/// One line of a channel's bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRecord {
    pub kind: RecordKind,
    /// When the channel booked it (a refund: when it accepted the refund).
    pub at: DateTime<Utc>,
    /// The merchant number the money went to, and the sub-merchant in
    /// service-provider mode.
    pub mch_id: String,
    pub sub_mch_id: Option<String>,
    /// The order as the channel knows it: its `out_trade_no` (cashdesk's
    /// orderId) and its own transaction id.
    pub out_trade_no: String,
    pub transaction_id: String,
    /// A refund's `out_refund_no` (cashdesk's refundId) and the channel's
    /// refund id.
    pub out_refund_no: Option<String>,
    pub channel_refund_id: Option<String>,
    /// A payment: what the buyer paid (settled amount); a refund: what was
    /// given back. Never negative.
    pub amount: Fen,
    /// The channel's own word for the line's state (`SUCCESS`, `REFUND`,
    /// `REVOKED`; for a refund its refund state, e.g. `SUCCESS` or
    /// `PROCESSING`).
    pub state: String,
}

/// The totals a bill states about itself (for a check of the records read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillSummary {
    /// The channel's count of lines (`总交易单数`).
    pub count: u64,
    /// Money in (`应结订单总金额`).
    pub paid_total: Fen,
    /// Money back (`退款总金额`).
    pub refund_total: Fen,
}

/// A bill that cannot be read: where and why. Nothing of it should be
/// trusted then (the reconciliation run keeps the file and retries or asks
/// an operator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bill line {line}: {message}")]
pub struct BillError {
    /// 1-based line number in the decoded text (0: the file as a whole).
    pub line: usize,
    pub message: String,
}

impl BillError {
    fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}
