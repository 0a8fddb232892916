//! The audit log (`?actor=&action=&target=&from=&to=&before=`): exact
//! actor, action and target by prefix (`refund.` finds every refund
//! decision), days in China time, newest first, pages by the entry's id.
//! A read of the store, as `GET /api/admin/audit` is.

use askama::Template;
use axum::extract::{RawQuery, State};
use cashdesk_core::Permission;
use cashdesk_store::AuditFilter;

use super::{day_start, page_link};
use crate::console::layout::{Ctx, PageResult, Section};
use crate::console::texts::Texts;
use crate::input::query_params;
use crate::state::AppState;
use crate::wire::AuditView;

const PAGE: u32 = 100;

#[derive(Template)]
#[template(path = "console/audit.html")]
struct ListPage {
    t: &'static Texts,
    actor: String,
    action: String,
    target: String,
    from: String,
    to: String,
    rows: Vec<AuditView>,
    next: Option<String>,
}

/// `GET /console/audit`.
pub async fn list(ctx: Ctx, State(state): State<AppState>, RawQuery(q): RawQuery) -> PageResult {
    ctx.require(Permission::AuditRead)?;
    let q = query_params(q.as_deref());
    let v = |k: &str| q.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
    let (actor, action, target, from, to) =
        (v("actor"), v("action"), v("target"), v("from"), v("to"));
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let filter = AuditFilter {
        actor: some(&actor),
        action_prefix: some(&action),
        target_prefix: some(&target),
        from: day_start(&from),
        to: day_start(&to).map(|d| d + chrono::Duration::days(1)),
        before: q.get("before").and_then(|b| b.parse().ok()),
        limit: PAGE,
    };
    let records = match state.store.find_audit(&filter).await {
        Ok(r) => r,
        Err(e) => return Err(ctx.fail(&e.into()).into()),
    };
    let pairs = [
        ("actor", actor.as_str()),
        ("action", &action),
        ("target", &target),
        ("from", &from),
        ("to", &to),
    ];
    let next = (records.len() == PAGE as usize)
        .then(|| {
            records
                .last()
                .map(|r| page_link("audit", &pairs, &r.id.to_string()))
        })
        .flatten();
    let t = ctx.t();
    let page = ListPage {
        t,
        rows: records.iter().map(|r| AuditView::from(&r.entry)).collect(),
        actor,
        action,
        target,
        from,
        to,
        next,
    };
    Ok(ctx.render(Some(Section::Audit), t.audit, &page))
}
