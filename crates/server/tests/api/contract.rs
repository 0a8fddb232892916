//! The contract crate's merchant requests (`cashdesk_api`, what the SDK
//! sends) against the server's parsers: every field a request type can
//! carry is one the server reads. Each field in turn gets a value no rule
//! accepts (a JSON array); the answer must be 400 4000 naming exactly that
//! field. A field the server ignored would be taken silently, and this
//! test would fail.

use cashdesk_api::{CreateOrderRequest, CreateRefundRequest, PaymentRequest};
use cashdesk_core::ChannelId;
use cashdesk_sdk::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(every_request_field_is_read_by_the_server);

/// `request` with every field set, sent to `path` once whole (not refused
/// for its fields) and once per field with that field broken.
async fn every_field_is_read(app: &TestApp, path: &str, request: &impl Serialize) {
    let Value::Object(whole) = serde_json::to_value(request).expect("json") else {
        panic!("a request is a JSON object");
    };
    let send = |body: Value| async move {
        let bytes = serde_json::to_vec(&body).expect("json");
        let nonce = cashdesk_crypto::random::nonce_str(32);
        let resp = app
            .signed_raw(&app.client, Method::POST, path, &bytes, now(), &nonce)
            .await;
        resp.json().expect("a JSON answer")
    };
    let answer = send(Value::Object(whole.clone())).await;
    assert_ne!(
        answer["code"], 4000,
        "the whole request is well formed: {answer}"
    );
    for name in whole.keys() {
        let mut broken = whole.clone();
        broken.insert(name.clone(), json!([]));
        let answer = send(Value::Object(broken)).await;
        assert_eq!(answer["code"], 4000, "{path} {name}: {answer}");
        assert_eq!(answer["data"]["field"], name.as_str(), "{path}: {answer}");
    }
}

async fn every_request_field_is_read_by_the_server(b: Backend) {
    let app = spawn_app(b).await;
    every_field_is_read(
        &app,
        "/api/cashier-desk/unified/orders",
        &CreateOrderRequest {
            out_trade_no: otn(),
            amount: 100,
            order_title: "Tea".into(),
            goods_desc: Some("green".into()),
            third_party_user: Some("u1".into()),
            notify_url: Some("https://shop.example.com/notify".into()),
            return_url: Some("https://shop.example.com/back".into()),
            expire_minutes: Some(30),
            store_id: Some("S1".into()),
            attach: Some("a".into()),
            client_ip: Some("203.0.113.9".into()),
        },
    )
    .await;
    every_field_is_read(
        &app,
        "/api/cashier-desk/payment",
        &PaymentRequest {
            out_trade_no: otn(),
            channel_id: ChannelId::generate().to_string(),
            openid: Some("o-1".into()),
            openid_app_id: Some("wx1".into()),
            buyer_id: Some("2088".into()),
            client_ip: Some("203.0.113.9".into()),
        },
    )
    .await;
    every_field_is_read(
        &app,
        "/api/cashier-desk/refunds",
        &CreateRefundRequest {
            out_trade_no: otn(),
            out_refund_no: otn(),
            amount: 1,
            reason: Some("size".into()),
            notify_url: Some("https://shop.example.com/notify".into()),
        },
    )
    .await;
}
