//! Every source of every terminal transition goes through the settlement
//! core (issue 14): the merchant's close, expiry, the poller, a query, a
//! channel notification (also duplicated), the cashier page, the merchant's
//! refund and an operator's decision each end in exactly one notification
//! of the right type — counted in the outbox and at the merchant's
//! endpoint. (A channel's own close is notified once as well: alipay.rs,
//! `hand_built_notifications_are_verified_exactly`.)

use std::collections::HashMap;
use std::time::Duration;

use cashdesk_sdk::{AppSettings, CreateRefundRequest, NotificationQuery, RegisterAppRequest};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;
use crate::receiver::Receiver;

backend_tests!(every_source_notifies_each_terminal_transition_once,);

const WAIT: Duration = Duration::from_secs(20);

/// A WeChat v2 sandbox shop whose app notifies `receiver`.
async fn shop(app: &TestApp, receiver: &Receiver) -> WxSetup {
    let m = app
        .merchant_with(RegisterAppRequest {
            app_name: "settled shop".into(),
            notify_url: Some(receiver.url("/notify")),
            ..RegisterAppRequest::default()
        })
        .await;
    receiver.trust(&m.app_id, &m.credentials);
    app.wechat_setup_for("v2", "HMAC-SHA256", |_| {}, m).await
}

/// A new order of `setup`'s shop, PAYING through the mini-program channel:
/// (outTradeNo, orderId, cashier token).
async fn paying(app: &TestApp, setup: &WxSetup, amount: i64) -> (String, String, String) {
    let client = &setup.shop.client;
    let no = otn();
    let created = client
        .create_order(&order(&no, amount))
        .await
        .expect("order");
    app.pay_json(
        client,
        json!({"outTradeNo": no, "channelId": setup.channel("mini"), "openid": "oBuyer0001"}),
    )
    .await
    .expect("pay");
    (no, created.order_id, created.token)
}

async fn drop_next_notification(app: &TestApp, setup: &WxSetup) {
    app.add_fault(
        json!({"channelType": "wx-pay", "fault": "DROP_NOTIFY", "mchId": setup.mch_id()}),
    )
    .await;
}

/// The notify types in the outbox for `order_id`, sorted.
async fn outbox_types(app: &TestApp, order_id: &str) -> Vec<String> {
    let list = app
        .admin
        .list_notifications(&NotificationQuery {
            order_id: Some(order_id.to_owned()),
            ..NotificationQuery::default()
        })
        .await
        .expect("notifications");
    let mut types: Vec<String> = list
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| n["notifyType"].as_str().unwrap_or("?").to_owned())
        .collect();
    types.sort();
    types
}

async fn every_source_notifies_each_terminal_transition_once(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.notify_schedule = Some("200ms,200ms,200ms".into());
        // The poller's first query a second after the order's last change.
        c.query_schedule = Some("1s,1s".into());
    })
    .await;
    let receiver = Receiver::start().await;
    let setup = shop(&app, &receiver).await;
    let client = &setup.shop.client;
    // order id → the notify types it must have, once each.
    let mut expected: HashMap<String, Vec<&str>> = HashMap::new();

    // The merchant closes a PAYING order and a CREATED one.
    let (no, id, _) = paying(&app, &setup, 101).await;
    client.close_order(&no).await.expect("close");
    expected.insert(id, vec!["PAY_CLOSED"]);
    let (no, id) = app.new_order(client, 102).await;
    client.close_order(&no).await.expect("close");
    client
        .close_order(&no)
        .await
        .expect("close again: nothing new");
    expected.insert(id, vec!["PAY_CLOSED"]);

    // Expiry closes an unpaid one (the channel is asked first).
    let (_, id, _) = paying(&app, &setup, 103).await;
    app.force_expire(&id).await;
    expected.insert(id, vec!["PAY_CLOSED"]);

    // The channel's notification, sent twice at once.
    app.add_fault(json!({"channelType": "wx-pay", "fault": "DUPLICATE_NOTIFY", "mchId": setup.mch_id(), "copies": 3}))
        .await;
    let (no, id, _) = paying(&app, &setup, 104).await;
    app.sandbox_pay(&id).await;
    app.wait_state(client, &no, "SUCCESS").await;
    // … and the merchant's query afterwards changes nothing.
    client
        .query_pay_result(&no, true)
        .await
        .expect("sync query");
    expected.insert(id, vec!["PAY_SUCCESS"]);

    // The notification lost: the merchant's query finds the payment.
    let (no, id, _) = paying(&app, &setup, 105).await;
    drop_next_notification(&app, &setup).await;
    app.sandbox_pay(&id).await;
    let q = client
        .query_pay_result(&no, true)
        .await
        .expect("sync query");
    assert_eq!(serde_json::to_value(q.state).expect("state"), "SUCCESS");
    expected.insert(id, vec!["PAY_SUCCESS"]);

    // The notification lost: the cashier page's status check finds it.
    let (no, id, token) = paying(&app, &setup, 106).await;
    drop_next_notification(&app, &setup).await;
    app.sandbox_pay(&id).await;
    let status: Value = app
        .http()
        .get(format!(
            "{}/cashier-desk-web/payment/status?token={token}",
            app.base_url
        ))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!(status["state"], "SUCCESS", "{status}");
    let _ = no;
    expected.insert(id, vec!["PAY_SUCCESS"]);

    // The notification lost: the poller finds it.
    let (no, id, _) = paying(&app, &setup, 107).await;
    drop_next_notification(&app, &setup).await;
    app.sandbox_pay(&id).await;
    app.wait_state(client, &no, "SUCCESS").await;
    expected.insert(id, vec!["PAY_SUCCESS"]);

    // The notification lost, then the order expires: expiry asks the
    // channel and records the payment, not a close.
    let (no, id, _) = paying(&app, &setup, 108).await;
    drop_next_notification(&app, &setup).await;
    app.sandbox_pay(&id).await;
    app.force_expire(&id).await;
    app.wait_state(client, &no, "SUCCESS").await;
    expected.insert(id, vec!["PAY_SUCCESS"]);

    // Refunds: the merchant's (the channel's refund notification settles
    // it), then with review on, one approved and one rejected by an
    // operator.
    let (no, id, _) = paying(&app, &setup, 500).await;
    app.sandbox_pay(&id).await;
    app.wait_state(client, &no, "SUCCESS").await;
    client
        .create_refund(&CreateRefundRequest::new(&no, orn(), 100))
        .await
        .expect("refund");
    app.admin
        .update_app_settings(
            &setup.shop.app_id,
            &AppSettings {
                refund_review: Some(true),
                ..AppSettings::default()
            },
        )
        .await
        .expect("review on");
    let approved = client
        .create_refund(&CreateRefundRequest::new(&no, orn(), 150))
        .await
        .expect("refund");
    let rejected = client
        .create_refund(&CreateRefundRequest::new(&no, orn(), 200))
        .await
        .expect("refund");
    app.admin
        .approve_refund(&approved.refund_id)
        .await
        .expect("approve");
    app.admin
        .reject_refund(&rejected.refund_id)
        .await
        .expect("reject");
    let again = app.admin.reject_refund(&rejected.refund_id).await;
    assert!(again.is_err(), "decided once");
    expected.insert(
        id,
        vec![
            "PAY_SUCCESS",
            "REFUND_FAIL",
            "REFUND_SUCCESS",
            "REFUND_SUCCESS",
        ],
    );

    // Every one arrives at the merchant, acknowledged, once per outbox row.
    let all_there = receiver
        .wait(WAIT, |r| {
            expected.iter().all(|(id, types)| {
                types
                    .iter()
                    .all(|t| r.acked_for(id, t).len() == types.iter().filter(|x| *x == t).count())
            })
        })
        .await;
    // Late copies would show now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (id, types) in &expected {
        let mut want: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        want.sort();
        assert_eq!(outbox_types(&app, id).await, want, "outbox of {id}");
        for t in ["PAY_SUCCESS", "PAY_CLOSED", "REFUND_SUCCESS", "REFUND_FAIL"] {
            let n = types.iter().filter(|x| **x == t).count();
            assert_eq!(
                receiver.acked_for(id, t).len(),
                n,
                "{t} of {id} at the merchant"
            );
        }
    }
    assert!(all_there, "unverified: {:?}", receiver.unverified());
}
