//! The console's apps, channels and reconciliation pages (the helpers are
//! `console_pages`'): each renders for an admin with the strict headers;
//! a new app key is shown once, on the answer to its form; a merchant
//! never sees another app; finance may not see channels; a credential
//! value never comes back; hostile names come back escaped.

use axum::http::StatusCode;
use cashdesk_core::Role;
use cashdesk_sdk::SignType;

use crate::backend_tests;
use crate::console_pages::{Answer, CSRF, assert_strict, call, get, principal};
use crate::helpers::{Backend, TestApp, spawn_app};

backend_tests!(
    apps_pages_show_a_new_key_once_and_escape_names,
    merchants_see_only_their_apps_and_statement,
    channel_pages_never_show_a_credential,
    recon_pages_render_and_run,
);

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("csrf", CSRF);
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn post(
    app: &TestApp,
    p: &cashdesk_server::access::Principal,
    uri: &str,
    pairs: &[(&str, &str)],
) -> Answer {
    call(app, p, "POST", uri, Some(&form(pairs))).await
}

/// The flash a redirect carries: `Some(true)` ok, `Some(false)` an error.
fn flash_ok(a: &Answer) -> Option<bool> {
    a.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("cashdesk_flash="))
        .map(|v| v.starts_with("o."))
}

/// The key shown on an answer page.
fn shown_key(body: &str) -> String {
    let start = body.find("class=\"secret\">").expect("a key shown") + "class=\"secret\">".len();
    let end = start + body[start..].find("</code>").expect("end of key");
    body[start..end].to_owned()
}

fn app_id_of(body: &str) -> String {
    let start = body.find("/console/apps/app").expect("app link") + "/console/apps/".len();
    let end = start + body[start..].find('"').expect("end of link");
    body[start..end].to_owned()
}

async fn apps_pages_show_a_new_key_once_and_escape_names(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = principal(Role::Admin, &[]);
    for uri in [
        "/console/apps".to_owned(),
        format!("/console/apps/{}", app.demo_app_id),
    ] {
        let r = get(&app, &admin, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        assert_strict(&r);
    }

    let hostile = "<script>alert('app')</script>";
    let created = post(
        &app,
        &admin,
        "/console/apps",
        &[
            ("appName", hostile),
            ("signType", "HMAC-SHA256"),
            ("refundReview", "true"),
        ],
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_strict(&created);
    let key = shown_key(&created.body);
    assert!(key.len() >= 32, "{key}");
    let new_id = app_id_of(&created.body);

    let list = get(&app, &admin, "/console/apps").await;
    assert!(list.body.contains(&new_id));
    assert!(
        list.body
            .contains("&#60;script&#62;alert(&#39;app&#39;)&#60;/script&#62;"),
        "{}",
        list.body
    );
    assert!(!list.body.contains("<script"));
    let detail = get(&app, &admin, &format!("/console/apps/{new_id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(!detail.body.contains(&key), "the key is shown once");
    assert!(!detail.body.contains("<script"));

    // Settings, then disable: POST-redirect-GET with an ok flash.
    let s = post(
        &app,
        &admin,
        &format!("/console/apps/{new_id}/settings"),
        &[("notifyUrl", "https://shop.example.com/n")],
    )
    .await;
    assert_eq!(s.status, StatusCode::SEE_OTHER);
    assert_eq!(flash_ok(&s), Some(true));
    let d = post(
        &app,
        &admin,
        &format!("/console/apps/{new_id}/disable"),
        &[],
    )
    .await;
    assert_eq!(flash_ok(&d), Some(true));
    let detail = get(&app, &admin, &format!("/console/apps/{new_id}")).await;
    assert!(
        detail.body.contains("https://shop.example.com/n") && detail.body.contains(">disabled<"),
        "{}",
        detail.body
    );

    // Rotation: a new key, shown once too.
    let rotated = post(
        &app,
        &admin,
        &format!("/console/apps/{new_id}/rotate-key"),
        &[("overlapSeconds", "60")],
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let key2 = shown_key(&rotated.body);
    assert_ne!(key, key2);
    let detail = get(&app, &admin, &format!("/console/apps/{new_id}")).await;
    assert!(!detail.body.contains(&key2));
    // A refused create goes back with the refusal.
    let bad = post(
        &app,
        &admin,
        "/console/apps",
        &[("appName", ""), ("signType", "HMAC-SHA256")],
    )
    .await;
    assert_eq!(bad.status, StatusCode::SEE_OTHER);
    assert_eq!(flash_ok(&bad), Some(false));
}

async fn merchants_see_only_their_apps_and_statement(backend: Backend) {
    let app = spawn_app(backend).await;
    let a_id = app.demo_app_id.clone();
    let b = app.merchant(SignType::HmacSha256).await;
    let merchant = principal(Role::Merchant, &[&a_id]);

    let list = get(&app, &merchant, "/console/apps").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains(&a_id) && !list.body.contains(&b.app_id));
    assert!(!list.body.contains("name=\"appName\""), "no create form");
    let foreign = get(&app, &merchant, &format!("/console/apps/{}", b.app_id)).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_strict(&foreign);
    let r = post(
        &app,
        &merchant,
        &format!("/console/apps/{}/rotate-key", b.app_id),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post(
        &app,
        &merchant,
        &format!("/console/apps/{}/disable", b.app_id),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(&app, &merchant, "/console/apps", &[("appName", "x")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Its own app's key: rotated, shown on the answer.
    let own = post(
        &app,
        &merchant,
        &format!("/console/apps/{a_id}/rotate-key"),
        &[],
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert!(!shown_key(&own.body).is_empty());

    // Reconciliation: the statement only, its app only.
    let recon = get(&app, &merchant, "/console/recon").await;
    assert_eq!(recon.status, StatusCode::OK, "{}", recon.body);
    assert!(!recon.body.contains("/console/recon/run"));
    let other = get(
        &app,
        &merchant,
        &format!("/console/recon?appId={}", b.app_id),
    )
    .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let csv = get(
        &app,
        &merchant,
        &format!("/console/recon/statement.csv?appId={}", b.app_id),
    )
    .await;
    assert_eq!(csv.status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&app, &merchant, "/console/channels").await.status,
        StatusCode::FORBIDDEN
    );
    // Staff of two apps: the statement page opens on the first and offers
    // both; each app's CSV is theirs, another's is missing.
    let c = app.merchant(SignType::HmacSha256).await;
    let two = principal(Role::Merchant, &[&a_id, &c.app_id]);
    let recon = get(&app, &two, "/console/recon").await;
    assert_eq!(recon.status, StatusCode::OK, "{}", recon.body);
    assert!(
        recon
            .body
            .contains(&format!("<option>{}</option>", c.app_id)),
        "{}",
        recon.body
    );
    for (asked, status) in [
        (c.app_id.as_str(), StatusCode::OK),
        ("", StatusCode::OK),
        (b.app_id.as_str(), StatusCode::NOT_FOUND),
    ] {
        let csv = get(
            &app,
            &two,
            &format!("/console/recon/statement.csv?appId={asked}"),
        )
        .await;
        assert_eq!(csv.status, status, "{asked}: {}", csv.body);
    }
}

async fn channel_pages_never_show_a_credential(backend: Backend) {
    let app = spawn_app(backend).await;
    let setup = app.wechat_setup("v2").await;
    let admin = principal(Role::Admin, &[]);
    let page = get(&app, &admin, "/console/channels").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_strict(&page);
    assert!(page.body.contains(&setup.config_id));

    let creds = setup.creds().to_string();
    let created = post(
        &app,
        &admin,
        "/console/channels/configs",
        &[
            ("channelType", "wx-pay"),
            ("name", "<b>second</b>"),
            ("mchId", setup.mch_id()),
            ("apiVersion", "v2"),
            ("credentials", &creds),
        ],
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    assert_eq!(flash_ok(&created), Some(true));
    let bad = post(
        &app,
        &admin,
        "/console/channels/configs",
        &[
            ("channelType", "wx-pay"),
            ("name", "x"),
            ("mchId", "1"),
            ("credentials", "not json"),
        ],
    )
    .await;
    assert_eq!(flash_ok(&bad), Some(false));
    let refused = post(
        &app,
        &admin,
        &format!("/console/channels/configs/{}/credentials", setup.config_id),
        &[("credentials", "{\"apiKey\": \"with space\"}")],
    )
    .await;
    assert_eq!(flash_ok(&refused), Some(false));
    let ch = post(
        &app,
        &admin,
        "/console/channels",
        &[
            ("configId", &setup.config_id),
            ("sceneCode", "native"),
            ("channelName", "<i>native two</i>"),
            ("sort", "5"),
        ],
    )
    .await;
    assert_eq!(flash_ok(&ch), Some(true));

    let page = get(&app, &admin, "/console/channels").await;
    assert!(
        page.body.contains("&#60;b&#62;second&#60;/b&#62;")
            && page.body.contains("&#60;i&#62;native two")
    );
    assert!(!page.body.contains("<b>") && !page.body.contains("<i>"));
    for (k, v) in setup.creds().as_object().expect("creds") {
        assert!(page.body.contains(k.as_str()), "the key {k} is named");
        if let Some(v) = v.as_str().filter(|v| v.len() > 4) {
            assert!(!page.body.contains(v), "the value of {k} never shows");
        }
    }
    let finance = principal(Role::Finance, &[]);
    assert_eq!(
        get(&app, &finance, "/console/channels").await.status,
        StatusCode::FORBIDDEN
    );
    let r = post(
        &app,
        &finance,
        "/console/channels",
        &[("configId", &setup.config_id)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn recon_pages_render_and_run(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = principal(Role::Admin, &[]);
    for uri in [
        "/console/recon",
        "/console/recon?date=2026-01-02&kind=MISSING_LOCAL&status=OPEN",
        "/console/recon?date=not-a-day&configId=%3Cscript%3E",
    ] {
        let r = get(&app, &admin, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        assert_strict(&r);
        assert!(!r.body.contains("<script"), "{uri}");
    }
    let csv = get(&app, &admin, "/console/recon/statement.csv?date=2026-01-02").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with("date,configId,"));
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let bad = post(&app, &admin, "/console/recon/run", &[("date", "yesterday")]).await;
    assert_eq!(flash_ok(&bad), Some(false));
    let missing = post(
        &app,
        &admin,
        "/console/recon/findings/F01ARZ3NDEKTSV4RRFFQ69G5FAV/resolve",
        &[("note", "ok")],
    )
    .await;
    assert_eq!(flash_ok(&missing), Some(false));
    let finance = principal(Role::Finance, &[]);
    assert_eq!(
        get(&app, &finance, "/console/recon").await.status,
        StatusCode::OK
    );
    let auditor = principal(Role::Auditor, &[]);
    let r = post(
        &app,
        &auditor,
        "/console/recon/run",
        &[("date", "2026-01-02")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
