//! `POST /api/cashier-desk/out-trade-no/{outTradeNo}/close` (the body is
//! ignored; the SDK sends `{}`).

use axum::Extension;
use axum::extract::State;

use crate::auth::Authed;
use crate::envelope;
use crate::error::ApiResult;
use crate::input::PathParam;
use crate::service::orders;
use crate::state::AppState;
use crate::wire::PayResult;

pub async fn close(
    State(state): State<AppState>,
    Extension(req): Extension<Authed>,
    PathParam(out_trade_no): PathParam,
) -> ApiResult<envelope::Success<PayResult>> {
    Ok(envelope::Success(
        orders::close(&state, &req.app, &out_trade_no).await?,
    ))
}
