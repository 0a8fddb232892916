//! Notification verification: signed over the notify URL's path and
//! query, refused when anything is off, SM2 with the platform public key.

use super::*;

const NOTIFY_URL: &str = "https://shop.example.com/pay/notify?shop=7";

fn notification_body(app_id: &str) -> String {
    serde_json::json!({
        "notifyId": "N01HZX0000000000000000000000",
        "notifyType": "PAY_SUCCESS",
        "appId": app_id,
        "orderId": "P01HZX0000000000000000000000",
        "outTradeNo": "T1001",
        "amount": 1,
        "state": "SUCCESS",
        "resultCode": "SUCCESS",
        "channelId": "ch1",
        "channelType": "wx-pay",
        "mchId": "1900000109",
        "transactionId": "4200000000000000000000000001",
        "payTime": "2024-01-02 03:04:05",
        "storeId": null,
        "attach": "a=1"
    })
    .to_string()
}

fn hmac_notification_headers(path_and_query: &str, body: &str, key: &str) -> HeaderMap {
    let ts = now().to_string();
    let nonce = "notifyNonce01";
    let sig = hmac_sha256_hex(
        key,
        &format!("POST\n{path_and_query}\n{ts}\n{nonce}\n{body}\n"),
    );
    headers(&[
        ("Cashdesk-App-Id", APP_ID),
        ("Cashdesk-Timestamp", &ts),
        ("Cashdesk-Nonce", nonce),
        ("Cashdesk-Sign-Type", "HMAC-SHA256"),
        ("Cashdesk-Signature", &sig),
    ])
}

#[test]
fn notification_signed_over_the_notify_path_is_accepted() {
    let v = SignatureVerifier::new(APP_ID, &shared(SignType::HmacSha256)).unwrap();
    let body = notification_body(APP_ID);
    let h = hmac_notification_headers("/pay/notify?shop=7", &body, APP_KEY);
    let n = verify_notification(&v, NOTIFY_URL, &h, body.as_bytes()).expect("accepted");
    assert_eq!(n.notify_type, "PAY_SUCCESS");
    assert_eq!(n.app_id, APP_ID);
    assert_eq!(n.amount, 1);
    assert_eq!(n.out_trade_no, "T1001");
    assert_eq!(n.pay_time.as_deref(), Some("2024-01-02 03:04:05"));
    assert_eq!(n.store_id, None);
    assert_eq!(n.out_refund_no, None);
    // The path form of the URL works the same.
    verify_notification(&v, "/pay/notify?shop=7", &h, body.as_bytes()).expect("path form");
}

#[test]
fn notification_verification_rejects_what_it_must() {
    let v = SignatureVerifier::new(APP_ID, &shared(SignType::HmacSha256)).unwrap();
    let body = notification_body(APP_ID);
    let h = hmac_notification_headers("/pay/notify?shop=7", &body, APP_KEY);

    // Delivered to (or signed for) another URL.
    let err = verify_notification(
        &v,
        "https://shop.example.com/pay/notify?shop=8",
        &h,
        body.as_bytes(),
    )
    .unwrap_err();
    assert!(
        matches!(err, SdkError::BadNotificationSignature(_)),
        "{err}"
    );
    // Tampered amount.
    let tampered = body.replace(r#""amount":1"#, r#""amount":100"#);
    assert_ne!(tampered, body);
    let err = verify_notification(&v, NOTIFY_URL, &h, tampered.as_bytes()).unwrap_err();
    assert!(
        matches!(err, SdkError::BadNotificationSignature(_)),
        "{err}"
    );
    // Signed with another key.
    let forged = hmac_notification_headers("/pay/notify?shop=7", &body, "guessed-key");
    assert!(matches!(
        verify_notification(&v, NOTIFY_URL, &forged, body.as_bytes()),
        Err(SdkError::BadNotificationSignature(_))
    ));
    // A response-layout signature is not a notification signature.
    let resp_layout = hmac_response_headers(now(), "notifyNonce01", &body, APP_KEY);
    assert!(verify_notification(&v, NOTIFY_URL, &resp_layout, body.as_bytes()).is_err());
    // Correctly signed, but the body names another app.
    let foreign = notification_body("appffffffffffffffff");
    let h2 = hmac_notification_headers("/pay/notify?shop=7", &foreign, APP_KEY);
    let err = verify_notification(&v, NOTIFY_URL, &h2, foreign.as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("for app appffffffffffffffff"),
        "{err}"
    );
    // Correctly signed, but not a notification.
    let h3 = hmac_notification_headers("/pay/notify?shop=7", "{}", APP_KEY);
    assert!(matches!(
        verify_notification(&v, NOTIFY_URL, &h3, b"{}"),
        Err(SdkError::InvalidBody(_))
    ));
}

#[test]
fn sm2_notification_verifies_with_the_platform_public_key() {
    // cashdesk signs an SM2 app's notifications with its platform key; the
    // fixture pair stands in for it.
    let platform = RequestSigner::new(APP_ID, &sm2_credentials()).unwrap();
    let body = notification_body(APP_ID);
    let signed = platform
        .sign_request("POST", "/pay/notify?shop=7", body.as_bytes())
        .unwrap();
    let h = signed.to_header_map().unwrap();
    let v = SignatureVerifier::new(APP_ID, &sm2_credentials()).unwrap();
    verify_notification(&v, NOTIFY_URL, &h, body.as_bytes()).expect("accepted");
    let other = sm2_credentials_with_other_platform_key();
    let v_other = SignatureVerifier::new(APP_ID, &other).unwrap();
    assert!(verify_notification(&v_other, NOTIFY_URL, &h, body.as_bytes()).is_err());
}

fn sm2_credentials_with_other_platform_key() -> Credentials {
    let other = cashdesk_crypto::sm::Sm2PrivateKey::generate();
    Credentials::Sm2 {
        private_key_pem: Secret::new(SM2_PRIVATE),
        platform_public_key_pem: other.public_key().to_spki_pem(),
    }
}
