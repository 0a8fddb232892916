//! Admin: orders (`?appId=&storeId=&state=&outTradeNo=&limit=&before=`, newest first).

use axum::extract::{RawQuery, State};

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{PathParam, query_params};
use crate::service::orders;
use crate::state::AppState;
use crate::wire::OrderView;

pub async fn list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<OrderView>>> {
    let q = query_params(q.as_deref());
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    Ok(Success(
        orders::admin_list(
            &state,
            get("appId"),
            get("storeId"),
            get("state"),
            get("outTradeNo"),
            get("limit"),
            get("before"),
        )
        .await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<OrderView>> {
    Ok(Success(orders::admin_get(&state, &id).await?))
}
