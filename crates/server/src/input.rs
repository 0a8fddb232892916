//! Reading request bodies: the size limit (413 code 4002, in the envelope),
//! JSON parsing (4001; a key given twice in one object is 4000 naming it,
//! see [`parse_object`]) and typed field access with errors that name the
//! field (4000).
//!
//! Bodies are parsed into a JSON object first and fields are read one by one
//! rather than deserialised into a struct, so `"amount": "100"` says
//! `amount: must be an integer number of fen` instead of serde's position
//! message, and unknown fields are ignored (forward compatibility).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cashdesk_core::Fen;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::{Map, Value};

use crate::edge::listener::BodyTimedOut;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::service::error::ServiceError;
use crate::state::AppState;

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::BodyTooLarge,
        format!("request body is larger than {limit} bytes"),
    )
}

/// Whether `e` or one of its causes is an `E`.
fn caused_by<E: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<E>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Reads a whole body, refusing more than `limit` bytes, and one that did
/// not arrive within the listener's body deadline (408, code 4080).
pub async fn read_body(body: Body, limit: usize) -> ApiResult<Bytes> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if caused_by::<LengthLimitError>(e.as_ref()) => Err(too_large(limit)),
        Err(e) if caused_by::<BodyTimedOut>(e.as_ref()) => Err(ApiError::new(
            ErrorCode::RequestTimeout,
            "the request body did not arrive in time",
        )),
        Err(e) => Err(ApiError::new(
            ErrorCode::InvalidJson,
            format!("could not read the request body: {e}"),
        )),
    }
}

/// Middleware: a declared `Content-Length` above the limit is refused before
/// anything reads the body; any other body is read through a limit, so
/// every reader downstream (the sandbox's extractors too) stops there.
pub async fn limit_body(
    state: axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let limit = state.config.body_limit_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit).into_response();
    }
    next.run(req.map(|b| Body::new(Limited::new(b, limit))))
        .await
}

/// Parses a body that must be one JSON object, with no key twice in any
/// object of it (4000, `data.field` the key's path, e.g. `amount` or
/// `goods[1].name`).
pub fn parse_object(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "request body is empty; send a JSON object",
        ));
    }
    let duplicate = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde::de::DeserializeSeed::deserialize(
        UniqueKeys {
            path: String::new(),
            duplicate: &duplicate,
        },
        &mut de,
    )
    .and_then(|v| de.end().map(|()| v));
    if let Some(path) = duplicate.into_inner() {
        return Err(ApiError::invalid(
            &path,
            "appears more than once in its object; send each key once",
        ));
    }
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(
            ErrorCode::InvalidJson,
            "request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            ErrorCode::InvalidJson,
            format!("request body is not valid JSON: {e}"),
        )),
    }
}

/// Builds a JSON value like `serde_json::Value`'s own `Deserialize`, but
/// refuses an object that names a key twice, at any depth. serde_json keeps
/// the last copy, so `{"amount":1,"amount":100000}` would mean one thing to
/// cashdesk and maybe another to whatever the merchant's tooling (or a
/// proxy, or a log reader) took from the same signed bytes: such a body is
/// refused (4000) rather than read one way. The first duplicate's path
/// (`a.b[2].c`) is left in `duplicate` for the error.
struct UniqueKeys<'a> {
    path: String,
    duplicate: &'a std::cell::RefCell<Option<String>>,
}

impl UniqueKeys<'_> {
    fn child(&self, step: std::fmt::Arguments<'_>) -> Self {
        let path = if self.path.is_empty() {
            step.to_string().trim_start_matches('.').to_owned()
        } else {
            format!("{}{step}", self.path)
        };
        UniqueKeys {
            path,
            duplicate: self.duplicate,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json only hands finite numbers to a visitor.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.child(format_args!("[{}]", out.len())))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = self.child(format_args!(".{key}"));
            if out.contains_key(&key) {
                let path = child.path;
                *self.duplicate.borrow_mut() = Some(path.clone());
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key {path}"
                )));
            }
            let value = map.next_value_seed(child)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Extractor: the body as a JSON object (unsigned routes; signed routes get
/// their bytes from [`crate::auth::Authed`]).
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req.into_body(), state.config.body_limit_bytes).await?;
        parse_object(&bytes).map(JsonObject)
    }
}

/// Typed access to the fields of a request object. `null` reads as absent.
pub struct Fields<'a>(pub &'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// An optional string of at most `max_chars` characters; `""` reads as
    /// absent (merchants often send empty strings for unused fields).
    pub fn str_opt(&self, name: &str, max_chars: usize) -> Result<Option<&'a str>, ServiceError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => {
                if s.chars().count() > max_chars {
                    return Err(ServiceError::invalid(
                        name,
                        format!("must be at most {max_chars} characters"),
                    ));
                }
                // NUL and other control characters are refused everywhere
                // (PostgreSQL cannot store NUL; channels refuse the rest);
                // tab and line breaks are ordinary text.
                if s.chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
                {
                    return Err(ServiceError::invalid(
                        name,
                        "must not contain control characters",
                    ));
                }
                Ok(Some(s.as_str()))
            }
            Some(_) => Err(ServiceError::invalid(name, "must be a string")),
        }
    }

    /// A required non-blank string of at most `max_chars` characters.
    pub fn str_req(&self, name: &str, max_chars: usize) -> Result<&'a str, ServiceError> {
        match self.str_opt(name, max_chars)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ServiceError::invalid(name, "is required")),
        }
    }

    /// [`Fields::str_opt`] for text a buyer reads (order titles, goods
    /// descriptions, app, store and channel names): also no character
    /// that changes how the text reads without showing itself
    /// ([`is_invisible_format`]). Refused rather than stripped: the
    /// merchant learns that its text is not what a buyer would see.
    pub fn text_opt(&self, name: &str, max_chars: usize) -> Result<Option<&'a str>, ServiceError> {
        let text = self.str_opt(name, max_chars)?;
        if let Some(c) = text.and_then(|s| s.chars().find(|c| is_invisible_format(*c))) {
            return Err(ServiceError::invalid(
                name,
                format!(
                    "must not contain invisible formatting characters (found U+{:04X}: \
                     bidirectional controls and zero-width characters are refused in text buyers see)",
                    u32::from(c)
                ),
            ));
        }
        Ok(text)
    }

    /// [`Fields::text_opt`], required and not blank.
    pub fn text_req(&self, name: &str, max_chars: usize) -> Result<&'a str, ServiceError> {
        match self.text_opt(name, max_chars)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ServiceError::invalid(name, "is required")),
        }
    }

    /// An optional JSON integer (not a string, not a float).
    pub fn int_opt(&self, name: &str) -> Result<Option<i64>, ServiceError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) => Ok(Some(v)),
                None if n.is_u64() => Err(ServiceError::invalid(name, "is too large")),
                None => Err(ServiceError::invalid(name, "must be an integer")),
            },
            Some(_) => Err(ServiceError::invalid(name, "must be an integer")),
        }
    }

    /// A required amount in fen: a positive JSON integer.
    pub fn fen_req(&self, name: &'static str) -> Result<Fen, ServiceError> {
        match self.int_opt(name) {
            Ok(Some(v)) => Ok(Fen::parse_positive(name, v)?),
            Ok(None) => Err(ServiceError::invalid(name, "is required")),
            Err(_) => Err(ServiceError::invalid(
                name,
                "must be a positive integer number of fen",
            )),
        }
    }

    pub fn bool_opt(&self, name: &str) -> Result<Option<bool>, ServiceError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ServiceError::invalid(name, "must be true or false")),
        }
    }

    /// A required JSON object.
    pub fn object_req(&self, name: &str) -> Result<&'a Map<String, Value>, ServiceError> {
        match self.get(name) {
            Some(Value::Object(m)) => Ok(m),
            None => Err(ServiceError::invalid(name, "is required")),
            Some(_) => Err(ServiceError::invalid(name, "must be a JSON object")),
        }
    }
}

/// Characters refused in text buyers read: they are invisible, yet they
/// reorder the text around them (a right-to-left override makes
/// `txt.exe` look like `exe.txt`) or hide inside it (two titles that look
/// the same and differ). Unicode's bidirectional controls (UAX #9:
/// U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069), the zero-width
/// and invisible characters (U+180E, U+200B–U+200D, U+2060–U+2064,
/// U+FEFF), the deprecated format controls U+206A–U+206F, the
/// interlinear annotation controls U+FFF9–U+FFFB and the line and
/// paragraph separators U+2028–U+2029. (Control characters are refused in
/// every field already.)
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Extractor: the one path parameter of a route, as text; a parameter that
/// does not decode is a 4000 in the envelope (not axum's plain-text 400).
pub struct PathParam(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(s)) => Ok(PathParam(s)),
            Err(e) => Err(ApiError::invalid("path", e.body_text())),
        }
    }
}

/// Extractor: several path parameters (a tuple of `String`s), with the
/// same envelope error as [`PathParam`].
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for PathParams<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParams(v)),
            Err(e) => Err(ApiError::invalid("path", e.body_text())),
        }
    }
}

/// Query-string parameters (`?a=1&b=2`), last value wins.
/// The query string of an operator list (`GET /api/admin/…?name=value`),
/// read into a resource's typed filter: each parameter by its own rule,
/// a refusal naming it (4000 with `data.field`), an empty value the same
/// as none.
pub struct ListQuery(std::collections::HashMap<String, String>);

impl ListQuery {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(query_params(raw))
    }

    /// `name` as `parse` reads it; a value it refuses is 4000 "`name`:
    /// `rule`".
    pub fn get<T>(
        &self,
        name: &str,
        rule: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> ApiResult<Option<T>> {
        match self
            .0
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
        {
            None => Ok(None),
            Some(s) => parse(s)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(name, rule)),
        }
    }

    /// `limit`: 1 to `max`, `default` when absent.
    pub fn limit(&self, default: u32, max: u32) -> ApiResult<u32> {
        Ok(self
            .get("limit", &format!("must be between 1 and {max}"), |s| {
                s.parse::<u32>().ok().filter(|l| (1..=max).contains(l))
            })?
            .unwrap_or(default))
    }
}

pub fn query_params(raw: Option<&str>) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn fields_name_the_field() {
        let m = obj(
            json!({"nul": "a\u{0}b", "nl": "a\nb", "a": "x", "n": 5, "f": 1.5, "s": "5", "e": "", "z": null, "big": 18446744073709551615u64}),
        );
        let f = Fields(&m);
        assert_eq!(f.str_req("a", 5).ok(), Some("x"));
        assert!(f.str_req("a", 0).is_err());
        assert!(f.str_req("e", 5).is_err());
        assert_eq!(f.str_opt("e", 5).ok(), Some(None));
        assert_eq!(f.str_opt("z", 5).ok(), Some(None));
        assert_eq!(f.int_opt("n").ok(), Some(Some(5)));
        let e = f
            .int_opt("f")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("f: must be an integer"), "{e}");
        assert!(f.int_opt("s").is_err());
        assert!(f.int_opt("big").is_err());
        assert!(f.str_opt("n", 5).is_err());
        assert!(f.str_opt("nul", 5).is_err());
        assert_eq!(f.str_opt("nl", 5).ok(), Some(Some("a\nb")));
    }

    /// serde_json keeps the last of two equal keys; cashdesk refuses the
    /// body and names the key, at any depth.
    #[test]
    fn duplicate_keys_are_refused() {
        for (body, field) in [
            (r#"{"amount":1,"amount":100000}"#, "amount"),
            (r#"{"a":{"b":1,"b":2}}"#, "a.b"),
            (r#"{"goods":[{"n":1},{"n":2,"n":3}]}"#, "goods[1].n"),
            (r#"{"x":[[{"k":null,"k":null}]]}"#, "x[0][0].k"),
            (r#"{"a":1,"b":{},"a":1}"#, "a"),
        ] {
            let err = parse_object(body.as_bytes()).expect_err("refused");
            assert_eq!(err.code(), ErrorCode::InvalidParam, "{body}");
            match err {
                ApiError::Client { data, msg, .. } => {
                    assert_eq!(data, Some(json!({ "field": field })), "{body}");
                    assert!(msg.starts_with(&format!("{field}: ")), "{msg}");
                }
                other => panic!("{other}"),
            }
        }
        // Equal keys in different objects, and equal values, are fine.
        let ok = parse_object(
            br#"{"a":{"k":1},"b":{"k":1},"k":[1,1],"n":-1.5,"u":18446744073709551615}"#,
        )
        .expect("parses");
        assert_eq!(
            Value::Object(ok),
            json!({"a":{"k":1},"b":{"k":1},"k":[1,1],"n":-1.5,"u":18446744073709551615u64})
        );
        // Trailing garbage is still invalid JSON.
        assert_eq!(
            parse_object(b"{} {}").err().map(|e| e.code()),
            Some(ErrorCode::InvalidJson)
        );
    }

    /// Issue 13: bidirectional overrides and zero-width characters in
    /// text buyers read are refused with 4000 naming the field.
    #[test]
    fn text_buyers_read_has_no_invisible_formatting() {
        for bad in [
            "\u{202E}exe.txt",   // right-to-left override
            "a\u{202A}b",        // left-to-right embedding
            "\u{2066}x\u{2069}", // isolates
            "\u{200F}shop",      // right-to-left mark
            "\u{200E}shop",      // left-to-right mark
            "pay\u{200B}ment",   // zero-width space
            "a\u{200C}b",        // zero-width non-joiner
            "a\u{200D}b",        // zero-width joiner
            "\u{2060}x",         // word joiner
            "\u{FEFF}x",         // byte order mark
            "x\u{061C}",         // Arabic letter mark
            "a\u{2028}b",        // line separator
        ] {
            let m = obj(json!({ "orderTitle": bad }));
            let err = ApiError::from(Fields(&m).text_opt("orderTitle", 128).expect_err(bad));
            assert_eq!(err.code(), ErrorCode::InvalidParam);
            assert!(
                err.to_string()
                    .contains("orderTitle: must not contain invisible"),
                "{err}"
            );
            // Other fields keep the old rules.
            assert!(Fields(&m).str_opt("orderTitle", 128).is_ok());
        }
        for good in ["咖啡 ×2", "Café – 1 €", "שלום", "مرحبا", "a\tb\nc", "🎉"] {
            let m = obj(json!({ "t": good }));
            assert_eq!(Fields(&m).text_req("t", 128).ok(), Some(good));
        }
        let m = obj(json!({ "t": "   " }));
        assert!(Fields(&m).text_req("t", 128).is_err());
    }

    #[test]
    fn objects_only() {
        assert!(parse_object(b"{\"a\":1}").is_ok());
        for bad in [&b""[..], b"  ", b"[1]", b"{", b"\"x\"", b"nul"] {
            let code = parse_object(bad).err().map(|e| e.code());
            assert_eq!(
                code,
                Some(ErrorCode::InvalidJson),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
