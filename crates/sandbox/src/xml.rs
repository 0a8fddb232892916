//! WeChat Pay v2's XML: one root element (`<xml>`, `<root>` inside
//! `req_info`) whose children are flat `name → text` fields, values usually in
//! CDATA. This module owns parsing it the way a payment server must (no DTD,
//! no entities beyond the five predefined ones and character references, no
//! nesting, no duplicate fields) and writing it the way WeChat does.
//!
//! Why hand-rolled on quick-xml events rather than serde: the field set is
//! open (WeChat adds fields; signatures cover every field received), so a
//! `BTreeMap` is the honest model, and walking events lets us refuse a
//! DOCTYPE outright instead of trusting a deserializer to ignore it.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::Event;

/// Why an XML body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("XML with a DOCTYPE is refused")]
    Doctype,
    #[error("malformed XML: {0}")]
    Malformed(String),
}

fn bad(msg: impl Into<String>) -> XmlError {
    XmlError::Malformed(msg.into())
}

/// Parse a flat WeChat XML document into its fields. The root element's name
/// is not checked (callers that care compare it themselves).
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, XmlError> {
    let mut reader = Reader::from_str(text);
    let mut fields = BTreeMap::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut current: Option<(String, String)> = None;
    loop {
        match reader.read_event().map_err(|e| bad(e.to_string()))? {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::Comment(_) => {}
            Event::PI(_) => return Err(bad("processing instructions are not allowed")),
            Event::Start(e) => {
                let name = std::str::from_utf8(e.name().as_ref())
                    .map_err(|_| bad("element name is not UTF-8"))?
                    .to_owned();
                match depth {
                    0 if seen_root => return Err(bad("more than one root element")),
                    0 => seen_root = true,
                    1 => current = Some((field_name(name)?, String::new())),
                    _ => return Err(bad(format!("nested element <{name}> inside a field"))),
                }
                depth += 1;
            }
            Event::Empty(e) => {
                let name = std::str::from_utf8(e.name().as_ref())
                    .map_err(|_| bad("element name is not UTF-8"))?
                    .to_owned();
                match depth {
                    0 if seen_root => return Err(bad("more than one root element")),
                    0 => seen_root = true,
                    1 => insert(&mut fields, field_name(name)?, String::new())?,
                    _ => return Err(bad(format!("nested element <{name}> inside a field"))),
                }
            }
            Event::End(_) => {
                if depth == 2
                    && let Some((name, value)) = current.take()
                {
                    insert(&mut fields, name, value)?;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| bad(e.to_string()))?;
                push_text(&mut current, depth, &s)?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| bad(e.to_string()))?;
                push_text(&mut current, depth, &s)?;
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| bad(e.to_string()))?
                        .ok_or_else(|| bad("invalid character reference"))?
                        .to_string()
                } else {
                    let name = r.decode().map_err(|e| bad(e.to_string()))?;
                    quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| bad(format!("undefined entity &{name};")))?
                        .to_owned()
                };
                push_text(&mut current, depth, &resolved)?;
            }
            Event::Eof => break,
        }
    }
    if !seen_root || depth != 0 {
        return Err(bad("no complete root element"));
    }
    Ok(fields)
}

/// A field's name must be an ASCII XML name, as every WeChat field is:
/// quick-xml takes whatever stands before the first space as the name
/// (`<;</ …>` included), and [`render`] writes names verbatim.
fn field_name(name: String) -> Result<String, XmlError> {
    let b = name.as_bytes();
    let valid = b
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
    if valid {
        Ok(name)
    } else {
        Err(bad(format!("element <{name}> is not a field name")))
    }
}

fn insert(
    fields: &mut BTreeMap<String, String>,
    name: String,
    value: String,
) -> Result<(), XmlError> {
    if fields.contains_key(&name) {
        return Err(bad(format!("field <{name}> appears twice")));
    }
    fields.insert(name, value);
    Ok(())
}

fn push_text(
    current: &mut Option<(String, String)>,
    depth: usize,
    s: &str,
) -> Result<(), XmlError> {
    match (depth, current) {
        (2, Some((_, value))) => {
            value.push_str(s);
            Ok(())
        }
        // Whitespace between fields is formatting.
        _ if s.trim().is_empty() => Ok(()),
        _ => Err(bad("text outside a field")),
    }
}

/// Write fields the way WeChat does: `<xml>` root, numbers bare, everything
/// else in CDATA (a value containing `]]>` is split across sections).
pub fn render(fields: &BTreeMap<String, String>) -> String {
    render_with_root("xml", fields)
}

pub fn render_with_root(root: &str, fields: &BTreeMap<String, String>) -> String {
    let mut out = format!("<{root}>");
    for (k, v) in fields {
        out.push('<');
        out.push_str(k);
        out.push('>');
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(v);
        } else {
            out.push_str("<![CDATA[");
            out.push_str(&v.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]>");
        }
        out.push_str("</");
        out.push_str(k);
        out.push('>');
    }
    out.push_str(&format!("</{root}>"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cdata_text_and_entities() {
        let f = parse(
            "<?xml version=\"1.0\"?>\n<xml>\n <a><![CDATA[x<y]]></a>\n <b>12</b><c>&lt;&#65;&amp;</c><d/></xml>",
        )
        .unwrap();
        assert_eq!(f["a"], "x<y");
        assert_eq!(f["b"], "12");
        assert_eq!(f["c"], "<A&");
        assert_eq!(f["d"], "");
    }

    #[test]
    fn refuses_doctype_entities_nesting_and_duplicates() {
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><a>&x;</a></xml>";
        assert_eq!(parse(xxe), Err(XmlError::Doctype));
        assert!(parse("<xml><a>&x;</a></xml>").is_err());
        assert!(parse("<xml><a><b>1</b></a></xml>").is_err());
        assert!(parse("<xml><a>1</a><a>2</a></xml>").is_err());
        assert!(parse("<xml><a>1</a>").is_err());
        assert!(parse("not xml").is_err());
        assert!(parse("").is_err());
        assert!(parse("<xml></xml><xml></xml>").is_err());
    }

    /// Found by the `wechat_v2_xml` fuzz target (the same document fooled
    /// the adapters' reader): `<;</ …>` must not become a field.
    #[test]
    fn refuses_field_names_that_are_not_xml_names() {
        assert!(parse("<xml>\n  <;</\tssss></;</></xml>").is_err());
        assert!(parse("<xml><;</></xml>").is_err());
        assert!(parse("<xml><1a>1</1a></xml>").is_err());
        assert!(parse("<xml><sub_mch-id.x>1</sub_mch-id.x></xml>").is_ok());
    }

    #[test]
    fn render_round_trips() {
        let mut f = BTreeMap::new();
        f.insert("total_fee".to_string(), "1".to_string());
        f.insert("body".to_string(), "a]]>b <c> & 中文".to_string());
        f.insert("empty".to_string(), String::new());
        let xml = render(&f);
        assert!(xml.contains("<total_fee>1</total_fee>"));
        assert_eq!(parse(&xml).unwrap(), f);
    }
}
