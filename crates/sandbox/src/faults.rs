//! Fault injection, set through `POST /sandbox/api/faults`.
//!
//! Call faults make the next N matching API calls fail before they change
//! anything: `SYSTEMERROR` (the API's own system-error answer, signed),
//! `HTTP_500` (a bare 500 with no signature, as a broken proxy would send),
//! `TIMEOUT` (the connection is held `delayMs`, default 30 s, then answered
//! with a bare 500). Notification faults shape the next N notifications:
//! `DUPLICATE_NOTIFY` (`copies` sent at once), `DROP_NOTIFY` (never sent),
//! `TAMPER_AMOUNT` (amount +1 fen, otherwise validly signed/encrypted),
//! `TAMPER_SIGNATURE` (signature broken; for a v2 refund notification, which
//! has no signature, the `req_info` ciphertext is corrupted) and
//! `DELAY_NOTIFY` (first attempt after `delayMs`). Faults may be limited to
//! one merchant (`mchId`) and, for calls, to paths containing `pathContains`.
//!
//! A fault belongs to the channel named by `channelType` (`wx-pay`,
//! `ali-pay`, `lakala`) and only touches that channel's calls and
//! notifications. `mchId` is the credentials' `mchId`: WeChat's mch_id,
//! Alipay's pid, Lakala's merchant_no. For Alipay, whose calls all go to
//! `gateway.do`, `pathContains` is matched against
//! `/sandbox/alipay/gateway.do?method=<method>`, so a method name works.
//! What each fault looks like per channel: SYSTEMERROR is WeChat's
//! `SYSTEMERROR`/`SYSTEM_ERROR`, Alipay's `20000 isp.unknow-error`, Lakala's
//! `BBS10000`; TAMPER_AMOUNT adds 1 fen (Alipay: 0.01 yuan).
//!
//! At most [`MAX_FAULTS`] faults are active at once (more are refused
//! until some are used up or cleared).
//!
//! `HTTP_500` and `TIMEOUT` look the same on every channel and are answered
//! here (`bare_reply`); `SYSTEMERROR` is each channel's own signed error
//! and is answered by the channel's module.
//!
//! # Bill faults
//!
//! Bill faults shape the next `count` bills served for their channel
//! (`wx-pay`: v3 `tradebill` and v2 `downloadbill`; `ali-pay`:
//! `alipay.data.dataservice.bill.downloadurl.query`) and, with `mchId`,
//! only that merchant's (WeChat: the calling merchant or the `sub_mchid`
//! asked for; Alipay: the pid). A bill is shaped when it is made: at the
//! v3 apply and the Alipay URL query (the file behind the link, and v3's
//! `hash_value`, are that shaped bill), at the v2 call. See
//! [`crate::bills`].
//!
//! - `BILL_GENERATING`: the bill is "still generating" — WeChat v3 400
//!   `STATEMENT_CREATING` "账单生成中"; v2 `return_code=FAIL`,
//!   `return_msg=Bill Creating`, `error_code=20003`; Alipay `40004
//!   isp.bill_not_exist` "账单生成中…" (Alipay's answer before a day's
//!   bill is published). Only this fault is used up by such an answer.
//! - `BILL_AMOUNT_DIFF`: the first payment line (in time order), or the one
//!   of `outTradeNo`, shows 1 fen more (WeChat: 应结订单金额 and 订单金额;
//!   Alipay: 订单金额 and 商家实收); totals, fees and summaries follow,
//!   so the file is consistent with itself.
//! - `BILL_OMIT_REFUND`: the refund lines are left out — the one of
//!   `outRefundNo`, else all: "a refund cashdesk thinks succeeded but the
//!   channel lacks".
//! - `BILL_EXTRA_TRADE`: one more successful payment, of an order the book
//!   never had: `outTradeNo` (default `SBXEXTRA` + 16 digits), `amount`
//!   fen (default 1), at 12:00:00 China time of the bill's day.
//! - `BILL_BAD_SUMMARY`: the summary states 1 fen more paid than the lines
//!   add up to (WeChat: 应结订单总金额 and 订单总金额; Alipay: the
//!   `#交易合计` footer and the summary file's `合计` row).
//!
//! A day with no line at all (and no `BILL_EXTRA_TRADE` to add one) has no
//! bill and uses up no shaping fault; a fault whose `outTradeNo` or
//! `outRefundNo` matches no line is still used up.
//!
//! # Subscribe faults
//!
//! `channelType` `wx-pay`, limited to one mini-program by `appId` (not
//! `mchId`); they shape the next `count` `cgi-bin/message/subscribe/send`
//! calls that pass the token check ([`crate::subscribe`]):
//! `USER_REFUSED` `{"openid"}` (required): 43101 for sends to that user;
//! `TOKEN_INVALIDATED`: every token of the AppID is revoked and the send
//! answers 40001 (a fresh `stable_token` is a new token); `RATE_LIMITED`:
//! 45009. `HTTP_500`, `TIMEOUT` and `SYSTEMERROR` (errcode -1) without
//! `mchId` touch the `cgi-bin` calls too (`pathContains` picks one).

use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    #[serde(rename = "SYSTEMERROR")]
    SystemError,
    #[serde(rename = "HTTP_500")]
    Http500,
    #[serde(rename = "TIMEOUT")]
    Timeout,
    #[serde(rename = "DUPLICATE_NOTIFY")]
    DuplicateNotify,
    #[serde(rename = "DROP_NOTIFY")]
    DropNotify,
    #[serde(rename = "TAMPER_AMOUNT")]
    TamperAmount,
    #[serde(rename = "TAMPER_SIGNATURE")]
    TamperSignature,
    #[serde(rename = "DELAY_NOTIFY")]
    DelayNotify,
    #[serde(rename = "BILL_GENERATING")]
    BillGenerating,
    #[serde(rename = "BILL_AMOUNT_DIFF")]
    BillAmountDiff,
    #[serde(rename = "BILL_OMIT_REFUND")]
    BillOmitRefund,
    #[serde(rename = "BILL_EXTRA_TRADE")]
    BillExtraTrade,
    #[serde(rename = "BILL_BAD_SUMMARY")]
    BillBadSummary,
    #[serde(rename = "USER_REFUSED")]
    UserRefused,
    #[serde(rename = "TOKEN_INVALIDATED")]
    TokenInvalidated,
    #[serde(rename = "RATE_LIMITED")]
    RateLimited,
}

impl FaultKind {
    fn is_call(self) -> bool {
        matches!(self, Self::SystemError | Self::Http500 | Self::Timeout)
    }

    /// A fault of the mini-program's subscribe messages ([`crate::subscribe`]).
    fn is_subscribe(self) -> bool {
        matches!(
            self,
            Self::UserRefused | Self::TokenInvalidated | Self::RateLimited
        )
    }

    fn is_bill(self) -> bool {
        matches!(
            self,
            Self::BillGenerating
                | Self::BillAmountDiff
                | Self::BillOmitRefund
                | Self::BillExtraTrade
                | Self::BillBadSummary
        )
    }
}

/// The body of `POST /sandbox/api/faults`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRequest {
    pub channel_type: String,
    pub fault: FaultKind,
    pub mch_id: Option<String>,
    /// How many calls / notifications it affects (default 1).
    pub count: Option<u32>,
    /// DUPLICATE_NOTIFY: copies sent at once (default 2).
    pub copies: Option<u32>,
    /// TIMEOUT and DELAY_NOTIFY (defaults 30000 and 5000).
    pub delay_ms: Option<u64>,
    pub path_contains: Option<String>,
    /// BILL_AMOUNT_DIFF: the payment line to change; BILL_EXTRA_TRADE: the
    /// extra order's number.
    pub out_trade_no: Option<String>,
    /// BILL_OMIT_REFUND: the one refund to leave out.
    pub out_refund_no: Option<String>,
    /// BILL_EXTRA_TRADE: the extra payment in fen (default 1).
    pub amount: Option<i64>,
    /// Subscribe faults: only this mini-program's messages.
    pub app_id: Option<String>,
    /// USER_REFUSED: the user who refuses (required).
    pub openid: Option<String>,
}

/// The most faults active at once (anyone may add them: bounded).
pub const MAX_FAULTS: usize = 1000;

/// The channel types the sandbox simulates.
pub const CHANNEL_TYPES: [&str; 3] = ["wx-pay", "ali-pay", "lakala"];

/// The channel a sandbox path belongs to.
pub fn channel_of_path(path: &str) -> &'static str {
    if path.contains("/sandbox/alipay/") {
        "ali-pay"
    } else if path.contains("/sandbox/lakala/") {
        "lakala"
    } else {
        "wx-pay"
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    pub id: u64,
    pub channel_type: String,
    pub fault: FaultKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mch_id: Option<String>,
    pub remaining: u32,
    pub copies: u32,
    pub delay_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_refund_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
}

/// A call fault to apply now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallFault {
    pub kind: FaultKind,
    pub delay: Duration,
}

/// What to do to one notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyFaults {
    pub drop: bool,
    pub copies: u32,
    pub tamper_amount: bool,
    pub tamper_signature: bool,
    pub delay: Duration,
}

/// What to do to one bill ([`crate::bills`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillFaults {
    /// Answer "still generating" instead of a bill.
    pub generating: bool,
    /// BILL_AMOUNT_DIFF, each with its optional out_trade_no.
    pub amount_diff: Vec<Option<String>>,
    /// BILL_OMIT_REFUND, each with its optional out_refund_no.
    pub omit_refund: Vec<Option<String>>,
    /// BILL_EXTRA_TRADE: (optional out_trade_no, amount in fen).
    pub extra_trade: Vec<(Option<String>, i64)>,
    pub bad_summary: bool,
}

#[derive(Default)]
pub struct Faults {
    inner: Mutex<(u64, Vec<Fault>)>,
}

impl Faults {
    pub fn add(&self, req: FaultRequest) -> Result<Fault, String> {
        if !CHANNEL_TYPES.contains(&req.channel_type.as_str()) {
            return Err(format!(
                "unsupported channelType `{}` (this sandbox simulates wx-pay, ali-pay and lakala)",
                req.channel_type
            ));
        }
        let count = req.count.unwrap_or(1);
        if !(1..=10_000).contains(&count) {
            return Err("count must be between 1 and 10000".into());
        }
        let copies = req.copies.unwrap_or(2);
        if !(1..=100).contains(&copies) {
            return Err("copies must be between 1 and 100".into());
        }
        let default_delay = if req.fault == FaultKind::Timeout {
            30_000
        } else {
            5_000
        };
        let delay_ms = req.delay_ms.unwrap_or(default_delay);
        if delay_ms > 3_600_000 {
            return Err("delayMs must be at most 3600000".into());
        }
        if req.path_contains.is_some() && !req.fault.is_call() {
            return Err("pathContains only applies to SYSTEMERROR, HTTP_500 and TIMEOUT".into());
        }
        if req.path_contains.as_ref().is_some_and(|p| p.len() > 256) {
            return Err("pathContains must be at most 256 bytes".into());
        }
        if req.mch_id.as_ref().is_some_and(|m| m.len() > 64) {
            return Err("mchId must be at most 64 bytes".into());
        }
        check_bill_fields(&req)?;
        check_subscribe_fields(&req)?;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.1.len() >= MAX_FAULTS {
            return Err(format!(
                "at most {MAX_FAULTS} faults may be active; DELETE /sandbox/api/faults clears them"
            ));
        }
        inner.0 += 1;
        let fault = Fault {
            id: inner.0,
            channel_type: req.channel_type,
            fault: req.fault,
            mch_id: req.mch_id,
            remaining: count,
            copies,
            delay_ms,
            path_contains: req.path_contains,
            out_trade_no: req.out_trade_no,
            out_refund_no: req.out_refund_no,
            amount: req.amount,
            app_id: req.app_id,
            openid: req.openid,
        };
        inner.1.push(fault.clone());
        Ok(fault)
    }

    pub fn list(&self) -> Vec<Fault> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    pub fn clear(&self) -> usize {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut inner.1).len()
    }

    fn matches_mch(f: &Fault, mch_id: Option<&str>) -> bool {
        match (&f.mch_id, mch_id) {
            (None, _) => true,
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => false,
        }
    }

    /// Consume one use of the first call fault matching this call.
    /// The channel is the one `path` belongs to ([`channel_of_path`]).
    pub fn take_call(&self, mch_id: Option<&str>, path: &str) -> Option<CallFault> {
        let channel = channel_of_path(path);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let idx = inner.1.iter().position(|f| {
            f.fault.is_call()
                && f.channel_type == channel
                && Self::matches_mch(f, mch_id)
                && f.path_contains.as_deref().is_none_or(|p| path.contains(p))
        })?;
        let f = &mut inner.1[idx];
        f.remaining -= 1;
        let out = CallFault {
            kind: f.fault,
            delay: Duration::from_millis(f.delay_ms),
        };
        if f.remaining == 0 {
            inner.1.remove(idx);
        }
        Some(out)
    }

    /// Consume one use of every WeChat notification fault matching this merchant.
    pub fn take_notify(&self, mch_id: &str) -> NotifyFaults {
        self.take_notify_for("wx-pay", mch_id)
    }

    /// Consume one use of every notification fault of `channel_type`
    /// matching this merchant.
    pub fn take_notify_for(&self, channel_type: &str, mch_id: &str) -> NotifyFaults {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = NotifyFaults {
            copies: 1,
            ..NotifyFaults::default()
        };
        for f in inner.1.iter_mut() {
            if f.fault.is_call()
                || f.fault.is_bill()
                || f.fault.is_subscribe()
                || f.channel_type != channel_type
                || !Self::matches_mch(f, Some(mch_id))
            {
                continue;
            }
            match f.fault {
                FaultKind::DuplicateNotify => out.copies = out.copies.max(f.copies),
                FaultKind::DropNotify => out.drop = true,
                FaultKind::TamperAmount => out.tamper_amount = true,
                FaultKind::TamperSignature => out.tamper_signature = true,
                FaultKind::DelayNotify => out.delay = Duration::from_millis(f.delay_ms),
                _ => {}
            }
            f.remaining -= 1;
        }
        inner.1.retain(|f| f.remaining > 0);
        out
    }

    /// Consume one use of the first subscribe fault that matches a send
    /// of `app_id` to `openid`: USER_REFUSED of that openid,
    /// TOKEN_INVALIDATED, RATE_LIMITED (each with no `appId` or this one).
    pub fn take_subscribe(&self, app_id: &str, openid: &str) -> Option<FaultKind> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let idx = inner.1.iter().position(|f| {
            f.fault.is_subscribe()
                && f.app_id.as_deref().is_none_or(|a| a == app_id)
                && f.openid.as_deref().is_none_or(|o| o == openid)
        })?;
        let f = &mut inner.1[idx];
        f.remaining -= 1;
        let kind = f.fault;
        if f.remaining == 0 {
            inner.1.remove(idx);
        }
        Some(kind)
    }

    /// Consume the bill faults of `channel_type` matching a bill of one of
    /// `mch_ids` (see the module comment): a matching BILL_GENERATING alone
    /// when there is one; else, when the day has lines (`has_lines`) or a
    /// BILL_EXTRA_TRADE gives it one, one use of every matching shaping
    /// fault; else nothing.
    pub fn take_bill(&self, channel_type: &str, mch_ids: &[&str], has_lines: bool) -> BillFaults {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let matches = |f: &Fault| {
            f.fault.is_bill()
                && f.channel_type == channel_type
                && f.mch_id.as_deref().is_none_or(|m| mch_ids.contains(&m))
        };
        let mut out = BillFaults::default();
        if let Some(idx) = inner
            .1
            .iter()
            .position(|f| matches(f) && f.fault == FaultKind::BillGenerating)
        {
            out.generating = true;
            inner.1[idx].remaining -= 1;
            inner.1.retain(|f| f.remaining > 0);
            return out;
        }
        let extra = inner
            .1
            .iter()
            .any(|f| matches(f) && f.fault == FaultKind::BillExtraTrade);
        if !has_lines && !extra {
            return out;
        }
        for f in inner.1.iter_mut().filter(|f| matches(f)) {
            match f.fault {
                FaultKind::BillAmountDiff => out.amount_diff.push(f.out_trade_no.clone()),
                FaultKind::BillOmitRefund => out.omit_refund.push(f.out_refund_no.clone()),
                FaultKind::BillExtraTrade => out
                    .extra_trade
                    .push((f.out_trade_no.clone(), f.amount.unwrap_or(1))),
                FaultKind::BillBadSummary => out.bad_summary = true,
                _ => {}
            }
            f.remaining -= 1;
        }
        inner.1.retain(|f| f.remaining > 0);
        out
    }
}

/// `appId` and `openid` belong to the subscribe faults (`openid` to
/// USER_REFUSED, which needs it), which are WeChat's, and are bounded.
fn check_subscribe_fields(req: &FaultRequest) -> Result<(), String> {
    let kind = req.fault;
    if req.app_id.is_some() && !kind.is_subscribe() {
        return Err(
            "appId only applies to USER_REFUSED, TOKEN_INVALIDATED and RATE_LIMITED".into(),
        );
    }
    if req.openid.is_some() != (kind == FaultKind::UserRefused) {
        return Err("openid applies to USER_REFUSED, which needs it".into());
    }
    if kind.is_subscribe() && (req.channel_type != "wx-pay" || req.mch_id.is_some()) {
        return Err("subscribe faults are WeChat's: channelType wx-pay, appId not mchId".into());
    }
    for v in [&req.app_id, &req.openid].into_iter().flatten() {
        if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("appId and openid: 1 to 128 visible ASCII characters".into());
        }
    }
    Ok(())
}

/// `outTradeNo`, `outRefundNo` and `amount` belong to the bill faults that
/// use them, and are bounded.
fn check_bill_fields(req: &FaultRequest) -> Result<(), String> {
    let kind = req.fault;
    if req.out_trade_no.is_some()
        && !matches!(kind, FaultKind::BillAmountDiff | FaultKind::BillExtraTrade)
    {
        return Err("outTradeNo only applies to BILL_AMOUNT_DIFF and BILL_EXTRA_TRADE".into());
    }
    if req.out_refund_no.is_some() && kind != FaultKind::BillOmitRefund {
        return Err("outRefundNo only applies to BILL_OMIT_REFUND".into());
    }
    if req.amount.is_some() && kind != FaultKind::BillExtraTrade {
        return Err("amount only applies to BILL_EXTRA_TRADE".into());
    }
    for no in [&req.out_trade_no, &req.out_refund_no]
        .into_iter()
        .flatten()
    {
        if no.is_empty()
            || no.len() > 64
            || !no
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
        {
            return Err("outTradeNo and outRefundNo: 1 to 64 letters, digits or _-|*@".into());
        }
    }
    if req
        .amount
        .is_some_and(|a| !(1..=cashdesk_core::money::MAX_FEN).contains(&a))
    {
        return Err(format!(
            "amount must be between 1 and {} fen",
            cashdesk_core::money::MAX_FEN
        ));
    }
    Ok(())
}

/// The answer to a call fault in no channel's format: a bare 500 with no
/// signature, as a broken proxy would send, at once for `HTTP_500` and
/// after holding the connection for the fault's delay for `TIMEOUT`.
/// (`SYSTEMERROR` is the channel's to answer; given one, this is a bare 500
/// too.)
pub(crate) async fn bare_reply(fault: CallFault) -> Response {
    if fault.kind == FaultKind::Timeout {
        tokio::time::sleep(fault.delay).await;
    }
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(fault: FaultKind) -> FaultRequest {
        FaultRequest {
            channel_type: "wx-pay".into(),
            fault,
            mch_id: None,
            count: None,
            copies: None,
            delay_ms: None,
            path_contains: None,
            out_trade_no: None,
            out_refund_no: None,
            amount: None,
            app_id: None,
            openid: None,
        }
    }

    #[test]
    fn call_faults_count_down_and_filter() {
        let f = Faults::default();
        let mut r = req(FaultKind::SystemError);
        r.count = Some(2);
        r.mch_id = Some("m1".into());
        r.path_contains = Some("unifiedorder".into());
        f.add(r).unwrap();
        assert_eq!(f.take_call(Some("m2"), "/pay/unifiedorder"), None);
        assert_eq!(f.take_call(Some("m1"), "/pay/orderquery"), None);
        assert!(f.take_call(Some("m1"), "/pay/unifiedorder").is_some());
        assert!(f.take_call(Some("m1"), "/pay/unifiedorder").is_some());
        assert_eq!(f.take_call(Some("m1"), "/pay/unifiedorder"), None);
        assert!(f.list().is_empty());
    }

    #[test]
    fn faults_stay_in_their_channel() {
        let f = Faults::default();
        f.add(FaultRequest {
            channel_type: "ali-pay".into(),
            path_contains: Some("alipay.trade.refund".into()),
            ..req(FaultKind::SystemError)
        })
        .unwrap();
        f.add(FaultRequest {
            channel_type: "lakala".into(),
            ..req(FaultKind::DropNotify)
        })
        .unwrap();
        assert!(
            f.take_call(None, "/sandbox/wechat/pay/unifiedorder")
                .is_none()
        );
        assert!(
            f.take_call(None, "/sandbox/alipay/gateway.do?method=alipay.trade.query")
                .is_none()
        );
        assert!(!f.take_notify("m").drop);
        assert!(!f.take_notify_for("ali-pay", "m").drop);
        assert!(f.take_notify_for("lakala", "m").drop);
        assert!(
            f.take_call(
                None,
                "/sandbox/alipay/gateway.do?method=alipay.trade.refund"
            )
            .is_some()
        );
        assert!(f.list().is_empty());
    }

    #[test]
    fn notify_faults_combine() {
        let f = Faults::default();
        let mut d = req(FaultKind::DuplicateNotify);
        d.copies = Some(5);
        f.add(d).unwrap();
        f.add(req(FaultKind::TamperAmount)).unwrap();
        assert!(f.take_call(None, "/x").is_none());
        let n = f.take_notify("m");
        assert_eq!(n.copies, 5);
        assert!(n.tamper_amount && !n.drop && !n.tamper_signature);
        assert_eq!(
            f.take_notify("m"),
            NotifyFaults {
                copies: 1,
                ..Default::default()
            }
        );
        assert!(
            f.add(FaultRequest {
                channel_type: "unionpay".into(),
                ..req(FaultKind::Http500)
            })
            .is_err()
        );
        let mut bad = req(FaultKind::Timeout);
        bad.count = Some(0);
        assert!(f.add(bad).is_err());
    }

    #[test]
    fn bill_faults_shape_the_next_bills_only() {
        let f = Faults::default();
        f.add(FaultRequest {
            count: Some(2),
            mch_id: Some("sub1".into()),
            out_trade_no: Some("A1".into()),
            ..req(FaultKind::BillAmountDiff)
        })
        .unwrap();
        f.add(req(FaultKind::BillBadSummary)).unwrap();
        // Not a notification or a call fault.
        assert!(f.take_call(None, "/pay/downloadbill").is_none());
        assert_eq!(f.take_notify("sub1").copies, 1);
        // A day without lines uses nothing up; another merchant gets only
        // the unrestricted fault.
        assert_eq!(
            f.take_bill("wx-pay", &["sp", "sub1"], false),
            BillFaults::default()
        );
        assert_eq!(
            f.take_bill("ali-pay", &["sub1"], true),
            BillFaults::default()
        );
        let other = f.take_bill("wx-pay", &["m2"], true);
        assert!(other.bad_summary && other.amount_diff.is_empty());
        let b = f.take_bill("wx-pay", &["sp", "sub1"], true);
        assert_eq!(b.amount_diff, [Some("A1".to_owned())]);
        assert!(!b.bad_summary);
        // Generating goes first and alone.
        f.add(req(FaultKind::BillGenerating)).unwrap();
        f.add(FaultRequest {
            amount: Some(5),
            ..req(FaultKind::BillExtraTrade)
        })
        .unwrap();
        let g = f.take_bill("wx-pay", &["sub1"], false);
        assert!(g.generating && g.extra_trade.is_empty() && g.amount_diff.is_empty());
        // An extra trade makes a bill of an empty day.
        let e = f.take_bill("wx-pay", &["sub1"], false);
        assert_eq!(e.extra_trade, [(None, 5)]);
        assert_eq!(e.amount_diff, [Some("A1".to_owned())]);
        assert!(f.list().is_empty());
        // Fields belong to their faults.
        for bad in [
            FaultRequest {
                out_refund_no: Some("R1".into()),
                ..req(FaultKind::BillAmountDiff)
            },
            FaultRequest {
                amount: Some(0),
                ..req(FaultKind::BillExtraTrade)
            },
            FaultRequest {
                out_trade_no: Some("a b".into()),
                ..req(FaultKind::BillExtraTrade)
            },
            FaultRequest {
                out_trade_no: Some("A1".into()),
                ..req(FaultKind::DropNotify)
            },
        ] {
            assert!(f.add(bad).is_err());
        }
    }

    #[test]
    fn active_faults_are_capped() {
        let f = Faults::default();
        for _ in 0..MAX_FAULTS {
            f.add(req(FaultKind::Http500)).unwrap();
        }
        assert!(f.add(req(FaultKind::Http500)).is_err());
        f.clear();
        assert!(f.add(req(FaultKind::Http500)).is_ok());
    }
}
