//! The `Cashdesk-*` signature (ARCHITECTURE.md §5.1), shared by the server,
//! the SDK and the sandbox so the three can never disagree.
//!
//! - request / notification: `METHOD\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nBODY\n`
//! - response: `TIMESTAMP\nNONCE\nBODY\n`
//! - HMAC-SHA256 / HMAC-SM3: lowercase hex with the app key;
//!   MD5: lowercase hex md5(string_to_sign + appKey);
//!   RSA2 (SHA256withRSA) / SM2 (SM3withSM2, user id 1234567812345678, DER):
//!   standard base64.
//!
//! Verification accepts hex in either case (compared in constant time after
//! lowercasing the received value). A shared-key [`Signer`]/[`Verifier`]
//! given an asymmetric [`SignType`] is an error, never a silent downgrade.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cashdesk_core::SignType;

use crate::CryptoError;

pub const HEADER_APP_ID: &str = "Cashdesk-App-Id";
pub const HEADER_TIMESTAMP: &str = "Cashdesk-Timestamp";
pub const HEADER_NONCE: &str = "Cashdesk-Nonce";
pub const HEADER_SIGN_TYPE: &str = "Cashdesk-Sign-Type";
pub const HEADER_SIGNATURE: &str = "Cashdesk-Signature";

pub fn request_message(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(
        method.len() + path_and_query.len() + timestamp.len() + nonce.len() + body.len() + 5,
    );
    for part in [
        method.as_bytes(),
        path_and_query.as_bytes(),
        timestamp.as_bytes(),
        nonce.as_bytes(),
        body,
    ] {
        m.extend_from_slice(part);
        m.push(b'\n');
    }
    m
}

pub fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    for part in [timestamp.as_bytes(), nonce.as_bytes(), body] {
        m.extend_from_slice(part);
        m.push(b'\n');
    }
    m
}

/// Key material that can sign.
pub enum Signer<'a> {
    /// HMAC-SHA256, HMAC-SM3, MD5: the app key.
    Shared(SignType, &'a [u8]),
    Rsa(&'a crate::rsa::RsaPrivateKey),
    Sm2(&'a crate::sm::Sm2PrivateKey),
}

/// Key material that can verify.
pub enum Verifier<'a> {
    Shared(SignType, &'a [u8]),
    Rsa(&'a crate::rsa::RsaPublicKey),
    Sm2(&'a crate::sm::Sm2PublicKey),
}

/// The lowercase-hex signature of a shared-key type.
fn shared_signature(kind: SignType, key: &[u8], message: &[u8]) -> crate::Result<String> {
    match kind {
        SignType::HmacSha256 => Ok(hex::encode(crate::digest::hmac_sha256(key, message))),
        SignType::HmacSm3 => Ok(hex::encode(crate::sm::hmac_sm3(key, message))),
        SignType::Md5 => {
            let input = zeroize::Zeroizing::new([message, key].concat());
            Ok(crate::digest::md5_hex(&input))
        }
        SignType::Rsa2 | SignType::Sm2 => Err(CryptoError::InvalidKey(format!(
            "sign type {} needs a key pair, not a shared key",
            kind.as_str()
        ))),
    }
}

impl Signer<'_> {
    pub fn sign_type(&self) -> SignType {
        match self {
            Self::Shared(kind, _) => *kind,
            Self::Rsa(_) => SignType::Rsa2,
            Self::Sm2(_) => SignType::Sm2,
        }
    }
    pub fn sign(&self, message: &[u8]) -> crate::Result<String> {
        match self {
            Self::Shared(kind, key) => shared_signature(*kind, key, message),
            Self::Rsa(key) => key.sign_sha256_base64(message),
            Self::Sm2(key) => {
                Ok(STANDARD.encode(key.sign_der(message, crate::sm::DEFAULT_USER_ID)?))
            }
        }
    }
}

impl Verifier<'_> {
    pub fn sign_type(&self) -> SignType {
        match self {
            Self::Shared(kind, _) => *kind,
            Self::Rsa(_) => SignType::Rsa2,
            Self::Sm2(_) => SignType::Sm2,
        }
    }
    /// Constant-time for the shared-key types.
    pub fn verify(&self, message: &[u8], signature: &str) -> crate::Result<()> {
        match self {
            Self::Shared(kind, key) => {
                let expected = shared_signature(*kind, key, message)?;
                let given = signature.trim().to_ascii_lowercase();
                if crate::ct_eq(expected.as_bytes(), given.as_bytes()) {
                    Ok(())
                } else {
                    Err(CryptoError::BadSignature)
                }
            }
            Self::Rsa(key) => key.verify_sha256_base64(message, signature),
            Self::Sm2(key) => {
                let der = STANDARD
                    .decode(signature.trim().as_bytes())
                    .map_err(|_| CryptoError::BadSignature)?;
                key.verify_der(message, crate::sm::DEFAULT_USER_ID, &der)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;
    use crate::rsa::{RsaPrivateKey, RsaPublicKey};
    use crate::sm::{Sm2PrivateKey, Sm2PublicKey};

    const APP_KEY: &[u8] = b"k3y-0f-app-2024";
    const BODY: &[u8] = b"{\"outTradeNo\":\"T1\",\"amount\":100}";

    fn request() -> Vec<u8> {
        request_message(
            "POST",
            "/api/cashier-desk/unified/orders?x=1",
            "1700000000",
            "AbC123",
            BODY,
        )
    }

    fn rsa_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::generate_2048().unwrap())
    }

    fn sm2_key() -> &'static Sm2PrivateKey {
        static KEY: OnceLock<Sm2PrivateKey> = OnceLock::new();
        KEY.get_or_init(Sm2PrivateKey::generate)
    }

    #[test]
    fn message_layouts() {
        assert_eq!(
            request(),
            b"POST\n/api/cashier-desk/unified/orders?x=1\n1700000000\nAbC123\n{\"outTradeNo\":\"T1\",\"amount\":100}\n"
        );
        // GET: empty body, still terminated by its own newline.
        assert_eq!(
            request_message("GET", "/p?token=t", "1", "n", b""),
            b"GET\n/p?token=t\n1\nn\n\n"
        );
        assert_eq!(
            response_message("1700000001", "XyZ789", b"{}"),
            b"1700000001\nXyZ789\n{}\n"
        );
    }

    /// Expected values computed with Python `hmac`/`hashlib` (HMAC-SHA256,
    /// MD5) and `openssl mac -digest SM3 … HMAC` (HMAC-SM3).
    #[test]
    fn shared_key_vectors() {
        let sign = |t| Signer::Shared(t, APP_KEY).sign(&request()).unwrap();
        assert_eq!(
            sign(SignType::HmacSha256),
            "7db71d726a47019e53e8b4b02ce01f8bed68d798623ef1c09b274549acfa4463"
        );
        assert_eq!(
            sign(SignType::HmacSm3),
            "45e687baab90c668bd558961210479454f007ae68071fa0f6b0a03fcebff9d32"
        );
        assert_eq!(sign(SignType::Md5), "a982685e5d15326a0cfd9f57b0e4f5d5");
        let response = response_message("1700000001", "XyZ789", b"{\"code\":1000,\"msg\":\"ok\"}");
        assert_eq!(
            Signer::Shared(SignType::HmacSha256, APP_KEY)
                .sign(&response)
                .unwrap(),
            "3c86114039afd3107642f7840f83321d064eb4b21c5a85f96f725226be2d27b0"
        );
    }

    #[test]
    fn rsa2_vector() {
        // OpenSSL's SHA256withRSA over a GET request message (see rsa.rs).
        let key = RsaPrivateKey::from_pem(include_str!("../testdata/rsa_pkcs8.pem")).unwrap();
        let msg = request_message(
            "GET",
            "/api/cashier-desk/payment/list?token=abc",
            "1700000000",
            "nonce123",
            b"",
        );
        let sig = Signer::Rsa(&key).sign(&msg).unwrap();
        assert_eq!(
            sig,
            "Z8C4XGhFxTFq4r/b6k+n3SqH9vVlmNF9W5XciFwVzx0G+dIhreI2Y6kAz3SFwbnVkWE/zWO5TMrrYm2shMbDrW3FIp37AwQT8H2LSQhum5IRgpQQJAKjKvyzUGknA6+buWonpJaPx0ILFRqHTWyOLSB9pvqjkIvSQ4MvODf/foDbu8HUNw0JOaEMnZz/UEg7zR6/nbwnPq3uYLvxBG6n0iOhYL/0F3UOn4C6XDiMy4ynIrpweMHdVQDnUszWMIiNmSWBXGdZU0qGCi60mFOiuu4bSwpgA341WN/nigaEQhWx4yzLGsEXBb0b9XHzAW25tvOziR+S3ODpUlbUoUfacw=="
        );
        let public = RsaPublicKey::from_pem(include_str!("../testdata/rsa_spki.pem")).unwrap();
        Verifier::Rsa(&public).verify(&msg, &sig).unwrap();
    }

    #[test]
    fn sm2_vector() {
        // OpenSSL's SM3withSM2 (id 1234567812345678) over a POST request message.
        let msg = request_message(
            "POST",
            "/api/cashier-desk/unified/orders",
            "1700000000",
            "n0nce",
            b"{\"outTradeNo\":\"T1\",\"amount\":1}",
        );
        let sig = "MEYCIQCQ1O6dxWnOG6WNGIhJnbMkkFkraexwEM8DShTI+pCpHwIhAMrlrz4WQs0h3mYIAOGrl0CSZKsRysJXxsVTZ2r3Z3OF";
        let public = Sm2PublicKey::from_pem(include_str!("../testdata/sm2_spki.pem")).unwrap();
        Verifier::Sm2(&public).verify(&msg, sig).unwrap();
        assert!(matches!(
            Verifier::Sm2(&public).verify(&msg[1..], sig),
            Err(CryptoError::BadSignature)
        ));
        assert!(matches!(
            Verifier::Sm2(&public).verify(&msg, "%%%"),
            Err(CryptoError::BadSignature)
        ));
    }

    #[test]
    fn shared_verification() {
        for t in [SignType::HmacSha256, SignType::HmacSm3, SignType::Md5] {
            let sig = Signer::Shared(t, APP_KEY).sign(&request()).unwrap();
            let verifier = Verifier::Shared(t, APP_KEY);
            verifier.verify(&request(), &sig).unwrap();
            // Hex case and surrounding blanks do not matter.
            verifier
                .verify(&request(), &format!(" {} ", sig.to_ascii_uppercase()))
                .unwrap();
            // Wrong key, another message, tampered, truncated, empty.
            let bad = |r: crate::Result<()>| matches!(r, Err(CryptoError::BadSignature));
            assert!(bad(
                Verifier::Shared(t, b"k3y-0f-app-2025").verify(&request(), &sig)
            ));
            assert!(bad(verifier.verify(&request()[1..], &sig)));
            let flipped = format!(
                "{}{}",
                if sig.starts_with('0') { '1' } else { '0' },
                &sig[1..]
            );
            assert!(bad(verifier.verify(&request(), &flipped)));
            assert!(bad(verifier.verify(&request(), &sig[..sig.len() - 1])));
            assert!(bad(verifier.verify(&request(), "")));
        }
        // One type's signature is not another's.
        let hmac = Signer::Shared(SignType::HmacSha256, APP_KEY)
            .sign(&request())
            .unwrap();
        assert!(
            Verifier::Shared(SignType::HmacSm3, APP_KEY)
                .verify(&request(), &hmac)
                .is_err()
        );
    }

    #[test]
    fn asymmetric_types_need_key_pairs() {
        for t in [SignType::Rsa2, SignType::Sm2] {
            assert!(matches!(
                Signer::Shared(t, APP_KEY).sign(b"m"),
                Err(CryptoError::InvalidKey(_))
            ));
            assert!(matches!(
                Verifier::Shared(t, APP_KEY).verify(b"m", "00"),
                Err(CryptoError::InvalidKey(_))
            ));
        }
    }

    #[test]
    fn sign_types() {
        let rsa_pub = rsa_key().public_key();
        let sm2_pub = sm2_key().public_key();
        assert_eq!(
            Signer::Shared(SignType::Md5, APP_KEY).sign_type(),
            SignType::Md5
        );
        assert_eq!(Signer::Rsa(rsa_key()).sign_type(), SignType::Rsa2);
        assert_eq!(Signer::Sm2(sm2_key()).sign_type(), SignType::Sm2);
        assert_eq!(
            Verifier::Shared(SignType::HmacSm3, APP_KEY).sign_type(),
            SignType::HmacSm3
        );
        assert_eq!(Verifier::Rsa(&rsa_pub).sign_type(), SignType::Rsa2);
        assert_eq!(Verifier::Sm2(&sm2_pub).sign_type(), SignType::Sm2);
    }

    #[test]
    fn asymmetric_wrong_keys_fail() {
        let msg = request();
        let rsa_sig = Signer::Rsa(rsa_key()).sign(&msg).unwrap();
        let other_rsa = RsaPublicKey::from_pem(include_str!("../testdata/rsa_spki.pem")).unwrap();
        assert!(matches!(
            Verifier::Rsa(&other_rsa).verify(&msg, &rsa_sig),
            Err(CryptoError::BadSignature)
        ));
        let sm2_sig = Signer::Sm2(sm2_key()).sign(&msg).unwrap();
        let other_sm2 = Sm2PublicKey::from_pem(include_str!("../testdata/sm2_spki.pem")).unwrap();
        assert!(matches!(
            Verifier::Sm2(&other_sm2).verify(&msg, &sm2_sig),
            Err(CryptoError::BadSignature)
        ));
    }

    fn arb_request() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![Just("GET"), Just("POST")],
            "/[a-z/-]{0,40}(\\?[a-z]=[a-z0-9]{0,8})?",
            "[0-9]{10}",
            "[A-Za-z0-9]{8,32}",
            proptest::collection::vec(any::<u8>(), 0..256),
        )
            .prop_map(|(m, p, t, n, b)| request_message(m, &p, &t, &n, &b))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn every_scheme_signs_then_verifies(msg in arb_request(), key in proptest::collection::vec(any::<u8>(), 1..64), flip in any::<usize>()) {
            let rsa_pub = rsa_key().public_key();
            let sm2_pub = sm2_key().public_key();
            let pairs = [
                (Signer::Shared(SignType::HmacSha256, &key), Verifier::Shared(SignType::HmacSha256, &key)),
                (Signer::Shared(SignType::HmacSm3, &key), Verifier::Shared(SignType::HmacSm3, &key)),
                (Signer::Shared(SignType::Md5, &key), Verifier::Shared(SignType::Md5, &key)),
                (Signer::Rsa(rsa_key()), Verifier::Rsa(&rsa_pub)),
                (Signer::Sm2(sm2_key()), Verifier::Sm2(&sm2_pub)),
            ];
            let mut tampered = msg.clone();
            let i = flip % tampered.len();
            tampered[i] ^= 0x20;
            for (signer, verifier) in &pairs {
                let sig = signer.sign(&msg).unwrap();
                prop_assert!(verifier.verify(&msg, &sig).is_ok());
                prop_assert!(verifier.verify(&tampered, &sig).is_err());
            }
        }
    }
}
