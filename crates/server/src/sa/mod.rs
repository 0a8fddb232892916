//! The seed "cashier-desk-sa" flow: app registration (operator token, or
//! open registration) and the signed channel-binding application.

use axum::Extension;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::middleware::from_fn_with_state;
use axum::routing::post;

use crate::access::Principal;
use crate::auth::{Authed, require_signature};
use crate::edge::client_ip::ClientIp;
use crate::envelope;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::input::{JsonObject, parse_object};
use crate::service::{apps, bindings};
use crate::state::AppState;
use crate::wire::{ApplyBindingResponse, RegisterAppResponse};

pub fn router(state: AppState) -> Router<AppState> {
    let signed = Router::new()
        .route(
            "/api/cashier-desk-sa/apply/binding-channel",
            post(apply_binding),
        )
        .route_layer(from_fn_with_state(state, require_signature));
    Router::new()
        .route("/api/cashier-desk-sa/register", post(register))
        .merge(signed)
}

/// `POST /api/cashier-desk-sa/register`. With the admin token, or the API
/// token of an account that may create apps, it always works; without one only when open registration is on. A missing
/// or wrong token on a closed server is 403 REGISTRATION_CLOSED (the caller
/// is not an operator, and registration is closed to everyone else).
async fn register(
    State(state): State<AppState>,
    client: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    body: Result<JsonObject, ApiError>,
) -> ApiResult<envelope::Success<RegisterAppResponse>> {
    let ip = client.map(|Extension(ClientIp(ip))| ip);
    let operator = crate::access::bearer_principal(&state, &headers, ip)
        .await?
        .filter(|p| p.can(cashdesk_core::Permission::AppsWrite));
    if operator.is_none() && !state.config.open_registration {
        return Err(ApiError::new(
            ErrorCode::RegistrationClosed,
            "registration needs the operator token (Authorization: Bearer …); open registration is off",
        ));
    }
    let JsonObject(body) = body?;
    let new = apps::NewApp::parse(&state, &body)?;
    let by = operator.unwrap_or_else(|| Principal::system("open-registration", ip));
    let (app, key) = apps::create(&state, new, &by).await?;
    Ok(envelope::Success(apps::registered(&app, &key)))
}

/// `POST /api/cashier-desk-sa/apply/binding-channel` (signed by the app).
async fn apply_binding(
    State(state): State<AppState>,
    Extension(req): Extension<Authed>,
) -> ApiResult<envelope::Success<ApplyBindingResponse>> {
    let body = parse_object(&req.body)?;
    Ok(envelope::Success(
        bindings::apply(
            &state,
            &req.app,
            &body,
            &Principal::app(&req.app.app_id, None),
        )
        .await?,
    ))
}
