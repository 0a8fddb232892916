//! Admin: channels (one scene of a config).

use axum::extract::State;
use serde_json::{Value, json};

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, PathParam};
use crate::service::channels;
use crate::state::AppState;
use crate::wire::ChannelView;
use cashdesk_core::Permission;

pub async fn create(
    State(state): State<AppState>,
    by: Principal,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<Value>> {
    by.require(Permission::ChannelsWrite)?;
    let id = channels::create_channel(&state, &body, &by).await?;
    Ok(Success(json!({ "channelId": id })))
}

pub async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> ApiResult<Success<Vec<ChannelView>>> {
    by.require(Permission::ChannelsRead)?;
    Ok(Success(channels::list_channels(&state).await?))
}

pub async fn get(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelView>> {
    by.require(Permission::ChannelsRead)?;
    Ok(Success(channels::get_channel(&state, &id).await?))
}

pub async fn disable(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelView>> {
    by.require(Permission::ChannelsWrite)?;
    Ok(Success(
        channels::set_channel_enabled(&state, &id, false, &by).await?,
    ))
}

pub async fn enable(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelView>> {
    by.require(Permission::ChannelsWrite)?;
    Ok(Success(
        channels::set_channel_enabled(&state, &id, true, &by).await?,
    ))
}
