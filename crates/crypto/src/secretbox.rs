//! Secrets at rest: XChaCha20-Poly1305 under a 32-byte master key. The
//! associated data binds a sealed secret to its row (e.g. `app:<appId>:key`),
//! so a ciphertext copied to another row does not open.

pub struct MasterKey {/* chacha20poly1305::Key, zeroized */}

impl MasterKey {
    pub fn generate() -> Self {
        todo!()
    }
    pub fn from_bytes(b: &[u8]) -> crate::Result<Self> {
        todo!("{b:?}")
    }
    /// Standard base64 of the 32 bytes (the key file's content).
    pub fn to_base64(&self) -> crate::Secret {
        todo!()
    }
    pub fn from_base64(s: &str) -> crate::Result<Self> {
        todo!("{s}")
    }
    /// `version(1)‖nonce(24)‖ciphertext‖tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        todo!("{plaintext:?}{aad:?}")
    }
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> crate::Result<zeroize::Zeroizing<Vec<u8>>> {
        todo!("{sealed:?}{aad:?}")
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}
