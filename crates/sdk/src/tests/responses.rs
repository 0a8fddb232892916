//! Response verification: a good signature is accepted; a stale, forged,
//! unsigned or mis-keyed answer is refused; RSA2 and SM2 answers verify
//! with the platform key.

use super::*;

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
