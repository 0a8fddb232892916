//! cashdesk-sdk: a small async client for the cashdesk merchant API.
//!
//! - [`RequestSigner`] makes the five `Cashdesk-*` request headers
//!   (ARCHITECTURE.md §5.1) with [`cashdesk_crypto::apisig`], so the SDK, the
//!   server and the sandbox share one implementation of the string to sign.
//! - [`SignatureVerifier`] checks what cashdesk signed: responses
//!   (`TIMESTAMP\nNONCE\nBODY\n`) and merchant notifications (the request
//!   layout, §5.3). Shared-key apps verify with the app key; RSA2/SM2 apps
//!   with cashdesk's platform public key.
//! - [`Client`] sends typed requests, verifies every response to a signed
//!   request before it parses a byte of it, and turns a non-1000 envelope into
//!   [`SdkError::Api`]. [`Client::send_raw`] skips all of that, for tests of
//!   bad input.
//! - [`Client::pay`] answers with a typed [`PayData`]: one variant per
//!   shape of `payData` (`wx.requestPayment` parameters, WeChat app
//!   `PayReq`, Native code URL, H5 URL, Alipay redirect/app/QR/trade
//!   number), recognised by its fields; an unknown shape is
//!   [`PayData::Other`] with the JSON as sent, not an error.
//! - [`AdminClient`] calls the operator API (`/api/admin`, bearer token).
//! - The request, response and notification types are the contract
//!   crate's (`cashdesk-api`), re-exported here: the server serializes the
//!   very same types, so the SDK cannot drift from what it sends.
//!
//! TLS verification is always on; self-hosted TLS is supported by adding a
//! root certificate ([`ClientBuilder::add_root_certificate_pem`]).
//!
//! ```no_run
//! use cashdesk_sdk::{Client, CreateOrderRequest, Credentials};
//!
//! # async fn run() -> cashdesk_sdk::Result<()> {
//! let client = Client::new(
//!     "http://127.0.0.1:8080",
//!     "app0123456789abcdef",
//!     Credentials::hmac_sha256("the app key from registration"),
//! )?;
//! let order = client
//!     .create_order(&CreateOrderRequest::new("T1001", 1, "Test order"))
//!     .await?;
//! println!("send the buyer to {}", order.cashier_url);
//! # Ok(())
//! # }
//! ```
//!
//! A merchant's notify handler checks what it receives with
//! [`verify_notification`] and answers [`NOTIFICATION_ACK_BODY`]:
//!
//! ```
//! use cashdesk_sdk::{Credentials, HeaderMap, SignatureVerifier, verify_notification};
//!
//! let verifier = SignatureVerifier::new("app0123456789abcdef", &Credentials::hmac_sha256("key"))?;
//! // An unsigned request is refused before its body is read.
//! let forged = verify_notification(
//!     &verifier,
//!     "https://shop.example.com/pay/notify",
//!     &HeaderMap::new(),
//!     br#"{"notifyId":"N1"}"#,
//! );
//! assert!(forged.is_err());
//! # Ok::<(), cashdesk_sdk::SdkError>(())
//! ```

mod accounts;
mod admin;
mod client;
mod model;
mod notification;
mod signing;
#[cfg(test)]
mod tests;

pub use admin::{
    AdminClient, AppSettings, BindingQuery, ChannelConfigCreated, ChannelCreated,
    CreateChannelConfigRequest, CreateChannelRequest, CreateStoreRequest, FindingQuery,
    NotificationQuery, OrderQuery, ReconRunQuery, ReconRunRequest, RefundQuery, StatementQuery,
};
pub use client::{Client, ClientBuilder, RawResponse};
pub use model::{
    ApplyBindingRequest, ApplyBindingResponse, CreateOrderRequest, CreateOrderResponse,
    CreateRefundRequest, Envelope, OrderSignature, PayData, PayResult, PaymentChannel, PaymentList,
    PaymentRequest, PaymentResponse, PlatformKeys, RefundResult, RegisterAppRequest,
    RegisterAppResponse, WxAppPayReq, WxRequestPayment,
};
pub use notification::{
    MerchantNotification, NOTIFICATION_ACK_BODY, notify_path_and_query, verify_notification,
};
pub use signing::{
    Credentials, DEFAULT_MAX_SKEW_SECS, RequestSigner, SignatureVerifier, SignedHeaders,
};

pub use cashdesk_core::{RefundState, SignType};
pub use cashdesk_crypto::Secret;
pub use reqwest::header::HeaderMap;
pub use reqwest::{Method, StatusCode};

/// The success code of the response envelope.
pub use cashdesk_api::CODE_OK;

/// Everything the SDK can fail with. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// A key in [`Credentials`] could not be used (bad PEM, wrong sign type).
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// The base URL or a path could not form a request URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// Connecting, TLS, timeout or reading the body failed.
    #[error("HTTP error: {0}")]
    Http(#[from] reqwest::Error),
    /// cashdesk answered with a non-1000 envelope.
    #[error("cashdesk error {code} (HTTP {status}): {msg}")]
    Api {
        status: u16,
        code: i64,
        msg: String,
        data: Option<serde_json::Value>,
    },
    /// A response to a signed request was unsigned, badly signed, signed for
    /// another app or outside the timestamp window. Its content is not to be
    /// trusted.
    #[error("response signature rejected: {0}")]
    BadResponseSignature(String),
    /// A merchant notification failed verification; answer it with an error
    /// status and do not act on it.
    #[error("notification signature rejected: {0}")]
    BadNotificationSignature(String),
    /// The body is not what the API contract says (not an envelope, wrong
    /// `data` shape, not a notification).
    #[error("unexpected response or notification body: {0}")]
    InvalidBody(String),
}

pub type Result<T, E = SdkError> = std::result::Result<T, E>;
