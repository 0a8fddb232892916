//! Alipay's trade bill from the sandbox: the signed URL query, the
//! 30-second plain download, the zip of GBK CSV files (names in GBK
//! without the UTF-8 flag), the day's lines of one merchant only, the
//! empty-day frame, and the bill faults.

use std::io::Read as _;

use serde_json::{Value, json};

use crate::alipay::{Ali, open_alipay, pay};
use crate::bills::{clock_at, cn_day, hms, set_clock};
use crate::*;

const METHOD: &str = "alipay.data.dataservice.bill.downloadurl.query";

async fn paid(app: &TestApp, a: &Ali, no: &str, yuan: &str) {
    let r = a
        .call(
            app,
            "alipay.trade.precreate",
            json!({"out_trade_no": no, "total_amount": yuan, "subject": "账单, 测试"}),
            &[],
        )
        .await;
    assert_eq!(r["code"], "10000", "{r}");
    let (status, body) = pay(app, "ali-pay", no, "SUCCESS").await;
    assert_eq!(status, 200, "{body}");
}

async fn refunded(app: &TestApp, a: &Ali, no: &str, request_no: &str, yuan: &str) {
    let r = a
        .call(
            app,
            "alipay.trade.refund",
            json!({"out_trade_no": no, "refund_amount": yuan, "out_request_no": request_no}),
            &[],
        )
        .await;
    assert_eq!(r["code"], "10000", "{r}");
}

/// The query's answer for `date`.
async fn query(app: &TestApp, a: &Ali, date: &str) -> Value {
    a.call(
        app,
        METHOD,
        json!({"bill_type": "trade", "bill_date": date}),
        &[],
    )
    .await
}

struct Files {
    zip: Vec<u8>,
    names: Vec<String>,
    detail: String,
    summary: String,
}

fn gbk(bytes: &[u8]) -> String {
    let (text, _, bad) = encoding_rs::GBK.decode(bytes);
    assert!(!bad, "GBK");
    text.into_owned()
}

async fn download(app: &TestApp, url: &str) -> Files {
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap().to_vec();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let mut files = Files {
        zip: bytes.clone(),
        names: Vec::new(),
        detail: String::new(),
        summary: String::new(),
    };
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = gbk(f.name_raw());
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        if name.ends_with("_业务明细.csv") {
            files.detail = gbk(&data);
        } else {
            files.summary = gbk(&data);
        }
        files.names.push(name);
    }
    // No member is flagged UTF-8 (general-purpose bit 11 of each local header).
    assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]) & (1 << 11), 0);
    files
}

/// Detail rows: (业务类型, 商户订单号, 商家实收, 退款批次号, 服务费).
fn rows(detail: &str) -> Vec<(String, String, String, String, String)> {
    let lines: Vec<&str> = detail.split("\r\n").collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("支付宝交易号,"))
        .unwrap();
    lines[start + 1..]
        .iter()
        .take_while(|l| !l.starts_with('#'))
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), 25, "{l}");
            assert!(cells.iter().all(|c| c.ends_with('\t')), "{l}");
            let c = |i: usize| cells[i].trim_end_matches('\t').to_owned();
            (c(2), c(1), c(12), c(21), c(22))
        })
        .collect()
}

fn footer<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.split("\r\n").find(|l| l.starts_with(prefix)).unwrap()
}

/// Summary rows (门店编号 trimmed): (first cell, 商家实收, 服务费, 实收净额).
fn summary_rows(summary: &str) -> Vec<(String, String, String, String)> {
    summary
        .split("\r\n")
        .skip_while(|l| !l.starts_with("门店编号,"))
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .map(|l| {
            let c: Vec<&str> = l.split(',').map(|c| c.trim_end_matches('\t')).collect();
            assert_eq!(c.len(), 12, "{l}");
            (c[0].into(), c[5].into(), c[9].into(), c[11].into())
        })
        .collect()
}

#[tokio::test]
async fn alipay_bill_zip_holds_the_merchants_day() {
    let app = spawn().await;
    let a = open_alipay(&app).await;
    let b = open_alipay(&app).await;
    let tag = cashdesk_crypto::random::nonce_str(6);
    let no = |n: &str| format!("{n}{tag}");
    let d = cn_day(2);
    clock_at(&app, hms(d.pred_opt().unwrap(), 23, 59, 20)).await;
    paid(&app, &a, &no("X0"), "1.00").await;
    clock_at(&app, hms(d, 0, 0, 20)).await;
    paid(&app, &a, &no("A1"), "3.00").await;
    paid(&app, &b, &no("B1"), "10.00").await;
    refunded(&app, &a, &no("A1"), "r1", "1.00").await;
    clock_at(&app, hms(d, 23, 59, 20)).await;
    paid(&app, &a, &no("C1"), "5.00").await;
    clock_at(&app, hms(d.succ_opt().unwrap(), 0, 0, 20)).await;
    paid(&app, &a, &no("N1"), "1.00").await;
    refunded(&app, &a, &no("C1"), "r3", "2.00").await;
    set_clock(&app, 0).await;

    let date = d.to_string();
    let compact = d.format("%Y%m%d").to_string();
    let account = format!("{}0156", a.pid());
    let r = query(&app, &a, &date).await;
    assert_eq!(r["code"], "10000", "{r}");
    assert!(r.get("bill_file_code").is_none());
    let url = r["bill_download_url"].as_str().unwrap();
    assert_eq!(
        url.split("&token=").next().unwrap(),
        format!(
            "{}/sandbox/alipay/downloadBillFile.resource?bizType=trade&userId={account}&fileType=csv.zip&bizDates={compact}&downloadFileName={account}_{compact}.csv.zip",
            app.origin
        )
    );
    let f = download(&app, url).await;
    assert_eq!(
        f.names,
        [
            format!("{account}_{compact}_业务明细.csv"),
            format!("{account}_{compact}_业务明细(汇总).csv")
        ]
    );
    let lines: Vec<&str> = f.detail.split("\r\n").collect();
    assert_eq!(lines[0], "#支付宝业务明细查询");
    assert_eq!(lines[1], format!("#账号：[{account}]"));
    assert_eq!(
        lines[2],
        format!(
            "#起始日期：[{}]   终止日期：[{}]",
            d.format("%Y年%m月%d日 00:00:00"),
            d.succ_opt().unwrap().format("%Y年%m月%d日 00:00:00")
        )
    );
    assert_eq!(
        lines[3],
        format!("#{}业务明细列表{}", "-".repeat(41), "-".repeat(40))
    );
    assert_eq!(lines[4].split(',').count(), 25);
    assert!(lines[4].contains("订单金额（元）,商家实收（元）"));
    let got: Vec<_> = rows(&f.detail)
        .into_iter()
        .map(|(kind, no, amount, request, fee)| {
            format!(
                "{kind} {} {amount} {request} {fee}",
                no.trim_end_matches(&tag)
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "交易 A1 3.00  -0.02",
            "退款 A1 -1.00 r1 0.01",
            "交易 C1 5.00  -0.03"
        ]
    );
    assert!(f.detail.contains(&format!(
        "#{}业务明细列表结束{}\r\n",
        "-".repeat(41),
        "-".repeat(36)
    )));
    assert_eq!(
        footer(&f.detail, "#交易合计"),
        "#交易合计：2笔，商家实收共8.00元，商家优惠共0.00元"
    );
    assert_eq!(
        footer(&f.detail, "#退款合计"),
        "#退款合计：1笔，商家实收退款共-1.00元，商家优惠退款共0.00元"
    );
    assert!(footer(&f.detail, "#导出时间").starts_with("#导出时间：["));
    assert!(
        f.detail.contains("账单， 测试"),
        "free text keeps the separator out"
    );
    assert_eq!(
        summary_rows(&f.summary),
        [
            ("".into(), "7.00".into(), "-0.04".into(), "6.96".into()),
            ("合计".into(), "7.00".into(), "-0.04".into(), "6.96".into())
        ]
    );
    assert!(f.summary.starts_with("#支付宝业务汇总查询\r\n"));
    assert!(f.summary.contains(&format!(
        "#{}业务汇总列表结束{}\r\n",
        "-".repeat(40),
        "-".repeat(37)
    )));

    // cashdesk's own reader agrees, and the rows add up to the footers.
    let mut records = Vec::new();
    let summary =
        cashdesk_channels::bill::alipay::read_trade_zip(std::io::Cursor::new(f.zip.clone()), |r| {
            records.push(r)
        })
        .unwrap();
    let read: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{:?} {} {} {} {}",
                r.kind,
                r.out_trade_no.trim_end_matches(&tag),
                r.out_refund_no.as_deref().unwrap_or("-"),
                r.amount.get(),
                r.mch_id
            )
        })
        .collect();
    let pid = a.pid();
    assert_eq!(
        read,
        [
            format!("Payment A1 - 300 {pid}"),
            format!("Refund A1 r1 100 {pid}"),
            format!("Payment C1 - 500 {pid}")
        ]
    );
    assert_eq!(
        (
            summary.count,
            summary.paid_total.get(),
            summary.refund_total.get()
        ),
        (3, 800, 100)
    );

    // The other merchant's bill holds only its own trade.
    let r = query(&app, &b, &date).await;
    let f = download(&app, r["bill_download_url"].as_str().unwrap()).await;
    let got: Vec<_> = rows(&f.detail).into_iter().map(|r| r.1).collect();
    assert_eq!(got, [no("B1")]);

    // The day after: N1 and the refund of C1.
    let r = query(&app, &a, &d.succ_opt().unwrap().to_string()).await;
    let f = download(&app, r["bill_download_url"].as_str().unwrap()).await;
    let got: Vec<_> = rows(&f.detail)
        .into_iter()
        .map(|r| format!("{} {}", r.0, r.1))
        .collect();
    assert_eq!(
        got,
        [format!("交易 {}", no("N1")), format!("退款 {}", no("C1"))]
    );

    // The link: plain, 30 seconds, a made-up token fails.
    let resp = app.http.get(format!("{url}x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "下载超时,请重新下载");
    set_clock(&app, 31).await;
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "下载超时,请重新下载");
    set_clock(&app, 0).await;
}

#[tokio::test]
async fn alipay_empty_days_bad_dates_and_bill_faults() {
    let app = spawn().await;
    let a = open_alipay(&app).await;
    // An empty day: a frame without rows.
    let r = query(&app, &a, &cn_day(5).to_string()).await;
    assert_eq!(
        (r["code"].as_str(), r["bill_file_code"].as_str()),
        (Some("10000"), Some("EMPTY_DATA_WITH_BILL_FILE"))
    );
    let f = download(&app, r["bill_download_url"].as_str().unwrap()).await;
    assert!(rows(&f.detail).is_empty());
    assert_eq!(
        footer(&f.detail, "#交易合计"),
        "#交易合计：0笔，商家实收共0.00元，商家优惠共0.00元"
    );
    assert_eq!(summary_rows(&f.summary).len(), 2);

    for (biz, code, sub_code) in [
        (
            json!({"bill_type": "trade", "bill_date": "2026/01/01"}),
            "40002",
            "isv.invalid-arguments",
        ),
        (
            json!({"bill_type": "trade", "bill_date": cn_day(30).format("%Y-%m").to_string()}),
            "40002",
            "isv.invalid-arguments",
        ),
        (
            json!({"bill_type": "signcustomer", "bill_date": cn_day(3).to_string()}),
            "40002",
            "isv.invalid-arguments",
        ),
        (
            json!({"bill_date": cn_day(3).to_string()}),
            "40002",
            "isv.invalid-arguments",
        ),
        (
            json!({"bill_type": "trade", "bill_date": cn_day(0).to_string()}),
            "40004",
            "isp.bill_not_exist",
        ),
        (
            json!({"bill_type": "trade", "bill_date": cn_day(120).to_string()}),
            "40004",
            "isp.bill_not_exist",
        ),
    ] {
        let r = a.call(&app, METHOD, biz.clone(), &[]).await;
        assert_eq!(
            (r["code"].as_str(), r["sub_code"].as_str()),
            (Some(code), Some(sub_code)),
            "{biz}: {r}"
        );
    }

    // A day with two trades and a refund.
    let tag = cashdesk_crypto::random::nonce_str(6);
    let no = |n: &str| format!("{n}{tag}");
    let d = cn_day(3);
    clock_at(&app, hms(d, 10, 0, 0)).await;
    paid(&app, &a, &no("A1"), "3.00").await;
    paid(&app, &a, &no("A2"), "4.00").await;
    refunded(&app, &a, &no("A2"), "r2", "4.00").await;
    set_clock(&app, 0).await;
    let date = d.to_string();
    let fault = |body: Value| {
        let mut b = body;
        b["channelType"] = json!("ali-pay");
        b["mchId"] = json!(a.pid());
        app.fault(b)
    };
    let bill = |r: Value| {
        let app = &app;
        async move {
            assert_eq!(r["code"], "10000", "{r}");
            download(app, r["bill_download_url"].as_str().unwrap()).await
        }
    };
    let brief = |f: &Files| -> Vec<String> {
        rows(&f.detail)
            .into_iter()
            .map(|r| format!("{} {} {}", r.0, r.1.trim_end_matches(&tag), r.2))
            .collect()
    };

    fault(json!({"fault": "BILL_GENERATING"})).await;
    let r = query(&app, &a, &date).await;
    assert_eq!(
        (r["code"].as_str(), r["sub_code"].as_str()),
        (Some("40004"), Some("isp.bill_not_exist"))
    );
    assert!(r["sub_msg"].as_str().unwrap().contains("生成中"));

    fault(json!({"fault": "BILL_AMOUNT_DIFF", "outTradeNo": no("A2")})).await;
    let f = bill(query(&app, &a, &date).await).await;
    assert_eq!(brief(&f), ["交易 A1 3.00", "交易 A2 4.01", "退款 A2 -4.00"]);
    assert_eq!(
        footer(&f.detail, "#交易合计"),
        "#交易合计：2笔，商家实收共7.01元，商家优惠共0.00元"
    );

    fault(json!({"fault": "BILL_OMIT_REFUND", "outRefundNo": "r2"})).await;
    let f = bill(query(&app, &a, &date).await).await;
    assert_eq!(brief(&f), ["交易 A1 3.00", "交易 A2 4.00"]);
    assert_eq!(
        footer(&f.detail, "#退款合计"),
        "#退款合计：0笔，商家实收退款共0.00元，商家优惠退款共0.00元"
    );

    fault(json!({"fault": "BILL_EXTRA_TRADE", "outTradeNo": no("GHOST"), "amount": 250})).await;
    let f = bill(query(&app, &a, &date).await).await;
    assert_eq!(
        brief(&f),
        [
            "交易 A1 3.00",
            "交易 A2 4.00",
            "退款 A2 -4.00",
            "交易 GHOST 2.50"
        ]
    );

    fault(json!({"fault": "BILL_BAD_SUMMARY"})).await;
    let f = bill(query(&app, &a, &date).await).await;
    assert_eq!(
        footer(&f.detail, "#交易合计"),
        "#交易合计：2笔，商家实收共7.01元，商家优惠共0.00元"
    );
    let s = summary_rows(&f.summary);
    assert_eq!((s[0].1.as_str(), s[1].1.as_str()), ("3.00", "3.01"));

    // All used up.
    let f = bill(query(&app, &a, &date).await).await;
    assert_eq!(brief(&f), ["交易 A1 3.00", "交易 A2 4.00", "退款 A2 -4.00"]);
}
