//! Refunds: the list (`?state=&appId=&orderId=&before=`; the review queue
//! is `state=PENDING_REVIEW`) and the review (approve / reject through
//! `service::refunds::decide`, audited as the signed-in account).

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use cashdesk_core::{AppId, OrderId, Permission, RefundId, RefundState};
use cashdesk_store::RefundFilter;

use super::{page_link, sees};
use crate::console::BASE;
use crate::console::layout::{Ctx, PageResult, Section};
use crate::console::texts::Texts;
use crate::input::query_params;
use crate::recon::views::yuan;
use crate::service::refunds;
use crate::state::AppState;
use crate::wire::RefundView;

const PAGE: u32 = 50;

#[derive(Template)]
#[template(path = "console/refunds.html")]
struct ListPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    state: String,
    app_id: String,
    order_id: String,
    states: Vec<&'static str>,
    rows: Vec<RefundView>,
    review: bool,
    next: Option<String>,
    queue: String,
}

impl ListPage<'_> {
    fn money(&self, fen: impl std::borrow::Borrow<i64>) -> String {
        yuan(*fen.borrow())
    }

    fn pending(&self, r: &RefundView) -> bool {
        r.refund.state == RefundState::PendingReview
    }
}

/// `GET /console/refunds`.
pub async fn list(ctx: Ctx, State(state): State<AppState>, RawQuery(q): RawQuery) -> PageResult {
    ctx.require(Permission::RefundsRead)?;
    let q = query_params(q.as_deref());
    let v = |k: &str| q.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
    let (st, app_id, order_id) = (v("state"), v("appId"), v("orderId"));
    let filter = RefundFilter {
        app_ids: ctx.session.principal.app_scope().map(<[AppId]>::to_vec),
        app_id: AppId::parse(&app_id).ok(),
        order_id: OrderId::parse(&order_id),
        state: RefundState::parse(&st),
        before: q.get("before").and_then(|b| RefundId::parse(b)),
        limit: PAGE,
    };
    let rows = refunds::admin_list(&state, &filter)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let pairs = [
        ("state", st.as_str()),
        ("appId", &app_id),
        ("orderId", &order_id),
    ];
    let next = (rows.len() == PAGE as usize)
        .then(|| {
            rows.last()
                .map(|r| page_link("refunds", &pairs, &r.refund.refund_id))
        })
        .flatten();
    let t = ctx.t();
    let page = ListPage {
        t,
        csrf: ctx.csrf(),
        states: RefundState::ALL.iter().map(|s| s.as_str()).collect(),
        state: st.clone(),
        app_id: app_id.clone(),
        order_id: order_id.clone(),
        rows,
        review: ctx.can(Permission::RefundsReview),
        next,
        queue: format!("{BASE}/refunds?state=PENDING_REVIEW"),
    };
    Ok(ctx.render(Some(Section::Refunds), t.refunds, &page))
}

/// `POST /console/refunds/{id}/approve`.
pub async fn approve(ctx: Ctx, state: State<AppState>, id: Path<String>) -> PageResult {
    decide(ctx, state, id, true).await
}

/// `POST /console/refunds/{id}/reject`.
pub async fn reject(ctx: Ctx, state: State<AppState>, id: Path<String>) -> PageResult {
    decide(ctx, state, id, false).await
}

async fn decide(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    approve: bool,
) -> PageResult {
    ctx.require(Permission::RefundsReview)?;
    let r = refunds::admin_get(&state, &id)
        .await
        .map_err(|e| ctx.fail(&e))?;
    if !sees(&ctx, &r.app_id) {
        return Err(ctx.not_found().into());
    }
    let t = ctx.t();
    let result = refunds::decide(&state, &id, approve, &ctx.session.principal).await;
    let ok = if approve { t.approved } else { t.rejected };
    Ok(ctx.done(&format!("{BASE}/refunds?state=PENDING_REVIEW"), result, ok))
}
