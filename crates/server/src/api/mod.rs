//! The merchant API under `/api/cashier-desk` (ARCHITECTURE.md §5.2).
//! Signed routes sit behind [`crate::auth::require_signature`]; the
//! payment list (the cashier token is the credential) and the platform
//! keys (public) are not signed.

mod applications;
mod close;
mod orders;
mod payment;
mod payment_list;
mod platform_keys;
mod query;
mod refunds;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::auth::require_signature;
use crate::state::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    let signed = Router::new()
        .route("/api/cashier-desk/unified/orders", post(orders::create))
        .route("/api/cashier-desk/payment", post(payment::pay))
        .route(
            "/api/cashier-desk/out-trade-no/query-pay-result/{out_trade_no}",
            get(query::query_pay_result),
        )
        .route(
            "/api/cashier-desk/out-trade-no/{out_trade_no}/close",
            post(close::close),
        )
        .route("/api/cashier-desk/refunds", post(refunds::create))
        .route(
            "/api/cashier-desk/refunds/{out_refund_no}",
            get(refunds::get),
        )
        .route(
            "/api/cashier-desk/refund-applications",
            post(applications::apply),
        )
        .route(
            "/api/cashier-desk/refund-applications/{out_refund_no}",
            get(applications::get),
        )
        .route(
            "/api/cashier-desk/refund-applications/{out_refund_no}/approve",
            post(applications::approve),
        )
        .route(
            "/api/cashier-desk/refund-applications/{out_refund_no}/reject",
            post(applications::reject),
        )
        .route_layer(from_fn_with_state(state, require_signature));
    let open = Router::new()
        .route(
            "/api/cashier-desk/payment/list",
            get(payment_list::payment_list),
        )
        .route(
            "/api/cashier-desk/platform-keys",
            get(platform_keys::platform_keys),
        );
    signed.merge(open)
}
