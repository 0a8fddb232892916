//! Admin: binding applications (`?state=&appId=`, the names of
//! `cashdesk_api::BindingQuery`, checked by a test in `admin/mod.rs`),
//! approve / reject. A merchant account sees its apps' applications.

use axum::extract::{RawQuery, State};

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, ListQuery, PathParam};
use crate::service::bindings;
use crate::state::AppState;
use crate::wire::{ApplyBindingResponse, BindingView};
use cashdesk_core::{AppId, BindingState, Permission};
use cashdesk_store::BindingFilter;

/// The typed filter of `GET /api/admin/bindings`.
pub fn filter(q: &ListQuery) -> ApiResult<BindingFilter> {
    Ok(BindingFilter {
        // The principal's scope, set by the handler.
        app_ids: None,
        app_id: q.get("appId", "is not an app id", |s| AppId::parse(s).ok())?,
        state: q.get("state", "must be PENDING, APPROVED or REJECTED", |s| {
            BindingState::parse(&s.to_ascii_uppercase())
        })?,
    })
}

pub async fn list(
    State(state): State<AppState>,
    by: Principal,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<BindingView>>> {
    by.require(Permission::BindingsRead)?;
    let mut filter = filter(&ListQuery::parse(q.as_deref()))?;
    filter.app_ids = by.list_scope(filter.app_id.as_ref())?;
    Ok(Success(bindings::list(&state, &filter).await?))
}

/// `POST /api/admin/bindings` `{appId, channelId, storeId?}`: an
/// application on an app's behalf (`bindings.apply`: its staff, an admin).
pub async fn apply(
    State(state): State<AppState>,
    by: Principal,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<ApplyBindingResponse>> {
    by.require(Permission::BindingsApply)?;
    Ok(Success(bindings::apply_for(&state, &body, &by).await?))
}

pub async fn approve(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<BindingView>> {
    by.require(Permission::BindingsDecide)?;
    Ok(Success(bindings::decide(&state, &id, true, &by).await?))
}

pub async fn reject(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<BindingView>> {
    by.require(Permission::BindingsDecide)?;
    Ok(Success(bindings::decide(&state, &id, false, &by).await?))
}
