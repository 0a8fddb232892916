//! The reader against the layout of PROTOCOLS-2 §1.3 (zip of GBK CSV
//! files with GBK member names and no UTF-8 flag), its variants (more
//! columns, CRLF, the old footer wording, no footer) and broken files.

use std::io::{Cursor, Write};

use super::*;
use crate::bill::{BillFile, BillFormat, Compression, read_bill};

const ACCOUNT: &str = "20887226827483540156";
const PID: &str = "2088722682748354";
const DETAIL: &str = "20887226827483540156_20260605_业务明细.csv";
const SUMMARY: &str = "20887226827483540156_20260605_业务明细(汇总).csv";

/// The 25-column header of PROTOCOLS-2 §1.3.
const HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";

/// Rows in that header's order, cells ending with a tab as Alipay writes
/// most of them: a payment, a payment with 2.00 of merchant discount, and
/// a refund of the first.
const ROWS: [&str; 3] = [
    "2026060522001400000000000001\t,P20260605000001\t,交易\t,咖啡\t,2026-06-05 10:00:00,2026-06-05 10:00:05,\t,\t,\t,\t,*三(138****0000)\t,35.80,35.80,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,-0.21,0.00,",
    "2026060522001400000000000002\t,P20260605000002\t,交易\t,茶\t,2026-06-05 11:00:00,2026-06-05 11:00:09,S01\t,一号店\t,\t,\t,*四(139****0000)\t,20.00,18.00,0.00,0.00,0.00,2.00,0.00,,0.00\t,0.00,\t,-0.11,0.00,备注",
    "2026060522001400000000000001\t,P20260605000001\t,退款\t,咖啡\t,2026-06-05 10:00:00,2026-06-05 15:30:00,\t,\t,\t,\t,*三(138****0000)\t,-10.00,-10.00,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,R20260605000001\t,0.06,0.00,",
];

fn dashes(n: usize) -> String {
    "-".repeat(n)
}

fn list_start() -> String {
    format!("#{}业务明细列表{}", dashes(41), dashes(40))
}

fn list_end() -> String {
    format!("#{}业务明细列表结束{}", dashes(41), dashes(36))
}

const FOOTER: [&str; 3] = [
    "#交易合计：2笔，商家实收共53.80元，商家优惠共2.00元",
    "#退款合计：1笔，商家实收退款共-10.00元，商家优惠退款共0.00元",
    "#导出时间：[2026年06月06日 06:27:10]",
];

/// The detail text of PROTOCOLS-2 §1.3 with `header`, `rows` and
/// `footer`, `\n` line endings.
fn detail_text(header: &str, rows: &[&str], footer: &[&str]) -> String {
    let mut lines = vec![
        "#支付宝业务明细查询".to_owned(),
        format!("#账号：[{ACCOUNT}]"),
        "#起始日期：[2026年06月05日 00:00:00]   终止日期：[2026年06月06日 00:00:00]".to_owned(),
        list_start(),
        header.to_owned(),
    ];
    lines.extend(rows.iter().map(|r| (*r).to_owned()));
    lines.push(list_end());
    lines.extend(footer.iter().map(|f| (*f).to_owned()));
    lines.join("\n") + "\n"
}

fn example() -> String {
    detail_text(HEADER, &ROWS, &FOOTER)
}

/// The 汇总 member: the same day as one store line and the `合计` row
/// (商家实收 net of the refund).
fn summary_text() -> String {
    [
        "#支付宝业务汇总查询".to_owned(),
        format!("#账号：[{ACCOUNT}]"),
        "#起始日期：[2026年06月05日 00:00:00]   终止日期：[2026年06月06日 00:00:00]".to_owned(),
        format!("#{}业务汇总列表{}", dashes(41), dashes(40)),
        "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）".to_owned(),
        "S01\t,一号店\t,1,0,20.00,18.00,0.00,2.00,0.00,-0.11,0.00,17.89".to_owned(),
        "\t,\t,1,1,25.80,25.80,0.00,0.00,0.00,-0.15,0.00,25.65".to_owned(),
        "合计\t,\t,2,1,45.80,43.80,0.00,2.00,0.00,-0.26,0.00,43.54".to_owned(),
        format!("#{}业务汇总列表结束{}", dashes(40), dashes(37)),
        "#导出时间：[2026年06月06日 06:27:10]".to_owned(),
    ]
    .join("\n")
        + "\n"
}

fn gbk(s: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(s);
    assert!(!unmappable, "test text is GBK");
    bytes.into_owned()
}

/// A zip as Alipay serves it: deflated members whose names are GBK bytes
/// without the UTF-8 flag. The `zip` crate writes names as UTF-8, so each
/// member is written under an ASCII stand-in of the same byte length
/// (which the crate leaves unflagged) and the name bytes are swapped for
/// the GBK ones afterwards, in the local header and the central directory
/// (no checksum covers them).
fn alipay_zip(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    zip_with(zip::CompressionMethod::Deflated, members)
}

fn zip_with(method: zip::CompressionMethod, members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    let mut swaps = Vec::new();
    for (i, (name, data)) in members.iter().enumerate() {
        let raw = gbk(name);
        let stand_in: String = std::iter::repeat_n(char::from(b'A' + i as u8), raw.len()).collect();
        w.start_file(stand_in.clone(), options).unwrap();
        w.write_all(data).unwrap();
        swaps.push((stand_in.into_bytes(), raw));
    }
    let mut bytes = w.finish().unwrap().into_inner();
    for (from, to) in swaps {
        let mut at = 0;
        let mut swapped = 0;
        while let Some(i) = bytes[at..].windows(from.len()).position(|w| w == from) {
            bytes[at + i..at + i + from.len()].copy_from_slice(&to);
            at += i + from.len();
            swapped += 1;
        }
        assert_eq!(
            swapped, 2,
            "the name is in the local header and the directory"
        );
    }
    bytes
}

/// The usual zip: the detail and the 汇总 member, GBK.
fn bill_zip(detail: &str) -> Vec<u8> {
    alipay_zip(&[(DETAIL, gbk(detail)), (SUMMARY, gbk(&summary_text()))])
}

fn read(zip: &[u8]) -> Result<(Vec<BillRecord>, BillSummary), BillError> {
    let mut records = Vec::new();
    let summary = read_trade_zip(Cursor::new(zip), |r| records.push(r))?;
    Ok((records, summary))
}

/// Reads and returns the error, checking that no record was handed out.
fn refused(zip: &[u8]) -> BillError {
    let mut records = 0;
    let err = read_trade_zip(Cursor::new(zip), |_| records += 1).expect_err("a broken bill");
    assert_eq!(records, 0, "no record of a broken file before the error");
    err
}

fn fen(v: i64) -> Fen {
    Fen::from_stored(v)
}

fn totals(records: &[BillRecord]) -> (u64, Fen, Fen) {
    let sum = |kind| {
        records
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.amount.get())
            .sum::<i64>()
    };
    (
        records.len() as u64,
        fen(sum(RecordKind::Payment)),
        fen(sum(RecordKind::Refund)),
    )
}

#[test]
fn the_documented_layout_reads_as_payments_and_a_refund() {
    let (records, summary) = read(&bill_zip(&example())).expect("a bill");
    assert_eq!(records.len(), 3);

    let first = &records[0];
    assert_eq!(first.kind, RecordKind::Payment);
    assert_eq!(first.transaction_id, "2026060522001400000000000001");
    assert_eq!(first.out_trade_no, "P20260605000001");
    assert_eq!(first.mch_id, PID, "the account without its 0156");
    assert_eq!(first.sub_mch_id, None);
    assert_eq!(first.amount, fen(3580));
    assert_eq!(first.state, "SUCCESS");
    assert_eq!(first.out_refund_no, None);
    assert_eq!(first.channel_refund_id, None);
    assert_eq!(first.fee.as_deref(), Some("-0.21"), "服务费, as written");
    assert_eq!(first.rate, None);
    assert_eq!(
        first.at,
        parse_cn_datetime("2026-06-05 10:00:05").unwrap(),
        "完成时间"
    );

    let discounted = &records[1];
    assert_eq!(discounted.amount, fen(2000), "订单金额, not 商家实收 18.00");

    let refund = &records[2];
    assert_eq!(refund.kind, RecordKind::Refund);
    assert_eq!(refund.out_trade_no, "P20260605000001", "the original order");
    assert_eq!(refund.transaction_id, "2026060522001400000000000001");
    assert_eq!(refund.out_refund_no.as_deref(), Some("R20260605000001"));
    assert_eq!(refund.amount, fen(1000), "商家实收 without its sign");
    assert_eq!(refund.at, parse_cn_datetime("2026-06-05 15:30:00").unwrap());
    assert_eq!(refund.state, "SUCCESS");

    // The footer states 商家实收 (53.80); the payments' 订单金额 add up to
    // 55.80 because one row states 2.00 of merchant discount.
    assert_eq!(
        summary,
        BillSummary {
            count: 3,
            paid_total: fen(5580),
            refund_total: fen(1000),
        }
    );
    let (count, paid, refunded) = totals(&records);
    assert_eq!(
        (count, paid, refunded),
        (summary.count, summary.paid_total, summary.refund_total)
    );
}

#[test]
fn read_bill_dispatches_an_alipay_zip() {
    let zip = bill_zip(&example());
    let file = BillFile {
        format: BillFormat::AlipayTrade,
        compression: Compression::Zip,
        sha1: None,
        size: zip.len() as u64,
    };
    let mut records = Vec::new();
    let summary = read_bill(&file, Cursor::new(&zip), |r| records.push(r)).expect("a bill");
    assert_eq!((records.len(), summary.count), (3, 3));

    let hashed = BillFile {
        sha1: Some("00".repeat(20)),
        ..file.clone()
    };
    assert!(read_bill(&hashed, Cursor::new(&zip), |_| {}).is_err());
    let gzip = BillFile {
        compression: Compression::Gzip,
        ..file.clone()
    };
    assert!(read_bill(&gzip, Cursor::new(&zip), |_| {}).is_err());
    let wechat_zip = BillFile {
        format: BillFormat::WechatTrade,
        ..file
    };
    assert!(read_bill(&wechat_zip, Cursor::new(&zip), |_| {}).is_err());
    assert_eq!(
        BillFormat::parse("alipay-trade"),
        Some(BillFormat::AlipayTrade)
    );
    assert_eq!(Compression::parse("zip"), Some(Compression::Zip));
}

#[test]
fn columns_are_found_by_name_in_a_wider_layout() {
    // The bank-ISV layout: four more columns, and (for the test) the
    // first columns after the key swapped.
    let header = HEADER.replace("业务类型,商品名称", "商品名称,业务类型")
        + ",手续费（元）,费率,实收净额（元）,交易方式";
    let rows: Vec<String> = ROWS
        .iter()
        .map(|r| {
            let mut c: Vec<&str> = r.split(',').collect();
            c.swap(2, 3);
            c.join(",") + ",-0.13\t,0.38%\t,35.67\t,花呗"
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let (records, summary) = read(&bill_zip(&detail_text(&header, &rows, &FOOTER))).unwrap();
    assert_eq!(records[0].kind, RecordKind::Payment);
    assert_eq!(records[2].kind, RecordKind::Refund);
    assert_eq!(
        records[0].fee.as_deref(),
        Some("-0.13"),
        "手续费 over 服务费"
    );
    assert_eq!(records[0].rate.as_deref(), Some("0.38%"));
    assert_eq!(summary.count, 3);
}

#[test]
fn crlf_line_endings_change_nothing() {
    let crlf = example().replace('\n', "\r\n");
    assert_eq!(read(&bill_zip(&crlf)), read(&bill_zip(&example())));
}

#[test]
fn the_older_footer_wording_is_read_too() {
    let footer = [
        "#交易合计：2笔，交易金额共53.80元，优惠金额共2.00元",
        "#退款合计：1笔，交易退款金额共-10.00元，优惠退款金额共0.00元",
    ];
    let (_, summary) = read(&bill_zip(&detail_text(HEADER, &ROWS, &footer))).unwrap();
    assert_eq!(
        (summary.count, summary.paid_total, summary.refund_total),
        (3, fen(5580), fen(1000))
    );
}

#[test]
fn without_a_footer_the_summary_member_gives_the_totals() {
    let (records, summary) = read(&bill_zip(&detail_text(HEADER, &ROWS, &[]))).unwrap();
    // 合计: 2 + 1 lines, 商家实收 43.80 net of the 10.00 refund.
    assert_eq!(
        summary,
        BillSummary {
            count: 3,
            paid_total: fen(5580),
            refund_total: fen(1000),
        }
    );
    let (count, paid, refunded) = totals(&records);
    assert_eq!(
        (count, paid, refunded),
        (summary.count, summary.paid_total, summary.refund_total)
    );
}

#[test]
fn a_bill_whose_rows_miss_a_line_disagrees_with_its_footer() {
    // The check the reconciliation makes: records against the summary.
    let (records, summary) = read(&bill_zip(&detail_text(HEADER, &ROWS[1..], &FOOTER))).unwrap();
    assert_ne!(totals(&records).1, summary.paid_total);
}

#[test]
fn without_footer_and_summary_member_the_bill_is_refused() {
    let zip = alipay_zip(&[(DETAIL, gbk(&detail_text(HEADER, &ROWS, &[])))]);
    let err = read(&zip).unwrap_err();
    assert!(err.message.contains("footer"), "{err}");
}

#[test]
fn the_account_may_come_from_the_member_name() {
    let text = example().replace(&format!("#账号：[{ACCOUNT}]\n"), "");
    let (records, _) = read(&bill_zip(&text)).unwrap();
    assert_eq!(records[0].mch_id, PID);
}

#[test]
fn utf8_flagged_member_names_are_found() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file(DETAIL, zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(&gbk(&example())).unwrap();
    let zip = w.finish().unwrap().into_inner();
    assert_eq!(read(&zip).unwrap().0.len(), 3);
}

#[test]
fn a_zip_without_the_detail_member_is_refused() {
    let zip = alipay_zip(&[(SUMMARY, gbk(&summary_text()))]);
    let err = refused(&zip);
    assert!(err.message.contains("_业务明细.csv"), "{err}");
    // A member of another name is not taken for it either.
    let zip = alipay_zip(&[(
        "20887226827483540156_20260605_账务明细.csv",
        gbk(&example()),
    )]);
    refused(&zip);
}

#[test]
fn two_detail_members_are_refused() {
    let other = "20887226827483540157_20260605_业务明细.csv";
    let zip = alipay_zip(&[(DETAIL, gbk(&example())), (other, gbk(&example()))]);
    assert!(refused(&zip).message.contains("two members"));
}

#[test]
fn a_file_that_is_not_a_zip_is_refused() {
    let err = refused(&gbk(&example()));
    assert_eq!(err.line, 0);
    assert!(err.message.contains("zip"), "{err}");
    refused(b"");
}

#[test]
fn a_truncated_zip_is_refused() {
    let zip = bill_zip(&example());
    for len in [zip.len() / 2, zip.len() - 10, 30] {
        refused(&zip[..len]);
    }
}

#[test]
fn a_changed_byte_is_caught_by_the_crc_before_any_record() {
    // A day longer than the reader's buffer, stored (not deflated) so that
    // one amount can be changed into another valid amount near the end:
    // only the member's CRC-32 tells, and no row is handed out first.
    let rows: Vec<String> = (0..3000)
        .map(|i| ROWS[0].replace("000001\t", &format!("{i:06}\t")))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let footer = [
        "#交易合计：3000笔，商家实收共107400.00元",
        "#退款合计：0笔，商家实收退款共0.00元",
    ];
    let detail = gbk(&detail_text(HEADER, &rows, &footer));
    let stored = |detail: Vec<u8>| zip_with(zip::CompressionMethod::Stored, &[(DETAIL, detail)]);
    let (records, summary) = read(&stored(detail.clone())).expect("the intact bill");
    assert_eq!((records.len(), summary.count), (3000, 3000));
    assert_eq!(totals(&records).1, summary.paid_total);

    let mut zip = stored(detail);
    let last = zip
        .windows(b"35.80,35.80".len())
        .rposition(|w| w == b"35.80,35.80")
        .unwrap();
    zip[last] = b'9';
    let err = refused(&zip);
    assert!(err.message.contains("damaged"), "{err}");
}

#[test]
fn gbk_garbage_is_refused_naming_its_line() {
    let mut bytes = gbk(&example());
    // Line 7 (the second row): a lead byte followed by a byte that cannot
    // continue it.
    let at = bytes
        .windows(b"P20260605000002".len())
        .position(|w| w == b"P20260605000002")
        .unwrap();
    bytes[at] = 0x81;
    bytes[at + 1] = b',';
    let zip = alipay_zip(&[(DETAIL, bytes), (SUMMARY, gbk(&summary_text()))]);
    let mut records = Vec::new();
    let err = read_trade_zip(Cursor::new(&zip), |r| records.push(r)).unwrap_err();
    assert_eq!(err.line, 7, "{err}");
    assert!(err.message.contains("GBK"), "{err}");
}

#[test]
fn a_row_with_the_wrong_number_of_cells_is_refused() {
    let short = ROWS[1].rsplit_once(',').unwrap().0;
    let text = detail_text(HEADER, &[ROWS[0], short, ROWS[2]], &FOOTER);
    let err = read(&bill_zip(&text)).unwrap_err();
    assert_eq!(err.line, 7);
    assert!(
        err.message.contains("24 cells where the header has 25"),
        "{err}"
    );
}

#[test]
fn bad_rows_are_refused_naming_their_line() {
    let cases = [
        (ROWS[1].replace("交易\t", "冻结"), "业务类型"),
        (ROWS[1].replace("20.00", "2O.00"), "订单金额"),
        (ROWS[1].replace("20.00", "-20.00"), "negative"),
        (
            ROWS[1].replace("2026-06-05 11:00:09", "2026/06/05"),
            "完成时间",
        ),
        (ROWS[1].replace("P20260605000002", ""), "商户订单号"),
        (ROWS[2].replace("R20260605000001", ""), "退款批次号"),
    ];
    for (row, what) in cases {
        let text = detail_text(HEADER, &[ROWS[0], &row], &FOOTER);
        let err = read(&bill_zip(&text)).unwrap_err();
        assert_eq!(err.line, 7, "{what}: {err}");
        assert!(err.message.contains(what), "{what}: {err}");
    }
}

#[test]
fn the_header_must_come_first_and_name_its_columns() {
    let text = example().replace(HEADER, &ROWS[0].replace('\t', ""));
    assert_eq!(read(&bill_zip(&text)).unwrap_err().line, 5);
    let text = example().replace("商户订单号,", "商户单号,");
    let err = read(&bill_zip(&text)).unwrap_err();
    assert!(err.message.contains("商户订单号"), "{err}");
    let text = detail_text(HEADER, &ROWS, &FOOTER) + ROWS[0] + "\n";
    let err = read(&bill_zip(&text)).unwrap_err();
    assert!(err.message.contains("after the end"), "{err}");
}

#[test]
fn a_created_time_stands_in_for_an_empty_finished_time() {
    let row = ROWS[0].replace(",2026-06-05 10:00:05,", ",,");
    let text = detail_text(HEADER, &[&row, ROWS[1], ROWS[2]], &FOOTER);
    let (records, _) = read(&bill_zip(&text)).unwrap();
    assert_eq!(
        records[0].at,
        parse_cn_datetime("2026-06-05 10:00:00").unwrap()
    );
}

#[test]
fn footer_lines_are_read_loosely() {
    assert_eq!(
        footer_line("交易合计：10374笔，商家实收共28790.16元，商家优惠共0.00元"),
        Some(FooterLine {
            count: 10374,
            amount: 2_879_016
        })
    );
    assert_eq!(
        footer_line("退款合计: 1 笔, 商家实收退款共 -3000.00 元"),
        Some(FooterLine {
            count: 1,
            amount: -300_000
        })
    );
    assert_eq!(footer_line("交易合计：笔，共元"), None);
    assert_eq!(footer_line("交易合计：3笔"), None);
    assert_eq!(pid(ACCOUNT), PID);
    assert_eq!(pid("2088"), "2088");
}
