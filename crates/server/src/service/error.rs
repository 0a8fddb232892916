//! What a service answers when it cannot do what it was asked, in the
//! domain's words. The HTTP edge turns it into an [`crate::error::ApiError`]
//! (the one place a code and a status are chosen: `From` in `error.rs`);
//! the background workers (poller, expiry, outbox delivery, notification
//! reconciliation) match on it and never see an HTTP code.
//!
//! [`ServiceError`] holds the refusals every use case shares (bad input,
//! not found, conflict, a state that forbids the action, a channel
//! failure) and one enum per use-case family for the refusals only that
//! family has: [`StoreRefusal`] (a store an order or payment names),
//! [`BindingRefusal`] (a channel an app may not use), [`TokenRefusal`]
//! (the cashier page's token).

use cashdesk_channels::ChannelError;
use cashdesk_core::{AppId, ChannelId, InvalidInput, StoreId};
use cashdesk_store::StoreError;
use serde_json::Value;

/// A service's failure. Build refusals with the constructors; anything
/// else (a store error, a bug) becomes [`ServiceError::Internal`] /
/// [`ServiceError::Store`], which the edge logs and answers as a bare 5000.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A field of the request breaks a rule: `msg` names the field and
    /// the rule ([`ServiceError::invalid`] writes it as "field: rule").
    #[error("{msg}")]
    Invalid { field: String, msg: String },
    /// What was named does not exist (for this caller); `field` is the
    /// request field that named it, when there is one.
    #[error("{what} not found")]
    NotFound {
        what: String,
        field: Option<&'static str>,
    },
    /// The record exists with different content (an idempotency key
    /// reused with another body, a name taken).
    #[error("{0}")]
    Conflict(String),
    /// The record's state does not allow the action (a paid order closed,
    /// a refund over the refundable amount); `data` adds figures.
    #[error("{msg}")]
    StateNotAllowed { msg: String, data: Option<Value> },
    #[error(transparent)]
    Store(#[from] StoreRefusal),
    #[error(transparent)]
    Binding(#[from] BindingRefusal),
    #[error(transparent)]
    Token(#[from] TokenRefusal),
    /// The channel refused or failed a call (its own error, typed by the
    /// adapter).
    #[error(transparent)]
    Channel(ChannelError),
    /// The channel answered something cashdesk cannot accept (an amount
    /// that is not the order's, a state it does not know) or a channel
    /// config cannot be used; nothing was changed.
    #[error("{0}")]
    ChannelAnswer(String),
    /// The store failed (a conflict is answered as such; anything else is
    /// internal).
    #[error("store: {0}")]
    Storage(#[from] StoreError),
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// "`field`: `reason`".
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            msg: format!("{field}: {reason}"),
        }
    }

    /// A refusal of `field` whose message already says which field and
    /// why (a channel adapter's own words).
    pub fn invalid_as(field: &str, msg: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            msg: msg.into(),
        }
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound {
            what: what.to_string(),
            field: None,
        }
    }

    pub fn state_not_allowed(msg: impl Into<String>) -> Self {
        Self::StateNotAllowed {
            msg: msg.into(),
            data: None,
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// The same failure for another caller of a shared answer (a
    /// single-flight follower): a refusal as it is, an internal failure
    /// as a new one carrying the first's whole cause chain as text (each
    /// caller's answer logs it).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Invalid { field, msg } => Self::Invalid {
                field: field.clone(),
                msg: msg.clone(),
            },
            Self::NotFound { what, field } => Self::NotFound {
                what: what.clone(),
                field: *field,
            },
            Self::Conflict(m) => Self::Conflict(m.clone()),
            Self::StateNotAllowed { msg, data } => Self::StateNotAllowed {
                msg: msg.clone(),
                data: data.clone(),
            },
            Self::Store(r) => Self::Store(r.clone()),
            Self::Binding(r) => Self::Binding(r.clone()),
            Self::Token(r) => Self::Token(*r),
            Self::Channel(e) => Self::Channel(e.clone()),
            Self::ChannelAnswer(m) => Self::ChannelAnswer(m.clone()),
            Self::Storage(StoreError::Conflict(m)) => {
                Self::Storage(StoreError::Conflict(m.clone()))
            }
            Self::Storage(e) => Self::Internal(anyhow::anyhow!("store: {e:#}")),
            Self::Internal(e) => Self::Internal(anyhow::anyhow!("{e:#}")),
        }
    }

    /// Whether trying again later may succeed without anyone changing
    /// anything: a channel that could not be reached or was busy, a
    /// database hiccup. Workers try such work again on their next round
    /// and say so quietly; anything else (a channel answer cashdesk cannot
    /// apply, a bug) will not mend by itself and is logged as an error for
    /// an operator.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Channel(e) => e.is_retryable(),
            Self::Storage(_) => true,
            _ => false,
        }
    }
}

impl From<InvalidInput> for ServiceError {
    fn from(e: InvalidInput) -> Self {
        Self::invalid(e.field, e.reason)
    }
}

/// A store named by an order, a payment or an application.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreRefusal {
    #[error("storeId: app {app_id} has no store {store_id} (an operator creates stores)")]
    Unknown { app_id: AppId, store_id: StoreId },
    #[error("storeId: store {store_id} is disabled")]
    Disabled { store_id: StoreId },
}

/// A channel the app may not use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BindingRefusal {
    #[error(
        "channel {channel_id} is not bound to app {app_id} for this order (apply for it and wait for approval)"
    )]
    NotBound {
        channel_id: ChannelId,
        app_id: AppId,
    },
    #[error("channel {channel_id} is disabled")]
    ChannelDisabled { channel_id: ChannelId },
}

/// The cashier page's token.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum TokenRefusal {
    #[error("unknown cashier token")]
    Unknown,
    #[error("the cashier token has expired with its order")]
    Expired,
}
