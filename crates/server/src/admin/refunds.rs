//! Admin: refunds (`?state=&appId=&orderId=&limit=&before=`, newest
//! first), one refund, and the review of `PENDING_REVIEW` refunds.

use axum::extract::{RawQuery, State};

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{PathParam, query_params};
use crate::service::refunds;
use crate::state::AppState;
use crate::wire::RefundView;

pub async fn list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<RefundView>>> {
    let q = query_params(q.as_deref());
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    Ok(Success(
        refunds::admin_list(
            &state,
            get("appId"),
            get("state"),
            get("orderId"),
            get("limit"),
            get("before"),
        )
        .await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<RefundView>> {
    Ok(Success(refunds::admin_get(&state, &id).await?))
}

pub async fn approve(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<RefundView>> {
    Ok(Success(refunds::decide(&state, &id, true).await?))
}

pub async fn reject(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<RefundView>> {
    Ok(Success(refunds::decide(&state, &id, false).await?))
}
