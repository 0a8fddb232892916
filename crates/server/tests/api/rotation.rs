//! Credentials change without a restart (issue 13, point 6): a channel
//! config's credentials replaced by a merge patch, validated by the
//! adapter, audited and effective on every instance; an app's key rotated
//! with an overlap window in which both keys are accepted.

use std::time::Duration;

use cashdesk_core::SignType;
use cashdesk_crypto::Secret;
use cashdesk_crypto::rsa::RsaPrivateKey;
use cashdesk_sdk::{Client, Credentials, RegisterAppRequest, SdkError};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;
use crate::receiver::Receiver;

backend_tests!(
    channel_credentials_are_replaced_validated_and_audited,
    channel_credentials_change_reaches_every_instance,
    app_key_rotation_accepts_both_keys_until_the_deadline,
    app_key_rotation_moves_notifications_when_the_new_key_is_used,
    rsa_app_rotates_its_public_key,
    app_key_rotation_refuses_bad_input,
);

/// Pays nothing: asks the channel to open a mini-program payment of a new
/// order and returns the SDK's answer.
async fn try_pay(app: &TestApp, setup: &WxSetup) -> Result<Value, SdkError> {
    let client = &setup.shop.client;
    let (no, _) = app.new_order(client, 100).await;
    app.pay_json(
        client,
        json!({"outTradeNo": no, "channelId": setup.channel("mini"), "openid": "oBuyer0001"}),
    )
    .await
}

/// The audit entries about `target`.
async fn audit_actions(app: &TestApp, target: &str) -> Vec<Value> {
    app.admin
        .request(
            cashdesk_sdk::Method::GET,
            "/api/admin/audit?limit=1000",
            None,
        )
        .await
        .expect("audit")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["target"] == target)
        .collect()
}

/// The `data` of an API error `code` (HTTP status from the code).
#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, SdkError>, code: i64) -> Value {
    let status = u16::try_from(code / 10).expect("status");
    assert_api_error(result, status, code).unwrap_or(Value::Null)
}

async fn channel_credentials_are_replaced_validated_and_audited(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v2").await;
    try_pay(&app, &setup).await.expect("pays before");

    // Refused by the adapter: a clear 4000 naming the field, nothing changes.
    for bad in [
        json!({"signType": "SHA1"}),
        json!({"keyPem": null}),
        json!({"apiKey": "with space"}),
    ] {
        let err = app
            .admin
            .replace_channel_credentials(&setup.config_id, &bad)
            .await
            .map(|_| ());
        let data = refused(err, 4000);
        assert_eq!(data["field"], "credentials", "{bad}");
    }
    for (body, field) in [
        (json!({}), "credentials"),
        (json!({"credentials": {}}), "credentials"),
        (json!({"credentials": "apiKey"}), "credentials"),
    ] {
        let resp = app
            .admin
            .request(
                cashdesk_sdk::Method::POST,
                &format!("/api/admin/channel-configs/{}/credentials", setup.config_id),
                Some(&body),
            )
            .await
            .map(|_| ());
        assert_eq!(refused(resp, 4000)["field"], field, "{body}");
    }
    let unknown = app
        .admin
        .replace_channel_credentials("C01ARZ3NDEKTSV4RRFFQ69G5FAV", &json!({"apiKey": "k"}))
        .await
        .map(|_| ());
    refused(unknown, 4040);
    let view = app
        .admin
        .get_channel_config(&setup.config_id)
        .await
        .expect("config");
    assert!(view.get("credentialsUpdatedAt").is_none(), "{view}");
    try_pay(&app, &setup).await.expect("still pays");

    // A wrong key is accepted (it is well formed) and used at once: the
    // channel refuses the signature.
    let wrong = "0123456789abcdef0123456789abcdef";
    let view = app
        .admin
        .replace_channel_credentials(&setup.config_id, &json!({"apiKey": wrong}))
        .await
        .expect("replaced");
    assert_eq!(view["credentials"]["apiKey"], "***");
    assert_eq!(view["credentials"]["certPem"], "***", "the rest stays");
    assert!(view["credentialsUpdatedAt"].is_string(), "{view}");
    let err = try_pay(&app, &setup).await.map(|_| ());
    refused(err, 5020);

    // The right key back: paying again, no restart.
    let right = setup.creds()["apiKey"].as_str().expect("apiKey").to_owned();
    app.admin
        .replace_channel_credentials(&setup.config_id, &json!({"apiKey": right}))
        .await
        .expect("replaced back");
    try_pay(&app, &setup).await.expect("pays after");

    // Audited with the key names, never a value.
    let entries = audit_actions(&app, &setup.config_id).await;
    let changes: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "channel_config.credentials")
        .collect();
    assert_eq!(changes.len(), 2, "{entries:#?}");
    for e in &changes {
        assert_eq!(e["detail"]["changedKeys"], json!(["apiKey"]), "{e}");
        let text = e.to_string();
        assert!(!text.contains(wrong) && !text.contains(&right), "{text}");
    }
}

async fn channel_credentials_change_reaches_every_instance(b: Backend) {
    let first = spawn_app(b).await;
    let second = spawn_sibling(&first).await;
    let setup = first.wechat_setup("v2").await;
    // The second instance has built (and cached) the adapter.
    let on_second = Client::new(
        &second.base_url,
        &setup.shop.app_id,
        setup.shop.credentials.clone(),
    )
    .expect("client");
    let pay_on = |client: &Client| {
        let client = client.clone();
        let channel = setup.channel("mini").to_owned();
        let first = &first;
        async move {
            let (no, _) = first.new_order(&client, 100).await;
            first
                .pay_json(
                    &client,
                    json!({"outTradeNo": no, "channelId": channel, "openid": "oBuyer0001"}),
                )
                .await
        }
    };
    pay_on(&on_second).await.expect("second pays");

    // Changed through the first instance: the second uses the new
    // credentials on its next call, without a restart or a signal.
    first
        .admin
        .replace_channel_credentials(
            &setup.config_id,
            &json!({"apiKey": "0123456789abcdef0123456789abcdef"}),
        )
        .await
        .expect("replaced");
    let err = pay_on(&on_second).await.map(|_| ());
    refused(err, 5020);
    let right = setup.creds()["apiKey"].clone();
    first
        .admin
        .replace_channel_credentials(&setup.config_id, &json!({ "apiKey": right }))
        .await
        .expect("replaced back");
    pay_on(&on_second).await.expect("second pays again");
}

fn hmac_client(app: &TestApp, app_id: &str, key: &str) -> Client {
    Client::new(
        &app.base_url,
        app_id,
        Credentials::hmac_sha256(key.to_owned()),
    )
    .expect("client")
}

async fn app_key_rotation_accepts_both_keys_until_the_deadline(b: Backend) {
    let app = spawn_app_unbound(b).await;
    let app_id = app.demo_app_id.clone();
    let old = app.client.clone();

    let rotated = app
        .admin
        .rotate_app_key(&app_id, Some(2), None)
        .await
        .expect("rotated");
    let new_key = rotated["appKey"].as_str().expect("new key").to_owned();
    assert_ne!(new_key, app.demo_app_key);
    assert!(rotated["previousKeyValidUntil"].is_string(), "{rotated}");
    let new = hmac_client(&app, &app_id, &new_key);

    // Inside the window both keys sign, and each gets answers it can
    // verify (the SDK checks the answer's signature).
    old.create_order(&order(&otn(), 100))
        .await
        .expect("old key inside the window");
    let view = app.admin.get_app(&app_id).await.expect("app");
    assert_eq!(view["keyConfirmed"], false, "{view}");
    new.create_order(&order(&otn(), 100))
        .await
        .expect("new key");
    let view = app.admin.get_app(&app_id).await.expect("app");
    assert_eq!(view["keyConfirmed"], true, "{view}");
    old.create_order(&order(&otn(), 100))
        .await
        .expect("old key still inside the window, answered with it");

    // After the deadline only the new key.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let err = old.create_order(&order(&otn(), 100)).await.map(|_| ());
    refused(err, 4014);
    new.create_order(&order(&otn(), 100))
        .await
        .expect("new key after the window");
    let view = app.admin.get_app(&app_id).await.expect("app");
    assert!(view.get("previousKeyValidUntil").is_none(), "{view}");

    // Overlap 0: the key just replaced is refused at once.
    let again = app
        .admin
        .rotate_app_key(&app_id, Some(0), None)
        .await
        .expect("rotated again");
    let err = new.create_order(&order(&otn(), 100)).await.map(|_| ());
    refused(err, 4014);
    hmac_client(&app, &app_id, again["appKey"].as_str().expect("key"))
        .create_order(&order(&otn(), 100))
        .await
        .expect("newest key");

    // Audited, never with a key.
    let entries = audit_actions(&app, &app_id).await;
    let rotations: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "app.rotate_key")
        .collect();
    assert_eq!(rotations.len(), 2, "{entries:#?}");
    assert!(!format!("{entries:?}").contains(&new_key));
}

async fn app_key_rotation_moves_notifications_when_the_new_key_is_used(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.notify_schedule = Some("200ms,200ms,200ms".into());
    })
    .await;
    let receiver = Receiver::start().await;
    let m = app
        .merchant_with(RegisterAppRequest {
            app_name: "rotating shop".into(),
            notify_url: Some(receiver.url("/notify")),
            ..RegisterAppRequest::default()
        })
        .await;
    let app_id = m.app_id.clone();
    let old_credentials = m.credentials.clone();
    receiver.trust(&app_id, &old_credentials);
    let setup = app.wechat_setup_for("v2", "HMAC-SHA256", |_| {}, m).await;

    let pay = |client: Client| {
        let app = &app;
        let setup = &setup;
        async move {
            let (no, order_id) = app.new_order(&client, 100).await;
            app.pay_json(
                &client,
                json!({"outTradeNo": no, "channelId": setup.channel("mini"), "openid": "oBuyer0001"}),
            )
            .await
            .expect("pay");
            app.sandbox_pay(&order_id).await;
            order_id
        }
    };

    // Rotated, the merchant has not deployed the new key: its
    // notifications are still signed with the key it has.
    let rotated = app
        .admin
        .rotate_app_key(&app_id, Some(3600), None)
        .await
        .expect("rotated");
    let new_key = rotated["appKey"].as_str().expect("key").to_owned();
    let first = pay(setup.shop.client.clone()).await;
    assert!(
        receiver
            .wait(Duration::from_secs(10), |r| !r
                .acked_for(&first, "PAY_SUCCESS")
                .is_empty())
            .await,
        "verified with the old key: {:?}",
        receiver.unverified()
    );

    // The merchant signs with the new key: from then on notifications are
    // signed with it.
    let new_credentials = Credentials::Shared {
        sign_type: SignType::HmacSha256,
        app_key: Secret::new(new_key.clone()),
    };
    receiver.trust(&app_id, &new_credentials);
    let second = pay(hmac_client(&app, &app_id, &new_key)).await;
    assert!(
        receiver
            .wait(Duration::from_secs(10), |r| !r
                .acked_for(&second, "PAY_SUCCESS")
                .is_empty())
            .await,
        "verified with the new key: {:?}",
        receiver.unverified()
    );
}

async fn rsa_app_rotates_its_public_key(b: Backend) {
    let app = spawn_app(b).await;
    let m = app.merchant(SignType::Rsa2).await;
    let platform = app.platform_keys().await.rsa_public_key_pem;

    let err = app
        .admin
        .rotate_app_key(&m.app_id, None, None)
        .await
        .map(|_| ());
    assert_eq!(refused(err, 4000)["field"], "publicKeyPem");
    let err = app
        .admin
        .rotate_app_key(&m.app_id, None, Some("not a key"))
        .await
        .map(|_| ());
    assert_eq!(refused(err, 4000)["field"], "publicKeyPem");

    let next = RsaPrivateKey::generate_2048().expect("rsa key");
    let rotated = app
        .admin
        .rotate_app_key(&m.app_id, Some(600), Some(&next.public_key().to_spki_pem()))
        .await
        .expect("rotated");
    assert!(rotated.get("appKey").is_none(), "{rotated}");
    let new = Client::new(
        &app.base_url,
        &m.app_id,
        Credentials::Rsa {
            private_key_pem: Secret::new(next.to_pkcs8_pem()),
            platform_public_key_pem: platform,
        },
    )
    .expect("client");
    new.create_order(&order(&otn(), 100))
        .await
        .expect("new key");
    m.client
        .create_order(&order(&otn(), 100))
        .await
        .expect("old key inside the window");
}

async fn app_key_rotation_refuses_bad_input(b: Backend) {
    let app = spawn_app_unbound(b).await;
    for (body, field) in [
        (json!({"overlapSeconds": -1}), "overlapSeconds"),
        (json!({"overlapSeconds": 2_592_001}), "overlapSeconds"),
        (json!({"overlapSeconds": "60"}), "overlapSeconds"),
        (json!({"publicKeyPem": "x"}), "publicKeyPem"),
    ] {
        let err = app
            .admin
            .request(
                cashdesk_sdk::Method::POST,
                &format!("/api/admin/apps/{}/rotate-key", app.demo_app_id),
                Some(&body),
            )
            .await
            .map(|_| ());
        assert_eq!(refused(err, 4000)["field"], field, "{body}");
    }
    let err = app
        .admin
        .rotate_app_key("app0000000000000000", None, None)
        .await
        .map(|_| ());
    refused(err, 4040);
    // Nothing changed: the key still signs and nothing overlaps.
    app.client
        .create_order(&order(&otn(), 100))
        .await
        .expect("key unchanged");
    let view = app.admin.get_app(&app.demo_app_id).await.expect("app");
    assert!(view.get("previousKeyValidUntil").is_none(), "{view}");
    assert_eq!(view["keyConfirmed"], true);
}
