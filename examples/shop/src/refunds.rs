//! Refund applications: the buyer asks, the shop decides (issue 17 §2,
//! cashdesk's `…/refund-applications`, docs/after-payment.md).
//!
//! - `POST /orders/{id}/refund-application {amount?, reason, buyerRemark?}`
//!   for a `PAID` order: one application per order, under the
//!   `outRefundNo` `RA-{orderId}` (so a retry is the same application;
//!   `amount` defaults to the whole order) → cashdesk's answer (`APPLIED`).
//! - `GET /orders/{id}/refund-application`: cashdesk's view of it (the
//!   decision, and the refund once approved).
//! - `POST /orders/{id}/refund-application/approve|reject {remark?}`: the
//!   shop's staff decide (a real shop authenticates its staff here).
//!
//! The refund's outcome comes as cashdesk's `REFUND_SUCCESS` /
//! `REFUND_FAIL` notification (verified and logged by the notify endpoint;
//! putting refunded goods back into stock is the shop's choice and not
//! done here).

use serde_json::{Value, json};

use crate::AppState;
use crate::db::PAID;
use crate::orders::ShopError;

/// The application's `outRefundNo` for an order: one per order.
pub fn refund_no(order_id: &str) -> String {
    format!("RA-{order_id}")
}

/// What the buyer sends.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ask {
    pub amount: Option<i64>,
    pub reason: String,
    pub buyer_remark: Option<String>,
}

pub async fn apply(state: &AppState, order_id: &str, ask: Ask) -> Result<Value, ShopError> {
    let order = state
        .db
        .order(order_id)
        .await?
        .ok_or(ShopError::UnknownOrder)?;
    if order.state != PAID {
        return Err(ShopError::State(order.state));
    }
    let amount = ask.amount.unwrap_or(order.amount);
    if amount <= 0 || amount > order.amount {
        return Err(ShopError::BadRequest(format!(
            "amount must be 1 to {} fen",
            order.amount
        )));
    }
    Ok(state
        .gateway
        .apply_refund(&json!({
            "outTradeNo": order.order_id,
            "outRefundNo": refund_no(&order.order_id),
            "amount": amount,
            "reason": ask.reason,
            "buyerRemark": ask.buyer_remark,
        }))
        .await?)
}

pub async fn get(state: &AppState, order_id: &str) -> Result<Value, ShopError> {
    state
        .db
        .order(order_id)
        .await?
        .ok_or(ShopError::UnknownOrder)?;
    Ok(state
        .gateway
        .get_refund_application(&refund_no(order_id))
        .await?)
}

pub async fn decide(
    state: &AppState,
    order_id: &str,
    approve: bool,
    remark: Option<&str>,
) -> Result<Value, ShopError> {
    state
        .db
        .order(order_id)
        .await?
        .ok_or(ShopError::UnknownOrder)?;
    Ok(state
        .gateway
        .decide_refund_application(&refund_no(order_id), approve, remark)
        .await?)
}
