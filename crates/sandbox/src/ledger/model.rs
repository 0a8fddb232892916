//! What the order book holds: an order (with each channel's own facts in
//! [`OrderExt`]) and a refund, their states, the errors of the book's
//! rules, and new WeChat-shaped numbers (prepay, transaction, refund ids,
//! openids).

use cashdesk_crypto::wxv2::WxSignType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which API created an order or refund: decides the notification format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V2(WxSignType),
    V3,
    /// Alipay OpenAPI (`gateway.do`).
    Alipay,
    /// Lakala open platform v3.
    Lakala,
}

impl Api {
    fn as_str(self) -> &'static str {
        match self {
            Self::V2(WxSignType::Md5) => "V2:MD5",
            Self::V2(WxSignType::HmacSha256) => "V2:HMAC-SHA256",
            Self::V3 => "V3",
            Self::Alipay => "ALIPAY",
            Self::Lakala => "LAKALA",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "V3" => Some(Self::V3),
            "ALIPAY" => Some(Self::Alipay),
            "LAKALA" => Some(Self::Lakala),
            _ => s
                .strip_prefix("V2:")
                .and_then(WxSignType::parse)
                .map(Self::V2),
        }
    }

    /// The cashdesk `channelType` this API belongs to.
    pub fn channel_type(self) -> &'static str {
        match self {
            Self::V2(_) | Self::V3 => "wx-pay",
            Self::Alipay => "ali-pay",
            Self::Lakala => "lakala",
        }
    }

    /// Alipay and Lakala number a trade when it is created (`trade_no`,
    /// kept in [`Order::prepay_id`]) and keep that number once it is paid;
    /// WeChat assigns its `transaction_id` at payment.
    pub(super) fn numbers_trade_at_creation(self) -> bool {
        matches!(self, Self::Alipay | Self::Lakala)
    }
}

impl Serialize for Api {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Api {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Api::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown api `{s}`")))
    }
}

/// Channel-specific facts of an order that the shared rules do not need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderExt {
    #[default]
    None,
    Alipay(AlipayOrder),
    Lakala(LakalaOrder),
    /// A WeChat service provider's order for a sub-merchant: the order is
    /// in the sub-merchant's book (`Order::mch_id`), `Order::appid` is the
    /// service provider's AppID.
    WechatPartner(PartnerOrder),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerOrder {
    /// The service provider (it signs every call and notification).
    pub sp_mch_id: String,
    /// `sub_appid` when the order was made with the sub-merchant's AppID.
    pub sub_app_id: Option<String>,
    /// The payer under `sub_appid` (`sub_openid`), when given.
    pub sub_openid: Option<String>,
}

impl Order {
    /// The service-provider part of a partner order.
    pub fn partner(&self) -> Option<&PartnerOrder> {
        match &self.ext {
            OrderExt::WechatPartner(p) => Some(p),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlipayOrder {
    /// `alipay.trade.create`, `…wap.pay`, `…page.pay`, `…precreate`, `…app.pay`.
    pub method: String,
    pub product_code: String,
    /// The app's pid (`seller_id` in notifications).
    pub seller_id: String,
    pub buyer_open_id: Option<String>,
    pub return_url: Option<String>,
    pub passback_params: Option<String>,
    pub body: Option<String>,
    pub app_auth_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LakalaOrder {
    /// The Lakala `appid` that placed the order (its merchant record).
    pub app_id: String,
    pub term_no: String,
    /// WECHAT, ALIPAY, UQRCODEPAY.
    pub account_type: String,
    /// 41, 51, 71, 81.
    pub trans_type: String,
    /// Lakala's reconciliation number (`log_no`, 14 digits).
    pub log_no: String,
    /// The wallet's own transaction number, revealed once paid.
    pub acc_trade_no: String,
    pub sub_appid: Option<String>,
    pub remark: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeType {
    Jsapi,
    Native,
    App,
    Mweb,
}

impl TradeType {
    pub fn parse_v2(s: &str) -> Option<Self> {
        match s {
            "JSAPI" => Some(Self::Jsapi),
            "NATIVE" => Some(Self::Native),
            "APP" => Some(Self::App),
            "MWEB" => Some(Self::Mweb),
            _ => None,
        }
    }
    /// The `trade_type` value (v3 uses the same names, h5 being `MWEB`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jsapi => "JSAPI",
            Self::Native => "NATIVE",
            Self::App => "APP",
            Self::Mweb => "MWEB",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayState {
    NotPay,
    Success {
        transaction_id: String,
        paid_at: DateTime<Utc>,
        openid: String,
    },
    Closed,
    PayError,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub mch_id: String,
    pub appid: String,
    pub out_trade_no: String,
    pub api: Api,
    pub trade_type: TradeType,
    pub description: String,
    pub total: i64,
    pub openid: Option<String>,
    pub attach: Option<String>,
    pub notify_url: String,
    pub prepay_id: String,
    pub created_at: DateTime<Utc>,
    pub expire_at: Option<DateTime<Utc>>,
    pub state: PayState,
    /// Sum of refunds accepted so far (fen).
    pub refunded: i64,
    /// The parameters that must match when the same out_trade_no comes again.
    pub fingerprint: String,
    /// Alipay / Lakala specifics (`OrderExt::None` for WeChat).
    pub ext: OrderExt,
}

impl Order {
    /// WeChat's `trade_state` now: SUCCESS, REFUND, NOTPAY, CLOSED, PAYERROR.
    pub fn trade_state(&self, now: DateTime<Utc>) -> &'static str {
        match &self.state {
            PayState::Success { .. } if self.refunded > 0 => "REFUND",
            PayState::Success { .. } => "SUCCESS",
            PayState::NotPay if self.expired(now) => "CLOSED",
            PayState::NotPay => "NOTPAY",
            PayState::Closed => "CLOSED",
            PayState::PayError => "PAYERROR",
        }
    }

    pub fn trade_state_desc(&self, now: DateTime<Utc>) -> &'static str {
        match self.trade_state(now) {
            "SUCCESS" => "支付成功",
            "REFUND" => "转入退款",
            "NOTPAY" => "未支付",
            "CLOSED" => "已关闭",
            _ => "支付失败",
        }
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expire_at.is_some_and(|t| t <= now)
    }

    pub fn paid(&self) -> Option<(&str, DateTime<Utc>, &str)> {
        match &self.state {
            PayState::Success {
                transaction_id,
                paid_at,
                openid,
            } => Some((transaction_id, *paid_at, openid)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundStatus {
    Processing,
    Success,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refund {
    pub mch_id: String,
    pub out_refund_no: String,
    pub refund_id: String,
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount: i64,
    pub total: i64,
    pub reason: Option<String>,
    pub notify_url: Option<String>,
    pub api: Api,
    pub status: RefundStatus,
    pub created_at: DateTime<Utc>,
    pub success_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("order already paid")]
    OrderPaid,
    #[error("order closed")]
    OrderClosed,
    #[error("order does not exist")]
    OrderNotExist,
    #[error("out_trade_no reused with different parameters")]
    OutTradeNoUsed,
    #[error("order not in a refundable state")]
    TradeState,
    #[error("refund exceeds the refundable amount")]
    NotEnough,
    #[error("total does not match the order amount")]
    TotalMismatch,
    #[error("out_refund_no reused with different parameters")]
    RefundMismatch,
    #[error("refund does not exist")]
    RefundNotExist,
}

pub struct NewRefund {
    pub mch_id: String,
    /// Either an out_trade_no or a transaction_id identifies the order.
    pub order: OrderRef,
    pub out_refund_no: String,
    pub amount: i64,
    pub total: i64,
    pub reason: Option<String>,
    pub notify_url: Option<String>,
    pub api: Api,
}

pub enum OrderRef {
    OutTradeNo(String),
    TransactionId(String),
}

fn random_digits(n: usize) -> String {
    cashdesk_crypto::random::bytes(n)
        .into_iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// `wx` + yyyyMMddHHmmss + 20 hex characters (36, like WeChat's).
pub fn new_prepay_id(now: DateTime<Utc>) -> String {
    format!(
        "wx{}{}",
        cashdesk_core::time::to_compact(now),
        hex::encode(cashdesk_crypto::random::bytes(10))
    )
}

/// 28 digits, like WeChat's transaction ids.
pub(super) fn new_transaction_id(now: DateTime<Utc>) -> String {
    format!(
        "420000{}{}",
        &cashdesk_core::time::to_compact(now)[..8],
        random_digits(14)
    )
}

/// 29 digits, like WeChat's refund ids.
pub(super) fn new_refund_id(now: DateTime<Utc>) -> String {
    format!(
        "50300{}{}",
        &cashdesk_core::time::to_compact(now)[..8],
        random_digits(16)
    )
}

/// A sandbox payer's openid (28 characters).
pub fn new_openid() -> String {
    format!("oSBX{}", cashdesk_crypto::random::nonce_str(24))
}
