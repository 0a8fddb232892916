//! Admin: merchant notifications (`?appId=&orderId=&state=&limit=&before=`,
//! newest first), one notification with its attempts, and the resend.

use axum::extract::{RawQuery, State};

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{PathParam, query_params};
use crate::service::outbox;
use crate::state::AppState;
use crate::wire::NotificationView;

pub async fn list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<NotificationView>>> {
    let q = query_params(q.as_deref());
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    Ok(Success(
        outbox::admin_list(
            &state,
            get("appId"),
            get("orderId"),
            get("state"),
            get("limit"),
            get("before"),
        )
        .await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<NotificationView>> {
    Ok(Success(outbox::admin_get(&state, &id).await?))
}

pub async fn resend(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<NotificationView>> {
    Ok(Success(outbox::resend(&state, &id).await?))
}
