//! Admin: channel configs (credentials sealed at rest, shown masked) and
//! their connection test.

use axum::extract::State;
use serde_json::{Value, json};

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, PathParam};
use crate::service::channel_probe::{self, ProbeView};
use crate::service::channels;
use crate::state::AppState;
use crate::wire::ChannelConfigView;
use cashdesk_core::Permission;

pub async fn create(
    State(state): State<AppState>,
    by: Principal,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<Value>> {
    by.require(Permission::ChannelsWrite)?;
    let id = channels::create_config(&state, &body, &by).await?;
    Ok(Success(json!({ "configId": id })))
}

pub async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> ApiResult<Success<Vec<ChannelConfigView>>> {
    by.require(Permission::ChannelsRead)?;
    Ok(Success(channels::list_configs(&state).await?))
}

pub async fn get(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelConfigView>> {
    by.require(Permission::ChannelsRead)?;
    Ok(Success(channels::get_config(&state, &id).await?))
}

pub async fn disable(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelConfigView>> {
    by.require(Permission::ChannelsWrite)?;
    Ok(Success(
        channels::set_config_enabled(&state, &id, false, &by).await?,
    ))
}

pub async fn enable(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelConfigView>> {
    by.require(Permission::ChannelsWrite)?;
    Ok(Success(
        channels::set_config_enabled(&state, &id, true, &by).await?,
    ))
}

/// Replaces credentials by a JSON merge patch
/// (`service::channels::replace_credentials`).
pub async fn credentials(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<ChannelConfigView>> {
    by.require(Permission::ChannelSecretsWrite)?;
    Ok(Success(
        channels::replace_credentials(&state, &id, &body, &by).await?,
    ))
}

/// `POST /api/admin/channel-configs/{id}/test`: one harmless query at the
/// channel with the stored credentials (`service::channel_probe`).
pub async fn test(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<ProbeView>> {
    by.require(Permission::ChannelsWrite)?;
    Ok(Success(channel_probe::test_config(&state, &id).await?))
}
