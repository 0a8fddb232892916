//! The response envelope `{code, msg, data, responseTime}` that every `/api`
//! answer wears (ARCHITECTURE.md §5). Success is code 1000 "操作成功";
//! errors are built by [`crate::error::ApiError`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

pub const CODE_OK: u16 = 1000;
pub const MSG_OK: &str = "操作成功";

/// Unix milliseconds now.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The envelope as JSON.
pub fn body(code: u16, msg: &str, data: Option<Value>) -> Value {
    json!({
        "code": code,
        "msg": msg,
        "data": data,
        "responseTime": now_millis(),
    })
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
