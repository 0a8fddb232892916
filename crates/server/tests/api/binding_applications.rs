//! Applications for a channel made by people (`POST /api/admin/bindings`,
//! the console's form on the bindings page): a merchant's staff apply for
//! their own apps only, audited as themselves; the operators decide as
//! for an app's own application; the app's page lists its bindings.

use axum::http::StatusCode;
use cashdesk_core::Role;
use cashdesk_sdk::{Method, SignType};
use serde_json::json;

use crate::backend_tests;
use crate::bindings::new_channel;
use crate::console_pages::{CSRF, call as page_call, get, principal};
use crate::helpers::*;
use crate::rbac::{account_token, call};

backend_tests!(staff_apply_for_their_apps_and_operators_decide);

async fn staff_apply_for_their_apps_and_operators_decide(b: Backend) {
    let app = spawn_app(b).await;
    let channel = new_channel(&app, "native").await;
    let shop = app.merchant(SignType::HmacSha256).await;
    let other = app.merchant(SignType::HmacSha256).await;
    let staff = account_token(&app, "shop-staff", Role::Merchant, &[&shop.app_id]).await;
    let ops = account_token(&app, "ops-1", Role::Operator, &[]).await;
    let apply = |token: &str, body: serde_json::Value| {
        let (app, token) = (&app, token.to_owned());
        async move { call(app, &token, Method::POST, "/api/admin/bindings", &body).await }
    };

    // Bad input and another app: refused, nothing applied.
    for (body, status, code) in [
        (json!({ "channelId": channel }), 400, 4000),
        (json!({ "appId": shop.app_id }), 400, 4000),
        (
            json!({ "appId": shop.app_id, "channelId": "nope" }),
            400,
            4000,
        ),
        (
            json!({ "appId": other.app_id, "channelId": channel }),
            404,
            4040,
        ),
        (
            json!({ "appId": "app-unknown", "channelId": channel }),
            404,
            4040,
        ),
        (
            json!({ "appId": shop.app_id, "channelId": channel, "storeId": "nostore" }),
            400,
            4003,
        ),
    ] {
        let (s, answer) = apply(&staff, body.clone()).await;
        assert_eq!(
            (s, answer["code"].as_i64()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    // The operator decides but does not apply.
    let (s, _) = apply(&ops, json!({ "appId": shop.app_id, "channelId": channel })).await;
    assert_eq!(s, 403);
    let (s, listed) = call(&app, &staff, Method::GET, "/api/admin/bindings", &json!({})).await;
    assert_eq!(
        (s, listed["data"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{listed}"
    );

    // The staff's application: pending, audited as the account.
    let (s, applied) = apply(
        &staff,
        json!({ "appId": shop.app_id, "channelId": channel }),
    )
    .await;
    assert_eq!(s, 200, "{applied}");
    assert_eq!(applied["data"]["state"], "PENDING");
    let binding = applied["data"]["bindingId"]
        .as_str()
        .expect("bindingId")
        .to_owned();
    let audit = app.admin.list_audit(Some(100)).await.expect("audit");
    let entry = audit
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["action"] == "binding.apply" && e["target"] == binding.as_str())
        .expect("audited")
        .clone();
    assert_eq!(
        (entry["actor"].as_str(), entry["role"].as_str()),
        (Some("shop-staff"), Some("merchant"))
    );
    // The operator approves; the app may now pay with it.
    let (s, _) = call(
        &app,
        &ops,
        Method::POST,
        &format!("/api/admin/bindings/{binding}/approve"),
        &json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, listed) = call(&app, &staff, Method::GET, "/api/admin/bindings", &json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(listed["data"][0]["state"], "APPROVED", "{listed}");

    // The console: the form offers the staff's apps and the open channels.
    let web_staff = principal(Role::Merchant, &[&other.app_id]);
    let page = get(&app, &web_staff, "/console/bindings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("action=\"/console/bindings\""),
        "the form"
    );
    assert!(
        page.body
            .contains(&format!("<option>{}</option>", other.app_id))
    );
    assert!(
        !page
            .body
            .contains(&format!("<option>{}</option>", shop.app_id))
    );
    assert!(page.body.contains(&format!("value=\"{channel}\"")));
    let form = format!(
        "csrf={CSRF}&appId={}&channelId={channel}&storeId=",
        shop.app_id
    );
    let r = page_call(&app, &web_staff, "POST", "/console/bindings", Some(&form)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .expect("c")
            .starts_with("cashdesk_flash=e."),
        "another app"
    );
    let form = format!(
        "csrf={CSRF}&appId={}&channelId={channel}&storeId=",
        other.app_id
    );
    let r = page_call(&app, &web_staff, "POST", "/console/bindings", Some(&form)).await;
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .expect("c")
            .starts_with("cashdesk_flash=o.")
    );
    // The app's page lists its applications; an operator has no form.
    let app_page = get(&app, &web_staff, &format!("/console/apps/{}", other.app_id)).await;
    assert!(app_page.body.contains("PENDING"), "{}", app_page.body);
    let ops_page = get(&app, &principal(Role::Operator, &[]), "/console/bindings").await;
    assert!(
        !ops_page
            .body
            .contains("method=\"post\" action=\"/console/bindings\"")
    );
    let pending = app
        .admin
        .request(
            Method::GET,
            &format!("/api/admin/bindings?appId={}&state=PENDING", other.app_id),
            None,
        )
        .await
        .expect("bindings");
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{pending}");
}
