//! The merchant API's signature check (`cashdesk_crypto::apisig`, used by
//! the server's `auth` layer and the SDK): any `Cashdesk-Signature` text
//! against every sign type. A signature the fuzzer made up must never
//! verify; in mode `S` the shared-key signatures are made, and must verify
//! over exactly the signed bytes.

use cashdesk_core::SignType;
use cashdesk_crypto::apisig::{self, Signer, Verifier};
use cashdesk_crypto::rsa::RsaPublicKey;
use cashdesk_crypto::sm::Sm2PublicKey;

use crate::Outcome;
use crate::message::Message;

const KEY: &[u8] = b"192006250b4c09247ec02edce69f6a2d";
const SHARED: [SignType; 3] = [SignType::HmacSha256, SignType::HmacSm3, SignType::Md5];

struct Keys {
    rsa: RsaPublicKey,
    sm2: Sm2PublicKey,
}

fn keys() -> &'static Keys {
    static K: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    K.get_or_init(|| Keys {
        // The crypto crate's throwaway test keys.
        rsa: RsaPublicKey::from_pem(include_str!("../../crypto/testdata/rsa_spki.pem"))
            .unwrap_or_else(|e| panic!("fuzz fixture: RSA test key: {e}")),
        sm2: Sm2PublicKey::from_pem(include_str!("../../crypto/testdata/sm2_spki.pem"))
            .unwrap_or_else(|e| panic!("fuzz fixture: SM2 test key: {e}")),
    })
}

/// Start line `METHOD /path`, the `Cashdesk-*` headers, the body.
pub fn apisig(data: &[u8]) -> Outcome {
    let m = Message::parse(data, true);
    let (method, path) = m.route("/");
    let header = |name| m.header(name).unwrap_or("");
    let message = apisig::request_message(
        &method,
        &path,
        header(apisig::HEADER_TIMESTAMP),
        header(apisig::HEADER_NONCE),
        m.body,
    );
    let k = keys();
    if m.sign {
        for kind in SHARED {
            let Ok(sig) = Signer::Shared(kind, KEY).sign(&message) else {
                panic!("{kind:?} cannot sign")
            };
            let v = Verifier::Shared(kind, KEY);
            assert!(v.verify(&message, &sig).is_ok(), "{kind:?}: own signature");
            assert!(
                v.verify(&message[1..], &sig).is_err(),
                "{kind:?}: verified other bytes"
            );
        }
        return Outcome::Accepted;
    }
    let signature = header(apisig::HEADER_SIGNATURE);
    let mut accepted = false;
    for kind in SHARED {
        let verified = Verifier::Shared(kind, KEY)
            .verify(&message, signature)
            .is_ok();
        if verified {
            // Only the right signature (any case, surrounding spaces) can
            // verify.
            let Ok(expected) = Signer::Shared(kind, KEY).sign(&message) else {
                panic!("{kind:?} cannot sign")
            };
            assert_eq!(signature.trim().to_ascii_lowercase(), expected, "{kind:?}");
            accepted = true;
        }
    }
    // Asymmetric verification with made-up signatures: no panic, and no
    // forgery.
    assert!(
        Verifier::Rsa(&k.rsa).verify(&message, signature).is_err(),
        "RSA verified a fuzzed signature"
    );
    assert!(
        Verifier::Sm2(&k.sm2).verify(&message, signature).is_err(),
        "SM2 verified a fuzzed signature"
    );
    Outcome::from(accepted)
}
