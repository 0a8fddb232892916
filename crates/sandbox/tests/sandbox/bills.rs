//! WeChat Pay bills from the sandbox: v3 `tradebill` + the signed download
//! and v2 `downloadbill`, made from the order book of a day (moved there
//! with the sandbox clock), read back with cashdesk's own bill reader, and
//! shaped by the bill faults.

use std::collections::BTreeMap;
use std::io::Read as _;

use cashdesk_channels::bill::{BillRecord, BillSummary, RecordKind, wechat::read_trade_bill};
use cashdesk_crypto::wxv2::{self, WxSignType};
use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use serde_json::{Value, json};

use crate::*;

/// Move the sandbox clock so that it reads `cn` (China time) now.
pub async fn clock_at(app: &TestApp, cn: chrono::NaiveDateTime) {
    let at = cashdesk_core::time::shanghai()
        .from_local_datetime(&cn)
        .unwrap()
        .with_timezone(&Utc);
    set_clock(app, (at - Utc::now()).num_seconds()).await;
}

pub async fn set_clock(app: &TestApp, offset_seconds: i64) {
    let resp = app
        .http
        .post(format!("{}/sandbox/api/clock", app.origin))
        .json(&json!({ "offsetSeconds": offset_seconds }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// The China day `days` before today (real clock).
pub fn cn_day(days_ago: i64) -> NaiveDate {
    (Utc::now().with_timezone(&cashdesk_core::time::shanghai()) - TimeDelta::days(days_ago))
        .date_naive()
}

pub fn hms(day: NaiveDate, h: u32, m: u32, s: u32) -> chrono::NaiveDateTime {
    day.and_hms_opt(h, m, s).unwrap()
}

struct Sp {
    sp: Merchant,
    subs: [String; 2],
}

async fn open_sp(app: &TestApp) -> Sp {
    let open = |body: Value| {
        let http = app.http.clone();
        let url = format!("{}/sandbox/api/merchants", app.origin);
        async move {
            let resp = http.post(url).json(&body).send().await.unwrap();
            assert_eq!(resp.status(), 201);
            resp.json::<Value>().await.unwrap()
        }
    };
    let sp = Merchant {
        creds: open(json!({"channelType": "wx-pay", "serviceProvider": true})).await,
    };
    let mut subs = Vec::new();
    for _ in 0..2 {
        let sub = open(json!({"channelType": "wx-pay", "spMchId": sp.mch_id()})).await;
        subs.push(sub["mchId"].as_str().unwrap().to_owned());
    }
    Sp {
        subs: [subs[0].clone(), subs[1].clone()],
        sp,
    }
}

/// A paid partner order of `total` fen for `sub` (v3 native).
async fn paid(app: &TestApp, sp: &Merchant, sub: &str, no: &str, total: i64) {
    let r = v3_call(
        &app.http,
        sp.base_url(),
        sp,
        "POST",
        "/v3/pay/partner/transactions/native",
        Some(json!({
            "sp_appid": sp.app_id(), "sp_mchid": sp.mch_id(), "sub_mchid": sub,
            "description": "bill, test", "out_trade_no": no, "notify_url": "http://127.0.0.1:9/n",
            "amount": {"total": total, "currency": "CNY"},
        })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (status, body) = app.pay(no, "SUCCESS").await;
    assert_eq!(status, 200, "{body}");
}

async fn refunded(
    app: &TestApp,
    sp: &Merchant,
    sub: &str,
    no: &str,
    refund_no: &str,
    amount: i64,
    total: i64,
) {
    let r = v3_call(
        &app.http,
        sp.base_url(),
        sp,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(json!({
            "sub_mchid": sub, "out_trade_no": no, "out_refund_no": refund_no,
            "amount": {"refund": amount, "total": total, "currency": "CNY"},
        })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Day D (two days ago) with lines of both sub-merchants, and lines just
/// before and just after it that must stay out of its bill:
/// D-1 23:59:20 X0 paid (sub1);
/// D 00:00:20 A1 300 (sub1) and B2 1000 (sub2) paid, A1 refunded 100 (RA1);
/// D 23:59:20 C2 500 (sub2) paid, B2 refunded in full (RB2);
/// D+1 00:00:20 N1 (sub1) paid, C2 refunded 200 (RC2).
async fn a_day(app: &TestApp) -> (Sp, NaiveDate, String) {
    let sp = open_sp(app).await;
    let [sub1, sub2] = sp.subs.clone();
    let tag = cashdesk_crypto::random::nonce_str(6);
    let no = |n: &str| format!("{n}{tag}");
    let d = cn_day(2);
    clock_at(app, hms(d.pred_opt().unwrap(), 23, 59, 20)).await;
    paid(app, &sp.sp, &sub1, &no("X0"), 100).await;
    clock_at(app, hms(d, 0, 0, 20)).await;
    paid(app, &sp.sp, &sub1, &no("A1"), 300).await;
    paid(app, &sp.sp, &sub2, &no("B2"), 1000).await;
    refunded(app, &sp.sp, &sub1, &no("A1"), &no("RA1"), 100, 300).await;
    clock_at(app, hms(d, 23, 59, 20)).await;
    paid(app, &sp.sp, &sub2, &no("C2"), 500).await;
    refunded(app, &sp.sp, &sub2, &no("B2"), &no("RB2"), 1000, 1000).await;
    clock_at(app, hms(d.succ_opt().unwrap(), 0, 0, 20)).await;
    paid(app, &sp.sp, &sub1, &no("N1"), 100).await;
    refunded(app, &sp.sp, &sub2, &no("C2"), &no("RC2"), 200, 500).await;
    set_clock(app, 0).await;
    // Let the refunds settle (100 ms).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    (sp, d, tag)
}

/// `GET /v3/bill/tradebill?<query>`.
async fn apply(app: &TestApp, m: &Merchant, query: &str) -> V3Response {
    v3_call(
        &app.http,
        m.base_url(),
        m,
        "GET",
        &format!("/v3/bill/tradebill?{query}"),
        None,
    )
    .await
}

/// GET a download_url signed as `m` (or unsigned).
async fn fetch(app: &TestApp, url: &str, m: Option<&Merchant>) -> reqwest::Response {
    let u = reqwest::Url::parse(url).unwrap();
    let pq = format!("{}?{}", u.path(), u.query().unwrap_or(""));
    let mut req = app.http.get(u).header("Accept", "*/*");
    if let Some(m) = m {
        req = req.header(
            "Authorization",
            v3_authorization(m, "GET", &pq, "", Utc::now().timestamp()),
        );
    }
    req.send().await.unwrap()
}

/// Apply and download a bill (`tar_type=GZIP` when `gzip`): the text, its
/// hash checked.
async fn v3_bill(app: &TestApp, m: &Merchant, query: &str, gzip: bool) -> String {
    let query = if gzip {
        format!("{query}&tar_type=GZIP")
    } else {
        query.to_owned()
    };
    let r = apply(app, m, &query).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["hash_type"], "SHA1");
    let url = v["download_url"].as_str().unwrap();
    assert!(url.starts_with(&format!(
        "{}/sandbox/wechat/v3/billdownload/file?token=",
        app.origin
    )));
    assert_eq!(url.ends_with("&tartype=gzip"), gzip);
    let resp = fetch(app, url, Some(m)).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("Wechatpay-Signature").is_none(),
        "downloads are unsigned"
    );
    let bytes = resp.bytes().await.unwrap().to_vec();
    let text = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        bytes
    };
    use sha1::Digest as _;
    assert_eq!(
        hex::encode(sha1::Sha1::digest(&text)),
        v["hash_value"].as_str().unwrap()
    );
    String::from_utf8(text).unwrap()
}

fn read(text: &str) -> (Vec<BillRecord>, BillSummary) {
    let mut records = Vec::new();
    let summary = read_trade_bill(text.as_bytes(), |r| records.push(r)).unwrap();
    (records, summary)
}

fn lines_of(records: &[BillRecord], tag: &str) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let no = r.out_refund_no.as_deref().unwrap_or(&r.out_trade_no);
            let kind = if r.kind == RecordKind::Refund {
                "refund"
            } else {
                "pay"
            };
            format!("{kind} {} {}", no.trim_end_matches(tag), r.amount.get())
        })
        .collect()
}

/// The rows add up to the bill's own summary.
fn adds_up(records: &[BillRecord], s: &BillSummary) -> bool {
    let sum = |k: RecordKind| -> i64 {
        records
            .iter()
            .filter(|r| r.kind == k)
            .map(|r| r.amount.get())
            .sum()
    };
    s.count == records.len() as u64
        && s.paid_total.get() == sum(RecordKind::Payment)
        && s.refund_total.get() == sum(RecordKind::Refund)
}

fn signed_v2(m: &Merchant, pairs: &[(&str, &str)]) -> String {
    let mut p: BTreeMap<String, String> = params(pairs);
    p.insert("appid".into(), m.app_id().into());
    p.insert("mch_id".into(), m.mch_id().into());
    p.insert("nonce_str".into(), cashdesk_crypto::random::nonce_str(32));
    let sign = wxv2::sign(&p, m.api_key(), WxSignType::Md5);
    p.insert("sign".into(), sign);
    to_xml(&p)
}

async fn v2_bill(app: &TestApp, m: &Merchant, pairs: &[(&str, &str)]) -> Vec<u8> {
    let resp = app
        .http
        .post(format!("{}/pay/downloadbill", m.base_url()))
        .body(signed_v2(m, pairs))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn v3_and_v2_bills_hold_the_days_lines_and_read_back() {
    let app = spawn().await;
    let (sp, d, tag) = a_day(&app).await;
    let [sub1, sub2] = sp.subs.clone();
    let date = d.format("%Y-%m-%d").to_string();

    // The service provider's bill: both sub-merchants, only day D.
    let text = v3_bill(&app, &sp.sp, &format!("bill_date={date}"), true).await;
    assert!(text.starts_with('\u{feff}'));
    assert!(text.split_inclusive('\n').all(|l| l.ends_with("\r\n")));
    let (records, summary) = read(&text);
    assert_eq!(
        lines_of(&records, &tag),
        [
            "pay A1 300",
            "pay B2 1000",
            "refund RA1 100",
            "pay C2 500",
            "refund RB2 1000"
        ]
    );
    assert!(adds_up(&records, &summary));
    assert_eq!(
        (summary.paid_total.get(), summary.refund_total.get()),
        (1800, 1100)
    );
    for r in &records {
        assert_eq!(r.mch_id, sp.sp.mch_id());
        let sub = r.sub_mch_id.as_deref().unwrap();
        assert_eq!(sub == sub1, r.out_trade_no.starts_with('A'), "{r:?}");
        assert_eq!(r.state, "SUCCESS");
        assert_eq!(r.rate.as_deref(), Some("0.60%"));
    }
    let fee = |no: &str| {
        records
            .iter()
            .find(|r| r.out_refund_no.as_deref().unwrap_or(&r.out_trade_no) == format!("{no}{tag}"))
            .unwrap()
            .fee
            .clone()
            .unwrap()
    };
    assert_eq!(fee("B2"), "0.06000");
    assert_eq!(fee("RB2"), "-0.06000");
    assert_eq!(fee("A1"), "0.02000"); // 1.8 fen
    let summary_row = text.trim_end().rsplit("\r\n").next().unwrap();
    assert_eq!(summary_row, "`5,`18.00,`11.00,`0.00,`0.04000,`18.00,`11.00");

    // One sub-merchant's bill, plain.
    let one = v3_bill(
        &app,
        &sp.sp,
        &format!("bill_date={date}&sub_mchid={sub1}"),
        false,
    )
    .await;
    let (records, summary) = read(&one);
    assert_eq!(lines_of(&records, &tag), ["pay A1 300", "refund RA1 100"]);
    assert!(adds_up(&records, &summary));

    // v2 serves the same text, plain or gzip.
    let v2date = d.format("%Y%m%d").to_string();
    let two = v2_bill(
        &app,
        &sp.sp,
        &[("bill_date", &v2date), ("sub_mch_id", &sub1)],
    )
    .await;
    assert_eq!(String::from_utf8(two).unwrap(), one);
    let gz = v2_bill(
        &app,
        &sp.sp,
        &[("bill_date", &v2date), ("tar_type", "GZIP")],
    )
    .await;
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, text);

    // SUCCESS and REFUND bills: their own layouts, their own lines.
    let success = v3_bill(
        &app,
        &sp.sp,
        &format!("bill_date={date}&sub_mchid={sub2}&bill_type=SUCCESS"),
        false,
    )
    .await;
    let rows: Vec<&str> = success.split_terminator("\r\n").collect();
    assert_eq!(rows.len(), 5);
    assert_eq!(
        rows[0].trim_start_matches('\u{feff}').split(',').count(),
        20
    );
    assert_eq!(rows[3], "总交易单数,应结订单总金额,手续费总金额,订单总金额");
    assert_eq!(rows[4], "`2,`15.00,`0.09000,`15.00");
    let refunds = v3_bill(
        &app,
        &sp.sp,
        &format!("bill_date={date}&bill_type=REFUND"),
        false,
    )
    .await;
    let (records, summary) = read(&refunds);
    assert_eq!(
        lines_of(&records, &tag),
        ["refund RA1 100", "refund RB2 1000"]
    );
    assert!(adds_up(&records, &summary));
    assert!(refunds.starts_with("\u{feff}交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,退款申请时间,退款成功时间,"));

    // The day before and the day after have their own lines.
    let before = v3_bill(
        &app,
        &sp.sp,
        &format!("bill_date={}", d.pred_opt().unwrap()),
        false,
    )
    .await;
    assert_eq!(lines_of(&read(&before).0, &tag), ["pay X0 100"]);
    let after = v3_bill(
        &app,
        &sp.sp,
        &format!("bill_date={}", d.succ_opt().unwrap()),
        false,
    )
    .await;
    assert_eq!(
        lines_of(&read(&after).0, &tag),
        ["pay N1 100", "refund RC2 200"]
    );
}

#[tokio::test]
async fn days_without_bills_and_bad_requests() {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let empty = cn_day(5);
    let r = apply(&app, &m, &format!("bill_date={empty}")).await;
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"code": "NO_STATEMENT_EXIST", "message": "请求的账单文件不存在"})
        )
    );
    let body = v2_bill(
        &app,
        &m,
        &[("bill_date", &empty.format("%Y%m%d").to_string())],
    )
    .await;
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]></return_msg><error_code><![CDATA[20002]]></error_code></xml>"
    );
    let too_old = cn_day(100);
    for date in [
        cn_day(0).to_string(),
        cn_day(-1).to_string(),
        too_old.to_string(),
        "2026-13-01".into(),
        "20260601".into(),
        "2026-6-1".into(),
    ] {
        let r = apply(&app, &m, &format!("bill_date={date}")).await;
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (400, Some("PARAM_ERROR")),
            "{date}"
        );
    }
    for q in ["bill_type=FUND", "tar_type=ZIP", "sub_mchid=1900000001"] {
        let r = apply(&app, &m, &format!("bill_date={empty}&{q}")).await;
        assert!(r.status == 400 || r.status == 403, "{q}: {}", r.body);
    }
    let body = v2_bill(
        &app,
        &m,
        &[("bill_date", &cn_day(0).format("%Y%m%d").to_string())],
    )
    .await;
    let f = cashdesk_sandbox::xml::parse(&String::from_utf8(body).unwrap()).unwrap();
    assert_eq!(
        (
            f["return_code"].as_str(),
            f["return_msg"].as_str(),
            f["error_code"].as_str()
        ),
        ("FAIL", "invalid bill_date", "20001")
    );
    // A wrong signature.
    let mut xml = signed_v2(&m, &[("bill_date", &empty.format("%Y%m%d").to_string())]);
    xml = xml.replace("<sign><![CDATA[", "<sign><![CDATA[0");
    let text = app
        .http
        .post(format!("{}/pay/downloadbill", m.base_url()))
        .body(xml)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("Signature Error"), "{text}");
}

#[tokio::test]
async fn downloads_need_the_merchants_signature_and_a_live_token() {
    let app = spawn().await;
    let (sp, d, _) = a_day(&app).await;
    let other = app.open_merchant("MD5").await;
    let r = apply(&app, &sp.sp, &format!("bill_date={d}")).await;
    let url = r.json()["download_url"].as_str().unwrap().to_owned();
    let resp = fetch(&app, &url, None).await;
    assert_eq!(resp.status(), 401);
    let resp = fetch(&app, &url, Some(&other)).await;
    assert_eq!(resp.status(), 403);
    let bad = format!("{}x", url);
    let resp = fetch(&app, &bad, Some(&sp.sp)).await;
    assert_eq!(resp.status(), 400);
    // Signed over another path: refused.
    let u = reqwest::Url::parse(&url).unwrap();
    let auth = v3_authorization(
        &sp.sp,
        "GET",
        "/v3/billdownload/file?token=nope",
        "",
        Utc::now().timestamp(),
    );
    let resp = app
        .http
        .get(u)
        .header("Authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(fetch(&app, &url, Some(&sp.sp)).await.status(), 200);
    // Asked on the HTTPS listener, the link is there too.
    let tls = sp.sp.tls_client(false);
    let r = v3_call(
        &tls,
        sp.sp.tls_base_url(),
        &sp.sp,
        "GET",
        &format!("/v3/bill/tradebill?bill_date={d}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tls_url = r.json()["download_url"].as_str().unwrap().to_owned();
    assert!(tls_url.starts_with(&format!(
        "{}/v3/billdownload/file?token=",
        sp.sp.tls_base_url()
    )));
    let u = reqwest::Url::parse(&tls_url).unwrap();
    let pq = format!("{}?{}", u.path(), u.query().unwrap());
    let auth = v3_authorization(&sp.sp, "GET", &pq, "", Utc::now().timestamp());
    let resp = tls
        .get(u)
        .header("Authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Five minutes later the link is gone.
    set_clock(&app, 301).await;
    let resp = fetch(&app, &url, Some(&sp.sp)).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], "INVALID_REQUEST");
    set_clock(&app, 0).await;
}

#[tokio::test]
async fn bill_faults_shape_the_next_bills() {
    let app = spawn().await;
    let (sp, d, tag) = a_day(&app).await;
    let [sub1, sub2] = sp.subs.clone();
    let q1 = format!("bill_date={d}&sub_mchid={sub1}");
    let q2 = format!("bill_date={d}&sub_mchid={sub2}");
    let v2date = d.format("%Y%m%d").to_string();
    let fault = |body: Value| {
        let mut b = body;
        b["channelType"] = json!("wx-pay");
        app.fault(b)
    };

    // Still generating: v3 then v2, then the bill.
    fault(json!({"fault": "BILL_GENERATING", "mchId": sub1, "count": 2})).await;
    let r = apply(&app, &sp.sp, &q1).await;
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"code": "STATEMENT_CREATING", "message": "账单生成中"})
        )
    );
    let body = v2_bill(
        &app,
        &sp.sp,
        &[("bill_date", &v2date), ("sub_mch_id", &sub1)],
    )
    .await;
    let f = cashdesk_sandbox::xml::parse(&String::from_utf8(body).unwrap()).unwrap();
    assert_eq!(
        (f["return_msg"].as_str(), f["error_code"].as_str()),
        ("Bill Creating", "20003")
    );
    let (records, _) = read(&v3_bill(&app, &sp.sp, &q1, false).await);
    assert_eq!(lines_of(&records, &tag), ["pay A1 300", "refund RA1 100"]);

    // An amount 1 fen off (the named order), the file consistent.
    fault(json!({"fault": "BILL_AMOUNT_DIFF", "outTradeNo": format!("C2{tag}")})).await;
    let (records, summary) = read(&v3_bill(&app, &sp.sp, &q2, true).await);
    assert_eq!(
        lines_of(&records, &tag),
        ["pay B2 1000", "pay C2 501", "refund RB2 1000"]
    );
    assert!(adds_up(&records, &summary));
    // Used up: the next bill is right again.
    let (records, _) = read(&v3_bill(&app, &sp.sp, &q2, false).await);
    assert_eq!(
        lines_of(&records, &tag),
        ["pay B2 1000", "pay C2 500", "refund RB2 1000"]
    );
    // Without outTradeNo: the first payment of the day.
    fault(json!({"fault": "BILL_AMOUNT_DIFF", "mchId": sub2})).await;
    let (records, _) = read(&v3_bill(&app, &sp.sp, &q2, false).await);
    assert_eq!(
        lines_of(&records, &tag),
        ["pay B2 1001", "pay C2 500", "refund RB2 1000"]
    );

    // A refund the channel lacks (v2 too).
    fault(json!({"fault": "BILL_OMIT_REFUND", "mchId": sub1})).await;
    let text = String::from_utf8(
        v2_bill(
            &app,
            &sp.sp,
            &[("bill_date", &v2date), ("sub_mch_id", &sub1)],
        )
        .await,
    )
    .unwrap();
    let (records, summary) = read(&text);
    assert_eq!(lines_of(&records, &tag), ["pay A1 300"]);
    assert!(adds_up(&records, &summary));

    // A trade cashdesk never heard of.
    fault(json!({"fault": "BILL_EXTRA_TRADE", "mchId": sub1, "outTradeNo": format!("GHOST{tag}"), "amount": 999})).await;
    let (records, summary) = read(&v3_bill(&app, &sp.sp, &q1, false).await);
    assert_eq!(
        lines_of(&records, &tag),
        ["pay A1 300", "refund RA1 100", "pay GHOST 999"]
    );
    assert_eq!(records[2].sub_mch_id.as_deref(), Some(sub1.as_str()));
    assert!(adds_up(&records, &summary));
    // … even on a day with no other line.
    fault(json!({"fault": "BILL_EXTRA_TRADE"})).await;
    let (records, _) =
        read(&v3_bill(&app, &sp.sp, &format!("bill_date={}", cn_day(6)), false).await);
    assert_eq!(records.len(), 1);
    assert!(records[0].out_trade_no.starts_with("SBXEXTRA"));
    assert_eq!(records[0].amount.get(), 1);

    // A summary that does not add up.
    fault(json!({"fault": "BILL_BAD_SUMMARY", "mchId": sub1})).await;
    let (records, summary) = read(&v3_bill(&app, &sp.sp, &q1, false).await);
    assert_eq!(summary.paid_total.get(), 301);
    assert!(!adds_up(&records, &summary));

    // v3 shapes at apply: the link serves the shaped bill after the fault is gone.
    fault(json!({"fault": "BILL_OMIT_REFUND", "mchId": sub1, "outRefundNo": format!("RA1{tag}")}))
        .await;
    let r = apply(&app, &sp.sp, &q1).await;
    let url = r.json()["download_url"].as_str().unwrap().to_owned();
    let listed: Value = app
        .http
        .get(format!("{}/sandbox/api/faults", app.origin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["faults"], json!([]));
    let text = fetch(&app, &url, Some(&sp.sp)).await.text().await.unwrap();
    assert_eq!(lines_of(&read(&text).0, &tag), ["pay A1 300"]);
}
