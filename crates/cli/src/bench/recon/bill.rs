//! The day's WeChat Pay trade bill as the channel serves it with
//! `bill_type=ALL&tar_type=GZIP` (PROTOCOLS-2 §1.1.1): a UTF-8 byte order
//! mark, the 27-column detail header, one row per line with every field
//! prefixed by a backtick, the 7-column summary header and its row, every
//! line ending `\r\n`, gzipped; and the SHA-1 of the uncompressed text, as
//! the v3 download states it. Columns, fee rule and amounts are the
//! sandbox's ([`cashdesk_sandbox::v3::billtext`]), which cashdesk's reader
//! is tested against; the rows are streamed from the [`Book`] into the
//! file, never held.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;
use cashdesk_sandbox::bills::{fee_fen, yuan, yuan5};
use cashdesk_sandbox::v3::billtext::{ALL, RATE, SUMMARY};
use sha1::{Digest as _, Sha1};

use super::book::Book;

/// Who the bill is for.
pub(super) struct Merchant<'a> {
    /// 商户号.
    pub(super) mch_id: &'a str,
    /// 公众账号ID (the merchant's official account / mini program).
    pub(super) app_id: &'a str,
}

/// What was written.
pub(super) struct Written {
    /// Lowercase hex SHA-1 of the uncompressed text.
    pub(super) sha1: String,
    /// Bytes on disk (gzip) and of the text.
    pub(super) size: u64,
    pub(super) text_size: u64,
    pub(super) lines: u64,
}

/// One bill row's values.
struct Row<'a> {
    at: &'a str,
    transaction_id: &'a str,
    out_trade_no: &'a str,
    amount: i64,
}

/// Hashes and counts the text on its way to the compressor.
struct Tee<W: Write> {
    inner: W,
    sha1: Sha1,
    bytes: u64,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha1.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the bill of `book` to `path` (gzip).
pub(super) fn write(path: &Path, book: &Book, merchant: &Merchant<'_>) -> anyhow::Result<Written> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let gz = flate2::write::GzEncoder::new(
        BufWriter::with_capacity(256 * 1024, file),
        flate2::Compression::default(),
    );
    let mut out = BufWriter::with_capacity(
        256 * 1024,
        Tee {
            inner: gz,
            sha1: Sha1::new(),
            bytes: 0,
        },
    );
    out.write_all("\u{feff}".as_bytes())?;
    out.write_all(ALL.join(",").as_bytes())?;
    out.write_all(b"\r\n")?;
    let (mut lines, mut paid, mut fees) = (0u64, 0i64, 0i64);
    let mut buf = String::with_capacity(512);
    let mut emit = |out: &mut dyn Write, row: &Row<'_>| -> anyhow::Result<()> {
        buf.clear();
        push_row(&mut buf, row, merchant);
        out.write_all(buf.as_bytes())?;
        lines += 1;
        paid += row.amount;
        fees += fee_fen(row.amount);
        Ok(())
    };
    for i in 0..book.n {
        let at = cashdesk_core::time::to_cn_datetime(book.pay_time(i));
        if !book.local_only(i) {
            let (order_id, transaction_id) = (book.order_id(i), book.transaction_id(i));
            let row = Row {
                at: &at,
                transaction_id: &transaction_id,
                out_trade_no: &order_id,
                amount: book.bill_amount(i),
            };
            emit(&mut out, &row)?;
        }
        if let Some((order_id, transaction_id, amount)) = book.stranger_after(i) {
            let row = Row {
                at: &at,
                transaction_id: &transaction_id,
                out_trade_no: &order_id,
                amount,
            };
            emit(&mut out, &row)?;
        }
    }
    out.write_all(SUMMARY.join(",").as_bytes())?;
    out.write_all(b"\r\n")?;
    let summary: Vec<String> = SUMMARY
        .iter()
        .map(|h| match *h {
            "总交易单数" => lines.to_string(),
            "应结订单总金额" | "订单总金额" => yuan(paid),
            "手续费总金额" => yuan5(fees),
            _ => "0.00".to_owned(),
        })
        .map(|v| format!("`{v}"))
        .collect();
    out.write_all(summary.join(",").as_bytes())?;
    out.write_all(b"\r\n")?;
    let tee = out.into_inner().map_err(|e| e.into_error())?;
    let text_size = tee.bytes;
    let sha1 = hex::encode(tee.sha1.finalize());
    let file = tee
        .inner
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    // On disk before the run (see `Setup::insert_orders`).
    file.sync_all()?;
    let size = file.metadata()?.len();
    Ok(Written {
        sha1,
        size,
        text_size,
        lines,
    })
}

/// One detail row of the ALL layout, column by column as the header names
/// them (a payment: 交易状态 `SUCCESS`, refund columns `0` or empty).
fn push_row(buf: &mut String, row: &Row<'_>, merchant: &Merchant<'_>) {
    for (k, column) in ALL.iter().enumerate() {
        if k > 0 {
            buf.push(',');
        }
        buf.push('`');
        let _ = match *column {
            "交易时间" => write!(buf, "{}", row.at),
            "公众账号ID" => write!(buf, "{}", merchant.app_id),
            "商户号" => write!(buf, "{}", merchant.mch_id),
            "特约商户号" | "微信退款单号" | "商户退款单号" => write!(buf, "0"),
            "微信订单号" => write!(buf, "{}", row.transaction_id),
            "商户订单号" => write!(buf, "{}", row.out_trade_no),
            "用户标识" => write!(buf, "oBench{}", &row.transaction_id[18..]),
            "交易类型" => write!(buf, "JSAPI"),
            "交易状态" => write!(buf, "SUCCESS"),
            "付款银行" => write!(buf, "OTHERS"),
            "货币种类" => write!(buf, "CNY"),
            "应结订单金额" | "订单金额" => write!(buf, "{}", yuan(row.amount)),
            "代金券金额" | "退款金额" | "充值券退款金额" | "申请退款金额" => {
                write!(buf, "0.00")
            }
            "商品名称" => write!(buf, "bench order"),
            "手续费" => write!(buf, "{}", yuan5(fee_fen(row.amount))),
            "费率" => write!(buf, "{RATE}"),
            // 设备号, 退款类型, 退款状态, 商户数据包, 费率备注.
            _ => Ok(()),
        };
    }
    buf.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use cashdesk_channels::bill::{BillFile, BillFormat, Compression, read_bill};
    use chrono::NaiveDate;

    use super::*;

    /// The written file reads back with cashdesk's own reader: every line,
    /// its summary, its hash.
    #[test]
    fn the_bill_reads_back_with_the_engines_reader() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bill.csv.gz");
        let book = Book::new(
            200,
            NaiveDate::from_ymd_opt(2026, 12, 6).expect("a date"),
            1,
        );
        let merchant = Merchant {
            mch_id: "1900000109",
            app_id: "wx8888888888888888",
        };
        let written = write(&path, &book, &merchant).expect("written");
        assert_eq!(written.lines, 200);

        let mut text = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("open"))
            .read_to_end(&mut text)
            .expect("gunzip");
        assert!(text.starts_with("\u{feff}交易时间,".as_bytes()));
        assert!(text.ends_with(b"\r\n"));
        assert_eq!(text.len() as u64, written.text_size);
        let second = text.split(|b| *b == b'\n').nth(1).expect("a row");
        assert!(second.starts_with(b"`20"));

        let file = BillFile {
            format: BillFormat::WechatTrade,
            compression: Compression::Gzip,
            sha1: Some(written.sha1.clone()),
            size: written.size,
        };
        let mut records = Vec::new();
        let summary = read_bill(&file, std::fs::File::open(&path).expect("open"), |r| {
            records.push(r)
        })
        .expect("readable");
        assert_eq!(records.len(), 200);
        assert_eq!(summary.count, 200);
        let paid: i64 = records.iter().map(|r| r.amount.get()).sum();
        assert_eq!(summary.paid_total.get(), paid);
        assert_eq!(records[0].out_trade_no, book.order_id(0));
        assert_eq!(
            records[0].fee.as_deref(),
            Some(yuan5(fee_fen(book.amount(0))).as_str())
        );
        assert_eq!(records[0].sub_mch_id, None);
    }
}
