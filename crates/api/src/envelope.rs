//! The response envelope `{code, msg, data, responseTime}` that every
//! `/api` answer wears.

use serde::{Deserialize, Serialize};

/// The success code of the envelope.
pub const CODE_OK: i64 = 1000;

/// The success message of the envelope.
pub const MSG_OK: &str = "操作成功";

/// `{code, msg, data, responseTime}`: every `/api` response body. `data`
/// is `null` when there is none (an error without details); the server
/// always sends `responseTime` (unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub code: i64,
    pub msg: String,
    #[serde(default = "none")]
    pub data: Option<T>,
    #[serde(default)]
    pub response_time: i64,
}

fn none<T>() -> Option<T> {
    None
}
