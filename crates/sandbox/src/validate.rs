//! Field rules WeChat applies to both API versions (messages in WeChat's
//! wording, so they read like the real thing in an adapter's error).

/// `[A-Za-z0-9_-|*]`, `min..=32` characters (v2 has no minimum, v3 wants 6).
pub fn out_trade_no(s: &str, min: usize) -> Result<(), String> {
    if s.len() < min.max(1) || s.len() > 32 {
        return Err(format!(
            "out_trade_no长度必须在{}到32个字符之间",
            min.max(1)
        ));
    }
    if !s.bytes().all(trade_no_char) {
        return Err("out_trade_no只能是数字、大小写字母_-|*".into());
    }
    Ok(())
}

/// `[A-Za-z0-9_-|*@]`, 1..=64 characters.
pub fn out_refund_no(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err("out_refund_no长度必须在1到64个字符之间".into());
    }
    if !s.bytes().all(|b| trade_no_char(b) || b == b'@') {
        return Err("out_refund_no只能是数字、大小写字母_-|*@".into());
    }
    Ok(())
}

fn trade_no_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*')
}

/// An absolute http(s) URL of at most 256 characters without credentials.
/// (WeChat production requires https for v3; the sandbox accepts http so a
/// local cashdesk can receive notifications.)
pub fn notify_url(s: &str) -> Result<(), String> {
    if s.len() > 256 {
        return Err("notify_url长度不能超过256个字符".into());
    }
    let url = url::Url::parse(s).map_err(|_| "notify_url必须是合法的URL".to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("notify_url必须以http://或https://开头".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("notify_url不能包含用户名或密码".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(out_trade_no("P01HXYZ", 6).is_ok());
        assert!(out_trade_no("abc", 6).is_err());
        assert!(out_trade_no("abc", 0).is_ok());
        assert!(out_trade_no(&"a".repeat(33), 0).is_err());
        assert!(out_trade_no("a b", 0).is_err());
        assert!(out_refund_no("R1@x").is_ok());
        assert!(notify_url("http://127.0.0.1:8080/api/cashier-desk/notify/1").is_ok());
        assert!(notify_url("ftp://x/y").is_err());
        assert!(notify_url("https://u:p@x/y").is_err());
        assert!(notify_url("/relative").is_err());
    }
}
