//! What a token or send call can end in, shaped by what the caller must do
//! next ([`SubscribeErrorKind`]). WeChat answers HTTP 200 with `{errcode,
//! errmsg}` for every refusal; the errcode and errmsg are kept as they came
//! (errmsg carries WeChat's `rid`, which its support asks for).
//!
//! Codes (PROTOCOLS-2.md §2; wechatpy `wechatpy/constants.py`, developers.weixin.qq.com):
//!
//! | errcode | meaning | kind |
//! |---|---|---|
//! | 40001, 40014, 42001 | token invalid, not the latest, or expired | [`TokenInvalid`](SubscribeErrorKind::TokenInvalid) |
//! | -1, 45009, 45011 | system busy, quota, minute quota / force refresh too soon | [`Retryable`](SubscribeErrorKind::Retryable) |
//! | 40013, 40125, 40164, 41002, 41004, 40002, 48001 | bad AppID or AppSecret, IP not whitelisted, API not granted | [`Credentials`](SubscribeErrorKind::Credentials) |
//! | 43101, 40003, 40037, 47003, 41030, anything else | user refused, openid, template, data, page | [`Final`](SubscribeErrorKind::Final) |
//!
//! Transport failures (connect, timeout, reset) and HTTP 5xx / 429 are
//! retryable; an answer that is not WeChat's JSON is
//! [`BadResponse`](SubscribeError::BadResponse) (retryable: a proxy's page).
//! No message ever holds the AppSecret or a token.

use crate::error::ChannelError;

/// A failed `stable_token` or `subscribe/send` call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// WeChat answered `errcode` ≠ 0.
    #[error("{call}: errcode {errcode}: {errmsg}")]
    Refused {
        call: &'static str,
        errcode: i64,
        errmsg: String,
    },
    /// WeChat could not be reached or answered HTTP 5xx / 429.
    #[error("{call}: WeChat unavailable: {message}")]
    Unavailable { call: &'static str, message: String },
    /// The answer was not WeChat's JSON.
    #[error("{call}: unreadable answer: {message}")]
    BadResponse { call: &'static str, message: String },
    /// The message or token request cannot be sent as it is (checked
    /// before any call: an empty openid, a value that is no string…), or
    /// the client cannot be built (base URL, trusted CA).
    #[error("{call}: {message}")]
    Invalid { call: &'static str, message: String },
}

/// What the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscribeErrorKind {
    /// The access token is invalid or expired: get a fresh one
    /// (`stable_token`, `force_refresh` only when the same token comes
    /// back) and send once more.
    TokenInvalid,
    /// Try again later (with backoff); nothing was delivered.
    Retryable,
    /// The AppID / AppSecret (or the server's IP whitelist) is wrong: no
    /// message of this AppID can go until the config is fixed.
    Credentials,
    /// This message will never go (user refused, unknown openid or
    /// template, bad data or page): record it with the errcode.
    Final,
}

impl SubscribeError {
    pub fn kind(&self) -> SubscribeErrorKind {
        match self {
            Self::Refused { errcode, .. } => kind_of(*errcode),
            Self::Unavailable { .. } | Self::BadResponse { .. } => SubscribeErrorKind::Retryable,
            Self::Invalid { .. } => SubscribeErrorKind::Final,
        }
    }

    /// WeChat's errcode, when it answered one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::Refused { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// WeChat's errmsg, when it answered one.
    pub fn errmsg(&self) -> Option<&str> {
        match self {
            Self::Refused { errmsg, .. } => Some(errmsg),
            _ => None,
        }
    }

    /// Whether sending the same message again can never succeed.
    pub fn is_final(&self) -> bool {
        matches!(
            self.kind(),
            SubscribeErrorKind::Final | SubscribeErrorKind::Credentials
        )
    }

    /// A transport failure of the shared HTTP client ([`crate::http`]).
    pub(crate) fn from_transport(call: &'static str, e: ChannelError) -> Self {
        match e {
            ChannelError::Config { message } => Self::Invalid { call, message },
            ChannelError::BadResponse { message } => Self::BadResponse { call, message },
            other => Self::Unavailable {
                call,
                message: other.to_string(),
            },
        }
    }
}

/// The kind of a WeChat errcode (module comment).
pub fn kind_of(errcode: i64) -> SubscribeErrorKind {
    match errcode {
        40001 | 40014 | 42001 => SubscribeErrorKind::TokenInvalid,
        -1 | 45009 | 45011 => SubscribeErrorKind::Retryable,
        40002 | 40013 | 40125 | 40164 | 41002 | 41004 | 48001 => SubscribeErrorKind::Credentials,
        _ => SubscribeErrorKind::Final,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscribeErrorKind as K;

    fn refused(errcode: i64) -> SubscribeError {
        SubscribeError::Refused {
            call: "subscribe/send",
            errcode,
            errmsg: "x".into(),
        }
    }

    #[test]
    fn errcodes_by_what_to_do_next() {
        for (code, kind) in [
            (40001, K::TokenInvalid),
            (40014, K::TokenInvalid),
            (42001, K::TokenInvalid),
            (45009, K::Retryable),
            (45011, K::Retryable),
            (-1, K::Retryable),
            (40013, K::Credentials),
            (40125, K::Credentials),
            (40164, K::Credentials),
            (43101, K::Final),
            (40003, K::Final),
            (40037, K::Final),
            (47003, K::Final),
            (41030, K::Final),
            (99999, K::Final),
        ] {
            let e = refused(code);
            assert_eq!(e.kind(), kind, "{code}");
            assert_eq!(e.errcode(), Some(code));
            assert_eq!(e.errmsg(), Some("x"));
            assert_eq!(e.is_final(), matches!(kind, K::Final | K::Credentials));
        }
        let e = SubscribeError::from_transport(
            "subscribe/send",
            ChannelError::retryable(None, "could not connect"),
        );
        assert_eq!(e.kind(), K::Retryable);
        assert_eq!(e.errcode(), None);
    }
}
