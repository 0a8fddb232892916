//! Flat XML as WeChat Pay v2 speaks it: `<xml><name>value</name>…</xml>`.
//!
//! The reader is deliberately strict because notifications come from anyone
//! on the internet: a DOCTYPE (and with it every DTD, external entity and
//! "billion laughs" attack) is refused outright, as is any entity reference
//! other than the five predefined ones and character references; processing
//! instructions, nested elements, attributes-only tricks and duplicate field
//! names are refused too (a duplicate would let a signed value and a used
//! value differ). Values are taken verbatim from text and CDATA.

use std::collections::BTreeMap;

use quick_xml::events::Event;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid XML: {0}")]
pub struct XmlError(pub String);

fn err(msg: impl Into<String>) -> XmlError {
    XmlError(msg.into())
}

/// Parse a flat document into its fields (root name is not checked: WeChat
/// uses `xml`, the decrypted refund `req_info` uses `root`).
pub fn parse_flat(input: &[u8]) -> Result<BTreeMap<String, String>, XmlError> {
    let text = std::str::from_utf8(input).map_err(|_| err("not UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut fields = BTreeMap::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut current: Option<(String, String)> = None;
    loop {
        let event = reader.read_event().map_err(|e| err(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(err("DOCTYPE is not allowed")),
            Event::PI(_) => return Err(err("processing instructions are not allowed")),
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Start(start) => {
                depth += 1;
                match depth {
                    1 if seen_root => return Err(err("more than one root element")),
                    1 => seen_root = true,
                    2 => {
                        let name = field_name(start.name().as_ref())?;
                        current = Some((name, String::new()));
                    }
                    _ => return Err(err("nested elements are not allowed")),
                }
            }
            Event::Empty(start) => match depth {
                0 if seen_root => return Err(err("more than one root element")),
                0 => seen_root = true,
                1 => {
                    let name = field_name(start.name().as_ref())?;
                    insert(&mut fields, name, String::new())?;
                }
                _ => return Err(err("nested elements are not allowed")),
            },
            Event::End(_) => {
                if depth == 2
                    && let Some((name, value)) = current.take()
                {
                    insert(&mut fields, name, value)?;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| err(e.to_string()))?;
                push_text(depth, &mut current, &s)?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| err(e.to_string()))?;
                if depth != 2 {
                    return Err(err("character data outside a field"));
                }
                if let Some((_, v)) = current.as_mut() {
                    v.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| err(e.to_string()))?
                        .ok_or_else(|| err("bad character reference"))?
                        .to_string()
                } else {
                    let name = r.decode().map_err(|e| err(e.to_string()))?;
                    quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| err(format!("entity &{name}; is not allowed")))?
                        .to_owned()
                };
                push_text(depth, &mut current, &resolved)?;
            }
            Event::Eof => break,
        }
    }
    if !seen_root || depth != 0 {
        return Err(err("no complete root element"));
    }
    Ok(fields)
}

/// A field's name: an ASCII XML name, as every WeChat field is. quick-xml
/// takes whatever stands before the first space as the name (`<;</ …>`
/// included); such a document is not the flat shape, and its fields could
/// not be written back ([`to_xml`] writes names verbatim).
fn field_name(raw: &[u8]) -> Result<String, XmlError> {
    let valid = raw
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid {
        return Err(err(format!(
            "element name {:?} is not a field name",
            String::from_utf8_lossy(raw)
        )));
    }
    Ok(String::from_utf8_lossy(raw).into_owned())
}

fn push_text(
    depth: usize,
    current: &mut Option<(String, String)>,
    s: &str,
) -> Result<(), XmlError> {
    if depth == 2 {
        if let Some((_, v)) = current.as_mut() {
            v.push_str(s);
        }
        return Ok(());
    }
    // Whitespace between fields and around the root is fine; anything else
    // means the document is not the flat shape.
    if s.trim().is_empty() {
        Ok(())
    } else {
        Err(err("text outside a field"))
    }
}

fn insert(
    fields: &mut BTreeMap<String, String>,
    name: String,
    value: String,
) -> Result<(), XmlError> {
    if fields.contains_key(&name) {
        return Err(err(format!("field {name} appears twice")));
    }
    fields.insert(name, value);
    Ok(())
}

/// Write fields as `<xml><k><![CDATA[v]]></k>…</xml>` (names are ours and
/// ASCII; a value that contains `]]>` is written as escaped text instead).
pub fn to_xml(fields: &BTreeMap<String, String>) -> String {
    let mut out = String::from("<xml>");
    for (k, v) in fields {
        out.push('<');
        out.push_str(k);
        out.push('>');
        if v.contains("]]>") {
            out.push_str(&quick_xml::escape::escape(v.as_str()));
        } else {
            out.push_str("<![CDATA[");
            out.push_str(v);
            out.push_str("]]>");
        }
        out.push_str("</");
        out.push_str(k);
        out.push('>');
    }
    out.push_str("</xml>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wechat_shapes() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<xml>
  <return_code><![CDATA[SUCCESS]]></return_code>
  <total_fee>1</total_fee>
  <body>a &amp; b &#x4e2d;</body>
  <empty/>
  <!-- a comment -->
</xml>"#;
        let f = parse_flat(doc).unwrap();
        assert_eq!(f["return_code"], "SUCCESS");
        assert_eq!(f["total_fee"], "1");
        assert_eq!(f["body"], "a & b 中");
        assert_eq!(f["empty"], "");
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn round_trips() {
        let mut m = BTreeMap::new();
        m.insert("a".to_owned(), "x<y & ]]> z".to_owned());
        m.insert("b".to_owned(), "中文".to_owned());
        m.insert("c".to_owned(), String::new());
        assert_eq!(parse_flat(to_xml(&m).as_bytes()).unwrap(), m);
    }

    #[test]
    fn refuses_doctype_and_entities() {
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><a>&xxe;</a></xml>"#;
        assert!(parse_flat(xxe).unwrap_err().0.contains("DOCTYPE"));
        let plain_doctype = br#"<!DOCTYPE xml><xml><a>1</a></xml>"#;
        assert!(parse_flat(plain_doctype).is_err());
        let undeclared = br#"<xml><a>&xxe;</a></xml>"#;
        assert!(parse_flat(undeclared).unwrap_err().0.contains("entity"));
    }

    /// Found by the `wechat_v2_xml` fuzz target: `<;</\t…>` was read as a
    /// field called `;</`, which `to_xml` then wrote as a document that
    /// does not parse.
    #[test]
    fn refuses_field_names_that_are_not_xml_names() {
        for bad in [
            &b"<xml>\n  <;</\t\0\0ssss></;</></xml>"[..],
            b"<xml><;</></xml>",
            b"<xml><1a>1</1a></xml>",
            b"<xml><a\xc3\xa9>1</a\xc3\xa9></xml>",
        ] {
            assert!(
                parse_flat(bad).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = parse_flat(b"<xml><sub_mch-id.x>1</sub_mch-id.x><_a/></xml>").unwrap();
        assert_eq!(parse_flat(to_xml(&ok).as_bytes()).unwrap(), ok);
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in [
            &b"<xml><a>1</a><a>2</a></xml>"[..],
            b"<xml><a><b>1</b></a></xml>",
            b"<xml><a>1</a></xml><xml/>",
            b"<xml><a>1</a>",
            b"<xml>text<a>1</a></xml>",
            b"<xml><a>1</b></xml>",
            b"<?php x?><xml><a>1</a></xml>",
            b"",
            b"not xml",
            b"\xff\xfe",
        ] {
            assert!(
                parse_flat(bad).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
