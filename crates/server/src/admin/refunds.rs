//! Admin: refunds (`?state=&appId=&orderId=&limit=&before=`, newest
//! first), one refund, and the review of `PENDING_REVIEW` refunds. The SDK
//! and the CLI send `cashdesk_api::RefundQuery` (`state`, `appId`,
//! `limit`); a test in `admin/mod.rs` checks that each is read here.

use axum::extract::{RawQuery, State};

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{ListQuery, PathParam};
use crate::service::{ADMIN_ACTOR, refunds};
use crate::state::AppState;
use crate::wire::RefundView;
use cashdesk_core::{AppId, OrderId, RefundId, RefundState};
use cashdesk_store::RefundFilter;

/// The typed filter of `GET /api/admin/refunds`.
pub fn filter(q: &ListQuery) -> ApiResult<RefundFilter> {
    Ok(RefundFilter {
        // Every app: the operator token sees all.
        app_ids: None,
        app_id: q.get("appId", "is not an app id", |s| AppId::parse(s).ok())?,
        order_id: q.get("orderId", "is not an order id", OrderId::parse)?,
        state: q.get(
            "state",
            "must be PENDING_REVIEW, PROCESSING, SUCCESS, FAIL or REJECTED",
            |s| RefundState::parse(&s.to_ascii_uppercase()),
        )?,
        before: q.get("before", "is not a refund id", RefundId::parse)?,
        limit: q.limit(50, 500)?,
    })
}

pub async fn list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<RefundView>>> {
    let filter = filter(&ListQuery::parse(q.as_deref()))?;
    Ok(Success(refunds::admin_list(&state, &filter).await?))
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
    Ok(Success(
        refunds::decide(&state, &id, true, ADMIN_ACTOR).await?,
    ))
}

pub async fn reject(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<RefundView>> {
    Ok(Success(
        refunds::decide(&state, &id, false, ADMIN_ACTOR).await?,
    ))
}
