//! The response envelope `{code, msg, data, responseTime}` that every `/api`
//! answer wears (ARCHITECTURE.md §5; the type is the contract's,
//! [`cashdesk_api::Envelope`]). Success is code 1000 "操作成功"; errors are
//! built by [`crate::error::ApiError`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cashdesk_api::Envelope;
use serde::Serialize;
use serde_json::Value;

pub use cashdesk_api::MSG_OK;

pub const CODE_OK: u16 = 1000;

/// Unix milliseconds now.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The envelope as JSON (`data` is `null` when there is none).
pub fn body(code: u16, msg: &str, data: Option<Value>) -> Value {
    let envelope = Envelope {
        code: i64::from(code),
        msg: msg.to_owned(),
        data,
        response_time: now_millis(),
    };
    // Numbers, strings and JSON already: serializing cannot fail.
    serde_json::to_value(envelope).unwrap_or(Value::Null)
}

/// A 200 success envelope around `data`.
pub struct Success<T>(pub T);

impl<T: Serialize> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        match serde_json::to_value(self.0) {
            Ok(data) => (StatusCode::OK, Json(body(CODE_OK, MSG_OK, Some(data)))).into_response(),
            Err(e) => {
                crate::error::ApiError::Internal(anyhow::anyhow!("serialising a response: {e}"))
                    .into_response()
            }
        }
    }
}
