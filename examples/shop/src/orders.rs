//! Buy-now and settlement: the shop's side of a payment.
//!
//! Buy-now reserves stock and makes an order in one transaction
//! ([`Db::find_or_reserve`]), then asks cashdesk for it with the order's
//! stored create-order body. cashdesk treats a repeated `outTradeNo` with
//! the same bytes as the same request and answers the original order, so a
//! retried or reused buy-now never makes a second cashdesk order; and
//! paying a `PAYING` order again with the same channel hands out a fresh
//! `payData` for the same payment. A user's pending order for the same
//! goods is reused for `reuse_days`; after that it is closed at cashdesk
//! (the stock comes back) and a new one is made.
//!
//! Stock changes only in [`Db::settle`], fed by cashdesk's signed
//! notifications and, where buy-now or a cancel learns it first, by
//! cashdesk's answers: whichever comes first settles, the other changes
//! nothing.

use cashdesk_sdk::{CreateOrderRequest, PayData, PayResult, PaymentRequest, SdkError};
use serde::Serialize;

use crate::AppState;
use crate::db::{Notified, Order, Outcome, Reservation};

/// Codes of the shop's errors (`{"code", "message"}` answers).
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no such goods")]
    UnknownGoods,
    #[error("no such order")]
    UnknownOrder,
    #[error("only {available} left")]
    OutOfStock { available: i64 },
    #[error(
        "order {order_id} for {qty} of these goods is waiting for payment: pay or cancel it first"
    )]
    PendingOrder { order_id: String, qty: i64 },
    #[error("the order is {0}")]
    State(String),
    #[error("cashdesk: {0}")]
    Gateway(#[from] SdkError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// `POST /buy-now`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyNow {
    pub user_id: String,
    pub goods_id: String,
    pub qty: i64,
    /// The buyer's openid under the mini-program's AppID. A real shop
    /// keeps it from `wx.login` → `code2Session`; here it defaults to
    /// `userId`.
    pub openid: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bought {
    #[serde(flatten)]
    pub order: Order,
    /// Whether an existing pending order was handed out again.
    pub reused: bool,
    /// What `wx.requestPayment` takes (with a channel configured).
    pub pay_data: Option<PayData>,
    /// cashdesk's cashier page for the order.
    pub cashier_url: String,
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn check(req: &BuyNow) -> Result<(), ShopError> {
    let id_ok = |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic());
    if !id_ok(&req.user_id) {
        return Err(ShopError::BadRequest(
            "userId: 1-64 printable ASCII characters".into(),
        ));
    }
    if !id_ok(&req.goods_id) {
        return Err(ShopError::BadRequest(
            "goodsId: 1-64 printable ASCII characters".into(),
        ));
    }
    if !(1..=99).contains(&req.qty) {
        return Err(ShopError::BadRequest("qty: 1 to 99".into()));
    }
    if req.openid.as_deref().is_some_and(|o| !id_ok(o)) {
        return Err(ShopError::BadRequest(
            "openid: 1-64 printable ASCII characters".into(),
        ));
    }
    Ok(())
}

/// Reserves (or reuses) and opens the payment. A few rounds at most: a
/// reused order that cashdesk has already settled is settled here too, and
/// the next round makes a new one.
pub async fn buy_now(state: &AppState, req: &BuyNow) -> Result<Bought, ShopError> {
    check(req)?;
    let openid = req.openid.as_deref().unwrap_or(&req.user_id);
    for _ in 0..3 {
        let new = crate::db::NewOrder {
            user_id: &req.user_id,
            openid,
            goods_id: &req.goods_id,
            qty: req.qty,
            now: now(),
            reuse_secs: i64::from(state.reuse_days) * 86_400,
        };
        let expire_minutes = state.expire_minutes;
        let notify_url = state.notify_url.clone();
        let reservation = state
            .db
            .find_or_reserve(&new, |order_id, amount, goods| {
                let mut r = CreateOrderRequest::new(order_id, amount, goods.name.clone());
                r.goods_desc = Some(format!("{} x {}", goods.name, req.qty));
                r.notify_url = Some(notify_url);
                r.expire_minutes = Some(expire_minutes);
                r.third_party_user = Some(req.user_id.clone());
                // One body, serialized once and kept: sent again byte for byte.
                serde_json::to_string(&r).unwrap_or_default()
            })
            .await?;
        let (order, reused) = match reservation {
            Reservation::New(order) => (order, false),
            Reservation::Reused(order) => (order, true),
            Reservation::Stale(order) => {
                close(state, &order).await?;
                continue;
            }
            Reservation::OtherQty(order) => {
                return Err(ShopError::PendingOrder {
                    order_id: order.order_id,
                    qty: order.qty,
                });
            }
            Reservation::UnknownGoods => return Err(ShopError::UnknownGoods),
            Reservation::OutOfStock { available } => {
                return Err(ShopError::OutOfStock { available });
            }
        };
        if let Some(bought) = open_payment(state, order, reused).await? {
            return Ok(bought);
        }
    }
    Err(ShopError::State(
        "changing at cashdesk right now; try again".into(),
    ))
}

/// Asks cashdesk for the order (idempotently) and, with a channel, for its
/// `payData`. `None` when cashdesk says the order is over (it is settled
/// here now).
async fn open_payment(
    state: &AppState,
    order: Order,
    reused: bool,
) -> Result<Option<Bought>, ShopError> {
    let request: CreateOrderRequest = serde_json::from_str(&order.gateway_request)
        .map_err(|e| ShopError::BadRequest(format!("stored order request: {e}")))?;
    let created = state.gateway.create_order(&request).await?;
    state
        .db
        .set_gateway_order_id(&order.order_id, &created.order_id)
        .await?;
    let pay_data = match &state.channel_id {
        None => None,
        Some(channel_id) => {
            let mut pay = PaymentRequest::new(&order.order_id, channel_id);
            pay.openid = Some(order.openid.clone());
            match state.gateway.pay(&pay).await {
                Ok(paid) => Some(paid.pay_data),
                // Paid, closed or expired at cashdesk: settle from its answer.
                Err(SdkError::Api { code: 4220, .. }) => {
                    let result = state
                        .gateway
                        .query_pay_result(&order.order_id, false)
                        .await?;
                    if apply_result(state, &order, &result).await? {
                        return Ok(None);
                    }
                    return Err(ShopError::State(format!(
                        "{} at cashdesk",
                        result.state.as_str()
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let order = state
        .db
        .order(&order.order_id)
        .await?
        .ok_or(ShopError::UnknownOrder)?;
    Ok(Some(Bought {
        order,
        reused,
        pay_data,
        cashier_url: created.cashier_url,
    }))
}

/// Settles the order from a cashdesk query; whether cashdesk's order is
/// over (paid or closed).
async fn apply_result(
    state: &AppState,
    order: &Order,
    result: &PayResult,
) -> Result<bool, ShopError> {
    let outcome = match result.state.as_str() {
        "SUCCESS" | "PART_REFUNDED" | "REFUNDED" => Outcome::Paid {
            gateway_order_id: result.order_id.clone(),
            transaction_id: result.transaction_id.clone(),
        },
        "CLOSED" => Outcome::Closed {
            gateway_order_id: Some(result.order_id.clone()),
        },
        _ => return Ok(false),
    };
    state
        .db
        .settle(&order.order_id, &outcome, now(), None)
        .await?;
    Ok(true)
}

/// Closes a pending order at cashdesk and gives its stock back (also what
/// `POST /orders/{id}/cancel` does). An order cashdesk never saw is closed
/// here only; one cashdesk says is paid is settled as paid.
pub async fn close(state: &AppState, order: &Order) -> Result<Order, ShopError> {
    match state.gateway.close_order(&order.order_id).await {
        Ok(result) => {
            apply_result(state, order, &result).await?;
        }
        Err(SdkError::Api { code: 4040, .. }) => {
            state
                .db
                .settle(
                    &order.order_id,
                    &Outcome::Closed {
                        gateway_order_id: None,
                    },
                    now(),
                    None,
                )
                .await?;
        }
        Err(SdkError::Api { code: 4220, .. }) => {
            let result = state
                .gateway
                .query_pay_result(&order.order_id, false)
                .await?;
            if !apply_result(state, order, &result).await? {
                return Err(ShopError::State(format!(
                    "{} at cashdesk and cannot be closed",
                    result.state.as_str()
                )));
            }
        }
        Err(e) => return Err(e.into()),
    }
    state
        .db
        .order(&order.order_id)
        .await?
        .ok_or(ShopError::UnknownOrder)
}

/// Closes pending orders made before `created_before`: cashdesk's own
/// expiry closes its order after `expire_minutes` and notifies
/// `PAY_CLOSED`, but an order cashdesk never heard of (buy-now could not
/// reach it) or a notification that never arrived would hold its stock
/// forever. [`close`] asks cashdesk first, so a paid order is settled as
/// paid. Returns how many orders were looked at.
pub async fn sweep(state: &AppState, created_before: i64) -> Result<usize, ShopError> {
    let stale = state.db.pending_before(created_before, 100).await?;
    for order in &stale {
        if let Err(e) = close(state, order).await {
            tracing::warn!(order_id = %order.order_id, error = %e, "sweep: not closed");
        }
    }
    Ok(stale.len())
}

/// What a verified notification did.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    /// The order changed (stock moved).
    Applied,
    /// Nothing to change: a repeat, or an event the shop only logs.
    Unchanged,
}

/// Applies a verified notification: `PAY_SUCCESS` and `PAY_CLOSED` settle
/// the order once; refund events are logged.
pub async fn on_notification(
    state: &AppState,
    n: &cashdesk_sdk::MerchantNotification,
) -> Result<Notice, ShopError> {
    let order = state
        .db
        .order(&n.out_trade_no)
        .await?
        .ok_or(ShopError::UnknownOrder)?;
    if n.amount != order.amount {
        return Err(ShopError::BadRequest(format!(
            "amount {} is not the order's {}",
            n.amount, order.amount
        )));
    }
    if order
        .gateway_order_id
        .as_deref()
        .is_some_and(|id| id != n.order_id)
    {
        return Err(ShopError::BadRequest(format!(
            "orderId {} is not the order's",
            n.order_id
        )));
    }
    let notified = Notified {
        notify_id: &n.notify_id,
        notify_type: &n.notify_type,
    };
    let outcome = match n.notify_type.as_str() {
        "PAY_SUCCESS" => Outcome::Paid {
            gateway_order_id: n.order_id.clone(),
            transaction_id: n.transaction_id.clone(),
        },
        "PAY_CLOSED" => Outcome::Closed {
            gateway_order_id: Some(n.order_id.clone()),
        },
        // REFUND_SUCCESS / REFUND_FAIL: see crate::refunds.
        _ => {
            state
                .db
                .log_notification(notified, &order.order_id, now())
                .await?;
            return Ok(Notice::Unchanged);
        }
    };
    let changed = state
        .db
        .settle(&order.order_id, &outcome, now(), Some(notified))
        .await?;
    Ok(if changed {
        Notice::Applied
    } else {
        Notice::Unchanged
    })
}
