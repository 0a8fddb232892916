//! Chinese commercial cryptography: SM3 hash, SM3withSM2 signatures with a
//! user id (default `1234567812345678`), HMAC-SM3.

pub const DEFAULT_USER_ID: &[u8] = b"1234567812345678";

pub fn sm3(data: &[u8]) -> [u8; 32] {
    todo!("{data:?}")
}

pub fn hmac_sm3(key: &[u8], msg: &[u8]) -> [u8; 32] {
    todo!("{key:?}{msg:?}")
}

/// ZA = SM3(ENTL‖ID‖a‖b‖xG‖yG‖xA‖yA).
pub fn za(public_key: &Sm2PublicKey, user_id: &[u8]) -> [u8; 32] {
    todo!("{public_key:?}{user_id:?}")
}

pub struct Sm2PrivateKey {/* sm2::dsa::SigningKey or SecretKey */}

impl Sm2PrivateKey {
    pub fn generate() -> Self {
        todo!()
    }
    /// 32-byte big-endian scalar.
    pub fn from_bytes(d: &[u8]) -> crate::Result<Self> {
        todo!("{d:?}")
    }
    /// PKCS#8 `PRIVATE KEY` PEM or SEC1 `EC PRIVATE KEY` PEM.
    pub fn from_pem(pem: &str) -> crate::Result<Self> {
        todo!("{pem}")
    }
    pub fn to_pkcs8_pem(&self) -> String {
        todo!()
    }
    pub fn public_key(&self) -> Sm2PublicKey {
        todo!()
    }
    /// SM3withSM2 signature, DER `SEQUENCE{r,s}`.
    pub fn sign_der(&self, msg: &[u8], user_id: &[u8]) -> crate::Result<Vec<u8>> {
        todo!("{msg:?}{user_id:?}")
    }
}

impl std::fmt::Debug for Sm2PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm2PrivateKey(***)")
    }
}

#[derive(Clone, Debug)]
pub struct Sm2PublicKey {/* sm2::PublicKey */}

impl Sm2PublicKey {
    /// Uncompressed SEC1 point `04‖X‖Y`.
    pub fn from_sec1_bytes(b: &[u8]) -> crate::Result<Self> {
        todo!("{b:?}")
    }
    /// SPKI `PUBLIC KEY` PEM, or hex / base64 of `04‖X‖Y`.
    pub fn from_pem(pem: &str) -> crate::Result<Self> {
        todo!("{pem}")
    }
    pub fn to_spki_pem(&self) -> String {
        todo!()
    }
    pub fn to_sec1_bytes(&self) -> Vec<u8> {
        todo!()
    }
    pub fn verify_der(&self, msg: &[u8], user_id: &[u8], der_sig: &[u8]) -> crate::Result<()> {
        todo!("{msg:?}{user_id:?}{der_sig:?}")
    }
}
