//! The buyer-facing web surface under `/cashier-desk-web`. For now: the
//! Native QR code, `GET /cashier-desk-web/qr/{token}.svg`, rendering the
//! code URL the channel returned for an order (the token is sealed by
//! cashdesk: see [`crate::service::payments::qr_svg_url`]).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::input::PathParam;
use crate::service::payments;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/cashier-desk-web/qr/{file}", get(qr_svg))
}

async fn qr_svg(State(state): State<AppState>, PathParam(file): PathParam) -> Response {
    match payments::qr_svg(&state, &file).await {
        Ok(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            svg,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
