//! cashdesk-api: the contract of the merchant API (camelCase JSON,
//! ARCHITECTURE.md §5), one definition of every type that crosses it.
//!
//! - The server (`cashdesk-server`, `wire.rs`) builds the responses and the
//!   notification body from these types, so what it sends *is* this
//!   crate's serialization.
//! - The SDK (`cashdesk-sdk`) sends the requests and parses the answers
//!   with the same types (it re-exports them), and so does everything
//!   built on it (the CLI, the integration tests).
//! - The channel adapters (`cashdesk-channels`) build [`PayData`].
//!
//! Two rules make one type serve both sides:
//!
//! - **Serialization is the server's wire**: field names, `null` versus an
//!   absent field (`skip_serializing_if`), numbers versus strings. The
//!   golden tests (`src/tests.rs`) pin the JSON of every type, so a change
//!   of the wire fails a test rather than a merchant.
//! - **Deserialization is tolerant**: an `Option` field reads an absent
//!   field and `null` alike, counters default to 0, timestamps WeChat
//!   wants as strings also read from numbers, and open sets (channel
//!   types, scenes, notification types) are strings, so an older SDK does
//!   not fail on a newer server.
//!
//! Requests carry plain strings and integers: the server is the one that
//! validates (and says which field it refused), and tests must be able to
//! send what a careless merchant would.
//!
//! The operator list filters ([`OrderQuery`], [`RefundQuery`],
//! [`BindingQuery`], [`NotificationQuery`]) are here too: the SDK and the
//! CLI send them, and the server's tests check that it reads every name.

mod admin;
mod envelope;
mod merchant;
mod notification;
mod pay_data;
#[cfg(test)]
mod tests;

pub use admin::{
    BindingQuery, FindingQuery, NotificationQuery, OrderQuery, QueryPairs, ReconRunQuery,
    ReconRunRequest, RefundQuery, StatementQuery,
};
pub use envelope::{CODE_OK, Envelope, MSG_OK};
pub use merchant::{
    ApplyBindingRequest, ApplyBindingResponse, CreateOrderRequest, CreateOrderResponse,
    CreateRefundRequest, OrderSignature, PayResult, PaymentChannel, PaymentList, PaymentRequest,
    PaymentResponse, PlatformKeys, RefundResult, RegisterAppRequest, RegisterAppResponse,
};
pub use notification::{MerchantNotification, NOTIFICATION_ACK_BODY};
pub use pay_data::{PayData, WxAppPayReq, WxRequestPayment};

/// Accepts a JSON string or number (e.g. a unix timestamp) as a string.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::Deserialize;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrOrNum {
        S(String),
        N(serde_json::Number),
    }
    Ok(match StrOrNum::deserialize(d)? {
        StrOrNum::S(s) => s,
        StrOrNum::N(n) => n.to_string(),
    })
}
