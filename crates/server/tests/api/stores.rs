//! Stores end to end over HTTP against the mounted sandbox: the admin API
//! and the refusals of unknown or disabled stores; a store paid to its own
//! WeChat sub-merchant (service-provider config, v2 and v3); two stores on
//! one Lakala config, each with its own merchant numbers and notifications;
//! a store paid under its Alipay app authorization; and a chain of three
//! stores taking WeChat, Alipay and Lakala payments through one app, each
//! through its own identity. Sandbox merchants, sub-merchants, store
//! terminals and app authorizations are all opened through the sandbox's
//! merchants API, as an operator would.

use std::time::Duration;

use cashdesk_channels::{ChannelEnv, HttpSettings, PayRequest, StoreMerchant, build_channel};
use cashdesk_core::{ChannelType, Fen, OrderId, SceneCode};
use cashdesk_crypto::wxv2::{self, WxSignType};
use cashdesk_sdk::{
    ApplyBindingRequest, CreateChannelConfigRequest, CreateChannelRequest, CreateRefundRequest,
    CreateStoreRequest, OrderQuery, PayResult, PaymentRequest, RefundResult,
};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(
    stores_are_managed_and_unknown_or_disabled_stores_are_refused,
    identities_are_validated_sealed_and_listed_per_store,
    wechat_v2_sub_merchant_store_pays_queries_and_refunds,
    wechat_v3_sub_merchant_store_pays_queries_and_refunds,
    wechat_v2_sub_merchant_store_with_its_own_appid_pays_on_the_cashier_page,
    wechat_v3_sub_merchant_store_with_its_own_appid_pays_on_the_cashier_page,
    two_stores_on_one_lakala_config_keep_their_merchant_numbers,
    alipay_store_pays_under_its_app_authorization,
    three_store_chain_pays_through_each_store_identity,
);

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

fn state_of(r: &PayResult) -> String {
    serde_json::to_value(r.state)
        .expect("state")
        .as_str()
        .expect("state text")
        .to_owned()
}

/// `POST /sandbox/api/merchants` (201).
async fn open(app: &TestApp, body: Value) -> Value {
    let (status, v) = app.sandbox_post("/sandbox/api/merchants", body).await;
    assert_eq!(status, 201, "{v}");
    v
}

async fn config(
    app: &TestApp,
    channel_type: &str,
    api_version: &str,
    mch_id: &str,
    credentials: Value,
    base_url: &str,
) -> String {
    app.admin
        .create_channel_config(&CreateChannelConfigRequest {
            channel_type: channel_type.into(),
            name: format!("sandbox {channel_type} {api_version}"),
            mch_id: mch_id.into(),
            api_version: Some(api_version.into()),
            credentials,
            base_url: Some(base_url.into()),
        })
        .await
        .expect("channel config")
        .config_id
}

/// A channel for `scene`, bound (approved) app-wide to `shop`.
async fn bound_channel(app: &TestApp, shop: &TestMerchant, config_id: &str, scene: &str) -> String {
    let ch = app
        .admin
        .create_channel(&CreateChannelRequest {
            config_id: config_id.into(),
            scene_code: scene.into(),
            channel_name: format!("{scene} of {config_id}"),
            sort: None,
        })
        .await
        .expect("channel")
        .channel_id;
    let applied = shop
        .client
        .apply_binding(&ApplyBindingRequest {
            channel_id: ch.clone(),
            store_id: None,
        })
        .await
        .expect("apply");
    app.admin
        .approve_binding(&applied.binding_id)
        .await
        .expect("approve");
    ch
}

async fn put_identity(
    app: &TestApp,
    app_id: &str,
    store: &str,
    config_id: &str,
    identity: &Value,
) -> Value {
    app.admin
        .put_store_identity(app_id, store, config_id, identity)
        .await
        .expect("identity stored")
}

/// The sandbox's request log for a merchant (`kind`: api, notify, payer).
async fn requests(app: &TestApp, mch_id: &str, kind: &str) -> Vec<Value> {
    let v: Value = app
        .http()
        .get(format!(
            "{}/sandbox/api/requests?mchId={mch_id}&kind={kind}&limit=1000",
            app.base_url
        ))
        .send()
        .await
        .expect("request log")
        .json()
        .await
        .expect("request log JSON");
    v["requests"].as_array().cloned().unwrap_or_default()
}

async fn sandbox_pay(app: &TestApp, channel_type: &str, order_id: &str) -> Value {
    let (status, v) = app
        .sandbox_post(
            "/sandbox/api/pay",
            json!({"channelType": channel_type, "outTradeNo": order_id, "result": "SUCCESS"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// An order of `store` for `shop`: (outTradeNo, orderId).
async fn store_order(shop: &TestMerchant, store: &str, amount: i64) -> (String, String) {
    let no = otn();
    let mut req = order(&no, amount);
    req.store_id = Some(store.into());
    req.attach = Some("merchant-memo".into());
    let created = shop.client.create_order(&req).await.expect("order");
    (no, created.order_id)
}

async fn wait_refund(shop: &TestMerchant, out_refund_no: &str, state: &str) -> RefundResult {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = shop
            .client
            .get_refund(out_refund_no, false)
            .await
            .expect("refund");
        if serde_json::to_value(r.state).expect("state") == state {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "refund never reached {state}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// --- stores and their refusals ---

async fn stores_are_managed_and_unknown_or_disabled_stores_are_refused(b: Backend) {
    let app = spawn_app_unbound(b).await;
    let app_id = app.demo_app_id.clone();
    let created = app.add_store(&app_id, "S1").await;
    assert_eq!(
        (
            s(&created, "appId"),
            s(&created, "storeId"),
            s(&created, "name"),
            created["enabled"].as_bool()
        ),
        (app_id.as_str(), "S1", "门店 S1", Some(true))
    );
    assert_eq!(created["identities"], json!([]));
    // The same store twice: 409; an unknown app: 404; a bad id: 400.
    let again = app
        .admin
        .create_store(&CreateStoreRequest {
            app_id: app_id.clone(),
            store_id: "S1".into(),
            name: "dup".into(),
            enabled: None,
        })
        .await;
    assert_api_error(again, 409, 4090);
    let ghost = app
        .admin
        .create_store(&CreateStoreRequest {
            app_id: "app-ghost".into(),
            store_id: "S1".into(),
            name: "x".into(),
            enabled: None,
        })
        .await;
    assert_api_error(ghost, 404, 4040);
    let bad = app
        .admin
        .create_store(&CreateStoreRequest {
            app_id: app_id.clone(),
            store_id: "store 1".into(),
            name: "x".into(),
            enabled: None,
        })
        .await;
    let data = assert_api_error(bad, 400, 4000).expect("data");
    assert_eq!(data["field"], "storeId");
    // Another app's store of the same id is another store.
    let other = app.merchant(cashdesk_core::SignType::HmacSha256).await;
    app.add_store(&other.app_id, "S1").await;
    let mine = app.admin.list_stores(Some(&app_id)).await.expect("list");
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert!(
        app.admin
            .list_stores(None)
            .await
            .expect("all")
            .as_array()
            .is_some_and(|a| a.len() >= 2)
    );
    let renamed = app
        .admin
        .rename_store(&app_id, "S1", "旗舰店")
        .await
        .expect("rename");
    assert_eq!(renamed["name"], "旗舰店");

    // An order naming a store the app does not have: 400 4003, nothing stored.
    let before = app.order_count().await;
    let mut req = order(&otn(), 100);
    req.store_id = Some("S9".into());
    let data = assert_api_error(app.client.create_order(&req).await, 400, 4003).expect("data");
    assert_eq!(data["field"], "storeId");
    // Another app's store is not this app's.
    app.add_store(&other.app_id, "S-other").await;
    req.store_id = Some("S-other".into());
    assert_api_error(app.client.create_order(&req).await, 400, 4003);
    assert_eq!(app.order_count().await, before, "nothing stored");

    // An order of S1, then S1 is disabled: new orders, payments and
    // applications of S1 are refused with 403 4034, the existing order
    // stays queryable, and its identical retry answers as before.
    let channel = {
        let m = app.open_sandbox_merchant("MD5").await;
        let config_id = config(
            &app,
            "wx-pay",
            "v2",
            s(&m, "mchId"),
            m["credentialsV2"].clone(),
            s(&m, "baseUrl"),
        )
        .await;
        let shop = TestMerchant {
            app_id: app_id.clone(),
            client: app.client.clone(),
            credentials: cashdesk_sdk::Credentials::hmac_sha256(app.demo_app_key.clone()),
        };
        bound_channel(&app, &shop, &config_id, "native").await
    };
    let mut first = order(&otn(), 100);
    first.store_id = Some("S1".into());
    let created = app.client.create_order(&first).await.expect("S1 order");
    assert_eq!(created.channels.len(), 1);
    app.admin
        .disable_store(&app_id, "S1")
        .await
        .expect("disable");
    let before = app.order_count().await;
    let mut second = order(&otn(), 100);
    second.store_id = Some("S1".into());
    let data = assert_api_error(app.client.create_order(&second).await, 403, 4034).expect("data");
    assert_eq!(data["field"], "storeId");
    assert_eq!(app.order_count().await, before, "nothing stored");
    assert_api_error(
        app.pay_json(
            &app.client,
            json!({"outTradeNo": first.out_trade_no, "channelId": channel}),
        )
        .await,
        403,
        4034,
    );
    let q = app
        .client
        .query_pay_result(&first.out_trade_no, false)
        .await
        .expect("query");
    assert_eq!(
        state_of(&q),
        "CREATED",
        "the refused payment changed nothing"
    );
    assert_eq!(
        app.client.create_order(&first).await.expect("replay"),
        created,
        "an identical retry answers as before"
    );
    assert_api_error(
        app.client
            .apply_binding(&ApplyBindingRequest {
                channel_id: channel.clone(),
                store_id: Some("S1".into()),
            })
            .await,
        403,
        4034,
    );
    assert_api_error(
        app.client
            .apply_binding(&ApplyBindingRequest {
                channel_id: channel.clone(),
                store_id: Some("S9".into()),
            })
            .await,
        400,
        4003,
    );
    // Enabled again: it pays.
    app.admin.enable_store(&app_id, "S1").await.expect("enable");
    let paid = app
        .pay_json(
            &app.client,
            json!({"outTradeNo": first.out_trade_no, "channelId": channel}),
        )
        .await
        .expect("pay");
    assert!(paid["payData"]["codeUrl"].is_string(), "{paid}");

    // The operator's order list by store.
    let by_store = app
        .admin
        .list_orders(&OrderQuery {
            app_id: Some(app_id.clone()),
            store_id: Some("S1".into()),
            ..OrderQuery::default()
        })
        .await
        .expect("orders");
    assert_eq!(
        by_store.as_array().map(|a| a
            .iter()
            .map(|o| s(o, "orderId").to_owned())
            .collect::<Vec<_>>()),
        Some(vec![created.order_id.clone()])
    );
    // Audited.
    let audit = app.admin.list_audit(Some(50)).await.expect("audit");
    let actions: Vec<&str> = audit
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| s(e, "action"))
        .collect();
    for a in [
        "store.create",
        "store.rename",
        "store.disable",
        "store.enable",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

async fn identities_are_validated_sealed_and_listed_per_store(b: Backend) {
    let app = spawn_app_unbound(b).await;
    let app_id = app.demo_app_id.clone();
    for st in ["S1", "S2"] {
        app.add_store(&app_id, st).await;
    }
    // An Alipay ISV app and one authorization: the identity holds a
    // secret token.
    let isv = open(&app, json!({"channelType": "ali-pay"})).await;
    let config_id = config(
        &app,
        "ali-pay",
        "v2",
        s(&isv, "mchId"),
        isv["credentials"].clone(),
        s(&isv, "baseUrl"),
    )
    .await;
    let auth = open(
        &app,
        json!({"channelType": "ali-pay", "isvAppId": isv["credentials"]["appId"]}),
    )
    .await;
    let token = s(&auth, "appAuthToken").to_owned();

    // Refused by the channel's rules (the message names the field and
    // never the token), for unknown stores or configs.
    for (bad, field) in [
        (json!({"authAppId": auth["authAppId"]}), "appAuthToken"),
        (
            json!({"appAuthToken": token, "authAppId": "x"}),
            "authAppId",
        ),
        (json!({"subMchId": "1900000001"}), "subMchId"),
    ] {
        let e = app
            .admin
            .put_store_identity(&app_id, "S1", &config_id, &bad)
            .await;
        match e {
            Err(cashdesk_sdk::SdkError::Api {
                status,
                code,
                msg,
                data,
            }) => {
                assert_eq!((status, code), (400, 4000), "{msg}");
                assert_eq!(data.expect("data")["field"], "identity");
                assert!(msg.contains(field), "{field}: {msg}");
                assert!(!msg.contains(&token), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_api_error(
        app.admin
            .put_store_identity(&app_id, "S9", &config_id, &auth["identity"])
            .await,
        404,
        4040,
    );
    assert_api_error(
        app.admin
            .put_store_identity(
                &app_id,
                "S1",
                "C01HZZZZZZZZZZZZZZZZZZZZZZ",
                &auth["identity"],
            )
            .await,
        404,
        4040,
    );

    let stored = put_identity(&app, &app_id, "S1", &config_id, &auth["identity"]).await;
    assert_eq!(
        (
            s(&stored, "configId"),
            s(&stored, "channelType"),
            s(&stored, "mchId")
        ),
        (config_id.as_str(), "ali-pay", s(&auth, "sellerId"))
    );
    // The token is sealed and shown masked; the rest in clear.
    assert_eq!(stored["identity"]["appAuthToken"], "***");
    assert_eq!(stored["identity"]["authAppId"], auth["authAppId"]);
    let shown = app.admin.get_store(&app_id, "S1").await.expect("store");
    assert_eq!(shown["identities"][0], stored);
    assert!(!shown.to_string().contains(&token));
    let audit = app.admin.list_audit(Some(20)).await.expect("audit");
    assert!(audit.to_string().contains("store.identity.put"));
    assert!(!audit.to_string().contains(&token), "never audited");
    assert!(
        app.admin
            .list_store_identities(&app_id, "S2")
            .await
            .expect("S2")
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    // channels[] per store: the store's own merchant is shown for its
    // orders, the config's for the others.
    let shop = TestMerchant {
        app_id: app_id.clone(),
        client: app.client.clone(),
        credentials: cashdesk_sdk::Credentials::hmac_sha256(app.demo_app_key.clone()),
    };
    let qr = bound_channel(&app, &shop, &config_id, "qr").await;
    let mut s1 = order(&otn(), 10);
    s1.store_id = Some("S1".into());
    let c1 = app.client.create_order(&s1).await.expect("S1 order");
    let mut s2 = order(&otn(), 10);
    s2.store_id = Some("S2".into());
    let c2 = app.client.create_order(&s2).await.expect("S2 order");
    assert_eq!(
        (
            c1.channels[0].channel_id.as_str(),
            c1.channels[0].mch_id.as_deref()
        ),
        (qr.as_str(), Some(s(&auth, "sellerId")))
    );
    assert_eq!(c2.channels[0].mch_id.as_deref(), Some(s(&isv, "mchId")));

    // A store-only channel is listed for that store's orders only.
    let wap = app
        .admin
        .create_channel(&CreateChannelRequest {
            config_id: config_id.clone(),
            scene_code: "wap".into(),
            channel_name: "S2 wap".into(),
            sort: None,
        })
        .await
        .expect("channel")
        .channel_id;
    let applied = app
        .client
        .apply_binding(&ApplyBindingRequest {
            channel_id: wap.clone(),
            store_id: Some("S2".into()),
        })
        .await
        .expect("apply for S2");
    app.admin
        .approve_binding(&applied.binding_id)
        .await
        .expect("approve");
    let ids = |c: &cashdesk_sdk::CreateOrderResponse| {
        c.channels
            .iter()
            .map(|c| c.channel_id.clone())
            .collect::<Vec<_>>()
    };
    let mut s2b = order(&otn(), 10);
    s2b.store_id = Some("S2".into());
    assert!(ids(&app.client.create_order(&s2b).await.expect("S2")).contains(&wap));
    let mut s1b = order(&otn(), 10);
    s1b.store_id = Some("S1".into());
    assert!(!ids(&app.client.create_order(&s1b).await.expect("S1")).contains(&wap));

    // Deleted: S1's orders use the config's own account again.
    app.admin
        .delete_store_identity(&app_id, "S1", &config_id)
        .await
        .expect("delete");
    assert_api_error(
        app.admin
            .delete_store_identity(&app_id, "S1", &config_id)
            .await,
        404,
        4040,
    );
    let mut s1c = order(&otn(), 10);
    s1c.store_id = Some("S1".into());
    let c = app.client.create_order(&s1c).await.expect("S1");
    assert_eq!(c.channels[0].mch_id.as_deref(), Some(s(&isv, "mchId")));
}

// --- WeChat service providers ---

/// A service provider's `wx-pay` config, one of its sub-merchants as the
/// identity of store S1 of a fresh app, and that app bound to `scene`.
struct SpSetup {
    sp: Value,
    sub: Value,
    shop: TestMerchant,
    channel: String,
}

async fn sp_setup(app: &TestApp, version: &str, scene: &str) -> SpSetup {
    let sp = open(
        app,
        json!({"channelType": "wx-pay", "serviceProvider": true, "signType": "HMAC-SHA256"}),
    )
    .await;
    let sub = open(
        app,
        json!({"channelType": "wx-pay", "spMchId": sp["mchId"]}),
    )
    .await;
    let creds = match version {
        "v2" => sp["credentialsV2"].clone(),
        _ => sp["credentialsV3"].clone(),
    };
    let config_id = config(
        app,
        "wx-pay",
        version,
        s(&sp, "mchId"),
        creds,
        s(&sp, "baseUrl"),
    )
    .await;
    let shop = app.merchant(cashdesk_core::SignType::HmacSha256).await;
    app.add_store(&shop.app_id, "S1").await;
    put_identity(app, &shop.app_id, "S1", &config_id, &sub["identity"]).await;
    let channel = bound_channel(app, &shop, &config_id, scene).await;
    SpSetup {
        sp,
        sub,
        shop,
        channel,
    }
}

/// The sandbox's log entry of the (first) payment created for `sub_mch`.
async fn partner_create_call(app: &TestApp, sub_mch: &str) -> Value {
    let api = requests(app, sub_mch, "api").await;
    api.iter()
        .find(|e| {
            e["target"].as_str().is_some_and(|t| {
                t.contains("unifiedorder") || t.contains("/partner/transactions/jsapi")
            })
        })
        .cloned()
        .unwrap_or_else(|| panic!("no create call for {sub_mch}: {api:?}"))
}

async fn sub_merchant_store_pays(b: Backend, version: &'static str) {
    let app = spawn_app(b).await;
    let setup = sp_setup(&app, version, "mini").await;
    let (shop, sp, sub) = (&setup.shop, &setup.sp, &setup.sub);
    let sub_mch = s(sub, "mchId");
    let (no, order_id) = store_order(shop, "S1", 188).await;
    let paid = app
        .pay_json(
            &shop.client,
            json!({"outTradeNo": no, "channelId": setup.channel, "openid": "oSubBuyer0001"}),
        )
        .await
        .expect("pay");
    // wx.requestPayment with the sub-merchant's own AppID, signed by the
    // service provider (checked here without cashdesk's code).
    let pd = &paid["payData"];
    assert_eq!(s(pd, "appId"), s(sub, "subAppId"));
    if version == "v2" {
        assert_eq!(
            s(pd, "paySign"),
            wxv2::request_payment_sign(
                s(sub, "subAppId"),
                s(pd, "timeStamp"),
                s(pd, "nonceStr"),
                s(pd, "package"),
                WxSignType::HmacSha256,
                s(&sp["credentialsV2"], "apiKey"),
            )
        );
    } else {
        let key =
            cashdesk_crypto::rsa::RsaPrivateKey::from_pem(s(&sp["credentialsV3"], "privateKeyPem"))
                .expect("sp key")
                .public_key();
        let msg = format!(
            "{}\n{}\n{}\n{}\n",
            s(sub, "subAppId"),
            s(pd, "timeStamp"),
            s(pd, "nonceStr"),
            s(pd, "package")
        );
        key.verify_sha256_base64(msg.as_bytes(), s(pd, "paySign"))
            .expect("paySign verifies with the service provider's key");
    }
    let paying = shop
        .client
        .query_pay_result(&no, false)
        .await
        .expect("query");
    assert_eq!(
        paying.mch_id.as_deref(),
        Some(sub_mch),
        "paid to the sub-merchant"
    );

    // The sandbox's log files the call under the sub-merchant, which the
    // request names (and the attach field carries the store's tag).
    let create = partner_create_call(&app, sub_mch).await;
    let body = s(&create, "requestBody");
    assert_eq!(create["result"], "SUCCESS", "{create}");
    assert!(body.contains(sub_mch), "{body}");
    assert!(body.contains("cashdesk-store:S1"), "{body}");
    assert!(!body.contains("merchant-memo"), "{body}");

    // A sync query (the order is still paying) asks the sub-merchant's order.
    let synced = shop.client.query_pay_result(&no, true).await.expect("sync");
    assert_eq!(state_of(&synced), "PAYING");
    let query = if version == "v2" {
        "pay/orderquery"
    } else {
        "/partner/transactions/out-trade-no/"
    };
    assert!(
        requests(&app, sub_mch, "api")
            .await
            .iter()
            .any(|e| e["target"].as_str().is_some_and(|t| t.contains(query))
                && e["result"] == "SUCCESS"
                && format!("{}{}", s(e, "target"), s(e, "requestBody")).contains(sub_mch)),
        "the sync query was the sub-merchant's"
    );

    // The buyer pays; the partner notification settles it.
    sandbox_pay(&app, "wx-pay", &order_id).await;
    let done = app.wait_state(&shop.client, &no, "SUCCESS").await;
    assert_eq!(done.mch_id.as_deref(), Some(sub_mch));
    assert_eq!(done.store_id.as_deref(), Some("S1"));
    assert_eq!(
        done.attach.as_deref(),
        Some("merchant-memo"),
        "the merchant's attach is kept"
    );
    assert!(
        requests(&app, sub_mch, "notify")
            .await
            .iter()
            .any(|e| e["result"] == "ACKED"),
        "the notification was acknowledged"
    );
    // Refunds go to the sub-merchant too, and its refund notification settles them.
    let refund_no = format!("RF{}", &otn()[1..]);
    shop.client
        .create_refund(&CreateRefundRequest::new(&no, &refund_no, 88))
        .await
        .expect("refund");
    let r = wait_refund(shop, &refund_no, "SUCCESS").await;
    assert_eq!(r.refunded_amount, 88);
    let refund_path = if version == "v2" {
        "secapi/pay/refund"
    } else {
        "/v3/refund/domestic/refunds"
    };
    let refund_call = requests(&app, sub_mch, "api")
        .await
        .into_iter()
        .find(|e| {
            e["target"]
                .as_str()
                .is_some_and(|t| t.contains(refund_path))
        })
        .expect("refund call filed under the sub-merchant");
    assert!(s(&refund_call, "requestBody").contains(sub_mch));
    assert_eq!(refund_call["result"], "SUCCESS", "{refund_call}");
}

async fn wechat_v2_sub_merchant_store_pays_queries_and_refunds(b: Backend) {
    sub_merchant_store_pays(b, "v2").await
}

async fn wechat_v3_sub_merchant_store_pays_queries_and_refunds(b: Backend) {
    sub_merchant_store_pays(b, "v3").await
}

/// The cashier page in WeChat, for a store whose sub-merchant has its own
/// AppID: the OAuth runs under the service provider's official account
/// (the config's AppID and AppSecret), so the buyer is a user of that
/// AppID and is paid as such (v2 `openid`, v3 `payer.sp_openid`, and
/// `wx.requestPayment` with the provider's AppID), not as the store's
/// `sub_openid` (which the sandbox, like WeChat, refuses for another
/// AppID's user). Through the API, `openidAppId` says the same, and one
/// that is neither AppID is refused.
async fn sub_merchant_store_pays_on_the_cashier_page(b: Backend, version: &'static str) {
    use crate::cashier::{WECHAT, choose, get, jsapi_pay_data, location};
    let app = spawn_app(b).await;
    let setup = sp_setup(&app, version, "jsapi").await;
    let (shop, sp, sub) = (&setup.shop, &setup.sp, &setup.sub);
    let creds = if version == "v2" {
        &sp["credentialsV2"]
    } else {
        &sp["credentialsV3"]
    };
    let sp_app_id = s(creds, "appId");
    assert_ne!(sp_app_id, s(sub, "subAppId"));

    let no = otn();
    let mut req = order(&no, 266);
    req.store_id = Some("S1".into());
    let created = shop.client.create_order(&req).await.expect("order");
    let (st, _, h) = choose(&app, &created.token, &setup.channel, WECHAT).await;
    assert_eq!(st, reqwest::StatusCode::SEE_OTHER);
    let authorize = location(&h);
    assert!(
        authorize.contains(&format!("appid={sp_app_id}")),
        "{authorize}"
    );
    let (_, _, h) = get(&authorize, WECHAT, "zh-CN").await;
    let (st, html, _) = get(&location(&h), WECHAT, "zh-CN").await;
    assert_eq!(st, reqwest::StatusCode::OK, "{html}");
    let pd = jsapi_pay_data(&html);
    assert_eq!(s(&pd, "appId"), sp_app_id, "{pd}");

    let sub_mch = s(sub, "mchId");
    let create = partner_create_call(&app, sub_mch).await;
    assert_eq!(create["result"], "SUCCESS", "{create}");
    let body = s(&create, "requestBody");
    if version == "v2" {
        assert!(
            body.contains("<openid>") && !body.contains("sub_openid"),
            "{body}"
        );
    } else {
        assert!(
            body.contains("\"sp_openid\"") && !body.contains("sub_openid"),
            "{body}"
        );
    }
    sandbox_pay(&app, "wx-pay", &created.order_id).await;
    let done = app.wait_state(&shop.client, &no, "SUCCESS").await;
    assert_eq!(done.mch_id.as_deref(), Some(sub_mch));

    // Through the API: the provider's user, said so, pays; said nothing,
    // they would be taken for the store's user, which the channel refuses.
    let sp_user = format!(
        "oSbx{}",
        &hex::encode(cashdesk_crypto::digest::sha256(
            format!("sandbox openid\n{sp_app_id}").as_bytes()
        ))[..24]
    );
    let pay = async |openid_app_id: Option<&str>| {
        let (no, _) = store_order(shop, "S1", 120).await;
        let mut body = json!({"outTradeNo": no, "channelId": setup.channel, "openid": sp_user});
        if let Some(a) = openid_app_id {
            body["openidAppId"] = json!(a);
        }
        app.pay_json(&shop.client, body).await
    };
    let paid = pay(Some(sp_app_id)).await.expect("the provider's user");
    assert_eq!(s(&paid["payData"], "appId"), sp_app_id);
    let (no, _) = store_order(shop, "S1", 130).await;
    let typed = shop
        .client
        .pay(&PaymentRequest::new(&no, &setup.channel).with_openid_of(&sp_user, sp_app_id))
        .await
        .expect("through the SDK");
    let typed = serde_json::to_value(&typed.pay_data).expect("payData");
    assert_eq!(s(&typed, "appId"), sp_app_id, "{typed}");
    let (no, _) = store_order(shop, "S1", 140).await;
    let alone = app
        .pay_json(
            &shop.client,
            json!({"outTradeNo": no, "channelId": setup.channel, "openidAppId": sp_app_id}),
        )
        .await
        .expect_err("openidAppId without openid");
    assert!(alone.to_string().contains("openidAppId"), "{alone}");
    let refused = pay(None)
        .await
        .expect_err("another AppID's user as sub_openid");
    assert!(refused.to_string().contains("sub_openid"), "{refused}");
    let refused = pay(Some("wxNeitherOfThem01"))
        .await
        .expect_err("unknown AppID");
    assert!(refused.to_string().contains("openidAppId"), "{refused}");
}

async fn wechat_v2_sub_merchant_store_with_its_own_appid_pays_on_the_cashier_page(b: Backend) {
    sub_merchant_store_pays_on_the_cashier_page(b, "v2").await
}

async fn wechat_v3_sub_merchant_store_with_its_own_appid_pays_on_the_cashier_page(b: Backend) {
    sub_merchant_store_pays_on_the_cashier_page(b, "v3").await
}

// --- Lakala: two stores on one config ---

async fn two_stores_on_one_lakala_config_keep_their_merchant_numbers(b: Backend) {
    let app = spawn_app(b).await;
    let lkl = open(&app, json!({"channelType": "lakala"})).await;
    let config_id = config(
        &app,
        "lakala",
        "v3",
        s(&lkl, "mchId"),
        lkl["credentials"].clone(),
        s(&lkl, "baseUrl"),
    )
    .await;
    let shop = app.merchant(cashdesk_core::SignType::HmacSha256).await;
    let channel = bound_channel(&app, &shop, &config_id, "native").await;
    let mut terminals = Vec::new();
    for st in ["S1", "S2"] {
        app.add_store(&shop.app_id, st).await;
        let t = open(
            &app,
            json!({"channelType": "lakala", "appId": lkl["credentials"]["appId"]}),
        )
        .await;
        put_identity(&app, &shop.app_id, st, &config_id, &t["identity"]).await;
        terminals.push(t);
    }
    let mut orders = Vec::new();
    for (st, t) in ["S1", "S2"].iter().zip(&terminals) {
        let (no, order_id) = store_order(&shop, st, 300).await;
        app.pay_json(
            &shop.client,
            json!({"outTradeNo": no, "channelId": channel}),
        )
        .await
        .expect("pay");
        // Each store's preorder went out under its own merchant number.
        let api = requests(&app, s(t, "merchantNo"), "api").await;
        assert!(
            api.iter().any(|e| e["result"] == "SUCCESS"
                && s(e, "requestBody").contains(&order_id)
                && s(e, "requestBody").contains(&format!("\"term_no\":\"{}\"", s(t, "termNo")))
                && s(e, "requestBody").contains(&format!("cashdesk-store:{st}"))),
            "{st}: {api:?}"
        );
        orders.push((no, order_id, t));
    }
    assert!(
        requests(&app, s(&lkl, "mchId"), "api").await.is_empty(),
        "nothing under the config's own merchant number"
    );
    for (no, order_id, t) in &orders {
        sandbox_pay(&app, "lakala", order_id).await;
        let done = app.wait_state(&shop.client, no, "SUCCESS").await;
        assert_eq!(done.mch_id.as_deref(), Some(s(t, "merchantNo")));
        // Its own notification, under its own merchant number.
        assert!(
            requests(&app, s(t, "merchantNo"), "notify")
                .await
                .iter()
                .any(|e| e["result"] == "ACKED" && s(e, "requestBody").contains(order_id.as_str()))
        );
    }

    // A genuine Lakala notification for S1's order, but from S2's merchant
    // number, is refused: it is checked against the order's store, not
    // against "any merchant of the config". (The sandbox is made to hold
    // the order under S2 by preordering it there with the same keys.)
    let (no, order_id) = store_order(&shop, "S1", 500).await;
    app.pay_json(
        &shop.client,
        json!({"outTradeNo": no, "channelId": channel}),
    )
    .await
    .expect("pay S1");
    let adapter = build_channel(
        ChannelType::Lakala,
        "v3",
        s(&lkl, "mchId"),
        &lkl["credentials"],
        Some(s(&lkl, "baseUrl")),
        &ChannelEnv {
            public_url: app.base_url.clone(),
            notify_url: format!("{}/api/cashier-desk/notify/{config_id}", app.base_url),
            http: HttpSettings::default(),
            extra_root_ca_pems: vec![],
            oauth_base_url: None,
        },
    )
    .expect("adapter");
    adapter
        .create_payment(&PayRequest {
            order_id: OrderId::parse(&order_id).expect("order id"),
            amount: Fen::from_stored(500),
            scene: SceneCode::Native,
            description: "forged".into(),
            payer_id: None,
            payer_app_id: None,
            client_ip: None,
            expire_at: None,
            attach: Some("cashdesk-store:S1".into()),
            return_url: None,
            store: Some(StoreMerchant::new("S2", terminals[1]["identity"].clone())),
        })
        .await
        .expect("preorder at S2");
    let mismatches = app
        .metric(
            "cashdesk_channel_notifications_total",
            &[("result", "mismatch")],
        )
        .await;
    let (status, v) = app
        .sandbox_post(
            "/sandbox/api/pay",
            json!({"channelType": "lakala", "outTradeNo": order_id, "result": "SUCCESS",
                   "mchId": terminals[1]["merchantNo"]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        app.metric_rises(
            "cashdesk_channel_notifications_total",
            &[("result", "mismatch")],
            mismatches,
        )
        .await,
        "the crossed notification was refused"
    );
    let q = shop
        .client
        .query_pay_result(&no, false)
        .await
        .expect("query");
    assert_eq!(state_of(&q), "PAYING", "nothing changed: {q:?}");
    assert_eq!(q.transaction_id, None);
    // S1's own payment then settles it.
    let (status, v) = app
        .sandbox_post(
            "/sandbox/api/pay",
            json!({"channelType": "lakala", "outTradeNo": order_id, "result": "SUCCESS",
                   "mchId": terminals[0]["merchantNo"]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let done = app.wait_state(&shop.client, &no, "SUCCESS").await;
    assert_eq!(done.mch_id.as_deref(), Some(s(&terminals[0], "merchantNo")));

    // Refund: under S1's numbers.
    let refund_no = format!("RF{}", &otn()[1..]);
    let r = shop
        .client
        .create_refund(&CreateRefundRequest::new(&no, &refund_no, 200))
        .await
        .expect("refund");
    assert_eq!(serde_json::to_value(r.state).expect("state"), "SUCCESS");
    assert!(
        requests(&app, s(&terminals[0], "merchantNo"), "api")
            .await
            .iter()
            .any(|e| e["target"]
                .as_str()
                .is_some_and(|t| t.ends_with("/relation/refund"))
                && e["result"] == "SUCCESS")
    );
}

// --- Alipay: app authorization ---

async fn alipay_store_pays_under_its_app_authorization(b: Backend) {
    let app = spawn_app(b).await;
    let isv = open(&app, json!({"channelType": "ali-pay"})).await;
    let config_id = config(
        &app,
        "ali-pay",
        "v2",
        s(&isv, "mchId"),
        isv["credentials"].clone(),
        s(&isv, "baseUrl"),
    )
    .await;
    let auth = open(
        &app,
        json!({"channelType": "ali-pay", "isvAppId": isv["credentials"]["appId"]}),
    )
    .await;
    let shop = app.merchant(cashdesk_core::SignType::HmacSha256).await;
    app.add_store(&shop.app_id, "S1").await;
    put_identity(&app, &shop.app_id, "S1", &config_id, &auth["identity"]).await;
    let channel = bound_channel(&app, &shop, &config_id, "qr").await;
    let seller = s(&auth, "sellerId");

    let (no, order_id) = store_order(&shop, "S1", 50).await;
    let paid = app
        .pay_json(
            &shop.client,
            json!({"outTradeNo": no, "channelId": channel}),
        )
        .await
        .expect("pay");
    assert!(paid["payData"]["qrCode"].is_string(), "{paid}");
    // The precreate carried the store's app_auth_token and is filed under
    // the authorizing merchant.
    let api = requests(&app, seller, "api").await;
    let create = api
        .iter()
        .find(|e| s(e, "target").contains("alipay.trade.precreate"))
        .unwrap_or_else(|| panic!("{api:?}"));
    assert_eq!(create["result"], "SUCCESS", "{create}");
    assert!(
        s(create, "requestBody").contains(&format!("app_auth_token={}", s(&auth, "appAuthToken"))),
        "{create}"
    );
    assert_eq!(
        shop.client
            .query_pay_result(&no, false)
            .await
            .expect("query")
            .mch_id
            .as_deref(),
        Some(seller)
    );

    sandbox_pay(&app, "ali-pay", &order_id).await;
    let done = app.wait_state(&shop.client, &no, "SUCCESS").await;
    assert_eq!(done.mch_id.as_deref(), Some(seller));
    let synced = shop.client.query_pay_result(&no, true).await.expect("sync");
    assert_eq!(synced.transaction_id, done.transaction_id);
    let refund_no = format!("RF{}", &otn()[1..]);
    let r = shop
        .client
        .create_refund(&CreateRefundRequest::new(&no, &refund_no, 20))
        .await
        .expect("refund");
    assert_eq!(serde_json::to_value(r.state).expect("state"), "SUCCESS");
    assert!(requests(&app, seller, "api").await.iter().any(|e| {
        s(e, "target").contains("alipay.trade.refund")
            && e["result"] == "SUCCESS"
            && s(e, "requestBody").contains("app_auth_token")
    }));

    // An order without a store is the config's own trade (no token).
    let (no2, order2) = shop_order(&shop, 30).await;
    app.pay_json(
        &shop.client,
        json!({"outTradeNo": no2, "channelId": channel}),
    )
    .await
    .expect("pay");
    sandbox_pay(&app, "ali-pay", &order2).await;
    let done = app.wait_state(&shop.client, &no2, "SUCCESS").await;
    assert_eq!(done.mch_id.as_deref(), Some(s(&isv, "mchId")));
    assert!(
        requests(&app, s(&isv, "mchId"), "api")
            .await
            .iter()
            .all(|e| !s(e, "requestBody").contains("app_auth_token"))
    );
}

async fn shop_order(shop: &TestMerchant, amount: i64) -> (String, String) {
    let no = otn();
    let created = shop
        .client
        .create_order(&order(&no, amount))
        .await
        .expect("order");
    (no, created.order_id)
}

// --- the chain ---

/// One app, three stores; a WeChat service provider (v3), an Alipay
/// third-party app and a Lakala app, all opened on the sandbox through its
/// merchants API; every store has its own identity at each (sub-merchant,
/// app authorization, store terminal) and pays one order through each
/// channel, each to its own merchant.
async fn three_store_chain_pays_through_each_store_identity(b: Backend) {
    let app = spawn_app(b).await;
    let shop = app.merchant(cashdesk_core::SignType::HmacSha256).await;
    let sp = open(
        &app,
        json!({"channelType": "wx-pay", "serviceProvider": true}),
    )
    .await;
    let isv = open(&app, json!({"channelType": "ali-pay"})).await;
    let lkl = open(&app, json!({"channelType": "lakala"})).await;
    let wx_config = config(
        &app,
        "wx-pay",
        "v3",
        s(&sp, "mchId"),
        sp["credentialsV3"].clone(),
        s(&sp, "baseUrl"),
    )
    .await;
    let ali_config = config(
        &app,
        "ali-pay",
        "v2",
        s(&isv, "mchId"),
        isv["credentials"].clone(),
        s(&isv, "baseUrl"),
    )
    .await;
    let lkl_config = config(
        &app,
        "lakala",
        "v3",
        s(&lkl, "mchId"),
        lkl["credentials"].clone(),
        s(&lkl, "baseUrl"),
    )
    .await;
    let channels = [
        (
            "wx-pay",
            bound_channel(&app, &shop, &wx_config, "native").await,
        ),
        (
            "ali-pay",
            bound_channel(&app, &shop, &ali_config, "qr").await,
        ),
        (
            "lakala",
            bound_channel(&app, &shop, &lkl_config, "native").await,
        ),
    ];
    let stores = ["SH-001", "BJ-002", "SZ-003"];
    // store → channel type → the merchant it is paid to there.
    let mut merchants = std::collections::HashMap::new();
    for st in stores {
        app.add_store(&shop.app_id, st).await;
        let sub = open(
            &app,
            json!({"channelType": "wx-pay", "spMchId": sp["mchId"]}),
        )
        .await;
        let auth = open(
            &app,
            json!({"channelType": "ali-pay", "isvAppId": isv["credentials"]["appId"]}),
        )
        .await;
        let term = open(
            &app,
            json!({"channelType": "lakala", "appId": lkl["credentials"]["appId"]}),
        )
        .await;
        for (config_id, identity, merchant) in [
            (&wx_config, &sub["identity"], s(&sub, "mchId")),
            (&ali_config, &auth["identity"], s(&auth, "sellerId")),
            (&lkl_config, &term["identity"], s(&term, "merchantNo")),
        ] {
            let v = put_identity(&app, &shop.app_id, st, config_id, identity).await;
            assert_eq!(s(&v, "mchId"), merchant);
        }
        merchants.insert((st, "wx-pay"), s(&sub, "mchId").to_owned());
        merchants.insert((st, "ali-pay"), s(&auth, "sellerId").to_owned());
        merchants.insert((st, "lakala"), s(&term, "merchantNo").to_owned());
    }
    let mut paid = Vec::new();
    for st in stores {
        for (channel_type, channel) in &channels {
            let (no, order_id) = store_order(&shop, st, 1234).await;
            let created = app
                .pay_json(
                    &shop.client,
                    json!({"outTradeNo": no, "channelId": channel}),
                )
                .await
                .unwrap_or_else(|e| panic!("{st} {channel_type}: {e:?}"));
            assert_eq!(s(&created, "channelType"), *channel_type);
            let merchant = &merchants[&(st, *channel_type)];
            assert!(
                requests(&app, merchant, "api")
                    .await
                    .iter()
                    .any(|e| e["result"] == "SUCCESS" && s(e, "requestBody").contains(&order_id)),
                "{st} {channel_type}: the channel call went to {merchant}"
            );
            sandbox_pay(&app, channel_type, &order_id).await;
            paid.push((st, *channel_type, no, merchant.clone()));
        }
    }
    for (st, channel_type, no, merchant) in &paid {
        let done = app.wait_state(&shop.client, no, "SUCCESS").await;
        assert_eq!(
            (done.store_id.as_deref(), done.mch_id.as_deref()),
            (Some(*st), Some(merchant.as_str())),
            "{st} {channel_type}"
        );
    }
    // The operator sees each store's three payments.
    for st in stores {
        let listed = app
            .admin
            .list_orders(&OrderQuery {
                app_id: Some(shop.app_id.clone()),
                store_id: Some(st.into()),
                state: Some("SUCCESS".into()),
                ..OrderQuery::default()
            })
            .await
            .expect("orders");
        let types: std::collections::BTreeSet<&str> = listed
            .as_array()
            .expect("list")
            .iter()
            .map(|o| s(o, "channelType"))
            .collect();
        assert_eq!(
            types.into_iter().collect::<Vec<_>>(),
            ["ali-pay", "lakala", "wx-pay"],
            "{st}"
        );
    }
}
