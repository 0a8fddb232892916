//! `POST /api/cashier-desk/refund-applications`,
//! `GET …/refund-applications/{outRefundNo}` and the merchant's decision
//! `POST …/{outRefundNo}/approve|reject {remark?}` (all signed).

use axum::Extension;
use axum::extract::State;

use crate::auth::Authed;
use crate::envelope;
use crate::error::ApiResult;
use crate::input::{PathParam, parse_object};
use crate::service::applications::{self, ApplicationInput, ApplicationView};
use crate::state::AppState;

pub async fn apply(
    State(state): State<AppState>,
    Extension(req): Extension<Authed>,
) -> ApiResult<envelope::Success<ApplicationView>> {
    let body = parse_object(&req.body)?;
    let input = ApplicationInput::parse(&body)?;
    Ok(envelope::Success(
        applications::apply(&state, &req.app, &req.body, input).await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Extension(req): Extension<Authed>,
    PathParam(out_refund_no): PathParam,
) -> ApiResult<envelope::Success<ApplicationView>> {
    Ok(envelope::Success(
        applications::get(&state, &req.app, &out_refund_no).await?,
    ))
}

pub async fn approve(
    state: State<AppState>,
    req: Extension<Authed>,
    no: PathParam,
) -> ApiResult<envelope::Success<ApplicationView>> {
    decide(state, req, no, true).await
}

pub async fn reject(
    state: State<AppState>,
    req: Extension<Authed>,
    no: PathParam,
) -> ApiResult<envelope::Success<ApplicationView>> {
    decide(state, req, no, false).await
}

async fn decide(
    State(state): State<AppState>,
    Extension(req): Extension<Authed>,
    PathParam(out_refund_no): PathParam,
    approve: bool,
) -> ApiResult<envelope::Success<ApplicationView>> {
    let body = if req.body.is_empty() {
        serde_json::Map::new()
    } else {
        parse_object(&req.body)?
    };
    Ok(envelope::Success(
        applications::merchant_decides(&state, &req.app, &out_refund_no, approve, &body).await?,
    ))
}
