//! Admin: stores of an app and their merchant identities per channel
//! config (see `service::stores`). A merchant account manages its apps'
//! stores; a store's identity at a channel is channel configuration
//! (`channels.write`).

use axum::extract::{RawQuery, State};
use cashdesk_core::Permission;
use cashdesk_store::StoreUpdate;
use serde_json::Value;

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, PathParams, query_params};
use crate::service::stores;
use crate::state::AppState;
use crate::wire::{StoreIdentityView, StoreView};

pub async fn create(
    State(state): State<AppState>,
    by: Principal,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<StoreView>> {
    by.require(Permission::StoresWrite)?;
    if let Some(app_id) = body.get("appId").and_then(Value::as_str) {
        by.scoped(app_id, format!("app {app_id}"))?;
    }
    Ok(Success(stores::create(&state, &body, &by).await?))
}

/// `?appId=` narrows to one app.
pub async fn list(
    State(state): State<AppState>,
    by: Principal,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<StoreView>>> {
    by.require(Permission::StoresRead)?;
    let q = query_params(q.as_deref());
    let app_id = q.get("appId").map(String::as_str).filter(|s| !s.is_empty());
    if let Some(app_id) = app_id {
        by.scoped(app_id, format!("app {app_id}"))?;
    }
    let mut list = stores::list(&state, app_id).await?;
    list.retain(|s| by.sees(&s.app_id));
    Ok(Success(list))
}

pub async fn get(
    State(state): State<AppState>,
    by: Principal,
    PathParams((app_id, store_id)): PathParams<(String, String)>,
) -> ApiResult<Success<StoreView>> {
    by.require(Permission::StoresRead)?;
    by.scoped(&app_id, format!("store {app_id}/{store_id}"))?;
    Ok(Success(stores::get(&state, &app_id, &store_id).await?))
}

/// `{name}`.
pub async fn rename(
    State(state): State<AppState>,
    by: Principal,
    PathParams((app_id, store_id)): PathParams<(String, String)>,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<StoreView>> {
    by.require(Permission::StoresWrite)?;
    by.scoped(&app_id, format!("store {app_id}/{store_id}"))?;
    let update = stores::parse_rename(&body)?;
    Ok(Success(
        stores::update(&state, &app_id, &store_id, update, &by).await?,
    ))
}

pub async fn disable(
    State(state): State<AppState>,
    by: Principal,
    PathParams((app_id, store_id)): PathParams<(String, String)>,
) -> ApiResult<Success<StoreView>> {
    by.require(Permission::StoresWrite)?;
    by.scoped(&app_id, format!("store {app_id}/{store_id}"))?;
    let update = StoreUpdate {
        enabled: Some(false),
        ..StoreUpdate::default()
    };
    Ok(Success(
        stores::update(&state, &app_id, &store_id, update, &by).await?,
    ))
}

pub async fn enable(
    State(state): State<AppState>,
    by: Principal,
    PathParams((app_id, store_id)): PathParams<(String, String)>,
) -> ApiResult<Success<StoreView>> {
    by.require(Permission::StoresWrite)?;
    by.scoped(&app_id, format!("store {app_id}/{store_id}"))?;
    let update = StoreUpdate {
        enabled: Some(true),
        ..StoreUpdate::default()
    };
    Ok(Success(
        stores::update(&state, &app_id, &store_id, update, &by).await?,
    ))
}

pub async fn list_identities(
    State(state): State<AppState>,
    by: Principal,
    PathParams((app_id, store_id)): PathParams<(String, String)>,
) -> ApiResult<Success<Vec<StoreIdentityView>>> {
    by.require(Permission::StoresRead)?;
    by.scoped(&app_id, format!("store {app_id}/{store_id}"))?;
    Ok(Success(
        stores::list_identities(&state, &app_id, &store_id).await?,
    ))
}

/// `{identity: {…}}` (the channel's fields).
pub async fn put_identity(
    State(state): State<AppState>,
    by: Principal,
    PathParams((app_id, store_id, config_id)): PathParams<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<StoreIdentityView>> {
    by.require(Permission::ChannelsWrite)?;
    Ok(Success(
        stores::put_identity(&state, &app_id, &store_id, &config_id, &body, &by).await?,
    ))
}

pub async fn delete_identity(
    State(state): State<AppState>,
    by: Principal,
    PathParams((app_id, store_id, config_id)): PathParams<(String, String, String)>,
) -> ApiResult<Success<Value>> {
    by.require(Permission::ChannelsWrite)?;
    Ok(Success(
        stores::delete_identity(&state, &app_id, &store_id, &config_id, &by).await?,
    ))
}
