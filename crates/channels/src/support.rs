//! Small helpers every adapter uses: base URLs and joining paths onto
//! them, byte-bounded truncation, credential field checks (required
//! fields, RSA keys, extra trusted CA certificates), secret deserializers
//! and URL encoding. They lived in the WeChat module first; a channel no
//! longer borrows them from a sibling channel.

use cashdesk_crypto::Secret;
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use url::Url;

/// An http(s) base URL without credentials, query or fragment.
pub(crate) fn parse_base_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("base URL `{s}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("base URL `{s}` must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "base URL `{s}` must not have credentials, a query or a fragment"
        ));
    }
    Ok(url)
}

/// `base` + `path` (path starts with `/` or not; query allowed in `path`).
/// A base with a path prefix (the sandbox's `/sandbox/wechat`) keeps it.
pub(crate) fn join_url(base: &Url, path: &str) -> String {
    let b = base.as_str().trim_end_matches('/');
    let p = path.trim_start_matches('/');
    format!("{b}/{p}")
}

/// At most `max` bytes of `s`, cut on a character boundary.
pub(crate) fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Percent-encode one path segment, query value or form value.
pub(crate) fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A non-empty, trimmed credentials field.
pub(crate) fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, String> {
    let v = value.trim();
    if v.is_empty() {
        Err(format!("credentials.{field} is required"))
    } else {
        Ok(v)
    }
}

pub(crate) fn parse_private_key(field: &str, pem: &str) -> Result<RsaPrivateKey, String> {
    RsaPrivateKey::from_pem(pem)
        .map_err(|e| format!("credentials.{field} is not a usable RSA private key: {e}"))
}

pub(crate) fn parse_public_key(field: &str, pem: &str) -> Result<RsaPublicKey, String> {
    RsaPublicKey::from_pem(pem)
        .map_err(|e| format!("credentials.{field} is not a usable RSA public key: {e}"))
}

/// `credentials.caCertPem`: an extra trusted root for the channel's HTTPS.
pub(crate) fn check_ca_pem(pem: &str) -> Result<(), String> {
    match reqwest::Certificate::from_pem_bundle(pem.as_bytes()) {
        Ok(c) if !c.is_empty() => Ok(()),
        Ok(_) => Err("credentials.caCertPem holds no certificate".into()),
        Err(e) => Err(format!(
            "credentials.caCertPem is not a PEM certificate: {e}"
        )),
    }
}

/// Deserializes a string straight into a [`Secret`] (never kept in clear
/// in a plain `String` field).
pub(crate) fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

/// [`secret`] for an optional field.
pub(crate) fn opt_secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Secret>, D::Error> {
    Option::<String>::deserialize(d).map(|o| o.map(Secret::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_truncation() {
        let base = parse_base_url("http://127.0.0.1:1/sandbox/wechat/").unwrap();
        assert_eq!(
            join_url(&base, "/v3/pay"),
            "http://127.0.0.1:1/sandbox/wechat/v3/pay"
        );
        let base = parse_base_url("https://api.mch.weixin.qq.com").unwrap();
        assert_eq!(
            join_url(&base, "pay/unifiedorder"),
            "https://api.mch.weixin.qq.com/pay/unifiedorder"
        );
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("https://u:p@x").is_err());
        assert!(parse_base_url("https://x/?a=1").is_err());
        assert_eq!(truncate_bytes("中文", 4), "中");
        assert_eq!(truncate_bytes("abc", 5), "abc");
        assert_eq!(url_encode("a b/中"), "a+b%2F%E4%B8%AD");
        assert_eq!(required("appId", " x ").unwrap(), "x");
        assert_eq!(
            required("appId", " ").unwrap_err(),
            "credentials.appId is required"
        );
    }
}
