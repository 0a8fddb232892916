//! The `Channel` trait and the channel-neutral types the server speaks.
//!
//! Amount checks live where the expected values are known:
//! - queries: the server passes the order's amount in [`QueryRequest`]; an
//!   adapter that reads "paid" with another amount returns
//!   [`ChannelError::BadResponse`] instead of a status to act on;
//! - notifications: the adapter verifies everything that belongs to the
//!   config (signature, timestamp, appid, mch_id, decryption) and returns the
//!   parsed values; the server, once it has loaded the order the notification
//!   names, calls [`VerifiedNotification::check_against`] (or the
//!   payment/refund variants') with the order's id and amount before it
//!   changes anything.
//!
//! Stores (ARCHITECTURE.md §7): a request may carry the [`StoreMerchant`]
//! identity of the order's store at this config (a WeChat service-provider
//! sub-merchant, a Lakala merchant number, an Alipay app authorization);
//! `None` means the config's own merchant account. A verified notification
//! reports whom the channel says it is for ([`NotifiedMerchant`]); once the
//! server has loaded the order it asks the adapter
//! ([`Channel::check_merchant`]) whether that is the identity the order is
//! paid with. The adapter cannot decide alone: two stores may share one
//! config, and only the order knows its store.
//!
//! `parse_notification` is synchronous on purpose: verifying a notification
//! needs only the config's keys, never a network call, so a flood of forged
//! notifications cannot make cashdesk call out.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use cashdesk_core::{ChannelType, Fen, OrderId, RefundId, SceneCode};
use chrono::{DateTime, Utc};

use crate::bill::{BillDownload, BillRequest};
use crate::error::{ChannelError, NotifyError};
use crate::meta::ChannelMeta;
use crate::pay_data::PayData;

/// One payment channel account (a channel config), speaking one API version.
///
/// Object safe; the server holds `Arc<dyn Channel>` built by
/// [`crate::build_channel`].
#[async_trait]
pub trait Channel: Send + Sync + fmt::Debug {
    /// The channel this adapter speaks to.
    fn channel_type(&self) -> ChannelType;
    /// The API version (`v2`, `v3`…), as in the channel config.
    fn api_version(&self) -> &'static str;
    /// The merchant id at the channel (the config's `mchId`).
    fn mch_id(&self) -> &str;
    /// The channel's names, scenes (those [`Channel::create_payment`]
    /// accepts) and capabilities, as its factory declares them.
    fn meta(&self) -> &'static ChannelMeta;
    /// The web OAuth that identifies a JSAPI payer in the channel's app
    /// browser, when the channel has one and this config holds its
    /// credentials (WeChat: the official account's `appSecret`). The
    /// secret stays inside the adapter.
    fn payer_oauth(&self) -> Option<Arc<dyn PayerOAuth>> {
        None
    }

    /// Create the channel-side order for `req.scene` and build `payData`.
    async fn create_payment(&self, req: &PayRequest) -> Result<PayResponse, ChannelError>;
    /// Ask the channel for the order's state.
    async fn query(&self, req: &QueryRequest) -> Result<ChannelOrderStatus, ChannelError>;
    /// Close an unpaid order at the channel (closing a closed order is `Ok`).
    async fn close(&self, req: &CloseRequest) -> Result<(), ChannelError>;
    /// Ask for a (partial) refund; idempotent by `req.refund_id`.
    async fn refund(&self, req: &RefundRequest) -> Result<RefundStatus, ChannelError>;
    /// Ask the channel for a refund's state.
    async fn query_refund(&self, req: &RefundQueryRequest) -> Result<RefundStatus, ChannelError>;
    /// Verify and parse a notification sent to this config's notify URL.
    fn parse_notification(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError>;
    /// The reply the channel expects: `ok` acknowledges, otherwise the
    /// channel's failure reply (it will retry).
    fn notification_reply(&self, ok: bool) -> NotificationReply;
    /// Whether a verified notification (its [`NotifiedMerchant`]) is for
    /// `store`, the identity its order is paid with at this config (`None`:
    /// the config's own account); a [`crate::NotifyErrorKind::Mismatch`]
    /// otherwise. The default is for channels without store identities:
    /// any notification of an order paid with the config's own account.
    /// Fetch the trade bill of `req.date` and write the file, as the
    /// channel serves it, into `sink` (bounded by
    /// [`crate::bill::MAX_BILL_BYTES`]). A day without trades is
    /// [`BillDownload::Empty`], a bill not yet generated
    /// [`BillDownload::NotReady`]; a transport failure is a retryable
    /// error. The default is for channels that serve no bill file
    /// ([`BillDownload::NoFile`]: the day is reconciled by queries).
    async fn download_bill(
        &self,
        req: &BillRequest,
        sink: &mut (dyn std::io::Write + Send),
    ) -> Result<BillDownload, ChannelError> {
        let _ = (req, sink);
        Ok(BillDownload::NoFile)
    }

    fn check_merchant(
        &self,
        notified: &NotifiedMerchant,
        store: Option<&StoreMerchant>,
    ) -> Result<(), NotifyError> {
        let _ = notified;
        match store {
            None => Ok(()),
            Some(s) => Err(NotifyError::mismatch(format!(
                "{} has no per-store identities (store {})",
                self.channel_type(),
                s.store_id
            ))),
        }
    }
}

/// A channel's web OAuth for JSAPI payers (WeChat official account,
/// `snsapi_base`: silent, openid only): the buyer's browser is sent to
/// [`PayerOAuth::authorize_url`], comes back with a `code`, and
/// [`PayerOAuth::payer_id`] exchanges it for the payer id the payment
/// takes. The caller binds `state` to its own session (it is echoed back
/// unchanged).
#[async_trait]
pub trait PayerOAuth: Send + Sync + fmt::Debug {
    /// The AppID the payer id belongs to (the payment's `payer_app_id`).
    fn app_id(&self) -> &str;
    /// Where to send the buyer's browser.
    fn authorize_url(&self, redirect_uri: &str, state: &str) -> String;
    /// Exchange an OAuth `code` for the payer id (openid). A refused or
    /// failed exchange is an error whose message never holds the secret.
    async fn payer_id(&self, code: &str) -> Result<String, ChannelError>;
}

/// A store's own merchant identity at one channel config: the fields the
/// operator stored for it, validated by the channel's
/// [`crate::validate_store_identity`] (e.g. `{"subMchId","subAppId"}` for
/// WeChat Pay, `{"merchantNo","termNo"}` for Lakala, `{"appAuthToken"}` for
/// Alipay). Only the adapter of that channel reads them. `Debug` shows the
/// field names, never their values (an app auth token is a secret).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreMerchant {
    /// cashdesk's `storeId` of the order.
    pub store_id: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl StoreMerchant {
    pub fn new(store_id: impl Into<String>, fields: serde_json::Value) -> Self {
        Self {
            store_id: store_id.into(),
            fields: match fields {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            },
        }
    }

    /// A string field, trimmed; `None` when absent or empty.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

impl fmt::Debug for StoreMerchant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreMerchant")
            .field("store_id", &self.store_id)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Whom a verified notification says it is for, beyond the config's own
/// account, in the channel's own field names (`sub_mch_id`, `merchant_no`,
/// `seller_id`, `auth_app_id`…). Only the adapter that produced it
/// interprets it, in [`Channel::check_merchant`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifiedMerchant(pub BTreeMap<String, String>);

impl NotifiedMerchant {
    /// Keeps the non-empty values of `names` found by `get`.
    pub fn from_fields<'a>(names: &[&str], get: impl Fn(&str) -> Option<&'a str>) -> Self {
        Self(
            names
                .iter()
                .filter_map(|n| {
                    get(n)
                        .filter(|v| !v.is_empty())
                        .map(|v| ((*n).to_owned(), v.to_owned()))
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Pay one order through one scene.
#[derive(Debug, Clone)]
pub struct PayRequest {
    /// cashdesk's order id: the channel's out_trade_no.
    pub order_id: OrderId,
    pub amount: Fen,
    pub scene: SceneCode,
    /// What the buyer sees (WeChat `body` / `description`).
    pub description: String,
    /// The payer at the channel: WeChat openid (required for mini/jsapi).
    pub payer_id: Option<String>,
    /// The WeChat AppID `payer_id` belongs to (an openid is one user's id
    /// under one AppID). `None`: the store's own AppID when its identity
    /// has one, else the config's. A service provider's store with its own
    /// AppID can so also be paid by a user of the provider's AppID (the
    /// cashier page's OAuth runs under the config's official account).
    pub payer_app_id: Option<String>,
    /// The buyer's IP (required for h5).
    pub client_ip: Option<String>,
    pub expire_at: Option<DateTime<Utc>>,
    /// Echoed back by the channel (WeChat `attach`, at most 127 bytes).
    pub attach: Option<String>,
    /// Where the buyer's browser goes after paying on the channel's own
    /// pages (Alipay wap/page `return_url`, and the wap `quit_url`); an
    /// adapter without such pages ignores it. `None` = the config's default.
    pub return_url: Option<String>,
    /// The order's store identity at this config; `None`: the config's own
    /// merchant account.
    pub store: Option<StoreMerchant>,
}

/// What `POST /payment` returns for the scene.
#[derive(Debug, Clone, PartialEq)]
pub struct PayResponse {
    /// The front end's payload (`payData`).
    pub pay_data: PayData,
    /// The channel's prepay id, when it issues one.
    pub prepay_id: Option<String>,
}

/// Query one order. `amount` is the order's amount: a "paid" answer with
/// another amount is refused as [`ChannelError::BadResponse`].
#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub order_id: OrderId,
    pub amount: Fen,
    /// The identity the order is paid with (see [`PayRequest::store`]).
    pub store: Option<StoreMerchant>,
}

#[derive(Debug, Clone)]
pub struct CloseRequest {
    pub order_id: OrderId,
    /// The identity the order is paid with (see [`PayRequest::store`]).
    pub store: Option<StoreMerchant>,
}

#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub order_id: OrderId,
    /// cashdesk's refund id: the channel's out_refund_no.
    pub refund_id: RefundId,
    /// The order's (paid) amount.
    pub order_amount: Fen,
    pub refund_amount: Fen,
    pub reason: Option<String>,
    /// The identity the order was paid with (see [`PayRequest::store`]).
    pub store: Option<StoreMerchant>,
}

#[derive(Debug, Clone)]
pub struct RefundQueryRequest {
    pub order_id: OrderId,
    pub refund_id: RefundId,
    /// The identity the order was paid with (see [`PayRequest::store`]).
    pub store: Option<StoreMerchant>,
}

/// A payment the channel reports as made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidInfo {
    pub transaction_id: String,
    pub pay_time: DateTime<Utc>,
    pub amount: Fen,
}

/// The channel's view of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelOrderStatus {
    Paid(PaidInfo),
    /// Paid, and refunds have been made since (WeChat `REFUND`).
    Refunded(PaidInfo),
    /// Created, not paid (WeChat `NOTPAY`).
    NotPaid,
    /// The buyer is paying (WeChat `USERPAYING`, `ACCEPT`).
    Paying,
    /// Closed or revoked: it will never be paid.
    Closed,
    /// The payment failed (WeChat `PAYERROR`).
    Failed {
        code: String,
        message: String,
    },
    /// The channel has no such order (it was never created there).
    NotFound,
    /// A state this adapter does not know.
    Unknown {
        state: String,
    },
}

/// How a refund stands at the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOutcome {
    Success,
    Processing,
    /// Closed by the channel without money moving (WeChat `REFUNDCLOSE`/`CLOSED`).
    Closed,
    /// Needs manual handling (WeChat `CHANGE`/`ABNORMAL`).
    Abnormal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundStatus {
    pub outcome: RefundOutcome,
    pub channel_refund_id: Option<String>,
    pub refund_amount: Option<Fen>,
    pub success_time: Option<DateTime<Utc>>,
}

/// A notification as received on `/api/cashier-desk/notify/{configId}`.
#[derive(Debug, Clone, Default)]
pub struct IncomingNotification {
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// The raw body bytes (signatures cover them exactly).
    pub body: Vec<u8>,
}

impl IncomingNotification {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A notification that verified against the channel config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedNotification {
    Payment(PaymentNotification),
    Refund(RefundNotification),
    /// A verified event this adapter has no use for; acknowledge it.
    Other {
        event: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotification {
    /// The out_trade_no the channel names (cashdesk's order id).
    pub out_trade_no: String,
    pub result: PaymentResult,
    /// Whom the channel says it is for (checked with
    /// [`Channel::check_merchant`] once the order is known).
    pub merchant: NotifiedMerchant,
    /// The attach-style field as echoed (WeChat `attach`, Alipay
    /// `passback_params` decoded, Lakala `remark`); `None` when absent.
    pub attach: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentResult {
    Paid(PaidInfo),
    /// The channel reports a failed payment (v2 `result_code` FAIL).
    Failed {
        code: String,
        message: String,
    },
    /// The channel closed the unpaid order (Alipay `TRADE_CLOSED`, Lakala
    /// `CLOSE`): it will never be paid. Like a query answering
    /// [`ChannelOrderStatus::Closed`], this closes a `PAYING` order.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotification {
    pub out_trade_no: String,
    /// The out_refund_no the channel names (cashdesk's refund id).
    pub out_refund_no: String,
    pub channel_refund_id: Option<String>,
    pub transaction_id: Option<String>,
    pub outcome: RefundOutcome,
    pub refund_amount: Fen,
    pub order_amount: Option<Fen>,
    pub success_time: Option<DateTime<Utc>>,
    /// Whom the channel says it is for (see [`PaymentNotification::merchant`]).
    pub merchant: NotifiedMerchant,
}

/// The order a payment notification must match.
#[derive(Debug, Clone)]
pub struct ExpectedOrder {
    pub order_id: OrderId,
    pub amount: Fen,
}

/// The refund a refund notification must match.
#[derive(Debug, Clone)]
pub struct ExpectedRefund {
    pub order_id: OrderId,
    pub refund_id: RefundId,
    pub refund_amount: Fen,
}

impl PaymentNotification {
    /// The order id the notification names, if it is one of cashdesk's.
    pub fn order_id(&self) -> Option<OrderId> {
        OrderId::parse(&self.out_trade_no)
    }

    /// Refuse (as [`crate::NotifyErrorKind::Mismatch`]) a notification for
    /// another order or, when paid, another amount.
    pub fn check_against(&self, expected: &ExpectedOrder) -> Result<(), NotifyError> {
        if self.out_trade_no != expected.order_id.as_str() {
            return Err(NotifyError::mismatch(format!(
                "notification is for out_trade_no {}, not {}",
                self.out_trade_no, expected.order_id
            )));
        }
        if let PaymentResult::Paid(paid) = &self.result
            && paid.amount != expected.amount
        {
            return Err(NotifyError::mismatch(format!(
                "notified amount {} fen differs from the order amount {} fen",
                paid.amount, expected.amount
            )));
        }
        Ok(())
    }
}

impl RefundNotification {
    pub fn refund_id(&self) -> Option<RefundId> {
        RefundId::parse(&self.out_refund_no)
    }

    /// Refuse a notification for another refund, order or amount.
    pub fn check_against(&self, expected: &ExpectedRefund) -> Result<(), NotifyError> {
        if self.out_refund_no != expected.refund_id.as_str() {
            return Err(NotifyError::mismatch(format!(
                "notification is for out_refund_no {}, not {}",
                self.out_refund_no, expected.refund_id
            )));
        }
        if self.out_trade_no != expected.order_id.as_str() {
            return Err(NotifyError::mismatch(format!(
                "refund notification is for out_trade_no {}, not {}",
                self.out_trade_no, expected.order_id
            )));
        }
        if self.refund_amount != expected.refund_amount {
            return Err(NotifyError::mismatch(format!(
                "notified refund amount {} fen differs from the refund amount {} fen",
                self.refund_amount, expected.refund_amount
            )));
        }
        Ok(())
    }
}

impl VerifiedNotification {
    /// Check a payment notification against its order; other kinds pass
    /// (refunds are checked with [`RefundNotification::check_against`]).
    pub fn check_against(&self, expected: &ExpectedOrder) -> Result<(), NotifyError> {
        match self {
            Self::Payment(p) => p.check_against(expected),
            Self::Refund(r) if r.out_trade_no != expected.order_id.as_str() => {
                Err(NotifyError::mismatch(format!(
                    "refund notification is for out_trade_no {}, not {}",
                    r.out_trade_no, expected.order_id
                )))
            }
            _ => Ok(()),
        }
    }
}

/// The HTTP answer to a channel notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationReply {
    pub status: u16,
    /// `None` when the body is empty.
    pub content_type: Option<&'static str>,
    pub body: String,
}
