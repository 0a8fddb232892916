//! Admin: binding applications (`?state=&appId=`, the names of
//! `cashdesk_api::BindingQuery`, checked by a test in `admin/mod.rs`),
//! approve / reject.

use axum::extract::{RawQuery, State};

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{ListQuery, PathParam};
use crate::service::bindings;
use crate::state::AppState;
use crate::wire::BindingView;
use cashdesk_core::{AppId, BindingState};
use cashdesk_store::BindingFilter;

/// The typed filter of `GET /api/admin/bindings`.
pub fn filter(q: &ListQuery) -> ApiResult<BindingFilter> {
    Ok(BindingFilter {
        // Every app: the operator token sees all.
        app_ids: None,
        app_id: q.get("appId", "is not an app id", |s| AppId::parse(s).ok())?,
        state: q.get("state", "must be PENDING, APPROVED or REJECTED", |s| {
            BindingState::parse(&s.to_ascii_uppercase())
        })?,
    })
}

pub async fn list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<BindingView>>> {
    let filter = filter(&ListQuery::parse(q.as_deref()))?;
    Ok(Success(bindings::list(&state, &filter).await?))
}

pub async fn approve(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<BindingView>> {
    Ok(Success(bindings::decide(&state, &id, true).await?))
}

pub async fn reject(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<BindingView>> {
    Ok(Success(bindings::decide(&state, &id, false).await?))
}
