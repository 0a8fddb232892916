//! The order page's actions (sync, close, refund) through the console's
//! router: offered only to roles that may and for orders whose state
//! allows; a refund form is one refund however often it is sent; bad
//! amounts change nothing; another app's order reads as missing.

use axum::http::StatusCode;
use cashdesk_core::{OrderId, RefundState, Role};
use cashdesk_sdk::{PaymentRequest, SignType};
use cashdesk_store::RefundFilter;

use crate::backend_tests;
use crate::console_pages::{CSRF, call, get, principal};
use crate::helpers::{Backend, TestApp, spawn_app};

backend_tests!(the_order_page_refunds_closes_and_syncs_by_role);

async fn refunds_of(app: &TestApp, order_id: &str) -> Vec<cashdesk_store::Refund> {
    app.store
        .list_refunds(&RefundFilter {
            order_id: OrderId::parse(order_id),
            limit: 100,
            ..RefundFilter::default()
        })
        .await
        .expect("refunds")
}

/// The `value` of the input named `name` in `html`.
fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn flash_kind(a: &crate::console_pages::Answer) -> String {
    a.headers["set-cookie"]
        .to_str()
        .expect("cookie")
        .split_once('=')
        .map(|(_, v)| v[..2].to_owned())
        .unwrap_or_default()
}

async fn the_order_page_refunds_closes_and_syncs_by_role(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, paid) = app.new_order(client, 300).await;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("mini")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    app.sandbox_pay(&paid).await;
    app.wait_state(client, &no, "SUCCESS").await;
    let shop = setup.shop.app_id.as_str();
    let merchant = principal(Role::Merchant, &[shop]);
    let auditor = principal(Role::Auditor, &[]);
    let page = format!("/console/orders/{paid}");

    // A paid order: the merchant may refund (no close, no sync); the
    // auditor sees the page without any action.
    let own = get(&app, &merchant, &page).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(
        own.body.contains(&format!("action=\"{page}/refund\"")),
        "refund form"
    );
    assert!(!own.body.contains("/close\""), "a paid order has no close");
    assert!(own.body.contains("¥3.00"), "the refundable amount is shown");
    let read_only = get(&app, &auditor, &page).await;
    assert_eq!(read_only.status, StatusCode::OK);
    assert!(!read_only.body.contains("/refund\"") && !read_only.body.contains("/sync\""));
    let refund_no = input_value(&own.body, "outRefundNo").expect("outRefundNo in the form");

    // Bad amounts: a flash, no refund.
    for amount in ["abc", "0", "1.234", "-1", "3.01"] {
        let form = format!("csrf={CSRF}&amount={amount}&reason=x&outRefundNo={refund_no}");
        let r = call(
            &app,
            &merchant,
            "POST",
            &format!("{page}/refund"),
            Some(&form),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{amount}");
        assert_eq!(flash_kind(&r), "e.", "{amount} is refused");
    }
    assert!(refunds_of(&app, &paid).await.is_empty());

    // The form sent twice (a double click) is one refund of ¥1.50.
    let form = format!("csrf={CSRF}&amount=1.5&reason=%E7%A0%B4%E6%8D%9F&outRefundNo={refund_no}");
    for _ in 0..2 {
        let r = call(
            &app,
            &merchant,
            "POST",
            &format!("{page}/refund"),
            Some(&form),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.headers["location"], page.as_str());
        assert_eq!(flash_kind(&r), "o.");
    }
    let refunds = refunds_of(&app, &paid).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].amount.get(), 150);
    assert_eq!(refunds[0].out_refund_no.as_str(), refund_no);
    assert_eq!(refunds[0].reason.as_deref(), Some("破损"));
    assert_ne!(refunds[0].state, RefundState::PendingReview);
    let audit = app.store.list_audit(50).await.expect("audit");
    let created: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "refund.create")
        .collect();
    assert_eq!(created.len(), 1, "{audit:?}");
    assert_eq!(created[0].actor, "merchant-account");

    // Another app's staff: the order is missing, nothing happens.
    let other = app.merchant(SignType::HmacSha256).await;
    let stranger = principal(Role::Merchant, &[other.app_id.as_str()]);
    let form = format!("csrf={CSRF}&amount=1&outRefundNo=OPSTRANGER1");
    let r = call(
        &app,
        &stranger,
        "POST",
        &format!("{page}/refund"),
        Some(&form),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(refunds_of(&app, &paid).await.len(), 1);

    // An unpaid order: sync and close are offered, close closes it.
    let (no2, open) = app.new_order(client, 100).await;
    client
        .pay(&PaymentRequest::new(&no2, setup.channel("mini")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    let page2 = format!("/console/orders/{open}");
    let unpaid = get(&app, &merchant, &page2).await;
    assert!(unpaid.body.contains(&format!("action=\"{page2}/sync\"")));
    assert!(unpaid.body.contains(&format!("action=\"{page2}/close\"")));
    assert!(!unpaid.body.contains("/refund\""), "nothing to refund yet");
    let form = format!("csrf={CSRF}");
    let r = call(
        &app,
        &stranger,
        "POST",
        &format!("{page2}/close"),
        Some(&form),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        &merchant,
        "POST",
        &format!("{page2}/sync"),
        Some(&form),
    )
    .await;
    assert_eq!(
        (r.status, flash_kind(&r)),
        (StatusCode::SEE_OTHER, "o.".to_owned())
    );
    let r = call(
        &app,
        &merchant,
        "POST",
        &format!("{page2}/close"),
        Some(&form),
    )
    .await;
    assert_eq!(
        (r.status, flash_kind(&r)),
        (StatusCode::SEE_OTHER, "o.".to_owned())
    );
    let order = app
        .store
        .get_order(&OrderId::parse(&open).expect("id"))
        .await
        .expect("read")
        .expect("order");
    assert_eq!(order.state.as_str(), "CLOSED");
    let closed = get(&app, &merchant, &page2).await;
    assert!(!closed.body.contains("/close\"") && !closed.body.contains("/sync\""));
}
