//! Apps: the list (a merchant's own apps only), one app with its
//! settings, create, the settings form, enable/disable and the key
//! rotation, through `service::apps` with the operator API's permissions.
//!
//! A new app key exists in clear only in the answer to its create or
//! rotate: those two forms answer with the page that shows it (200, not a
//! redirect — a flash cookie or a URL would keep it), and no page shows
//! it again. Another app reads as missing (the 404 page).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Form, Router};
use cashdesk_core::{AppId, Permission, SignType};
use cashdesk_store::BindingFilter;

use super::{Cell, form_body, sees};
use crate::console::BASE;
use crate::console::layout::{Ctx, PageResult, Section};
use crate::console::texts::Texts;
use crate::service::{apps, bindings};
use crate::state::AppState;
use crate::wire::{AppView, BindingView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/apps"), get(list).post(create))
        .route(&format!("{BASE}/apps/{{id}}"), get(detail))
        .route(&format!("{BASE}/apps/{{id}}/settings"), post(settings))
        .route(&format!("{BASE}/apps/{{id}}/enable"), post(enable))
        .route(&format!("{BASE}/apps/{{id}}/disable"), post(disable))
        .route(&format!("{BASE}/apps/{{id}}/rotate-key"), post(rotate_key))
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct ListPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    rows: Vec<AppView>,
    write: bool,
    sign_types: Vec<&'static str>,
}

/// `GET /console/apps`.
pub async fn list(ctx: Ctx, State(state): State<AppState>) -> PageResult {
    ctx.require(Permission::AppsRead)?;
    let mut rows = apps::list(&state).await.map_err(|e| ctx.fail(&e))?;
    rows.retain(|a| sees(&ctx, &a.app_id));
    let t = ctx.t();
    let page = ListPage {
        t,
        csrf: ctx.csrf(),
        rows,
        write: ctx.can(Permission::AppsWrite),
        sign_types: SignType::ALL.iter().map(|s| s.as_str()).collect(),
    };
    Ok(ctx.render(Some(Section::Apps), t.apps, &page))
}

#[derive(Template)]
#[template(path = "console/app.html")]
struct DetailPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    app: AppView,
    fields: Vec<Cell>,
    write: bool,
    rotate: bool,
    /// RSA2/SM2: a rotation gives a new public key.
    asymmetric: bool,
    /// The app's channel applications, when the role reads them.
    bindings: Option<Vec<BindingView>>,
}

fn opt(v: Option<&str>) -> String {
    v.unwrap_or("—").to_owned()
}

/// `GET /console/apps/{id}`.
pub async fn detail(ctx: Ctx, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    ctx.require(Permission::AppsRead)?;
    if !sees(&ctx, &id) {
        return Err(ctx.not_found().into());
    }
    let app = apps::get(&state, &id).await.map_err(|e| ctx.fail(&e))?;
    let t = ctx.t();
    let notify = app.notify_url.as_ref().map(ToString::to_string);
    let fields = vec![
        Cell::new("appId", &app.app_id),
        Cell::new(t.name, &app.app_name),
        Cell::new("signType", app.sign_type.as_str()),
        Cell::new(t.state, t.on_off(app.enabled)),
        Cell::new("notifyUrl", &opt(notify.as_deref())),
        Cell::new(t.refund_review, t.yes_no(app.refund_review)),
        Cell::new(
            t.auto_refund_paid_after_close,
            t.yes_no(app.auto_refund_paid_after_close),
        ),
        Cell::new(t.key_confirmed, t.yes_no(app.key_confirmed)),
        Cell::new(
            t.previous_key_valid_until,
            &opt(app.previous_key_valid_until.as_deref()),
        ),
        Cell::new(t.created_at, &app.created_at),
    ];
    let bindings = if ctx.can(Permission::BindingsRead) {
        let filter = BindingFilter {
            app_id: AppId::parse(&app.app_id).ok(),
            ..BindingFilter::default()
        };
        Some(
            bindings::list(&state, &filter)
                .await
                .map_err(|e| ctx.fail(&e))?,
        )
    } else {
        None
    };
    let page = DetailPage {
        t,
        csrf: ctx.csrf(),
        bindings,
        asymmetric: app.sign_type.is_asymmetric(),
        fields,
        write: ctx.can(Permission::AppsWrite),
        rotate: ctx.can(Permission::AppsRotateKey),
        app,
    };
    Ok(ctx.render(Some(Section::Apps), t.apps, &page))
}

#[derive(Template)]
#[template(path = "console/app_key.html")]
struct KeyPage<'a> {
    t: &'static Texts,
    app_id: &'a str,
    app_key: Option<&'a str>,
    note: Option<String>,
    href: String,
}

impl Ctx {
    /// The page that shows a new app key, this once.
    fn key_page(&self, app_id: &str, app_key: Option<&str>, note: Option<String>) -> PageResult {
        let t = self.t();
        let page = KeyPage {
            t,
            app_id,
            app_key,
            note,
            href: format!("{BASE}/apps/{app_id}"),
        };
        Ok(self.render(Some(Section::Apps), t.app_key, &page))
    }
}

/// `POST /console/apps` `appName, signType, notifyUrl?, publicKeyPem?,
/// refundReview?, autoRefundPaidAfterClose?`: answers with the new key.
pub async fn create(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::AppsWrite)?;
    let body = form_body(
        &form,
        &["appName", "signType", "notifyUrl", "publicKeyPem"],
        &[],
        &["refundReview", "autoRefundPaidAfterClose"],
    );
    let created = match apps::NewApp::parse(&state, &body) {
        Ok(new) => apps::create(&state, new, &ctx.session.principal).await,
        Err(e) => Err(e),
    };
    match created {
        Ok((app, key)) => {
            let r = apps::registered(&app, &key);
            ctx.key_page(&r.app_id, Some(&r.app_key), None)
        }
        Err(e) => Ok(ctx.done::<()>(&format!("{BASE}/apps"), Err(e), "")),
    }
}

/// `POST /console/apps/{id}/settings` `refundReview?,
/// autoRefundPaidAfterClose?, notifyUrl` (an empty URL removes it).
pub async fn settings(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::AppsWrite)?;
    if !sees(&ctx, &id) {
        return Err(ctx.not_found().into());
    }
    let mut body = form_body(
        &form,
        &[],
        &[],
        &["refundReview", "autoRefundPaidAfterClose"],
    );
    body.insert(
        "notifyUrl".to_owned(),
        serde_json::Value::String(super::field(&form, "notifyUrl")),
    );
    let result = apps::update_settings(&state, &id, &body, &ctx.session.principal).await;
    Ok(ctx.done(&format!("{BASE}/apps/{id}"), result, ctx.t().done))
}

/// `POST /console/apps/{id}/enable`.
pub async fn enable(ctx: Ctx, state: State<AppState>, id: Path<String>) -> PageResult {
    set_enabled(ctx, state, id, true).await
}

/// `POST /console/apps/{id}/disable`.
pub async fn disable(ctx: Ctx, state: State<AppState>, id: Path<String>) -> PageResult {
    set_enabled(ctx, state, id, false).await
}

async fn set_enabled(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    enabled: bool,
) -> PageResult {
    ctx.require(Permission::AppsWrite)?;
    if !sees(&ctx, &id) {
        return Err(ctx.not_found().into());
    }
    let result = apps::set_enabled(&state, &id, enabled, &ctx.session.principal).await;
    Ok(ctx.done(&format!("{BASE}/apps/{id}"), result, ctx.t().done))
}

/// `POST /console/apps/{id}/rotate-key` `overlapSeconds?, publicKeyPem?`:
/// answers with the new key (shared-key apps) and until when the old one
/// is still accepted. A merchant may, for its own apps.
pub async fn rotate_key(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::AppsRotateKey)?;
    if !sees(&ctx, &id) {
        return Err(ctx.not_found().into());
    }
    let body = form_body(&form, &["publicKeyPem"], &["overlapSeconds"], &[]);
    match apps::rotate_key(&state, &id, &body, &ctx.session.principal).await {
        Ok(r) => {
            let note = format!(
                "{} {}",
                ctx.t().previous_key_valid_until,
                r.previous_key_valid_until
            );
            ctx.key_page(&r.app_id, r.app_key.as_deref(), Some(note))
        }
        Err(e) => Ok(ctx.done::<()>(&format!("{BASE}/apps/{id}"), Err(e), "")),
    }
}
