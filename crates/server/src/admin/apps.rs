//! Admin: apps.

use axum::extract::State;

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, PathParam};
use crate::service::apps;
use crate::state::AppState;
use crate::wire::{AppSettingsView, AppView, RegisterAppResponse, RotatedKeyView};

pub async fn list(State(state): State<AppState>) -> ApiResult<Success<Vec<AppView>>> {
    Ok(Success(apps::list(&state).await?))
}

/// Registration by the operator; same body and answer as
/// `POST /api/cashier-desk-sa/register`.
pub async fn create(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<RegisterAppResponse>> {
    let new = apps::NewApp::parse(&state, &body)?;
    let (app, key) = apps::create(&state, new, "admin").await?;
    Ok(Success(apps::registered(&app, &key)))
}

pub async fn get(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<AppView>> {
    Ok(Success(apps::get(&state, &id).await?))
}

pub async fn disable(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<AppView>> {
    Ok(Success(apps::set_enabled(&state, &id, false).await?))
}

pub async fn enable(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<AppView>> {
    Ok(Success(apps::set_enabled(&state, &id, true).await?))
}

/// `{refundReview?, autoRefundPaidAfterClose?, notifyUrl?}`: changes what
/// is given.
pub async fn settings(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<AppSettingsView>> {
    Ok(Success(apps::update_settings(&state, &id, &body).await?))
}

/// Rotates the app's key with an overlap window (`service::apps::rotate_key`).
pub async fn rotate_key(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<RotatedKeyView>> {
    Ok(Success(apps::rotate_key(&state, &id, &body).await?))
}
