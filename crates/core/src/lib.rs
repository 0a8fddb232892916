//! Domain types shared by every cashdesk crate: money in fen, identifiers,
//! merchant-facing value types, the order/refund state machines, the
//! rule for which network addresses count as public ([`address`]) and the
//! one HTML escaping helper ([`html`]).
//!
//! Nothing here does I/O. Every type that wraps outside input has a `parse`
//! constructor, so a value that exists is valid ("parse, don't validate").

pub mod access;
pub mod address;
pub mod applications;
pub mod html;
pub mod ids;
pub mod money;
pub mod state;
pub mod time;
pub mod types;

pub use access::{Permission, Role};
pub use applications::{
    RefundApplicationMode, RefundApplicationPolicy, RefundApplicationState, TimeoutDecision,
};
pub use ids::{
    AccountId, ApplicationId, BindingId, ChannelId, ConfigId, FindingId, NotifyId, OrderId,
    RefundId, TokenId,
};
pub use money::Fen;
pub use state::{
    BindingState, FindingKind, FindingStatus, OrderState, ReconState, RefundState, ResultCode,
};
pub use types::{
    AppId, ChannelType, NotifyUrl, OutRefundNo, OutTradeNo, SceneCode, SignType, StoreId,
};

/// Why a piece of outside input was refused. The message names the field and
/// the rule, so it can be returned to the merchant verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
