//! Escaping text for HTML: the one helper every hand-written page and form
//! uses (the Alipay form-post page, the sandbox's payer pages, the API
//! reference page). Templates rendered by askama escape on their own.

/// `s` safe inside HTML text and double- or single-quoted attribute values:
/// `&`, `<`, `>`, `"` and `'` become `&amp;`, `&lt;`, `&gt;`, `&quot;` and
/// `&#39;`; everything else is kept as it is.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn the_five_characters_are_escaped_and_nothing_else() {
        assert_eq!(escape("<a&\"'>"), "&lt;a&amp;&quot;&#39;&gt;");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("中文 plain/text=1;"), "中文 plain/text=1;");
        assert_eq!(escape(""), "");
    }
}
