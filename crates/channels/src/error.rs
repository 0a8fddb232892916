//! What a channel call or a notification can end in.
//!
//! [`ChannelError`] is shaped by what the server must do next, not by where
//! the failure happened: `Business` (the channel said no — tell the merchant,
//! the order may stay retryable; its [`BusinessKind`] says which refusals
//! are outcomes the server acts on), `Retryable` (the outcome is unknown or the
//! channel is down — SYSTEMERROR, HTTP 5xx, timeouts, network errors: try again
//! or query later; for a refund the refund may have been accepted), `BadResponse`
//! (the answer could not be trusted or understood: for v3 an unverifiable
//! response IS an error), `Config` (the channel config's credentials are wrong)
//! and `InvalidRequest` (the request cannot be sent for this scene, e.g. a
//! JSAPI payment without an openid). Every message carries the channel's own
//! message where there is one, for the merchant's 502, and never a secret.
//!
//! Provider words stay in the provider's module: each adapter turns its own
//! codes (WeChat v2 `err_code`, v3 `code`, Alipay `sub_code`, Lakala `code`)
//! into a [`BusinessKind`] in one mapping function of its `client` module,
//! so the server never compares a channel's code with a string. The code
//! and message themselves stay in the error, for the merchant's 502 text
//! and the refund's `errorCode`.

use std::fmt;

/// A failed channel call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The channel refused the request (ORDERPAID, PARAM_ERROR, NOTENOUGH…):
    /// `kind` is what it means, `code` and `message` are the channel's own.
    #[error("channel refused the request: {code}: {message}")]
    Business {
        kind: BusinessKind,
        code: String,
        message: String,
    },
    /// The channel is busy or unreachable, or answered SYSTEMERROR / 5xx.
    #[error("channel temporarily unavailable: {message}")]
    Retryable {
        code: Option<String>,
        message: String,
    },
    /// The response was unsigned, wrongly signed, or not understood.
    #[error("unverifiable or malformed channel response: {message}")]
    BadResponse { message: String },
    /// The credentials or settings of the channel config are wrong.
    #[error("channel configuration problem: {message}")]
    Config { message: String },
    /// The request cannot be made on this channel (missing openid, scene).
    #[error("invalid request for this channel: {message}")]
    InvalidRequest {
        /// The merchant API's request field at fault (`openid`,
        /// `clientIp`, `channelId`, …).
        field: &'static str,
        message: String,
    },
}

/// What a [`ChannelError::Business`] refusal means, set by the adapter from
/// the channel's own code. Only refusals the server acts on have a kind of
/// their own; everything else is [`BusinessKind::Other`] (the error's
/// `code` and `message` say what the channel said).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BusinessKind {
    /// The order is already paid at the channel (WeChat `ORDERPAID`,
    /// Alipay `ACQ.TRADE_HAS_SUCCESS` / `ACQ.TRADE_HAS_FINISHED`, Lakala
    /// `BBS11004`): the server queries the channel and records the payment.
    OrderAlreadyPaid,
    /// The order is closed (or revoked) at the channel and can never be
    /// paid (WeChat `ORDERCLOSED` / `ORDER_CLOSED`, Alipay
    /// `ACQ.TRADE_HAS_CLOSE`, Lakala `BBS11005`).
    OrderClosed,
    /// A refund query names a refund the channel has no record of: the
    /// request never reached it (WeChat `REFUNDNOTEXIST` /
    /// `RESOURCE_NOT_EXISTS`, Alipay's answer without `refund_status`).
    /// Sending the refund again is safe: channels treat a second request
    /// with the same refund number as the same refund.
    RefundNotFound,
    /// The merchant's balance at the channel cannot cover the refund
    /// (WeChat `NOTENOUGH` / `NOT_ENOUGH`, Alipay
    /// `ACQ.SELLER_BALANCE_NOT_ENOUGH`): the operator must top it up.
    InsufficientBalance,
    /// Any other refusal (`PARAM_ERROR`, `OUT_TRADE_NO_USED`, …).
    Other,
}

/// The kind of a [`ChannelError`], for matching without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelErrorKind {
    Business,
    Retryable,
    BadResponse,
    Config,
    InvalidRequest,
}

impl ChannelError {
    pub fn business(
        kind: BusinessKind,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Business {
            kind,
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn retryable(code: Option<String>, message: impl Into<String>) -> Self {
        Self::Retryable {
            code,
            message: message.into(),
        }
    }
    pub fn bad_response(message: impl Into<String>) -> Self {
        Self::BadResponse {
            message: message.into(),
        }
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }
    /// A request this channel cannot make, blamed on the merchant API's
    /// request field `field`.
    pub fn invalid_request(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ChannelErrorKind {
        match self {
            Self::Business { .. } => ChannelErrorKind::Business,
            Self::Retryable { .. } => ChannelErrorKind::Retryable,
            Self::BadResponse { .. } => ChannelErrorKind::BadResponse,
            Self::Config { .. } => ChannelErrorKind::Config,
            Self::InvalidRequest { .. } => ChannelErrorKind::InvalidRequest,
        }
    }

    /// What a business refusal means; `None` for every other error.
    pub fn business_kind(&self) -> Option<BusinessKind> {
        match self {
            Self::Business { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The channel's error code, when it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Business { code, .. } => Some(code),
            Self::Retryable { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The human message (the channel's own where it gave one).
    pub fn message(&self) -> &str {
        match self {
            Self::Business { message, .. }
            | Self::Retryable { message, .. }
            | Self::BadResponse { message }
            | Self::Config { message }
            | Self::InvalidRequest { message, .. } => message,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }
}

/// Why a notification was refused. In every case nothing may change; the
/// server answers with [`crate::Channel::notification_reply`]`(false)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyError {
    pub kind: NotifyErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyErrorKind {
    /// Not the channel's format at all (bad XML/JSON, DOCTYPE, missing fields).
    Malformed,
    /// The signature, timestamp or ciphertext does not verify: treat as forged.
    Unverifiable,
    /// It may well be genuine but our keys cannot verify it (platform key
    /// rotated: unknown serial; signed body but the APIv3 key does not
    /// decrypt it). The server should query the channel instead; the
    /// notification's order may be unknown (a v3 resource is encrypted), so
    /// that means polling this config's `PAYING` orders and refunds.
    KeyProblem,
    /// Verified, but not for this config or order (appid, mch_id, amount,
    /// out_trade_no).
    Mismatch,
}

impl NotifyError {
    pub fn new(kind: NotifyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(NotifyErrorKind::Malformed, message)
    }
    pub fn unverifiable(message: impl Into<String>) -> Self {
        Self::new(NotifyErrorKind::Unverifiable, message)
    }
    pub fn key_problem(message: impl Into<String>) -> Self {
        Self::new(NotifyErrorKind::KeyProblem, message)
    }
    pub fn mismatch(message: impl Into<String>) -> Self {
        Self::new(NotifyErrorKind::Mismatch, message)
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "notification refused ({:?}): {}",
            self.kind, self.message
        )
    }
}

impl std::error::Error for NotifyError {}
