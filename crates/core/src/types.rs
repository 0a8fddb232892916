//! Value types parsed from merchant input. Each `parse` states the rule; the
//! error names the field so the API can return it as is.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InvalidInput;
use crate::state::string_enum;

fn restricted(
    field: &'static str,
    s: &str,
    max: usize,
    allowed: impl Fn(u8) -> bool,
    rule: &str,
) -> Result<String, InvalidInput> {
    if s.is_empty() {
        return Err(InvalidInput::new(field, "is required"));
    }
    if s.len() > max {
        return Err(InvalidInput::new(field, format!("must be at most {max} characters")));
    }
    if !s.bytes().all(allowed) {
        return Err(InvalidInput::new(field, format!("may only contain {rule}")));
    }
    Ok(s.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $allowed:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: &str) -> Result<Self, InvalidInput> {
                restricted($field, s, $max, $allowed, $rule).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn trade_no_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*')
}

fn ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

text_type!(
    /// The merchant's order number, unique per app. WeChat's rule: at most
    /// 32 characters of `[A-Za-z0-9_-|*]`.
    OutTradeNo, "outTradeNo", 32, trade_no_char, "letters, digits and _-|*"
);
text_type!(
    /// The merchant's refund number, unique per app (WeChat allows 64).
    OutRefundNo, "outRefundNo", 64, trade_no_char, "letters, digits and _-|*"
);
text_type!(
    /// An app's id (issued by cashdesk).
    AppId, "appId", 64, ident_char, "letters, digits, _ and -"
);
text_type!(
    /// A merchant's store within an app.
    StoreId, "storeId", 32, ident_char, "letters, digits, _ and -"
);

/// A merchant notification URL: `http` or `https`, a host, no credentials,
/// at most 512 characters. Whether private addresses are allowed is the
/// server's policy, not part of the type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NotifyUrl(String);

impl NotifyUrl {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        if s.len() > 512 {
            return Err(InvalidInput::new(field, "must be at most 512 characters"));
        }
        let url = url::Url::parse(s).map_err(|e| InvalidInput::new(field, format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvalidInput::new(field, "must be an http or https URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidInput::new(field, "must not carry credentials"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(InvalidInput::new(field, "must have a host"));
        }
        if url.fragment().is_some() {
            return Err(InvalidInput::new(field, "must not have a fragment"));
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&self.0).expect("validated at parse time")
    }
}

impl fmt::Display for NotifyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_enum!(
    /// How an app signs its requests (header `Cashdesk-Sign-Type`).
    SignType {
        HmacSha256 = "HMAC-SHA256",
        HmacSm3 = "HMAC-SM3",
        Md5 = "MD5",
        Rsa2 = "RSA2",
        Sm2 = "SM2",
    }
);

impl SignType {
    /// RSA2 and SM2 apps register a public key and are answered with
    /// cashdesk's platform key; the others share the app key.
    pub fn is_asymmetric(self) -> bool {
        matches!(self, Self::Rsa2 | Self::Sm2)
    }
}

impl Default for SignType {
    fn default() -> Self {
        Self::HmacSha256
    }
}

string_enum!(
    /// The payment channels cashdesk speaks to.
    ChannelType {
        WxPay = "wx-pay",
        AliPay = "ali-pay",
        Lakala = "lakala",
    }
);

string_enum!(
    /// How the buyer pays: the scene decides the channel call and `payData`.
    SceneCode {
        Mini = "mini",
        Jsapi = "jsapi",
        Native = "native",
        H5 = "h5",
        App = "app",
        Wap = "wap",
        Page = "page",
        Qr = "qr",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_trade_no_rules() {
        assert!(OutTradeNo::parse("A-1_b|c*9").is_ok());
        assert!(OutTradeNo::parse("").is_err());
        assert!(OutTradeNo::parse(&"a".repeat(33)).is_err());
        assert!(OutTradeNo::parse(&"a".repeat(32)).is_ok());
        assert!(OutTradeNo::parse("a b").is_err());
        assert!(OutTradeNo::parse("订单").is_err());
    }

    #[test]
    fn notify_url_rules() {
        assert!(NotifyUrl::parse("notifyUrl", "https://shop.example.com/cb?x=1").is_ok());
        assert!(NotifyUrl::parse("notifyUrl", "ftp://shop.example.com/").is_err());
        assert!(NotifyUrl::parse("notifyUrl", "https://u:p@shop.example.com/").is_err());
        assert!(NotifyUrl::parse("notifyUrl", "https://u@shop.example.com/").is_err());
        assert!(NotifyUrl::parse("notifyUrl", "not a url").is_err());
        assert!(NotifyUrl::parse("notifyUrl", "javascript:alert(1)").is_err());
    }

    #[test]
    fn sign_types() {
        assert_eq!(SignType::parse("HMAC-SM3"), Some(SignType::HmacSm3));
        assert_eq!(SignType::parse("SHA1"), None);
        assert!(SignType::Sm2.is_asymmetric());
        assert_eq!(ChannelType::parse("wx-pay"), Some(ChannelType::WxPay));
    }
}
