//! Channels: the channel configs (a merchant account at a channel) and
//! the channels (one scene of a config), through `service::channels` with
//! the operator API's permissions: read `channels.read`, create and
//! enable/disable `channels.write`, replace credentials
//! `channels.secrets`.
//!
//! Credentials are typed as a JSON object into a textarea and never shown
//! back: a config shows only which keys are set (the service's view masks
//! every value). "Test connection" (`channels.write`) makes one harmless
//! query at the channel with the stored credentials
//! (`service::channel_probe`) and tells its outcome.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Form, Router};
use cashdesk_core::{Permission, SceneCode};
use serde_json::Value;

use super::{field, form_body, json_object};
use crate::console::BASE;
use crate::console::layout::{Ctx, Flash, PageResult, Section, redirect};
use crate::console::texts::Texts;
use crate::service::{channel_probe, channels};
use crate::state::AppState;
use crate::wire::{ChannelConfigView, ChannelView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/channels"), get(list).post(create_channel))
        .route(&format!("{BASE}/channels/configs"), post(create_config))
        .route(
            &format!("{BASE}/channels/configs/{{id}}/credentials"),
            post(credentials),
        )
        .route(
            &format!("{BASE}/channels/configs/{{id}}/enable"),
            post(enable_config),
        )
        .route(
            &format!("{BASE}/channels/configs/{{id}}/test"),
            post(test_config),
        )
        .route(
            &format!("{BASE}/channels/configs/{{id}}/disable"),
            post(disable_config),
        )
        .route(&format!("{BASE}/channels/{{id}}/enable"), post(enable))
        .route(&format!("{BASE}/channels/{{id}}/disable"), post(disable))
}

struct ConfigRow {
    config: ChannelConfigView,
    /// The credential keys that are set (values never leave the service).
    keys: String,
}

#[derive(Template)]
#[template(path = "console/channels.html")]
struct ListPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    configs: Vec<ConfigRow>,
    channels: Vec<ChannelView>,
    channel_types: Vec<&'static str>,
    scenes: Vec<&'static str>,
    write: bool,
    secrets: bool,
}

/// `GET /console/channels`.
pub async fn list(ctx: Ctx, State(state): State<AppState>) -> PageResult {
    ctx.require(Permission::ChannelsRead)?;
    let configs = channels::list_configs(&state)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let chans = channels::list_channels(&state)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let configs = configs
        .into_iter()
        .map(|c| ConfigRow {
            keys: match &c.credentials {
                Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(", "),
                _ => String::new(),
            },
            config: c,
        })
        .collect();
    let t = ctx.t();
    let page = ListPage {
        t,
        csrf: ctx.csrf(),
        configs,
        channels: chans,
        channel_types: cashdesk_channels::channel_types()
            .map(|c| c.as_str())
            .collect(),
        scenes: SceneCode::ALL.iter().map(|s| s.as_str()).collect(),
        write: ctx.can(Permission::ChannelsWrite),
        secrets: ctx.can(Permission::ChannelSecretsWrite),
    };
    Ok(ctx.render(Some(Section::Channels), t.channels, &page))
}

fn back() -> String {
    format!("{BASE}/channels")
}

/// `POST /console/channels/configs` `channelType, name, mchId,
/// apiVersion?, baseUrl?, credentials` (a JSON object).
pub async fn create_config(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::ChannelsWrite)?;
    let mut body = form_body(
        &form,
        &["channelType", "name", "mchId", "apiVersion", "baseUrl"],
        &[],
        &[],
    );
    let result = match json_object("credentials", &field(&form, "credentials")) {
        Ok(creds) => {
            body.insert("credentials".to_owned(), Value::Object(creds));
            channels::create_config(&state, &body, &ctx.session.principal).await
        }
        Err(e) => Err(e),
    };
    Ok(ctx.done(&back(), result, ctx.t().done))
}

/// `POST /console/channels/configs/{id}/credentials` `credentials` (a
/// JSON merge patch).
pub async fn credentials(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::ChannelSecretsWrite)?;
    let result = match json_object("credentials", &field(&form, "credentials")) {
        Ok(patch) => {
            let mut body = serde_json::Map::new();
            body.insert("credentials".to_owned(), Value::Object(patch));
            channels::replace_credentials(&state, &id, &body, &ctx.session.principal).await
        }
        Err(e) => Err(e),
    };
    Ok(ctx.done(&back(), result, ctx.t().done))
}

/// `POST /console/channels/configs/{id}/enable`.
pub async fn enable_config(ctx: Ctx, state: State<AppState>, id: Path<String>) -> PageResult {
    config_enabled(ctx, state, id, true).await
}

/// `POST /console/channels/configs/{id}/disable`.
pub async fn disable_config(ctx: Ctx, state: State<AppState>, id: Path<String>) -> PageResult {
    config_enabled(ctx, state, id, false).await
}

async fn config_enabled(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    enabled: bool,
) -> PageResult {
    ctx.require(Permission::ChannelsWrite)?;
    let result = channels::set_config_enabled(&state, &id, enabled, &ctx.session.principal).await;
    Ok(ctx.done(&back(), result, ctx.t().done))
}

/// `POST /console/channels/configs/{id}/test`: the connection test; its
/// outcome is the page's message.
pub async fn test_config(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> PageResult {
    ctx.require(Permission::ChannelsWrite)?;
    let t = ctx.t();
    let flash = match channel_probe::test_config(&state, &id).await {
        Ok(p) if p.ok => Flash::ok(format!(
            "{} {} ({} ms): {}",
            t.connection_ok, p.mch_id, p.latency_ms, p.message
        )),
        Ok(p) => Flash::error(format!(
            "{} {} — {}{}: {}",
            t.connection_failed,
            p.mch_id,
            p.outcome,
            p.code.map(|c| format!(" {c}")).unwrap_or_default(),
            p.message
        )),
        Err(e) => ctx.flash_of(&e),
    };
    Ok(redirect(&back(), Some(&flash)))
}

/// `POST /console/channels` `configId, sceneCode, channelName, sort?`.
pub async fn create_channel(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::ChannelsWrite)?;
    let body = form_body(
        &form,
        &["configId", "sceneCode", "channelName"],
        &["sort"],
        &[],
    );
    let result = channels::create_channel(&state, &body, &ctx.session.principal).await;
    Ok(ctx.done(&back(), result, ctx.t().done))
}

/// `POST /console/channels/{id}/enable`.
pub async fn enable(ctx: Ctx, state: State<AppState>, id: Path<String>) -> PageResult {
    channel_enabled(ctx, state, id, true).await
}

/// `POST /console/channels/{id}/disable`.
pub async fn disable(ctx: Ctx, state: State<AppState>, id: Path<String>) -> PageResult {
    channel_enabled(ctx, state, id, false).await
}

async fn channel_enabled(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    enabled: bool,
) -> PageResult {
    ctx.require(Permission::ChannelsWrite)?;
    let result = channels::set_channel_enabled(&state, &id, enabled, &ctx.session.principal).await;
    Ok(ctx.done(&back(), result, ctx.t().done))
}
