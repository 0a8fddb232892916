//! The `Cashdesk-*` signature (ARCHITECTURE.md §5.1), shared by the server,
//! the SDK and the sandbox so the three can never disagree.
//!
//! - request / notification: `METHOD\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nBODY\n`
//! - response: `TIMESTAMP\nNONCE\nBODY\n`
//! - HMAC-SHA256 / HMAC-SM3: lowercase hex with the app key;
//!   MD5: lowercase hex md5(string_to_sign + appKey);
//!   RSA2 (SHA256withRSA) / SM2 (SM3withSM2, user id 1234567812345678, DER):
//!   standard base64.

use cashdesk_core::SignType;

pub const HEADER_APP_ID: &str = "Cashdesk-App-Id";
pub const HEADER_TIMESTAMP: &str = "Cashdesk-Timestamp";
pub const HEADER_NONCE: &str = "Cashdesk-Nonce";
pub const HEADER_SIGN_TYPE: &str = "Cashdesk-Sign-Type";
pub const HEADER_SIGNATURE: &str = "Cashdesk-Signature";

pub fn request_message(method: &str, path_and_query: &str, timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    todo!("{method}{path_and_query}{timestamp}{nonce}{body:?}")
}

pub fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    todo!("{timestamp}{nonce}{body:?}")
}

/// Key material that can sign.
pub enum Signer<'a> {
    /// HMAC-SHA256, HMAC-SM3, MD5: the app key.
    Shared(SignType, &'a [u8]),
    Rsa(&'a crate::rsa::RsaPrivateKey),
    Sm2(&'a crate::sm::Sm2PrivateKey),
}

/// Key material that can verify.
pub enum Verifier<'a> {
    Shared(SignType, &'a [u8]),
    Rsa(&'a crate::rsa::RsaPublicKey),
    Sm2(&'a crate::sm::Sm2PublicKey),
}

impl Signer<'_> {
    pub fn sign_type(&self) -> SignType {
        todo!()
    }
    pub fn sign(&self, message: &[u8]) -> crate::Result<String> {
        todo!("{message:?}")
    }
}

impl Verifier<'_> {
    pub fn sign_type(&self) -> SignType {
        todo!()
    }
    /// Constant-time for the shared-key types.
    pub fn verify(&self, message: &[u8], signature: &str) -> crate::Result<()> {
        todo!("{message:?}{signature}")
    }
}
