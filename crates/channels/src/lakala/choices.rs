//! Every choice made where PROTOCOLS.md says UNCONFIRMED or is silent, in
//! one place so a fact learned in the field is a one-line change (the
//! sandbox must mirror these, see `cashdesk_sandbox::lakala::codes`).
//! This is also the one place Lakala's result codes become errors and
//! [`BusinessKind`]s ([`error`]).

use crate::channel::{ChannelOrderStatus, RefundOutcome};
use crate::error::{BusinessKind, ChannelError};

/// UNCONFIRMED: "trade does not exist" (query, close, refund query);
/// the sandbox's `lakala::codes::ORDER_NOT_EXIST` mirrors it.
pub const CODE_NOT_FOUND: &str = "BBS11001";
/// UNCONFIRMED: system error / busy / still processing — the outcome is
/// unknown, ask again. Open-source production integrations treat
/// BBS10000, BBS11105 and BBS11112 as "processing, query again", so they
/// are never read as "not found".
pub const RETRYABLE_CODES: &[&str] = &["BBS10000", "BBS11105", "BBS11112", "BBS99999"];
/// UNCONFIRMED: our signature, appId or certificate refused.
pub const CONFIG_CODES: &[&str] = &["BBS10001", "BBS10002"];
/// UNCONFIRMED: the order is already paid (preorder, close); the sandbox's
/// `lakala::codes::ORDER_PAID` mirrors it.
pub const CODE_ORDER_PAID: &str = "BBS11004";
/// UNCONFIRMED: the order is closed (preorder); the sandbox's
/// `lakala::codes::ORDER_CLOSED` mirrors it.
pub const CODE_ORDER_CLOSED: &str = "BBS11005";

/// UNCONFIRMED: Lakala's refund-query endpoint. A refund is a trade with
/// its own `out_trade_no` (cashdesk's refund id), so it is asked for
/// with tradequery; an unknown refund stays `Processing` (never
/// `Closed`: with an unconfirmed endpoint, "not found" must not be
/// read as "no money moved").
pub const REFUND_QUERY_PATH: &str = super::QUERY_PATH;

/// Silent in PROTOCOLS.md: where the H5 (81) URL is in
/// `acc_resp_fields` (first present wins).
pub const H5_URL_FIELDS: &[&str] = &["redirect_url", "h5_url", "code"];

/// Silent: the wallet of the native (41) scene. Lakala's NATIVE serves
/// Alipay and UnionPay QR, not WeChat.
pub const NATIVE_ACCOUNT_TYPE: &str = "ALIPAY";

/// UNCONFIRMED: the preorder's `subject` (Lakala documents it as
/// String(42), "at most 42 bytes" at the wallet): the order title is cut
/// to 42 bytes on a character boundary (14 Chinese characters). The
/// sandbox refuses a longer one.
pub const SUBJECT_MAX_BYTES: usize = 42;

/// Silent: `request_ip` for server-side calls (close, refund) and when
/// the buyer's IP is unknown.
pub const SERVER_REQUEST_IP: &str = "127.0.0.1";

/// Silent: the order's expiry goes in `acc_busi_fields.timeout_express`,
/// whole minutes, rounded up, at least 1.
pub fn timeout_express(minutes_left: i64) -> String {
    minutes_left.max(1).to_string()
}

/// jsapi (51) serves WeChat and Alipay; the payer id decides: an Alipay
/// user id (`2088` + 12 digits) is ALIPAY, anything else a WeChat openid.
pub fn jsapi_wallet(payer_id: &str) -> &'static str {
    if crate::alipay::is_alipay_user_id(payer_id) {
        "ALIPAY"
    } else {
        "WECHAT"
    }
}

/// The payment status field of a notification (`trade_status`, as
/// Lakala's samples show; `trade_state` as in tradequery is accepted too).
pub fn notify_status(t: &super::wire::Trade) -> Option<&str> {
    t.trade_status
        .as_deref()
        .or(t.trade_state.as_deref())
        .filter(|s| !s.is_empty())
}

/// tradequery's `trade_state` → the order status (amount checked by the caller).
pub fn order_state(state: &str) -> Option<ChannelOrderStatus> {
    Some(match state {
        "INIT" | "CREATE" => ChannelOrderStatus::NotPaid,
        "DEAL" => ChannelOrderStatus::Paying,
        "CLOSE" => ChannelOrderStatus::Closed,
        "FAIL" => ChannelOrderStatus::Failed {
            code: "FAIL".into(),
            message: String::new(),
        },
        // SUCCESS, PART_REFUND, REFUND need the paid details.
        _ => return None,
    })
}

/// A refund trade's `trade_state` → its outcome. Missing or unknown
/// states are `Processing` (query again).
pub fn refund_outcome(state: Option<&str>) -> RefundOutcome {
    match state {
        Some("SUCCESS") => RefundOutcome::Success,
        Some("FAIL" | "CLOSE") => RefundOutcome::Closed,
        _ => RefundOutcome::Processing,
    }
}

/// What a business refusal's code means. No insufficient-balance code is
/// documented (a refund beyond what is refundable is `BBS11006`, a refusal
/// like any other).
pub fn business_kind(code: &str) -> BusinessKind {
    match code {
        CODE_ORDER_PAID => BusinessKind::OrderAlreadyPaid,
        CODE_ORDER_CLOSED => BusinessKind::OrderClosed,
        _ => BusinessKind::Other,
    }
}

/// The one place Lakala's error codes become errors.
pub fn error(what: &str, code: &str, msg: &str) -> ChannelError {
    let detail = format!("{what}: {code}: {msg}");
    if RETRYABLE_CODES.contains(&code) {
        ChannelError::retryable(Some(code.to_owned()), detail)
    } else if CONFIG_CODES.contains(&code) {
        ChannelError::config(detail)
    } else {
        ChannelError::business(business_kind(code), code, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChannelErrorKind as K;

    #[test]
    fn choices_are_stable() {
        assert_eq!(jsapi_wallet("2088102146225135"), "ALIPAY");
        assert_eq!(jsapi_wallet("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), "WECHAT");
        assert_eq!(timeout_express(0), "1");
        assert_eq!(timeout_express(30), "30");
        assert_eq!(refund_outcome(Some("SUCCESS")), RefundOutcome::Success);
        assert_eq!(refund_outcome(Some("FAIL")), RefundOutcome::Closed);
        assert_eq!(refund_outcome(None), RefundOutcome::Processing);
        assert_eq!(order_state("INIT"), Some(ChannelOrderStatus::NotPaid));
        assert_eq!(order_state("SUCCESS"), None);
        assert_eq!(error("x", "BBS99999", "系统繁忙").kind(), K::Retryable);
        assert_eq!(error("x", "BBS10001", "验签失败").kind(), K::Config);
        let e = error("x", "BBS11006", "退款金额超出可退金额");
        assert_eq!(e.kind(), K::Business);
        assert_eq!(e.code(), Some("BBS11006"));
        assert_eq!(e.message(), "退款金额超出可退金额");
    }

    #[test]
    fn codes_map_to_business_kinds() {
        for (code, kind) in [
            ("BBS11004", BusinessKind::OrderAlreadyPaid),
            ("BBS11005", BusinessKind::OrderClosed),
            ("BBS11006", BusinessKind::Other),
            ("BBS11002", BusinessKind::Other),
        ] {
            let e = error("x", code, "说明");
            assert_eq!(e.business_kind(), Some(kind), "{code}");
            assert_eq!(e.code(), Some(code));
        }
        assert_eq!(error("x", "BBS99999", "系统繁忙").business_kind(), None);
    }
}
