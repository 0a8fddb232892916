//! The shop end to end against cashdesk: paid (with reuse and a repeated
//! notification), closed by the merchant, expired, and forged
//! notifications.

use cashdesk_sdk::{Credentials, RequestSigner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{World, poll, spawn};

fn id(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {v}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_order_is_reused_while_pending_and_settled_once() {
    let w = spawn().await;

    let (status, first) = w.buy("u1", 2).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["reused"], false);
    assert_eq!(first["state"], "PENDING");
    assert_eq!(first["amount"], 300);
    // The mini-program's wx.requestPayment parameters, from cashdesk.
    let pay = &first["payData"];
    for key in ["appId", "timeStamp", "nonceStr", "signType", "paySign"] {
        assert!(
            pay[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key} in {pay}"
        );
    }
    assert!(
        pay["package"]
            .as_str()
            .is_some_and(|p| p.starts_with("prepay_id=")),
        "{pay}"
    );
    let order_id = id(&first, "orderId");
    let gateway_order_id = id(&first, "gatewayOrderId");
    assert_eq!(w.cup().await, (10, 2));

    // The second buy-now hands out the same order: no new reservation, the
    // same cashdesk order (same outTradeNo, answered idempotently).
    let (status, second) = w.buy("u1", 2).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["reused"], true);
    assert_eq!(id(&second, "orderId"), order_id);
    assert_eq!(id(&second, "gatewayOrderId"), gateway_order_id);
    assert_eq!(second["cashierUrl"], first["cashierUrl"]);
    assert_eq!(w.cup().await, (10, 2));
    let at_cashdesk = w
        .gateway
        .query_pay_result(&order_id, false)
        .await
        .expect("query");
    assert_eq!(at_cashdesk.order_id, gateway_order_id);
    assert_eq!(at_cashdesk.amount, 300);
    assert_eq!(at_cashdesk.state.as_str(), "PAYING");

    // Another quantity while that one waits is refused, naming it.
    let (status, other) = w.buy("u1", 3).await;
    assert_eq!(status, 409, "{other}");
    assert_eq!(other["code"], "PENDING_ORDER");
    assert_eq!(id(&other, "orderId"), order_id);

    // The buyer pays; cashdesk's signed PAY_SUCCESS settles the shop order.
    w.sandbox_pay(&gateway_order_id).await;
    let paid = w.wait_order_state(&order_id, "PAID").await;
    assert!(
        paid["transactionId"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{paid}"
    );
    assert_eq!(paid["paidAfterClose"], false);
    assert_eq!(w.cup().await, (8, 0));
    let notification = w.delivered(&gateway_order_id, "PAY_SUCCESS").await;
    let notify_id = id(&notification, "notifyId");
    assert_eq!(w.shop_saw(&notify_id, 1).await, (1, true));

    // The same notification again (an operator resend: same notifyId,
    // signed afresh): acknowledged, nothing moves.
    w.admin
        .resend_notification(&notify_id)
        .await
        .expect("resend");
    assert_eq!(w.shop_saw(&notify_id, 2).await, (2, true));
    let (ok, _) = poll(
        || async {
            w.admin
                .get_notification(&notify_id)
                .await
                .expect("notification")
        },
        |n| n["state"] == "DELIVERED" && n["attempts"].as_i64() >= Some(2),
    )
    .await;
    assert!(ok, "cashdesk saw the repeat acknowledged");
    assert_eq!(w.cup().await, (8, 0));
    let (_, again) = w
        .shop(Method::GET, &format!("/orders/{order_id}"), None)
        .await;
    assert_eq!(again["state"], "PAID");
    assert_eq!(again["settledAt"], paid["settledAt"]);

    // Once paid, buy-now makes a new order.
    let (status, next) = w.buy("u1", 2).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["reused"], false);
    assert_ne!(id(&next, "orderId"), order_id);
    assert_eq!(w.cup().await, (8, 2));

    // The buyer asks for a refund; the shop's staff approve it; cashdesk
    // refunds and tells the shop REFUND_SUCCESS.
    let path = format!("/orders/{order_id}/refund-application");
    let (status, v) = w
        .shop(
            Method::POST,
            &path,
            Some(json!({"amount": 1_000_000, "reason": "x"})),
        )
        .await;
    assert_eq!((status, &v["code"]), (400, &json!("BAD_REQUEST")), "{v}");
    let ask = json!({"reason": "cup arrived broken", "buyerRemark": "photo sent"});
    let (status, applied) = w.shop(Method::POST, &path, Some(ask.clone())).await;
    assert_eq!(
        (status, applied["state"].as_str()),
        (200, Some("APPLIED")),
        "{applied}"
    );
    let (status, again) = w.shop(Method::POST, &path, Some(ask)).await;
    assert_eq!(
        (status, &again["applicationId"]),
        (200, &applied["applicationId"]),
        "one per order"
    );
    let (status, approved) = w
        .shop(
            Method::POST,
            &format!("{path}/approve"),
            Some(json!({"remark": "sorry"})),
        )
        .await;
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("APPROVED")),
        "{approved}"
    );
    let (status, twice) = w
        .shop(Method::POST, &format!("{path}/reject"), Some(json!({})))
        .await;
    assert_eq!(
        (status, &twice["code"]),
        (422, &json!("REFUSED")),
        "decided once: {twice}"
    );
    let (ok, _) = poll(
        || async { w.shop(Method::GET, &path, None).await.1 },
        |v| v["refund"]["state"] == "SUCCESS",
    )
    .await;
    assert!(ok, "the approved application's refund succeeds");
    w.delivered(&gateway_order_id, "REFUND_SUCCESS").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_closed_at_cashdesk_gives_the_stock_back() {
    let w = spawn().await;
    let (status, bought) = w.buy("u2", 3).await;
    assert_eq!(status, 200, "{bought}");
    let order_id = id(&bought, "orderId");
    let gateway_order_id = id(&bought, "gatewayOrderId");
    assert_eq!(w.cup().await, (10, 3));

    // The merchant's back office closes it through cashdesk's close API;
    // the PAY_CLOSED notification gives the reservation back.
    let closed = w.gateway.close_order(&order_id).await.expect("close");
    assert_eq!(closed.state.as_str(), "CLOSED");
    w.wait_order_state(&order_id, "CLOSED").await;
    assert_eq!(w.cup().await, (10, 0));
    let notification = w.delivered(&gateway_order_id, "PAY_CLOSED").await;
    assert_eq!(
        w.shop_saw(&id(&notification, "notifyId"), 1).await,
        (1, true)
    );

    // The shop's own cancel settles from cashdesk's answer at once; the
    // PAY_CLOSED that follows changes nothing.
    let (status, again) = w.buy("u2", 3).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["reused"], false, "a closed order is not reused");
    let order_id = id(&again, "orderId");
    let gateway_order_id = id(&again, "gatewayOrderId");
    assert_eq!(w.cup().await, (10, 3));
    let (status, cancelled) = w
        .shop(Method::POST, &format!("/orders/{order_id}/cancel"), None)
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "CLOSED");
    assert_eq!(w.cup().await, (10, 0));
    let notification = w.delivered(&gateway_order_id, "PAY_CLOSED").await;
    assert_eq!(
        w.shop_saw(&id(&notification, "notifyId"), 1).await,
        (1, false)
    );
    assert_eq!(w.cup().await, (10, 0));
    let (status, twice) = w
        .shop(Method::POST, &format!("/orders/{order_id}/cancel"), None)
        .await;
    assert_eq!((status, &twice["code"]), (409, &json!("STATE")), "{twice}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_expired_at_cashdesk_gives_the_stock_back() {
    let w = spawn().await;
    let (status, bought) = w.buy("u3", 4).await;
    assert_eq!(status, 200, "{bought}");
    let order_id = id(&bought, "orderId");
    let gateway_order_id = id(&bought, "gatewayOrderId");
    assert_eq!(w.cup().await, (10, 4));

    // Orders live at least a minute through the API: move cashdesk's
    // expiry into the past in its database. Its expiry worker asks the
    // sandbox (not paid), closes the order there and notifies PAY_CLOSED.
    force_expire(&w, &gateway_order_id).await;
    w.wait_order_state(&order_id, "CLOSED").await;
    assert_eq!(w.cup().await, (10, 0));
    let at_cashdesk = w
        .gateway
        .query_pay_result(&order_id, false)
        .await
        .expect("query");
    assert_eq!(at_cashdesk.state.as_str(), "CLOSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_closes_old_pending_orders_also_ones_cashdesk_never_saw() {
    let w = spawn().await;
    let (status, bought) = w.buy("u8", 2).await;
    assert_eq!(status, 200, "{bought}");
    let order_id = id(&bought, "orderId");
    // An order whose buy-now never reached cashdesk: reserved, not sent.
    let new = cashdesk_shop::db::NewOrder {
        user_id: "u9",
        openid: "u9",
        goods_id: "cup",
        qty: 3,
        now: cashdesk_shop::orders::now(),
        reuse_secs: 86_400,
    };
    let unsent = match w.db.find_or_reserve(&new, |_, _, _| "{}".to_owned()).await {
        Ok(cashdesk_shop::db::Reservation::New(o)) => o.order_id,
        other => panic!("a new order: {other:?}"),
    };
    assert_eq!(w.cup().await, (10, 5));

    let later = cashdesk_shop::orders::now() + 1;
    let swept = cashdesk_shop::orders::sweep(&w.state, later)
        .await
        .expect("sweep");
    assert_eq!(swept, 2);
    for order in [&order_id, &unsent] {
        let (_, o) = w.shop(Method::GET, &format!("/orders/{order}"), None).await;
        assert_eq!(o["state"], "CLOSED", "{o}");
    }
    assert_eq!(w.cup().await, (10, 0));
    let at_cashdesk = w
        .gateway
        .query_pay_result(&order_id, false)
        .await
        .expect("query");
    assert_eq!(at_cashdesk.state.as_str(), "CLOSED");
    assert_eq!(
        cashdesk_shop::orders::sweep(&w.state, later)
            .await
            .expect("sweep"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_notifications_are_refused_and_change_nothing() {
    let w = spawn().await;
    let (status, bought) = w.buy("u4", 1).await;
    assert_eq!(status, 200, "{bought}");
    let order_id = id(&bought, "orderId");
    let gateway_order_id = id(&bought, "gatewayOrderId");
    assert_eq!(w.cup().await, (10, 1));

    let closed = json!({
        "notifyId": "N-forged", "notifyType": "PAY_CLOSED", "appId": w.app_id,
        "orderId": gateway_order_id, "outTradeNo": order_id, "amount": 150,
        "state": "CLOSED", "resultCode": "FAIL",
    })
    .to_string();
    let signer = |key: &str| {
        RequestSigner::new(w.app_id.clone(), &Credentials::hmac_sha256(key)).expect("signer")
    };
    let notify_url = format!("{}/cashdesk/notify", w.shop_url);
    let send = |body: String, headers: reqwest::header::HeaderMap| {
        let request = reqwest::Client::new()
            .post(&notify_url)
            .headers(headers)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let resp = request.send().await.expect("shop answers");
            (
                resp.status().as_u16(),
                resp.text().await.unwrap_or_default(),
            )
        }
    };
    let headers = |key: &str, path: &str, body: &str| {
        signer(key)
            .sign_request("POST", path, body.as_bytes())
            .expect("sign")
            .to_header_map()
            .expect("headers")
    };

    // Signed, then the body changed (a cheaper amount).
    let tampered = closed.replace("\"amount\":150", "\"amount\":1");
    assert_ne!(tampered, closed);
    let h = headers(&w.app_key, "/cashdesk/notify", &closed);
    assert_eq!(send(tampered, h).await.0, 401);
    // Signed with another key.
    let h = headers("not-the-app-key", "/cashdesk/notify", &closed);
    assert_eq!(send(closed.clone(), h).await.0, 401);
    // Signed for another path.
    let h = headers(&w.app_key, "/elsewhere", &closed);
    assert_eq!(send(closed.clone(), h).await.0, 401);
    // Not signed at all.
    assert_eq!(send(closed.clone(), Default::default()).await.0, 401);

    let (_, order) = w
        .shop(Method::GET, &format!("/orders/{order_id}"), None)
        .await;
    assert_eq!(order["state"], "PENDING");
    assert_eq!(w.cup().await, (10, 1));
    assert_eq!(w.db.notification("N-forged").await.expect("log"), None);

    // The same body signed with the app key (as cashdesk signs) is taken:
    // the refusals above were the signature's doing.
    let h = headers(&w.app_key, "/cashdesk/notify", &closed);
    let (status, ack) = send(closed.clone(), h).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        serde_json::from_str::<Value>(&ack).expect("JSON ack")["code"],
        1000
    );
    w.wait_order_state(&order_id, "CLOSED").await;
    assert_eq!(w.cup().await, (10, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buy_now_refusals_reserve_nothing() {
    let w = spawn().await;
    let (status, v) = w.buy("u5", 11).await;
    assert_eq!((status, &v["code"]), (409, &json!("OUT_OF_STOCK")), "{v}");
    let (status, v) = w.buy("u5", 0).await;
    assert_eq!((status, &v["code"]), (400, &json!("BAD_REQUEST")), "{v}");
    let (status, v) = w
        .shop(
            Method::POST,
            "/buy-now",
            Some(json!({"userId": "u5", "goodsId": "nothing", "qty": 1})),
        )
        .await;
    assert_eq!((status, &v["code"]), (404, &json!("UNKNOWN_GOODS")), "{v}");
    assert_eq!(w.cup().await, (10, 0));

    // Stock is shared: ten reserved by two buyers, the eleventh refused.
    assert_eq!(w.buy("u5", 6).await.0, 200);
    assert_eq!(w.buy("u6", 4).await.0, 200);
    let (status, v) = w.buy("u7", 1).await;
    assert_eq!(
        (status, v["message"].as_str()),
        (409, Some("only 0 left")),
        "{v}"
    );
    assert_eq!(w.cup().await, (10, 10));

    // No refund application for an unpaid order.
    let (_, order) = w.buy("u5", 6).await;
    let (status, v) = w
        .shop(
            Method::POST,
            &format!("/orders/{}/refund-application", id(&order, "orderId")),
            Some(json!({"reason": "changed my mind"})),
        )
        .await;
    assert_eq!((status, &v["code"]), (409, &json!("STATE")), "{v}");
}

/// Moves cashdesk's `expireAt` of the order a second into the past, in its
/// SQLite database.
async fn force_expire(w: &World, gateway_order_id: &str) {
    use sqlx::Connection as _;
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let url = w.gateway_config.effective_database_url();
    let mut c = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("open cashdesk's SQLite");
    let n = sqlx::query("UPDATE orders SET expire_at = $1 WHERE order_id = $2")
        .bind(past.timestamp_micros())
        .bind(gateway_order_id)
        .execute(&mut c)
        .await
        .expect("update")
        .rows_affected();
    assert_eq!(n, 1, "order {gateway_order_id} exists");
}
