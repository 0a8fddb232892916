//! Admin: apps. A merchant account lists and reads its own apps and may
//! rotate their keys; everything else here is `apps.write`.

use axum::extract::State;
use cashdesk_core::Permission;

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, PathParam};
use crate::service::apps;
use crate::state::AppState;
use crate::wire::{AppSettingsView, AppView, RegisterAppResponse, RotatedKeyView};

pub async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> ApiResult<Success<Vec<AppView>>> {
    by.require(Permission::AppsRead)?;
    let mut apps = apps::list(&state).await?;
    apps.retain(|a| by.sees(&a.app_id));
    Ok(Success(apps))
}

/// Registration by the operator; same body and answer as
/// `POST /api/cashier-desk-sa/register`.
pub async fn create(
    State(state): State<AppState>,
    by: Principal,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<RegisterAppResponse>> {
    by.require(Permission::AppsWrite)?;
    let new = apps::NewApp::parse(&state, &body)?;
    let (app, key) = apps::create(&state, new, &by).await?;
    Ok(Success(apps::registered(&app, &key)))
}

pub async fn get(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<AppView>> {
    by.require(Permission::AppsRead)?;
    by.scoped(&id, format!("app {id}"))?;
    Ok(Success(apps::get(&state, &id).await?))
}

pub async fn disable(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<AppView>> {
    by.require(Permission::AppsWrite)?;
    Ok(Success(apps::set_enabled(&state, &id, false, &by).await?))
}

pub async fn enable(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<AppView>> {
    by.require(Permission::AppsWrite)?;
    Ok(Success(apps::set_enabled(&state, &id, true, &by).await?))
}

/// `{refundReview?, autoRefundPaidAfterClose?, notifyUrl?}`: changes what
/// is given.
pub async fn settings(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<AppSettingsView>> {
    by.require(Permission::AppsWrite)?;
    Ok(Success(
        apps::update_settings(&state, &id, &body, &by).await?,
    ))
}

/// Rotates the app's key with an overlap window (`service::apps::rotate_key`).
pub async fn rotate_key(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<RotatedKeyView>> {
    by.require(Permission::AppsRotateKey)?;
    by.scoped(&id, format!("app {id}"))?;
    Ok(Success(apps::rotate_key(&state, &id, &body, &by).await?))
}
