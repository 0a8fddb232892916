//! Refund applications: the queue (`GET /console/refunds/applications`,
//! `?state=` defaulting to `APPLIED`, `&appId=`) and the decision
//! (`POST …/{id}/approve|reject` with a remark). Who may decide follows
//! the app's policy, as on the operator API
//! (`service::applications::permission_to_decide`).

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use cashdesk_core::{AppId, ApplicationId, Permission, RefundApplicationState};
use cashdesk_store::ApplicationFilter;

use super::field;
use crate::console::BASE;
use crate::console::layout::{Ctx, PageResult, Section};
use crate::console::texts::Texts;
use crate::input::query_params;
use crate::recon::views::yuan;
use crate::service::applications::{self, ApplicationView};
use crate::state::AppState;

const PAGE: u32 = 50;

#[derive(Template)]
#[template(path = "console/applications.html")]
struct ListPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    state: String,
    app_id: String,
    states: Vec<&'static str>,
    rows: Vec<ApplicationView>,
    /// Whether the signed-in role may decide (the app's policy decides
    /// per row; the service checks again).
    decide: bool,
    next: Option<String>,
}

impl ListPage<'_> {
    fn money(&self, fen: impl std::borrow::Borrow<i64>) -> String {
        yuan(*fen.borrow())
    }

    fn open(&self, a: &ApplicationView) -> bool {
        a.state == RefundApplicationState::Applied
    }
}

/// `GET /console/refunds/applications`.
pub async fn list(ctx: Ctx, State(state): State<AppState>, RawQuery(q): RawQuery) -> PageResult {
    ctx.require(Permission::RefundsRead)?;
    let q = query_params(q.as_deref());
    let v = |k: &str| q.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
    let st = q
        .get("state")
        .map_or_else(|| "APPLIED".to_owned(), |s| s.trim().to_owned());
    let app_id = v("appId");
    let filter = ApplicationFilter {
        app_ids: ctx.session.principal.app_scope().map(<[AppId]>::to_vec),
        app_id: AppId::parse(&app_id).ok(),
        state: RefundApplicationState::parse(&st),
        before: q.get("before").and_then(|b| ApplicationId::parse(b)),
        limit: PAGE,
    };
    let rows = applications::list(&state, &filter)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let next = (rows.len() == PAGE as usize)
        .then(|| {
            rows.last().map(|r| {
                format!(
                    "{BASE}/refunds/applications?state={st}&appId={app_id}&before={}",
                    r.application_id
                )
            })
        })
        .flatten();
    let t = ctx.t();
    let page = ListPage {
        t,
        csrf: ctx.csrf(),
        states: RefundApplicationState::ALL
            .iter()
            .map(|s| s.as_str())
            .collect(),
        state: st,
        app_id,
        rows,
        decide: ctx.can(Permission::RefundsReview) || ctx.can(Permission::RefundsCreate),
        next,
    };
    Ok(ctx.render(Some(Section::Refunds), t.refund_applications, &page))
}

/// `POST /console/refunds/applications/{id}/approve` `remark`.
pub async fn approve(
    ctx: Ctx,
    state: State<AppState>,
    id: Path<String>,
    form: Form<HashMap<String, String>>,
) -> PageResult {
    decide(ctx, state, id, form, true).await
}

/// `POST /console/refunds/applications/{id}/reject` `remark`.
pub async fn reject(
    ctx: Ctx,
    state: State<AppState>,
    id: Path<String>,
    form: Form<HashMap<String, String>>,
) -> PageResult {
    decide(ctx, state, id, form, false).await
}

async fn decide(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
    approve: bool,
) -> PageResult {
    ctx.require(Permission::RefundsRead)?;
    let by = &ctx.session.principal;
    let (app, a) = applications::load(&state, &id, by)
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.require(applications::permission_to_decide(&app))?;
    let mut body = serde_json::Map::new();
    body.insert("remark".to_owned(), field(&form, "remark").into());
    let result = match applications::remark_of(&body) {
        Ok(remark) => applications::decide(&state, &app, a, approve, remark, by, false).await,
        Err(e) => Err(e),
    };
    let t = ctx.t();
    let ok = if approve { t.approved } else { t.rejected };
    Ok(ctx.done(&format!("{BASE}/refunds/applications"), result, ok))
}
