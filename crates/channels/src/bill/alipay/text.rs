//! GBK text, line by line, and the cells of one CSV line.
//!
//! Lines are cut on the raw bytes at `\n` and each line is decoded on its
//! own. That is exact for GBK (and its superset GB18030, which is what
//! `encoding_rs` decodes for the GBK label): a multi-byte character starts
//! with a byte 0x81–0xFE and continues with 0x40–0xFE or, in four-byte
//! sequences, 0x30–0x39, so the byte 0x0A is never inside a character. It
//! needs no streaming decoder (and no crate beyond `encoding_rs`), memory
//! is one line, and an invalid sequence is reported with its line number.
//! Decoding is strict: a byte sequence that is not GBK is an error, never
//! a U+FFFD that would let a damaged order number through.

use std::borrow::Cow;
use std::io::{BufRead, Read};

use crate::bill::BillError;

/// The longest line read (a bill line is a few hundred bytes; this bounds
/// the memory a file without line breaks can take).
pub(super) const MAX_LINE_BYTES: u64 = 64 * 1024;

/// The lines of a GBK text: `(line number, text)`, 1-based, without the
/// `\n` or `\r\n` ending.
pub(super) struct GbkLines<R> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> GbkLines<R> {
    pub(super) fn new(reader: R) -> Self {
        Self {
            reader,
            line: 0,
            buf: Vec::with_capacity(512),
        }
    }
}

impl<R: BufRead> Iterator for GbkLines<R> {
    type Item = Result<(usize, String), BillError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.line += 1;
        let n = self.line;
        self.buf.clear();
        let read = (&mut self.reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut self.buf);
        match read {
            Err(e) => return Some(Err(BillError::new(n, format!("cannot be read: {e}")))),
            Ok(0) => return None,
            Ok(_) => {}
        }
        let mut bytes = self.buf.as_slice();
        match bytes.strip_suffix(b"\n") {
            Some(b) => bytes = b,
            None if bytes.len() as u64 > MAX_LINE_BYTES => {
                return Some(Err(BillError::new(
                    n,
                    format!("longer than {MAX_LINE_BYTES} bytes"),
                )));
            }
            None => {}
        }
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        Some(
            encoding_rs::GBK
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|text| (n, text.into_owned()))
                .ok_or_else(|| BillError::new(n, "is not valid GBK text")),
        )
    }
}

/// The cells of a CSV line, each trimmed of spaces and of the tab Alipay
/// puts after most values (`2026…972\t,`). A cell may be quoted
/// (`"a,b"`, with `""` for a quote) as in RFC 4180, in case a product name
/// holds a comma; a line is never continued on the next one.
pub(super) fn cells(line: &str, n: usize) -> Result<Vec<Cow<'_, str>>, BillError> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        let start = rest.trim_start_matches([' ', '\t']);
        if let Some(quoted) = start.strip_prefix('"') {
            let mut value = String::new();
            let mut tail = quoted;
            loop {
                let Some(q) = tail.find('"') else {
                    return Err(BillError::new(
                        n,
                        format!("cell {} opens a quote it never closes", out.len() + 1),
                    ));
                };
                value.push_str(&tail[..q]);
                tail = &tail[q + 1..];
                match tail.strip_prefix('"') {
                    Some(t) => {
                        value.push('"');
                        tail = t;
                    }
                    None => break,
                }
            }
            out.push(Cow::Owned(value.trim().to_owned()));
            let after = tail.trim_start_matches([' ', '\t']);
            if after.is_empty() {
                return Ok(out);
            }
            match after.strip_prefix(',') {
                Some(r) => rest = r,
                None => {
                    return Err(BillError::new(
                        n,
                        format!("text after the closing quote of cell {}", out.len()),
                    ));
                }
            }
        } else {
            match rest.find(',') {
                Some(i) => {
                    out.push(Cow::Borrowed(rest[..i].trim()));
                    rest = &rest[i + 1..];
                }
                None => {
                    out.push(Cow::Borrowed(rest.trim()));
                    return Ok(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> Vec<Result<(usize, String), BillError>> {
        GbkLines::new(bytes).collect()
    }

    #[test]
    fn lines_are_cut_at_newlines_and_decoded() {
        let (gbk, _, _) = encoding_rs::GBK.encode("交易\r\n退款\n\n末行");
        let got: Vec<(usize, String)> = lines(&gbk).into_iter().map(|l| l.unwrap()).collect();
        assert_eq!(
            got,
            vec![
                (1, "交易".to_owned()),
                (2, "退款".to_owned()),
                (3, String::new()),
                (4, "末行".to_owned()),
            ]
        );
    }

    #[test]
    fn invalid_gbk_and_endless_lines_name_their_line() {
        let got = lines(b"ok\n\x81\x0a\nok");
        assert!(got[0].is_ok());
        // 0x81 starts a character that 0x0A cannot continue.
        assert_eq!(got[1].as_ref().unwrap_err().line, 2);
        let long = vec![b'a'; MAX_LINE_BYTES as usize + 10];
        let got = lines(&long);
        assert_eq!(got[0].as_ref().unwrap_err().line, 1);
        assert!(got[0].as_ref().unwrap_err().message.contains("longer"));
    }

    #[test]
    fn cells_are_trimmed_and_may_be_quoted() {
        let c = cells("2026\t,USR1\t, 交易 ,,\"a, \"\"b\"\"\"\t,x", 1).unwrap();
        assert_eq!(c, vec!["2026", "USR1", "交易", "", "a, \"b\"", "x"]);
        assert_eq!(cells("", 1).unwrap(), vec![""]);
        assert_eq!(cells("a,", 1).unwrap(), vec!["a", ""]);
        assert!(cells("\"open,b", 7).unwrap_err().line == 7);
        assert!(cells("\"a\"b,c", 1).is_err());
    }
}
