//! WeChat Pay v2 parameter signing (PROTOCOLS.md "WeChat Pay API v2").
use std::collections::BTreeMap;

/// The two v2 signature types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WxSignType {
    Md5,
    HmacSha256,
}

impl WxSignType {
    /// `MD5` or `HMAC-SHA256` (the `sign_type` field's values).
    pub fn parse(s: &str) -> Option<Self> {
        todo!("{s}")
    }
    pub fn as_str(self) -> &'static str {
        todo!()
    }
}

/// stringA: every parameter with a non-empty value except `sign`, sorted by
/// name (byte order), `k=v` joined with `&`.
pub fn string_a(params: &BTreeMap<String, String>) -> String {
    todo!("{params:?}")
}

/// Uppercase hex signature of `params` (see [`string_a`]) with `&key=`.
pub fn sign(params: &BTreeMap<String, String>, api_key: &str, kind: WxSignType) -> String {
    todo!("{params:?}{api_key}{kind:?}")
}

/// Verify `params["sign"]` (constant-time, case-sensitive uppercase hex).
/// Missing `sign` is a failure.
pub fn verify(params: &BTreeMap<String, String>, api_key: &str, kind: WxSignType) -> bool {
    todo!("{params:?}{api_key}{kind:?}")
}

/// The AES-256-ECB key for refund-notification `req_info`: the 32 ASCII
/// bytes of lowercase hex MD5(api key).
pub fn refund_notify_key(api_key: &str) -> [u8; 32] {
    todo!("{api_key}")
}

/// Decrypt `req_info` (base64, AES-256-ECB, PKCS7) to its XML text.
pub fn decrypt_req_info(api_key: &str, req_info_b64: &str) -> crate::Result<String> {
    todo!("{api_key}{req_info_b64}")
}

/// Encrypt a refund-notification XML into `req_info` (the sandbox's side).
pub fn encrypt_req_info(api_key: &str, xml: &str) -> String {
    todo!("{api_key}{xml}")
}
