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

mod applications;
mod apps;
mod audit;
mod bindings;
mod channels;
mod notifications;
mod order_actions;
mod orders;
mod recon;
mod refunds;
mod stores;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cashdesk_core::AppId;
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value};

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
        .route(&format!("{BASE}/audit"), get(audit::list))
        .route(
            &format!("{BASE}/stores"),
            get(stores::list).post(stores::create),
        )
        .route(
            &format!("{BASE}/stores/{{app}}/{{store}}/rename"),
            post(stores::rename),
        )
        .route(
            &format!("{BASE}/stores/{{app}}/{{store}}/enable"),
            post(stores::enable),
        )
        .route(
            &format!("{BASE}/stores/{{app}}/{{store}}/disable"),
            post(stores::disable),
        )
        .route(&format!("{BASE}/orders"), get(orders::list))
        .route(&format!("{BASE}/orders/{{id}}"), get(orders::detail))
        .route(
            &format!("{BASE}/orders/{{id}}/sync"),
            post(order_actions::sync),
        )
        .route(
            &format!("{BASE}/orders/{{id}}/close"),
            post(order_actions::close),
        )
        .route(
            &format!("{BASE}/orders/{{id}}/refund"),
            post(order_actions::refund),
        )
        .route(
            &format!("{BASE}/refunds/applications"),
            get(applications::list),
        )
        .route(
            &format!("{BASE}/refunds/applications/{{id}}/approve"),
            post(applications::approve),
        )
        .route(
            &format!("{BASE}/refunds/applications/{{id}}/reject"),
            post(applications::reject),
        )
        .route(&format!("{BASE}/refunds"), get(refunds::list))
        .route(
            &format!("{BASE}/refunds/{{id}}/approve"),
            post(refunds::approve),
        )
        .route(
            &format!("{BASE}/refunds/{{id}}/reject"),
            post(refunds::reject),
        )
        .route(
            &format!("{BASE}/bindings"),
            get(bindings::list).post(bindings::apply),
        )
        .route(
            &format!("{BASE}/bindings/{{id}}/approve"),
            post(bindings::approve),
        )
        .route(
            &format!("{BASE}/bindings/{{id}}/reject"),
            post(bindings::reject),
        )
        .route(&format!("{BASE}/notifications"), get(notifications::list))
        .route(
            &format!("{BASE}/notifications/resend"),
            post(notifications::resend_bulk),
        )
        .route(
            &format!("{BASE}/notifications/{{id}}/resend"),
            post(notifications::resend),
        )
        .merge(apps::router())
        .merge(channels::router())
        .merge(recon::router())
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

/// Whether the principal sees the app named `app_id` (a name that is not
/// an app id is nobody's).
pub fn sees(ctx: &Ctx, app_id: &str) -> bool {
    AppId::parse(app_id).is_ok_and(|a| ctx.session.principal.sees_app(&a))
}

/// `YYYY-MM-DD` → that day's first instant in China time (UTC+8, the
/// time the views show and the channels' bills use).
pub fn day_start(s: &str) -> Option<DateTime<Utc>> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let china = FixedOffset::east_opt(8 * 3600)?;
    china
        .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// `/console/<path>?<pairs>&before=<before>` (empty values left out).
pub fn page_link(path: &str, pairs: &[(&str, &str)], before: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    if !before.is_empty() {
        q.append_pair("before", before);
    }
    format!("{BASE}/{path}?{}", q.finish())
}

/// One labelled value of a detail page.
pub struct Cell {
    pub label: String,
    pub value: String,
}

impl Cell {
    pub fn new(label: &str, value: &str) -> Cell {
        Cell {
            label: label.to_owned(),
            value: value.to_owned(),
        }
    }
}

/// A form field, trimmed (`""` when absent).
pub fn field(form: &HashMap<String, String>, k: &str) -> String {
    form.get(k).map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// A form as the JSON object the operator API's services parse: each of
/// `texts` as a string (an empty one left out, as the services read
/// absent), each of `ints` as a number when it reads as one (otherwise
/// as given, so the service names the field), each of `checks` as a
/// boolean (a checkbox: present is `true`, absent `false`).
pub fn form_body(
    form: &HashMap<String, String>,
    texts: &[&str],
    ints: &[&str],
    checks: &[&str],
) -> Map<String, Value> {
    let mut body = Map::new();
    for k in texts {
        let v = field(form, k);
        if !v.is_empty() {
            body.insert((*k).to_owned(), Value::String(v));
        }
    }
    for k in ints {
        let v = field(form, k);
        if !v.is_empty() {
            let n = v.parse::<i64>().map_or(Value::String(v), Value::from);
            body.insert((*k).to_owned(), n);
        }
    }
    for k in checks {
        body.insert((*k).to_owned(), Value::Bool(form.contains_key(*k)));
    }
    body
}

/// A JSON object typed into a textarea (credentials), or the refusal
/// that names `name`.
pub fn json_object(
    name: &str,
    text: &str,
) -> Result<Map<String, Value>, crate::service::error::ServiceError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(crate::service::error::ServiceError::invalid(
            name,
            "must be a JSON object",
        )),
    }
}
