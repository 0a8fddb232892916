//! Chinese commercial cryptography: SM3 hash, SM3withSM2 signatures with a
//! user id (default `1234567812345678`), HMAC-SM3.
//!
//! Signing and verifying go through the `sm2` crate's prehash interface with
//! `e = SM3(ZA‖M)` computed here by [`za`], so a user id may be any byte
//! string (the crate's own API only takes UTF-8 ids). Signatures are DER
//! `SEQUENCE{r INTEGER, s INTEGER}`, the form Chinese channels exchange.

use der::asn1::UintRef;
use der::{Decode as _, Encode as _, Reader as _};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use sm2::dsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use sm2::elliptic_curve::sec1::ToEncodedPoint;
use sm2::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use sm3::{Digest, Sm3};
use zeroize::Zeroizing;

use crate::CryptoError;

pub const DEFAULT_USER_ID: &[u8] = b"1234567812345678";

/// The `sm2` crate wants a UTF-8 distinguishing id when building keys; it is
/// not used on the prehash paths this module takes.
const CRATE_DISTID: &str = "1234567812345678";

/// Longest user id ZA can encode (ENTL is a 16-bit bit count).
const MAX_USER_ID_LEN: usize = 8191;

// GB/T 32918.5 recommended curve parameters a, b, xG, yG.
const CURVE_A: [u8; 32] = hex32("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
const CURVE_B: [u8; 32] = hex32("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
const CURVE_GX: [u8; 32] =
    hex32("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
const CURVE_GY: [u8; 32] =
    hex32("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");

const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not hex"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

pub fn sm3(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

pub fn hmac_sm3(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = match <Hmac<Sm3> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// ZA = SM3(ENTL‖ID‖a‖b‖xG‖yG‖xA‖yA).
///
/// ENTL is the id length in bits as 16 bits; ids longer than 8191 bytes
/// cannot be encoded and are refused by [`Sm2PrivateKey::sign_der`] and
/// [`Sm2PublicKey::verify_der`] (here they would wrap).
pub fn za(public_key: &Sm2PublicKey, user_id: &[u8]) -> [u8; 32] {
    let entl = ((user_id.len() * 8) & 0xFFFF) as u16;
    let point = public_key.inner.to_encoded_point(false);
    let mut h = Sm3::new();
    h.update(entl.to_be_bytes());
    h.update(user_id);
    h.update(CURVE_A);
    h.update(CURVE_B);
    h.update(CURVE_GX);
    h.update(CURVE_GY);
    // An uncompressed point is 04‖X‖Y.
    h.update(&point.as_bytes()[1..]);
    h.finalize().into()
}

/// e = SM3(ZA‖M), the value SM2 signs.
fn message_hash(public_key: &Sm2PublicKey, user_id: &[u8], msg: &[u8]) -> crate::Result<[u8; 32]> {
    if user_id.len() > MAX_USER_ID_LEN {
        return Err(CryptoError::InvalidInput(
            "SM2 user id longer than 8191 bytes".into(),
        ));
    }
    let mut h = Sm3::new();
    h.update(za(public_key, user_id));
    h.update(msg);
    Ok(h.finalize().into())
}

/// An SM2 private key, with what signing needs derived once when it is
/// loaded: the public key (for ZA) and the `sm2` crate's signing key. Both
/// cost a base-point multiplication each; deriving them per signature made
/// SM2 signing 1.8× slower than OpenSSL's (docs/benchmarks.md).
pub struct Sm2PrivateKey {
    /// Zeroized on drop by the `elliptic-curve` crate.
    inner: sm2::SecretKey,
    /// Derived once (boxed: the key stays small to move around).
    derived: Box<Derived>,
}

struct Derived {
    /// The `sm2` crate's signing key (it holds a copy of the scalar, which
    /// that crate does not zeroize on drop; keys live as long as the
    /// process that loaded them).
    signing: sm2::dsa::SigningKey,
    public: Sm2PublicKey,
}

impl Sm2PrivateKey {
    fn new(inner: sm2::SecretKey) -> crate::Result<Self> {
        let signing = sm2::dsa::SigningKey::new(CRATE_DISTID, &inner)
            .map_err(|_| CryptoError::InvalidKey("SM2 signing key rejected".into()))?;
        let public = Sm2PublicKey {
            inner: sm2::PublicKey::from(signing.verifying_key()),
        };
        Ok(Self {
            inner,
            derived: Box::new(Derived { signing, public }),
        })
    }

    pub fn generate() -> Self {
        match Self::new(sm2::SecretKey::random(&mut OsRng)) {
            Ok(key) => key,
            Err(_) => unreachable!("a random non-zero scalar is a valid SM2 key"),
        }
    }

    /// 32-byte big-endian scalar.
    pub fn from_bytes(d: &[u8]) -> crate::Result<Self> {
        if d.len() != 32 {
            return Err(CryptoError::InvalidKey(format!(
                "SM2 private key must be 32 bytes, got {}",
                d.len()
            )));
        }
        let inner = sm2::SecretKey::from_slice(d).map_err(|_| {
            CryptoError::InvalidKey("SM2 private key is not a scalar in [1, n-1]".into())
        })?;
        Self::new(inner)
    }

    /// PKCS#8 `PRIVATE KEY` PEM, or SEC1 `EC PRIVATE KEY` / `SM2 PRIVATE
    /// KEY` PEM (OpenSSL 3 writes the latter); also the bare 64-hex-digit
    /// scalar some Chinese SDKs print, or bare base64 of the PKCS#8 / SEC1 DER.
    ///
    /// Errors never quote the input (it is the private key).
    pub fn from_pem(pem: &str) -> crate::Result<Self> {
        let text = pem.trim();
        let rejected =
            |what: &str| CryptoError::InvalidKey(format!("SM2 {what} private key rejected"));
        if text.starts_with("-----BEGIN") {
            let block = ::pem::parse(text).map_err(|_| {
                CryptoError::InvalidEncoding("SM2 private key PEM is malformed".into())
            })?;
            let tag = block.tag().to_owned();
            let der = Zeroizing::new(block.into_contents());
            let inner = match tag.as_str() {
                "PRIVATE KEY" => {
                    sm2::SecretKey::from_pkcs8_der(&der).map_err(|_| rejected("PKCS#8"))?
                }
                "EC PRIVATE KEY" | "SM2 PRIVATE KEY" => {
                    sm2::SecretKey::from_sec1_der(&der).map_err(|_| rejected("SEC1"))?
                }
                other => {
                    return Err(CryptoError::InvalidKey(format!(
                        "expected a PRIVATE KEY, EC PRIVATE KEY or SM2 PRIVATE KEY PEM block, got {other}"
                    )));
                }
            };
            return Self::new(inner);
        }
        if text.len() == 64 && text.bytes().all(|c| c.is_ascii_hexdigit()) {
            let d = Zeroizing::new(
                hex::decode(text)
                    .map_err(|_| CryptoError::InvalidEncoding("SM2 private key hex".into()))?,
            );
            return Self::from_bytes(&d);
        }
        let der = Zeroizing::new(crate::b64_decode_loose(text).map_err(|_| {
            CryptoError::InvalidEncoding("SM2 private key is neither PEM, hex nor base64".into())
        })?);
        let inner = sm2::SecretKey::from_pkcs8_der(&der)
            .or_else(|_| sm2::SecretKey::from_sec1_der(&der))
            .map_err(|_| rejected("DER"))?;
        Self::new(inner)
    }

    pub fn to_pkcs8_pem(&self) -> String {
        match self.inner.to_pkcs8_pem(LineEnding::LF) {
            Ok(pem) => pem.to_string(),
            Err(_) => unreachable!("an SM2 secret key always serialises to PKCS#8"),
        }
    }

    pub fn public_key(&self) -> Sm2PublicKey {
        self.derived.public.clone()
    }

    /// SM3withSM2 signature, DER `SEQUENCE{r,s}`.
    pub fn sign_der(&self, msg: &[u8], user_id: &[u8]) -> crate::Result<Vec<u8>> {
        let e = message_hash(&self.derived.public, user_id, msg)?;
        let sig: sm2::dsa::Signature =
            self.derived
                .signing
                .sign_prehash_with_rng(&mut OsRng, &e)
                .map_err(|_| CryptoError::InvalidKey("SM2 signing failed".into()))?;
        encode_der_signature(&sig)
    }
}

impl std::fmt::Debug for Sm2PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm2PrivateKey(***)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sm2PublicKey {
    inner: sm2::PublicKey,
}

impl Sm2PublicKey {
    /// Uncompressed SEC1 point `04‖X‖Y` (compressed points and a bare 64-byte
    /// `X‖Y`, as some SDKs print it, are accepted too).
    pub fn from_sec1_bytes(b: &[u8]) -> crate::Result<Self> {
        let mut buf;
        let bytes = if b.len() == 64 {
            buf = Vec::with_capacity(65);
            buf.push(0x04);
            buf.extend_from_slice(b);
            &buf[..]
        } else {
            b
        };
        let inner = sm2::PublicKey::from_sec1_bytes(bytes)
            .map_err(|_| CryptoError::InvalidKey("not a point on the SM2 curve".into()))?;
        Ok(Self { inner })
    }

    /// SPKI `PUBLIC KEY` PEM, or hex / base64 of `04‖X‖Y`.
    pub fn from_pem(pem: &str) -> crate::Result<Self> {
        let text = pem.trim();
        if text.starts_with("-----BEGIN") {
            let inner = sm2::PublicKey::from_public_key_pem(text).map_err(|e| {
                CryptoError::InvalidKey(format!("SM2 SPKI public key rejected: {e}"))
            })?;
            return Ok(Self { inner });
        }
        if !text.is_empty()
            && text.len().is_multiple_of(2)
            && text.bytes().all(|c| c.is_ascii_hexdigit())
        {
            let bytes =
                hex::decode(text).map_err(|e| CryptoError::InvalidEncoding(format!("hex: {e}")))?;
            return Self::from_sec1_bytes(&bytes);
        }
        let bytes = crate::b64_decode_loose(text)?;
        if let Ok(inner) = sm2::PublicKey::from_public_key_der(&bytes) {
            return Ok(Self { inner });
        }
        Self::from_sec1_bytes(&bytes)
    }

    pub fn to_spki_pem(&self) -> String {
        match self.inner.to_public_key_pem(LineEnding::LF) {
            Ok(pem) => pem,
            Err(_) => unreachable!("an SM2 public key always serialises to SPKI"),
        }
    }

    pub fn to_sec1_bytes(&self) -> Vec<u8> {
        self.inner.to_encoded_point(false).as_bytes().to_vec()
    }

    pub fn verify_der(&self, msg: &[u8], user_id: &[u8], der_sig: &[u8]) -> crate::Result<()> {
        let sig = decode_der_signature(der_sig)?;
        let e = message_hash(self, user_id, msg)?;
        let key = sm2::dsa::VerifyingKey::new(CRATE_DISTID, self.inner)
            .map_err(|_| CryptoError::InvalidKey("SM2 verifying key rejected".into()))?;
        key.verify_prehash(&e, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }
}

/// DER `SEQUENCE{INTEGER r, INTEGER s}`.
fn encode_der_signature(sig: &sm2::dsa::Signature) -> crate::Result<Vec<u8>> {
    let enc = |bytes: &[u8]| -> crate::Result<Vec<u8>> {
        UintRef::new(bytes)
            .and_then(|u| u.to_der())
            .map_err(|e| CryptoError::InvalidEncoding(format!("SM2 signature DER: {e}")))
    };
    let r = enc(&sig.r_bytes())?;
    let s = enc(&sig.s_bytes())?;
    // Two INTEGERs of at most 33 bytes each: the content is < 128 bytes, so
    // the short length form applies.
    let len = r.len() + s.len();
    let mut out = Vec::with_capacity(2 + len);
    out.push(0x30);
    out.push(len as u8);
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    Ok(out)
}

/// Strict DER decoding; anything malformed is `BadSignature`.
fn decode_der_signature(der: &[u8]) -> crate::Result<sm2::dsa::Signature> {
    let parse = || -> der::Result<([u8; 32], [u8; 32])> {
        let mut reader = der::SliceReader::new(der)?;
        let (r, s) = reader.sequence(|seq| Ok((UintRef::decode(seq)?, UintRef::decode(seq)?)))?;
        reader.finish(())?;
        Ok((pad32(r.as_bytes())?, pad32(s.as_bytes())?))
    };
    let (r, s) = parse().map_err(|_| CryptoError::BadSignature)?;
    sm2::dsa::Signature::from_scalars(r, s).map_err(|_| CryptoError::BadSignature)
}

fn pad32(b: &[u8]) -> der::Result<[u8; 32]> {
    if b.len() > 32 {
        return Err(der::ErrorKind::Overlength.into());
    }
    let mut out = [0u8; 32];
    out[32 - b.len()..].copy_from_slice(b);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;
    use sm2::elliptic_curve::PrimeField;
    use sm2::elliptic_curve::ops::{MulByGenerator, Reduce};
    use sm2::elliptic_curve::point::AffineCoordinates;

    use super::*;

    // An SM2 key made with OpenSSL 3.0 (`genpkey -algorithm EC -pkeyopt
    // ec_paramgen_curve:SM2`) and a signature it made with
    // `dgst -sm3 -sign … -sigopt distid:1234567812345678`.
    const OSSL_PKCS8: &str = include_str!("../testdata/sm2_pkcs8.pem");
    const OSSL_SEC1: &str = include_str!("../testdata/sm2_sec1.pem");
    const OSSL_SPKI: &str = include_str!("../testdata/sm2_spki.pem");
    const OSSL_D: &str = "42298c78275c179c4b839b73aaf9a6bd89110e50a9c84fc21157bec3f5b878f3";
    const OSSL_POINT: &str = "0490f61c307b9bf7b2a2a5cfe9d5fb6307bf97e05ba26e4e6bdd1520441e1e4862\
                              f5a2b7ff680bd1415180837bc082d19c6d1636faf997c7b63a6bc0047baaeb05";
    const OSSL_MSG: &[u8] = b"POST\n/api/cashier-desk/unified/orders\n1700000000\nn0nce\n{\"outTradeNo\":\"T1\",\"amount\":1}\n";
    const OSSL_SIG: &str = "MEYCIQCQ1O6dxWnOG6WNGIhJnbMkkFkraexwEM8DShTI+pCpHwIhAMrlrz4WQs0h3mYIAOGrl0CSZKsRysJXxsVTZ2r3Z3OF";

    // GB/T 32918.2-2016 annex A (PROTOCOLS.md "SM3 / SM2").
    const ANNEX_D: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
    const ANNEX_K: &str = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21";
    const ANNEX_ZA: &str = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3";
    const ANNEX_R: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
    const ANNEX_S: &str = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
    const ANNEX_MSG: &[u8] = b"message digest";

    fn annex_key() -> Sm2PrivateKey {
        Sm2PrivateKey::from_bytes(&hex::decode(ANNEX_D).unwrap()).unwrap()
    }

    fn annex_der_signature() -> Vec<u8> {
        let r: [u8; 32] = hex::decode(ANNEX_R).unwrap().try_into().unwrap();
        let s: [u8; 32] = hex::decode(ANNEX_S).unwrap().try_into().unwrap();
        encode_der_signature(&sm2::dsa::Signature::from_scalars(r, s).unwrap()).unwrap()
    }

    fn generated() -> &'static Sm2PrivateKey {
        static KEY: OnceLock<Sm2PrivateKey> = OnceLock::new();
        KEY.get_or_init(Sm2PrivateKey::generate)
    }

    #[test]
    fn sm3_vectors() {
        assert_eq!(
            hex::encode(sm3(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            hex::encode(sm3("abcd".repeat(16).as_bytes())),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }

    #[test]
    fn hmac_sm3_matches_openssl() {
        // `openssl mac -digest SM3 -macopt key:k3y-0f-app-2024 HMAC`.
        let msg = b"POST\n/api/cashier-desk/unified/orders?x=1\n1700000000\nAbC123\n{\"outTradeNo\":\"T1\",\"amount\":100}\n";
        assert_eq!(
            hex::encode(hmac_sm3(b"k3y-0f-app-2024", msg)),
            "45e687baab90c668bd558961210479454f007ae68071fa0f6b0a03fcebff9d32"
        );
        assert_ne!(
            hmac_sm3(b"k3y-0f-app-2025", msg),
            hmac_sm3(b"k3y-0f-app-2024", msg)
        );
    }

    #[test]
    fn annex_a_za() {
        let za = za(&annex_key().public_key(), DEFAULT_USER_ID);
        assert_eq!(hex::encode_upper(za), ANNEX_ZA);
    }

    #[test]
    fn annex_a_signature_verifies() {
        let public = annex_key().public_key();
        public
            .verify_der(ANNEX_MSG, DEFAULT_USER_ID, &annex_der_signature())
            .unwrap();
        assert!(
            public
                .verify_der(b"message digesT", DEFAULT_USER_ID, &annex_der_signature())
                .is_err()
        );
        assert!(
            public
                .verify_der(ANNEX_MSG, b"1234567812345679", &annex_der_signature())
                .is_err()
        );
    }

    /// With the annex's k, the signing equations over our e = SM3(ZA‖M)
    /// give exactly the annex's (r, s). (The `sm2` crate derives k itself,
    /// so this recomputes A4–A6 with the fixed k.)
    #[test]
    fn annex_a_signature_with_fixed_k() {
        let key = annex_key();
        let e_bytes = message_hash(&key.public_key(), DEFAULT_USER_ID, ANNEX_MSG).unwrap();
        let e = <sm2::Scalar as Reduce<sm2::U256>>::reduce_bytes(&e_bytes.into());
        let scalar = |h: &str| {
            let bytes: [u8; 32] = hex::decode(h).unwrap().try_into().unwrap();
            sm2::Scalar::from_repr(bytes.into()).unwrap()
        };
        let d = scalar(ANNEX_D);
        let k = scalar(ANNEX_K);
        let x1 = sm2::ProjectivePoint::mul_by_generator(&k).to_affine().x();
        let r = e + <sm2::Scalar as Reduce<sm2::U256>>::reduce_bytes(&x1);
        let s = (sm2::Scalar::ONE + d).invert().unwrap() * (k - r * d);
        assert_eq!(hex::encode_upper(r.to_repr()), ANNEX_R);
        assert_eq!(hex::encode_upper(s.to_repr()), ANNEX_S);
    }

    #[test]
    fn openssl_signature_verifies() {
        let sig = STANDARD.decode(OSSL_SIG).unwrap();
        let public = Sm2PublicKey::from_pem(OSSL_SPKI).unwrap();
        public.verify_der(OSSL_MSG, DEFAULT_USER_ID, &sig).unwrap();
        // The same key in every accepted shape.
        let point = hex::decode(OSSL_POINT).unwrap();
        assert_eq!(public.to_sec1_bytes(), point);
        assert_eq!(Sm2PublicKey::from_sec1_bytes(&point).unwrap(), public);
        assert_eq!(Sm2PublicKey::from_sec1_bytes(&point[1..]).unwrap(), public);
        assert_eq!(Sm2PublicKey::from_pem(OSSL_POINT).unwrap(), public);
        assert_eq!(
            Sm2PublicKey::from_pem(&STANDARD.encode(&point)).unwrap(),
            public
        );
        let spki_b64: String = OSSL_SPKI
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert_eq!(Sm2PublicKey::from_pem(&spki_b64).unwrap(), public);
        assert_eq!(public.to_spki_pem(), OSSL_SPKI);
        for private in [OSSL_PKCS8, OSSL_SEC1, OSSL_D] {
            let key = Sm2PrivateKey::from_pem(private).unwrap();
            assert_eq!(key.public_key(), public);
        }
        // The OpenSSL signature under another user id, key or message fails.
        assert!(
            public
                .verify_der(OSSL_MSG, b"ALICE123@YAHOO.COM", &sig)
                .is_err()
        );
        assert!(
            generated()
                .public_key()
                .verify_der(OSSL_MSG, DEFAULT_USER_ID, &sig)
                .is_err()
        );
        assert!(
            public
                .verify_der(&OSSL_MSG[1..], DEFAULT_USER_ID, &sig)
                .is_err()
        );
    }

    #[test]
    fn pem_round_trips() {
        let key = generated();
        let again = Sm2PrivateKey::from_pem(&key.to_pkcs8_pem()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = Sm2PublicKey::from_pem(&key.public_key().to_spki_pem()).unwrap();
        assert_eq!(public, key.public_key());
        let sig = again.sign_der(b"x", DEFAULT_USER_ID).unwrap();
        public.verify_der(b"x", DEFAULT_USER_ID, &sig).unwrap();
    }

    #[test]
    fn malformed_signatures_are_bad_signatures() {
        let public = annex_key().public_key();
        let good = annex_der_signature();
        let verify = |der: &[u8]| public.verify_der(ANNEX_MSG, DEFAULT_USER_ID, der);
        verify(&good).unwrap();
        let mut trailing = good.clone();
        trailing.push(0);
        let mut flipped = good.clone();
        flipped[10] ^= 0x01;
        let raw_rs = [hex::decode(ANNEX_R).unwrap(), hex::decode(ANNEX_S).unwrap()].concat();
        // r with a superfluous second leading zero (not minimal DER).
        let non_minimal = [
            &[0x30, 0x47, 0x02, 0x22, 0x00, 0x00][..],
            &hex::decode(ANNEX_R).unwrap()[..],
            &[0x02, 0x21, 0x00][..],
            &hex::decode(ANNEX_S).unwrap()[..],
        ]
        .concat();
        // r = 0.
        let zero_r = [
            &[0x30, 0x26, 0x02, 0x01, 0x00, 0x02, 0x21, 0x00][..],
            &hex::decode(ANNEX_S).unwrap()[..],
        ]
        .concat();
        for bad in [
            &[][..],
            &good[..good.len() - 1],
            &trailing,
            &flipped,
            &raw_rs,
            &non_minimal,
            &zero_r,
        ] {
            assert!(
                matches!(verify(bad), Err(CryptoError::BadSignature)),
                "{}",
                hex::encode(bad)
            );
        }
    }

    #[test]
    fn der_encoding_is_minimal() {
        // r (0xF5…) and s (0xB1…) have their high bit set: a 0x00 sign byte
        // makes each 33 bytes.
        let der = annex_der_signature();
        assert_eq!(&der[..4], &[0x30, 0x46, 0x02, 0x21]);
        assert_eq!(der[4], 0x00);
        // s = 0x00…01: one content byte.
        let mut s = [0u8; 32];
        s[31] = 1;
        let r: [u8; 32] = hex::decode(ANNEX_R).unwrap().try_into().unwrap();
        let der = encode_der_signature(&sm2::dsa::Signature::from_scalars(r, s).unwrap()).unwrap();
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
        assert_eq!(decode_der_signature(&der).unwrap().s_bytes().as_slice(), &s);
    }

    #[test]
    fn bad_keys_are_errors() {
        assert!(
            Sm2PrivateKey::from_bytes(&[0u8; 32]).is_err(),
            "zero is not a key"
        );
        assert!(
            Sm2PrivateKey::from_bytes(&[0xFF; 32]).is_err(),
            "n or more is not a key"
        );
        assert!(Sm2PrivateKey::from_bytes(&[1u8; 31]).is_err());
        for bad in [
            "",
            "garbage",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ] {
            assert!(Sm2PrivateKey::from_pem(bad).is_err(), "{bad:?}");
            assert!(Sm2PublicKey::from_pem(bad).is_err(), "{bad:?}");
        }
        // RSA keys are not SM2 keys.
        assert!(Sm2PrivateKey::from_pem(include_str!("../testdata/rsa_pkcs8.pem")).is_err());
        assert!(Sm2PublicKey::from_pem(include_str!("../testdata/rsa_spki.pem")).is_err());
        // A P-256 certificate key is not an SM2 key either.
        assert!(Sm2PublicKey::from_pem(include_str!("../testdata/ec_cert.pem")).is_err());
        // A point not on the curve.
        let mut point = hex::decode(OSSL_POINT).unwrap();
        point[64] ^= 1;
        assert!(matches!(
            Sm2PublicKey::from_sec1_bytes(&point),
            Err(CryptoError::InvalidKey(_))
        ));
        // Private-key errors do not quote the key.
        let corrupt = format!("{}!", &OSSL_D[..63]);
        let err = Sm2PrivateKey::from_pem(&corrupt).unwrap_err().to_string();
        assert!(!err.contains(&OSSL_D[..20]), "{err}");
        assert_eq!(format!("{:?}", generated()), "Sm2PrivateKey(***)");
    }

    #[test]
    fn user_id_too_long_is_refused() {
        let long = vec![b'a'; MAX_USER_ID_LEN + 1];
        assert!(matches!(
            generated().sign_der(b"m", &long),
            Err(CryptoError::InvalidInput(_))
        ));
        let sig = generated().sign_der(b"m", DEFAULT_USER_ID).unwrap();
        assert!(
            generated()
                .public_key()
                .verify_der(b"m", &long, &sig)
                .is_err()
        );
        // The longest encodable id works.
        let longest = vec![b'a'; MAX_USER_ID_LEN];
        let sig = generated().sign_der(b"m", &longest).unwrap();
        generated()
            .public_key()
            .verify_der(b"m", &longest, &sig)
            .unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn sign_then_verify(
            msg in proptest::collection::vec(any::<u8>(), 0..256),
            user_id in proptest::collection::vec(any::<u8>(), 0..40),
            flip in any::<usize>(),
        ) {
            let key = generated();
            let public = key.public_key();
            let sig = key.sign_der(&msg, &user_id).unwrap();
            prop_assert!(public.verify_der(&msg, &user_id, &sig).is_ok());
            // Strict DER: decoding and re-encoding gives the same bytes.
            let reencoded = encode_der_signature(&decode_der_signature(&sig).unwrap()).unwrap();
            prop_assert_eq!(&reencoded, &sig);
            let mut other = msg.clone();
            if other.is_empty() {
                other.push(1);
            } else {
                let i = flip % other.len();
                other[i] ^= 0x01;
            }
            prop_assert!(public.verify_der(&other, &user_id, &sig).is_err());
            let mut other_id = user_id.clone();
            other_id.push(b'x');
            prop_assert!(public.verify_der(&msg, &other_id, &sig).is_err());
        }
    }
}
