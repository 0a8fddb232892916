//! The operator API: bearer auth, apps, channel configs (credentials never
//! in clear), channels, orders, audit.

use cashdesk_sdk::{
    AdminClient, CreateChannelConfigRequest, CreateChannelRequest, HeaderMap, Method, OrderQuery,
};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(
    admin_needs_the_bearer_token,
    apps_list_get_disable_enable,
    channel_config_credentials_never_leave_in_clear,
    channels_validate_and_list,
    orders_and_audit,
);

async fn admin_needs_the_bearer_token(b: Backend) {
    let app = spawn_app(b).await;
    for (method, path) in [
        (Method::GET, "/api/admin/apps"),
        (Method::POST, "/api/admin/apps"),
        (Method::GET, "/api/admin/channel-configs"),
        (Method::POST, "/api/admin/channels"),
        (
            Method::POST,
            "/api/admin/bindings/B01ARZ3NDEKTSV4RRFFQ69G5FAV/approve",
        ),
        (Method::GET, "/api/admin/orders"),
        (Method::GET, "/api/admin/audit"),
    ] {
        let resp = app.raw(method.clone(), path, b"{}", HeaderMap::new()).await;
        assert_envelope(&resp, 401, 4019);
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "Bearer wrong-wrong-wrong-wrong".parse().expect("h"),
        );
        assert_envelope(&app.raw(method.clone(), path, b"{}", h).await, 401, 4019);
        let mut h = HeaderMap::new();
        h.insert("authorization", app.admin_token.parse().expect("h")); // no "Bearer "
        assert_envelope(&app.raw(method, path, b"{}", h).await, 401, 4019);
    }
    let wrong = AdminClient::new(&app.base_url, "not-the-admin-token").expect("client");
    assert_api_error(wrong.list_apps().await, 401, 4019);
    assert!(app.admin.list_apps().await.is_ok());
}

async fn apps_list_get_disable_enable(b: Backend) {
    let app = spawn_app(b).await;
    let apps = app.admin.list_apps().await.expect("list");
    assert_eq!(apps.as_array().map(Vec::len), Some(1), "the demo app");
    assert_eq!(apps[0]["appName"], "Demo shop");
    assert!(apps[0].get("appKey").is_none());
    assert!(!apps.to_string().contains(&app.demo_app_key));
    let one = app.admin.get_app(&app.demo_app_id).await.expect("get");
    assert_eq!(one["enabled"], true);
    let off = app
        .admin
        .disable_app(&app.demo_app_id)
        .await
        .expect("disable");
    assert_eq!(off["enabled"], false);
    let on = app
        .admin
        .enable_app(&app.demo_app_id)
        .await
        .expect("enable");
    assert_eq!(on["enabled"], true);
    assert_api_error(app.admin.get_app("app0000000000000000").await, 404, 4040);
    assert_api_error(
        app.admin.disable_app("app0000000000000000").await,
        404,
        4040,
    );
}

async fn channel_config_credentials_never_leave_in_clear(b: Backend) {
    let app = spawn_app(b).await;
    let configs_before = app
        .admin
        .list_channel_configs()
        .await
        .expect("list")
        .as_array()
        .map_or(0, Vec::len);
    let m = app.open_sandbox_merchant("HMAC-SHA256").await;
    let api_key = m["credentialsV2"]["apiKey"]
        .as_str()
        .expect("apiKey")
        .to_owned();
    let key_pem = m["credentialsV2"]["keyPem"]
        .as_str()
        .expect("keyPem")
        .to_owned();
    // A line from the middle of the private key: certainly secret material.
    let key_line = key_pem.lines().nth(3).expect("pem line").to_owned();
    let mut credentials = m["credentialsV2"].clone();
    credentials["nested"] = json!({"k": "also-secret-xyz", "pin": 123456});
    let created = app
        .admin
        .create_channel_config(&CreateChannelConfigRequest {
            channel_type: "wx-pay".into(),
            name: "WeChat v2".into(),
            mch_id: m["mchId"].as_str().expect("mchId").into(),
            api_version: Some("v2".into()),
            credentials,
            base_url: Some("https://api.mch.weixin.qq.com".into()),
        })
        .await
        .expect("config");
    let one = app
        .admin
        .get_channel_config(&created.config_id)
        .await
        .expect("get");
    let all = app.admin.list_channel_configs().await.expect("list");
    for v in [&one, &all] {
        let text = v.to_string();
        assert!(
            !text.contains(&api_key)
                && !text.contains(&key_line)
                && !text.contains("also-secret")
                && !text.contains("123456"),
            "{text}"
        );
    }
    assert_eq!(one["credentials"]["apiKey"], "***");
    assert_eq!(one["credentials"]["keyPem"], "***");
    assert_eq!(
        one["credentials"]["nested"],
        json!({"k": "***", "pin": "***"})
    );
    assert_eq!(one["channelType"], "wx-pay");
    assert_eq!(one["mchId"], m["mchId"]);
    assert_eq!(one["baseUrl"], "https://api.mch.weixin.qq.com");
    // Sealed at rest.
    let stored = app
        .store
        .get_channel_config(&cashdesk_core::ConfigId::parse(&created.config_id).expect("id"))
        .await
        .expect("store")
        .expect("config");
    assert!(
        !stored
            .credentials_sealed
            .windows(api_key.len())
            .any(|w| w == api_key.as_bytes())
    );
    // Audit names the keys, not the values.
    let audit = app.admin.list_audit(None).await.expect("audit").to_string();
    assert!(audit.contains("channel_config.create"));
    assert!(
        !audit.contains(&api_key) && !audit.contains("also-secret"),
        "{audit}"
    );
    // Disable / enable.
    assert_eq!(
        app.admin
            .disable_channel_config(&created.config_id)
            .await
            .expect("d")["enabled"],
        false
    );
    assert_eq!(
        app.admin
            .enable_channel_config(&created.config_id)
            .await
            .expect("e")["enabled"],
        true
    );
    assert_api_error(
        app.admin
            .get_channel_config("C01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .await,
        404,
        4040,
    );
    // Validation.
    let bad = |ct: &str, creds: serde_json::Value, api: Option<&str>| CreateChannelConfigRequest {
        channel_type: ct.into(),
        name: "n".into(),
        mch_id: "m".into(),
        api_version: api.map(str::to_owned),
        credentials: creds,
        base_url: None,
    };
    assert_api_error(
        app.admin
            .create_channel_config(&bad("paypal", json!({}), None))
            .await,
        400,
        4000,
    );
    assert_api_error(
        app.admin
            .create_channel_config(&bad("wx-pay", json!("key"), None))
            .await,
        400,
        4000,
    );
    assert_api_error(
        app.admin
            .create_channel_config(&bad("wx-pay", json!({}), Some("v4")))
            .await,
        400,
        4000,
    );
    assert_eq!(
        app.admin
            .list_channel_configs()
            .await
            .expect("list")
            .as_array()
            .map(Vec::len),
        Some(configs_before + 1)
    );
    // Credentials that could not work are refused with the reason.
    let data = assert_api_error(
        app.admin
            .create_channel_config(&bad("wx-pay", json!({"appId": "wx1"}), Some("v2")))
            .await,
        400,
        4000,
    )
    .expect("data");
    assert_eq!(data["field"], "credentials");
}

async fn channels_validate_and_list(b: Backend) {
    let app = spawn_app(b).await;
    let channels_before = app
        .admin
        .list_channels()
        .await
        .expect("list")
        .as_array()
        .map_or(0, Vec::len);
    let m = app.open_sandbox_merchant("MD5").await;
    let config = app
        .admin
        .create_channel_config(&CreateChannelConfigRequest {
            channel_type: "wx-pay".into(),
            name: "WeChat v3".into(),
            mch_id: m["mchId"].as_str().expect("mchId").into(),
            api_version: Some("v3".into()),
            credentials: m["credentialsV3"].clone(),
            base_url: None,
        })
        .await
        .expect("config");
    let ch = |scene: &str, config_id: &str| CreateChannelRequest {
        config_id: config_id.into(),
        scene_code: scene.into(),
        channel_name: "c".into(),
        sort: None,
    };
    // WeChat Pay has no "page" scene; unknown scene; unknown config.
    assert_api_error(
        app.admin
            .create_channel(&ch("page", &config.config_id))
            .await,
        400,
        4000,
    );
    assert_api_error(
        app.admin
            .create_channel(&ch("teleport", &config.config_id))
            .await,
        400,
        4000,
    );
    assert_api_error(
        app.admin
            .create_channel(&ch("mini", "C01ARZ3NDEKTSV4RRFFQ69G5FAV"))
            .await,
        404,
        4040,
    );
    assert_api_error(
        app.admin.create_channel(&ch("mini", "garbage")).await,
        400,
        4000,
    );
    let created = app
        .admin
        .create_channel(&ch("mini", &config.config_id))
        .await
        .expect("channel");
    let one = app
        .admin
        .get_channel(&created.channel_id)
        .await
        .expect("get");
    assert_eq!(one["sceneCode"], "mini");
    assert_eq!(one["sceneName"], "微信小程序支付");
    assert_eq!(one["configId"], config.config_id.as_str());
    let all = app.admin.list_channels().await.expect("list");
    assert_eq!(all.as_array().map(Vec::len), Some(channels_before + 1));
    assert_eq!(
        app.admin
            .disable_channel(&created.channel_id)
            .await
            .expect("d")["enabled"],
        false
    );
    assert_api_error(
        app.admin.get_channel("H01ARZ3NDEKTSV4RRFFQ69G5FAV").await,
        404,
        4040,
    );
}

async fn orders_and_audit(b: Backend) {
    let app = spawn_app(b).await;
    let no = otn();
    let created = app
        .client
        .create_order(&order(&no, 321))
        .await
        .expect("order");
    app.client
        .create_order(&order(&otn(), 1))
        .await
        .expect("order 2");
    let all = app
        .admin
        .list_orders(&OrderQuery::default())
        .await
        .expect("orders");
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    assert_eq!(all[1]["orderId"], created.order_id.as_str(), "newest first");
    assert!(all[0].get("token").is_none());
    let limited = app
        .admin
        .list_orders(&OrderQuery {
            limit: Some(1),
            ..OrderQuery::default()
        })
        .await
        .expect("orders");
    assert_eq!(limited.as_array().map(Vec::len), Some(1));
    // The next page: older than the last one shown.
    let next = app
        .admin
        .list_orders(&OrderQuery {
            limit: Some(1),
            before: limited[0]["orderId"].as_str().map(str::to_owned),
            ..OrderQuery::default()
        })
        .await
        .expect("orders");
    assert_eq!(next.as_array().map(Vec::len), Some(1));
    assert_eq!(next[0]["orderId"], created.order_id.as_str(), "{next}");
    let filtered = app
        .admin
        .list_orders(&OrderQuery {
            app_id: Some(app.demo_app_id.clone()),
            state: Some("CLOSED".into()),
            ..OrderQuery::default()
        })
        .await
        .expect("orders");
    assert_eq!(filtered.as_array().map(Vec::len), Some(0));
    assert_api_error(
        app.admin
            .list_orders(&OrderQuery {
                state: Some("DONE".into()),
                ..OrderQuery::default()
            })
            .await,
        400,
        4000,
    );
    let one = app.admin.get_order(&created.order_id).await.expect("order");
    assert_eq!(
        (one["outTradeNo"].as_str(), one["amount"].as_i64()),
        (Some(no.as_str()), Some(321))
    );
    assert_eq!(one["state"], "CREATED");
    assert_api_error(
        app.admin.get_order("P01ARZ3NDEKTSV4RRFFQ69G5FAV").await,
        404,
        4040,
    );

    app.admin
        .disable_app(&app.demo_app_id)
        .await
        .expect("disable");
    let audit = app.admin.list_audit(Some(10)).await.expect("audit");
    let first = &audit[0];
    assert_eq!(
        (first["actor"].as_str(), first["action"].as_str()),
        (Some("admin"), Some("app.disable"))
    );
    assert_eq!(first["target"], app.demo_app_id.as_str());
}
