//! "Test connection" of a channel config (`POST
//! /api/admin/channel-configs/{id}/test`): a working config of every
//! channel type answers `ok` after one real query at the sandbox; a wrong
//! key, an unreachable channel and a channel failure answer what went
//! wrong; nothing is stored; the console shows the outcome.

use cashdesk_core::Role;
use cashdesk_sdk::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::console_pages::{CSRF, call as page_call, principal};
use crate::helpers::*;
use crate::rbac::{account_token, call};

backend_tests!(a_config_is_tested_with_one_real_query);

async fn test(app: &TestApp, config_id: &str) -> Value {
    app.admin
        .test_channel_config(config_id)
        .await
        .expect("tested")
}

async fn a_config_is_tested_with_one_real_query(b: Backend) {
    let app = spawn_app(b).await;
    let v3 = app.wechat_setup("v3").await;
    let v2 = app.wechat_setup("v2").await;
    let ali = app.alipay_setup(false).await;
    let ali_cert = app.alipay_setup(true).await;
    let lakala = app.lakala_setup().await;
    let orders = app.order_count().await;
    for (what, config_id) in [
        ("wx v3", &v3.config_id),
        ("wx v2", &v2.config_id),
        ("alipay", &ali.config_id),
        ("alipay cert", &ali_cert.config_id),
        ("lakala", &lakala.config_id),
    ] {
        let p = test(&app, config_id).await;
        assert_eq!(
            (p["ok"].as_bool(), p["outcome"].as_str()),
            (Some(true), Some("NOT_FOUND")),
            "{what}: {p}"
        );
        assert_eq!(p["configId"], config_id.as_str());
        assert!(p["latencyMs"].is_u64(), "{p}");
    }
    // One query reached the sandbox, about an order nobody has.
    let queries = app.sandbox_requests(v3.mch_id(), "api").await;
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(app.order_count().await, orders, "nothing stored");

    // A disabled config can be tested (before it is enabled again).
    app.admin
        .disable_channel_config(&v3.config_id)
        .await
        .expect("disabled");
    assert_eq!(test(&app, &v3.config_id).await["ok"], true);

    // A wrong key: the channel refuses the signature.
    app.admin
        .replace_channel_credentials(
            &v2.config_id,
            &json!({ "apiKey": "0123456789abcdef0123456789abcdef" }),
        )
        .await
        .expect("replaced");
    let p = test(&app, &v2.config_id).await;
    assert_eq!(p["ok"], false, "{p}");
    assert_ne!(p["outcome"], "NOT_FOUND", "{p}");
    assert!(
        !p.to_string().contains("0123456789abcdef"),
        "no secret in {p}"
    );

    // The channel failing: unreachable, with its code.
    app.add_fault(json!({"channelType": "ali-pay", "fault": "SYSTEMERROR", "mchId": ali.mch_id()}))
        .await;
    let p = test(&app, &ali.config_id).await;
    assert_eq!(
        (p["ok"].as_bool(), p["outcome"].as_str()),
        (Some(false), Some("UNREACHABLE")),
        "{p}"
    );

    // Unknown config: 404; the auditor may not (it is channels.write).
    let (status, body) = call(
        &app,
        &app.admin_token,
        Method::POST,
        "/api/admin/channel-configs/C01ARZ3NDEKTSV4RRFFQ69G5FA/test",
        &json!({}),
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(4040)), "{body}");
    let auditor = account_token(&app, "auditor-1", Role::Auditor, &[]).await;
    let (status, _) = call(
        &app,
        &auditor,
        Method::POST,
        &format!("/api/admin/channel-configs/{}/test", lakala.config_id),
        &json!({}),
    )
    .await;
    assert_eq!(status, 403);

    // The console: the outcome is the page's message.
    let ops = principal(Role::Operator, &[]);
    let form = format!("csrf={CSRF}");
    for (config_id, kind) in [(&lakala.config_id, "o."), (&v2.config_id, "e.")] {
        let r = page_call(
            &app,
            &ops,
            "POST",
            &format!("/console/channels/configs/{config_id}/test"),
            Some(&form),
        )
        .await;
        assert_eq!(r.status.as_u16(), 303);
        let cookie = r.headers["set-cookie"].to_str().expect("cookie");
        assert!(
            cookie.starts_with(&format!("cashdesk_flash={kind}")),
            "{cookie}"
        );
    }
}
