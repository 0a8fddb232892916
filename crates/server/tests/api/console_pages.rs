//! The console's pages, through their router with a session put in the
//! request by a test layer (the login is the session middleware's): each
//! page renders for an admin, a merchant never sees another app's rows
//! and reads another app's objects as missing, a role without the
//! permission gets 403, every page carries the strict headers, and
//! hostile strings come back escaped.

use axum::Extension;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use cashdesk_core::{
    AppId, Fen, NotifyId, NotifyUrl, OrderId, OrderState, OutRefundNo, RefundId, Role,
};
use cashdesk_sdk::{CreateOrderRequest, SignType};
use cashdesk_server::access::{Principal, Via};
use cashdesk_server::cashier::i18n::Lang;
use cashdesk_server::console::{ConsoleSession, pages};
use cashdesk_store::{
    InitialRefundState, NewNotification, NewRefund, NotifyType, OrderTransition, RefundInsert,
};
use tower::ServiceExt;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, otn, spawn_app};

pub(crate) const CSRF: &str = "test-csrf-token";

pub(crate) fn principal(role: Role, apps: &[&str]) -> Principal {
    Principal {
        actor: format!("{role}-account"),
        account_id: Some("AC1".into()),
        role,
        apps: apps
            .iter()
            .map(|a| AppId::parse(a).expect("app id"))
            .collect(),
        ip: None,
        via: Via::Session,
    }
}

pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub(crate) async fn call(
    app: &TestApp,
    p: &Principal,
    method: &str,
    uri: &str,
    form: Option<&str>,
) -> Answer {
    let session = ConsoleSession {
        principal: p.clone(),
        csrf: CSRF.to_owned(),
        lang: Lang::En,
    };
    let router = pages::router()
        .layer(Extension(session))
        .with_state(app.state.clone());
    let mut req = Request::builder().method(method).uri(uri);
    if form.is_some() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req
        .body(Body::from(form.unwrap_or("").to_owned()))
        .expect("request");
    let resp = router.oneshot(req).await.expect("answer");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub(crate) async fn get(app: &TestApp, p: &Principal, uri: &str) -> Answer {
    call(app, p, "GET", uri, None).await
}

/// An order of `client`'s app, paid, with a refund in review and a
/// failed notification.
struct Seeded {
    order_id: String,
    refund_id: String,
    notify_id: String,
}

async fn seed(app: &TestApp, client: &cashdesk_sdk::Client, app_id: &str, title: &str) -> Seeded {
    let mut req = CreateOrderRequest::new(otn(), 500, title);
    req.third_party_user = Some("<script>alert('buyer')</script>".into());
    let created = client.create_order(&req).await.expect("order");
    let order_id = OrderId::parse(&created.order_id).expect("order id");
    let now = chrono::Utc::now();
    let mut t = OrderTransition::new(&[OrderState::Created], OrderState::Success, now);
    t.transaction_id = Some(format!("tx-{}", created.order_id));
    t.pay_time = Some(now);
    let notify_id = NotifyId::generate();
    let note = NewNotification {
        notify_id: notify_id.clone(),
        app_id: AppId::parse(app_id).expect("app"),
        order_id: order_id.clone(),
        refund_id: None,
        notify_type: NotifyType::PaySuccess,
        url: NotifyUrl::parse("notifyUrl", "https://shop.example.com/notify").expect("url"),
        body: "{}".into(),
    };
    let (order, _) = app
        .store
        .transition_order_notify(&order_id, &t, Some(&note))
        .await
        .expect("paid")
        .expect("applied");
    let refund = NewRefund {
        refund_id: RefundId::generate(),
        app_id: order.app_id.clone(),
        order_id: order.order_id.clone(),
        out_refund_no: OutRefundNo::parse(&otn()).expect("no"),
        amount: Fen::parse_positive("amount", 100).expect("fen"),
        reason: Some("<b>broken</b>".into()),
        notify_url: None,
        request_hash: "h".into(),
        created_at: now,
    };
    let refund_id = match app
        .store
        .insert_refund(&refund, InitialRefundState::PendingReview)
        .await
        .expect("refund")
    {
        RefundInsert::New(r) => r.refund_id.to_string(),
        other => panic!("{other:?}"),
    };
    Seeded {
        order_id: created.order_id,
        refund_id,
        notify_id: notify_id.to_string(),
    }
}

pub(crate) fn assert_strict(a: &Answer) {
    let csp = a.headers["content-security-policy"].to_str().expect("csp");
    assert_eq!(
        csp,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(a.headers["x-frame-options"], "DENY");
    assert_eq!(a.headers["referrer-policy"], "no-referrer");
    assert_eq!(a.headers["cache-control"], "no-store");
}

backend_tests!(
    pages_render_for_an_admin_and_merchants_stay_in_their_apps,
    merchants_manage_only_their_own_stores,
);

async fn merchants_manage_only_their_own_stores(backend: Backend) {
    let app = spawn_app(backend).await;
    let a_id = app.demo_app_id.clone();
    let b = app.merchant(SignType::HmacSha256).await;
    app.add_store(&a_id, "shop-a").await;
    app.add_store(&b.app_id, "shop-b").await;
    let form = format!("csrf={CSRF}&name=%3Cb%3Erenamed%3C%2Fb%3E");

    let admin = principal(Role::Admin, &[]);
    let all = get(&app, &admin, "/console/stores").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_strict(&all);
    assert!(all.body.contains("shop-a") && all.body.contains("shop-b"));

    let merchant = principal(Role::Merchant, &[&a_id]);
    let own = get(&app, &merchant, "/console/stores").await;
    assert!(own.body.contains("shop-a") && !own.body.contains("shop-b"));
    // Another app's store: missing, unchanged.
    let r = call(
        &app,
        &merchant,
        "POST",
        &format!("/console/stores/{}/shop-b/rename", b.app_id),
        Some(&form),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        &merchant,
        "POST",
        &format!("/console/stores/{}/shop-b/disable", b.app_id),
        Some(&format!("csrf={CSRF}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        &merchant,
        "POST",
        "/console/stores",
        Some(&format!(
            "csrf={CSRF}&appId={}&storeId=shop-x&name=x",
            b.app_id
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .expect("cookie")
            .starts_with("cashdesk_flash=e.")
    );
    let all = get(&app, &admin, "/console/stores").await;
    assert!(!all.body.contains("shop-x") && !all.body.contains("&#60;b&#62;renamed"));
    // Its own: renamed (and shown escaped), then created.
    let r = call(
        &app,
        &merchant,
        "POST",
        &format!("/console/stores/{a_id}/shop-a/rename"),
        Some(&form),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/console/stores");
    let r = call(
        &app,
        &merchant,
        "POST",
        "/console/stores",
        Some(&format!(
            "csrf={CSRF}&appId={a_id}&storeId=shop-new&name=new"
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let own = get(&app, &merchant, "/console/stores").await;
    assert!(
        own.body.contains("&#60;b&#62;renamed&#60;/b&#62;"),
        "{}",
        own.body
    );
    assert!(own.body.contains("shop-new"));
    // The auditor reads, and cannot write.
    let auditor = principal(Role::Auditor, &[]);
    assert_eq!(
        get(&app, &auditor, "/console/stores").await.status,
        StatusCode::OK
    );
    let r = call(&app, &auditor, "POST", "/console/stores", Some(&form)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn pages_render_for_an_admin_and_merchants_stay_in_their_apps(backend: Backend) {
    let app = spawn_app(backend).await;
    let a_id = app.demo_app_id.clone();
    let b = app.merchant(SignType::HmacSha256).await;
    let a = seed(&app, &app.client, &a_id, "<script>alert('title')</script>").await;
    let bs = seed(&app, &b.client, &b.app_id, "order of B").await;

    // An admin: every page renders, in the layout, with the strict headers.
    let admin = principal(Role::Admin, &[]);
    for uri in [
        "/console/orders".to_owned(),
        format!("/console/orders/{}", a.order_id),
        "/console/refunds".to_owned(),
        "/console/refunds?state=PENDING_REVIEW".to_owned(),
        "/console/bindings".to_owned(),
        "/console/notifications".to_owned(),
        "/console/notifications?state=FAILED".to_owned(),
        "/console/audit".to_owned(),
        "/console/stores".to_owned(),
        "/console/audit?action=refund.&from=2020-01-01".to_owned(),
    ] {
        let r = get(&app, &admin, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        assert_strict(&r);
        assert!(r.body.contains("admin-account"), "{uri}");
        assert!(
            r.body.contains(&format!("name=\"csrf\" value=\"{CSRF}\"")),
            "{uri}: the logout form"
        );
        assert!(!r.body.contains("<script"), "{uri}: nothing unescaped");
    }
    let list = get(&app, &admin, "/console/orders").await;
    assert!(list.body.contains(&a.order_id) && list.body.contains(&bs.order_id));
    let detail = get(&app, &admin, &format!("/console/orders/{}", a.order_id)).await;
    assert!(
        detail
            .body
            .contains("&#60;script&#62;alert(&#39;title&#39;)&#60;/script&#62;"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains(&a.refund_id) && detail.body.contains(&a.notify_id));
    // A search term comes back escaped in the form.
    let hostile = get(
        &app,
        &admin,
        "/console/orders?buyer=%22%3E%3Cscript%3Ex%3C%2Fscript%3E",
    )
    .await;
    assert_eq!(hostile.status, StatusCode::OK);
    assert!(!hostile.body.contains("<script>x"), "{}", hostile.body);
    // The buyer search finds both orders (same hostile buyer).
    let by_buyer = get(
        &app,
        &admin,
        "/console/orders?buyer=%3Cscript%3Ealert(%27buyer%27)%3C%2Fscript%3E",
    )
    .await;
    assert!(by_buyer.body.contains(&a.order_id) && by_buyer.body.contains(&bs.order_id));

    // A merchant of app A: A's rows only, B's objects are missing.
    let merchant = principal(Role::Merchant, &[&a_id]);
    for uri in [
        "/console/orders",
        "/console/refunds",
        "/console/notifications",
    ] {
        let r = get(&app, &merchant, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert!(
            !r.body.contains(&bs.order_id) && !r.body.contains(&b.app_id),
            "{uri} shows B"
        );
    }
    let own = get(&app, &merchant, &format!("/console/orders/{}", a.order_id)).await;
    assert_eq!(own.status, StatusCode::OK);
    let foreign = get(&app, &merchant, &format!("/console/orders/{}", bs.order_id)).await;
    let missing = get(
        &app,
        &merchant,
        "/console/orders/P00000000000000000000000000",
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_strict(&foreign);
    // Naming B's app or order in a search finds nothing.
    let r = get(
        &app,
        &merchant,
        &format!("/console/orders?appId={}", b.app_id),
    )
    .await;
    assert!(!r.body.contains(&bs.order_id));
    let r = get(
        &app,
        &merchant,
        &format!("/console/refunds?orderId={}", bs.order_id),
    )
    .await;
    assert!(!r.body.contains(&bs.refund_id));
    // B's notification cannot be resent by A's merchant; A's can.
    let form = format!("csrf={CSRF}");
    let r = call(
        &app,
        &merchant,
        "POST",
        &format!("/console/notifications/{}/resend", bs.notify_id),
        Some(&form),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/console/notifications");
    // Not resent: no resend of it in the audit log (its attempts are the
    // worker's, which keeps trying the unreachable URL meanwhile).
    let audit = app.store.list_audit(50).await.expect("audit");
    assert!(!audit.iter().any(|e| e.target == bs.notify_id), "{audit:?}");
    let r = call(
        &app,
        &merchant,
        "POST",
        &format!("/console/notifications/{}/resend", a.notify_id),
        Some(&form),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers["location"],
        format!("/console/orders/{}", a.order_id)
    );
    // The nav shows only what the role may see.
    assert!(!own.body.contains("/console/audit") && !own.body.contains("/console/channels"));

    // Roles without the permission: 403, in the layout.
    let finance = principal(Role::Finance, &[]);
    for uri in [
        "/console/bindings",
        "/console/notifications",
        "/console/audit",
    ] {
        let r = get(&app, &finance, uri).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        assert_strict(&r);
    }
    let r = call(
        &app,
        &merchant,
        "POST",
        &format!("/console/refunds/{}/approve", a.refund_id),
        Some(&form),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let auditor = principal(Role::Auditor, &[]);
    let r = call(
        &app,
        &auditor,
        "POST",
        &format!("/console/refunds/{}/reject", a.refund_id),
        Some(&form),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // An operator rejects A's refund: redirected with a flash, audited
    // as the account.
    let operator = principal(Role::Operator, &[]);
    let r = call(
        &app,
        &operator,
        "POST",
        &format!("/console/refunds/{}/reject", a.refund_id),
        Some(&form),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .expect("cookie")
            .starts_with("cashdesk_flash=o.")
    );
    let audit = app.store.list_audit(20).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|e| e.actor == "operator-account" && e.target == a.refund_id),
        "{audit:?}"
    );
    // And the audit page finds it by actor and action.
    let page = get(
        &app,
        &admin,
        "/console/audit?actor=operator-account&action=refund.",
    )
    .await;
    assert!(page.body.contains(&a.refund_id), "{}", page.body);
    let none = get(&app, &admin, "/console/audit?actor=nobody").await;
    assert!(!none.body.contains(&a.refund_id));
}

/// The stylesheet: at its hashed URL, cached for long, with the strict
/// policy too (the assets router is open: the login page uses it).
#[tokio::test]
async fn the_stylesheet_is_served_for_long() {
    use cashdesk_server::console::layout::{CSS_URL, assets_router};
    let Some(path) = CSS_URL.split('?').next() else {
        panic!("no path")
    };
    let app = spawn_app(Backend::Sqlite).await;
    let router = assets_router().with_state(app.state.clone());
    let resp = router
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["content-type"], "text/css; charset=utf-8");
    assert!(
        h["cache-control"]
            .to_str()
            .expect("cc")
            .contains("max-age=31536000")
    );
    assert!(h.contains_key("content-security-policy"));
}
