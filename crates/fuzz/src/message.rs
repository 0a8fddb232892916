//! How a fuzz input is read as a request: an HTTP-like text that a person
//! can write as a seed and a fuzzer can mutate line by line.
//!
//! ```text
//! S POST /sandbox/wechat/pay/unifiedorder      <- start line (targets that route)
//! Authorization: WECHATPAY2-SHA256-RSA2048 …   <- header lines, `Name: value`
//!                                              <- the first empty line
//! <xml>…</xml>                                 <- body: every byte after it
//! ```
//!
//! The first byte is the mode: `S` asks the target to make the request
//! authentic (sign it with the fixture keys, encrypt what the channel
//! encrypts) so that the bytes reach the code behind the signature check;
//! anything else sends the message exactly as written. Without an empty line
//! the whole input after the mode byte is the body. Header lines without a
//! colon are ignored; names and values are trimmed.

/// One input, split.
#[derive(Debug, Default)]
pub struct Message<'a> {
    /// Sign it (mode byte `S`).
    pub sign: bool,
    /// The start line (`METHOD /path?query`), empty when the target reads none.
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// Split `data`; `with_start` reads the first head line as the start line.
    pub fn parse(data: &'a [u8], with_start: bool) -> Self {
        let Some((&mode, rest)) = data.split_first() else {
            return Self::default();
        };
        let sign = mode == b'S';
        let (head, body) = match find(rest, b"\n\n") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None if with_start => match rest.iter().position(|&b| b == b'\n') {
                // A start line and a body, no headers.
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            },
            None => (&rest[..0], rest),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
        let start = if with_start {
            lines.next().unwrap_or("").trim().to_owned()
        } else {
            String::new()
        };
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        Self {
            sign,
            start,
            headers,
            body,
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `(method, path_and_query)` of the start line; a path that does not
    /// start with `prefix` is put under it (targets stay on the surface they
    /// fuzz), and the method defaults to POST.
    pub fn route(&self, prefix: &str) -> (String, String) {
        let mut parts = self.start.splitn(2, ' ');
        let first = parts.next().unwrap_or("");
        let (method, path) = match parts.next() {
            Some(path) => (first, path.trim()),
            None if first.starts_with('/') => ("POST", first),
            None => (if first.is_empty() { "POST" } else { first }, ""),
        };
        let path = if path.starts_with(prefix) {
            path.to_owned()
        } else {
            format!("{prefix}{}", path.trim_start_matches('/'))
        };
        (method.to_ascii_uppercase(), path)
    }

    /// [`substitute`] in the start line.
    pub fn substitute_start(&mut self, vars: &[(&str, String)]) {
        self.start = String::from_utf8_lossy(&substitute(self.start.as_bytes(), vars)).into_owned();
    }

    /// Replace (or add) a header.
    pub fn set_header(&mut self, name: &str, value: String) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value));
    }
}

/// `text` with every `$NAME` of `vars` replaced by its value (mode `S`
/// seeds name the fixture merchants' numbers this way: they are made per
/// process).
pub fn substitute(text: &[u8], vars: &[(&str, String)]) -> Vec<u8> {
    let mut out = text.to_vec();
    for (name, value) in vars {
        let needle = name.as_bytes();
        let mut i = 0;
        while let Some(at) = find(&out[i..], needle) {
            let at = i + at;
            out.splice(at..at + needle.len(), value.bytes());
            i = at + value.len();
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_start_headers_and_body() {
        let m = Message::parse(
            b"SPOST /a?b=1\nX-One: 1\nbad line\n: no name\n\n{\"k\":1}\n\n",
            true,
        );
        assert!(m.sign);
        assert_eq!(m.start, "POST /a?b=1");
        assert_eq!(m.headers, vec![("X-One".to_owned(), "1".to_owned())]);
        assert_eq!(m.body, b"{\"k\":1}\n\n");
        assert_eq!(m.route("/a"), ("POST".to_owned(), "/a?b=1".to_owned()));
        assert_eq!(m.route("/z/"), ("POST".to_owned(), "/z/a?b=1".to_owned()));
    }

    #[test]
    fn substitutes_names() {
        let vars = [("$MCH", "19".to_owned()), ("$MCH_LONG", "x".to_owned())];
        assert_eq!(substitute(b"<a>$MCH</a>$MCH$", &vars), b"<a>19</a>19$");
    }

    #[test]
    fn without_an_empty_line_it_is_all_body() {
        let m = Message::parse(b"-<xml/>", false);
        assert!(!m.sign);
        assert!(m.headers.is_empty());
        assert_eq!(m.body, b"<xml/>");
        let m = Message::parse(b"-GET /q\nbody", true);
        assert_eq!(m.start, "GET /q");
        assert_eq!(m.body, b"body");
        assert!(Message::parse(b"", true).body.is_empty());
    }
}
