//! SHA256withRSA (PKCS#1 v1.5), the "RSA2" of Alipay and the signature of
//! WeChat Pay v3 and Lakala, on aws-lc-rs.

/// An RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` PEM).
pub struct RsaPrivateKey {/* aws_lc_rs::rsa::KeyPair */}

impl RsaPrivateKey {
    pub fn from_pem(pem: &str) -> crate::Result<Self> {
        todo!("{pem}")
    }
    /// A fresh 2048-bit key (sandbox merchants, platform keys, tests).
    pub fn generate_2048() -> crate::Result<Self> {
        todo!()
    }
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> String {
        todo!()
    }
    pub fn public_key(&self) -> RsaPublicKey {
        todo!()
    }
    /// SHA256withRSA signature bytes.
    pub fn sign_sha256(&self, msg: &[u8]) -> crate::Result<Vec<u8>> {
        todo!("{msg:?}")
    }
    /// SHA256withRSA, standard base64.
    pub fn sign_sha256_base64(&self, msg: &[u8]) -> crate::Result<String> {
        todo!("{msg:?}")
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
#[derive(Clone, Debug)]
pub struct RsaPublicKey {/* SPKI DER */}

impl RsaPublicKey {
    pub fn from_pem(pem: &str) -> crate::Result<Self> {
        todo!("{pem}")
    }
    pub fn from_spki_der(der: &[u8]) -> crate::Result<Self> {
        todo!("{der:?}")
    }
    pub fn to_spki_pem(&self) -> String {
        todo!()
    }
    pub fn verify_sha256(&self, msg: &[u8], sig: &[u8]) -> crate::Result<()> {
        todo!("{msg:?}{sig:?}")
    }
    /// Verify a standard-base64 signature; bad base64 is `BadSignature`.
    pub fn verify_sha256_base64(&self, msg: &[u8], sig_b64: &str) -> crate::Result<()> {
        todo!("{msg:?}{sig_b64}")
    }
}
