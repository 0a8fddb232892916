//! Alipay's trade bill: `alipay.data.dataservice.bill.downloadurl.query`
//! with `biz_content` `{"bill_type":"trade","bill_date":"yyyy-MM-dd"}`
//! (signed request, signed answer, like every gateway method) makes the
//! day's bill ([`crate::bills::make`], the bill faults used up now) and
//! answers `bill_download_url` =
//! `<public_url>/sandbox/alipay/downloadBillFile.resource?bizType=trade&userId=<pid>0156&fileType=csv.zip&bizDates=<yyyyMMdd>&downloadFileName=<pid>0156_<yyyyMMdd>.csv.zip&token=…`,
//! a plain unsigned GET that works for 30 seconds ([`LINK_TTL`], by the
//! sandbox clock). An expired or unknown link answers a text page, HTTP
//! 200, "下载超时,请重新下载" (Alipay's text; its status is not published,
//! a page is what clients report seeing).
//!
//! A day without trades still has a file: the answer then carries
//! `bill_file_code: EMPTY_DATA_WITH_BILL_FILE` and the archive holds the
//! frame (preamble, header, footers with zero totals, the summary's `合计`
//! row) and no row — cashdesk reads it as an empty day.
//!
//! Refusals: a `bill_type` other than `trade` (`signcustomer` and the
//! others are not simulated) or a malformed date (also the monthly
//! `yyyy-MM`) is `40002 isv.invalid-arguments`; a day not over yet (today
//! or later, China time) or older than three months `40004
//! isp.bill_not_exist` "账单不存在"; the `BILL_GENERATING` fault `40004
//! isp.bill_not_exist` "账单生成中，请稍后再试" (Alipay's answer for a bill
//! not published yet).
//!
//! The archive (`<pid>0156_<yyyyMMdd>.csv.zip`) holds two GBK CSV files
//! with GBK names (`billzip`): `<pid>0156_<yyyyMMdd>_业务明细.csv` and
//! `<pid>0156_<yyyyMMdd>_业务明细(汇总).csv`, laid out as PROTOCOLS-2 §1.3
//! (`#` preamble, the dashed separators, the 25-column header with
//! full-width （元）, every data cell followed by a TAB, `\r\n` line
//! ends). A payment is a `交易` row; a refund a `退款` row (its own line, at
//! the refund, with the original 商户订单号, the refund as negative
//! 订单金额 and 商家实收, the
//! `out_request_no` in 退款批次号/请求号). 服务费（元）: 0.60% of the
//! amount, rounded half up to the fen ([`crate::bills`]), written negative
//! on payments (a deduction) and positive on refunds (given back) — the
//! sign convention is UNCONFIRMED. The summary file has one row per store
//! (the sandbox has none: one row with empty 门店编号 and 门店名称) and a
//! `合计` row; 实收净额 = 商家实收 + 服务费.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::billzip::{self, Member};
use super::trade::{masked_logon_id, out_request_no};
use super::{AliError, Answer, Request, biz, invalid};
use crate::Shared;
use crate::bills::{self, Book, DayBill, DayError, LineKind, Made, yuan};

/// How long a download link lives ("获取连接后30秒后未下载，链接地址失效").
pub const LINK_TTL: TimeDelta = TimeDelta::seconds(30);

/// The download path, under the public URL.
pub const DOWNLOAD_PATH: &str = "/sandbox/alipay/downloadBillFile.resource";

pub(super) fn query(
    s: &Shared,
    req: &Request,
    b: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Answer, AliError> {
    let text = |k: &str| b.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let bill_type = text("bill_type").ok_or_else(|| bad_args("缺少必选参数bill_type"))?;
    if bill_type != "trade" {
        return Err(bad_args(format!(
            "bill_type不合法（沙箱只支持trade）：{bill_type}"
        )));
    }
    let date = text("bill_date").ok_or_else(|| bad_args("缺少必选参数bill_date"))?;
    let day = (date.len() == 10)
        .then(|| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| {
            bad_args(format!(
                "bill_date格式不正确（沙箱只支持日账单yyyy-MM-dd）：{date}"
            ))
        })?;
    if let Err(e) = bills::check_day(day, now) {
        return Err(biz(
            "isp.bill_not_exist",
            match e {
                DayError::NotOver => "账单不存在（当天及以后的账单尚未生成）",
                DayError::TooOld => "账单不存在（只能查询三个月以内的账单）",
            },
        ));
    }
    let pid = req.book.pid.as_str();
    let bill = match bills::make(s, Book::Alipay { pid }, day, &req.merchant.app_id) {
        Made::Generating => return Err(biz("isp.bill_not_exist", "账单生成中，请稍后再试")),
        Made::Bill(b) => b,
    };
    let account = format!("{pid}0156");
    let compact = day.format("%Y%m%d").to_string();
    let zip = archive(&bill, &account, day, now).map_err(|e| AliError {
        code: "20000",
        sub_code: "isp.unknow-error".to_owned(),
        sub_msg: e,
    })?;
    let token = s.downloads.issue(pid, zip, false, LINK_TTL, now);
    let url = format!(
        "{}{DOWNLOAD_PATH}?bizType=trade&userId={account}&fileType=csv.zip&bizDates={compact}&downloadFileName={account}_{compact}.csv.zip&token={token}",
        s.public_url()
    );
    let mut m = Map::new();
    m.insert("bill_download_url".into(), json!(url));
    if bill.lines.is_empty() {
        m.insert("bill_file_code".into(), json!("EMPTY_DATA_WITH_BILL_FILE"));
    }
    Ok(Answer::Json(m))
}

fn bad_args(sub_msg: impl Into<String>) -> AliError {
    invalid("isv.invalid-arguments", sub_msg)
}

#[derive(Deserialize)]
pub(super) struct DownloadQuery {
    token: Option<String>,
    #[serde(rename = "downloadFileName")]
    download_file_name: Option<String>,
}

/// `GET /sandbox/alipay/downloadBillFile.resource?…&token=…`.
pub(super) async fn download(
    State(s): State<Arc<Shared>>,
    Query(q): Query<DownloadQuery>,
) -> Response {
    let found = q.token.as_deref().and_then(|t| s.downloads.get(t, s.now()));
    let Some(d) = found else {
        let mut resp = (StatusCode::OK, "下载超时,请重新下载").into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html;charset=utf-8"),
        );
        return resp;
    };
    let mut resp = (StatusCode::OK, d.body.to_vec()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/oct-stream"),
    );
    let name = q
        .download_file_name
        .filter(|n| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
        .unwrap_or_else(|| "bill.csv.zip".to_owned());
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename={name}")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `2026年06月05日 00:00:00`.
fn cn_long(t: DateTime<Utc>) -> String {
    t.with_timezone(&cashdesk_core::time::shanghai())
        .format("%Y年%m月%d日 %H:%M:%S")
        .to_string()
}

fn free_text(s: &str) -> String {
    s.replace(',', "，").replace(['\r', '\n', '\t'], " ")
}

fn cells(values: &[String]) -> String {
    let mut row: Vec<String> = values.iter().map(|v| format!("{v}\t")).collect();
    row.push(String::new());
    let mut line = row.join(",");
    line.pop();
    line.push_str("\r\n");
    line
}

pub const DETAIL_HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";

pub const SUMMARY_HEADER: &str = "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）";

fn preamble(title: &str, account: &str, day: NaiveDate) -> String {
    let (from, to) = bills::cn_day_bounds(day);
    format!(
        "#{title}\r\n#账号：[{account}]\r\n#起始日期：[{}]   终止日期：[{}]\r\n",
        cn_long(from),
        cn_long(to)
    )
}

/// The detail file's text.
pub fn detail_text(bill: &DayBill, account: &str, day: NaiveDate, now: DateTime<Utc>) -> String {
    let cn = cashdesk_core::time::to_cn_datetime;
    let mut out = preamble("支付宝业务明细查询", account, day);
    out.push_str(&format!(
        "#{}业务明细列表{}\r\n",
        "-".repeat(41),
        "-".repeat(40)
    ));
    out.push_str(DETAIL_HEADER);
    out.push_str("\r\n");
    for l in &bill.lines {
        let o = &l.order;
        let refund = l.kind == LineKind::Refund;
        let (order_amount, received) = if refund {
            (-l.amount, -l.amount)
        } else {
            (l.amount, l.amount)
        };
        let zero = || "0.00".to_owned();
        out.push_str(&cells(&[
            l.transaction_id().to_owned(),
            o.out_trade_no.clone(),
            if refund { "退款" } else { "交易" }.to_owned(),
            free_text(&o.description),
            cn(o.created_at),
            cn(l.at),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            masked_logon_id(l.payer()),
            yuan(order_amount),
            yuan(received),
            zero(),
            zero(),
            zero(),
            zero(),
            zero(),
            String::new(),
            zero(),
            zero(),
            l.refund
                .as_ref()
                .map(out_request_no)
                .unwrap_or("")
                .to_owned(),
            yuan(-l.fee()),
            zero(),
            String::new(),
        ]));
    }
    out.push_str(&format!(
        "#{}业务明细列表结束{}\r\n",
        "-".repeat(41),
        "-".repeat(36)
    ));
    let paid: i64 = bill.payments().map(|l| l.amount).sum();
    let refunded: i64 = bill.refunds().map(|l| l.amount).sum();
    out.push_str(&format!(
        "#交易合计：{}笔，商家实收共{}元，商家优惠共0.00元\r\n",
        bill.payments().count(),
        yuan(paid + bill.summary_bias)
    ));
    out.push_str(&format!(
        "#退款合计：{}笔，商家实收退款共{}元，商家优惠退款共0.00元\r\n",
        bill.refunds().count(),
        yuan(-refunded)
    ));
    out.push_str(&format!("#导出时间：[{}]\r\n", cn_long(now)));
    out
}

/// The summary file's text.
pub fn summary_text(bill: &DayBill, account: &str, day: NaiveDate, now: DateTime<Utc>) -> String {
    let mut out = preamble("支付宝业务汇总查询", account, day);
    out.push_str(&format!(
        "#{}业务汇总列表{}\r\n",
        "-".repeat(41),
        "-".repeat(40)
    ));
    out.push_str(SUMMARY_HEADER);
    out.push_str("\r\n");
    let trades = bill.payments().count();
    let refunds = bill.refunds().count();
    let ordered: i64 = bill.payments().map(|l| l.amount).sum();
    let received: i64 = ordered - bill.refunds().map(|l| l.amount).sum::<i64>();
    let fees: i64 = -bill.lines.iter().map(|l| l.fee()).sum::<i64>();
    let row = |first: &str, bias: i64| {
        cells(&[
            first.to_owned(),
            String::new(),
            trades.to_string(),
            refunds.to_string(),
            yuan(ordered + bias),
            yuan(received + bias),
            "0.00".to_owned(),
            "0.00".to_owned(),
            "0.00".to_owned(),
            yuan(fees),
            "0.00".to_owned(),
            yuan(received + bias + fees),
        ])
    };
    // One store (the sandbox has no stores), then the total.
    out.push_str(&row("", 0));
    out.push_str(&row("合计", bill.summary_bias));
    out.push_str(&format!(
        "#{}业务汇总列表结束{}\r\n",
        "-".repeat(40),
        "-".repeat(37)
    ));
    out.push_str(&format!("#导出时间：[{}]\r\n", cn_long(now)));
    out
}

fn gbk(s: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(s).0.into_owned()
}

/// The zip of both files.
pub fn archive(
    bill: &DayBill,
    account: &str,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, String> {
    let compact = day.format("%Y%m%d");
    let local = now
        .with_timezone(&cashdesk_core::time::shanghai())
        .naive_local();
    billzip::write(
        &[
            Member {
                name: gbk(&format!("{account}_{compact}_业务明细.csv")),
                data: gbk(&detail_text(bill, account, day, now)),
            },
            Member {
                name: gbk(&format!("{account}_{compact}_业务明细(汇总).csv")),
                data: gbk(&summary_text(bill, account, day, now)),
            },
        ],
        local,
    )
}
