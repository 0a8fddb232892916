//! `GET /api/cashier-desk/payment/list?token=` (unsigned: the token is the
//! buyer's credential).

use axum::extract::{RawQuery, State};

use crate::envelope;
use crate::error::{ApiError, ApiResult};
use crate::input::query_params;
use crate::service::orders;
use crate::state::AppState;
use crate::wire::PaymentList;

pub async fn payment_list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<envelope::Success<PaymentList>> {
    let params = query_params(query.as_deref());
    let token = params
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::invalid("token", "is required"))?;
    Ok(envelope::Success(
        orders::payment_list(&state, token).await?,
    ))
}
