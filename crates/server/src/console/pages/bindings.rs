//! Bindings: the applications of apps for channels (`?state=&appId=`;
//! the approval queue is `state=PENDING`), approved or rejected through
//! `service::bindings::decide`, and a new application on an app's behalf
//! (`bindings.apply`: the app's staff, an admin) for one of the open
//! channels.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use cashdesk_core::{AppId, BindingState, Permission};
use cashdesk_store::BindingFilter;

use crate::console::BASE;
use crate::console::layout::{Ctx, PageResult, Section};
use crate::console::texts::Texts;
use crate::input::query_params;
use crate::service::bindings;
use crate::state::AppState;
use crate::wire::{BindingView, ChannelView};

use super::form_body;

#[derive(Template)]
#[template(path = "console/bindings.html")]
struct ListPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    state: String,
    app_id: String,
    states: Vec<&'static str>,
    rows: Vec<BindingView>,
    decide: bool,
    /// The application form: the apps to choose from (a scoped account's
    /// own; others type the app id) and the open channels.
    apply: Option<ApplyForm>,
}

struct ApplyForm {
    apps: Vec<String>,
    channels: Vec<ChannelView>,
}

impl ListPage<'_> {
    fn pending(&self, b: &BindingView) -> bool {
        b.state == BindingState::Pending
    }
}

/// `GET /console/bindings` (pending first when no state is chosen).
pub async fn list(ctx: Ctx, State(state): State<AppState>, RawQuery(q): RawQuery) -> PageResult {
    ctx.require(Permission::BindingsRead)?;
    let q = query_params(q.as_deref());
    let v = |k: &str| q.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
    let (st, app_id) = (v("state"), v("appId"));
    let filter = BindingFilter {
        app_ids: ctx.session.principal.app_scope().map(<[AppId]>::to_vec),
        app_id: AppId::parse(&app_id).ok(),
        state: BindingState::parse(&st),
    };
    let mut rows = bindings::list(&state, &filter)
        .await
        .map_err(|e| ctx.fail(&e))?;
    rows.sort_by_key(|b| b.state != BindingState::Pending);
    let t = ctx.t();
    let page = ListPage {
        t,
        csrf: ctx.csrf(),
        states: BindingState::ALL.iter().map(|s| s.as_str()).collect(),
        state: st,
        app_id,
        rows,
        decide: ctx.can(Permission::BindingsDecide),
        apply: if ctx.can(Permission::BindingsApply) {
            Some(ApplyForm {
                apps: ctx
                    .session
                    .principal
                    .app_scope()
                    .map(|a| a.iter().map(ToString::to_string).collect())
                    .unwrap_or_default(),
                channels: bindings::open_channels(&state)
                    .await
                    .map_err(|e| ctx.fail(&e))?,
            })
        } else {
            None
        },
    };
    Ok(ctx.render(Some(Section::Bindings), t.bindings, &page))
}

/// `POST /console/bindings` `appId, channelId, storeId?`: an application
/// on the app's behalf, pending the operators' decision.
pub async fn apply(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::BindingsApply)?;
    let body = form_body(&form, &["appId", "channelId", "storeId"], &[], &[]);
    let result = bindings::apply_for(&state, &body, &ctx.session.principal).await;
    Ok(ctx.done(&format!("{BASE}/bindings"), result, ctx.t().applied))
}

/// `POST /console/bindings/{id}/approve`.
pub async fn approve(ctx: Ctx, state: State<AppState>, id: Path<String>) -> PageResult {
    decide(ctx, state, id, true).await
}

/// `POST /console/bindings/{id}/reject`.
pub async fn reject(ctx: Ctx, state: State<AppState>, id: Path<String>) -> PageResult {
    decide(ctx, state, id, false).await
}

async fn decide(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    approve: bool,
) -> PageResult {
    // Only unscoped roles decide (the matrix gives merchants no
    // BindingsDecide), so no app check is needed beyond the permission.
    ctx.require(Permission::BindingsDecide)?;
    let t = ctx.t();
    let result = bindings::decide(&state, &id, approve, &ctx.session.principal).await;
    let ok = if approve { t.approved } else { t.rejected };
    Ok(ctx.done(&format!("{BASE}/bindings"), result, ok))
}
