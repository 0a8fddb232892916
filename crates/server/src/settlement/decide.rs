//! What an event does to an order or a refund: pure functions of the row
//! as it was read and the event, no I/O. The answer is the store's
//! compare-and-set ([`OrderTransition`], [`RefundTransition`]), or `None`
//! when the event changes nothing (a copy of news already applied, an
//! event that does not apply in this state).
//!
//! A transition's `from` is every state the event may leave, not only the
//! state that was read: the store applies it to the row as it is at
//! commit, so a row that moved on since the read (within the same event's
//! sources) is still settled once, and one that left them is not touched.
//! Every target state is checked against the state machines of
//! [`cashdesk_core::state`] ([`OrderState::can_become`],
//! [`RefundState::can_become`]).

use crate::access::Principal;
use cashdesk_core::{OrderState, RefundState};
use cashdesk_store::{AuditEntry, Order, OrderChannel, OrderTransition, Refund, RefundTransition};
use chrono::{DateTime, Utc};
use serde_json::json;

/// Something that happened to an order after it was created.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderEvent {
    /// The channel accepted the payment request: `CREATED → PAYING`, with
    /// the channel (and the store identity) it is paid with.
    PaymentStarted {
        channel: OrderChannel,
        identity_sealed: Option<Vec<u8>>,
    },
    /// A verified payment (notification or query): `CREATED|PAYING →
    /// SUCCESS`; for a `CLOSED|FAILED` order `SUCCESS` with
    /// `paidAfterClose` (a payment is never dropped). `channel` is
    /// recorded only if the order has none yet.
    Paid {
        transaction_id: String,
        pay_time: DateTime<Utc>,
        channel: Option<OrderChannel>,
        identity_sealed: Option<Vec<u8>>,
    },
    /// The channel says the payment failed: `PAYING → FAILED`.
    PaymentFailed { code: String, message: String },
    /// The channel says the order is closed: `PAYING → CLOSED`.
    ClosedByChannel,
    /// The merchant closed it: `CREATED|PAYING → CLOSED`.
    ClosedByMerchant,
    /// Its time ran out (the expiry job): `CREATED|PAYING → CLOSED`.
    Expired,
}

impl OrderEvent {
    /// The state the event leads to, and the states it may leave.
    fn edge(&self, current: OrderState) -> (OrderState, &'static [OrderState]) {
        use OrderState::*;
        match self {
            Self::PaymentStarted { .. } => (Paying, &[Created]),
            Self::Paid { .. } if matches!(current, Closed | Failed) => (Success, &[Closed, Failed]),
            Self::Paid { .. } => (Success, &[Created, Paying]),
            Self::PaymentFailed { .. } => (Failed, &[Paying]),
            Self::ClosedByChannel => (Closed, &[Paying]),
            Self::ClosedByMerchant | Self::Expired => (Closed, &[Created, Paying]),
        }
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::PaymentStarted { .. } => "payment_started",
            Self::Paid { .. } => "paid",
            Self::PaymentFailed { .. } => "payment_failed",
            Self::ClosedByChannel => "closed_by_channel",
            Self::ClosedByMerchant => "closed_by_merchant",
            Self::Expired => "expired",
        }
    }
}

/// The compare-and-set `event` makes of `order` (as read), or `None` when
/// it changes nothing in the order's state.
pub fn decide_order(
    order: &Order,
    event: &OrderEvent,
    now: DateTime<Utc>,
) -> Option<OrderTransition> {
    let (to, from) = event.edge(order.state);
    if !from.contains(&order.state) || !from.iter().all(|s| s.can_become(to)) {
        return None;
    }
    let mut t = OrderTransition::new(from, to, now);
    match event {
        OrderEvent::PaymentStarted {
            channel,
            identity_sealed,
        } => {
            t.channel = Some(channel.clone());
            t.store_identity_sealed = identity_sealed.clone();
        }
        OrderEvent::Paid {
            transaction_id,
            pay_time,
            channel,
            identity_sealed,
        } => {
            t.transaction_id = Some(transaction_id.clone());
            t.pay_time = Some(*pay_time);
            if matches!(order.state, OrderState::Closed | OrderState::Failed) {
                t.paid_after_close = Some(true);
            }
            if order.channel.is_none() {
                // The payment was made before the order heard of its
                // channel: recorded now, with the identity it was made with.
                t.channel = channel.clone();
                t.store_identity_sealed = identity_sealed.clone();
            }
        }
        OrderEvent::PaymentFailed { code, message } => {
            t.result_error_code = Some(code.clone());
            t.result_error_msg = Some(message.clone());
        }
        OrderEvent::ClosedByChannel | OrderEvent::ClosedByMerchant | OrderEvent::Expired => {}
    }
    Some(t)
}

/// Something that happened to a refund after it was stored.
#[derive(Debug, Clone, PartialEq)]
pub enum RefundEvent {
    /// An operator (`by`) approved a reviewed refund: `PENDING_REVIEW →
    /// PROCESSING` (then it goes to the channel). Audited as
    /// `refund.approve` with the change.
    Approved { by: Principal },
    /// An operator rejected it: `PENDING_REVIEW → REJECTED`. Audited as
    /// `refund.reject` with the change.
    Rejected { by: Principal },
    /// The channel refunded the money: `PROCESSING → SUCCESS`.
    Succeeded {
        channel_refund_id: Option<String>,
        success_time: DateTime<Utc>,
    },
    /// The channel refused or closed it, no money moved: `PROCESSING →
    /// FAIL` with the reason.
    Failed {
        channel_refund_id: Option<String>,
        code: String,
        message: String,
    },
    /// Still `PROCESSING`, with what the channel told meanwhile: its refund
    /// id, and (ABNORMAL) a reason for the operator.
    Progress {
        channel_refund_id: Option<String>,
        problem: Option<(String, String)>,
    },
}

impl RefundEvent {
    fn edge(&self) -> (RefundState, &'static [RefundState]) {
        use RefundState::*;
        match self {
            Self::Approved { .. } => (Processing, &[PendingReview]),
            Self::Rejected { .. } => (Rejected, &[PendingReview]),
            Self::Succeeded { .. } => (Success, &[Processing]),
            Self::Failed { .. } => (Fail, &[Processing]),
            Self::Progress { .. } => (Processing, &[Processing]),
        }
    }
}

/// The compare-and-set `event` makes of `refund` (as read), or `None` when
/// it changes nothing.
pub fn decide_refund(
    refund: &Refund,
    event: &RefundEvent,
    now: DateTime<Utc>,
) -> Option<RefundTransition> {
    let (to, from) = event.edge();
    if !from.contains(&refund.state) || !from.iter().all(|s| s.can_become(to)) {
        return None;
    }
    let mut t = RefundTransition::new(from, to, now);
    match event {
        RefundEvent::Approved { by } => {
            t.audit = Some(operator_decision(refund, by, "refund.approve", to, now));
        }
        RefundEvent::Rejected { by } => {
            t.error_code = Some("REJECTED".to_owned());
            t.error_msg = Some("rejected by an operator".to_owned());
            t.finished_at = Some(now);
            t.audit = Some(operator_decision(refund, by, "refund.reject", to, now));
        }
        RefundEvent::Succeeded {
            channel_refund_id,
            success_time,
        } => {
            t.channel_refund_id = channel_refund_id.clone();
            t.finished_at = Some(*success_time);
        }
        RefundEvent::Failed {
            channel_refund_id,
            code,
            message,
        } => {
            t.channel_refund_id = channel_refund_id.clone();
            t.error_code = Some(code.clone());
            t.error_msg = Some(message.clone());
            t.finished_at = Some(now);
        }
        RefundEvent::Progress {
            channel_refund_id,
            problem,
        } => {
            // Nothing new: no write at all.
            let new_id = channel_refund_id.is_some() && refund.channel_refund_id.is_none();
            if !new_id && problem.is_none() {
                return None;
            }
            t.channel_refund_id = channel_refund_id.clone();
            if let Some((code, message)) = problem {
                t.error_code = Some(code.clone());
                t.error_msg = Some(message.clone());
            }
        }
    }
    Some(t)
}

/// The audit entry of an operator's decision on `refund`, written with the
/// change it makes (`state` is the state it moves the refund to).
fn operator_decision(
    refund: &Refund,
    by: &Principal,
    action: &str,
    to: RefundState,
    now: DateTime<Utc>,
) -> AuditEntry {
    let detail = json!({
        "appId": refund.app_id,
        "orderId": refund.order_id,
        "outRefundNo": refund.out_refund_no,
        "amount": refund.amount.get(),
        "state": to,
    });
    AuditEntry {
        at: now,
        ..by.audit(action, refund.refund_id.as_str(), detail)
    }
    .with_change(json!({ "state": refund.state }), json!({ "state": to }))
}

#[cfg(test)]
mod tests;
