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
//! The key pairs in `src/testdata/` are test fixtures, used nowhere else.
//!
//! One file per topic: `signing` (the five algorithms against OpenSSL),
//! `responses` and `notifications` (what the verifier accepts and
//! refuses), `client` (the SDK over HTTP against a one-shot server) and
//! `pay_data` (the typed `payData` shapes); this one holds the fixtures.

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

const RSA_PRIVATE: &str = include_str!("../testdata/rsa_app_private.pem");
const RSA_PUBLIC: &str = include_str!("../testdata/rsa_app_public.pem");
const SM2_PRIVATE: &str = include_str!("../testdata/sm2_app_private.pem");
const SM2_PUBLIC: &str = include_str!("../testdata/sm2_app_public.pem");

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

/// Response headers signed with HMAC-SHA256 over `TS\nNONCE\nBODY\n`.
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

mod client;
mod notifications;
mod pay_data;
mod responses;
mod signing;
