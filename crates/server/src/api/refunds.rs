//! `POST /api/cashier-desk/refunds` and `GET /api/cashier-desk/refunds/{outRefundNo}`.

use axum::Extension;
use axum::extract::{RawQuery, State};

use crate::auth::Authed;
use crate::envelope;
use crate::error::{ApiError, ApiResult};
use crate::input::{PathParam, parse_object, query_params};
use crate::service::refunds::{self, RefundInput};
use crate::state::AppState;
use crate::wire::RefundResult;

pub async fn create(
    State(state): State<AppState>,
    Extension(req): Extension<Authed>,
) -> ApiResult<envelope::Success<RefundResult>> {
    let body = parse_object(&req.body)?;
    let input = RefundInput::parse(&state, &body)?;
    Ok(envelope::Success(
        refunds::create(&state, &req.app, &req.body, input).await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Extension(req): Extension<Authed>,
    PathParam(out_refund_no): PathParam,
    RawQuery(query): RawQuery,
) -> ApiResult<envelope::Success<RefundResult>> {
    let sync = match query_params(query.as_deref())
        .get("sync")
        .map(String::as_str)
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("sync", "must be true or false")),
    };
    Ok(envelope::Success(
        refunds::get(&state, &req.app, &out_refund_no, sync).await?,
    ))
}
