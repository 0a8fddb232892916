//! Admin: merchant notifications (`?appId=&orderId=&state=&limit=&before=`,
//! newest first: the names of `cashdesk_api::NotificationQuery`, checked by
//! a test in `admin/mod.rs`), one notification with its attempts, and the
//! resend.

use axum::extract::{RawQuery, State};

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{ListQuery, PathParam};
use crate::service::outbox;
use crate::state::AppState;
use crate::wire::NotificationView;
use cashdesk_core::{AppId, NotifyId, OrderId, Permission};
use cashdesk_store::{NotificationFilter, NotificationState};

/// The typed filter of `GET /api/admin/notifications`.
pub fn filter(q: &ListQuery) -> ApiResult<NotificationFilter> {
    Ok(NotificationFilter {
        // The principal's scope, set by the handler.
        app_ids: None,
        app_id: q.get("appId", "is not an app id", |s| AppId::parse(s).ok())?,
        order_id: q.get("orderId", "is not an order id", OrderId::parse)?,
        state: q.get("state", "must be PENDING, DELIVERED or FAILED", |s| {
            NotificationState::parse(&s.to_ascii_uppercase())
        })?,
        before: q.get("before", "is not a notification id", NotifyId::parse)?,
        limit: q.limit(50, 500)?,
    })
}

pub async fn list(
    State(state): State<AppState>,
    by: Principal,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<NotificationView>>> {
    by.require(Permission::NotificationsRead)?;
    let mut filter = filter(&ListQuery::parse(q.as_deref()))?;
    filter.app_ids = by.list_scope(filter.app_id.as_ref())?;
    Ok(Success(outbox::admin_list(&state, &filter).await?))
}

pub async fn get(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<NotificationView>> {
    by.require(Permission::NotificationsRead)?;
    let n = outbox::admin_get(&state, &id).await?;
    by.scoped(&n.app_id, format!("notification {id}"))?;
    Ok(Success(n))
}

pub async fn resend(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<NotificationView>> {
    by.require(Permission::NotificationsResend)?;
    let n = outbox::admin_get(&state, &id).await?;
    by.scoped(&n.app_id, format!("notification {id}"))?;
    Ok(Success(outbox::resend(&state, &id, &by).await?))
}
