//! Request signatures for all five sign types, signed responses, sandbox
//! help, and nonce replay across two instances sharing one database.

use cashdesk_core::SignType;
use cashdesk_crypto::apisig;
use cashdesk_sdk::{Client, Credentials, Method, SdkError, SignatureVerifier};

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(
    every_sign_type_round_trips,
    responses_are_signed_and_tampering_is_detected,
    sandbox_returns_the_expected_string_to_sign,
    nonce_replay_is_refused_across_two_instances,
    platform_keys_are_stable_across_instances,
);

async fn every_sign_type_round_trips(b: Backend) {
    let app = spawn_app(b).await;
    for sign_type in [
        SignType::HmacSha256,
        SignType::HmacSm3,
        SignType::Md5,
        SignType::Rsa2,
        SignType::Sm2,
    ] {
        let m = app.merchant(sign_type).await;
        let no = otn();
        // The SDK verifies every response signature before parsing it.
        let created = m
            .client
            .create_order(&order(&no, 10))
            .await
            .unwrap_or_else(|e| panic!("{sign_type}: {e}"));
        assert_eq!(created.signature.app_id, m.app_id);
        let q = m
            .client
            .query_pay_result(&no, false)
            .await
            .unwrap_or_else(|e| panic!("{sign_type}: {e}"));
        assert_eq!(q.order_id, created.order_id);
        // The order signature uses the app's scheme too.
        let verifier = SignatureVerifier::new(&m.app_id, &m.credentials).expect("verifier");
        let s = &created.signature;
        let msg = format!(
            "{}\n{}\n{}\n{}\n",
            s.app_id, s.out_trade_no, s.timestamp, s.nonce
        );
        match &m.credentials {
            Credentials::Shared { app_key, .. } => {
                apisig::Verifier::Shared(sign_type, app_key.expose().as_bytes())
                    .verify(msg.as_bytes(), &s.signature)
                    .unwrap_or_else(|e| panic!("{sign_type}: order signature: {e}"))
            }
            _ => {
                let keys = app.platform_keys().await;
                match sign_type {
                    SignType::Rsa2 => {
                        let k =
                            cashdesk_crypto::rsa::RsaPublicKey::from_pem(&keys.rsa_public_key_pem)
                                .expect("rsa");
                        apisig::Verifier::Rsa(&k)
                            .verify(msg.as_bytes(), &s.signature)
                            .expect("RSA order signature");
                    }
                    _ => {
                        let k =
                            cashdesk_crypto::sm::Sm2PublicKey::from_pem(&keys.sm2_public_key_pem)
                                .expect("sm2");
                        apisig::Verifier::Sm2(&k)
                            .verify(msg.as_bytes(), &s.signature)
                            .expect("SM2 order signature");
                    }
                }
            }
        }
        assert_eq!(verifier.sign_type(), sign_type);
    }
    // A client holding the wrong platform key rejects cashdesk's answers.
    let m = app.merchant(SignType::Rsa2).await;
    let Credentials::Rsa {
        private_key_pem, ..
    } = m.credentials.clone()
    else {
        panic!("rsa")
    };
    let other = cashdesk_crypto::rsa::RsaPrivateKey::generate_2048().expect("key");
    let wrong = Client::new(
        &app.base_url,
        &m.app_id,
        Credentials::Rsa {
            private_key_pem,
            platform_public_key_pem: other.public_key().to_spki_pem(),
        },
    )
    .expect("client");
    match wrong.create_order(&order(&otn(), 1)).await {
        Err(SdkError::BadResponseSignature(_)) => {}
        other => panic!("expected BadResponseSignature, got {other:?}"),
    }
}

async fn responses_are_signed_and_tampering_is_detected(b: Backend) {
    let app = spawn_app(b).await;
    let body = serde_json::to_vec(&order(&otn(), 7)).expect("json");
    let resp = app
        .signed_raw(
            &app.client,
            Method::POST,
            "/api/cashier-desk/unified/orders",
            &body,
            now(),
            "n-resp-1",
        )
        .await;
    assert_eq!(resp.status.as_u16(), 200);
    let verifier = app.client.verifier().expect("verifier");
    verifier
        .verify_response(&resp.headers, &resp.body)
        .expect("response signature");
    assert_eq!(
        resp.headers
            .get(apisig::HEADER_APP_ID)
            .and_then(|v| v.to_str().ok()),
        Some(app.demo_app_id.as_str())
    );
    let mut tampered = resp.body.clone();
    let pos = tampered.iter().position(|b| *b == b'1').expect("a digit");
    tampered[pos] = b'2';
    assert!(verifier.verify_response(&resp.headers, &tampered).is_err());

    // Errors after the signature is proven are signed too (here: 4000).
    let bad = br#"{"outTradeNo":"x","amount":0,"orderTitle":"t"}"#;
    let resp = app
        .signed_raw(
            &app.client,
            Method::POST,
            "/api/cashier-desk/unified/orders",
            bad,
            now(),
            "n-resp-2",
        )
        .await;
    assert_envelope(&resp, 400, 4000);
    verifier
        .verify_response(&resp.headers, &resp.body)
        .expect("signed error");

    // Refusals before the app is proven are unsigned.
    let resp = app
        .raw(
            Method::POST,
            "/api/cashier-desk/unified/orders",
            bad,
            Default::default(),
        )
        .await;
    assert_envelope(&resp, 401, 4010);
    assert!(resp.headers.get(apisig::HEADER_SIGNATURE).is_none());
}

async fn sandbox_returns_the_expected_string_to_sign(b: Backend) {
    let app = spawn_app(b.clone()).await;
    let wrong = Client::new(
        &app.base_url,
        &app.demo_app_id,
        Credentials::hmac_sha256("not-the-key"),
    )
    .expect("client");
    let path = "/api/cashier-desk/unified/orders";
    let body = serde_json::to_vec(&order(&otn(), 5)).expect("json");
    let ts = now();
    let resp = app
        .signed_raw(&wrong, Method::POST, path, &body, ts, "nonce-sbx-1")
        .await;
    let env = assert_envelope(&resp, 401, 4014);
    let expected = String::from_utf8(apisig::request_message(
        "POST",
        path,
        &ts.to_string(),
        "nonce-sbx-1",
        &body,
    ))
    .expect("utf8");
    assert_eq!(
        env["data"]["expectedStringToSign"].as_str(),
        Some(expected.as_str())
    );
    // The nonce was not consumed: the right key may use it now.
    let ok = app
        .signed_raw(&app.client, Method::POST, path, &body, ts, "nonce-sbx-1")
        .await;
    assert_eq!(ok.status.as_u16(), 200, "{:?}", ok.json());
    drop(app);

    // Outside sandbox mode the hint is not given.
    let prod = spawn_app_with(b, |c| c.sandbox = Some(false)).await;
    let wrong = Client::new(
        &prod.base_url,
        &prod.demo_app_id,
        Credentials::hmac_sha256("nope"),
    )
    .expect("client");
    let resp = prod
        .signed_raw(&wrong, Method::POST, path, &body, now(), "nonce-sbx-2")
        .await;
    let env = assert_envelope(&resp, 401, 4014);
    assert!(env["data"].is_null(), "{env}");
}

async fn nonce_replay_is_refused_across_two_instances(b: Backend) {
    let first = spawn_app(b).await;
    let second = spawn_sibling(&first).await;
    assert_ne!(first.base_url, second.base_url);
    let no = otn();
    let body = serde_json::to_vec(&order(&no, 42)).expect("json");
    let path = "/api/cashier-desk/unified/orders";
    let ts = now();
    let r1 = first
        .signed_raw(
            &first.client,
            Method::POST,
            path,
            &body,
            ts,
            "shared-nonce-1",
        )
        .await;
    assert_eq!(r1.status.as_u16(), 200);
    // The same signed request replayed against the other instance.
    let r2 = second
        .signed_raw(
            &first.client,
            Method::POST,
            path,
            &body,
            ts,
            "shared-nonce-1",
        )
        .await;
    assert_envelope(&r2, 401, 4015);
    // And against the first one.
    let r3 = first
        .signed_raw(
            &first.client,
            Method::POST,
            path,
            &body,
            ts,
            "shared-nonce-1",
        )
        .await;
    assert_envelope(&r3, 401, 4015);
    // A fresh nonce on the second instance sees the order the first created.
    let client2 = Client::new(
        &second.base_url,
        &first.demo_app_id,
        Credentials::hmac_sha256(first.demo_app_key.clone()),
    )
    .expect("client");
    assert_eq!(
        client2
            .query_pay_result(&no, false)
            .await
            .expect("query")
            .amount,
        42
    );
    assert_eq!(second.order_count().await, 1);
}

async fn platform_keys_are_stable_across_instances(b: Backend) {
    let first = spawn_app(b).await;
    let keys1 = first.platform_keys().await;
    assert!(keys1.rsa_public_key_pem.contains("BEGIN PUBLIC KEY"));
    assert!(keys1.sm2_public_key_pem.contains("BEGIN PUBLIC KEY"));
    let second = spawn_sibling(&first).await;
    assert_eq!(second.platform_keys().await, keys1);
    // The second start generated nothing new.
    assert_eq!(second.demo_app_id, first.demo_app_id);
}
