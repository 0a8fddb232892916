//! Signing: each algorithm against OpenSSL and the RustCrypto crates,
//! fresh nonces and timestamps, the header names, bad credentials.

use super::*;

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
