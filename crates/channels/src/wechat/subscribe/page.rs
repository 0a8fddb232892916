//! The mini-program `page` a message opens, from a configured pattern with
//! `{name}` placeholders: `pages/order/detail?orderId={orderId}` and the
//! order's id → `pages/order/detail?orderId=P2026…`. Values are
//! percent-encoded (everything but `A-Z a-z 0-9 - _ . ~`), so a value
//! cannot add a parameter or change the path; placeholders belong in the
//! query (a mini-program path has no escapes: WeChat answers 41030).

/// Why a pattern could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("page pattern: unknown placeholder {{{0}}}")]
    UnknownPlaceholder(String),
    #[error(
        "page pattern: `{{` without a closing `}}` or with a name that is not letters, digits and _"
    )]
    Malformed,
    #[error("page is longer than {0} bytes once filled")]
    TooLong(usize),
}

/// The longest page sent (WeChat documents none; the sandbox refuses
/// longer ones with 41030).
pub const MAX_PAGE_BYTES: usize = 512;

/// Fill `pattern`'s `{name}` placeholders with `lookup(name)`, each value
/// percent-encoded. A name `lookup` does not know is an error (a typo in a
/// merchant's config shows when it is saved, not as a wrong page).
pub fn render_page(
    pattern: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, PageError> {
    let mut out = String::with_capacity(pattern.len() + 32);
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(PageError::Malformed)?;
        let name = &after[..close];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(PageError::Malformed);
        }
        let value = lookup(name).ok_or_else(|| PageError::UnknownPlaceholder(name.to_owned()))?;
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(PageError::Malformed);
    }
    out.push_str(rest);
    if out.len() > MAX_PAGE_BYTES {
        return Err(PageError::TooLong(MAX_PAGE_BYTES));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "orderId" => Some("P2026120700001".into()),
            "outTradeNo" => Some("a&b=c d/中".into()),
            _ => None,
        }
    }

    #[test]
    fn placeholders_are_filled_and_encoded() {
        assert_eq!(
            render_page("pages/order/detail?orderId={orderId}", vars).unwrap(),
            "pages/order/detail?orderId=P2026120700001"
        );
        assert_eq!(
            render_page("pages/o?no={outTradeNo}&id={orderId}", vars).unwrap(),
            "pages/o?no=a%26b%3Dc%20d%2F%E4%B8%AD&id=P2026120700001"
        );
        assert_eq!(
            render_page("pages/index/index", vars).unwrap(),
            "pages/index/index"
        );
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(
            render_page("pages/o?id={orderid}", vars),
            Err(PageError::UnknownPlaceholder("orderid".into()))
        );
        for bad in [
            "pages/o?id={orderId",
            "pages/o?id={}",
            "pages/o?id={a b}",
            "pages/o}",
        ] {
            assert_eq!(render_page(bad, vars), Err(PageError::Malformed), "{bad}");
        }
        let long = format!("pages/o?x={}&id={{orderId}}", "a".repeat(500));
        assert_eq!(render_page(&long, vars), Err(PageError::TooLong(512)));
    }
}
