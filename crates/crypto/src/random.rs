//! Randomness from the OS CSPRNG.

/// `len` characters of `[A-Za-z0-9]` (WeChat `nonce_str`, `Cashdesk-Nonce`).
pub fn nonce_str(len: usize) -> String {
    todo!("{len}")
}
/// An opaque URL-safe token with `bytes` random bytes (base64url, no padding).
pub fn token(bytes: usize) -> String {
    todo!("{bytes}")
}
/// `n` random bytes.
pub fn bytes(n: usize) -> Vec<u8> {
    todo!("{n}")
}
