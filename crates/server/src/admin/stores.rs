//! Admin: stores of an app and their merchant identities per channel
//! config (see `service::stores`).

use axum::extract::{RawQuery, State};
use cashdesk_store::StoreUpdate;
use serde_json::Value;

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, PathParams, query_params};
use crate::service::stores;
use crate::state::AppState;
use crate::wire::{StoreIdentityView, StoreView};

pub async fn create(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<StoreView>> {
    Ok(Success(stores::create(&state, &body).await?))
}

/// `?appId=` narrows to one app.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<StoreView>>> {
    let q = query_params(q.as_deref());
    let app_id = q.get("appId").map(String::as_str).filter(|s| !s.is_empty());
    Ok(Success(stores::list(&state, app_id).await?))
}

pub async fn get(
    State(state): State<AppState>,
    PathParams((app_id, store_id)): PathParams<(String, String)>,
) -> ApiResult<Success<StoreView>> {
    Ok(Success(stores::get(&state, &app_id, &store_id).await?))
}

/// `{name}`.
pub async fn rename(
    State(state): State<AppState>,
    PathParams((app_id, store_id)): PathParams<(String, String)>,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<StoreView>> {
    let update = stores::parse_rename(&body)?;
    Ok(Success(
        stores::update(&state, &app_id, &store_id, update).await?,
    ))
}

pub async fn disable(
    State(state): State<AppState>,
    PathParams((app_id, store_id)): PathParams<(String, String)>,
) -> ApiResult<Success<StoreView>> {
    let update = StoreUpdate {
        enabled: Some(false),
        ..StoreUpdate::default()
    };
    Ok(Success(
        stores::update(&state, &app_id, &store_id, update).await?,
    ))
}

pub async fn enable(
    State(state): State<AppState>,
    PathParams((app_id, store_id)): PathParams<(String, String)>,
) -> ApiResult<Success<StoreView>> {
    let update = StoreUpdate {
        enabled: Some(true),
        ..StoreUpdate::default()
    };
    Ok(Success(
        stores::update(&state, &app_id, &store_id, update).await?,
    ))
}

pub async fn list_identities(
    State(state): State<AppState>,
    PathParams((app_id, store_id)): PathParams<(String, String)>,
) -> ApiResult<Success<Vec<StoreIdentityView>>> {
    Ok(Success(
        stores::list_identities(&state, &app_id, &store_id).await?,
    ))
}

/// `{identity: {…}}` (the channel's fields).
pub async fn put_identity(
    State(state): State<AppState>,
    PathParams((app_id, store_id, config_id)): PathParams<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<StoreIdentityView>> {
    Ok(Success(
        stores::put_identity(&state, &app_id, &store_id, &config_id, &body).await?,
    ))
}

pub async fn delete_identity(
    State(state): State<AppState>,
    PathParams((app_id, store_id, config_id)): PathParams<(String, String, String)>,
) -> ApiResult<Success<Value>> {
    Ok(Success(
        stores::delete_identity(&state, &app_id, &store_id, &config_id).await?,
    ))
}
