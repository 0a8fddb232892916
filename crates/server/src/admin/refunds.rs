//! Admin: refunds (`?state=&appId=&orderId=&limit=&before=`, newest
//! first), one refund, and the review of `PENDING_REVIEW` refunds. The SDK
//! and the CLI send `cashdesk_api::RefundQuery` (`state`, `appId`,
//! `limit`); a test in `admin/mod.rs` checks that each is read here.

use axum::extract::{RawQuery, State};

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{ListQuery, PathParam};
use crate::service::refunds;
use crate::state::AppState;
use crate::wire::RefundView;
use cashdesk_core::{AppId, OrderId, Permission, RefundId, RefundState};
use cashdesk_store::RefundFilter;

/// The typed filter of `GET /api/admin/refunds`.
pub fn filter(q: &ListQuery) -> ApiResult<RefundFilter> {
    Ok(RefundFilter {
        // The principal's scope, set by the handler.
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
    by: Principal,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<RefundView>>> {
    by.require(Permission::RefundsRead)?;
    let mut filter = filter(&ListQuery::parse(q.as_deref()))?;
    filter.app_ids = by.list_scope(filter.app_id.as_ref())?;
    Ok(Success(refunds::admin_list(&state, &filter).await?))
}

pub async fn get(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<RefundView>> {
    by.require(Permission::RefundsRead)?;
    let refund = refunds::admin_get(&state, &id).await?;
    by.scoped(&refund.app_id, format!("refund {id}"))?;
    Ok(Success(refund))
}

pub async fn approve(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<RefundView>> {
    by.require(Permission::RefundsReview)?;
    Ok(Success(refunds::decide(&state, &id, true, &by).await?))
}

pub async fn reject(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<RefundView>> {
    by.require(Permission::RefundsReview)?;
    Ok(Success(refunds::decide(&state, &id, false, &by).await?))
}
