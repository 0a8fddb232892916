//! SHA256withRSA (PKCS#1 v1.5), the "RSA2" of Alipay and the signature of
//! WeChat Pay v3 and Lakala, on aws-lc-rs.
//!
//! Keys arrive in every shape the channels' consoles hand out, so the
//! constructors accept all of them and normalise: a private key is held as an
//! aws-lc-rs key pair, a public key as SPKI DER (aws-lc-rs converts PKCS#1)
//! together with the key aws-lc-rs parsed from it once, at construction:
//! cashdesk verifies with the same platform key over and over (v3
//! notifications, Alipay and Lakala responses), and parsing on every call
//! cost about a sixth of each verification (docs/benchmarks.md).

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::CryptoError;

/// An RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` PEM).
pub struct RsaPrivateKey {
    inner: aws_lc_rs::rsa::KeyPair,
}

impl RsaPrivateKey {
    /// PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` PEM; also bare base64
    /// of either DER (Alipay's key tool writes one base64 line).
    ///
    /// Errors name the problem but never quote the input: parser messages
    /// can echo bytes of it, and here those bytes are the private key.
    pub fn from_pem(pem: &str) -> crate::Result<Self> {
        let text = pem.trim();
        if text.starts_with("-----BEGIN") {
            let block = ::pem::parse(text).map_err(|_| {
                CryptoError::InvalidEncoding("RSA private key PEM is malformed".into())
            })?;
            let tag = block.tag().to_owned();
            let der = Zeroizing::new(block.into_contents());
            let inner = match tag.as_str() {
                "PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_pkcs8(&der),
                "RSA PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_der(&der),
                other => {
                    return Err(CryptoError::InvalidKey(format!(
                        "expected a PRIVATE KEY or RSA PRIVATE KEY PEM block, got {other}"
                    )));
                }
            }
            .map_err(|e| CryptoError::InvalidKey(format!("RSA private key rejected: {e}")))?;
            return Ok(Self { inner });
        }
        let der = Zeroizing::new(crate::b64_decode_loose(text).map_err(|_| {
            CryptoError::InvalidEncoding("RSA private key is neither PEM nor base64 DER".into())
        })?);
        let inner = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der)
            .or_else(|_| aws_lc_rs::rsa::KeyPair::from_der(&der))
            .map_err(|e| CryptoError::InvalidKey(format!("RSA private key rejected: {e}")))?;
        Ok(Self { inner })
    }

    /// A fresh 2048-bit key (sandbox merchants, platform keys, tests).
    pub fn generate_2048() -> crate::Result<Self> {
        let inner = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| CryptoError::InvalidKey("RSA key generation failed".into()))?;
        Ok(Self { inner })
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> String {
        let der: Pkcs8V1Der<'static> = match self.inner.as_der() {
            Ok(der) => der,
            // aws-lc-rs can always serialise a key it holds.
            Err(_) => unreachable!("an RSA key pair always serialises to PKCS#8"),
        };
        crate::pem_encode("PRIVATE KEY", der.as_ref())
    }

    pub fn public_key(&self) -> RsaPublicKey {
        let der: PublicKeyX509Der<'static> = match self.inner.public_key().as_der() {
            Ok(der) => der,
            Err(_) => unreachable!("an RSA public key always serialises to SPKI"),
        };
        match RsaPublicKey::from_spki_der(der.as_ref()) {
            Ok(key) => key,
            Err(_) => unreachable!("the public half of an RSA key pair is a valid SPKI key"),
        }
    }

    /// SHA256withRSA signature bytes.
    pub fn sign_sha256(&self, msg: &[u8]) -> crate::Result<Vec<u8>> {
        let mut sig = vec![0u8; self.inner.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.inner
            .sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
            .map_err(|_| CryptoError::InvalidKey("RSA signing failed".into()))?;
        Ok(sig)
    }

    /// SHA256withRSA, standard base64.
    pub fn sign_sha256_base64(&self, msg: &[u8]) -> crate::Result<String> {
        Ok(STANDARD.encode(self.sign_sha256(msg)?))
    }
}

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaPrivateKey(***)")
    }
}

/// An RSA public key: SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`, or the key
/// of an X.509 `CERTIFICATE` PEM; also bare base64 DER (Alipay's console
/// hands out SPKI as one base64 line).
#[derive(Clone)]
pub struct RsaPublicKey {
    /// SubjectPublicKeyInfo DER, validated as an RSA key.
    spki: Vec<u8>,
    /// The same key, parsed once for verification (shared by clones).
    parsed: std::sync::Arc<signature::ParsedPublicKey>,
}

/// Two keys are equal when their SPKI encodings are.
impl PartialEq for RsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for RsaPublicKey {}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("spki", &hex::encode(&self.spki))
            .finish()
    }
}

impl RsaPublicKey {
    pub fn from_pem(pem: &str) -> crate::Result<Self> {
        let text = pem.trim();
        if text.starts_with("-----BEGIN") {
            let block = ::pem::parse(text)
                .map_err(|e| CryptoError::InvalidEncoding(format!("RSA public key PEM: {e}")))?;
            return match block.tag() {
                "PUBLIC KEY" | "RSA PUBLIC KEY" => Self::from_any_der(block.contents()),
                "CERTIFICATE" => {
                    crate::cert::Certificate::from_der(block.contents())?.rsa_public_key()
                }
                other => Err(CryptoError::InvalidKey(format!(
                    "expected a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE PEM block, got {other}"
                ))),
            };
        }
        Self::from_any_der(&crate::b64_decode_loose(text)?)
    }

    pub fn from_spki_der(der: &[u8]) -> crate::Result<Self> {
        // Accept only SPKI here: a PKCS#1 body starts with SEQUENCE{INTEGER},
        // an SPKI with SEQUENCE{SEQUENCE{OID…}}.
        use der::Decode as _;
        x509_cert::spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| CryptoError::InvalidEncoding(format!("SPKI DER: {e}")))?;
        Self::from_any_der(der)
    }

    /// SPKI or PKCS#1 DER, normalised to SPKI.
    fn from_any_der(der: &[u8]) -> crate::Result<Self> {
        let key = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|e| CryptoError::InvalidKey(format!("RSA public key rejected: {e}")))?;
        // Refuse at load time what verification would refuse anyway, so a
        // misconfigured key is reported when it is configured.
        let bits = key.modulus_len() * 8;
        if !(2048..=8192).contains(&bits) {
            return Err(CryptoError::InvalidKey(format!(
                "RSA public key has {bits} bits; SHA256withRSA needs 2048 to 8192"
            )));
        }
        let spki: PublicKeyX509Der<'static> = key
            .as_der()
            .map_err(|_| CryptoError::InvalidKey("RSA public key cannot be serialised".into()))?;
        let spki = spki.as_ref().to_vec();
        let parsed = signature::ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &spki)
            .map_err(|e| CryptoError::InvalidKey(format!("RSA public key rejected: {e}")))?;
        Ok(Self {
            spki,
            parsed: std::sync::Arc::new(parsed),
        })
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    pub fn to_spki_pem(&self) -> String {
        crate::pem_encode("PUBLIC KEY", &self.spki)
    }

    pub fn verify_sha256(&self, msg: &[u8], sig: &[u8]) -> crate::Result<()> {
        self.parsed
            .verify_sig(msg, sig)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// Verify a standard-base64 signature; bad base64 is `BadSignature`.
    pub fn verify_sha256_base64(&self, msg: &[u8], sig_b64: &str) -> crate::Result<()> {
        let sig = STANDARD
            .decode(sig_b64.trim().as_bytes())
            .map_err(|_| CryptoError::BadSignature)?;
        self.verify_sha256(msg, &sig)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;

    // A 2048-bit key made with OpenSSL 3.0 in all four PEM shapes.
    const PKCS8: &str = include_str!("../testdata/rsa_pkcs8.pem");
    const PKCS1: &str = include_str!("../testdata/rsa_pkcs1.pem");
    const SPKI: &str = include_str!("../testdata/rsa_spki.pem");
    const PKCS1_PUB: &str = include_str!("../testdata/rsa_pkcs1_pub.pem");
    const CERT: &str = include_str!("../testdata/ant_cert.pem");
    const RSA1024: &str = include_str!("../testdata/rsa1024_pkcs8.pem");

    /// A `Cashdesk-*` GET request message (ARCHITECTURE.md §5.1).
    const MSG: &[u8] = b"GET\n/api/cashier-desk/payment/list?token=abc\n1700000000\nnonce123\n\n";
    /// `openssl dgst -sha256 -sign rsa_pkcs8.pem | base64` over `MSG`
    /// (PKCS#1 v1.5 is deterministic, so our signature must be identical).
    const OPENSSL_SIG: &str = "Z8C4XGhFxTFq4r/b6k+n3SqH9vVlmNF9W5XciFwVzx0G+dIhreI2Y6kAz3SFwbnVkWE/zWO5TMrrYm2shMbDrW3FIp37AwQT8H2LSQhum5IRgpQQJAKjKvyzUGknA6+buWonpJaPx0ILFRqHTWyOLSB9pvqjkIvSQ4MvODf/foDbu8HUNw0JOaEMnZz/UEg7zR6/nbwnPq3uYLvxBG6n0iOhYL/0F3UOn4C6XDiMy4ynIrpweMHdVQDnUszWMIiNmSWBXGdZU0qGCi60mFOiuu4bSwpgA341WN/nigaEQhWx4yzLGsEXBb0b9XHzAW25tvOziR+S3ODpUlbUoUfacw==";

    /// The body of a PEM block as one base64 line (how Alipay's console
    /// hands out keys).
    fn bare_base64(pem: &str) -> String {
        pem.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    fn generated() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::generate_2048().unwrap())
    }

    #[test]
    fn signature_matches_openssl_for_pkcs8_and_pkcs1_keys() {
        for pem in [PKCS8, PKCS1, &bare_base64(PKCS8), &bare_base64(PKCS1)] {
            let key = RsaPrivateKey::from_pem(pem).unwrap();
            assert_eq!(key.sign_sha256_base64(MSG).unwrap(), OPENSSL_SIG);
            assert_eq!(key.sign_sha256(MSG).unwrap().len(), 256);
        }
    }

    #[test]
    fn openssl_signature_verifies_with_every_public_key_shape() {
        let shapes = [
            SPKI,
            PKCS1_PUB,
            CERT,
            &bare_base64(SPKI),
            &bare_base64(PKCS1_PUB),
        ];
        for pem in shapes {
            let key = RsaPublicKey::from_pem(pem).unwrap();
            key.verify_sha256_base64(MSG, OPENSSL_SIG).unwrap();
            // Every shape normalises to the same SPKI.
            assert_eq!(key.to_spki_pem(), SPKI);
        }
        let private = RsaPrivateKey::from_pem(PKCS8).unwrap();
        assert_eq!(private.public_key(), RsaPublicKey::from_pem(SPKI).unwrap());
    }

    #[test]
    fn pem_round_trips() {
        let key = RsaPrivateKey::from_pem(PKCS1).unwrap();
        let pkcs8 = key.to_pkcs8_pem();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = RsaPrivateKey::from_pem(&pkcs8).unwrap();
        assert_eq!(again.sign_sha256_base64(MSG).unwrap(), OPENSSL_SIG);

        let public = generated().public_key();
        assert_eq!(
            RsaPublicKey::from_pem(&public.to_spki_pem()).unwrap(),
            public
        );
        assert_eq!(
            RsaPublicKey::from_spki_der(public.spki_der()).unwrap(),
            public
        );
    }

    #[test]
    fn tampering_and_wrong_keys_fail() {
        let public = RsaPublicKey::from_pem(SPKI).unwrap();
        // Another message.
        assert!(matches!(
            public.verify_sha256_base64(b"GET\n/other\n1700000000\nnonce123\n\n", OPENSSL_SIG),
            Err(CryptoError::BadSignature)
        ));
        // One flipped bit in the signature.
        let mut sig = STANDARD.decode(OPENSSL_SIG).unwrap();
        sig[100] ^= 0x01;
        assert!(matches!(
            public.verify_sha256(MSG, &sig),
            Err(CryptoError::BadSignature)
        ));
        // Truncated, empty, not base64.
        assert!(public.verify_sha256(MSG, &sig[..255]).is_err());
        assert!(public.verify_sha256_base64(MSG, "").is_err());
        assert!(public.verify_sha256_base64(MSG, "not base64!").is_err());
        // The right signature under another key.
        assert!(matches!(
            generated()
                .public_key()
                .verify_sha256_base64(MSG, OPENSSL_SIG),
            Err(CryptoError::BadSignature)
        ));
    }

    #[test]
    fn bad_pem_and_wrong_key_types_are_errors() {
        for bad in [
            "",
            "garbage",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ] {
            assert!(RsaPrivateKey::from_pem(bad).is_err(), "{bad:?}");
            assert!(RsaPublicKey::from_pem(bad).is_err(), "{bad:?}");
        }
        // A public key or certificate where a private key is expected.
        assert!(matches!(
            RsaPrivateKey::from_pem(SPKI),
            Err(CryptoError::InvalidKey(_))
        ));
        assert!(matches!(
            RsaPrivateKey::from_pem(CERT),
            Err(CryptoError::InvalidKey(_))
        ));
        // A private key where a public key is expected.
        assert!(matches!(
            RsaPublicKey::from_pem(PKCS8),
            Err(CryptoError::InvalidKey(_))
        ));
        // An SM2 key is not an RSA key.
        let sm2 = include_str!("../testdata/sm2_pkcs8.pem");
        assert!(RsaPrivateKey::from_pem(sm2).is_err());
        assert!(RsaPublicKey::from_pem(include_str!("../testdata/sm2_spki.pem")).is_err());
        // Mismatched BEGIN/END lines.
        let mismatched = PKCS8.replace("END PRIVATE KEY", "END RSA PRIVATE KEY");
        assert!(matches!(
            RsaPrivateKey::from_pem(&mismatched),
            Err(CryptoError::InvalidEncoding(_))
        ));
        // `from_spki_der` takes SPKI only, not PKCS#1.
        let pkcs1_der = ::pem::parse(PKCS1_PUB).unwrap().into_contents();
        assert!(RsaPublicKey::from_spki_der(&pkcs1_der).is_err());
    }

    #[test]
    fn keys_under_2048_bits_are_refused() {
        // SHA256withRSA below 2048 bits is refused (RSA2 means 2048+).
        assert!(matches!(
            RsaPrivateKey::from_pem(RSA1024),
            Err(CryptoError::InvalidKey(_))
        ));
        // Its public half is refused when loaded, not at the first verify.
        let public = RsaPublicKey::from_pem(include_str!("../testdata/rsa1024_spki.pem"));
        assert!(matches!(public, Err(CryptoError::InvalidKey(m)) if m.contains("1024 bits")));
    }

    #[test]
    fn errors_and_debug_never_show_the_private_key() {
        let key = RsaPrivateKey::from_pem(PKCS8).unwrap();
        assert_eq!(format!("{key:?}"), "RsaPrivateKey(***)");
        // Corrupt one base64 character inside the key body.
        let body = bare_base64(PKCS8);
        let corrupt = format!("{}!{}", &body[..40], &body[41..]);
        let err = RsaPrivateKey::from_pem(&corrupt).unwrap_err().to_string();
        assert!(!err.contains(&body[30..40]), "{err}");
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{corrupt}\n-----END PRIVATE KEY-----\n");
        let err = RsaPrivateKey::from_pem(&pem).unwrap_err().to_string();
        assert!(!err.contains(&body[30..40]), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn sign_then_verify(msg in proptest::collection::vec(any::<u8>(), 0..512), flip in any::<usize>()) {
            let key = generated();
            let public = key.public_key();
            let sig = key.sign_sha256_base64(&msg).unwrap();
            prop_assert!(public.verify_sha256_base64(&msg, &sig).is_ok());
            // Any change to the message breaks the signature.
            let mut other = msg.clone();
            if other.is_empty() {
                other.push(0);
            } else {
                let i = flip % other.len();
                other[i] ^= 0x80;
            }
            prop_assert!(public.verify_sha256_base64(&other, &sig).is_err());
        }
    }
}
