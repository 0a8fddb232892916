//! The console in a real browser (headless Chromium through chromedriver,
//! the harness of [`crate::browser`]): an operator signs in, approves a
//! binding, reviews a refund, finds an order by its outTradeNo and reads
//! its detail, resends a notification and signs out; an administrator
//! sees the accounts, the audit log, the apps, the channels and the
//! reconciliation; a phone (375 px) signs in and
//! reads the orders list. Each effect is checked through the operator
//! API, not only on the page.
//!
//! Also here, with the browser's own session cookie: a cookie planted
//! before sign-in is replaced at sign-in and opens nothing afterwards
//! (no session fixation), and a POST that carries the session cookie but
//! no `csrf` field (what a cross-site form could send, were the cookie
//! not `SameSite=Strict`) is refused with 403 and changes nothing.
//!
//! Screenshots of every page go to `target/browser-artifacts/console-*`;
//! docs/images/console-*.png are copies from a SQLite run (docs/console.md
//! links them).

use std::time::{Duration, Instant};

use cashdesk_core::Role;
use cashdesk_sdk::{ApplyBindingRequest, CreateRefundRequest, Method, PaymentRequest};
use fantoccini::Locator;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::bindings::new_channel;
use crate::browser::{Browser, ONE_BROWSER, Screen};
use crate::helpers::*;
use crate::rbac::{PASSWORD, account_token};

backend_tests!(console_in_a_browser);

const DESKTOP: Screen = Screen::Desktop {
    width: 1200,
    height: 800,
};
const PHONE: Screen = Screen::Phone {
    width: 375,
    height: 812,
};
const SESSION: &str = "cashdesk_session";
const PLANTED: &str = "planted-before-sign-in";

/// What the API set up for the browser to work on.
struct World {
    app_id: String,
    order_id: String,
    out_trade_no: String,
    refund_id: String,
    binding_id: String,
    notify_id: String,
}

/// An app with refund review on and a notify URL nobody answers, bound to
/// the sandbox's WeChat channels; a paid order, a refund waiting for
/// review, a binding application left pending, the order's notification.
async fn world(app: &TestApp) -> World {
    let setup = app.wechat_setup("v3").await;
    let shop = &setup.shop;
    app.admin
        .request(
            Method::POST,
            &format!("/api/admin/apps/{}/settings", shop.app_id),
            Some(&json!({ "refundReview": true, "notifyUrl": "http://127.0.0.1:9/notify" })),
        )
        .await
        .expect("settings");
    let (out_trade_no, order_id) = app.new_order(&shop.client, 2990).await;
    shop.client
        .pay(&PaymentRequest::new(&out_trade_no, setup.channel("mini")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    app.sandbox_pay(&order_id).await;
    app.wait_state(&shop.client, &out_trade_no, "SUCCESS").await;
    let refund = shop
        .client
        .create_refund(&CreateRefundRequest::new(&out_trade_no, orn(), 1000))
        .await
        .expect("refund");
    let r = admin_get(app, &format!("/api/admin/refunds/{}", refund.refund_id)).await;
    assert_eq!(r["state"], "PENDING_REVIEW", "{r}");
    // Another channel the app applies for: left pending.
    let other = new_channel(app, "native").await;
    let applied = shop
        .client
        .apply_binding(&ApplyBindingRequest {
            channel_id: other,
            store_id: None,
        })
        .await
        .expect("apply");
    let notes = admin_get(app, &format!("/api/admin/notifications?orderId={order_id}")).await;
    let notify_id = notes[0]["notifyId"]
        .as_str()
        .expect("the order's notification")
        .to_owned();
    World {
        app_id: shop.app_id.clone(),
        order_id,
        out_trade_no,
        refund_id: refund.refund_id,
        binding_id: applied.binding_id,
        notify_id,
    }
}

async fn admin_get(app: &TestApp, path: &str) -> Value {
    app.admin
        .request(Method::GET, path, None)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e:?}"))
}

/// Clicks the element `css` finds.
async fn click(br: &Browser, css: &str) {
    let at = br.url().await;
    br.client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("`{css}` on {at}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
}

/// Types `text` into the empty field `css` finds.
async fn fill(br: &Browser, css: &str, text: &str) {
    let at = br.url().await;
    let field = br
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("`{css}` on {at}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// Opens `path` of the server and waits for `text` on it.
async fn open(br: &Browser, base: &str, path: &str, text: &str) {
    br.client
        .goto(&format!("{base}{path}"))
        .await
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
    br.wait_text(text, Duration::from_secs(10)).await;
}

/// Signs in through the login form; waits for the console's header.
async fn sign_in(br: &Browser, base: &str, user: &str) {
    open(br, base, "/console/login", "id=\"sign-in\"").await;
    fill(br, "#username", user).await;
    fill(br, "#password", PASSWORD).await;
    click(br, "#sign-in").await;
    br.wait_text("id=\"my-account\"", Duration::from_secs(10))
        .await;
}

async fn sign_out(br: &Browser) {
    click(br, "header form[action=\"/console/logout\"] button").await;
    br.wait_text("id=\"sign-in\"", Duration::from_secs(10))
        .await;
}

/// The session cookie the browser holds, if any.
async fn session_cookie(br: &Browser) -> Option<String> {
    br.client
        .get_all_cookies()
        .await
        .expect("cookies")
        .into_iter()
        .find(|c| c.name() == SESSION)
        .map(|c| c.value().to_owned())
}

/// The page is no wider than the screen (tables scroll inside their box).
async fn fits(br: &Browser, width: u64) {
    let w = br
        .client
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .expect("scrollWidth");
    let w = w.as_u64().unwrap_or(u64::MAX);
    assert!(
        w <= width,
        "{} is {w} px wide on a {width} px screen",
        br.url().await
    );
}

/// The audit entries of `action` by `actor`.
async fn audited(app: &TestApp, action: &str, actor: &str) -> Vec<Value> {
    let all = app.admin.list_audit(Some(1000)).await.expect("audit");
    all.as_array()
        .expect("a list")
        .iter()
        .filter(|e| e["action"] == action && e["actor"] == actor)
        .cloned()
        .collect()
}

async fn console_in_a_browser(b: Backend) {
    let _one = ONE_BROWSER.lock().await;
    let started = Instant::now();
    let app = spawn_app(b.clone()).await;
    let engine = match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    account_token(&app, "root", Role::Admin, &[]).await;
    account_token(&app, "ops", Role::Operator, &[]).await;
    let w = world(&app).await;
    let set_up = started.elapsed();
    let Some(br) = Browser::start_on(&format!("console-{engine}"), DESKTOP, "en,zh-CN").await
    else {
        return;
    };
    let base = app.base_url.clone();

    // Session fixation: a cookie planted before sign-in is replaced.
    open(&br, &base, "/console/login", "id=\"sign-in\"").await;
    // (As script on the page would: chromedriver's add-cookie refuses
    // a cookie on an IP-address host.)
    br.client
        .execute(
            &format!("document.cookie = '{SESSION}={PLANTED}; path=/console';"),
            vec![],
        )
        .await
        .expect("plant a cookie");
    assert_eq!(session_cookie(&br).await.as_deref(), Some(PLANTED));
    br.screenshot("login").await;
    fill(&br, "#username", "ops").await;
    fill(&br, "#password", PASSWORD).await;
    click(&br, "#sign-in").await;
    br.wait_text("id=\"my-account\"", Duration::from_secs(10))
        .await;
    let session = session_cookie(&br).await.expect("a session cookie");
    assert!(
        br.url().await.ends_with("/console/dashboard"),
        "the console opens on the dashboard: {}",
        br.url().await
    );
    assert_ne!(session, PLANTED, "the planted cookie was promoted");
    let web = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let with = |cookie: &str| format!("{SESSION}={cookie}");
    let planted_get = web
        .get(format!("{base}/console/orders"))
        .header(COOKIE, with(PLANTED))
        .send()
        .await
        .expect("get");
    assert_eq!(
        planted_get.status(),
        303,
        "the planted cookie opens nothing"
    );
    assert!(br.source().await.contains(">ops</a>"));

    open(&br, &base, "/console/dashboard", "<svg").await;
    br.screenshot("dashboard").await;

    // CSRF: the session's cookie without the form's token changes nothing.
    for csrf in [None, Some("forged")] {
        let mut form = vec![];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        let forged = web
            .post(format!("{base}/console/bindings/{}/approve", w.binding_id))
            .header(COOKIE, with(&session))
            .header("origin", "http://evil.example")
            .form(&form)
            .send()
            .await
            .expect("forged post");
        assert_eq!(forged.status(), 403, "csrf {csrf:?}");
    }
    let pending = admin_get(&app, &format!("/api/admin/bindings?appId={}", w.app_id)).await;
    let binding = |list: &Value| {
        list.as_array()
            .expect("bindings")
            .iter()
            .find(|x| x["bindingId"] == w.binding_id.as_str())
            .expect("the binding")
            .clone()
    };
    assert_eq!(
        binding(&pending)["state"],
        "PENDING",
        "the forged POST changed it"
    );

    // The binding, approved from the queue.
    open(&br, &base, "/console/bindings?state=PENDING", &w.binding_id).await;
    br.screenshot("bindings").await;
    click(
        &br,
        &format!(
            "form[action=\"/console/bindings/{}/approve\"] button",
            w.binding_id
        ),
    )
    .await;
    br.wait_text("Approved.", Duration::from_secs(10)).await;
    let after = admin_get(&app, &format!("/api/admin/bindings?appId={}", w.app_id)).await;
    let decided = binding(&after);
    assert_eq!(decided["state"], "APPROVED", "{decided}");
    assert_eq!(decided["decidedBy"], "ops", "{decided}");

    // The refund, approved from the review queue.
    open(
        &br,
        &base,
        "/console/refunds?state=PENDING_REVIEW",
        &w.refund_id,
    )
    .await;
    br.screenshot("refunds").await;
    click(
        &br,
        &format!(
            "form[action=\"/console/refunds/{}/approve\"] button",
            w.refund_id
        ),
    )
    .await;
    br.wait_text("Approved.", Duration::from_secs(10)).await;
    let r = admin_get(&app, &format!("/api/admin/refunds/{}", w.refund_id)).await;
    assert_ne!(r["state"], "PENDING_REVIEW", "{r}");
    let by_ops = audited(&app, "refund.approve", "ops").await;
    assert_eq!(by_ops.len(), 1, "{by_ops:?}");
    assert_eq!(by_ops[0]["role"], "operator");

    // The order, found by its outTradeNo, and its detail.
    open(&br, &base, "/console/orders", "name=\"outTradeNo\"").await;
    fill(&br, "input[name=\"outTradeNo\"]", &w.out_trade_no).await;
    click(&br, "form.filters button[type=\"submit\"]").await;
    // (The unfiltered list shows the order too: wait for the search's URL.)
    let start = Instant::now();
    while !br.url().await.contains(&w.out_trade_no) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the search did not load: {}",
            br.url().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    br.wait_text(&w.order_id, Duration::from_secs(10)).await;
    br.screenshot("orders").await;
    click(&br, &format!("a[href=\"/console/orders/{}\"]", w.order_id)).await;
    br.wait_text(&w.notify_id, Duration::from_secs(10)).await;
    let detail = br.source().await;
    assert!(detail.contains(&w.out_trade_no) && detail.contains(&w.refund_id));
    // The timeline (its events are written in the background: the
    // channel's notification may come a moment after the payment).
    let mut detail = detail;
    let start = Instant::now();
    while !detail.contains("CHANNEL_NOTIFY") && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        br.client.refresh().await.expect("reload");
        detail = br.source().await;
    }
    let timeline = &detail[detail.find("id=\"timeline\"").expect("a timeline")..];
    for what in [
        "CREATED",
        "CHANNEL_CALL",
        "CHANNEL_NOTIFY",
        " ms<",
        "MERCHANT_",
    ] {
        assert!(
            timeline.contains(what),
            "{what} in the timeline: {timeline}"
        );
    }
    br.client
        .execute(
            "document.getElementById('timeline').scrollIntoView();",
            vec![],
        )
        .await
        .expect("scroll to the timeline");
    br.screenshot("order").await;

    // The notification, resent from the order's page.
    click(
        &br,
        &format!(
            "form[action=\"/console/notifications/{}/resend\"] button",
            w.notify_id
        ),
    )
    .await;
    br.wait_text("Resent", Duration::from_secs(10)).await;
    assert!(
        br.url()
            .await
            .ends_with(&format!("/console/orders/{}", w.order_id))
    );
    let resent = audited(&app, "notification.resend", "ops").await;
    assert_eq!(resent.len(), 1, "{resent:?}");
    assert_eq!(resent[0]["role"], "operator");
    assert_eq!(resent[0]["target"], w.notify_id.as_str(), "{resent:?}");

    open(&br, &base, "/console/notifications", &w.notify_id).await;
    br.screenshot("notifications").await;
    open(&br, &base, "/console/account", ">ops</a>").await;
    br.screenshot("account").await;

    // Sign-out ends the session the browser held.
    sign_out(&br).await;
    let stale = web
        .get(format!("{base}/console/orders"))
        .header(COOKIE, with(&session))
        .send()
        .await
        .expect("get");
    assert_eq!(stale.status(), 303, "the session ended at sign-out");
    assert_eq!(audited(&app, "account.logout", "ops").await.len(), 1);

    // An administrator: the accounts and the audit log.
    sign_in(&br, &base, "root").await;
    open(&br, &base, "/console/accounts", "ops").await;
    br.screenshot("accounts").await;
    open(&br, &base, "/console/audit", "notification.resend").await;
    br.screenshot("audit").await;
    open(&br, &base, "/console/apps", &w.app_id).await;
    br.screenshot("apps").await;
    open(
        &br,
        &base,
        &format!("/console/apps/{}", w.app_id),
        &w.binding_id,
    )
    .await;
    br.screenshot("app").await;
    open(&br, &base, "/console/channels", "/test\"").await;
    // The configs (below their creation form).
    br.client
        .execute(
            "document.querySelector('main table').scrollIntoView();",
            vec![],
        )
        .await
        .expect("scroll to the configs");
    br.screenshot("channels").await;
    open(&br, &base, "/console/recon", "statement.csv").await;
    br.screenshot("recon").await;
    sign_out(&br).await;
    br.assert_stayed_on(&base).await;
    br.close().await;
    let desktop = started.elapsed();

    // A phone: the login page and the orders list fit 375 px.
    let Some(phone) = Browser::start_on(&format!("console-{engine}"), PHONE, "en,zh-CN").await
    else {
        return;
    };
    open(&phone, &base, "/console/login", "id=\"sign-in\"").await;
    fits(&phone, 375).await;
    phone.screenshot("login-phone").await;
    sign_in(&phone, &base, "ops").await;
    open(&phone, &base, "/console/orders", &w.out_trade_no).await;
    fits(&phone, 375).await;
    // The list below the (one-column) search form.
    phone
        .client
        .execute(
            "document.querySelector('main table').scrollIntoView();",
            vec![],
        )
        .await
        .expect("scroll to the list");
    phone.screenshot("orders-phone").await;
    phone.assert_stayed_on(&base).await;
    phone.close().await;
    eprintln!(
        "console in a browser ({engine}): set-up {set_up:?}, desktop {:?}, phone {:?}",
        desktop - set_up,
        started.elapsed() - desktop
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}
