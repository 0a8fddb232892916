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
//! the same trade-bill text ([`wechat`]); Alipay serves a zip of GBK CSV
//! files ([`alipay`]), read straight from the zip (its members' CRC-32 is
//! the integrity check there, as the SHA-1 is WeChat's).
//!
//! Fetching: [`crate::Channel::download_bill`] writes the file as the
//! channel serves it (gzip, zip or plain) into a sink the caller owns
//! (a file in the data folder) and says what it wrote ([`BillFile`]); the
//! caller keeps that file, so a rerun needs no channel, and reads it with
//! [`read_bill`], which checks the channel's hash before it hands out the
//! first record.

pub mod alipay;
pub mod wechat;

use std::io::{BufReader, Read, Seek, SeekFrom};

use cashdesk_core::Fen;
use chrono::{DateTime, NaiveDate, Utc};
use sha1::{Digest, Sha1};

use crate::channel::StoreMerchant;

/// The largest bill file a download writes (as served, compressed): far
/// above a day of a busy merchant (a million lines gzip to ~60 MB).
pub const MAX_BILL_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The bill of one day at one channel config.
#[derive(Debug, Clone)]
pub struct BillRequest {
    /// The day, in the channel's own time zone (China Standard Time).
    pub date: NaiveDate,
    /// A store's identity at this config (a WeChat sub-merchant): that
    /// merchant's bill; `None`: the config's own account.
    pub store: Option<StoreMerchant>,
}

/// What the channel answered for a day's bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillDownload {
    /// The channel has no bill because nothing happened that day (WeChat
    /// `NO_STATEMENT_EXIST` / `20002`, Alipay without business data): a
    /// normal, empty day.
    Empty,
    /// The bill is not ready yet (WeChat `STATEMENT_CREATING`, or asked
    /// before the channel publishes it): ask again later. The text is the
    /// channel's.
    NotReady(String),
    /// The file was written to the sink.
    Written(BillFile),
    /// This channel serves no bill file (Lakala): reconcile the day by
    /// querying each of its trades instead.
    NoFile,
}

/// A bill file as written to the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillFile {
    pub format: BillFormat,
    pub compression: Compression,
    /// The channel's SHA-1 of the uncompressed text (lowercase hex), when
    /// it states one (WeChat v3).
    pub sha1: Option<String>,
    /// Bytes written to the sink.
    pub size: u64,
}

/// Which reader a bill file needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillFormat {
    /// WeChat Pay's trade bill text (v2 and v3), [`wechat::read_trade_bill`].
    WechatTrade,
    /// Alipay's trade bill (`bill_type=trade`): a zip of GBK CSV files,
    /// [`alipay::read_trade_zip`].
    AlipayTrade,
}

impl BillFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WechatTrade => "wechat-trade",
            Self::AlipayTrade => "alipay-trade",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::WechatTrade, Self::AlipayTrade]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// How the file's bytes are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Plain,
    Gzip,
    /// A zip archive of several files (Alipay): the format's reader picks
    /// its members by name, so [`read_bill`] hands it the file itself.
    Zip,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Gzip => "gzip",
            Self::Zip => "zip",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Plain, Self::Gzip, Self::Zip]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

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
    /// The channel's fee on this line in yuan as the bill writes it (WeChat
    /// gives 5 decimals, `0.00600`; negative on a refund), and its rate
    /// (`0.60%`), when the bill has them.
    pub fee: Option<String>,
    pub rate: Option<String>,
}

/// The totals a bill states about itself (for a check of the records read:
/// each total is comparable with the sum of the records' amounts of its
/// kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillSummary {
    /// The channel's count of lines (WeChat `总交易单数`; Alipay the
    /// footer's trade and refund counts together).
    pub count: u64,
    /// Money in (WeChat `应结订单总金额`; Alipay see [`alipay`]).
    pub paid_total: Fen,
    /// Money back (WeChat `退款总金额`; Alipay `商家实收退款`).
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

/// Reads a bill file written by [`crate::Channel::download_bill`]: undoes
/// its compression, checks the channel's hash over the whole text first
/// (a file that fails it hands out no record at all), then reads it with
/// the format's reader, record by record. A zip goes to its format's reader
/// as it is (the reader picks the members it needs and checks their CRC-32
/// before it hands out a record); a SHA-1 of "the text" means nothing for
/// a zip of several texts and is refused.
pub fn read_bill<R: Read + Seek>(
    file: &BillFile,
    mut src: R,
    on_record: impl FnMut(BillRecord),
) -> Result<BillSummary, BillError> {
    match (file.format, file.compression) {
        (BillFormat::AlipayTrade, Compression::Zip) => {
            if file.sha1.is_some() {
                return Err(BillError::new(
                    0,
                    "a SHA-1 is stated for a zip bill, which has no single text to hash",
                ));
            }
            return alipay::read_trade_zip(src, on_record);
        }
        (BillFormat::WechatTrade, Compression::Plain | Compression::Gzip) => {}
        (format, compression) => {
            return Err(BillError::new(
                0,
                format!(
                    "a {} bill is not served {}",
                    format.as_str(),
                    compression.as_str()
                ),
            ));
        }
    }
    if let Some(expected) = &file.sha1 {
        let mut hasher = HashingSink(Sha1::new());
        std::io::copy(&mut unpack(file.compression, &mut src), &mut hasher)
            .map_err(|e| BillError::new(0, format!("the file cannot be unpacked: {e}")))?;
        let actual = hex(&hasher.0.finalize());
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(BillError::new(
                0,
                format!("SHA-1 of the bill is {actual}, the channel stated {expected}"),
            ));
        }
        src.seek(SeekFrom::Start(0))
            .map_err(|e| BillError::new(0, format!("the file cannot be read again: {e}")))?;
    }
    let text = BufReader::with_capacity(64 * 1024, unpack(file.compression, src));
    wechat::read_trade_bill(text, on_record)
}

/// A stream of the file's text (`Plain` and `Gzip` only: a zip is read by
/// its format's reader, see [`read_bill`]).
fn unpack<'a, R: Read + 'a>(compression: Compression, src: R) -> Box<dyn Read + 'a> {
    match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(src)),
        Compression::Plain | Compression::Zip => Box::new(src),
    }
}

/// A bill's total in yuan (`"500000158.75"`), exactly, in fen: the
/// grammar of [`Fen::from_yuan`] (digits, at most two decimals, no sign)
/// without its cap of 100 million yuan, which is the most one payment may
/// be while a busy merchant's day passes it. Up to 15 integer digits,
/// far from `i64` overflow.
pub(crate) fn total_from_yuan(s: &str) -> Option<Fen> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) if !f.is_empty() => (i, f),
        Some(_) => return None,
        None => (s, ""),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 15 || frac.len() > 2 || !digits(int) || !digits(frac) {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(Fen::from_stored(int.checked_mul(100)?.checked_add(frac)?))
}

struct HashingSink(Sha1);

impl std::io::Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl BillError {
    fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}
