//! The bill download against the gateway double: the signed
//! `alipay.data.dataservice.bill.downloadurl.query`, the file streamed into
//! the sink and read back with `read_bill`, the days without a file, and
//! the download links that must not be followed.

use std::io::{Cursor, Write};
use std::sync::Arc;

use cashdesk_channels::bill::{
    BillDownload, BillFile, BillFormat, BillRecord, BillRequest, Compression, RecordKind, read_bill,
};
use cashdesk_channels::*;
use cashdesk_core::time::shanghai;
use cashdesk_core::{ChannelType, Fen};
use chrono::{Days, NaiveDate, Utc};
use serde_json::json;

use crate::support::*;

async fn setup() -> (Arc<Double>, Arc<dyn Channel>, String) {
    let d = Double::new(false);
    let addr = serve(router(d.clone())).await;
    let ch = build_channel(
        ChannelType::AliPay,
        "v2",
        MCH_ID,
        &creds(),
        Some(&format!("http://{addr}/ali/gateway.do")),
        &env(),
    )
    .unwrap();
    (d, ch, addr.to_string())
}

fn days_ago(n: u64) -> NaiveDate {
    Utc::now()
        .with_timezone(&shanghai())
        .date_naive()
        .checked_sub_days(Days::new(n))
        .unwrap()
}

fn request(date: NaiveDate) -> BillRequest {
    BillRequest { date, store: None }
}

/// A day's zip as Alipay serves it: GBK text under GBK member names
/// without the UTF-8 flag (written under same-length ASCII names, then
/// renamed in place; no checksum covers names).
fn bill_zip(date: NaiveDate) -> Vec<u8> {
    let gbk = |s: &str| encoding_rs::GBK.encode(s).0.into_owned();
    let day = date.format("%Y-%m-%d");
    let compact = date.format("%Y%m%d");
    let rows = [
        format!(
            "2026060522001400000000000001\t,P000001\t,交易\t,咖啡\t,{day} 10:00:00,{day} 10:00:05,\t,\t,\t,\t,*三\t,35.80,35.80,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,-0.21,0.00,"
        ),
        format!(
            "2026060522001400000000000001\t,P000001\t,退款\t,咖啡\t,{day} 10:00:00,{day} 15:30:00,\t,\t,\t,\t,*三\t,-10.00,-10.00,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,R000001\t,0.06,0.00,"
        ),
    ];
    let detail = [
        "#支付宝业务明细查询".to_owned(),
        format!("#账号：[{SELLER_ID}0156]"),
        format!("#{}业务明细列表{}", "-".repeat(41), "-".repeat(40)),
        "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注".to_owned(),
        rows[0].clone(),
        rows[1].clone(),
        format!("#{}业务明细列表结束{}", "-".repeat(41), "-".repeat(36)),
        "#交易合计：1笔，商家实收共35.80元，商家优惠共0.00元".to_owned(),
        "#退款合计：1笔，商家实收退款共-10.00元，商家优惠退款共0.00元".to_owned(),
    ]
    .join("\r\n");
    let name = gbk(&format!("{SELLER_ID}0156_{compact}_业务明细.csv"));
    let stand_in = "A".repeat(name.len());
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file(stand_in.as_str(), zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(&gbk(&detail)).unwrap();
    let mut bytes = w.finish().unwrap().into_inner();
    while let Some(i) = bytes
        .windows(stand_in.len())
        .position(|w| w == stand_in.as_bytes())
    {
        bytes[i..i + name.len()].copy_from_slice(&name);
    }
    bytes
}

fn read_back(file: &BillFile, bytes: &[u8]) -> Vec<BillRecord> {
    let mut records = Vec::new();
    let summary = read_bill(file, Cursor::new(bytes), |r| records.push(r)).expect("a bill");
    assert_eq!(summary.count, 2);
    records
}

#[tokio::test]
async fn the_days_zip_is_streamed_into_the_sink_and_reads_back() {
    let (d, ch, _) = setup().await;
    let date = days_ago(1);
    let zip = bill_zip(date);
    *d.bill_file.lock().unwrap() = zip.clone();
    let mut sink = Vec::new();
    let got = ch.download_bill(&request(date), &mut sink).await.unwrap();
    let file = BillFile {
        format: BillFormat::AlipayTrade,
        compression: Compression::Zip,
        sha1: None,
        size: zip.len() as u64,
    };
    assert_eq!(got, BillDownload::Written(file.clone()));
    assert_eq!(sink, zip, "the file as served");

    let requests = d.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "the signed query, then the file");
    let query = &requests[0];
    assert_eq!(
        query.params["method"],
        "alipay.data.dataservice.bill.downloadurl.query"
    );
    assert!(verify_app_signature(&query.params));
    assert_eq!(
        query.biz,
        json!({"bill_type": "trade", "bill_date": date.format("%Y-%m-%d").to_string(), "secure": "true"})
    );
    assert!(!query.params.contains_key("app_auth_token"));
    assert_eq!(requests[1].path, BILL_PATH);

    let records = read_back(&file, &sink);
    assert_eq!(records[0].kind, RecordKind::Payment);
    assert_eq!(records[0].out_trade_no, "P000001");
    assert_eq!(records[0].amount, Fen::from_stored(3580));
    assert_eq!(records[0].mch_id, SELLER_ID);
    assert_eq!(records[1].kind, RecordKind::Refund);
    assert_eq!(records[1].out_refund_no.as_deref(), Some("R000001"));
    assert_eq!(records[1].amount, Fen::from_stored(1000));
}

#[tokio::test]
async fn a_stores_bill_is_asked_with_its_app_auth_token() {
    let (d, ch, _) = setup().await;
    let date = days_ago(1);
    *d.bill_file.lock().unwrap() = bill_zip(date);
    let store = StoreMerchant::new(
        "S3",
        json!({"appAuthToken": "202401BB3b2c1a9f0e8d7c6b5a4",
               "authAppId": "2021000000000077", "sellerId": "2088000000000077"}),
    );
    let req = BillRequest {
        date,
        store: Some(store),
    };
    let got = ch.download_bill(&req, &mut Vec::new()).await.unwrap();
    assert!(matches!(got, BillDownload::Written(_)), "{got:?}");
    let query = d.requests.lock().unwrap()[0].clone();
    assert_eq!(
        query.params["app_auth_token"],
        "202401BB3b2c1a9f0e8d7c6b5a4"
    );
    assert!(verify_app_signature(&query.params));
}

#[tokio::test]
async fn an_empty_day_downloads_nothing() {
    let (d, ch, _) = setup().await;
    *d.bill.lock().unwrap() = BillAnswer::EmptyDay;
    let mut sink = Vec::new();
    let got = ch.download_bill(&request(days_ago(1)), &mut sink).await;
    assert_eq!(got, Ok(BillDownload::Empty));
    assert_eq!(d.count(), 1, "no download");
    assert!(sink.is_empty());

    *d.bill.lock().unwrap() = BillAnswer::File;
    d.set_fault(Fault::Business(
        "NO_BILL_DATA",
        "商户在请求的账单时间内没有发生当前账单类型的业务",
    ));
    let got = ch.download_bill(&request(days_ago(1)), &mut sink).await;
    assert_eq!(got, Ok(BillDownload::Empty));
}

#[tokio::test]
async fn a_bill_not_there_yet_is_not_ready_and_today_is_not_asked() {
    let (d, ch, _) = setup().await;
    d.set_fault(Fault::Business("isp.bill_not_exist", "账单不存在"));
    let got = ch
        .download_bill(&request(days_ago(1)), &mut Vec::new())
        .await;
    assert!(
        matches!(&got, Ok(BillDownload::NotReady(m)) if m.contains("isp.bill_not_exist")),
        "{got:?}"
    );
    // Long after the day, a bill that does not exist is an empty day.
    let got = ch
        .download_bill(&request(days_ago(10)), &mut Vec::new())
        .await;
    assert_eq!(got, Ok(BillDownload::Empty));

    let before = d.count();
    let got = ch
        .download_bill(&request(days_ago(0)), &mut Vec::new())
        .await;
    assert!(matches!(got, Ok(BillDownload::NotReady(_))), "{got:?}");
    assert_eq!(d.count(), before, "today's bill is not asked for");
}

#[tokio::test]
async fn a_link_to_another_host_is_refused_and_not_fetched() {
    let (d, ch, addr) = setup().await;
    // Another server on the same machine: it must never be asked.
    let other = Double::new(false);
    let other_addr = serve(router(other.clone())).await;
    let port = addr.rsplit(':').next().unwrap();
    for url in [
        format!("http://{other_addr}{BILL_PATH}?token=t"),
        format!("https://localhost:{port}{BILL_PATH}?token=t"),
        format!("http://user:pw@{addr}{BILL_PATH}?token=t"),
        "http://dwbillcenter.alipay.com/downloadBillFile.resource?token=t".to_owned(),
        "https://dwbillcenter.alipay.com.evil.test/downloadBillFile.resource?token=t".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "file:///etc/passwd".to_owned(),
        "not a url".to_owned(),
    ] {
        *d.bill.lock().unwrap() = BillAnswer::Url(url.clone());
        let before = d.count();
        let mut sink = Vec::new();
        let e = ch
            .download_bill(&request(days_ago(1)), &mut sink)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ChannelErrorKind::BadResponse, "{url}: {e}");
        assert!(!e.to_string().contains("token=t"), "{e}");
        assert_eq!(d.count(), before + 1, "{url}: only the query was made");
        assert!(sink.is_empty());
    }
    assert_eq!(other.count(), 0);
}

#[tokio::test]
async fn a_text_page_instead_of_the_zip_is_retryable() {
    let (d, ch, _) = setup().await;
    *d.bill_file.lock().unwrap() = "下载超时,请重新下载".as_bytes().to_vec();
    let e = ch
        .download_bill(&request(days_ago(1)), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Retryable, "{e}");
}

#[tokio::test]
async fn failures_of_the_query_are_mapped_as_for_every_call() {
    let (d, ch, _) = setup().await;
    d.set_fault(Fault::Unsigned);
    let e = ch
        .download_bill(&request(days_ago(1)), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::BadResponse, "unsigned success");
    d.set_fault(Fault::Http500);
    let e = ch
        .download_bill(&request(days_ago(1)), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Retryable);
    d.set_fault(Fault::Business("USER_RATE_LIMIT", "调用频率超限"));
    let e = ch
        .download_bill(&request(days_ago(1)), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Retryable);
}
