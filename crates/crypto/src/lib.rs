//! cashdesk-crypto: every signature scheme and cipher used by cashdesk, its
//! channel adapters, the sandbox and the SDK, behind small typed functions.
//!
//! API CONTRACT (other crates compile against these names; keep them):
//!
//! - [`wxv2`]: WeChat Pay v2 parameter signing (MD5 / HMAC-SHA256 with
//!   `&key=`), `wx.requestPayment` v2 paySign, refund `req_info` key.
//! - [`rsa`]: SHA256withRSA (PKCS#1 v1.5) with aws-lc-rs; PKCS#8 / PKCS#1
//!   private keys; SPKI / PKCS#1 / X.509 certificate public keys.
//! - [`cert`]: X.509 certificate facts (serial, issuer, public key), Alipay
//!   cert SN and root cert SN.
//! - [`sm`]: SM3, SM3withSM2 (user id, DER signatures), HMAC-SM3.
//! - [`digest`]: MD5, SHA-256, HMAC-SHA256 helpers.
//! - [`aead`]: AES-GCM (16- and 32-byte keys), AES-256-ECB/PKCS7.
//! - [`secretbox`]: XChaCha20-Poly1305 under a master key, AAD binds a
//!   secret to its row, for secrets at rest.
//! - [`apisig`]: the `Cashdesk-*` request/response/notification signatures.
//! - [`random`]: nonces and opaque tokens from the OS CSPRNG.
//! - [`Secret`]: a string that never prints.
//!
//! Signatures are always compared in constant time ([`ct_eq`]).

pub mod aead;
pub mod apisig;
pub mod cert;
pub mod digest;
pub mod random;
pub mod rsa;
pub mod secretbox;
pub mod sm;
pub mod wxv2;

mod secret;
pub use secret::Secret;

/// Everything that can go wrong in this crate. Messages never contain key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("invalid PEM or DER: {0}")]
    InvalidEncoding(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("decryption failed (wrong key, nonce, associated data or tampered ciphertext)")]
    Decrypt,
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

pub type Result<T, E = CryptoError> = std::result::Result<T, E>;

/// Constant-time equality of two byte strings (lengths may leak).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Equality of a secret and a guess, in constant time whatever their
/// lengths: their SHA-256 digests (always 32 bytes) are compared with
/// [`ct_eq`], so the time taken tells neither how much of the guess was
/// right nor how long the secret is. For tokens and keys that a caller
/// presents (the operator's bearer token); fixed-length signatures use
/// [`ct_eq`].
pub fn ct_eq_secret(given: &[u8], expected: &[u8]) -> bool {
    ct_eq(&digest::sha256(given), &digest::sha256(expected))
}

/// PEM with `\n` line endings (the form every key file and console uses).
pub(crate) fn pem_encode(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Standard base64 with ASCII whitespace ignored (keys pasted from consoles
/// wrap lines).
pub(crate) fn b64_decode_loose(s: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| CryptoError::InvalidEncoding(format!("not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"9A0A8659", b"9A0A8659"));
        assert!(!ct_eq(b"9A0A8659", b"9A0A8658"));
        assert!(!ct_eq(b"9A0A8659", b"9A0A865"));
        assert!(!ct_eq(b"", b"x"));
    }

    #[test]
    fn secret_equality_of_any_length() {
        let token = b"2kq9X4mZ7wQe1rT5yU8iO0pA3sD6fG9h";
        assert!(ct_eq_secret(token, token));
        assert!(!ct_eq_secret(&token[..31], token), "a prefix");
        assert!(!ct_eq_secret(b"", token));
        assert!(
            !ct_eq_secret(b"2kq9X4mZ7wQe1rT5yU8iO0pA3sD6fG9hX", token),
            "longer"
        );
        assert!(ct_eq_secret(b"", b""));
        let s = Secret::new("s3cret-s3cret-s3cret");
        assert!(s.matches(b"s3cret-s3cret-s3cret"));
        assert!(!s.matches(b"s3cret"));
        assert!(s == Secret::new("s3cret-s3cret-s3cret"));
        assert!(s != Secret::new("s3cret-s3cret-s3creT"));
    }

    #[test]
    fn loose_base64() {
        assert_eq!(b64_decode_loose(" aGVs\r\nbG8=\n").unwrap(), b"hello");
        assert!(matches!(
            b64_decode_loose("aGVs*bG8="),
            Err(CryptoError::InvalidEncoding(_))
        ));
    }

    #[test]
    fn pem_uses_lf() {
        let pem = pem_encode("PUBLIC KEY", &[1, 2, 3]);
        assert_eq!(
            pem,
            "-----BEGIN PUBLIC KEY-----\nAQID\n-----END PUBLIC KEY-----\n"
        );
    }
}
