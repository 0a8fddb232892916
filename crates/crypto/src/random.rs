//! Randomness from the OS CSPRNG (never a seeded or thread-local PRNG, so a
//! fork or a snapshot cannot repeat a nonce or a token).

use base64::Engine as _;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};

/// `len` characters of `[A-Za-z0-9]` (WeChat `nonce_str`, `Cashdesk-Nonce`).
pub fn nonce_str(len: usize) -> String {
    OsRng
        .sample_iter(rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// An opaque URL-safe token with `bytes` random bytes (base64url, no padding).
pub fn token(bytes: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self::bytes(bytes))
}

/// `n` random bytes.
pub fn bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    OsRng.fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let n = nonce_str(32);
        assert_eq!(n.len(), 32);
        assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(nonce_str(32), n);
        let t = token(32);
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(bytes(7).len(), 7);
        assert_ne!(bytes(16), bytes(16));
    }
}
