//! An order's whole timeline, as the console's order page shows it: the
//! order's creation, its recorded events (channel calls, channel
//! notifications, state changes: [`super::timeline`]), its refunds'
//! creation, and the merchant notifications with every delivery attempt —
//! one list in time order, read from where each is kept.
//!
//! [`assemble`] is a pure function of the rows, so its order and its
//! contents are unit-tested; [`load`] reads the rows (each bounded: the
//! store's page limits) and calls it. What an entry shows is already safe
//! to render (summaries hold no secret, see [`super::timeline`]); the
//! merchant notification's body is not shown (it is signed), only its
//! type, address, state and each attempt's status, latency and the
//! excerpt of the merchant's reply the outbox keeps.

use cashdesk_core::RefundId;
use cashdesk_store::{
    AttemptOutcome, Notification, NotificationAttempt, NotificationFilter, Order, OrderEventRecord,
    Refund, RefundFilter,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::service::error::ServiceResult;
use crate::state::AppState;

/// The most entries of each source read for one order.
const PAGE: u32 = 500;

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `CREATED`, `CHANNEL_CALL`, `CHANNEL_NOTIFY`, `STATE`,
    /// `REFUND_CREATED`, `MERCHANT_NOTIFY` or `MERCHANT_ATTEMPT`.
    pub kind: &'static str,
    /// What happened: the channel operation, the state event's name, the
    /// notification type.
    pub operation: String,
    /// `OK`, `ERROR`, `REFUSED`; an attempt's `DELIVERED`, `RETRY`,
    /// `FAILED`; `None` where it does not apply.
    pub outcome: Option<String>,
    pub latency_ms: Option<u64>,
    pub refund_id: Option<RefundId>,
    pub detail: Value,
}

/// The timeline of `order` from its rows, oldest first (equal times keep
/// the order of the sources: creation, events, refunds, notifications).
pub fn assemble(
    order: &Order,
    events: &[OrderEventRecord],
    refunds: &[Refund],
    notifications: &[(Notification, Vec<NotificationAttempt>)],
) -> Vec<TimelineEntry> {
    let mut out = vec![TimelineEntry {
        at: order.created_at,
        kind: "CREATED",
        operation: "created".into(),
        outcome: None,
        latency_ms: None,
        refund_id: None,
        detail: json!({
            "amount": order.amount.get(),
            "outTradeNo": order.out_trade_no.as_str(),
            "storeId": order.store_id.as_ref().map(|s| s.as_str()),
            "expireAt": order.expire_at,
        }),
    }];
    out.extend(events.iter().map(|e| TimelineEntry {
        at: e.at,
        kind: e.kind.as_str(),
        operation: e.operation.clone(),
        outcome: Some(e.outcome.as_str().to_owned()),
        latency_ms: e.latency_ms.map(u64::from),
        refund_id: e.refund_id.clone(),
        detail: e.summary.clone(),
    }));
    out.extend(refunds.iter().map(|r| TimelineEntry {
        at: r.created_at,
        kind: "REFUND_CREATED",
        operation: "refund".into(),
        outcome: None,
        latency_ms: None,
        refund_id: Some(r.refund_id.clone()),
        detail: json!({
            "outRefundNo": r.out_refund_no.as_str(),
            "amount": r.amount.get(),
            "state": r.state.as_str(),
        }),
    }));
    for (n, attempts) in notifications {
        out.push(TimelineEntry {
            at: n.created_at,
            kind: "MERCHANT_NOTIFY",
            operation: n.notify_type.as_str().to_owned(),
            outcome: Some(n.state.as_str().to_owned()),
            latency_ms: None,
            refund_id: n.refund_id.clone(),
            detail: json!({
                "notifyId": n.notify_id.as_str(),
                "url": n.url.as_str(),
                "attempts": n.attempts,
            }),
        });
        out.extend(attempts.iter().map(|a| {
            TimelineEntry {
                at: a.at,
                kind: "MERCHANT_ATTEMPT",
                operation: n.notify_type.as_str().to_owned(),
                outcome: Some(
                    match a.outcome {
                        AttemptOutcome::Delivered => "DELIVERED",
                        AttemptOutcome::RetryAt(_) => "RETRY",
                        AttemptOutcome::Failed => "FAILED",
                    }
                    .to_owned(),
                ),
                latency_ms: Some(a.latency_ms),
                refund_id: n.refund_id.clone(),
                detail: json!({
                    "notifyId": n.notify_id.as_str(),
                    "httpStatus": a.http_status,
                    "responseExcerpt": a.response_excerpt,
                    "error": a.error,
                }),
            }
        }));
    }
    // Stable: entries at the same instant keep the order above.
    out.sort_by_key(|e| e.at);
    out
}

/// Reads the rows of `order`'s timeline and assembles it.
pub async fn load(state: &AppState, order: &Order) -> ServiceResult<Vec<TimelineEntry>> {
    let events = state.store.list_order_events(&order.order_id, PAGE).await?;
    let refunds = state
        .store
        .list_refunds(&RefundFilter {
            order_id: Some(order.order_id.clone()),
            limit: PAGE,
            ..RefundFilter::default()
        })
        .await?;
    let notifications = state
        .store
        .list_notifications(&NotificationFilter {
            order_id: Some(order.order_id.clone()),
            limit: PAGE,
            ..NotificationFilter::default()
        })
        .await?;
    let mut with_attempts = Vec::with_capacity(notifications.len());
    for n in notifications {
        let attempts = state.store.list_notification_attempts(&n.notify_id).await?;
        with_attempts.push((n, attempts));
    }
    Ok(assemble(order, &events, &refunds, &with_attempts))
}

#[cfg(test)]
mod tests {
    use cashdesk_core::{AppId, Fen, NotifyId, NotifyUrl, OrderId, OrderState, OutTradeNo};
    use cashdesk_store::{EventOutcome, NotificationState, NotifyType, OrderEventKind};
    use chrono::{Duration, TimeZone};

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap() + Duration::seconds(s)
    }

    fn order() -> Order {
        Order {
            order_id: OrderId::generate(),
            app_id: AppId::parse("app-1").unwrap(),
            out_trade_no: OutTradeNo::parse("T-1").unwrap(),
            amount: Fen::from_stored(1000),
            order_title: "t".into(),
            goods_desc: "g".into(),
            third_party_user: "u".into(),
            notify_url: None,
            return_url: None,
            store_id: None,
            attach: None,
            client_ip: None,
            token: "tok".into(),
            expire_at: t(1800),
            request_hash: "h".into(),
            response: json!({}),
            state: OrderState::Success,
            channel: None,
            transaction_id: None,
            pay_time: None,
            refunded_amount: Fen::ZERO,
            result_error_code: None,
            result_error_msg: None,
            paid_after_close: false,
            created_at: t(0),
            updated_at: t(3),
            next_query_at: None,
            query_attempts: 0,
            store_identity_sealed: None,
        }
    }

    #[test]
    fn every_source_lands_in_time_order() {
        let o = order();
        let event = |s: i64, kind, op: &str| OrderEventRecord {
            id: s,
            order_id: o.order_id.clone(),
            refund_id: None,
            at: t(s),
            kind,
            operation: op.into(),
            outcome: EventOutcome::Ok,
            latency_ms: Some(12),
            summary: json!({"s": s}),
        };
        let events = [
            event(1, OrderEventKind::ChannelCall, "pay"),
            event(2, OrderEventKind::ChannelNotify, "notify"),
            event(2, OrderEventKind::State, "paid"),
        ];
        let n = Notification {
            notify_id: NotifyId::generate(),
            app_id: o.app_id.clone(),
            order_id: o.order_id.clone(),
            refund_id: None,
            notify_type: NotifyType::PaySuccess,
            url: NotifyUrl::parse("notifyUrl", "https://shop.example.com/n").unwrap(),
            body: "{\"sign\":\"secret-ish\"}".into(),
            state: NotificationState::Delivered,
            attempts: 1,
            next_attempt_at: t(2),
            lease_owner: None,
            lease_until: None,
            created_at: t(2),
            delivered_at: Some(t(4)),
            last_error: None,
        };
        let attempt = NotificationAttempt {
            notify_id: n.notify_id.clone(),
            at: t(4),
            owner: "w".into(),
            http_status: Some(200),
            latency_ms: 30,
            response_excerpt: Some("SUCCESS".into()),
            error: None,
            outcome: AttemptOutcome::Delivered,
        };
        let got = assemble(&o, &events, &[], &[(n, vec![attempt])]);
        let kinds: Vec<(&str, &str)> = got.iter().map(|e| (e.kind, e.operation.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("CREATED", "created"),
                ("CHANNEL_CALL", "pay"),
                ("CHANNEL_NOTIFY", "notify"),
                ("STATE", "paid"),
                ("MERCHANT_NOTIFY", "PAY_SUCCESS"),
                ("MERCHANT_ATTEMPT", "PAY_SUCCESS"),
            ]
        );
        assert_eq!(got[1].latency_ms, Some(12));
        assert_eq!(got[5].outcome.as_deref(), Some("DELIVERED"));
        assert_eq!(got[5].detail["httpStatus"], 200);
        // The signed body is not part of the timeline.
        assert!(!serde_json::to_string(&got).unwrap().contains("secret-ish"));
    }
}
