//! The operator API under `/api/admin`: `Authorization: Bearer <token>`,
//! compared in constant time, length included (401 code 4019 otherwise).
//! Every write is audited (actor "admin", no secrets in the detail).
//! Responses are not signed: the bearer token over TLS is the trust.

mod apps;
mod audit;
mod bindings;
mod channels;
mod configs;
mod notifications;
mod orders;
mod refunds;
mod stores;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Whether the request carries the operator token.
pub fn bearer_matches(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(given) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Digests compared: the time tells neither a partial match nor the
    // token's length.
    state.admin_token.matches(given.trim().as_bytes())
}

async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if bearer_matches(&state, req.headers()) {
        next.run(req).await
    } else {
        ApiError::new(
            ErrorCode::AdminUnauthorized,
            "the operator API needs Authorization: Bearer <admin token>",
        )
        .into_response()
    }
}

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/admin/apps", get(apps::list).post(apps::create))
        .route("/api/admin/apps/{id}", get(apps::get))
        .route("/api/admin/apps/{id}/disable", post(apps::disable))
        .route("/api/admin/apps/{id}/enable", post(apps::enable))
        .route("/api/admin/apps/{id}/settings", post(apps::settings))
        .route("/api/admin/apps/{id}/rotate-key", post(apps::rotate_key))
        .route(
            "/api/admin/channel-configs",
            get(configs::list).post(configs::create),
        )
        .route("/api/admin/channel-configs/{id}", get(configs::get))
        .route(
            "/api/admin/channel-configs/{id}/disable",
            post(configs::disable),
        )
        .route(
            "/api/admin/channel-configs/{id}/enable",
            post(configs::enable),
        )
        .route(
            "/api/admin/channel-configs/{id}/credentials",
            post(configs::credentials),
        )
        .route(
            "/api/admin/channels",
            get(channels::list).post(channels::create),
        )
        .route("/api/admin/channels/{id}", get(channels::get))
        .route("/api/admin/channels/{id}/disable", post(channels::disable))
        .route("/api/admin/channels/{id}/enable", post(channels::enable))
        .route("/api/admin/stores", get(stores::list).post(stores::create))
        .route(
            "/api/admin/stores/{app_id}/{store_id}",
            get(stores::get).put(stores::rename),
        )
        .route(
            "/api/admin/stores/{app_id}/{store_id}/disable",
            post(stores::disable),
        )
        .route(
            "/api/admin/stores/{app_id}/{store_id}/enable",
            post(stores::enable),
        )
        .route(
            "/api/admin/stores/{app_id}/{store_id}/identities",
            get(stores::list_identities),
        )
        .route(
            "/api/admin/stores/{app_id}/{store_id}/identities/{config_id}",
            put(stores::put_identity).delete(stores::delete_identity),
        )
        .route("/api/admin/bindings", get(bindings::list))
        .route("/api/admin/bindings/{id}/approve", post(bindings::approve))
        .route("/api/admin/bindings/{id}/reject", post(bindings::reject))
        .route("/api/admin/orders", get(orders::list))
        .route("/api/admin/orders/{id}", get(orders::get))
        .route("/api/admin/refunds", get(refunds::list))
        .route("/api/admin/refunds/{id}", get(refunds::get))
        .route("/api/admin/refunds/{id}/approve", post(refunds::approve))
        .route("/api/admin/refunds/{id}/reject", post(refunds::reject))
        .route("/api/admin/notifications", get(notifications::list))
        .route("/api/admin/notifications/{id}", get(notifications::get))
        .route(
            "/api/admin/notifications/{id}/resend",
            post(notifications::resend),
        )
        .route("/api/admin/audit", get(audit::list))
        .route_layer(from_fn_with_state(state, require_admin))
}
