//! Payment channel adapters: the [`Channel`] trait and one module per channel,
//! each with its own wire types. Adapters never touch the database.
//!
//! Shape (STYLE.md, "one adapter per channel, one trait for all"):
//!
//! - [`channel`]: the trait — one method per flow (create payment for a scene,
//!   query, close, refund, refund query, parse-and-verify notification,
//!   notification reply) — and the channel-neutral request and result types
//!   the server speaks. Nothing in it names a channel.
//! - [`pay_data`]: [`PayData`], the typed `payData` each scene hands the
//!   buyer's front end (the merchant API contract's type, `cashdesk-api`).
//! - [`error`]: [`ChannelError`] (what a call can end in, with a
//!   [`BusinessKind`] for refusals the server acts on) and [`NotifyError`]
//!   (why a notification was refused).
//! - [`meta`]: [`ChannelMeta`], what a channel is (names, scenes,
//!   capabilities), declared by its factory.
//! - [`registry`]: [`build_channel`], [`validate_credentials`] and
//!   [`validate_store_identity`] (a store's own merchant identity at a
//!   config, see [`StoreMerchant`]); a list of
//!   [`registry::ChannelFactory`] values, one per channel module. Adding
//!   Alipay or Lakala is a new module plus one line in that list — there is no
//!   closed enum of adapters to edit elsewhere.
//! - [`http`]: the outbound HTTP client every adapter uses (timeouts, no
//!   redirects, extra trusted roots, TLS verification always on).
//! - [`xml`]: a flat-XML reader/writer that refuses DTDs and entities.
//! - `support`: helpers every adapter uses (base URLs, truncation,
//!   credential field checks).
//! - [`wechat`]: WeChat Pay API v2 and v3.
//! - [`alipay`]: Alipay OpenAPI (`gateway.do`, RSA2).
//! - [`lakala`]: Lakala open platform v3 (`LKLAPI-SHA256withRSA`).
//!
//! Each adapter is split the same way: `client` (signing, calls, answer
//! checks, the mapping of the channel's codes to errors), `flows` (the
//! [`Channel`] implementation, one method per flow, and `payData`),
//! `notify` (notifications) and `wire` (credential shapes and bodies).

pub mod alipay;
pub mod bill;
pub mod channel;
pub mod error;
pub mod http;
pub mod lakala;
pub mod meta;
pub mod pay_data;
pub mod registry;
mod support;
pub mod wechat;
pub mod xml;

pub use channel::{
    Channel, ChannelOrderStatus, CloseRequest, ExpectedOrder, ExpectedRefund, IncomingNotification,
    NotificationReply, NotifiedMerchant, PaidInfo, PayRequest, PayResponse, PayerOAuth,
    PaymentNotification, PaymentResult, QueryRequest, RefundNotification, RefundOutcome,
    RefundQueryRequest, RefundRequest, RefundStatus, StoreMerchant, VerifiedNotification,
};
pub use error::{BusinessKind, ChannelError, ChannelErrorKind, NotifyError, NotifyErrorKind};
pub use http::HttpSettings;
pub use meta::{ChannelMeta, LocalText, OAuthApp, RefundSettlement, SceneInfo};
pub use pay_data::{PayData, WxAppPayReq, WxRequestPayment};
pub use registry::{
    ChannelEnv, IdentitySummary, build_channel, channel_meta, channel_types, resolve_api_version,
    validate_credentials, validate_store_identity,
};
