//! The order timeline (`order_events`) as the console reads it: an order
//! paid and partly refunded through the mounted WeChat sandbox leaves its
//! channel calls (with latency), the channel's notifications and the
//! state changes they caused — and nothing of the payer's id.

use std::time::Duration;

use cashdesk_core::OrderId;
use cashdesk_sdk::{CreateRefundRequest, PaymentRequest};
use cashdesk_store::{EventOutcome, OrderEventKind, OrderEventRecord};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, orn, spawn_app, wait_until};

backend_tests!(
    a_paid_and_refunded_order_has_its_timeline,
    a_failed_channel_call_is_recorded_as_an_error,
);

async fn events(app: &TestApp, order_id: &str) -> Vec<OrderEventRecord> {
    let id = OrderId::parse(order_id).expect("order id");
    app.store.list_order_events(&id, 0).await.expect("events")
}

/// Waits until the order has an event matching `pred`, and returns them all.
async fn wait_event(
    app: &TestApp,
    order_id: &str,
    what: &str,
    pred: impl Fn(&OrderEventRecord) -> bool,
) -> Vec<OrderEventRecord> {
    let pred = &pred;
    let found = wait_until(Duration::from_secs(10), || async move {
        events(app, order_id).await.iter().any(pred)
    })
    .await;
    let all = events(app, order_id).await;
    assert!(found, "no {what} event: {all:#?}");
    all
}

fn one<'a>(
    events: &'a [OrderEventRecord],
    kind: OrderEventKind,
    operation: &str,
) -> &'a OrderEventRecord {
    let found: Vec<_> = events
        .iter()
        .filter(|e| e.kind == kind && e.operation == operation)
        .collect();
    assert_eq!(found.len(), 1, "{kind:?} {operation}: {events:#?}");
    found[0]
}

async fn a_paid_and_refunded_order_has_its_timeline(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 1000).await;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("mini")).with_openid("oBuyerTimeline01"))
        .await
        .expect("pay");
    app.sandbox_pay(&order_id).await;
    app.wait_state(client, &no, "SUCCESS").await;
    // Recorded in the background: wait for the last of them.
    wait_event(&app, &order_id, "payment notification", |e| {
        e.kind == OrderEventKind::ChannelNotify
    })
    .await;
    let all = wait_event(&app, &order_id, "paid", |e| e.operation == "paid").await;

    // The pay call: with its latency, the request's scene and amount.
    let pay = one(&all, OrderEventKind::ChannelCall, "pay");
    assert_eq!(pay.outcome, EventOutcome::Ok);
    assert!(pay.latency_ms.is_some(), "{pay:?}");
    assert_eq!(pay.summary["channel"], "wx-pay");
    assert_eq!(pay.summary["request"]["scene"], "mini");
    assert_eq!(pay.summary["request"]["amount"], 1000);
    assert_eq!(pay.summary["request"]["payerId"], true);
    assert_eq!(pay.summary["answer"]["prepayId"], true);
    // The sandbox's notification, applied, and the change it caused.
    let notified = one(&all, OrderEventKind::ChannelNotify, "notify");
    assert_eq!(notified.outcome, EventOutcome::Ok);
    assert_eq!(notified.summary["result"], "applied");
    assert_eq!(notified.summary["notified"]["result"], "PAID");
    assert_eq!(notified.summary["notified"]["amount"], 1000);
    let started = one(&all, OrderEventKind::State, "payment_started");
    assert_eq!(started.summary["from"], "CREATED");
    assert_eq!(started.summary["to"], "PAYING");
    assert_eq!(started.summary["source"], "merchant");
    let paid = one(&all, OrderEventKind::State, "paid");
    assert_eq!(paid.summary["to"], "SUCCESS");
    assert_eq!(paid.summary["source"], "notify");
    assert!(paid.summary["transactionId"].is_string(), "{paid:?}");
    // In time order: the call, then the news.
    let pos = |e: &OrderEventRecord| all.iter().position(|x| x.id == e.id).unwrap();
    assert!(
        pos(pay) < pos(started) && pos(started) < pos(paid),
        "{all:#?}"
    );

    // A partial refund: its call, the sandbox's refund notification and
    // the refund's change, all under the order, with the refund's id.
    let refund_no = orn();
    let refund = client
        .create_refund(&CreateRefundRequest::new(&no, &refund_no, 300))
        .await
        .expect("refund");
    wait_event(&app, &order_id, "refund call", |e| e.operation == "refund").await;
    let all = wait_event(&app, &order_id, "refund success", |e| {
        e.kind == OrderEventKind::State && e.operation == "refund_success"
    })
    .await;
    let call = one(&all, OrderEventKind::ChannelCall, "refund");
    assert_eq!(call.outcome, EventOutcome::Ok);
    assert!(call.latency_ms.is_some());
    assert_eq!(
        call.refund_id.as_ref().map(|r| r.as_str()),
        Some(refund.refund_id.as_str())
    );
    assert_eq!(call.summary["request"]["refundAmount"], 300);
    assert_eq!(call.summary["request"]["orderAmount"], 1000);
    let settled = one(&all, OrderEventKind::State, "refund_success");
    assert_eq!(settled.summary["to"], "SUCCESS");
    assert_eq!(
        settled.refund_id.as_ref().map(|r| r.as_str()),
        Some(refund.refund_id.as_str())
    );
    let all = wait_event(&app, &order_id, "refund notification", |e| {
        e.operation == "refund_notify"
    })
    .await;
    let news = one(&all, OrderEventKind::ChannelNotify, "refund_notify");
    assert_eq!(news.summary["notified"]["refundAmount"], 300);

    // Nothing of the payer: the openid appears in no summary.
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("oBuyerTimeline01"), "{text}");
}

async fn a_failed_channel_call_is_recorded_as_an_error(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 500).await;
    // The sandbox answers the next call (the order creation) with a
    // system error.
    app.add_fault(serde_json::json!({"channelType": "wx-pay", "fault": "SYSTEMERROR", "mchId": setup.mch_id()}))
        .await;
    let refused = client
        .pay(&PaymentRequest::new(&no, setup.channel("mini")).with_openid("oBuyerTimeline02"))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // Recorded in the background: a moment after the answer.
    let all = wait_event(&app, &order_id, "pay call", |e| {
        e.kind == OrderEventKind::ChannelCall && e.operation == "pay"
    })
    .await;
    let pay = one(&all, OrderEventKind::ChannelCall, "pay");
    assert_eq!(pay.outcome, EventOutcome::Error, "{pay:?}");
    assert!(pay.latency_ms.is_some());
    assert_eq!(pay.summary["answer"]["error"], "retryable", "{pay:?}");
    assert!(pay.summary["answer"]["code"].is_string(), "{pay:?}");
}
