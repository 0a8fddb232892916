//! Stores: the list (a merchant's apps only), create, rename, enable and
//! disable, through `service::stores` with the operator API's rules.
//! A merchant acts on its own apps' stores only; another app's store
//! reads as missing.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use cashdesk_core::Permission;
use cashdesk_store::StoreUpdate;
use serde_json::{Map, Value};

use super::sees;
use crate::console::BASE;
use crate::console::layout::{Ctx, PageResult, Section};
use crate::console::texts::Texts;
use crate::service::stores;
use crate::state::AppState;
use crate::wire::StoreView;

#[derive(Template)]
#[template(path = "console/stores.html")]
struct ListPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    rows: Vec<StoreView>,
    write: bool,
}

/// `GET /console/stores`.
pub async fn list(ctx: Ctx, State(state): State<AppState>) -> PageResult {
    ctx.require(Permission::StoresRead)?;
    let mut rows = stores::list(&state, None).await.map_err(|e| ctx.fail(&e))?;
    rows.retain(|s| sees(&ctx, &s.app_id));
    let t = ctx.t();
    let page = ListPage {
        t,
        csrf: ctx.csrf(),
        rows,
        write: ctx.can(Permission::StoresWrite),
    };
    Ok(ctx.render(Some(Section::Stores), t.stores, &page))
}

fn field(form: &HashMap<String, String>, k: &str) -> String {
    form.get(k).map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// `POST /console/stores` `appId, storeId, name`.
pub async fn create(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::StoresWrite)?;
    let back = format!("{BASE}/stores");
    let app_id = field(&form, "appId");
    if !sees(&ctx, &app_id) {
        return Ok(ctx.done::<()>(
            &back,
            Err(crate::service::error::ServiceError::not_found(format!(
                "app {app_id}"
            ))),
            "",
        ));
    }
    let mut body = Map::new();
    for k in ["appId", "storeId", "name"] {
        body.insert(k.to_owned(), Value::String(field(&form, k)));
    }
    let result = stores::create(&state, &body, &ctx.session.principal).await;
    Ok(ctx.done(&back, result, ctx.t().done))
}

/// The store, if the principal sees its app.
async fn visible(ctx: &Ctx, state: &AppState, app_id: &str, store_id: &str) -> PageResult {
    if !sees(ctx, app_id) {
        return Err(ctx.not_found().into());
    }
    stores::get(state, app_id, store_id)
        .await
        .map_err(|e| ctx.fail(&e))?;
    Ok(axum::response::IntoResponse::into_response(()))
}

/// `POST /console/stores/{app}/{store}/rename` `name`.
pub async fn rename(
    ctx: Ctx,
    State(state): State<AppState>,
    Path((app_id, store_id)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::StoresWrite)?;
    visible(&ctx, &state, &app_id, &store_id).await?;
    let mut body = Map::new();
    body.insert("name".to_owned(), Value::String(field(&form, "name")));
    let result = match stores::parse_rename(&body) {
        Ok(update) => {
            stores::update(&state, &app_id, &store_id, update, &ctx.session.principal).await
        }
        Err(e) => Err(e),
    };
    Ok(ctx.done(&format!("{BASE}/stores"), result, ctx.t().done))
}

/// `POST /console/stores/{app}/{store}/enable`.
pub async fn enable(ctx: Ctx, state: State<AppState>, path: Path<(String, String)>) -> PageResult {
    set_enabled(ctx, state, path, true).await
}

/// `POST /console/stores/{app}/{store}/disable`.
pub async fn disable(ctx: Ctx, state: State<AppState>, path: Path<(String, String)>) -> PageResult {
    set_enabled(ctx, state, path, false).await
}

async fn set_enabled(
    ctx: Ctx,
    State(state): State<AppState>,
    Path((app_id, store_id)): Path<(String, String)>,
    enabled: bool,
) -> PageResult {
    ctx.require(Permission::StoresWrite)?;
    visible(&ctx, &state, &app_id, &store_id).await?;
    let update = StoreUpdate {
        enabled: Some(enabled),
        ..StoreUpdate::default()
    };
    let result = stores::update(&state, &app_id, &store_id, update, &ctx.session.principal).await;
    Ok(ctx.done(&format!("{BASE}/stores"), result, ctx.t().done))
}
