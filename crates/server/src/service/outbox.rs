//! The merchant notification outbox, writing side, and what operators do
//! with it.
//!
//! Every terminal event is written together with its notification
//! (ARCHITECTURE.md §5.3), in the one store transaction that makes the
//! change ([`cashdesk_store::Orders::transition_order_notify`],
//! [`cashdesk_store::Refunds::transition_refund`]): a crash loses neither,
//! and a compare-and-set that loses writes neither, so however many copies
//! of the news race, the merchant is told once. The events:
//!
//! | change | notifyType |
//! |---|---|
//! | order → `SUCCESS` (also `paidAfterClose`) | `PAY_SUCCESS` |
//! | order → `CLOSED` (merchant, expiry, channel says closed) | `PAY_CLOSED` |
//! | refund → `SUCCESS` | `REFUND_SUCCESS` |
//! | refund → `FAIL` or `REJECTED` | `REFUND_FAIL` |
//!
//! A payment that fails (`FAILED`) is not notified: the contract has the
//! four types above, and a failed order may still be paid afterwards
//! (`paidAfterClose`), which is notified; merchants see `FAILED` (result
//! code `FAIL`) when they query.
//!
//! The body is built before the transition from the row as it will be
//! afterwards ([`project`]), because it is stored in the same statement
//! batch; the fields it carries are either set by that transition or never
//! change once an order is paid, so it is what the transition writes. It
//! goes to the order's (refund's) `notifyUrl`, else the app's; with
//! neither there is no row and the merchant learns by querying (logged at
//! info).
//!
//! Delivery is [`super::delivery`]; this module wakes it after a write.

use cashdesk_core::{AppId, NotifyId, OrderState, RefundState};
use cashdesk_store::{
    App, NewNotification, NotificationFilter, NotifyType, Order, OrderTransition, Refund,
    RefundTransition,
};
use chrono::Utc;
use serde_json::json;

use crate::access::Principal;
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::wire::{self, AttemptView, MerchantNotification, NotificationView};

/// `order` as it will be once `t` applies (the fields a notification shows).
pub fn project(order: &Order, t: &OrderTransition) -> Order {
    let mut o = order.clone();
    o.state = t.to;
    if let Some(c) = &t.channel {
        o.channel = Some(c.clone());
    }
    if let Some(id) = &t.transaction_id {
        o.transaction_id = Some(id.clone());
    }
    if let Some(at) = t.pay_time {
        o.pay_time = Some(at);
    }
    if let Some(p) = t.paid_after_close {
        o.paid_after_close = p;
    }
    o.updated_at = t.now;
    o
}

/// `refund` as it will be once `t` applies.
pub fn project_refund(refund: &Refund, t: &RefundTransition) -> Refund {
    let mut r = refund.clone();
    r.state = t.to;
    if let Some(id) = &t.channel_refund_id {
        r.channel_refund_id = Some(id.clone());
    }
    if let Some(c) = &t.error_code {
        r.error_code = Some(c.clone());
    }
    if let Some(m) = &t.error_msg {
        r.error_msg = Some(m.clone());
    }
    if t.finished_at.is_some() {
        r.finished_at = t.finished_at;
    }
    r.updated_at = t.now;
    r
}

async fn app_of(state: &AppState, app_id: &AppId) -> ServiceResult<App> {
    state.store.get_app(app_id).await?.ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!(
            "app {app_id} of a notification does not exist"
        ))
    })
}

fn to_json(body: &MerchantNotification) -> ServiceResult<String> {
    serde_json::to_string(body).map_err(ServiceError::internal)
}

/// The notification of an order event, or `None` when the event is not
/// notified or there is nowhere to send it. `after` is the order as the
/// transition leaves it.
pub async fn order_notification(
    state: &AppState,
    after: &Order,
) -> ServiceResult<Option<NewNotification>> {
    let notify_type = match after.state {
        OrderState::Success => NotifyType::PaySuccess,
        OrderState::Closed => NotifyType::PayClosed,
        _ => return Ok(None),
    };
    let url = match &after.notify_url {
        Some(u) => u.clone(),
        None => match app_of(state, &after.app_id).await?.notify_url {
            Some(u) => u,
            None => {
                tracing::info!(order_id = %after.order_id, notify_type = %notify_type, "no notifyUrl on the order or its app: the merchant is not notified");
                return Ok(None);
            }
        },
    };
    let notify_id = NotifyId::generate();
    let body = wire::order_notification(&notify_id, notify_type, after);
    Ok(Some(NewNotification {
        notify_id,
        app_id: after.app_id.clone(),
        order_id: after.order_id.clone(),
        refund_id: None,
        notify_type,
        url,
        body: to_json(&body)?,
    }))
}

/// The notification of a refund event (`after` is the refund as the
/// transition leaves it), or `None` (not final, or nowhere to send it).
pub async fn refund_notification(
    state: &AppState,
    after: &Refund,
    order: &Order,
) -> ServiceResult<Option<NewNotification>> {
    let notify_type = match after.state {
        RefundState::Success => NotifyType::RefundSuccess,
        RefundState::Fail | RefundState::Rejected => NotifyType::RefundFail,
        _ => return Ok(None),
    };
    let url = match &after.notify_url {
        Some(u) => u.clone(),
        None => match app_of(state, &after.app_id).await?.notify_url {
            Some(u) => u,
            None => {
                tracing::info!(refund_id = %after.refund_id, notify_type = %notify_type, "no notifyUrl on the refund or its app: the merchant is not notified");
                return Ok(None);
            }
        },
    };
    let notify_id = NotifyId::generate();
    let body = wire::refund_notification(&notify_id, notify_type, after, order);
    Ok(Some(NewNotification {
        notify_id,
        app_id: after.app_id.clone(),
        order_id: after.order_id.clone(),
        refund_id: Some(after.refund_id.clone()),
        notify_type,
        url,
        body: to_json(&body)?,
    }))
}

/// Wakes the delivery worker after a transition wrote a row.
pub fn queued(state: &AppState) {
    state.outbox_wake.notify_one();
}

// --- operators ---

fn parse_notify_id(s: &str) -> ServiceResult<NotifyId> {
    NotifyId::parse(s).ok_or_else(|| ServiceError::not_found(format!("notification {s}")))
}

/// `GET /api/admin/notifications?appId=&orderId=&state=&limit=&before=`.
pub async fn admin_list(
    state: &AppState,
    filter: &NotificationFilter,
) -> ServiceResult<Vec<NotificationView>> {
    Ok(state
        .store
        .list_notifications(filter)
        .await?
        .iter()
        .map(NotificationView::from)
        .collect())
}

/// `GET /api/admin/notifications/{notifyId}`: with every attempt, oldest first.
pub async fn admin_get(state: &AppState, notify_id: &str) -> ServiceResult<NotificationView> {
    let id = parse_notify_id(notify_id)?;
    let n = state
        .store
        .get_notification(&id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("notification {notify_id}")))?;
    let attempts = state.store.list_notification_attempts(&id).await?;
    let mut view = NotificationView::from(&n);
    view.attempt_log = Some(attempts.iter().map(AttemptView::from).collect());
    Ok(view)
}

/// `POST /api/admin/notifications/{notifyId}/resend`: whatever its state,
/// the notification is due now, with the same `notifyId` (audited).
pub async fn resend(
    state: &AppState,
    notify_id: &str,
    by: &Principal,
) -> ServiceResult<NotificationView> {
    let id = parse_notify_id(notify_id)?;
    let summary = |n: &cashdesk_store::Notification| json!({ "state": n.state, "nextAttemptAt": wire::time(n.next_attempt_at) });
    let before = state
        .store
        .get_notification(&id)
        .await?
        .map(|n| summary(&n));
    let n = state
        .store
        .resend_notification(&id, Utc::now())
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("notification {notify_id}")))?;
    state.outbox_wake.notify_one();
    super::record(
        state,
        by.audit(
            "notification.resend",
            n.notify_id.as_str(),
            json!({
                "appId": n.app_id,
                "orderId": n.order_id,
                "notifyType": n.notify_type,
                "attempts": n.attempts,
            }),
        )
        .with_change(before.unwrap_or(serde_json::Value::Null), summary(&n)),
    )
    .await;
    tracing::info!(notify_id = %n.notify_id, "notification resent by an operator");
    admin_get(state, notify_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use cashdesk_core::{ChannelId, ChannelType, ConfigId, SceneCode};
    use cashdesk_store::OrderChannel;

    fn order() -> Order {
        let app = AppId::parse("app0123456789abcdef").expect("app id");
        Order {
            order_title: "Tea".into(),
            notify_url: cashdesk_core::NotifyUrl::parse(
                "notifyUrl",
                "https://shop.example.com/cb?x=1",
            )
            .ok(),
            attach: Some("a".into()),
            token: "t".into(),
            state: OrderState::Closed,
            ..crate::service::test_order(app, "T1", 120, Utc::now())
        }
    }

    #[test]
    fn the_body_shows_the_order_after_the_transition() {
        let o = order();
        let now = Utc::now();
        let mut t = OrderTransition::new(&[OrderState::Closed], OrderState::Success, now);
        t.transaction_id = Some("4200001".into());
        t.pay_time = Some(now);
        t.paid_after_close = Some(true);
        t.channel = Some(OrderChannel {
            channel_id: ChannelId::generate(),
            channel_type: ChannelType::WxPay,
            config_id: ConfigId::generate(),
            mch_id: "1900000109".into(),
            scene_code: SceneCode::Mini,
        });
        let after = project(&o, &t);
        let id = NotifyId::generate();
        let v = serde_json::to_value(wire::order_notification(
            &id,
            NotifyType::PaySuccess,
            &after,
        ))
        .expect("json");
        assert_eq!(v["notifyId"], id.as_str());
        assert_eq!(v["notifyType"], "PAY_SUCCESS");
        assert_eq!(v["state"], "SUCCESS");
        assert_eq!(v["resultCode"], "SUCCESS");
        assert_eq!(v["amount"], 120);
        assert_eq!(v["transactionId"], "4200001");
        assert_eq!(v["channelType"], "wx-pay");
        assert_eq!(v["mchId"], "1900000109");
        assert_eq!(v["paidAfterClose"], true);
        assert_eq!(v["attach"], "a");
        assert!(v["payTime"].as_str().is_some_and(|s| s.len() == 19), "{v}");
        assert!(v.get("outRefundNo").is_none(), "{v}");
        // A plain success does not carry the flag at all.
        let t = OrderTransition::new(&[OrderState::Paying], OrderState::Closed, now);
        let v = serde_json::to_value(wire::order_notification(
            &id,
            NotifyType::PayClosed,
            &project(&o, &t),
        ))
        .expect("json");
        assert_eq!(v["state"], "CLOSED");
        assert_eq!(v["resultCode"], "FAIL");
        assert!(v.get("paidAfterClose").is_none(), "{v}");
        assert!(
            v["storeId"].is_null() && v["transactionId"].is_null(),
            "{v}"
        );
    }
}
