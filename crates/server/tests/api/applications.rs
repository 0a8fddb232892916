//! Refund applications (issue 17 §2): the merchant's backend applies on
//! the buyer's behalf, the app's policy says who decides; a decision is
//! made once (approve and reject racing make one), an approval makes the
//! refund under the application's outRefundNo, the timeout decides as the
//! policy says; bad input changes nothing.

use cashdesk_core::Role;
use cashdesk_sdk::{Client, CreateRefundRequest, Method, PaymentRequest, SignType};
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::console_pages::{CSRF, call as page_call, get as page_get, principal};
use crate::helpers::*;
use crate::rbac::{account_token, call};

backend_tests!(
    people_decide_as_the_policy_says,
    the_merchant_decides_once,
    the_policy_says_who_decides_and_the_timeout_what,
);

/// A paid order of 300 fen at the sandbox: `(app, outTradeNo)`.
async fn paid(app: &TestApp) -> (WxSetup, String) {
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 300).await;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("mini")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    app.sandbox_pay(&order_id).await;
    app.wait_state(client, &no, "SUCCESS").await;
    (setup, no)
}

fn ask(no: &str, refund_no: &str, amount: i64) -> Value {
    json!({ "outTradeNo": no, "outRefundNo": refund_no, "amount": amount, "reason": "杯子碎了", "buyerRemark": "到货破损" })
}

async fn policy(app: &TestApp, app_id: &str, p: Value) -> Value {
    app.admin
        .request(
            Method::POST,
            &format!("/api/admin/apps/{app_id}/settings"),
            Some(&json!({ "refundApplications": p })),
        )
        .await
        .expect("settings")
}

fn code<T: std::fmt::Debug>(r: cashdesk_sdk::Result<T>) -> (u16, i64) {
    match r {
        Err(cashdesk_sdk::SdkError::Api { status, code, .. }) => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn the_merchant_decides_once(b: Backend) {
    let app = spawn_app(b).await;
    let (setup, no) = paid(&app).await;
    let client: &Client = &setup.shop.client;

    // Bad input, an unknown or unpaid order, too much: refused, nothing stored.
    for (bad, status) in [
        (
            json!({ "outTradeNo": no, "outRefundNo": "A1", "amount": 100 }),
            400,
        ),
        (
            json!({ "outTradeNo": no, "outRefundNo": "A1", "amount": 0, "reason": "x" }),
            400,
        ),
        (
            json!({ "outTradeNo": no, "outRefundNo": "has space", "amount": 1, "reason": "x" }),
            400,
        ),
        (
            json!({ "outTradeNo": no, "outRefundNo": "A1", "amount": 1, "reason": "x".repeat(81) }),
            400,
        ),
        (ask("no-such-order", "A1", 100), 404),
        (ask(&no, "A1", 301), 422),
    ] {
        let (s, _) = code(client.apply_refund(&bad).await);
        assert_eq!(s, status, "{bad}");
    }
    let (unpaid, _) = app.new_order(client, 100).await;
    assert_eq!(
        code(client.apply_refund(&ask(&unpaid, "A1", 50)).await).0,
        422
    );
    assert_eq!(code(client.get_refund_application("A1").await).0, 404);

    // An application; the same request again is the same one, another 409.
    let applied = client
        .apply_refund(&ask(&no, "A1", 120))
        .await
        .expect("applied");
    assert_eq!(applied["state"], "APPLIED", "{applied}");
    assert_eq!(applied["amount"], 120);
    assert_eq!(applied["buyerRemark"], "到货破损");
    assert!(applied["refund"].is_null(), "{applied}");
    let again = client
        .apply_refund(&ask(&no, "A1", 120))
        .await
        .expect("again");
    assert_eq!(again["applicationId"], applied["applicationId"]);
    assert_eq!(
        code(client.apply_refund(&ask(&no, "A1", 100)).await),
        (409, 4090)
    );
    // A refund's number cannot be an application's.
    client
        .create_refund(&CreateRefundRequest::new(&no, "R-DIRECT", 10))
        .await
        .expect("refund");
    assert_eq!(
        code(client.apply_refund(&ask(&no, "R-DIRECT", 10)).await),
        (409, 4090)
    );

    // Approve and reject racing: one decision.
    let (a, r) = tokio::join!(
        client.decide_refund_application("A1", true, Some("ok")),
        client.decide_refund_application("A1", false, Some("no")),
    );
    assert!(a.is_ok() != r.is_ok(), "exactly one decision: {a:?} {r:?}");
    let decided = client.get_refund_application("A1").await.expect("get");
    let winner = if a.is_ok() { "APPROVED" } else { "REJECTED" };
    assert_eq!(decided["state"], winner, "{decided}");
    assert_eq!(
        code(client.decide_refund_application("A1", true, None).await),
        (422, 4220)
    );
    if winner == "APPROVED" {
        assert_eq!(decided["refund"]["outRefundNo"], "A1", "{decided}");
        assert_eq!(decided["refund"]["amount"], 120);
    } else {
        assert!(decided["refund"].is_null(), "{decided}");
    }

    // A second application, approved: the refund runs the normal way.
    client
        .apply_refund(&ask(&no, "A2", 50))
        .await
        .expect("applied");
    let approved = client
        .decide_refund_application("A2", true, Some("sorry"))
        .await
        .expect("approved");
    assert_eq!(approved["state"], "APPROVED");
    assert!(
        approved["decidedBy"]
            .as_str()
            .is_some_and(|by| by.contains(setup.shop.app_id.as_str())),
        "decided as the app: {approved}"
    );
    assert_eq!(approved["remark"], "sorry");
    assert!(
        wait_until(std::time::Duration::from_secs(10), || async {
            client
                .get_refund("A2", true)
                .await
                .is_ok_and(|r| r.state.to_string() == "SUCCESS")
        })
        .await,
        "the approved application's refund settles"
    );
    // Audited: the application and each decision.
    let audit = app.admin.list_audit(Some(200)).await.expect("audit");
    let actions: Vec<&str> = audit
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("refund_application."))
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "refund_application.apply")
            .count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions.len(),
        4,
        "two applications, two decisions: {actions:?}"
    );
}

async fn the_policy_says_who_decides_and_the_timeout_what(b: Backend) {
    let app = spawn_app(b).await;
    let (setup, no) = paid(&app).await;
    let client = &setup.shop.client;
    let id = setup.shop.app_id.as_str();

    // Bad policies are refused.
    for bad in [
        json!({ "mode": "buyer" }),
        json!({ "days": 0 }),
        json!({ "days": 31 }),
        json!({ "onTimeout": "maybe" }),
    ] {
        let r = app
            .admin
            .request(
                Method::POST,
                &format!("/api/admin/apps/{id}/settings"),
                Some(&json!({ "refundApplications": bad })),
            )
            .await;
        assert!(
            matches!(r, Err(cashdesk_sdk::SdkError::Api { status: 400, .. })),
            "{bad}: {r:?}"
        );
    }

    // Operators decide: the merchant may not.
    let view = policy(&app, id, json!({ "mode": "operator" })).await;
    assert_eq!(view["refundApplications"]["mode"], "operator", "{view}");
    client
        .apply_refund(&ask(&no, "B1", 10))
        .await
        .expect("applied");
    assert_eq!(
        code(client.decide_refund_application("B1", true, None).await),
        (422, 4220)
    );

    // Nobody decides: approved (and refunded) when made.
    policy(&app, id, json!({ "mode": "none" })).await;
    let at_once = client
        .apply_refund(&ask(&no, "B2", 10))
        .await
        .expect("applied");
    assert_eq!(at_once["state"], "APPROVED", "{at_once}");
    assert_eq!(at_once["autoDecided"], true);
    assert_eq!(at_once["refund"]["outRefundNo"], "B2", "{at_once}");

    // The timeout: B1 (applied under operator mode, reject on timeout by
    // default) is rejected after its days; with approve, B3 is approved
    // and refunded.
    policy(
        &app,
        id,
        json!({ "mode": "merchant", "days": 2, "onTimeout": "approve" }),
    )
    .await;
    let b3 = client
        .apply_refund(&ask(&no, "B3", 10))
        .await
        .expect("applied");
    let decide_by =
        chrono::DateTime::parse_from_rfc3339(b3["decideBy"].as_str().expect("decideBy"))
            .expect("time");
    let days = (decide_by.with_timezone(&Utc) - Utc::now()).num_hours();
    assert!((47..=48).contains(&days), "two days: {b3}");
    // Not yet due: nothing happens.
    cashdesk_server::service::applications::run_due(&app.state, Utc::now())
        .await
        .expect("run");
    assert_eq!(
        client.get_refund_application("B3").await.expect("get")["state"],
        "APPLIED"
    );
    let later = Utc::now() + Duration::days(8);
    let n = cashdesk_server::service::applications::run_due(&app.state, later)
        .await
        .expect("run");
    assert_eq!(n, 2, "B1 and B3");
    let b1 = client.get_refund_application("B1").await.expect("get");
    let b3 = client.get_refund_application("B3").await.expect("get");
    // The app's policy now says approve: the timeout applies the policy
    // at the time it decides.
    assert_eq!(
        (b1["state"].as_str(), b1["autoDecided"].as_bool()),
        (Some("APPROVED"), Some(true)),
        "{b1}"
    );
    assert_eq!(b3["state"], "APPROVED", "{b3}");
    assert_eq!(b3["refund"]["outRefundNo"], "B3", "{b3}");
    assert_eq!(b3["decidedBy"], "refund-applications");
    // Once decided, the worker has nothing more to do.
    let n = cashdesk_server::service::applications::run_due(&app.state, later)
        .await
        .expect("run");
    assert_eq!(n, 0);
    policy(&app, id, json!({ "onTimeout": "reject" })).await;
    client
        .apply_refund(&ask(&no, "B4", 10))
        .await
        .expect("applied");
    cashdesk_server::service::applications::run_due(&app.state, later)
        .await
        .expect("run");
    let b4 = client.get_refund_application("B4").await.expect("get");
    assert_eq!(
        (b4["state"].as_str(), b4["refund"].is_null()),
        (Some("REJECTED"), true),
        "{b4}"
    );
}

async fn people_decide_as_the_policy_says(b: Backend) {
    let app = spawn_app(b).await;
    let (setup, no) = paid(&app).await;
    let client = &setup.shop.client;
    let id = setup.shop.app_id.as_str();
    let ops = account_token(&app, "ops-1", Role::Operator, &[]).await;
    let staff = account_token(&app, "shop-staff", Role::Merchant, &[id]).await;
    let other = app.merchant(SignType::HmacSha256).await;
    let stranger = account_token(&app, "other-staff", Role::Merchant, &[&other.app_id]).await;
    let c1 = client
        .apply_refund(&ask(&no, "C1", 10))
        .await
        .expect("applied");
    let c1_id = c1["applicationId"].as_str().expect("id").to_owned();
    let path = |id: &str, what: &str| format!("/api/admin/refund-applications/{id}/{what}");

    // Listed for those who read refunds, within their apps.
    let (s, list) = call(
        &app,
        &staff,
        Method::GET,
        "/api/admin/refund-applications?state=APPLIED",
        &json!({}),
    )
    .await;
    assert_eq!(
        (s, list["data"][0]["outRefundNo"].as_str()),
        (200, Some("C1")),
        "{list}"
    );
    let (s, list) = call(
        &app,
        &stranger,
        Method::GET,
        "/api/admin/refund-applications",
        &json!({}),
    )
    .await;
    assert_eq!(
        (s, list["data"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{list}"
    );
    let (s, _) = call(
        &app,
        &stranger,
        Method::POST,
        &path(&c1_id, "approve"),
        &json!({}),
    )
    .await;
    assert_eq!(s, 404, "another app's application does not exist for them");

    // The merchant decides (default): its staff may, the operator may not.
    let (s, body) = call(
        &app,
        &ops,
        Method::POST,
        &path(&c1_id, "approve"),
        &json!({}),
    )
    .await;
    assert_eq!((s, body["code"].as_i64()), (403, Some(4035)), "{body}");
    let (s, body) = call(
        &app,
        &staff,
        Method::POST,
        &path(&c1_id, "reject"),
        &json!({ "remark": "used" }),
    )
    .await;
    assert_eq!(
        (s, body["data"]["state"].as_str()),
        (200, Some("REJECTED")),
        "{body}"
    );
    assert_eq!(body["data"]["decidedBy"], "shop-staff");

    // The operators decide: the operator may, the staff may not.
    policy(&app, id, json!({ "mode": "operator" })).await;
    let c2 = client
        .apply_refund(&ask(&no, "C2", 20))
        .await
        .expect("applied");
    let c2_id = c2["applicationId"].as_str().expect("id").to_owned();
    let (s, _) = call(
        &app,
        &staff,
        Method::POST,
        &path(&c2_id, "approve"),
        &json!({}),
    )
    .await;
    assert_eq!(s, 403);
    // In the console: the queue shows it, the operator approves it there.
    let web_ops = principal(Role::Operator, &[]);
    let page = page_get(&app, &web_ops, "/console/refunds/applications").await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(
        page.body.contains("C2") && page.body.contains(&format!("/{c2_id}/approve")),
        "{}",
        page.body
    );
    let form = format!("csrf={CSRF}&remark=ok");
    let r = page_call(
        &app,
        &web_ops,
        "POST",
        &format!("/console/refunds/applications/{c2_id}/approve"),
        Some(&form),
    )
    .await;
    assert_eq!(r.status.as_u16(), 303);
    let c2 = client.get_refund_application("C2").await.expect("get");
    assert_eq!(
        (c2["state"].as_str(), c2["refund"]["amount"].as_i64()),
        (Some("APPROVED"), Some(20)),
        "{c2}"
    );
    assert_eq!(c2["decidedBy"], "operator-account");
    // Decided: a second decision is refused and changes nothing.
    let (s, _) = call(
        &app,
        &ops,
        Method::POST,
        &path(&c2_id, "reject"),
        &json!({}),
    )
    .await;
    assert_eq!(s, 422);
    let audit = app.admin.list_audit(Some(200)).await.expect("audit");
    let decisions: Vec<&Value> = audit
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["target"] == c2_id.as_str() && e["action"] != "refund_application.apply")
        .collect();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["before"]["state"], "APPLIED");
    assert_eq!(decisions[0]["after"]["state"], "APPROVED");
}
