//! Reading request bodies: the size limit (413 code 4002, in the envelope),
//! JSON parsing (4001) and typed field access with errors that name the
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
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::{Map, Value};

use crate::edge::listener::BodyTimedOut;
use crate::error::{ApiError, ApiResult, ErrorCode};
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

/// Parses a body that must be one JSON object.
pub fn parse_object(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "request body is empty; send a JSON object",
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
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
    pub fn str_opt(&self, name: &str, max_chars: usize) -> ApiResult<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => {
                if s.chars().count() > max_chars {
                    return Err(ApiError::invalid(
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
                    return Err(ApiError::invalid(
                        name,
                        "must not contain control characters",
                    ));
                }
                Ok(Some(s.as_str()))
            }
            Some(_) => Err(ApiError::invalid(name, "must be a string")),
        }
    }

    /// A required non-blank string of at most `max_chars` characters.
    pub fn str_req(&self, name: &str, max_chars: usize) -> ApiResult<&'a str> {
        match self.str_opt(name, max_chars)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ApiError::invalid(name, "is required")),
        }
    }

    /// An optional JSON integer (not a string, not a float).
    pub fn int_opt(&self, name: &str) -> ApiResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) => Ok(Some(v)),
                None if n.is_u64() => Err(ApiError::invalid(name, "is too large")),
                None => Err(ApiError::invalid(name, "must be an integer")),
            },
            Some(_) => Err(ApiError::invalid(name, "must be an integer")),
        }
    }

    pub fn bool_opt(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid(name, "must be true or false")),
        }
    }

    /// A required JSON object.
    pub fn object_req(&self, name: &str) -> ApiResult<&'a Map<String, Value>> {
        match self.get(name) {
            Some(Value::Object(m)) => Ok(m),
            None => Err(ApiError::invalid(name, "is required")),
            Some(_) => Err(ApiError::invalid(name, "must be a JSON object")),
        }
    }
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
