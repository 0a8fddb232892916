//! Unified order, idempotency, query, close, payment list.

use cashdesk_core::{Fen, OrderId, OrderState, OutTradeNo, ResultCode, SignType};
use cashdesk_crypto::apisig::Verifier;
use cashdesk_store::OrderTransition;

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(
    create_order_answers_the_contract,
    same_body_same_answer_different_body_conflict,
    query_pay_result_and_unknown_order,
    close_is_idempotent_and_refuses_paid_orders,
    payment_list_by_token,
    orders_are_per_app,
);

async fn create_order_answers_the_contract(b: Backend) {
    let app = spawn_app(b).await;
    app.add_store(&app.demo_app_id, "store-1").await;
    let no = otn();
    let mut req = order(&no, 1234);
    req.goods_desc = Some("a flat white".into());
    req.store_id = Some("store-1".into());
    req.attach = Some("x=1".into());
    req.client_ip = Some("203.0.113.9".into());
    req.notify_url = Some("https://shop.example.com/notify".into());
    req.return_url = Some("https://shop.example.com/done#/ok".into());
    req.expire_minutes = Some(10);
    let before = chrono::Utc::now();
    let created = app.client.create_order(&req).await.expect("order created");

    assert!(
        OrderId::parse(&created.order_id).is_some(),
        "{}",
        created.order_id
    );
    assert_eq!(created.out_trade_no, no);
    assert_eq!(created.token.len(), 43);
    assert_eq!(
        created.cashier_url,
        format!(
            "{}/cashier-desk-web/payment?token={}",
            app.base_url, created.token
        )
    );
    let expire_at =
        chrono::DateTime::parse_from_rfc3339(&created.expire_at).expect("RFC 3339 expireAt");
    let minutes = (expire_at.with_timezone(&chrono::Utc) - before).num_seconds();
    assert!((595..=605).contains(&minutes), "expires in {minutes} s");
    // The demo app is bound to the sandbox's WeChat Pay v2 and v3, Alipay
    // and Lakala channels.
    assert_eq!(created.channels.len(), 19, "demo channels");
    for (channel_type, n) in [("wx-pay", 10), ("ali-pay", 5), ("lakala", 4)] {
        assert_eq!(
            created
                .channels
                .iter()
                .filter(|c| c.channel_type == channel_type)
                .count(),
            n,
            "{channel_type}"
        );
    }
    assert!(
        created
            .channels
            .iter()
            .all(|c| c.url == format!("{}/api/cashier-desk/payment", app.base_url))
    );

    // The order signature proves the order came from cashdesk.
    let s = &created.signature;
    assert_eq!(
        (s.app_id.as_str(), s.out_trade_no.as_str()),
        (app.demo_app_id.as_str(), no.as_str())
    );
    let message = format!(
        "{}\n{}\n{}\n{}\n",
        s.app_id, s.out_trade_no, s.timestamp, s.nonce
    );
    Verifier::Shared(SignType::HmacSha256, app.demo_app_key.as_bytes())
        .verify(message.as_bytes(), &s.signature)
        .expect("order signature verifies with the app key");

    // Stored as sent.
    let stored = app
        .store
        .get_order_by_out_trade_no(
            &cashdesk_core::AppId::parse(&app.demo_app_id).expect("app id"),
            &OutTradeNo::parse(&no).expect("otn"),
        )
        .await
        .expect("store")
        .expect("order stored");
    assert_eq!(stored.amount, Fen::from_stored(1234));
    assert_eq!(stored.state, OrderState::Created);
    assert_eq!(stored.goods_desc, "a flat white");
    assert_eq!(
        stored.store_id.as_ref().map(|s| s.as_str()),
        Some("store-1")
    );
    assert_eq!(stored.attach.as_deref(), Some("x=1"));
    assert_eq!(stored.token, created.token);
    assert_eq!(
        stored
            .notify_url
            .as_ref()
            .map(cashdesk_core::NotifyUrl::as_str),
        Some("https://shop.example.com/notify")
    );
}

async fn same_body_same_answer_different_body_conflict(b: Backend) {
    let app = spawn_app(b).await;
    let no = otn();
    let req = order(&no, 500);
    let first = app.client.create_order(&req).await.expect("first");
    let again = app.client.create_order(&req).await.expect("retry");
    assert_eq!(first, again, "an identical retry gets the original answer");
    assert_eq!(app.order_count().await, 1);

    let mut changed = req.clone();
    changed.amount = 501;
    let data = assert_api_error(app.client.create_order(&changed).await, 409, 4090);
    assert!(data.is_none());
    assert_eq!(app.order_count().await, 1);

    // The original answer survives a close (it is the stored answer).
    app.client.close_order(&no).await.expect("close");
    let third = app
        .client
        .create_order(&req)
        .await
        .expect("retry after close");
    assert_eq!(first.order_id, third.order_id);
    assert_eq!(first.token, third.token);
}

async fn query_pay_result_and_unknown_order(b: Backend) {
    let app = spawn_app(b).await;
    app.add_store(&app.demo_app_id, "s1").await;
    let no = otn();
    let mut req = order(&no, 88);
    req.store_id = Some("s1".into());
    req.attach = Some("memo".into());
    let created = app.client.create_order(&req).await.expect("created");
    for sync in [false, true] {
        let r = app.client.query_pay_result(&no, sync).await.expect("query");
        assert_eq!(r.order_id, created.order_id);
        assert_eq!(r.amount, 88);
        assert_eq!(r.state, OrderState::Created);
        assert_eq!(r.result_code, ResultCode::Null);
        assert_eq!(r.channel_id, None);
        assert_eq!(r.pay_time, None);
        assert_eq!(r.refunded_amount, 0);
        assert_eq!(r.store_id.as_deref(), Some("s1"));
        assert_eq!(r.attach.as_deref(), Some("memo"));
        assert!(!r.paid_after_close);
    }
    assert_api_error(
        app.client.query_pay_result("NO-SUCH-ORDER", false).await,
        404,
        4040,
    );
    // `|` and `*` are allowed in outTradeNo and survive the path.
    let odd = format!("A|{}*", &otn()[..10]);
    app.client
        .create_order(&order(&odd, 1))
        .await
        .expect("odd outTradeNo");
    assert_eq!(
        app.client
            .query_pay_result(&odd, false)
            .await
            .expect("query")
            .out_trade_no,
        odd
    );
}

async fn close_is_idempotent_and_refuses_paid_orders(b: Backend) {
    let app = spawn_app(b).await;
    let no = otn();
    app.client
        .create_order(&order(&no, 100))
        .await
        .expect("created");
    let closed = app.client.close_order(&no).await.expect("closed");
    assert_eq!(
        (closed.state, closed.result_code),
        (OrderState::Closed, ResultCode::Fail)
    );
    let again = app
        .client
        .close_order(&no)
        .await
        .expect("closing again answers the same");
    assert_eq!(again.state, OrderState::Closed);
    assert_eq!(again.order_id, closed.order_id);
    assert_eq!(
        app.client
            .query_pay_result(&no, false)
            .await
            .expect("query")
            .state,
        OrderState::Closed
    );
    assert_api_error(app.client.close_order("UNKNOWN-1").await, 404, 4040);

    // A paid order (moved by the store, as a channel notification will) cannot be closed.
    let paid_no = otn();
    let created = app
        .client
        .create_order(&order(&paid_no, 100))
        .await
        .expect("created");
    let id = OrderId::parse(&created.order_id).expect("id");
    let mut t = OrderTransition::new(
        &[OrderState::Created],
        OrderState::Success,
        chrono::Utc::now(),
    );
    t.transaction_id = Some("4200000001".into());
    t.pay_time = Some(chrono::Utc::now());
    app.store
        .transition_order_notify(&id, &t, None)
        .await
        .expect("store")
        .expect("paid");
    assert_api_error(app.client.close_order(&paid_no).await, 422, 4220);
    let r = app
        .client
        .query_pay_result(&paid_no, false)
        .await
        .expect("query");
    assert_eq!(
        (r.state, r.result_code),
        (OrderState::Success, ResultCode::Success)
    );
    assert_eq!(r.transaction_id.as_deref(), Some("4200000001"));
    assert!(
        r.pay_time.is_some_and(|t| t.len() == 19),
        "yyyy-MM-dd HH:mm:ss"
    );
}

async fn payment_list_by_token(b: Backend) {
    let app = spawn_app(b).await;
    let no = otn();
    let created = app
        .client
        .create_order(&order(&no, 990))
        .await
        .expect("created");
    let list = app.client.payment_list(&created.token).await.expect("list");
    assert_eq!(list.order_id, created.order_id);
    assert_eq!((list.amount, list.order_title.as_str()), (990, "Coffee"));
    assert_eq!(list.app_id, app.demo_app_id);
    assert_eq!(list.app_name, "Demo shop");
    assert_eq!(list.state, OrderState::Created);
    assert_eq!(list.channels, created.channels);

    assert_api_error(app.client.payment_list("no-such-token").await, 404, 4041);
    assert_api_error(app.client.payment_list(&"x".repeat(500)).await, 404, 4041);
    let resp = app
        .raw(
            cashdesk_sdk::Method::GET,
            "/api/cashier-desk/payment/list",
            b"",
            Default::default(),
        )
        .await;
    assert_envelope(&resp, 400, 4000);

    // An order whose time is up: its token has expired with it.
    let token = app.insert_expired_order().await;
    let before = app.order_count().await;
    assert_api_error(app.client.payment_list(&token).await, 404, 4042);
    assert_eq!(app.order_count().await, before);
}

async fn orders_are_per_app(b: Backend) {
    let app = spawn_app(b).await;
    let other = app.merchant(SignType::HmacSha256).await;
    let no = otn();
    let mine = app
        .client
        .create_order(&order(&no, 1))
        .await
        .expect("demo order");
    // The same outTradeNo is another order for another app.
    let theirs = other
        .client
        .create_order(&order(&no, 2))
        .await
        .expect("other order");
    assert_ne!(mine.order_id, theirs.order_id);
    assert_eq!(
        other
            .client
            .query_pay_result(&no, false)
            .await
            .expect("q")
            .amount,
        2
    );
    // One app cannot close another's order by outTradeNo.
    let not_mine = otn();
    other
        .client
        .create_order(&order(&not_mine, 3))
        .await
        .expect("created");
    assert_api_error(app.client.close_order(&not_mine).await, 404, 4040);
}
