//! Admin: channel configs (credentials sealed at rest, shown masked).

use axum::extract::State;
use serde_json::{Value, json};

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, PathParam};
use crate::service::channels;
use crate::state::AppState;
use crate::wire::ChannelConfigView;

pub async fn create(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<Value>> {
    let id = channels::create_config(&state, &body).await?;
    Ok(Success(json!({ "configId": id })))
}

pub async fn list(State(state): State<AppState>) -> ApiResult<Success<Vec<ChannelConfigView>>> {
    Ok(Success(channels::list_configs(&state).await?))
}

pub async fn get(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelConfigView>> {
    Ok(Success(channels::get_config(&state, &id).await?))
}

pub async fn disable(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelConfigView>> {
    Ok(Success(
        channels::set_config_enabled(&state, &id, false).await?,
    ))
}

pub async fn enable(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelConfigView>> {
    Ok(Success(
        channels::set_config_enabled(&state, &id, true).await?,
    ))
}

/// Replaces credentials by a JSON merge patch
/// (`service::channels::replace_credentials`).
pub async fn credentials(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<ChannelConfigView>> {
    Ok(Success(
        channels::replace_credentials(&state, &id, &body).await?,
    ))
}
