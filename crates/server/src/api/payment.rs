//! `POST /api/cashier-desk/payment` (server to server, signed).

use axum::Extension;
use axum::extract::State;

use crate::auth::Authed;
use crate::envelope;
use crate::error::ApiResult;
use crate::input::parse_object;
use crate::service::pay_command::PayCommand;
use crate::service::payments;
use crate::state::AppState;
use crate::wire::PaymentResponse;

pub async fn pay(
    State(state): State<AppState>,
    Extension(req): Extension<Authed>,
) -> ApiResult<envelope::Success<PaymentResponse>> {
    let command = PayCommand::parse(&parse_object(&req.body)?)?;
    Ok(envelope::Success(
        payments::pay(&state, &req.app, command).await?,
    ))
}
