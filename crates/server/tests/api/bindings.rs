//! Channel bindings: pending applications are not payable, approved ones
//! are (for enabled channels of enabled configs, for the right store),
//! operator decisions are compare-and-set, auto-approval after a delay.

use std::time::Duration;

use cashdesk_core::BindingState;
use cashdesk_sdk::{
    ApplyBindingRequest, BindingQuery, CreateChannelConfigRequest, CreateChannelRequest,
};

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(
    pending_is_not_listed_approved_is,
    reject_and_decisions_are_compare_and_set,
    disabled_channel_or_config_is_not_listed,
    store_bindings_apply_to_their_store,
    auto_approval_after_delay,
    apply_for_unknown_or_disabled_channel,
);

/// A wx-pay config with one channel of `scene`; returns the channel id.
pub async fn new_channel(app: &TestApp, scene: &str) -> String {
    let m = app.open_sandbox_merchant("MD5").await;
    let config = app
        .admin
        .create_channel_config(&CreateChannelConfigRequest {
            channel_type: "wx-pay".into(),
            name: "WeChat main".into(),
            mch_id: m["mchId"].as_str().expect("mchId").into(),
            api_version: Some("v3".into()),
            credentials: m["credentialsV3"].clone(),
            base_url: Some(m["baseUrl"].as_str().expect("baseUrl").into()),
        })
        .await
        .expect("config");
    app.admin
        .create_channel(&CreateChannelRequest {
            config_id: config.config_id,
            scene_code: scene.into(),
            channel_name: format!("WeChat {scene}"),
            sort: Some(1),
        })
        .await
        .expect("channel")
        .channel_id
}

async fn apply(
    app: &TestApp,
    channel_id: &str,
    store: Option<&str>,
) -> cashdesk_sdk::ApplyBindingResponse {
    app.client
        .apply_binding(&ApplyBindingRequest {
            channel_id: channel_id.to_owned(),
            store_id: store.map(str::to_owned),
        })
        .await
        .expect("apply")
}

async fn listed(app: &TestApp, store: Option<&str>) -> Vec<String> {
    let mut req = order(&otn(), 1);
    req.store_id = store.map(str::to_owned);
    let created = app.client.create_order(&req).await.expect("order");
    let list = app.client.payment_list(&created.token).await.expect("list");
    let from_order: Vec<String> = created
        .channels
        .iter()
        .map(|c| c.channel_id.clone())
        .collect();
    let from_list: Vec<String> = list.channels.iter().map(|c| c.channel_id.clone()).collect();
    assert_eq!(from_order, from_list);
    from_list
}

async fn pending_is_not_listed_approved_is(b: Backend) {
    let app = spawn_app_unbound(b).await;
    let channel = new_channel(&app, "mini").await;
    let applied = apply(&app, &channel, None).await;
    assert_eq!(applied.state, BindingState::Pending);
    assert!(
        listed(&app, None).await.is_empty(),
        "pending binding must not be payable"
    );

    let pending = app
        .admin
        .list_bindings(&BindingQuery {
            state: Some(BindingState::Pending),
            app_id: Some(app.demo_app_id.clone()),
        })
        .await
        .expect("list");
    assert_eq!(pending.as_array().map(Vec::len), Some(1));
    assert_eq!(
        pending[0]["bindingId"].as_str(),
        Some(applied.binding_id.as_str())
    );

    let approved = app
        .admin
        .approve_binding(&applied.binding_id)
        .await
        .expect("approve");
    assert_eq!(approved["state"], "APPROVED");
    assert_eq!(approved["decidedBy"], "admin");
    assert_eq!(listed(&app, None).await, vec![channel.clone()]);

    // The channel entry has the documented shape.
    let created = app
        .client
        .create_order(&order(&otn(), 5))
        .await
        .expect("order");
    let c = &created.channels[0];
    assert_eq!(c.id, applied.binding_id);
    assert_eq!(
        (c.channel_type.as_str(), c.scene_code.as_str()),
        ("wx-pay", "mini")
    );
    assert_eq!(c.scene_name.as_deref(), Some("微信小程序支付"));
    assert!(
        c.mch_id
            .as_deref()
            .is_some_and(|m| m.len() == 10 && m.starts_with("19")),
        "{:?}",
        c.mch_id
    );
    assert_eq!(c.url, format!("{}/api/cashier-desk/payment", app.base_url));
    assert_eq!(
        (c.method.as_str(), c.enctype.as_str(), c.sort),
        ("POST", "application/json", 1)
    );
    assert_eq!(c.app_name, "shop HMAC-SHA256");

    // Applying again answers with the existing binding.
    let again = apply(&app, &channel, None).await;
    assert_eq!(
        (again.binding_id, again.state),
        (applied.binding_id, BindingState::Approved)
    );

    // Now the payment call gets past the binding check and reaches the
    // channel (the sandbox).
    let r = app
        .client
        .pay(
            &cashdesk_sdk::PaymentRequest::new(&created.out_trade_no, &channel)
                .with_openid("oBuyer"),
        )
        .await
        .expect("pay");
    let rp = r
        .pay_data
        .request_payment()
        .expect("wx.requestPayment params");
    assert_eq!(rp.sign_type, "RSA", "{r:?}");
}

async fn reject_and_decisions_are_compare_and_set(b: Backend) {
    let app = spawn_app_unbound(b).await;
    let channel = new_channel(&app, "native").await;
    let applied = apply(&app, &channel, None).await;
    let rejected = app
        .admin
        .reject_binding(&applied.binding_id)
        .await
        .expect("reject");
    assert_eq!(rejected["state"], "REJECTED");
    assert!(listed(&app, None).await.is_empty());
    assert_api_error(
        app.admin.approve_binding(&applied.binding_id).await,
        422,
        4220,
    );
    assert_api_error(
        app.admin.reject_binding(&applied.binding_id).await,
        422,
        4220,
    );
    assert_api_error(
        app.admin
            .approve_binding("B01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .await,
        404,
        4040,
    );
    assert_api_error(app.admin.approve_binding("garbage").await, 404, 4040);
    assert_eq!(
        apply(&app, &channel, None).await.state,
        BindingState::Rejected
    );
    // Audited.
    let audit = app.admin.list_audit(Some(50)).await.expect("audit");
    let actions: Vec<&str> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(actions.contains(&"binding.reject"), "{actions:?}");
    assert!(actions.contains(&"binding.apply"), "{actions:?}");
}

async fn disabled_channel_or_config_is_not_listed(b: Backend) {
    let app = spawn_app_unbound(b).await;
    let channel = new_channel(&app, "h5").await;
    let applied = apply(&app, &channel, None).await;
    app.admin
        .approve_binding(&applied.binding_id)
        .await
        .expect("approve");
    assert_eq!(listed(&app, None).await.len(), 1);
    app.admin.disable_channel(&channel).await.expect("disable");
    assert!(listed(&app, None).await.is_empty());
    app.admin.enable_channel(&channel).await.expect("enable");
    assert_eq!(listed(&app, None).await.len(), 1);
    let config_id = app.admin.get_channel(&channel).await.expect("get")["configId"]
        .as_str()
        .expect("configId")
        .to_owned();
    app.admin
        .disable_channel_config(&config_id)
        .await
        .expect("disable config");
    assert!(listed(&app, None).await.is_empty());
    app.admin
        .enable_channel_config(&config_id)
        .await
        .expect("enable config");
    assert_eq!(listed(&app, None).await.len(), 1);
}

async fn store_bindings_apply_to_their_store(b: Backend) {
    let app = spawn_app_unbound(b).await;
    app.add_store(&app.demo_app_id, "store-A").await;
    app.add_store(&app.demo_app_id, "store-B").await;
    let channel = new_channel(&app, "jsapi").await;
    let applied = apply(&app, &channel, Some("store-A")).await;
    app.admin
        .approve_binding(&applied.binding_id)
        .await
        .expect("approve");
    assert_eq!(listed(&app, Some("store-A")).await, vec![channel.clone()]);
    assert!(listed(&app, Some("store-B")).await.is_empty());
    assert!(listed(&app, None).await.is_empty());
}

async fn auto_approval_after_delay(b: Backend) {
    let app = spawn_app_with(b, |c| c.binding_auto_approve_secs = Some(1)).await;
    let channel = new_channel(&app, "app").await;
    let applied = apply(&app, &channel, None).await;
    assert_eq!(applied.state, BindingState::Pending);
    let bindings = app
        .admin
        .list_bindings(&BindingQuery::default())
        .await
        .expect("list");
    assert!(bindings[0]["autoApproveAt"].is_string());
    // Either the worker or the lazy check approves it once due.
    let approved = wait_until(Duration::from_secs(5), || async {
        !listed(&app, None).await.is_empty()
    })
    .await;
    assert!(approved, "binding not auto-approved within 5 s");
    let b = app
        .admin
        .list_bindings(&BindingQuery::default())
        .await
        .expect("list");
    assert_eq!(b[0]["state"], "APPROVED");
}

async fn apply_for_unknown_or_disabled_channel(b: Backend) {
    let app = spawn_app_unbound(b).await;
    let req = |id: &str| ApplyBindingRequest {
        channel_id: id.to_owned(),
        store_id: None,
    };
    assert_api_error(
        app.client
            .apply_binding(&req("H01ARZ3NDEKTSV4RRFFQ69G5FAV"))
            .await,
        404,
        4040,
    );
    assert_api_error(app.client.apply_binding(&req("nope")).await, 400, 4000);
    assert_api_error(app.client.apply_binding(&req("")).await, 400, 4000);
    let channel = new_channel(&app, "mini").await;
    app.admin.disable_channel(&channel).await.expect("disable");
    assert_api_error(app.client.apply_binding(&req(&channel)).await, 403, 4033);
    let all = app
        .admin
        .list_bindings(&BindingQuery {
            app_id: Some(app.demo_app_id.clone()),
            ..BindingQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(all.as_array().map(Vec::len), Some(0), "nothing written");
    let bad_store = ApplyBindingRequest {
        channel_id: channel,
        store_id: Some("bad store".into()),
    };
    assert_api_error(app.client.apply_binding(&bad_store).await, 400, 4000);
}
