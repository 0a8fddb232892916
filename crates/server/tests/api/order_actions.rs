//! What a person does to one order through the operator API
//! (`POST /api/admin/orders/{id}/sync|close|refunds`): the merchant API's
//! rules (refundable amount, review, `outRefundNo` idempotency, close at
//! the channel), the account's scope, bad input changing nothing, and the
//! audit log with the order before and after.

use cashdesk_core::Role;
use cashdesk_sdk::{Method, PaymentRequest, SignType};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;
use crate::rbac::{account_token, call};

backend_tests!(
    a_merchant_refunds_an_order_under_the_review_rules,
    an_operator_syncs_and_closes_orders,
);

/// The audit entries of `action` on `target`.
async fn audited(app: &TestApp, action: &str, target: &str) -> Vec<Value> {
    let audit = app.admin.list_audit(Some(500)).await.expect("audit");
    audit
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["action"] == action && e["target"] == target)
        .cloned()
        .collect()
}

async fn a_merchant_refunds_an_order_under_the_review_rules(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 300).await;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("mini")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    app.sandbox_pay(&order_id).await;
    app.wait_state(client, &no, "SUCCESS").await;
    let staff = account_token(&app, "shop-staff", Role::Merchant, &[&setup.shop.app_id]).await;
    let path = format!("/api/admin/orders/{order_id}/refunds");

    // Bad input is refused and leaves no refund.
    for bad in [
        json!({}),
        json!({ "amount": 0 }),
        json!({ "amount": "100" }),
        json!({ "amount": 100, "outRefundNo": "has space" }),
        json!({ "amount": 100, "reason": "x".repeat(81) }),
    ] {
        let (status, body) = call(&app, &staff, Method::POST, &path, &bad).await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (400, Some(4000)),
            "{bad}: {body}"
        );
    }
    let (status, body) = call(&app, &staff, Method::POST, &path, &json!({ "amount": 301 })).await;
    assert_eq!((status, body["code"].as_i64()), (422, Some(4220)), "{body}");
    assert_eq!(body["data"]["refundable"], 300, "{body}");
    let refunds = app
        .admin
        .request(
            Method::GET,
            &format!("/api/admin/refunds?orderId={order_id}"),
            None,
        )
        .await
        .expect("refunds");
    assert_eq!(refunds.as_array().map(Vec::len), Some(0), "{refunds}");

    // A refund, answered again for the same request, 409 for another.
    let ask = json!({ "amount": 100, "reason": "cup arrived broken", "outRefundNo": "OPTEST1" });
    let (status, first) = call(&app, &staff, Method::POST, &path, &ask).await;
    assert_eq!(status, 200, "{first}");
    let refund_id = first["data"]["refundId"]
        .as_str()
        .expect("refundId")
        .to_owned();
    assert_eq!(first["data"]["outRefundNo"], "OPTEST1");
    assert_eq!(first["data"]["amount"], 100);
    let (status, again) = call(&app, &staff, Method::POST, &path, &ask).await;
    assert_eq!(
        (status, again["data"]["refundId"].as_str()),
        (200, Some(refund_id.as_str()))
    );
    let other = json!({ "amount": 50, "outRefundNo": "OPTEST1" });
    let (status, body) = call(&app, &staff, Method::POST, &path, &other).await;
    assert_eq!((status, body["code"].as_i64()), (409, Some(4090)), "{body}");
    // It goes the normal way: the channel refunds, the merchant sees it.
    let refund = |out_refund_no: &'static str| {
        let client = client.clone();
        async move {
            client
                .get_refund(out_refund_no, true)
                .await
                .map(|r| r.state.to_string())
                .unwrap_or_default()
        }
    };
    assert!(
        wait_until(std::time::Duration::from_secs(10), || async {
            refund("OPTEST1").await == "SUCCESS"
        })
        .await,
        "refund OPTEST1 settles"
    );
    // Audited once, as the account, with the order before and the refund.
    let entries = audited(&app, "refund.create", &refund_id).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(
        (e["actor"].as_str(), e["role"].as_str()),
        (Some("shop-staff"), Some("merchant"))
    );
    assert_eq!(e["before"]["order"]["state"], "SUCCESS", "{e}");
    assert_eq!(e["after"]["refund"]["amount"], 100, "{e}");
    assert_eq!(e["after"]["refund"]["reason"], "cup arrived broken", "{e}");

    // Another app's staff: the order does not exist for them.
    let other_app = app.merchant(SignType::HmacSha256).await;
    let stranger = account_token(&app, "other-staff", Role::Merchant, &[&other_app.app_id]).await;
    for (p, body) in [
        (path.clone(), json!({ "amount": 1 })),
        (format!("/api/admin/orders/{order_id}/close"), json!({})),
        (format!("/api/admin/orders/{order_id}/sync"), json!({})),
    ] {
        let (status, answer) = call(&app, &stranger, Method::POST, &p, &body).await;
        assert_eq!(
            (status, answer["code"].as_i64()),
            (404, Some(4040)),
            "{p}: {answer}"
        );
    }

    // With refund review on, the next refund waits in the review queue.
    app.admin
        .request(
            Method::POST,
            &format!("/api/admin/apps/{}/settings", setup.shop.app_id),
            Some(&json!({ "refundReview": true })),
        )
        .await
        .expect("settings");
    let (status, reviewed) =
        call(&app, &staff, Method::POST, &path, &json!({ "amount": 50 })).await;
    assert_eq!(status, 200, "{reviewed}");
    assert_eq!(reviewed["data"]["state"], "PENDING_REVIEW", "{reviewed}");
    let generated = reviewed["data"]["outRefundNo"]
        .as_str()
        .expect("outRefundNo");
    assert!(
        generated.starts_with("OP") && generated.len() == 24,
        "{generated}"
    );
}

async fn an_operator_syncs_and_closes_orders(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let ops = account_token(&app, "ops-1", Role::Operator, &[]).await;
    // A notify URL, so the merchant's notifications are queued.
    app.admin
        .request(
            Method::POST,
            &format!("/api/admin/apps/{}/settings", setup.shop.app_id),
            Some(&json!({ "notifyUrl": "http://127.0.0.1:9/notify" })),
        )
        .await
        .expect("notify URL");

    // Paid at the channel, the notification lost: a sync settles it.
    app.add_fault(
        json!({"channelType": "wx-pay", "fault": "DROP_NOTIFY", "mchId": setup.mch_id()}),
    )
    .await;
    let (no, order_id) = app.new_order(client, 200).await;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("mini")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    app.sandbox_pay(&order_id).await;
    let (status, synced) = call(
        &app,
        &ops,
        Method::POST,
        &format!("/api/admin/orders/{order_id}/sync"),
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, synced["data"]["state"].as_str()),
        (200, Some("SUCCESS")),
        "{synced}"
    );
    let entries = audited(&app, "order.sync", &order_id).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["before"]["state"], "PAYING", "{entries:?}");
    assert_eq!(entries[0]["after"]["state"], "SUCCESS", "{entries:?}");
    // A paid order cannot be closed; a sync of it changes nothing.
    let close_paid = format!("/api/admin/orders/{order_id}/close");
    let (status, body) = call(&app, &ops, Method::POST, &close_paid, &json!({})).await;
    assert_eq!((status, body["code"].as_i64()), (422, Some(4220)), "{body}");
    let (status, _) = call(
        &app,
        &ops,
        Method::POST,
        &format!("/api/admin/orders/{order_id}/sync"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(audited(&app, "order.sync", &order_id).await.len(), 1);
    assert!(audited(&app, "order.close", &order_id).await.is_empty());

    // An unpaid order is closed (at the channel too), the merchant told
    // PAY_CLOSED; closing it again answers it as it is, audited once.
    let (no2, open) = app.new_order(client, 100).await;
    client
        .pay(&PaymentRequest::new(&no2, setup.channel("mini")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    let close = format!("/api/admin/orders/{open}/close");
    for _ in 0..2 {
        let (status, closed) = call(&app, &ops, Method::POST, &close, &json!({})).await;
        assert_eq!(
            (status, closed["data"]["state"].as_str()),
            (200, Some("CLOSED")),
            "{closed}"
        );
    }
    let entries = audited(&app, "order.close", &open).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0]["actor"].as_str(), entries[0]["role"].as_str()),
        (Some("ops-1"), Some("operator"))
    );
    assert_eq!(entries[0]["before"]["state"], "PAYING", "{entries:?}");
    assert_eq!(entries[0]["after"]["state"], "CLOSED", "{entries:?}");
    // Closed at the channel: the buyer can no longer pay there.
    let (status, v) = app
        .sandbox_post(
            "/sandbox/api/pay",
            json!({"channelType": "wx-pay", "outTradeNo": open, "result": "SUCCESS"}),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    let notes = app
        .admin
        .request(
            Method::GET,
            &format!("/api/admin/notifications?orderId={open}"),
            None,
        )
        .await
        .expect("notifications");
    assert!(
        notes
            .as_array()
            .expect("list")
            .iter()
            .any(|n| n["notifyType"] == "PAY_CLOSED"),
        "{notes}"
    );
    // The operator may not refund (that is the merchant's or an admin's).
    let (status, body) = call(
        &app,
        &ops,
        Method::POST,
        &format!("/api/admin/orders/{order_id}/refunds"),
        &json!({ "amount": 1 }),
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(4035)), "{body}");
}
