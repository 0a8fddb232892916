//! The console's pages behind the session ([`super::ConsoleSession`]):
//! each takes the session as an extractor and checks its permission.
//!
//! Every handler takes a [`Ctx`] (the session, the page's path, the
//! flash), checks the permission its route needs, calls the same service
//! functions as the operator API (so the rules, the audit log and the
//! answers are the same), and renders into the layout
//! ([`super::layout`]). A merchant principal sees only its apps: lists
//! are narrowed to [`crate::access::Principal::app_scope`], and another
//! app's object reads as missing (the 404 page). Forms post
//! `application/x-www-form-urlencoded` with the session's `csrf` and are
//! answered with a redirect (POST-redirect-GET).

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::BASE;
use super::layout::{self, Ctx, Section, local_back};
use crate::cashier::i18n::Lang;
use crate::input::query_params;
use crate::state::AppState;

/// Every page behind the session middleware.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(BASE, get(home))
        .route(&format!("{BASE}/"), get(home))
        .route(&format!("{BASE}/lang/{{code}}"), get(switch_lang))
        .layer(axum::middleware::map_response(layout::secure))
}

/// The console's home: the first section the role may see.
async fn home(ctx: Ctx) -> Response {
    match Section::ALL.iter().find(|s| s.visible(&ctx.session)) {
        Some(s) => layout::redirect(&s.href(), None),
        None => ctx.forbidden(),
    }
}

/// `GET /console/lang/{zh|en}?back=`: sets the language cookie and goes
/// back to the page (inside the console only).
async fn switch_lang(_ctx: Ctx, Path(code): Path<String>, RawQuery(q): RawQuery) -> Response {
    let lang = match code.as_str() {
        "en" => Lang::En,
        _ => Lang::Zh,
    };
    let q = query_params(q.as_deref());
    let back = local_back(q.get("back").map(String::as_str));
    let mut resp = layout::redirect(&back, None);
    resp.headers_mut()
        .append(header::SET_COOKIE, layout::lang_cookie(lang));
    resp.into_response()
}
