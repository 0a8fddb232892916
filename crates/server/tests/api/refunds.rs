//! Refunds end to end against the mounted WeChat sandbox (v2 over mutual
//! TLS, v3): partial then full refunds settled by the sandbox's refund
//! notifications, the refundable amount (also under concurrent requests),
//! idempotency by outRefundNo, refund review (approve / reject), refusals
//! that store nothing, and a channel failure completed later by the poller
//! or by `?sync=true`.

use std::time::Duration;

use cashdesk_sdk::{
    ApplyBindingRequest, Client, CreateRefundRequest, Credentials, Method, PaymentRequest,
    RefundResult, RefundState, RegisterAppRequest, SdkError, Secret, SignType,
};
use cashdesk_store::RefundFilter;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, WxSetup, assert_api_error, spawn_app, spawn_app_with};

backend_tests!(
    partial_then_full_v2,
    partial_then_full_v3,
    idempotent_by_out_refund_no,
    concurrent_refunds_never_exceed_the_paid_amount,
    refund_review_approve_and_reject,
    refusals_store_nothing,
    channel_failure_is_completed_by_the_poller,
    channel_failure_is_completed_by_sync,
    a_definite_refusal_is_a_final_fail,
    the_readme_refund_works_with_the_demo_app,
);

pub fn orn() -> String {
    format!("R{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}

/// A paid order of `amount` fen for `client`, paid through `setup`'s
/// mini-program channel: (outTradeNo, orderId).
async fn paid_order(
    app: &TestApp,
    setup: &WxSetup,
    client: &Client,
    amount: i64,
) -> (String, String) {
    let (no, order_id) = app.new_order(client, amount).await;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("mini")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    app.sandbox_pay(&order_id).await;
    app.wait_state(client, &no, "SUCCESS").await;
    (no, order_id)
}

fn state_of(r: &RefundResult) -> String {
    serde_json::to_value(r.state)
        .expect("state")
        .as_str()
        .expect("string")
        .to_owned()
}

/// Polls the refund (locally, no sync) until it is `state`.
pub async fn wait_refund(client: &Client, out_refund_no: &str, state: &str) -> RefundResult {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = client
            .get_refund(out_refund_no, false)
            .await
            .expect("get refund");
        if state_of(&r) == state {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "refund never reached {state}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn refund_count(app: &TestApp) -> usize {
    app.store
        .list_refunds(&RefundFilter {
            limit: 1000,
            ..RefundFilter::default()
        })
        .await
        .expect("list refunds")
        .len()
}

async fn partial_then_full(b: Backend, version: &'static str) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup(version).await;
    let client = &setup.shop.client;
    let (no, order_id) = paid_order(&app, &setup, client, 1000).await;

    let applied_before = app
        .metric(
            "cashdesk_channel_notifications_total",
            &[("result", "refund_applied")],
        )
        .await;
    let first_no = orn();
    let first = client
        .create_refund(&CreateRefundRequest {
            reason: Some("broken cup".into()),
            ..CreateRefundRequest::new(&no, &first_no, 300)
        })
        .await
        .expect("partial refund");
    assert_eq!(first.order_id, order_id);
    assert_eq!(first.out_trade_no, no);
    assert_eq!(first.out_refund_no, first_no);
    assert_eq!(first.amount, 300);
    assert_eq!(first.reason.as_deref(), Some("broken cup"));
    assert!(first.refund_id.starts_with('R'), "{first:?}");
    assert!(
        matches!(first.state, RefundState::Processing | RefundState::Success),
        "{first:?}"
    );
    // The sandbox's refund notification settles it (the poller's first
    // query is a minute away).
    let done = wait_refund(client, &first_no, "SUCCESS").await;
    assert!(done.channel_refund_id.is_some(), "{done:?}");
    assert!(done.finished_at.is_some());
    assert_eq!(done.refunded_amount, 300);
    // The server counts the notification just after committing the state
    // change this test saw, so the counter may lag it by a moment.
    assert!(
        app.metric_rises(
            "cashdesk_channel_notifications_total",
            &[("result", "refund_applied")],
            applied_before,
        )
        .await,
        "{version}: settled by the refund notification"
    );
    let q = client.query_pay_result(&no, false).await.expect("query");
    assert_eq!(serde_json::to_value(q.state).expect("s"), "PART_REFUNDED");
    assert_eq!(q.refunded_amount, 300);
    assert_eq!(serde_json::to_value(q.result_code).expect("rc"), "SUCCESS");

    // More than what is left: 4220 with the refundable amount, nothing stored.
    let before = refund_count(&app).await;
    let data = assert_api_error(
        client
            .create_refund(&CreateRefundRequest::new(&no, orn(), 701))
            .await,
        422,
        4220,
    )
    .expect("data");
    assert_eq!(data["refundable"], 700);
    assert_eq!(refund_count(&app).await, before);

    // The rest.
    let rest_no = orn();
    client
        .create_refund(&CreateRefundRequest::new(&no, &rest_no, 700))
        .await
        .expect("full refund");
    let rest = wait_refund(client, &rest_no, "SUCCESS").await;
    assert_eq!(rest.refunded_amount, 1000);
    let q = client.query_pay_result(&no, true).await.expect("query");
    assert_eq!(serde_json::to_value(q.state).expect("s"), "REFUNDED");
    assert_eq!(serde_json::to_value(q.result_code).expect("rc"), "FINISH");
    assert_eq!(q.refunded_amount, 1000);
    // Nothing left to refund.
    let data = assert_api_error(
        client
            .create_refund(&CreateRefundRequest::new(&no, orn(), 1))
            .await,
        422,
        4220,
    )
    .expect("data");
    assert_eq!(data["refundable"], 0);
    // The first refund, read again, shows the order's total.
    let first_again = client.get_refund(&first_no, true).await.expect("get");
    assert_eq!(first_again.refunded_amount, 1000);
    assert_eq!(state_of(&first_again), "SUCCESS");
    // The operator sees both.
    let listed = app
        .admin
        .list_refunds(&cashdesk_sdk::RefundQuery {
            app_id: Some(setup.shop.app_id.clone()),
            state: Some("SUCCESS".into()),
            ..Default::default()
        })
        .await
        .expect("admin list");
    assert_eq!(listed.as_array().expect("array").len(), 2, "{listed}");
    // By order, and paged: the older of the two after the newer.
    let of_order = app
        .admin
        .list_refunds(&cashdesk_sdk::RefundQuery {
            order_id: Some(done.order_id.clone()),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .expect("admin list by order");
    assert_eq!(of_order.as_array().map(Vec::len), Some(1), "{of_order}");
    let older = app
        .admin
        .list_refunds(&cashdesk_sdk::RefundQuery {
            order_id: Some(done.order_id.clone()),
            before: of_order[0]["refundId"].as_str().map(str::to_owned),
            ..Default::default()
        })
        .await
        .expect("admin list, next page");
    assert_eq!(older.as_array().map(Vec::len), Some(1), "{older}");
    assert_ne!(older[0]["refundId"], of_order[0]["refundId"]);
    let one = app
        .admin
        .get_refund(&done.refund_id)
        .await
        .expect("admin get");
    assert_eq!(one["appId"], setup.shop.app_id.as_str());
    assert_eq!(one["orderState"], "REFUNDED");
}

async fn partial_then_full_v2(b: Backend) {
    partial_then_full(b, "v2").await
}

async fn partial_then_full_v3(b: Backend) {
    partial_then_full(b, "v3").await
}

async fn idempotent_by_out_refund_no(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, _) = paid_order(&app, &setup, client, 500).await;
    let rno = orn();
    let req = CreateRefundRequest::new(&no, &rno, 100);
    let first = client.create_refund(&req).await.expect("first");
    let again = client.create_refund(&req).await.expect("again");
    assert_eq!(again.refund_id, first.refund_id);
    assert_eq!(again.amount, 100);
    // Settled, the same body answers with the refund as it stands now.
    wait_refund(client, &rno, "SUCCESS").await;
    let later = client.create_refund(&req).await.expect("later");
    assert_eq!(later.refund_id, first.refund_id);
    assert_eq!(state_of(&later), "SUCCESS");
    assert_eq!(later.refunded_amount, 100);
    // Another body under the same outRefundNo: 409, nothing stored.
    let before = refund_count(&app).await;
    assert_api_error(
        client
            .create_refund(&CreateRefundRequest::new(&no, &rno, 101))
            .await,
        409,
        4090,
    );
    assert_api_error(
        client
            .create_refund(&CreateRefundRequest {
                reason: Some("other".into()),
                ..req.clone()
            })
            .await,
        409,
        4090,
    );
    assert_eq!(refund_count(&app).await, before);
    // outRefundNo is per app: another app's refund of the same number is
    // unknown here.
    let other = app.wechat_setup("v3").await;
    assert_api_error(other.shop.client.get_refund(&rno, false).await, 404, 4040);
    assert_eq!(
        client
            .query_pay_result(&no, false)
            .await
            .expect("q")
            .refunded_amount,
        100
    );
}

async fn concurrent_refunds_never_exceed_the_paid_amount(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, _) = paid_order(&app, &setup, client, 1000).await;
    let numbers: Vec<String> = (0..10).map(|_| orn()).collect();
    let results = futures_join_all(numbers.iter().map(|rno| {
        let client = client.clone();
        let req = CreateRefundRequest::new(&no, rno, 150);
        async move { client.create_refund(&req).await }
    }))
    .await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for (rno, r) in numbers.iter().zip(results) {
        match r {
            Ok(r) => accepted.push((rno.clone(), r)),
            Err(SdkError::Api { status, code, .. }) => {
                assert_eq!((status, code), (422, 4220));
                refused += 1;
            }
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert_eq!(accepted.len(), 6, "1000 fen hold six refunds of 150");
    assert_eq!(refused, 4);
    for (rno, _) in &accepted {
        wait_refund(client, rno, "SUCCESS").await;
    }
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(q.refunded_amount, 900);
    assert_eq!(serde_json::to_value(q.state).expect("s"), "PART_REFUNDED");
    assert_eq!(refund_count(&app).await, 6);
    // What is left is exactly 100.
    let data = assert_api_error(
        client
            .create_refund(&CreateRefundRequest::new(&no, orn(), 150))
            .await,
        422,
        4220,
    )
    .expect("data");
    assert_eq!(data["refundable"], 100);
}

/// Runs the futures concurrently (tasks on the runtime) and returns their
/// outputs in order.
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// A new app with refund review on, bound (approved) to `setup`'s channels.
async fn review_shop(app: &TestApp, setup: &WxSetup) -> (String, Client) {
    let reg = app
        .admin
        .create_app(&RegisterAppRequest {
            app_name: "reviewed shop".into(),
            refund_review: Some(true),
            ..RegisterAppRequest::default()
        })
        .await
        .expect("register");
    let client = Client::new(
        &app.base_url,
        &reg.app_id,
        Credentials::Shared {
            sign_type: SignType::HmacSha256,
            app_key: Secret::new(reg.app_key.clone()),
        },
    )
    .expect("client");
    for channel_id in setup.channels.values() {
        let applied = client
            .apply_binding(&ApplyBindingRequest {
                channel_id: channel_id.clone(),
                store_id: None,
            })
            .await
            .expect("apply");
        app.admin
            .approve_binding(&applied.binding_id)
            .await
            .expect("approve");
    }
    (reg.app_id, client)
}

async fn refund_review_approve_and_reject(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v2").await;
    let (app_id, client) = review_shop(&app, &setup).await;
    let (no, _) = paid_order(&app, &setup, &client, 1000).await;

    let first_no = orn();
    let pending = client
        .create_refund(&CreateRefundRequest::new(&no, &first_no, 400))
        .await
        .expect("refund");
    assert_eq!(state_of(&pending), "PENDING_REVIEW");
    assert_eq!(pending.refunded_amount, 0);
    // A pending refund holds its amount.
    let data = assert_api_error(
        client
            .create_refund(&CreateRefundRequest::new(&no, orn(), 700))
            .await,
        422,
        4220,
    )
    .expect("data");
    assert_eq!(data["refundable"], 600);
    // It waits for the operator: nothing reaches the channel meanwhile.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let still = client.get_refund(&first_no, true).await.expect("get");
    assert_eq!(state_of(&still), "PENDING_REVIEW");
    assert!(still.channel_refund_id.is_none());
    let listed = app
        .admin
        .list_refunds(&cashdesk_sdk::RefundQuery {
            app_id: Some(app_id.clone()),
            state: Some("PENDING_REVIEW".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["refundId"], pending.refund_id.as_str());
    assert_eq!(listed[0]["outRefundNo"], first_no.as_str());

    // Approve: to the channel, settled by its notification.
    let approved = app
        .admin
        .approve_refund(&pending.refund_id)
        .await
        .expect("approve");
    assert!(
        matches!(approved["state"].as_str(), Some("PROCESSING" | "SUCCESS")),
        "{approved}"
    );
    let done = wait_refund(&client, &first_no, "SUCCESS").await;
    assert_eq!(done.refunded_amount, 400);
    assert!(done.channel_refund_id.is_some());
    // Deciding twice: 422, unchanged.
    assert_api_error(
        app.admin.approve_refund(&pending.refund_id).await,
        422,
        4220,
    );
    assert_api_error(app.admin.reject_refund(&pending.refund_id).await, 422, 4220);

    // Reject: REJECTED, and its amount is refundable again.
    let second_no = orn();
    let second = client
        .create_refund(&CreateRefundRequest::new(&no, &second_no, 600))
        .await
        .expect("second");
    assert_eq!(state_of(&second), "PENDING_REVIEW");
    assert_api_error(
        client
            .create_refund(&CreateRefundRequest::new(&no, orn(), 1))
            .await,
        422,
        4220,
    );
    let rejected = app
        .admin
        .reject_refund(&second.refund_id)
        .await
        .expect("reject");
    assert_eq!(rejected["state"], "REJECTED");
    let r = client.get_refund(&second_no, false).await.expect("get");
    assert_eq!(state_of(&r), "REJECTED");
    assert!(r.finished_at.is_some());
    assert!(r.channel_refund_id.is_none(), "never reached the channel");
    assert_api_error(app.admin.approve_refund(&second.refund_id).await, 422, 4220);
    let third = client
        .create_refund(&CreateRefundRequest::new(&no, orn(), 600))
        .await
        .expect("the released amount is refundable");
    assert_eq!(state_of(&third), "PENDING_REVIEW");
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(q.refunded_amount, 400);
    // Unknown refund ids: 404.
    assert_api_error(
        app.admin.approve_refund("R0000000000000000000000000").await,
        404,
        4040,
    );
    // Every decision is audited.
    let audit = app
        .admin
        .list_audit(Some(50))
        .await
        .expect("audit")
        .to_string();
    assert!(audit.contains("refund.approve"), "{audit}");
    assert!(audit.contains("refund.reject"), "{audit}");
    assert!(audit.contains(&second.refund_id), "{audit}");
}

async fn refusals_store_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    // An order that is not paid.
    let (unpaid, _) = app.new_order(client, 100).await;
    assert_api_error(
        client
            .create_refund(&CreateRefundRequest::new(&unpaid, orn(), 50))
            .await,
        422,
        4220,
    );
    // An unknown order, an unknown refund.
    assert_api_error(
        client
            .create_refund(&CreateRefundRequest::new("NoSuchOrder1", orn(), 50))
            .await,
        404,
        4040,
    );
    assert_api_error(client.get_refund("NoSuchRefund", false).await, 404, 4040);
    // Bad input on a paid order: 400 naming the field.
    let (no, _) = paid_order(&app, &setup, client, 100).await;
    let long_no = "R".repeat(65);
    let long_reason = "x".repeat(81);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"outTradeNo": no, "outRefundNo": orn(), "amount": 0}),
            "amount",
        ),
        (
            json!({"outTradeNo": no, "outRefundNo": orn(), "amount": -5}),
            "amount",
        ),
        (
            json!({"outTradeNo": no, "outRefundNo": orn(), "amount": "50"}),
            "amount",
        ),
        (
            json!({"outTradeNo": no, "outRefundNo": orn(), "amount": 1.5}),
            "amount",
        ),
        (json!({"outTradeNo": no, "outRefundNo": orn()}), "amount"),
        (
            json!({"outTradeNo": no, "outRefundNo": long_no, "amount": 10}),
            "outRefundNo",
        ),
        (
            json!({"outTradeNo": no, "outRefundNo": "R 1", "amount": 10}),
            "outRefundNo",
        ),
        (json!({"outTradeNo": no, "amount": 10}), "outRefundNo"),
        (json!({"outRefundNo": orn(), "amount": 10}), "outTradeNo"),
        (
            json!({"outTradeNo": no, "outRefundNo": orn(), "amount": 10, "reason": long_reason}),
            "reason",
        ),
        (
            json!({"outTradeNo": no, "outRefundNo": orn(), "amount": 10, "notifyUrl": "ftp://x"}),
            "notifyUrl",
        ),
    ];
    for (body, field) in cases {
        let r = client
            .send(Method::POST, "/api/cashier-desk/refunds", Some(&body))
            .await;
        let data = assert_api_error(r, 400, 4000).unwrap_or_else(|| panic!("{body}"));
        assert_eq!(data["field"], field, "{body}");
    }
    // Not JSON at all.
    let r = app
        .signed_raw(
            client,
            Method::POST,
            "/api/cashier-desk/refunds",
            b"not json",
            crate::helpers::now(),
            &orn(),
        )
        .await;
    crate::helpers::assert_envelope(&r, 400, 4001);
    assert_eq!(refund_count(&app).await, 0);
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(serde_json::to_value(q.state).expect("s"), "SUCCESS");
    assert_eq!(q.refunded_amount, 0);
    // `sync` must be a boolean.
    let r = client
        .send(Method::GET, "/api/cashier-desk/refunds/R1?sync=yes", None)
        .await;
    assert_api_error(r, 400, 4000);
}

/// The refund call fails with SYSTEMERROR (outcome unknown): the refund
/// stays PROCESSING (answered 200), then the poller asks the channel, which
/// never saw it, sends it again, and the notification settles it.
async fn channel_failure_is_completed_by_the_poller(b: Backend) {
    let app = spawn_app_with(b, |c| c.query_schedule = Some("300ms,300ms".into())).await;
    for (version, path) in [
        ("v2", "secapi/pay/refund"),
        ("v3", "/v3/refund/domestic/refunds"),
    ] {
        let setup = app.wechat_setup(version).await;
        let client = &setup.shop.client;
        let (no, _) = paid_order(&app, &setup, client, 800).await;
        app.add_fault(json!({"channelType": "wx-pay", "fault": "SYSTEMERROR", "mchId": setup.mch_id(), "pathContains": path}))
            .await;
        let rno = orn();
        let r = client
            .create_refund(&CreateRefundRequest::new(&no, &rno, 800))
            .await
            .unwrap_or_else(|e| panic!("{version}: {e:?}"));
        assert_eq!(state_of(&r), "PROCESSING", "{version}: {r:?}");
        assert!(r.channel_refund_id.is_none());
        let done = wait_refund(client, &rno, "SUCCESS").await;
        assert_eq!(done.refunded_amount, 800);
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(serde_json::to_value(q.state).expect("s"), "REFUNDED");
        let view = app.admin.get_refund(&r.refund_id).await.expect("admin get");
        assert!(
            view["queryAttempts"].as_u64().is_some_and(|n| n >= 1),
            "{view}"
        );
    }
}

/// As above, with the poller a minute away: `?sync=true` completes it.
async fn channel_failure_is_completed_by_sync(b: Backend) {
    let app = spawn_app(b).await;
    for (version, path) in [
        ("v2", "secapi/pay/refund"),
        ("v3", "/v3/refund/domestic/refunds"),
    ] {
        let setup = app.wechat_setup(version).await;
        let client = &setup.shop.client;
        let (no, _) = paid_order(&app, &setup, client, 800).await;
        app.add_fault(json!({"channelType": "wx-pay", "fault": "SYSTEMERROR", "mchId": setup.mch_id(), "pathContains": path}))
            .await;
        let rno = orn();
        let r = client
            .create_refund(&CreateRefundRequest::new(&no, &rno, 500))
            .await
            .expect("refund");
        assert_eq!(state_of(&r), "PROCESSING", "{version}");
        // The channel never got it: nothing settles it by itself.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let local = client.get_refund(&rno, false).await.expect("get");
        assert_eq!(state_of(&local), "PROCESSING", "{version}");
        // Its amount stays held meanwhile.
        assert_api_error(
            client
                .create_refund(&CreateRefundRequest::new(&no, orn(), 301))
                .await,
            422,
            4220,
        );
        let synced = client.get_refund(&rno, true).await.expect("sync");
        assert!(
            matches!(synced.state, RefundState::Processing | RefundState::Success),
            "{version}: {synced:?}"
        );
        let done = wait_refund(client, &rno, "SUCCESS").await;
        assert_eq!(done.refunded_amount, 500);
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(serde_json::to_value(q.state).expect("s"), "PART_REFUNDED");
    }
}

/// A refusal that moved no money (here: a v2 config without the client
/// certificate the refund endpoint needs) makes the refund FAIL, answered
/// 200 with the reason; its amount is released; the same body again gets
/// the same answer.
async fn a_definite_refusal_is_a_final_fail(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app
        .wechat_setup_with("v2", "HMAC-SHA256", |c| {
            if let Some(o) = c.as_object_mut() {
                o.remove("certPem");
                o.remove("keyPem");
            }
        })
        .await;
    let client = &setup.shop.client;
    let (no, _) = paid_order(&app, &setup, client, 300).await;
    let rno = orn();
    let req = CreateRefundRequest::new(&no, &rno, 300);
    let failed = client.create_refund(&req).await.expect("answered");
    assert_eq!(state_of(&failed), "FAIL", "{failed:?}");
    assert_eq!(failed.error_code.as_deref(), Some("CHANNEL_CONFIG"));
    assert!(
        failed
            .error_msg
            .as_deref()
            .is_some_and(|m| m.contains("certPem")),
        "{failed:?}"
    );
    assert!(failed.finished_at.is_some());
    assert_eq!(failed.refunded_amount, 0);
    let again = client.create_refund(&req).await.expect("replay");
    assert_eq!(again.refund_id, failed.refund_id);
    assert_eq!(state_of(&again), "FAIL");
    // The amount is released: a new refund of all of it is taken (and
    // refused by the channel the same way), not 4220.
    let next = client
        .create_refund(&CreateRefundRequest::new(&no, orn(), 300))
        .await
        .expect("released");
    assert_eq!(state_of(&next), "FAIL");
    let q = client.query_pay_result(&no, false).await.expect("q");
    assert_eq!(serde_json::to_value(q.state).expect("s"), "SUCCESS");
    assert_eq!(q.refunded_amount, 0);
}

/// The README's steps 5 and 6: the demo app's v2 mini-program order is
/// refunded over the sandbox's mutual TLS and settled by its notification.
async fn the_readme_refund_works_with_the_demo_app(b: Backend) {
    let app = spawn_app(b).await;
    let demo: Value =
        serde_json::from_slice(&std::fs::read(app.config.demo_app_file()).expect("demo file"))
            .expect("json");
    let mini = demo["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| {
            c["channelType"] == "wx-pay" && c["apiVersion"] == "v2" && c["sceneCode"] == "mini"
        })
        .expect("v2 mini")
        .clone();
    let (no, order_id) = app.new_order(&app.client, 1).await;
    app.client
        .pay(
            &PaymentRequest::new(&no, mini["channelId"].as_str().expect("channelId"))
                .with_openid("oSandboxBuyer"),
        )
        .await
        .expect("pay");
    app.sandbox_pay(&order_id).await;
    app.wait_state(&app.client, &no, "SUCCESS").await;
    let rno = orn();
    let r = app
        .client
        .create_refund(&CreateRefundRequest {
            reason: Some("out of stock".into()),
            ..CreateRefundRequest::new(&no, &rno, 1)
        })
        .await
        .expect("refund");
    assert_eq!(state_of(&r), "PROCESSING", "{r:?}");
    let done = wait_refund(&app.client, &rno, "SUCCESS").await;
    assert_eq!(done.refunded_amount, 1);
    app.wait_state(&app.client, &no, "REFUNDED").await;
}
