//! Roles on the operator API: every role × every endpoint is allowed or
//! refused (403 4035) exactly as the matrix in `cashdesk_core::access`
//! says; a merchant account never sees another app's data; accounts and
//! their API tokens (created by an administrator, shown once, revocable).

use cashdesk_core::{Permission, Role};
use cashdesk_sdk::{CreateRefundRequest, HeaderMap, Method, PaymentRequest, SignType};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(
    every_role_gets_exactly_its_permissions,
    a_merchant_never_sees_another_apps_data,
    tokens_are_shown_once_and_revocable,
    changes_are_audited_with_before_and_after,
    secrets_and_resends_are_audited_before_and_after_without_values,
);

pub const PASSWORD: &str = "correct horse battery";

/// Creates an account of `role` (scoped to `apps`) and an API token of it.
pub async fn account_token(app: &TestApp, username: &str, role: Role, apps: &[&str]) -> String {
    let account = app
        .admin
        .request(
            Method::POST,
            "/api/admin/accounts",
            Some(&json!({
                "username": username,
                "role": role.as_str(),
                "apps": apps,
                "password": PASSWORD,
            })),
        )
        .await
        .expect("account created");
    let id = account["accountId"].as_str().expect("accountId").to_owned();
    let token = app
        .admin
        .request(
            Method::POST,
            &format!("/api/admin/accounts/{id}/tokens"),
            Some(&json!({ "name": "test" })),
        )
        .await
        .expect("token created");
    token["token"].as_str().expect("token").to_owned()
}

/// A request with a bearer token; `(status, body)`.
pub async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    h.insert("content-type", "application/json".parse().expect("header"));
    let bytes = if method == Method::GET {
        Vec::new()
    } else {
        serde_json::to_vec(body).expect("json")
    };
    let resp = app.raw(method, path, &bytes, h).await;
    let json = resp.json().unwrap_or(Value::Null);
    (resp.status.as_u16(), json)
}

/// Everything one test set-up holds: a shop with a paid and refunded
/// order (so notifications, refunds and bindings exist).
struct World {
    shop_app: String,
    order_id: String,
    refund_id: String,
    notify_id: String,
    config_id: String,
    channel_id: String,
    binding_id: String,
}

async fn world(app: &TestApp) -> World {
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    // A notify URL nobody answers: the notification exists, and fails.
    app.admin
        .request(
            Method::POST,
            &format!("/api/admin/apps/{}/settings", setup.shop.app_id),
            Some(&json!({ "notifyUrl": "http://127.0.0.1:9/notify" })),
        )
        .await
        .expect("notify URL");
    let (no, order_id) = app.new_order(client, 300).await;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("mini")).with_openid("oBuyer0001"))
        .await
        .expect("pay");
    app.sandbox_pay(&order_id).await;
    app.wait_state(client, &no, "SUCCESS").await;
    let refund = client
        .create_refund(&CreateRefundRequest::new(&no, orn(), 100))
        .await
        .expect("refund");
    let first = |v: Value, key: &str| v[0][key].as_str().expect(key).to_owned();
    let notes = app
        .admin
        .request(
            Method::GET,
            &format!("/api/admin/notifications?orderId={order_id}"),
            None,
        )
        .await
        .expect("notifications");
    let bindings = app
        .admin
        .request(
            Method::GET,
            &format!("/api/admin/bindings?appId={}", setup.shop.app_id),
            None,
        )
        .await
        .expect("bindings");
    World {
        shop_app: setup.shop.app_id.clone(),
        order_id,
        refund_id: refund.refund_id,
        notify_id: first(notes, "notifyId"),
        config_id: setup.config_id.clone(),
        channel_id: setup.channel("mini").to_owned(),
        binding_id: first(bindings, "bindingId"),
    }
}

/// Every operator API route, with the permission it needs. A route added
/// to the server and not here is caught by the count check below.
fn endpoints(w: &World) -> Vec<(Method, String, Permission)> {
    use Method as M;
    use Permission as P;
    let a = &w.shop_app;
    let account = "U01ARZ3NDEKTSV4RRFFQ69G5FA";
    vec![
        (M::GET, "/api/admin/apps".into(), P::AppsRead),
        (M::POST, "/api/admin/apps".into(), P::AppsWrite),
        (M::GET, format!("/api/admin/apps/{a}"), P::AppsRead),
        (
            M::POST,
            format!("/api/admin/apps/{a}/settings"),
            P::AppsWrite,
        ),
        (
            M::POST,
            format!("/api/admin/apps/{a}/rotate-key"),
            P::AppsRotateKey,
        ),
        (M::GET, "/api/admin/channel-configs".into(), P::ChannelsRead),
        (
            M::POST,
            "/api/admin/channel-configs".into(),
            P::ChannelsWrite,
        ),
        (
            M::GET,
            format!("/api/admin/channel-configs/{}", w.config_id),
            P::ChannelsRead,
        ),
        (
            M::POST,
            format!("/api/admin/channel-configs/{}/credentials", w.config_id),
            P::ChannelSecretsWrite,
        ),
        (
            M::POST,
            format!("/api/admin/channel-configs/{}/test", w.config_id),
            P::ChannelsWrite,
        ),
        (M::GET, "/api/admin/channels".into(), P::ChannelsRead),
        (M::POST, "/api/admin/channels".into(), P::ChannelsWrite),
        (
            M::GET,
            format!("/api/admin/channels/{}", w.channel_id),
            P::ChannelsRead,
        ),
        (
            M::GET,
            format!("/api/admin/stores?appId={a}"),
            P::StoresRead,
        ),
        (M::POST, "/api/admin/stores".into(), P::StoresWrite),
        (M::GET, format!("/api/admin/stores/{a}/s1"), P::StoresRead),
        (M::PUT, format!("/api/admin/stores/{a}/s1"), P::StoresWrite),
        (
            M::GET,
            format!("/api/admin/stores/{a}/s1/identities"),
            P::StoresRead,
        ),
        (
            M::PUT,
            format!("/api/admin/stores/{a}/s1/identities/{}", w.config_id),
            P::ChannelsWrite,
        ),
        (
            M::DELETE,
            format!("/api/admin/stores/{a}/s1/identities/{}", w.config_id),
            P::ChannelsWrite,
        ),
        (
            M::GET,
            format!("/api/admin/bindings?appId={a}"),
            P::BindingsRead,
        ),
        (M::POST, "/api/admin/bindings".into(), P::BindingsApply),
        (
            M::POST,
            format!("/api/admin/bindings/{}/reject", w.binding_id),
            P::BindingsDecide,
        ),
        (
            M::GET,
            format!("/api/admin/orders?appId={a}"),
            P::OrdersRead,
        ),
        (
            M::GET,
            format!("/api/admin/orders/{}", w.order_id),
            P::OrdersRead,
        ),
        (
            M::POST,
            format!("/api/admin/orders/{}/sync", w.order_id),
            P::OrdersManage,
        ),
        (
            M::POST,
            format!("/api/admin/orders/{}/close", w.order_id),
            P::OrdersManage,
        ),
        (
            M::POST,
            format!("/api/admin/orders/{}/refunds", w.order_id),
            P::RefundsCreate,
        ),
        (
            M::GET,
            format!("/api/admin/refunds?appId={a}"),
            P::RefundsRead,
        ),
        (
            M::GET,
            format!("/api/admin/refund-applications?appId={a}"),
            P::RefundsRead,
        ),
        (
            M::GET,
            "/api/admin/refund-applications/Q01ARZ3NDEKTSV4RRFFQ69G5FA".into(),
            P::RefundsRead,
        ),
        (
            M::POST,
            "/api/admin/refund-applications/Q01ARZ3NDEKTSV4RRFFQ69G5FA/approve".into(),
            P::RefundsRead,
        ),
        (
            M::GET,
            format!("/api/admin/refunds/{}", w.refund_id),
            P::RefundsRead,
        ),
        (
            M::POST,
            format!("/api/admin/refunds/{}/approve", w.refund_id),
            P::RefundsReview,
        ),
        (
            M::POST,
            format!("/api/admin/refunds/{}/reject", w.refund_id),
            P::RefundsReview,
        ),
        (
            M::GET,
            format!("/api/admin/notifications?appId={a}"),
            P::NotificationsRead,
        ),
        (
            M::GET,
            format!("/api/admin/notifications/{}", w.notify_id),
            P::NotificationsRead,
        ),
        (
            M::POST,
            format!("/api/admin/notifications/{}/resend", w.notify_id),
            P::NotificationsResend,
        ),
        (M::GET, "/api/admin/reconciliations".into(), P::ReconRead),
        (
            M::POST,
            "/api/admin/reconciliations/run".into(),
            P::ReconRun,
        ),
        (
            M::GET,
            "/api/admin/reconciliations/findings".into(),
            P::ReconRead,
        ),
        (
            M::GET,
            "/api/admin/reconciliations/findings/F01ARZ3NDEKTSV4RRFFQ69G5FA".into(),
            P::ReconRead,
        ),
        (
            M::POST,
            "/api/admin/reconciliations/findings/F01ARZ3NDEKTSV4RRFFQ69G5FA/resolve".into(),
            P::ReconResolve,
        ),
        (
            M::GET,
            format!("/api/admin/reconciliations/statement?appId={a}"),
            P::StatementsRead,
        ),
        (M::GET, "/api/admin/audit".into(), P::AuditRead),
        (M::GET, "/api/admin/accounts".into(), P::AccountsManage),
        (M::POST, "/api/admin/accounts".into(), P::AccountsManage),
        (
            M::GET,
            format!("/api/admin/accounts/{account}"),
            P::AccountsManage,
        ),
        (
            M::POST,
            format!("/api/admin/accounts/{account}/settings"),
            P::AccountsManage,
        ),
        (
            M::POST,
            format!("/api/admin/accounts/{account}/password"),
            P::AccountsManage,
        ),
        (
            M::POST,
            format!("/api/admin/accounts/{account}/totp/reset"),
            P::AccountsManage,
        ),
        (
            M::GET,
            format!("/api/admin/accounts/{account}/tokens"),
            P::AccountsManage,
        ),
        (
            M::POST,
            format!("/api/admin/accounts/{account}/tokens"),
            P::AccountsManage,
        ),
        (
            M::POST,
            "/api/admin/tokens/K01ARZ3NDEKTSV4RRFFQ69G5FA/revoke".into(),
            P::AccountsManage,
        ),
        // Last: they change the app every other call uses.
        (
            M::POST,
            format!("/api/admin/apps/{a}/disable"),
            P::AppsWrite,
        ),
        (M::POST, format!("/api/admin/apps/{a}/enable"), P::AppsWrite),
    ]
}

async fn every_role_gets_exactly_its_permissions(b: Backend) {
    let app = spawn_app(b).await;
    let w = world(&app).await;
    let table = endpoints(&w);
    // Each permission is some route's, so none is untested.
    for &p in Permission::ALL {
        assert!(table.iter().any(|(_, _, q)| *q == p), "no route needs {p}");
    }
    for &role in Role::ALL {
        let apps: &[&str] = if role.is_scoped() {
            &[w.shop_app.as_str()]
        } else {
            &[]
        };
        let token = account_token(&app, &format!("user-{role}"), role, apps).await;
        let (status, me) = call(&app, &token, Method::GET, "/api/admin/me", &json!({})).await;
        assert_eq!(
            (status, me["data"]["role"].as_str()),
            (200, Some(role.as_str()))
        );
        for (method, path, need) in &table {
            let (status, body) = call(&app, &token, method.clone(), path, &json!({})).await;
            if role.allows(*need) {
                assert!(
                    status != 403 && status != 401,
                    "{role} may {need}: {method} {path} → {status} {body}"
                );
            } else {
                assert_eq!(
                    (status, body["code"].as_i64()),
                    (403, Some(4035)),
                    "{role} may not {need}: {method} {path} → {body}"
                );
            }
        }
    }
    // Every refused call changed nothing, and every allowed write is in
    // the audit log with the account's role and address.
    let audit = app.admin.list_audit(Some(1000)).await.expect("audit");
    let by_operator = audit
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["actor"] == "user-operator")
        .expect("an operator's write is audited");
    assert_eq!(by_operator["role"], "operator");
    assert!(by_operator["ip"].as_str().is_some_and(|ip| !ip.is_empty()));
}

async fn a_merchant_never_sees_another_apps_data(b: Backend) {
    let app = spawn_app(b).await;
    let w = world(&app).await;
    let own = app.merchant(SignType::HmacSha256).await;
    app.add_store(&own.app_id, "s1").await;
    app.add_store(&w.shop_app, "s1").await;
    let (own_no, own_order) = app.new_order(&own.client, 100).await;
    let token = account_token(&app, "shop-staff", Role::Merchant, &[own.app_id.as_str()]).await;
    let get = |path: String| {
        let token = token.clone();
        let app = &app;
        async move { call(app, &token, Method::GET, &path, &json!({})).await }
    };
    // Another app's objects answer exactly as unknown ones do.
    let foreign = w.shop_app.as_str();
    for path in [
        format!("/api/admin/apps/{foreign}"),
        format!("/api/admin/orders/{}", w.order_id),
        format!("/api/admin/refunds/{}", w.refund_id),
        format!("/api/admin/notifications/{}", w.notify_id),
        format!("/api/admin/stores/{foreign}/s1"),
        format!("/api/admin/stores/{foreign}/s1/identities"),
        format!("/api/admin/orders?appId={foreign}"),
        format!("/api/admin/refunds?appId={foreign}"),
        format!("/api/admin/notifications?appId={foreign}"),
        format!("/api/admin/stores?appId={foreign}"),
        format!("/api/admin/reconciliations/statement?appId={foreign}"),
    ] {
        let (status, body) = get(path.clone()).await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (404, Some(4040)),
            "{path}: {body}"
        );
    }
    for (method, path) in [
        (
            Method::POST,
            format!("/api/admin/apps/{foreign}/rotate-key"),
        ),
        (
            Method::POST,
            format!("/api/admin/notifications/{}/resend", w.notify_id),
        ),
        (
            Method::POST,
            format!("/api/admin/orders/{}/close", w.order_id),
        ),
        (
            Method::POST,
            format!("/api/admin/orders/{}/refunds", w.order_id),
        ),
        (Method::PUT, format!("/api/admin/stores/{foreign}/s1")),
        (
            Method::POST,
            format!("/api/admin/stores/{foreign}/s1/disable"),
        ),
    ] {
        let (status, body) = call(&app, &token, method, &path, &json!({"name": "x"})).await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (404, Some(4040)),
            "{path}: {body}"
        );
    }
    let (status, body) = call(
        &app,
        &token,
        Method::POST,
        "/api/admin/stores",
        &json!({"appId": foreign, "storeId": "s9", "name": "x"}),
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(4040)), "{body}");
    // Lists without a filter hold its own app's rows only.
    for (path, key) in [
        ("/api/admin/apps", "appId"),
        ("/api/admin/orders", "appId"),
        ("/api/admin/refunds", "appId"),
        ("/api/admin/notifications", "appId"),
        ("/api/admin/stores", "appId"),
        ("/api/admin/bindings", "appId"),
    ] {
        let (status, body) = get(path.to_owned()).await;
        assert_eq!(status, 200, "{path}: {body}");
        for row in body["data"].as_array().expect("list") {
            assert_eq!(row[key], own.app_id.as_str(), "{path}: {row}");
        }
    }
    let (_, orders) = get("/api/admin/orders".into()).await;
    assert_eq!(orders["data"][0]["orderId"], own_order.as_str(), "{own_no}");
    let (status, _) = get(format!("/api/admin/orders/{own_order}")).await;
    assert_eq!(status, 200);
    let (status, _) = get(format!("/api/admin/stores/{}/s1", own.app_id)).await;
    assert_eq!(status, 200);
}

async fn tokens_are_shown_once_and_revocable(b: Backend) {
    let app = spawn_app(b).await;
    let token = account_token(&app, "auditor-1", Role::Auditor, &[]).await;
    assert!(token.starts_with("cdk_"), "{token}");
    let (status, _) = call(&app, &token, Method::GET, "/api/admin/audit", &json!({})).await;
    assert_eq!(status, 200);
    let accounts = app
        .admin
        .request(Method::GET, "/api/admin/accounts", None)
        .await
        .expect("accounts");
    let account = accounts
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["username"] == "auditor-1")
        .expect("listed")
        .clone();
    // Neither the list of accounts nor of tokens shows a secret.
    let text = accounts.to_string();
    assert!(
        !text.contains("argon2") && !text.contains(PASSWORD),
        "{text}"
    );
    let id = account["accountId"].as_str().expect("id");
    let tokens = app
        .admin
        .request(
            Method::GET,
            &format!("/api/admin/accounts/{id}/tokens"),
            None,
        )
        .await
        .expect("tokens");
    assert!(tokens[0].get("token").is_none(), "{tokens}");
    assert!(!tokens.to_string().contains(&token));
    let token_id = tokens[0]["tokenId"].as_str().expect("tokenId");
    app.admin
        .request(
            Method::POST,
            &format!("/api/admin/tokens/{token_id}/revoke"),
            Some(&json!({})),
        )
        .await
        .expect("revoked");
    let (status, body) = call(&app, &token, Method::GET, "/api/admin/audit", &json!({})).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(4019)));
    // A disabled account's tokens stop working too.
    let token = account_token(&app, "finance-1", Role::Finance, &[]).await;
    let accounts = app
        .admin
        .request(Method::GET, "/api/admin/accounts", None)
        .await
        .expect("accounts");
    let id = accounts
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["username"] == "finance-1")
        .and_then(|a| a["accountId"].as_str())
        .expect("id")
        .to_owned();
    app.admin
        .request(
            Method::POST,
            &format!("/api/admin/accounts/{id}/settings"),
            Some(&json!({"disabled": true})),
        )
        .await
        .expect("disabled");
    let (status, _) = call(
        &app,
        &token,
        Method::GET,
        "/api/admin/reconciliations",
        &json!({}),
    )
    .await;
    assert_eq!(status, 401);
    // A merchant account needs apps that exist; other roles have none.
    for body in [
        json!({"username": "m1", "role": "merchant", "apps": [], "password": PASSWORD}),
        json!({"username": "m2", "role": "merchant", "apps": ["appdoesnotexist01"], "password": PASSWORD}),
        json!({"username": "o1", "role": "operator", "apps": [app.demo_app_id], "password": PASSWORD}),
        json!({"username": "o2", "role": "operator", "password": "short"}),
        json!({"username": "Bad Name", "role": "operator", "password": PASSWORD}),
        json!({"username": "o3", "role": "root", "password": PASSWORD}),
    ] {
        let err = app
            .admin
            .request(Method::POST, "/api/admin/accounts", Some(&body))
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("4000"), "{body}: {err}");
    }
    let err = app
        .admin
        .request(
            Method::POST,
            "/api/admin/accounts",
            Some(&json!({"username": "auditor-1", "role": "auditor", "password": PASSWORD})),
        )
        .await
        .expect_err("taken");
    assert!(err.to_string().contains("4090"), "{err}");
}

async fn changes_are_audited_with_before_and_after(b: Backend) {
    let app = spawn_app(b).await;
    let token = account_token(&app, "ops-audit", Role::Operator, &[]).await;
    let id = app.demo_app_id.clone();
    app.admin
        .request(
            Method::POST,
            &format!("/api/admin/apps/{id}/settings"),
            Some(&json!({ "refundReview": true })),
        )
        .await
        .expect("settings");
    app.add_store(&id, "s1").await;
    let (status, _) = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/admin/stores/{id}/s1/disable"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let audit = app.admin.list_audit(Some(100)).await.expect("audit");
    let find = |action: &str| {
        audit
            .as_array()
            .expect("list")
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} in {audit}"))
            .clone()
    };
    let settings = find("app.settings");
    assert_eq!(
        (settings["actor"].as_str(), settings["role"].as_str()),
        (Some("admin"), Some("admin"))
    );
    assert_eq!(settings["before"]["refundReview"], false, "{settings}");
    assert_eq!(settings["after"]["refundReview"], true, "{settings}");
    let disabled = find("store.disable");
    assert_eq!(
        (disabled["actor"].as_str(), disabled["role"].as_str()),
        (Some("ops-audit"), Some("operator"))
    );
    assert!(
        disabled["ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("127.")),
        "{disabled}"
    );
    assert_eq!(disabled["before"]["enabled"], true, "{disabled}");
    assert_eq!(disabled["after"]["enabled"], false, "{disabled}");
}

async fn secrets_and_resends_are_audited_before_and_after_without_values(b: Backend) {
    let app = spawn_app(b).await;
    let lakala = app.lakala_setup().await;
    let config = lakala.config_id.as_str();
    // Credentials: the keys set before and after, never a value.
    let v2 = app.wechat_setup("v2").await;
    let secret = "9d7c3f0e5b2a41d6b8e4f1a3c5d7e9f0";
    app.admin
        .replace_channel_credentials(&v2.config_id, &json!({ "apiKey": secret }))
        .await
        .expect("replaced");
    let audit = app.admin.list_audit(Some(200)).await.expect("audit");
    assert!(
        !audit.to_string().contains(secret),
        "a credential value in the log"
    );
    let e = audit
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["action"] == "channel_config.credentials")
        .expect("audited")
        .clone();
    assert_eq!(e["before"]["keys"], e["after"]["keys"], "{e}");
    assert!(
        e["after"]["keys"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "apiKey")),
        "{e}"
    );
    assert!(e["before"]["credentialsUpdatedAt"].is_null(), "{e}");
    assert!(e["after"]["credentialsUpdatedAt"].is_string(), "{e}");

    // A store identity: the merchant number and keys before and after.
    let app_id = lakala.shop.app_id.clone();
    app.add_store(&app_id, "s1").await;
    let (_, t) = app
        .sandbox_post(
            "/sandbox/api/merchants",
            json!({"channelType": "lakala", "appId": lakala.credentials["appId"]}),
        )
        .await;
    let identity = t["identity"].clone();
    let merchant_no = identity["merchantNo"]
        .as_str()
        .expect("merchantNo")
        .to_owned();
    app.admin
        .put_store_identity(&app_id, "s1", config, &identity)
        .await
        .expect("identity");
    app.admin
        .delete_store_identity(&app_id, "s1", config)
        .await
        .expect("deleted");
    let audit = app.admin.list_audit(Some(200)).await.expect("audit");
    let find = |action: &str| {
        audit
            .as_array()
            .expect("list")
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} in {audit}"))
            .clone()
    };
    let put = find("store.identity.put");
    assert!(put["before"].is_null(), "{put}");
    assert_eq!(put["after"]["mchId"], merchant_no.as_str(), "{put}");
    assert!(
        put["after"]["identityKeys"]
            .as_array()
            .is_some_and(|k| !k.is_empty()),
        "{put}"
    );
    let deleted = find("store.identity.delete");
    assert_eq!(
        deleted["before"]["mchId"],
        merchant_no.as_str(),
        "{deleted}"
    );
    assert!(deleted["after"].is_null(), "{deleted}");
    for v in identity.as_object().expect("identity").values() {
        let v = v.as_str().unwrap_or_default();
        if v.len() > 8 && v != merchant_no {
            assert!(
                !audit.to_string().contains(v),
                "an identity value in the log"
            );
        }
    }

    // A resend: the state before (FAILED or PENDING, due later) and after.
    let client = &lakala.shop.client;
    app.admin
        .request(
            Method::POST,
            &format!("/api/admin/apps/{app_id}/settings"),
            Some(&json!({ "notifyUrl": "http://127.0.0.1:9/notify" })),
        )
        .await
        .expect("notify URL");
    let (no, order_id) = app.new_order(client, 100).await;
    client.close_order(&no).await.expect("closed");
    let notes = app
        .admin
        .request(
            Method::GET,
            &format!("/api/admin/notifications?orderId={order_id}"),
            None,
        )
        .await
        .expect("notifications");
    let notify_id = notes[0]["notifyId"].as_str().expect("notifyId").to_owned();
    app.admin
        .resend_notification(&notify_id)
        .await
        .expect("resent");
    let audit = app.admin.list_audit(Some(200)).await.expect("audit");
    let resent = audit
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["action"] == "notification.resend" && e["target"] == notify_id.as_str())
        .expect("audited")
        .clone();
    assert!(resent["before"]["state"].is_string(), "{resent}");
    assert_eq!(resent["after"]["state"], "PENDING", "{resent}");
}
