//! WeChat Pay v2 parameter signing (PROTOCOLS.md "WeChat Pay API v2").
//!
//! stringA is every non-empty parameter except `sign`, sorted by name in byte
//! order; both signature types then sign `stringA&key=<api key>` — for
//! HMAC-SHA256 the HMAC input INCLUDES `&key=…` (and the HMAC key is the API
//! key), which is what WeChat does and a classic bug to miss. `sign_type` is
//! an ordinary parameter. Parameters live in a `BTreeMap<String, String>`,
//! whose order is exactly the byte order WeChat sorts by.
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::{CryptoError, digest};

/// The two v2 signature types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WxSignType {
    Md5,
    HmacSha256,
}

impl WxSignType {
    /// `MD5` or `HMAC-SHA256` (the `sign_type` field's values).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "MD5" => Some(Self::Md5),
            "HMAC-SHA256" => Some(Self::HmacSha256),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::HmacSha256 => "HMAC-SHA256",
        }
    }
}

/// stringA: every parameter with a non-empty value except `sign`, sorted by
/// name (byte order), `k=v` joined with `&`.
pub fn string_a(params: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in params {
        if k == "sign" || v.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Uppercase hex signature of `params` (see [`string_a`]) with `&key=`.
pub fn sign(params: &BTreeMap<String, String>, api_key: &str, kind: WxSignType) -> String {
    let mut input = string_a(params);
    input.push_str("&key=");
    input.push_str(api_key);
    let input = zeroize::Zeroizing::new(input);
    match kind {
        WxSignType::Md5 => hex::encode_upper(digest::md5(input.as_bytes())),
        WxSignType::HmacSha256 => {
            hex::encode_upper(digest::hmac_sha256(api_key.as_bytes(), input.as_bytes()))
        }
    }
}

/// Verify `params["sign"]` (constant-time, case-sensitive uppercase hex).
/// Missing `sign` is a failure.
pub fn verify(params: &BTreeMap<String, String>, api_key: &str, kind: WxSignType) -> bool {
    let Some(given) = params.get("sign") else {
        return false;
    };
    let expected = sign(params, api_key, kind);
    crate::ct_eq(expected.as_bytes(), given.as_bytes())
}

/// `paySign` for `wx.requestPayment` (v2): the [`sign`] of exactly
/// `appId, nonceStr, package, signType, timeStamp` (camelCase, as the mini
/// program passes them), `package` being `prepay_id=<id>` and `signType` the
/// order's sign type.
pub fn request_payment_sign(
    app_id: &str,
    time_stamp: &str,
    nonce_str: &str,
    package: &str,
    sign_type: WxSignType,
    api_key: &str,
) -> String {
    let params: BTreeMap<String, String> = [
        ("appId", app_id),
        ("nonceStr", nonce_str),
        ("package", package),
        ("signType", sign_type.as_str()),
        ("timeStamp", time_stamp),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    sign(&params, api_key, sign_type)
}

/// The AES-256-ECB key for refund-notification `req_info`: the 32 ASCII
/// bytes of lowercase hex MD5(api key).
pub fn refund_notify_key(api_key: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    // hex::encode_to_slice writes lowercase hex, 2 bytes per input byte.
    if hex::encode_to_slice(digest::md5(api_key.as_bytes()), &mut key).is_err() {
        unreachable!("16 bytes always encode to 32 hex characters");
    }
    key
}

/// Decrypt `req_info` (base64, AES-256-ECB, PKCS7) to its XML text.
pub fn decrypt_req_info(api_key: &str, req_info_b64: &str) -> crate::Result<String> {
    let compact: String = req_info_b64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let ciphertext = STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| CryptoError::InvalidEncoding(format!("req_info is not base64: {e}")))?;
    let key = zeroize::Zeroizing::new(refund_notify_key(api_key));
    let plaintext = crate::aead::aes256_ecb_pkcs7_decrypt(&key, &ciphertext)?;
    String::from_utf8(plaintext)
        .map_err(|_| CryptoError::InvalidInput("req_info plaintext is not UTF-8".into()))
}

/// Encrypt a refund-notification XML into `req_info` (the sandbox's side).
pub fn encrypt_req_info(api_key: &str, xml: &str) -> String {
    let key = zeroize::Zeroizing::new(refund_notify_key(api_key));
    STANDARD.encode(crate::aead::aes256_ecb_pkcs7_encrypt(&key, xml.as_bytes()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// PROTOCOLS.md "WeChat Pay API v2" vector, given in shuffled order.
    fn vector_params() -> BTreeMap<String, String> {
        params(&[
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
            ("mch_id", "10000100"),
            ("body", "test"),
            ("device_info", "1000"),
            ("appid", "wxd930ea5d5a258f4f"),
        ])
    }

    #[test]
    fn string_a_vector() {
        assert_eq!(
            string_a(&vector_params()),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        );
    }

    #[test]
    fn md5_vector() {
        assert_eq!(
            sign(&vector_params(), KEY, WxSignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn hmac_sha256_vector() {
        assert_eq!(
            sign(&vector_params(), KEY, WxSignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
        // The common bug (HMAC over stringA without `&key=`) gives another value.
        let buggy = hex::encode_upper(digest::hmac_sha256(
            KEY.as_bytes(),
            string_a(&vector_params()).as_bytes(),
        ));
        assert_ne!(buggy, sign(&vector_params(), KEY, WxSignType::HmacSha256));
    }

    #[test]
    fn empty_values_and_sign_are_skipped_sign_type_is_not() {
        let mut p = vector_params();
        p.insert("attach".into(), String::new());
        p.insert("sign".into(), "WHATEVER".into());
        assert_eq!(
            sign(&p, KEY, WxSignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        p.insert("sign_type".into(), "HMAC-SHA256".into());
        assert!(string_a(&p).ends_with("&nonce_str=ibuaiVcKdpRxkhJA&sign_type=HMAC-SHA256"));
        assert_ne!(
            sign(&p, KEY, WxSignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn sort_is_byte_order() {
        // Uppercase sorts before lowercase in ASCII.
        let p = params(&[("b", "1"), ("B", "2"), ("a_b", "3"), ("aB", "4")]);
        assert_eq!(string_a(&p), "B=2&aB=4&a_b=3&b=1");
    }

    #[test]
    fn request_payment_vectors() {
        let sign = |t| {
            request_payment_sign(
                "wxd930ea5d5a258f4f",
                "1490840662",
                "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
                "prepay_id=wx2017033010242291fcfe0db70013231072",
                t,
                KEY,
            )
        };
        assert_eq!(sign(WxSignType::Md5), "A3C4993E71916E54AE93F5D2B1E888AF");
        assert_eq!(
            sign(WxSignType::HmacSha256),
            "15FC5558B3F2A6AF14B8C4FEB53F8D822E04051B2C788ECDD0ABA657F9EA5A06"
        );
    }

    #[test]
    fn verify_accepts_the_right_signature_only() {
        for kind in [WxSignType::Md5, WxSignType::HmacSha256] {
            let mut p = vector_params();
            p.insert("sign".into(), sign(&p, KEY, kind));
            assert!(verify(&p, KEY, kind));
            // Wrong key, wrong type.
            assert!(!verify(&p, "192006250b4c09247ec02edce69f6a2e", kind));
            let other = if kind == WxSignType::Md5 {
                WxSignType::HmacSha256
            } else {
                WxSignType::Md5
            };
            assert!(!verify(&p, KEY, other));
            // A changed value; an unknown extra field (extras are signed too).
            let mut changed = p.clone();
            changed.insert("body".into(), "test2".into());
            assert!(!verify(&changed, KEY, kind));
            let mut extra = p.clone();
            extra.insert("coupon_fee".into(), "1".into());
            assert!(!verify(&extra, KEY, kind));
            // Tampered signature, missing signature.
            let mut tampered = p.clone();
            let sig = tampered.get_mut("sign").unwrap();
            sig.replace_range(0..1, if sig.starts_with('0') { "1" } else { "0" });
            assert!(!verify(&tampered, KEY, kind));
            let mut missing = p.clone();
            missing.remove("sign");
            assert!(!verify(&missing, KEY, kind));
        }
    }

    #[test]
    fn sign_type_names() {
        for t in [WxSignType::Md5, WxSignType::HmacSha256] {
            assert_eq!(WxSignType::parse(t.as_str()), Some(t));
        }
        assert_eq!(WxSignType::parse("md5"), None);
        assert_eq!(WxSignType::parse("HMAC-SHA1"), None);
    }

    #[test]
    fn refund_notify_key_vector() {
        // PROTOCOLS.md (from wechatpy's tests).
        assert_eq!(
            &refund_notify_key("OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk"),
            b"63dfc0c1f53d9bc83a8fdc365b8141da"
        );
    }

    /// `req_info` made with Python `cryptography` (AES-256-ECB, PKCS7, key =
    /// lowercase hex MD5 of the API key).
    const REQ_INFO: &str = "c4VF9Oes6x9KEr2vYaWe++jv5OWbCsPkXQSberqwB9xh+0zXFTMapSdRFZEpBHHuCOeRviScBFhcSYhJrpVI1EdQE4SkdQbZy5t9gvFuCziVsdOhqJUWo+o6yEz3plLo83Ko1V3kEl8olYYbVnnqxZLSyOR6xItLu99FRv6g8GAfTuVoy6KKg0RMX1NJwkVF0TcBnnMucXQRziK3DDXt8g==";
    const REQ_INFO_XML: &str = "<root><out_refund_no><![CDATA[R1]]></out_refund_no><refund_status><![CDATA[SUCCESS]]></refund_status><refund_fee><![CDATA[100]]></refund_fee></root>";

    #[test]
    fn req_info_decrypts() {
        let api_key = "OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk";
        assert_eq!(decrypt_req_info(api_key, REQ_INFO).unwrap(), REQ_INFO_XML);
        assert_eq!(encrypt_req_info(api_key, REQ_INFO_XML), REQ_INFO);
        // Line-wrapped base64 is fine.
        let wrapped = format!("{}\n{}", &REQ_INFO[..60], &REQ_INFO[60..]);
        assert_eq!(decrypt_req_info(api_key, &wrapped).unwrap(), REQ_INFO_XML);
    }

    #[test]
    fn req_info_failures_are_errors() {
        let api_key = "OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk";
        // Wrong key: the padding check fails (or, rarely, the text is not
        // what was sent; never the original XML).
        assert_ne!(
            decrypt_req_info("another key", REQ_INFO).ok().as_deref(),
            Some(REQ_INFO_XML)
        );
        assert!(matches!(
            decrypt_req_info(api_key, "not base64!"),
            Err(CryptoError::InvalidEncoding(_))
        ));
        assert!(matches!(
            decrypt_req_info(api_key, ""),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(decrypt_req_info(api_key, &REQ_INFO[..20]).is_err());
    }

    proptest! {
        #[test]
        fn sign_then_verify(
            map in proptest::collection::btree_map("[A-Za-z_]{1,12}", "[ -~]{0,20}", 0..12),
            key in "[A-Za-z0-9]{32}",
            hmac in any::<bool>(),
        ) {
            let kind = if hmac { WxSignType::HmacSha256 } else { WxSignType::Md5 };
            let mut p = map.clone();
            let sig = sign(&p, &key, kind);
            prop_assert!(sig.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
            p.insert("sign".into(), sig);
            prop_assert!(verify(&p, &key, kind));
            p.insert("zz_extra".into(), "x".into());
            prop_assert!(!verify(&p, &key, kind));
        }

        #[test]
        fn req_info_round_trip(xml in "\\PC{0,300}", key in "[A-Za-z0-9]{32}") {
            let req_info = encrypt_req_info(&key, &xml);
            prop_assert_eq!(decrypt_req_info(&key, &req_info).unwrap(), xml);
        }
    }
}
