//! Admin: channels (one scene of a config).

use axum::extract::State;
use serde_json::{Value, json};

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, PathParam};
use crate::service::channels;
use crate::state::AppState;
use crate::wire::ChannelView;

pub async fn create(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<Value>> {
    let id = channels::create_channel(&state, &body).await?;
    Ok(Success(json!({ "channelId": id })))
}

pub async fn list(State(state): State<AppState>) -> ApiResult<Success<Vec<ChannelView>>> {
    Ok(Success(channels::list_channels(&state).await?))
}

pub async fn get(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelView>> {
    Ok(Success(channels::get_channel(&state, &id).await?))
}

pub async fn disable(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelView>> {
    Ok(Success(
        channels::set_channel_enabled(&state, &id, false).await?,
    ))
}

pub async fn enable(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<ChannelView>> {
    Ok(Success(
        channels::set_channel_enabled(&state, &id, true).await?,
    ))
}
