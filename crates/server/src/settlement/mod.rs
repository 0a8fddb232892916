//! The settlement core: the one door through which an order's or a
//! refund's state changes after it was created.
//!
//! Every path that learns something about a payment or a refund — the
//! merchant's close, the expiry job, the poller, a query, a channel
//! notification, the cashier page, an operator's decision — turns it into
//! an event ([`OrderEvent`], [`RefundEvent`]) and calls [`apply_order`] or
//! [`apply_refund`]. Those ask the pure [`decide_order`] /
//! [`decide_refund`] which compare-and-set the event makes (built on the
//! state machines in `cashdesk_core::state`), build the merchant
//! notification the new state calls for ([`crate::service::outbox`]: `PAY_SUCCESS`,
//! `PAY_CLOSED`, `REFUND_SUCCESS`, `REFUND_FAIL`), and write both in one
//! store transaction: a crash loses neither, a compare-and-set that loses
//! writes neither, so however many copies of the same news race, the
//! state changes once and the merchant is told once. Metrics, the log
//! line and the order timeline's `STATE` event of a settled change are
//! written here too ([`crate::service::timeline`]).
//!
//! What the paths keep is what is theirs: asking the channel, retrying a
//! lost race with the row as it is now, the automatic refund of a payment
//! after close, answering in HTTP.

mod decide;

pub use decide::{OrderEvent, RefundEvent, decide_order, decide_refund};

use cashdesk_store::{Order, Refund};
use chrono::Utc;

use crate::service::error::{ServiceError, ServiceResult};
use crate::service::{outbox, timeline};
use crate::state::AppState;

/// Who reported an event: the label of the `source` metric and log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The merchant's API call (pay, close, refund).
    Merchant,
    /// A channel's notification.
    Notification,
    /// A query of the channel on a merchant's behalf or before a close.
    Query,
    /// The cashier page's check on a buyer's payment.
    Cashier,
    /// The background poller's query.
    Poller,
    /// The expiry job.
    Expiry,
    /// An operator's decision (admin API).
    Operator,
    /// A reconciliation that found a payment in the channel's bill and
    /// had the channel confirm it.
    Reconciliation,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merchant => "merchant",
            Self::Notification => "notify",
            Self::Query => "query",
            Self::Cashier => "cashier",
            Self::Poller => "poller",
            Self::Expiry => "expiry",
            Self::Operator => "operator",
            Self::Reconciliation => "reconciliation",
        }
    }
}

/// Applies `event` to `order` (as read): the transition and its
/// notification in one transaction. `Some(order as updated)` if this call
/// changed it; `None` if the event changes nothing now (already applied,
/// or the order moved on — the caller may read it again and decide).
#[tracing::instrument(name = "settle_order", level = "info", skip_all, fields(order_id = %order.order_id, app_id = %order.app_id, event = event.name(), source = source.as_str()))]
pub async fn apply_order(
    state: &AppState,
    order: &Order,
    event: &OrderEvent,
    source: Source,
) -> ServiceResult<Option<Order>> {
    let Some(t) = decide_order(order, event, Utc::now()) else {
        return Ok(None);
    };
    let notification = outbox::order_notification(state, &outbox::project(order, &t)).await?;
    let changed = state
        .store
        .transition_order_notify(&order.order_id, &t, notification.as_ref())
        .await?;
    let Some((after, queued)) = changed else {
        return Ok(None);
    };
    if let Some(n) = &queued {
        tracing::debug!(notify_id = %n.notify_id, order_id = %after.order_id, notify_type = %n.notify_type, "merchant notification queued");
        outbox::queued(state);
    }
    timeline::record_order_state(state, order, &after, event.name(), source.as_str());
    match event {
        OrderEvent::Paid { transaction_id, .. } => {
            state.metrics.order_paid(source.as_str());
            if after.paid_after_close {
                tracing::warn!(order_id = %after.order_id, %transaction_id, source = source.as_str(), "payment for a closed order recorded (paidAfterClose): the merchant should refund or deliver");
            } else {
                tracing::info!(order_id = %after.order_id, %transaction_id, source = source.as_str(), "order paid");
            }
        }
        OrderEvent::ClosedByChannel => {
            state.metrics.order_closed("channel");
            tracing::info!(order_id = %after.order_id, source = source.as_str(), "order closed by the channel");
        }
        OrderEvent::ClosedByMerchant | OrderEvent::Expired => {
            state.metrics.order_closed(source.as_str());
            tracing::info!(order_id = %after.order_id, source = source.as_str(), "order closed");
        }
        OrderEvent::PaymentStarted { .. } | OrderEvent::PaymentFailed { .. } => {
            tracing::info!(order_id = %after.order_id, state = %after.state, event = event.name(), source = source.as_str(), "order settled");
        }
    }
    Ok(Some(after))
}

/// Applies `event` to `refund` (as read), with the order's bookkeeping
/// (the store adds a successful refund's amount to the order and moves it
/// to `PART_REFUNDED`/`REFUNDED`) and the notification of a final state,
/// in one transaction. `Some(refund as updated)` if this call changed it.
#[tracing::instrument(name = "settle_refund", level = "info", skip_all, fields(refund_id = %refund.refund_id, order_id = %refund.order_id, app_id = %refund.app_id, source = source.as_str()))]
pub async fn apply_refund(
    state: &AppState,
    refund: &Refund,
    event: &RefundEvent,
    source: Source,
) -> ServiceResult<Option<Refund>> {
    let Some(t) = decide_refund(refund, event, Utc::now()) else {
        return Ok(None);
    };
    let notification = if t.to.is_final() {
        let order = order_of_refund(state, refund).await?;
        outbox::refund_notification(state, &outbox::project_refund(refund, &t), &order).await?
    } else {
        None
    };
    let changed = state
        .store
        .transition_refund(&refund.refund_id, &t, notification.as_ref())
        .await?;
    let Some((after, queued)) = changed else {
        return Ok(None);
    };
    timeline::record_refund_state(state, refund, &after, source.as_str());
    if after.state.is_final() {
        state.metrics.refund_finished(after.state.as_str());
        tracing::info!(
            refund_id = %after.refund_id,
            order_id = %after.order_id,
            state = %after.state,
            error_code = after.error_code.as_deref().unwrap_or(""),
            source = source.as_str(),
            "refund settled"
        );
    }
    if queued.is_some() {
        outbox::queued(state);
    }
    Ok(Some(after))
}

/// The order `refund` belongs to, as it is now (a refund's order always
/// exists: the store refuses a refund without one, so a missing one is a
/// bug, answered as internal).
pub async fn order_of_refund(state: &AppState, refund: &Refund) -> ServiceResult<Order> {
    state
        .store
        .get_order(&refund.order_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!(
                "refund {} names order {} which does not exist",
                refund.refund_id,
                refund.order_id
            ))
        })
}
