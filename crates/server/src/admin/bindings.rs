//! Admin: binding applications (`?state=&appId=`), approve / reject.

use axum::extract::{RawQuery, State};

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{PathParam, query_params};
use crate::service::bindings;
use crate::state::AppState;
use crate::wire::BindingView;

pub async fn list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<BindingView>>> {
    let q = query_params(q.as_deref());
    let app_id = q.get("appId").map(String::as_str).filter(|s| !s.is_empty());
    let binding_state = q.get("state").map(String::as_str).filter(|s| !s.is_empty());
    Ok(Success(
        bindings::list(&state, app_id, binding_state).await?,
    ))
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
