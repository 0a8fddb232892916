//! Registration: operator token, closed and open registration, key rules.

use cashdesk_core::SignType;
use cashdesk_sdk::{Client, Credentials, HeaderMap, Method};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(
    register_with_operator_token,
    register_without_token_is_closed,
    open_registration,
    registration_validates_keys_and_fields,
);

const REGISTER: &str = "/api/cashier-desk-sa/register";

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    h.insert("content-type", "application/json".parse().expect("header"));
    h
}

async fn app_count(app: &TestApp) -> usize {
    app.store.list_apps().await.expect("apps").len()
}

async fn register_with_operator_token(b: Backend) {
    let app = spawn_app(b).await;
    let body = json!({"appName": "Noodle bar", "notifyUrl": "https://noodle.example.com/n", "refundReview": true});
    let resp = app
        .raw(
            Method::POST,
            REGISTER,
            body.to_string().as_bytes(),
            bearer(&app.admin_token),
        )
        .await;
    let env = assert_envelope(&resp, 200, 1000);
    let app_id = env["data"]["appId"].as_str().expect("appId").to_owned();
    let app_key = env["data"]["appKey"].as_str().expect("appKey").to_owned();
    assert_eq!(env["data"]["signType"], "HMAC-SHA256");
    assert!(app_id.starts_with("app") && app_id.len() == 19, "{app_id}");
    assert!(app_id[3..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(app_key.len() >= 32);

    // The key works, and is stored sealed (not in clear).
    let client = Client::new(
        &app.base_url,
        &app_id,
        Credentials::hmac_sha256(app_key.clone()),
    )
    .expect("client");
    client
        .create_order(&order(&otn(), 1))
        .await
        .expect("order by the new app");
    let stored = app
        .store
        .get_app(&cashdesk_core::AppId::parse(&app_id).expect("id"))
        .await
        .expect("store")
        .expect("app");
    assert!(
        !stored
            .app_key_sealed
            .windows(app_key.len())
            .any(|w| w == app_key.as_bytes())
    );
    assert!(stored.refund_review);
    // Never shown again.
    let view = app.admin.get_app(&app_id).await.expect("view");
    assert!(!view.to_string().contains(&app_key));
    assert_eq!(view["notifyUrl"], "https://noodle.example.com/n");
}

async fn register_without_token_is_closed(b: Backend) {
    let app = spawn_app(b).await;
    let before = app_count(&app).await;
    let body = json!({"appName": "Sneaky"}).to_string();
    let mut plain = HeaderMap::new();
    plain.insert("content-type", "application/json".parse().expect("header"));
    for headers in [plain, bearer("wrong-token-wrong-token"), bearer("")] {
        let resp = app
            .raw(Method::POST, REGISTER, body.as_bytes(), headers)
            .await;
        assert_envelope(&resp, 403, 4032);
    }
    // Closed beats a bad body: nobody learns the validation rules.
    let resp = app
        .raw(Method::POST, REGISTER, b"{", HeaderMap::new())
        .await;
    assert_envelope(&resp, 403, 4032);
    assert_eq!(app_count(&app).await, before);
}

async fn open_registration(b: Backend) {
    let app = spawn_app_with(b, |c| c.open_registration = true).await;
    let body = json!({"appName": "Open shop", "signType": "MD5"}).to_string();
    let resp = app
        .raw(Method::POST, REGISTER, body.as_bytes(), HeaderMap::new())
        .await;
    let env = assert_envelope(&resp, 200, 1000);
    assert_eq!(env["data"]["signType"], "MD5");
    let id = env["data"]["appId"].as_str().expect("id");
    let key = env["data"]["appKey"].as_str().expect("key");
    let client = Client::new(
        &app.base_url,
        id,
        Credentials::Shared {
            sign_type: SignType::Md5,
            app_key: cashdesk_sdk::Secret::new(key),
        },
    )
    .expect("client");
    client
        .create_order(&order(&otn(), 3))
        .await
        .expect("MD5 app works");
    let audit = app.admin.list_audit(None).await.expect("audit");
    assert!(
        audit
            .as_array()
            .expect("array")
            .iter()
            .any(|a| a["actor"] == "open-registration" && a["target"] == id),
        "{audit}"
    );
}

async fn registration_validates_keys_and_fields(b: Backend) {
    let app = spawn_app(b).await;
    let before = app_count(&app).await;
    let rsa_pub = cashdesk_crypto::rsa::RsaPrivateKey::generate_2048()
        .expect("rsa")
        .public_key()
        .to_spki_pem();
    let sm2_pub = cashdesk_crypto::sm::Sm2PrivateKey::generate()
        .public_key()
        .to_spki_pem();
    for (body, field) in [
        (json!({}), "appName"),
        (json!({"appName": ""}), "appName"),
        (json!({"appName": "x".repeat(65)}), "appName"),
        (json!({"appName": "x", "signType": "SHA1"}), "signType"),
        (json!({"appName": "x", "signType": "RSA2"}), "publicKeyPem"),
        (json!({"appName": "x", "signType": "SM2"}), "publicKeyPem"),
        (
            json!({"appName": "x", "signType": "RSA2", "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}),
            "publicKeyPem",
        ),
        (
            json!({"appName": "x", "signType": "RSA2", "publicKeyPem": sm2_pub}),
            "publicKeyPem",
        ),
        (
            json!({"appName": "x", "signType": "SM2", "publicKeyPem": rsa_pub}),
            "publicKeyPem",
        ),
        (
            json!({"appName": "x", "signType": "HMAC-SHA256", "publicKeyPem": rsa_pub}),
            "publicKeyPem",
        ),
        (
            json!({"appName": "x", "refundReview": "yes"}),
            "refundReview",
        ),
        (
            json!({"appName": "x", "notifyUrl": "ftp://x.example.com"}),
            "notifyUrl",
        ),
    ] {
        let resp = app
            .raw(
                Method::POST,
                REGISTER,
                body.to_string().as_bytes(),
                bearer(&app.admin_token),
            )
            .await;
        let env = assert_envelope(&resp, 400, 4000);
        assert_eq!(env["data"]["field"].as_str(), Some(field), "{body}: {env}");
    }
    assert_eq!(app_count(&app).await, before);
    // The good ones.
    for (t, pem) in [("RSA2", rsa_pub), ("SM2", sm2_pub)] {
        let body = json!({"appName": "k", "signType": t, "publicKeyPem": pem});
        let resp = app
            .raw(
                Method::POST,
                REGISTER,
                body.to_string().as_bytes(),
                bearer(&app.admin_token),
            )
            .await;
        assert_envelope(&resp, 200, 1000);
    }
    assert_eq!(app_count(&app).await, before + 2);
}
