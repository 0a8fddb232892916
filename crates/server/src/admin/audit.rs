//! Admin: the audit log (`?limit=`, newest first).

use axum::extract::{RawQuery, State};

use crate::envelope::Success;
use crate::error::{ApiError, ApiResult};
use crate::input::query_params;
use crate::state::AppState;
use crate::wire::AuditView;

pub async fn list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<AuditView>>> {
    let limit = match query_params(q.as_deref()).get("limit").map(String::as_str) {
        None | Some("") => 100,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", "must be between 1 and 1000"))?,
    };
    let entries = state.store.list_audit(limit).await?;
    Ok(Success(entries.iter().map(AuditView::from).collect()))
}
