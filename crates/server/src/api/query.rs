//! `GET /api/cashier-desk/out-trade-no/query-pay-result/{outTradeNo}`.

use axum::Extension;
use axum::extract::{RawQuery, State};

use crate::auth::Authed;
use crate::envelope;
use crate::error::{ApiError, ApiResult};
use crate::input::{PathParam, query_params};
use crate::service::orders;
use crate::state::AppState;
use crate::wire::PayResult;

pub async fn query_pay_result(
    State(state): State<AppState>,
    Extension(req): Extension<Authed>,
    PathParam(out_trade_no): PathParam,
    RawQuery(query): RawQuery,
) -> ApiResult<envelope::Success<PayResult>> {
    let sync = match query_params(query.as_deref())
        .get("sync")
        .map(String::as_str)
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("sync", "must be true or false")),
    };
    Ok(envelope::Success(
        orders::query(&state, &req.app, &out_trade_no, sync).await?,
    ))
}
