//! Merchant notifications: the list (`?state=&appId=&orderId=&before=`),
//! the endpoints that are failing called out (the URLs of the FAILED
//! notifications on the page), one resend and the bulk resend of chosen
//! FAILED ones, each through `service::outbox::resend` (audited).

use askama::Template;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use cashdesk_core::{AppId, NotifyId, OrderId, Permission};
use cashdesk_store::{NotificationFilter, NotificationState};

use super::{page_link, sees};
use crate::console::BASE;
use crate::console::layout::{Ctx, Flash, PageResult, Section, redirect};
use crate::console::texts::Texts;
use crate::input::query_params;
use crate::service::outbox;
use crate::state::AppState;
use crate::wire::NotificationView;

const PAGE: u32 = 50;
/// At most this many in one bulk resend.
const BULK_MAX: usize = 100;

#[derive(Template)]
#[template(path = "console/notifications.html")]
struct ListPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    state: String,
    app_id: String,
    order_id: String,
    states: Vec<&'static str>,
    rows: Vec<NotificationView>,
    failing: Vec<(String, usize)>,
    resend: bool,
    next: Option<String>,
}

impl ListPage<'_> {
    fn failed(&self, n: &NotificationView) -> bool {
        n.state == NotificationState::Failed
    }
}

/// `GET /console/notifications`.
pub async fn list(ctx: Ctx, State(state): State<AppState>, RawQuery(q): RawQuery) -> PageResult {
    ctx.require(Permission::NotificationsRead)?;
    let q = query_params(q.as_deref());
    let v = |k: &str| q.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
    let (st, app_id, order_id) = (v("state"), v("appId"), v("orderId"));
    let filter = NotificationFilter {
        app_ids: ctx.session.principal.app_scope().map(<[AppId]>::to_vec),
        app_id: AppId::parse(&app_id).ok(),
        order_id: OrderId::parse(&order_id),
        state: NotificationState::parse(&st),
        before: q.get("before").and_then(|b| NotifyId::parse(b)),
        limit: PAGE,
    };
    let rows = outbox::admin_list(&state, &filter)
        .await
        .map_err(|e| ctx.fail(&e))?;
    // The endpoints whose notifications failed, most failures first.
    let mut failing: Vec<(String, usize)> = Vec::new();
    for n in rows.iter().filter(|n| n.state == NotificationState::Failed) {
        match failing.iter_mut().find(|(u, _)| u == n.url.as_str()) {
            Some((_, c)) => *c += 1,
            None => failing.push((n.url.as_str().to_owned(), 1)),
        }
    }
    failing.sort_by_key(|f| std::cmp::Reverse(f.1));
    let pairs = [
        ("state", st.as_str()),
        ("appId", &app_id),
        ("orderId", &order_id),
    ];
    let next = (rows.len() == PAGE as usize)
        .then(|| {
            rows.last()
                .map(|n| page_link("notifications", &pairs, &n.notify_id))
        })
        .flatten();
    let t = ctx.t();
    let page = ListPage {
        t,
        csrf: ctx.csrf(),
        states: NotificationState::ALL.iter().map(|s| s.as_str()).collect(),
        state: st.clone(),
        app_id: app_id.clone(),
        order_id: order_id.clone(),
        rows,
        failing,
        resend: ctx.can(Permission::NotificationsResend),
        next,
    };
    Ok(ctx.render(Some(Section::Notifications), t.notifications, &page))
}

/// Resends one notification the principal sees; `Err` is the flash.
async fn resend_one(ctx: &Ctx, state: &AppState, id: &str) -> Result<NotificationView, Flash> {
    let t = ctx.t();
    let n = outbox::admin_get(state, id).await.map_err(|e| match e {
        crate::service::error::ServiceError::NotFound { .. } => Flash::error(t.not_found_body),
        e => ctx.flash_of(&e),
    })?;
    if !sees(ctx, &n.app_id) {
        return Err(Flash::error(t.not_found_body));
    }
    outbox::resend(state, id, &ctx.session.principal)
        .await
        .map_err(|e| ctx.flash_of(&e))
}

/// `POST /console/notifications/{id}/resend`: back to the notification's
/// order.
pub async fn resend(ctx: Ctx, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    ctx.require(Permission::NotificationsResend)?;
    match resend_one(&ctx, &state, &id).await {
        Ok(n) => Ok(redirect(
            &format!("{BASE}/orders/{}", n.order_id),
            Some(&Flash::ok(ctx.t().resent)),
        )),
        Err(f) => Ok(redirect(&format!("{BASE}/notifications"), Some(&f))),
    }
}

/// `POST /console/notifications/resend` with `id=…` for each chosen one.
pub async fn resend_bulk(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    ctx.require(Permission::NotificationsResend)?;
    let ids: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.as_str())
        .take(BULK_MAX)
        .collect();
    let (mut ok, mut failed) = (0usize, 0usize);
    for id in ids {
        match resend_one(&ctx, &state, id).await {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    let t = ctx.t();
    let text = format!("{} {ok} · {} {failed}", t.resent, t.not_resent);
    let flash = if failed == 0 {
        Flash::ok(text)
    } else {
        Flash::error(text)
    };
    Ok(redirect(
        &format!("{BASE}/notifications?state=FAILED"),
        Some(&flash),
    ))
}
