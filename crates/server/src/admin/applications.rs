//! Admin: refund applications (`?appId=&state=&before=&limit=`, newest
//! first), one application, and a person's decision. Who may decide
//! follows the app's policy (`service::applications::permission_to_decide`):
//! `refunds.review` where the operators decide, `refunds.create` (the
//! merchant's staff, an admin) where the merchant does.

use axum::extract::{RawQuery, State};
use cashdesk_core::{AppId, ApplicationId, Permission, RefundApplicationState};
use cashdesk_store::ApplicationFilter;

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, ListQuery, PathParam};
use crate::service::applications::{self, ApplicationView};
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    by: Principal,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<ApplicationView>>> {
    by.require(Permission::RefundsRead)?;
    let q = ListQuery::parse(q.as_deref());
    let mut filter = ApplicationFilter {
        app_ids: None,
        app_id: q.get("appId", "is not an app id", |s| AppId::parse(s).ok())?,
        state: q.get("state", "must be APPLIED, APPROVED or REJECTED", |s| {
            RefundApplicationState::parse(&s.to_ascii_uppercase())
        })?,
        before: q.get("before", "is not an application id", ApplicationId::parse)?,
        limit: q.limit(50, 500)?,
    };
    filter.app_ids = by.list_scope(filter.app_id.as_ref())?;
    Ok(Success(applications::list(&state, &filter).await?))
}

pub async fn get(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<ApplicationView>> {
    by.require(Permission::RefundsRead)?;
    let (app, a) = applications::load(&state, &id, &by).await?;
    Ok(Success(applications::view_of(&state, &app, &a).await?))
}

pub async fn approve(
    state: State<AppState>,
    by: Principal,
    id: PathParam,
    body: JsonObject,
) -> ApiResult<Success<ApplicationView>> {
    decide(state, by, id, body, true).await
}

pub async fn reject(
    state: State<AppState>,
    by: Principal,
    id: PathParam,
    body: JsonObject,
) -> ApiResult<Success<ApplicationView>> {
    decide(state, by, id, body, false).await
}

async fn decide(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
    approve: bool,
) -> ApiResult<Success<ApplicationView>> {
    // Reading needs refunds.read first, so a stranger to refunds learns
    // nothing about the application's app.
    by.require(Permission::RefundsRead)?;
    let (app, a) = applications::load(&state, &id, &by).await?;
    by.require(applications::permission_to_decide(&app))?;
    let remark = applications::remark_of(&body)?;
    Ok(Success(
        applications::decide(&state, &app, a, approve, remark, &by, false).await?,
    ))
}
