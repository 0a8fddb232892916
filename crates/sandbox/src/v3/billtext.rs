//! WeChat Pay's trade-bill text (交易账单), served the same by v3
//! (`/v3/billdownload/file`, see `v3::bill`) and v2 (`/pay/downloadbill`,
//! [`crate::v2bill`]), in the current layout (PROTOCOLS-2 §1.1.1): a UTF-8
//! byte order mark, the detail header of the `bill_type` (ALL 27 columns,
//! SUCCESS 20, REFUND 29), one row per line with every field prefixed by a
//! backtick, the summary header and the summary row (backticks too),
//! fields separated by `,`, every line ending `\r\n`.
//!
//! A payment row: 交易状态 `SUCCESS`, amounts in yuan with 2 decimals,
//! 微信退款单号 and 商户退款单号 `0`, 付款银行 `OTHERS`. A refund row (its
//! own line, at the refund's acceptance): 交易状态 `REFUND`, 应结订单金额
//! and 订单金额 `0.00`, 退款金额 and 申请退款金额 the refund, 退款类型
//! `ORIGINAL`, 退款状态 `SUCCESS` or `PROCESSING`. In the REFUND bill
//! 交易时间 is the payment's time and 退款申请时间/退款成功时间 the
//! refund's. 手续费: 5 decimals, negative on refunds; 费率 `0.60%`
//! ([`crate::bills`]). 特约商户号: the sub-merchant of a service
//! provider's order, else `0`.
//!
//! The summary counts every row (总交易单数) and adds up the rows' columns;
//! the SUCCESS bill has the 4-column summary of the official page
//! (`总交易单数,应结订单总金额,手续费总金额,订单总金额`), ALL and REFUND the
//! 7-column one.
//!
//! Free text (商品名称, 商户数据包) cannot hold the separator: a `,` is
//! written `，`, a backtick `'`, a line break a space (WeChat does not say
//! what it does; a file that splits into more fields than its header would
//! be unreadable).

use std::collections::HashMap;

use crate::bills::{DayBill, Line, LineKind, yuan, yuan5};
use crate::ledger::RefundStatus;

/// `bill_type`: which lines and which layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillType {
    All,
    Success,
    Refund,
}

impl BillType {
    /// The values the sandbox serves (`RECHARGE_REFUND` and the
    /// `*_SPECIAL` bills are not simulated).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ALL" => Some(Self::All),
            "SUCCESS" => Some(Self::Success),
            "REFUND" => Some(Self::Refund),
            _ => None,
        }
    }

    fn header(self) -> &'static [&'static str] {
        match self {
            Self::All => ALL,
            Self::Success => SUCCESS,
            Self::Refund => REFUND,
        }
    }

    fn summary_header(self) -> &'static [&'static str] {
        match self {
            Self::Success => SUMMARY_SUCCESS,
            Self::All | Self::Refund => SUMMARY,
        }
    }

    fn takes(self, l: &Line) -> bool {
        match self {
            Self::All => true,
            Self::Success => l.kind == LineKind::Payment,
            Self::Refund => l.kind == LineKind::Refund,
        }
    }
}

pub const ALL: &[&str] = &[
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
];

pub const SUCCESS: &[&str] = &[
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "费率备注",
];

pub const REFUND: &[&str] = &[
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "退款申请时间",
    "退款成功时间",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
];

pub const SUMMARY: &[&str] = &[
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
];

pub const SUMMARY_SUCCESS: &[&str] =
    &["总交易单数", "应结订单总金额", "手续费总金额", "订单总金额"];

/// The 费率 the sandbox charges.
pub const RATE: &str = "0.60%";

fn free_text(s: &str) -> String {
    s.replace(',', "，")
        .replace('`', "'")
        .replace(['\r', '\n'], " ")
}

/// Every column a line can fill, by name (each layout picks its own).
fn fields(l: &Line, mch_id: &str) -> HashMap<&'static str, String> {
    let cn = cashdesk_core::time::to_cn_datetime;
    let o = &l.order;
    let sub = match o.partner() {
        Some(_) => o.mch_id.clone(),
        None => "0".to_owned(),
    };
    let mut f: HashMap<&'static str, String> = HashMap::new();
    f.insert("公众账号ID", o.appid.clone());
    f.insert("商户号", mch_id.to_owned());
    f.insert("特约商户号", sub);
    f.insert("设备号", String::new());
    f.insert("微信订单号", l.transaction_id().to_owned());
    f.insert("商户订单号", o.out_trade_no.clone());
    f.insert("用户标识", l.payer().to_owned());
    f.insert("交易类型", o.trade_type.as_str().to_owned());
    f.insert("付款银行", "OTHERS".to_owned());
    f.insert("货币种类", "CNY".to_owned());
    f.insert("代金券金额", "0.00".to_owned());
    f.insert("充值券退款金额", "0.00".to_owned());
    f.insert("商品名称", free_text(&o.description));
    f.insert("商户数据包", free_text(o.attach.as_deref().unwrap_or("")));
    f.insert("手续费", yuan5(l.fee()));
    f.insert("费率", RATE.to_owned());
    f.insert("费率备注", String::new());
    match (&l.kind, &l.refund) {
        (LineKind::Refund, Some(r)) => {
            f.insert("交易时间", cn(l.at));
            f.insert("交易状态", "REFUND".to_owned());
            f.insert("应结订单金额", "0.00".to_owned());
            f.insert("订单金额", "0.00".to_owned());
            f.insert("微信退款单号", r.refund_id.clone());
            f.insert("商户退款单号", r.out_refund_no.clone());
            f.insert("退款金额", yuan(l.amount));
            f.insert("申请退款金额", yuan(l.amount));
            f.insert("退款类型", "ORIGINAL".to_owned());
            let done = r.status == RefundStatus::Success;
            f.insert(
                "退款状态",
                if done { "SUCCESS" } else { "PROCESSING" }.to_owned(),
            );
            f.insert("退款申请时间", cn(r.created_at));
            f.insert("退款成功时间", r.success_at.map(cn).unwrap_or_default());
        }
        _ => {
            f.insert("交易时间", cn(l.at));
            f.insert("交易状态", "SUCCESS".to_owned());
            f.insert("应结订单金额", yuan(l.amount));
            f.insert("订单金额", yuan(l.amount));
            f.insert("微信退款单号", "0".to_owned());
            f.insert("商户退款单号", "0".to_owned());
            f.insert("退款金额", "0.00".to_owned());
            f.insert("申请退款金额", "0.00".to_owned());
            f.insert("退款类型", String::new());
            f.insert("退款状态", String::new());
        }
    }
    f
}

fn push_row(out: &mut String, cells: impl IntoIterator<Item = String>) {
    let row: Vec<String> = cells.into_iter().map(|c| format!("`{c}")).collect();
    out.push_str(&row.join(","));
    out.push_str("\r\n");
}

/// The bill text of `bill` as `bill_type` lays it out, for the merchant
/// `mch_id` (商户号: the service provider in partner mode); `None` when the
/// bill has no line of that type (WeChat then has no file).
pub fn render(bill: &DayBill, bill_type: BillType, mch_id: &str) -> Option<Vec<u8>> {
    let lines: Vec<&Line> = bill.lines.iter().filter(|l| bill_type.takes(l)).collect();
    if lines.is_empty() {
        return None;
    }
    let header = bill_type.header();
    let mut out = String::from("\u{feff}");
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    let (mut settled, mut refunded, mut fees) = (0i64, 0i64, 0i64);
    for l in &lines {
        let mut f = fields(l, mch_id);
        if bill_type == BillType::Refund {
            // The REFUND bill's 交易时间 is the payment's.
            if let Some((_, paid_at, _)) = l.order.paid() {
                f.insert("交易时间", cashdesk_core::time::to_cn_datetime(paid_at));
            }
        }
        push_row(
            &mut out,
            header.iter().map(|h| f.remove(h).unwrap_or_default()),
        );
        match l.kind {
            LineKind::Payment => settled += l.amount,
            LineKind::Refund => refunded += l.amount,
        }
        fees += l.fee();
    }
    let paid = settled + bill.summary_bias;
    let summary: HashMap<&str, String> = HashMap::from([
        ("总交易单数", lines.len().to_string()),
        ("应结订单总金额", yuan(paid)),
        ("退款总金额", yuan(refunded)),
        ("充值券退款总金额", "0.00".to_owned()),
        ("手续费总金额", yuan5(fees)),
        ("订单总金额", yuan(paid)),
        ("申请退款总金额", yuan(refunded)),
    ]);
    let summary_header = bill_type.summary_header();
    out.push_str(&summary_header.join(","));
    out.push_str("\r\n");
    push_row(
        &mut out,
        summary_header
            .iter()
            .map(|h| summary.get(h).cloned().unwrap_or_default()),
    );
    Some(out.into_bytes())
}

/// Lowercase hex SHA-1 of `bytes` (v3's `hash_value`).
pub fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest as _;
    hex::encode(sha1::Sha1::digest(bytes))
}

/// `bytes` gzipped (`tar_type=GZIP`).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}
