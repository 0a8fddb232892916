//! What an operator or a merchant's staff does to one order from the
//! console or the operator API (`POST /api/admin/orders/{id}/sync`,
//! `…/close`, `…/refunds`): the merchant API's own paths — the query with
//! a channel sync, the close, the refund with the app's review rules — on
//! behalf of a [`Principal`], each audited with the order before and after.
//!
//! The caller has checked the permission; [`load`] applies the
//! principal's app scope (another app's order is "not found", as an
//! unknown one is).

use cashdesk_core::{Fen, OrderId, OutRefundNo};
use cashdesk_crypto::random;
use cashdesk_store::{App, Order};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::refunds::{self, REASON_MAX_CHARS, RefundInput};
use super::{audit_change, orders, payments};
use crate::access::Principal;
use crate::input::Fields;
use crate::service::error::{ServiceError, ServiceResult};
use crate::settlement::Source;
use crate::state::AppState;
use crate::wire::{OrderView, RefundView};

/// A refund asked for by a person: the amount, an optional reason, and the
/// `outRefundNo` that makes a repeated submit the same refund (the console
/// puts a fresh one in each form; the API may leave it out).
#[derive(Debug, Clone)]
pub struct OperatorRefund {
    pub out_refund_no: Option<OutRefundNo>,
    pub amount: Fen,
    pub reason: Option<String>,
}

impl OperatorRefund {
    /// `{amount, reason?, outRefundNo?}` as the operator API takes it.
    pub fn parse(body: &Map<String, Value>) -> ServiceResult<OperatorRefund> {
        let f = Fields(body);
        let amount = f.fen_req("amount")?;
        let out_refund_no = f
            .str_opt("outRefundNo", usize::MAX)?
            .map(OutRefundNo::parse)
            .transpose()?;
        let reason = f
            .str_opt("reason", REASON_MAX_CHARS)?
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        Ok(OperatorRefund {
            out_refund_no,
            amount,
            reason,
        })
    }
}

/// A fresh `outRefundNo` for a refund asked for by a person: `OP`, the
/// time to the second and 8 random characters (unique enough that two
/// people never collide, readable in a statement).
pub fn new_out_refund_no() -> OutRefundNo {
    let no = format!(
        "OP{}{}",
        Utc::now().format("%Y%m%d%H%M%S"),
        random::nonce_str(8)
    );
    OutRefundNo::parse(&no).expect("letters and digits make an outRefundNo")
}

/// The order `order_id`, if the principal sees its app.
pub async fn load(state: &AppState, order_id: &str, by: &Principal) -> ServiceResult<Order> {
    let missing = || ServiceError::not_found(format!("order {order_id}"));
    let id = OrderId::parse(order_id).ok_or_else(missing)?;
    match state.store.get_order(&id).await? {
        Some(o) if by.sees_app(&o.app_id) => Ok(o),
        _ => Err(missing()),
    }
}

async fn app_of(state: &AppState, order: &Order) -> ServiceResult<App> {
    state.store.get_app(&order.app_id).await?.ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!("order {} has no app", order.order_id))
    })
}

/// What the audit log keeps of an order before and after an action.
fn snapshot(o: &Order) -> Value {
    json!({ "state": o.state, "refundedAmount": o.refunded_amount.get() })
}

/// Asks the channel about an unpaid order and settles what it says (a
/// paid or closed order is answered as it is). Audited when the state
/// changed.
pub async fn sync(state: &AppState, order: Order, by: &Principal) -> ServiceResult<OrderView> {
    let before = snapshot(&order);
    let after = payments::sync_if_pending(state, order, Source::Operator).await?;
    if snapshot(&after) != before {
        let target = after.order_id.to_string();
        audit_change(state, by, "order.sync", &target, before, snapshot(&after)).await;
    }
    orders::admin_get(state, after.order_id.as_str()).await
}

/// Closes an unpaid order (at the channel first, as the merchant API's
/// close does; the merchant is told `PAY_CLOSED`). Closing a closed order
/// answers it as it is; a paid one is 422.
pub async fn close(state: &AppState, order: Order, by: &Principal) -> ServiceResult<OrderView> {
    let before = snapshot(&order);
    let closed = orders::close_order(state, &order, Source::Operator).await?;
    if snapshot(&closed) != before {
        let target = closed.order_id.to_string();
        audit_change(state, by, "order.close", &target, before, snapshot(&closed)).await;
    }
    orders::admin_get(state, closed.order_id.as_str()).await
}

/// Refunds a paid order through the merchant API's refund: the same
/// refundable-amount check, the app's review rules (a refund review puts
/// it in `PENDING_REVIEW`), the same `outRefundNo` idempotency (the same
/// request again is the same refund, another request with that number
/// 409), the merchant told `REFUND_SUCCESS` / `REFUND_FAIL` as usual.
pub async fn refund(
    state: &AppState,
    order: Order,
    input: OperatorRefund,
    by: &Principal,
) -> ServiceResult<RefundView> {
    let app = app_of(state, &order).await?;
    let out_refund_no = input.out_refund_no.unwrap_or_else(new_out_refund_no);
    // The request as the merchant API would have had it signed: its hash
    // decides same-request vs conflict for a repeated outRefundNo.
    let body = serde_json::to_vec(&json!({
        "outTradeNo": order.out_trade_no.as_str(),
        "outRefundNo": out_refund_no.as_str(),
        "amount": input.amount.get(),
        "reason": input.reason,
        "by": by.actor,
    }))
    .map_err(|e| ServiceError::internal(anyhow::Error::from(e)))?;
    let before = snapshot(&order);
    let known = state
        .store
        .get_refund_by_out_refund_no(&app.app_id, &out_refund_no)
        .await?
        .is_some();
    let result = refunds::create(
        state,
        &app,
        &body,
        RefundInput {
            out_trade_no: order.out_trade_no.clone(),
            out_refund_no,
            amount: input.amount,
            reason: input.reason,
            notify_url: None,
        },
    )
    .await?;
    let view = refunds::admin_get(state, &result.refund_id).await?;
    if known {
        // A repeated submit: the refund it made is answered, nothing new.
        return Ok(view);
    }
    audit_change(
        state,
        by,
        "refund.create",
        &result.refund_id,
        json!({ "order": before }),
        json!({
            "order": { "state": view.order_state },
            "refund": {
                "outRefundNo": result.out_refund_no,
                "amount": result.amount,
                "state": result.state,
                "reason": result.reason,
            },
        }),
    )
    .await;
    Ok(view)
}
