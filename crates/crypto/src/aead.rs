//! AES-GCM (WeChat v3 notifications and certificates: 32-byte APIv3 key;
//! the official SDK tests also use 16-byte keys) and AES-256-ECB/PKCS7
//! (WeChat v2 refund notifications).

/// Decrypt `ciphertext‖tag` with a 16- or 32-byte key and a 12-byte nonce.
pub fn aes_gcm_decrypt(key: &[u8], nonce: &[u8], aad: &[u8], ciphertext_and_tag: &[u8]) -> crate::Result<Vec<u8>> {
    todo!("{key:?}{nonce:?}{aad:?}{ciphertext_and_tag:?}")
}
/// Encrypt to `ciphertext‖tag`.
pub fn aes_gcm_encrypt(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> crate::Result<Vec<u8>> {
    todo!("{key:?}{nonce:?}{aad:?}{plaintext:?}")
}
pub fn aes256_ecb_pkcs7_encrypt(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    todo!("{key:?}{plaintext:?}")
}
pub fn aes256_ecb_pkcs7_decrypt(key: &[u8; 32], ciphertext: &[u8]) -> crate::Result<Vec<u8>> {
    todo!("{key:?}{ciphertext:?}")
}
