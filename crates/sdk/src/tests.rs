//! Unit tests of signing, response verification and notification
//! verification against values computed independently of
//! `cashdesk_crypto`: the constants below come from OpenSSL 3 and the
//! in-test recomputations use the RustCrypto crates directly.
//!
//! Regenerating the constants (message in /tmp/msg.txt written with
//! `printf 'POST\n/api/cashier-desk/unified/orders\n1700000000\nfixedNonce0001\n{body}\n'`):
//!
//! ```text
//! openssl dgst -sha256 -hmac demo-app-key-0123 -r /tmp/msg.txt
//! openssl dgst -sm3 -hmac demo-app-key-0123 -r /tmp/msg.txt
//! (cat /tmp/msg.txt; printf demo-app-key-0123) | openssl dgst -md5 -r
//! openssl dgst -sha256 -sign testdata/rsa_app_private.pem /tmp/msg.txt | base64 -w0
//! openssl pkeyutl -sign -inkey testdata/sm2_app_private.pem -rawin -digest sm3 \
//!     -pkeyopt distid:1234567812345678 -in /tmp/msg.txt | base64 -w0
//! ```
//!
//! The key pairs in `testdata/` are test fixtures, used nowhere else.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use crate::*;

const APP_ID: &str = "app0123456789abcdef";
const APP_KEY: &str = "demo-app-key-0123";
const METHOD: &str = "POST";
const PATH: &str = "/api/cashier-desk/unified/orders";
const TS: i64 = 1_700_000_000;
const NONCE: &str = "fixedNonce0001";
const BODY: &str = r#"{"outTradeNo":"T1001","amount":1,"orderTitle":"Test"}"#;

const RSA_PRIVATE: &str = include_str!("testdata/rsa_app_private.pem");
const RSA_PUBLIC: &str = include_str!("testdata/rsa_app_public.pem");
const SM2_PRIVATE: &str = include_str!("testdata/sm2_app_private.pem");
const SM2_PUBLIC: &str = include_str!("testdata/sm2_app_public.pem");

// OpenSSL 3.0 over the request message above.
const OPENSSL_HMAC_SHA256: &str =
    "5098e853b68f197f31a0c5006d45e1c4c2f29f78a6788ad193b8424f957d9e94";
const OPENSSL_HMAC_SM3: &str = "d6b726daf749e91917c9d44dbdfc27495eaf5e59b0f64bf4a99570170af5ed6d";
const OPENSSL_MD5: &str = "25d54d6e56d5c20cd30bf15a11b3c667";
const OPENSSL_RSA2: &str = "lJIRSC4l7xF5lUWvooVUMgaNfb9xcK1tCLQWyugiaYIBK3GItM48oRC2nDKrVQGvJNrz0K0Xwa/8y8XCawfOURg0xR1+UKGm2QPPb3scvHjny405empcXnKbvaO5WbGucAfF5SAqQKQaRPE6f6qDBYgSuL82ALupr7cucXzpS+T++yPeEBk2F9YFr0UAFveHs1MtiCLG+xy1PbCn4I/2XDndhr2U5riiVkTizh2CV4bbyIZuWYBdO+5bfdiQD9qsVdmrE9B+8YkgJ23AQBmL5k2yx61c9xEtW19IDTQF0M18wZOW6XoBJfW5F4j8eLP1kX4qRmQaVslELI/gLRy9lA==";
const OPENSSL_SM2: &str = "MEUCIQDIAXWlm+QiOOP14OhVHwTpnFzreB2UVXU2or+wikZ5eAIgbONGKoy27YXhy7omZ/a2qeph5n+h1TdVkCx+EmHt088=";

// OpenSSL 3.0 over the response message
// `1700000000\nrespNonce0001\n{RESP_BODY}\n`.
const RESP_NONCE: &str = "respNonce0001";
const RESP_BODY: &str = r#"{"code":1000,"msg":"ok","data":null,"responseTime":1}"#;
const OPENSSL_RSA2_RESPONSE: &str = "GlD4C1SxXwTjyJ+156naCz9Lunh4sCvl9LDorVxwT8MzhemnT6yM9snMA83KZoxndl6Ua6J1RPFWrfuL8I8SRXdkmtmo2zLRLQt/elJ+QabeBGUrzNDI4qpIXs8v7OOUCjf6wtY3GGyAGrev2xNLloTuMonC4RiihKEpuberjA+307jcpolksovy6kBIxHCU3Lb/LzfXAyafle7xeA0hbaPa6HEq3v7gs2q2LbcUFb8IxfbrXBqPFxztV/cKn9u2wdYvUR+RFa77zqlXMpE3tqQl5WrKPz6HyVKsKecJ3DMgw3CvYy5ANZkLPW/FGi//p7Boy7mpxLVbkk7DCpErtA==";
const OPENSSL_SM2_RESPONSE: &str = "MEYCIQCyDV/tNVo/Dvq4Pcg7FuTs8aihouHwFCJr5q7yMEWODAIhAJ8RZfPsz2NaPsNF7vS4gQKcUYCwNoyL8XQBVhxFAAUQ";

fn decode_b64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

fn shared(sign_type: SignType) -> Credentials {
    Credentials::Shared {
        sign_type,
        app_key: Secret::new(APP_KEY),
    }
}

fn rsa_credentials() -> Credentials {
    // The app's own pair doubles as the "platform" pair so one fixture
    // covers signing and verifying.
    Credentials::Rsa {
        private_key_pem: Secret::new(RSA_PRIVATE),
        platform_public_key_pem: RSA_PUBLIC.to_owned(),
    }
}

fn sm2_credentials() -> Credentials {
    Credentials::Sm2 {
        private_key_pem: Secret::new(SM2_PRIVATE),
        platform_public_key_pem: SM2_PUBLIC.to_owned(),
    }
}

fn request_message() -> String {
    format!("{METHOD}\n{PATH}\n{TS}\n{NONCE}\n{BODY}\n")
}

fn sign_fixed(credentials: &Credentials) -> SignedHeaders {
    RequestSigner::new(APP_ID, credentials)
        .expect("credentials")
        .sign_request_at(METHOD, PATH, BODY.as_bytes(), TS, NONCE)
        .expect("sign")
}

fn hmac_sha256_hex(key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn now() -> i64 {
    crate::signing::unix_now()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    map
}

/// Parses DER `SEQUENCE{INTEGER r, INTEGER s}` (short lengths, as SM2
/// signatures always have) into the sm2 crate's signature type.
fn sm2_signature_from_der(der: &[u8]) -> sm2::dsa::Signature {
    assert_eq!(der[0], 0x30, "SEQUENCE");
    assert_eq!(usize::from(der[1]), der.len() - 2, "sequence length");
    let mut rest = &der[2..];
    let mut ints = Vec::new();
    for _ in 0..2 {
        assert_eq!(rest[0], 0x02, "INTEGER");
        let len = usize::from(rest[1]);
        let mut v = &rest[2..2 + len];
        while v.len() > 32 && v[0] == 0 {
            v = &v[1..];
        }
        let mut field = [0u8; 32];
        field[32 - v.len()..].copy_from_slice(v);
        ints.push(field);
        rest = &rest[2 + len..];
    }
    assert!(rest.is_empty());
    sm2::dsa::Signature::from_scalars(ints[0], ints[1]).expect("valid scalars")
}

// ---------------------------------------------------------------- signing

#[test]
fn hmac_sha256_matches_openssl_and_hmac_crate() {
    let signed = sign_fixed(&shared(SignType::HmacSha256));
    assert_eq!(signed.signature, OPENSSL_HMAC_SHA256);
    assert_eq!(
        signed.signature,
        hmac_sha256_hex(APP_KEY, &request_message())
    );
    assert_eq!(signed.sign_type, SignType::HmacSha256);
    assert_eq!(signed.app_id, APP_ID);
    assert_eq!(signed.timestamp, TS.to_string());
    assert_eq!(signed.nonce, NONCE);
}

#[test]
fn hmac_sm3_matches_openssl() {
    let signed = sign_fixed(&shared(SignType::HmacSm3));
    assert_eq!(signed.signature, OPENSSL_HMAC_SM3);
    assert_eq!(signed.sign_type, SignType::HmacSm3);
}

#[test]
fn md5_matches_openssl_and_md5_crate() {
    use md5::Digest as _;
    let signed = sign_fixed(&shared(SignType::Md5));
    assert_eq!(signed.signature, OPENSSL_MD5);
    let expected = hex::encode(md5::Md5::digest(format!("{}{APP_KEY}", request_message())));
    assert_eq!(signed.signature, expected);
}

#[test]
fn rsa2_matches_openssl_byte_for_byte() {
    // PKCS#1 v1.5 is deterministic: the same key and message give the same
    // signature in every implementation.
    let signed = sign_fixed(&rsa_credentials());
    assert_eq!(signed.signature, OPENSSL_RSA2);
    assert_eq!(signed.sign_type, SignType::Rsa2);
}

#[test]
fn sm2_verifies_with_the_sm2_crate_and_openssl_signature_verifies_here() {
    use sm2::dsa::signature::Verifier as _;
    use sm2::pkcs8::DecodePublicKey as _;

    // SM2 is randomised: check our signature with the sm2 crate's own
    // ZA(user id) path instead of comparing bytes.
    let signed = sign_fixed(&sm2_credentials());
    assert_eq!(signed.sign_type, SignType::Sm2);
    let public = sm2::PublicKey::from_public_key_pem(SM2_PUBLIC).expect("public key");
    let key = sm2::dsa::VerifyingKey::new("1234567812345678", public).expect("verifying key");
    let sig = sm2_signature_from_der(&decode_b64(&signed.signature));
    key.verify(request_message().as_bytes(), &sig)
        .expect("SDK SM2 signature verifies with the sm2 crate");
    assert!(
        key.verify(b"another message", &sig).is_err(),
        "the check can fail"
    );

    // And the other way round: OpenSSL's signature verifies with the SDK.
    let verifier = SignatureVerifier::new(APP_ID, &sm2_credentials())
        .unwrap()
        .with_max_skew(None);
    let h = headers(&[
        ("Cashdesk-Timestamp", &TS.to_string()),
        ("Cashdesk-Nonce", NONCE),
        ("Cashdesk-Sign-Type", "SM2"),
        ("Cashdesk-Signature", OPENSSL_SM2),
    ]);
    verifier
        .verify_request(METHOD, PATH, &h, BODY.as_bytes())
        .expect("OpenSSL SM2 signature verifies");
    assert!(
        verifier
            .verify_request(METHOD, "/other", &h, BODY.as_bytes())
            .is_err()
    );
}

#[test]
fn fresh_signatures_use_now_and_a_new_nonce() {
    let signer = RequestSigner::new(APP_ID, &shared(SignType::HmacSha256)).unwrap();
    let a = signer.sign_request("GET", "/x", b"").unwrap();
    let b = signer.sign_request("GET", "/x", b"").unwrap();
    assert_ne!(a.nonce, b.nonce);
    assert_eq!(a.nonce.len(), 32);
    let ts: i64 = a.timestamp.parse().unwrap();
    assert!((ts - now()).abs() <= 2);
    let expected = hmac_sha256_hex(
        APP_KEY,
        &format!("GET\n/x\n{}\n{}\n\n", a.timestamp, a.nonce),
    );
    assert_eq!(a.signature, expected);
}

#[test]
fn signed_headers_carry_the_five_names() {
    let signed = sign_fixed(&shared(SignType::HmacSha256));
    let map = signed.to_header_map().unwrap();
    assert_eq!(map["Cashdesk-App-Id"], APP_ID);
    assert_eq!(map["Cashdesk-Timestamp"], "1700000000");
    assert_eq!(map["Cashdesk-Nonce"], NONCE);
    assert_eq!(map["Cashdesk-Sign-Type"], "HMAC-SHA256");
    assert_eq!(map["Cashdesk-Signature"], OPENSSL_HMAC_SHA256);
    assert_eq!(map.len(), 5);
}

#[test]
fn bad_credentials_are_refused_up_front() {
    let wrong = Credentials::Shared {
        sign_type: SignType::Rsa2,
        app_key: Secret::new(APP_KEY),
    };
    assert!(matches!(
        RequestSigner::new(APP_ID, &wrong),
        Err(SdkError::InvalidCredentials(_))
    ));
    let bad_pem = Credentials::Rsa {
        private_key_pem: Secret::new(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
        platform_public_key_pem: String::new(),
    };
    assert!(matches!(
        RequestSigner::new(APP_ID, &bad_pem),
        Err(SdkError::InvalidCredentials(_))
    ));
    // Signing needs no platform key; verifying does.
    let sign_only = Credentials::Rsa {
        private_key_pem: Secret::new(RSA_PRIVATE),
        platform_public_key_pem: String::new(),
    };
    assert!(RequestSigner::new(APP_ID, &sign_only).is_ok());
    assert!(SignatureVerifier::new(APP_ID, &sign_only).is_err());
    // Errors never carry the key.
    let err = RequestSigner::new(APP_ID, &bad_pem)
        .unwrap_err()
        .to_string();
    assert!(!err.contains("AAAA"));
}

// ---------------------------------------------------- response verification

fn hmac_response_headers(ts: i64, nonce: &str, body: &str, key: &str) -> HeaderMap {
    let sig = hmac_sha256_hex(key, &format!("{ts}\n{nonce}\n{body}\n"));
    headers(&[
        ("Cashdesk-App-Id", APP_ID),
        ("Cashdesk-Timestamp", &ts.to_string()),
        ("Cashdesk-Nonce", nonce),
        ("Cashdesk-Sign-Type", "HMAC-SHA256"),
        ("Cashdesk-Signature", &sig),
    ])
}

#[test]
fn response_with_a_good_hmac_signature_is_accepted() {
    let v = SignatureVerifier::new(APP_ID, &shared(SignType::HmacSha256)).unwrap();
    let h = hmac_response_headers(now(), "n1", RESP_BODY, APP_KEY);
    v.verify_response(&h, RESP_BODY.as_bytes())
        .expect("accepted");
    // Upper-case hex is the same signature.
    let mut upper = h.clone();
    let sig = h["Cashdesk-Signature"]
        .to_str()
        .unwrap()
        .to_ascii_uppercase();
    upper.insert("Cashdesk-Signature", HeaderValue::from_str(&sig).unwrap());
    v.verify_response(&upper, RESP_BODY.as_bytes())
        .expect("accepted");
}

#[test]
fn response_verification_rejects_what_it_must() {
    let v = SignatureVerifier::new(APP_ID, &shared(SignType::HmacSha256)).unwrap();
    let good = hmac_response_headers(now(), "n1", RESP_BODY, APP_KEY);

    // Tampered body.
    let err = v
        .verify_response(
            &good,
            br#"{"code":1000,"msg":"ok","data":{"x":1},"responseTime":1}"#,
        )
        .unwrap_err();
    assert!(err.contains("does not verify"), "{err}");
    // Signed with another key.
    let other = hmac_response_headers(now(), "n1", RESP_BODY, "another-key");
    assert!(v.verify_response(&other, RESP_BODY.as_bytes()).is_err());
    // Stale timestamp (outside ±300 s), even though correctly signed.
    let stale = hmac_response_headers(now() - 301, "n1", RESP_BODY, APP_KEY);
    let err = v.verify_response(&stale, RESP_BODY.as_bytes()).unwrap_err();
    assert!(err.contains("away from local time"), "{err}");
    // ... unless the skew check is off.
    let lenient = v.clone().with_max_skew(None);
    lenient
        .verify_response(&stale, RESP_BODY.as_bytes())
        .expect("signature itself is good");
    // Signed for another app.
    let mut other_app = good.clone();
    other_app.insert(
        "Cashdesk-App-Id",
        HeaderValue::from_static("appffffffffffffffff"),
    );
    let err = v
        .verify_response(&other_app, RESP_BODY.as_bytes())
        .unwrap_err();
    assert!(err.contains("signed for app"), "{err}");
    // Another sign type.
    let mut other_type = good.clone();
    other_type.insert("Cashdesk-Sign-Type", HeaderValue::from_static("MD5"));
    assert!(
        v.verify_response(&other_type, RESP_BODY.as_bytes())
            .is_err()
    );
    // Missing headers.
    for name in ["Cashdesk-Signature", "Cashdesk-Timestamp", "Cashdesk-Nonce"] {
        let mut missing = good.clone();
        missing.remove(name);
        let err = v
            .verify_response(&missing, RESP_BODY.as_bytes())
            .unwrap_err();
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn asymmetric_responses_verify_with_the_platform_key() {
    let cases = [
        (rsa_credentials(), "RSA2", OPENSSL_RSA2_RESPONSE),
        (sm2_credentials(), "SM2", OPENSSL_SM2_RESPONSE),
    ];
    for (credentials, sign_type, signature) in cases {
        let h = headers(&[
            ("Cashdesk-Timestamp", &TS.to_string()),
            ("Cashdesk-Nonce", RESP_NONCE),
            ("Cashdesk-Sign-Type", sign_type),
            ("Cashdesk-Signature", signature),
        ]);
        let v = SignatureVerifier::new(APP_ID, &credentials).unwrap();
        // 2023 is far outside the window.
        assert!(v.verify_response(&h, RESP_BODY.as_bytes()).is_err());
        let v = v.with_max_skew(None);
        v.verify_response(&h, RESP_BODY.as_bytes())
            .unwrap_or_else(|e| panic!("{sign_type}: {e}"));
        assert!(v.verify_response(&h, b"{}").is_err(), "{sign_type} tamper");
        // A sign-type header is required for asymmetric schemes.
        let mut no_type = h.clone();
        no_type.remove("Cashdesk-Sign-Type");
        assert!(v.verify_response(&no_type, RESP_BODY.as_bytes()).is_err());
    }
}

// ------------------------------------------------- notification verification

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

// ------------------------------------------------------ client over HTTP

/// A one-request HTTP server answering with `reply(request_head, body)`.
async fn one_shot_server(
    reply: impl FnOnce(&str, &[u8]) -> (u16, Vec<(String, String)>, String) + Send + 'static,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, body) = loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                while buf.len() < end + 4 + len {
                    let n = sock.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                break (head, buf[end + 4..end + 4 + len].to_vec());
            }
            assert!(n > 0, "connection closed early");
        };
        let (status, extra, body) = reply(&head, &body);
        let mut out = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&body);
        sock.write_all(out.as_bytes()).await.unwrap();
    });
    format!("http://{addr}")
}

fn signed_reply(body: &str, key: &str) -> Vec<(String, String)> {
    let ts = now();
    let sig = hmac_sha256_hex(key, &format!("{ts}\nrn1\n{body}\n"));
    vec![
        ("Cashdesk-App-Id".into(), APP_ID.into()),
        ("Cashdesk-Timestamp".into(), ts.to_string()),
        ("Cashdesk-Nonce".into(), "rn1".into()),
        ("Cashdesk-Sign-Type".into(), "HMAC-SHA256".into()),
        ("Cashdesk-Signature".into(), sig),
    ]
}

const PAY_RESULT: &str = r#"{"code":1000,"msg":"操作成功","data":{"orderId":"P1","outTradeNo":"T1001","amount":1,"state":"CREATED","resultCode":"NULL","channelId":null,"channelType":null,"mchId":null,"transactionId":null,"payTime":null,"refundedAmount":0,"resultErrorCode":null,"resultErrorMsg":null,"storeId":null,"attach":null},"responseTime":1}"#;

fn client(base: &str) -> Client {
    Client::builder(base, APP_ID, shared(SignType::HmacSha256))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn client_signs_requests_and_accepts_a_signed_answer() {
    let base = one_shot_server(|head, body| {
        // The request carries a signature over exactly what was sent.
        let line = head.lines().next().unwrap().to_owned();
        assert!(line.starts_with("GET /api/cashier-desk/out-trade-no/query-pay-result/T1001 "));
        assert!(body.is_empty());
        let get = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
                .unwrap()
        };
        let expected = hmac_sha256_hex(
            APP_KEY,
            &format!(
                "GET\n/api/cashier-desk/out-trade-no/query-pay-result/T1001\n{}\n{}\n\n",
                get("cashdesk-timestamp"),
                get("cashdesk-nonce")
            ),
        );
        assert_eq!(get("cashdesk-signature"), expected);
        assert_eq!(get("cashdesk-app-id"), APP_ID);
        (
            200,
            signed_reply(PAY_RESULT, APP_KEY),
            PAY_RESULT.to_owned(),
        )
    })
    .await;
    let r = client(&base)
        .query_pay_result("T1001", false)
        .await
        .unwrap();
    assert_eq!(r.order_id, "P1");
    assert_eq!(r.result_code, cashdesk_core::ResultCode::Null);
}

#[tokio::test]
async fn client_rejects_a_forged_or_unsigned_success() {
    let base = one_shot_server(|_, _| {
        (
            200,
            signed_reply(PAY_RESULT, "wrong-key"),
            PAY_RESULT.to_owned(),
        )
    })
    .await;
    let err = client(&base)
        .query_pay_result("T1001", false)
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::BadResponseSignature(_)), "{err}");

    let base = one_shot_server(|_, _| (200, Vec::new(), PAY_RESULT.to_owned())).await;
    let err = client(&base)
        .query_pay_result("T1001", false)
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::BadResponseSignature(_)), "{err}");
}

#[tokio::test]
async fn client_reports_an_unsigned_401_as_an_api_error() {
    let body = r#"{"code":4014,"msg":"signature does not verify","data":null,"responseTime":1}"#;
    let base = one_shot_server(move |_, _| (401, Vec::new(), body.to_owned())).await;
    match client(&base).query_pay_result("T1001", false).await {
        Err(SdkError::Api { status, code, .. }) => {
            assert_eq!(status, 401);
            assert_eq!(code, 4014);
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn admin_client_sends_the_bearer_token_and_parses_ids() {
    let base = one_shot_server(|head, body| {
        assert!(head.starts_with("POST /api/admin/channels "));
        assert!(
            head.lines()
                .any(|l| l.eq_ignore_ascii_case("authorization: Bearer op-token")),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["configId"], "cfg1");
        assert_eq!(v["sceneCode"], "mini");
        assert!(v.get("sort").is_none());
        (
            200,
            Vec::new(),
            r#"{"code":1000,"msg":"操作成功","data":{"channelId":"ch1"},"responseTime":1}"#
                .to_owned(),
        )
    })
    .await;
    let admin = AdminClient::new(base, "op-token").unwrap();
    let created = admin
        .create_channel(&CreateChannelRequest {
            config_id: "cfg1".into(),
            scene_code: "mini".into(),
            channel_name: "WeChat mini".into(),
            sort: None,
        })
        .await
        .unwrap();
    assert_eq!(created.channel_id, "ch1");
}

#[tokio::test]
async fn admin_client_turns_an_error_envelope_into_an_api_error() {
    let base = one_shot_server(|_, _| {
        (
            401,
            Vec::new(),
            r#"{"code":4019,"msg":"admin token missing or wrong","data":null,"responseTime":1}"#
                .to_owned(),
        )
    })
    .await;
    let admin = AdminClient::new(base, "wrong").unwrap();
    match admin.list_apps().await {
        Err(SdkError::Api { status, code, .. }) => assert_eq!((status, code), (401, 4019)),
        other => panic!("expected an API error, got {other:?}"),
    }
}

// ------------------------------------------------------------- payData

/// Every `payData` shape the server's channels produce, as they produce it.
#[test]
fn pay_data_shapes_are_recognised_and_round_trip() {
    use serde_json::json;
    let cases = [
        (
            json!({"appId": "wx8888888888888888", "timeStamp": "1700000000", "nonceStr": "n",
                   "package": "prepay_id=wx1", "signType": "HMAC-SHA256", "paySign": "ABC"}),
            "RequestPayment",
        ),
        (
            json!({"appid": "wx8888888888888888", "partnerid": "1900000109", "prepayid": "wx1",
                   "package": "Sign=WXPay", "noncestr": "n", "timestamp": "1700000000", "sign": "S"}),
            "WxApp",
        ),
        (
            json!({"codeUrl": "weixin://wxpay/bizpayurl?pr=abc", "qrSvgUrl": "https://pay.example.com/cashier-desk-web/qr/t.svg"}),
            "Native",
        ),
        (
            json!({"codeUrl": "weixin://wxpay/bizpayurl?pr=abc"}),
            "Native",
        ),
        (
            json!({"h5Url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"}),
            "H5",
        ),
        (
            json!({"redirectUrl": "https://openapi.alipay.com/gateway.do?a=1", "form": "<form></form>"}),
            "Redirect",
        ),
        (json!({"orderString": "app_id=2021&sign=x"}), "AlipayApp"),
        (json!({"qrCode": "https://qr.alipay.com/bax0"}), "QrCode"),
        (json!({"tradeNo": "2024010222001"}), "TradeNo"),
        (json!({"somethingNew": 1}), "Other"),
        (json!("a string"), "Other"),
    ];
    for (json, variant) in cases {
        let response =
            json!({"orderId": "P1", "channelType": "wx-pay", "sceneCode": "x", "payData": json});
        let parsed: PaymentResponse = serde_json::from_value(response.clone()).unwrap();
        let got = format!("{:?}", parsed.pay_data);
        assert!(got.starts_with(variant), "{json} → {got}");
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            response,
            "{variant}"
        );
        assert_eq!(parsed.pay_data.to_json(), json);
    }
}

#[test]
fn pay_data_accessors() {
    let native: PayData =
        serde_json::from_str(r#"{"codeUrl":"weixin://x","qrSvgUrl":"http://h/q.svg"}"#).unwrap();
    assert_eq!(native.code_url(), Some("weixin://x"));
    assert_eq!(native.redirect_url(), None);
    assert!(native.request_payment().is_none());
    let h5: PayData = serde_json::from_str(r#"{"h5Url":"https://h5"}"#).unwrap();
    assert_eq!(h5.redirect_url(), Some("https://h5"));
    // A numeric timeStamp (as some acquirers send it) reads as a string.
    let rp: PayData = serde_json::from_str(
        r#"{"appId":"a","timeStamp":1700000000,"nonceStr":"n","package":"prepay_id=1","signType":"RSA","paySign":"s"}"#,
    )
    .unwrap();
    assert_eq!(rp.request_payment().unwrap().time_stamp, "1700000000");
    // A shape missing a field of every known shape stays as sent.
    let partial: PayData = serde_json::from_str(r#"{"appId":"a","paySign":"s"}"#).unwrap();
    assert!(matches!(partial, PayData::Other(_)));
}

#[test]
fn payment_request_sends_only_what_is_set() {
    let req = PaymentRequest::new("T1", "CH1").with_openid("o1");
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        serde_json::json!({"outTradeNo": "T1", "channelId": "CH1", "openid": "o1"})
    );
    let req = PaymentRequest::new("T1", "CH1")
        .with_client_ip("203.0.113.7")
        .with_buyer_id("2088");
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        serde_json::json!({"outTradeNo": "T1", "channelId": "CH1", "clientIp": "203.0.113.7", "buyerId": "2088"})
    );
}
