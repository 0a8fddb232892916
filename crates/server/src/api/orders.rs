//! `POST /api/cashier-desk/unified/orders`.

use axum::Extension;
use axum::extract::State;

use crate::auth::Authed;
use crate::envelope;
use crate::error::ApiResult;
use crate::input::parse_object;
use crate::service::orders::{self, OrderInput};
use crate::state::AppState;

pub async fn create(
    State(state): State<AppState>,
    Extension(req): Extension<Authed>,
) -> ApiResult<envelope::Success<serde_json::Value>> {
    let body = parse_object(&req.body)?;
    let input = OrderInput::parse(&state, &body)?;
    let answer = orders::create(&state, &req.app, &req.body, input).await?;
    Ok(envelope::Success(answer))
}
