//! Admin: the audit log (`?limit=`, newest first).

use axum::extract::{RawQuery, State};

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::ListQuery;
use crate::state::AppState;
use crate::wire::AuditView;
use cashdesk_core::Permission;

pub async fn list(
    State(state): State<AppState>,
    by: Principal,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<AuditView>>> {
    by.require(Permission::AuditRead)?;
    let limit = ListQuery::parse(q.as_deref()).limit(100, 1000)?;
    let entries = state.store.list_audit(limit).await?;
    Ok(Success(entries.iter().map(AuditView::from).collect()))
}
