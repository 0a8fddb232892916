//! The reader against the published example (PROTOCOLS-2 §1.1.1), its
//! variants (BOM, CRLF, the legacy layout, refund lines, moved columns) and
//! broken files.

use super::*;
use crate::bill::{BillFile, BillFormat, Compression, read_bill};

/// The example of PROTOCOLS-2 §1.1.1, as published (`\n` endings).
const EXAMPLE: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注
`2021-01-28 17:07:11,`wx81be3101902f7cb2,`1601959334,`0,`,`4200000925202101284997714292,`S20210128170702357723,`ofyak5qR_1wYsC99CsWA6R9MJazA,`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`for testing,`cipher code,`0.00000,`1.00%,`0.01,`0.00,`
`2021-01-28 15:35:18,`wx81be3101902f7cb2,`1601959334,`0,`,`4200000910202101282955148400,`S20210128153505214586,`ofyak5qR_1wYsC99CsWA6R9MJazA,`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`for testing,`cipher code,`0.00000,`1.00%,`0.01,`0.00,`
`2021-01-28 16:59:46,`wx81be3101902f7cb2,`1601959334,`0,`,`4200000926202101281412639609,`S20210128165824499930,`ofyak5qR_1wYsC99CsWA6R9MJazA,`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`for testing,`cipher code,`0.00000,`1.00%,`0.01,`0.00,`
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额
`3,`0.03,`0.00,`0.00,`0.00000,`0.03,`0.00
";

fn read(text: &str) -> Result<(Vec<BillRecord>, BillSummary), BillError> {
    let mut records = Vec::new();
    let summary = read_trade_bill(text.as_bytes(), |r| records.push(r))?;
    Ok((records, summary))
}

fn fen(v: i64) -> Fen {
    Fen::from_stored(v)
}

#[test]
fn the_published_example_reads_as_three_payments() {
    let (records, summary) = read(EXAMPLE).expect("the example is a bill");
    assert_eq!(records.len(), 3);
    let first = &records[0];
    assert_eq!(first.kind, RecordKind::Payment);
    assert_eq!(first.out_trade_no, "S20210128170702357723");
    assert_eq!(first.transaction_id, "4200000925202101284997714292");
    assert_eq!(first.mch_id, "1601959334");
    assert_eq!(first.sub_mch_id, None, "特约商户号 0 is none");
    assert_eq!(first.amount, fen(1));
    assert_eq!(first.state, "SUCCESS");
    assert_eq!(first.out_refund_no, None);
    assert_eq!(first.channel_refund_id, None);
    assert_eq!(
        first.at,
        parse_cn_datetime("2021-01-28 17:07:11").expect("a time")
    );
    assert_eq!(
        summary,
        BillSummary {
            count: 3,
            paid_total: fen(3),
            refund_total: fen(0),
        }
    );
}

#[test]
fn a_byte_order_mark_and_crlf_endings_change_nothing() {
    let crlf = format!("\u{feff}{}", EXAMPLE.replace('\n', "\r\n"));
    assert_eq!(read(&crlf), read(EXAMPLE));
}

#[test]
fn a_refund_line_is_a_refund_of_its_order() {
    let refund = "`2021-01-29 10:00:00,`wx81be3101902f7cb2,`1601959334,`1900000109,`,`4200000925202101284997714292,`S20210128170702357723,`ofyak5qR_1wYsC99CsWA6R9MJazA,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000102021012900000000001,`R20210129000001,`0.01,`0.00,`ORIGINAL,`SUCCESS,`for testing,`cipher code,`-0.00006,`0.60%,`0.00,`0.01,`";
    let text = EXAMPLE.replacen("\n总交易单数", &format!("\n{refund}\n总交易单数"), 1);
    let (records, _) = read(&text).expect("a bill with a refund");
    let r = &records[3];
    assert_eq!(r.kind, RecordKind::Refund);
    assert_eq!(
        r.out_trade_no, "S20210128170702357723",
        "the original order"
    );
    assert_eq!(r.out_refund_no.as_deref(), Some("R20210129000001"));
    assert_eq!(
        r.channel_refund_id.as_deref(),
        Some("50300000102021012900000000001")
    );
    assert_eq!(r.amount, fen(1), "退款金额, not the settled 0.00");
    assert_eq!(r.state, "SUCCESS");
    assert_eq!(r.sub_mch_id.as_deref(), Some("1900000109"));
}

#[test]
fn the_legacy_layout_is_read_by_its_own_names() {
    let text = "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率
`2017-03-01 09:00:00,`wx2421b1c4370ec43b,`10000100,`0,`,`1004400740201409030005092168,`P01TEST0000000000000000001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`CFT,`CNY,`12.34,`0.00,`0,`0,`0.00,`0.00,`,`,`tea,`,`0.07404,`0.60%
总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额
`1,`12.34,`0.00,`0.00,`0.07404
";
    let (records, summary) = read(text).expect("a legacy bill");
    assert_eq!(records[0].amount, fen(1234));
    assert_eq!(records[0].out_trade_no, "P01TEST0000000000000000001");
    assert_eq!(
        (summary.count, summary.paid_total, summary.refund_total),
        (1, fen(1234), fen(0))
    );
}

#[test]
fn a_column_can_move() {
    // 微信订单号 and 商户订单号 swapped in the header and the detail rows.
    let text: String = EXAMPLE
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut f: Vec<&str> = line.split(',').collect();
            if i < 4 {
                f.swap(5, 6);
            }
            f.join(",") + "\n"
        })
        .collect();
    assert_ne!(text, EXAMPLE);
    assert_eq!(read(&text), read(EXAMPLE));
}

#[test]
fn broken_bills_name_the_line_and_the_fault() {
    let without_summary_row: String = EXAMPLE.lines().take(5).map(|l| format!("{l}\n")).collect();
    let cases: Vec<(String, usize, &str)> = vec![
        (String::new(), 0, "without its summary"),
        (without_summary_row, 0, "without its summary"),
        (
            EXAMPLE.replace("商户订单号", "订单"),
            1,
            "no column 商户订单号",
        ),
        (
            EXAMPLE.replacen(",`NATIVE", "", 1),
            2,
            "26 fields where the header has 27",
        ),
        (
            EXAMPLE.replacen("`CNY,`0.01,", "`CNY,`0.001,", 1),
            2,
            "应结订单金额",
        ),
        (
            EXAMPLE.replacen("2021-01-28 17:07:11", "28/01/2021", 1),
            2,
            "交易时间",
        ),
        (format!("{EXAMPLE}`4,`0.04\n"), 7, "after the summary"),
        (
            EXAMPLE.replacen("交易时间", "时间", 1),
            1,
            "starts with the header",
        ),
    ];
    for (text, line, words) in cases {
        let err = read(&text).expect_err(words);
        assert_eq!(err.line, line, "{err}");
        assert!(err.to_string().contains(words), "{err} lacks {words}");
    }
}

#[test]
fn records_are_handed_out_as_they_are_read() {
    // A stream that breaks after the header and the first row: that row's
    // record was handed out already; the failure names the next line.
    struct Breaking<'a>(&'a [u8]);
    impl std::io::Read for Breaking<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let two_lines: String = EXAMPLE.lines().take(2).map(|l| format!("{l}\n")).collect();
    let mut seen = Vec::new();
    let err = read_trade_bill(
        std::io::BufReader::new(Breaking(two_lines.as_bytes())),
        |r| seen.push(r.out_trade_no),
    )
    .expect_err("the stream broke");
    assert_eq!(seen, ["S20210128170702357723"]);
    assert_eq!(err.line, 3);
    assert!(err.to_string().contains("connection reset"), "{err}");
}

/// The published example as served: gzip (or plain) with WeChat's SHA-1 of
/// the text.
fn served(compression: Compression, sha1: &str) -> (BillFile, Vec<u8>) {
    let bytes = match compression {
        Compression::Gzip => {
            use std::io::Write as _;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(EXAMPLE.as_bytes()).expect("gzip");
            enc.finish().expect("gzip")
        }
        _ => EXAMPLE.as_bytes().to_vec(),
    };
    let file = BillFile {
        format: BillFormat::WechatTrade,
        compression,
        sha1: Some(sha1.to_owned()),
        size: bytes.len() as u64,
    };
    (file, bytes)
}

/// PROTOCOLS-2 §1.1.1's vector: the SHA-1 of the example's 1347 bytes.
const EXAMPLE_SHA1: &str = "b18b51eb64422040e5ad738d47b358a40b1a7997";

#[test]
fn the_hash_vector_holds_for_plain_and_gzip_and_any_case() {
    assert_eq!(EXAMPLE.len(), 1347);
    for (compression, sha1) in [
        (Compression::Plain, EXAMPLE_SHA1.to_owned()),
        (Compression::Gzip, EXAMPLE_SHA1.to_ascii_uppercase()),
    ] {
        let (file, bytes) = served(compression, &sha1);
        let mut n = 0;
        let summary = read_bill(&file, std::io::Cursor::new(bytes), |_| n += 1).expect("reads");
        assert_eq!((n, summary.count), (3, 3));
    }
}

#[test]
fn a_wrong_hash_or_a_broken_gzip_hands_out_no_record() {
    let wrong = "0".repeat(40);
    let (file, bytes) = served(Compression::Gzip, &wrong);
    let mut n = 0;
    let err = read_bill(&file, std::io::Cursor::new(bytes), |_| n += 1).expect_err("wrong hash");
    assert!(err.message.contains("SHA-1"), "{err}");
    assert_eq!(n, 0);

    let (file, bytes) = served(Compression::Gzip, EXAMPLE_SHA1);
    let truncated = bytes[..bytes.len() / 2].to_vec();
    let err = read_bill(&file, std::io::Cursor::new(truncated), |_| n += 1).expect_err("truncated");
    assert_eq!(err.line, 0, "{err}");
    assert_eq!(n, 0);

    let garbage = b"not gzip at all".to_vec();
    assert!(read_bill(&file, std::io::Cursor::new(garbage), |_| n += 1).is_err());
    assert_eq!(n, 0);
}

/// A day's totals may pass the 100 million yuan one payment may be (a
/// million payments of 500 yuan); they are still read exactly.
#[test]
fn summary_totals_above_a_payments_cap_are_read_exactly() {
    let big = EXAMPLE.replace("`3,`0.03,`0.00,", "`3,`500000158.75,`0.00,");
    let (_, summary) = read(&big).expect("a bill");
    assert_eq!(summary.paid_total, fen(50_000_015_875));
    let total = crate::bill::total_from_yuan;
    assert_eq!(
        total("999999999999999.99"),
        Some(fen(99_999_999_999_999_999))
    );
    assert_eq!(total("12"), Some(fen(1200)));
    assert_eq!(total("12.3"), Some(fen(1230)));
    for bad in [
        "",
        "12.",
        ".5",
        "1.234",
        "-1.00",
        "+1",
        "1e3",
        " 1",
        "1000000000000000",
    ] {
        assert_eq!(total(bad), None, "{bad:?}");
    }
    let garbage = EXAMPLE.replace("`3,`0.03,`0.00,", "`3,`0.031,`0.00,");
    let e = read(&garbage).expect_err("three decimals");
    assert!(e.message.contains("应结订单总金额"), "{e}");
}
