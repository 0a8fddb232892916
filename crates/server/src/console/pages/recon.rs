//! Reconciliation: the runs (`recon.read`), running a day (`recon.run`),
//! the findings with filters (`recon.read`) and their resolution with a
//! note (`recon.resolve`), and the daily statement with its CSV download
//! (`statements.read`; a merchant's statement is its app's only, narrowed
//! as the operator API's `statement` narrows it). Every date is a China
//! day (the channels' bills are cut at midnight UTC+8). Without a date
//! the runs and findings are every day's, newest first; the statement and
//! the run form take yesterday in China.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use cashdesk_core::{AppId, ConfigId, FindingKind, Permission, ReconState};
use cashdesk_store::{FindingFilter, ReconRunFilter, StatementFilter};
use chrono::{Duration, NaiveDate, Utc};

use super::{field, page_link};
use crate::console::BASE;
use crate::console::layout::{Ctx, PageResult, Refused, Section};
use crate::console::texts::Texts;
use crate::input::query_params;
use crate::recon::RunOptions;
use crate::recon::views::{self, FindingView, ReconRunView, StatementView};
use crate::service::error::ServiceError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/recon"), get(page))
        .route(&format!("{BASE}/recon/run"), post(run))
        .route(&format!("{BASE}/recon/statement.csv"), get(statement_csv))
        .route(
            &format!("{BASE}/recon/findings/{{id}}/resolve"),
            post(resolve),
        )
}

/// Yesterday in China.
fn yesterday() -> NaiveDate {
    (Utc::now() + Duration::hours(8)).date_naive() - Duration::days(1)
}

fn day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// The page's filters, as asked.
struct Asked {
    /// The day asked for, if any (runs and findings).
    asked: Option<NaiveDate>,
    /// The day asked for, else yesterday in China (statement, run form).
    date: String,
    config_id: String,
    app_id: String,
    kind: String,
    status: String,
}

impl Asked {
    fn parse(q: Option<&str>) -> Asked {
        let q = query_params(q);
        let v = |k: &str| q.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
        let asked = day(&v("date"));
        Asked {
            asked,
            date: asked.unwrap_or_else(yesterday).to_string(),
            config_id: v("configId"),
            app_id: v("appId"),
            kind: v("kind"),
            status: v("status"),
        }
    }

    /// The statement's filter, narrowed to what the principal sees (an
    /// app it does not see is the 404 page's).
    fn statement(&self, ctx: &Ctx) -> Result<StatementFilter, Refused> {
        let asked = match self.app_id.as_str() {
            // An account of several apps reads its first app's statement
            // until it picks another (the API asks it to name one).
            "" => ctx
                .session
                .principal
                .app_scope()
                .and_then(|apps| apps.first().cloned()),
            a => Some(AppId::parse(a).map_err(|_| Refused::from(ctx.not_found()))?),
        };
        let app = ctx.session.principal.narrow(asked).map_err(|e| {
            if matches!(e.code(), crate::error::ErrorCode::NotFound) {
                ctx.not_found()
            } else {
                ctx.fail(&ServiceError::invalid(
                    "appId",
                    "name one of the account's apps",
                ))
            }
        })?;
        Ok(StatementFilter {
            bill_date: day(&self.date),
            config_id: ConfigId::parse(&self.config_id),
            app_id: app.map(|a| a.as_str().to_owned()),
            store_id: None,
            limit: 1000,
        })
    }
}

#[derive(Template)]
#[template(path = "console/recon.html")]
struct Page<'a> {
    t: &'static Texts,
    csrf: &'a str,
    /// The filter's date (empty: every day).
    filter_date: String,
    date: String,
    config_id: String,
    app_id: String,
    /// A scoped account's apps, for the statement's app choice.
    my_apps: Vec<String>,
    kind: String,
    status: String,
    kinds: Vec<&'static str>,
    statuses: Vec<&'static str>,
    runs: Option<Vec<ReconRunView>>,
    findings: Option<Vec<FindingView>>,
    statement: Option<Vec<StatementView>>,
    csv_href: String,
    run: bool,
    resolve: bool,
}

impl Page<'_> {
    fn money(&self, fen: &i64) -> String {
        views::yuan(*fen)
    }

    fn open(&self, f: &FindingView) -> bool {
        f.status == "OPEN"
    }
}

/// `GET /console/recon?date=&configId=&kind=&status=&appId=`.
pub async fn page(ctx: Ctx, State(state): State<AppState>, RawQuery(q): RawQuery) -> PageResult {
    let read = ctx.can(Permission::ReconRead);
    let statements = ctx.can(Permission::StatementsRead);
    if !read && !statements {
        return Err(ctx.forbidden().into());
    }
    let a = Asked::parse(q.as_deref());
    let config_id = ConfigId::parse(&a.config_id);
    let (runs, findings) = if read {
        let rf = ReconRunFilter {
            bill_date: a.asked,
            config_id: config_id.clone(),
            state: None::<ReconState>,
            limit: 50,
        };
        let ff = FindingFilter {
            bill_date: a.asked,
            config_id,
            kind: FindingKind::parse(&a.kind),
            status: views::parse_status(&a.status),
            before: None,
            limit: 200,
        };
        let runs = views::list_runs(&state, &rf)
            .await
            .map_err(|e| ctx.fail(&e))?;
        let findings = views::list_findings(&state, &ff)
            .await
            .map_err(|e| ctx.fail(&e))?;
        (Some(runs), Some(findings))
    } else {
        (None, None)
    };
    let statement = if statements {
        let filter = a.statement(&ctx)?;
        Some(
            views::statement(&state, &filter)
                .await
                .map_err(|e| ctx.fail(&e))?,
        )
    } else {
        None
    };
    let csv_href = page_link(
        "recon/statement.csv",
        &[
            ("date", &a.date),
            ("configId", &a.config_id),
            ("appId", &a.app_id),
        ],
        "",
    );
    let t = ctx.t();
    let page = Page {
        t,
        csrf: ctx.csrf(),
        kinds: FindingKind::ALL.iter().map(|k| k.as_str()).collect(),
        statuses: vec!["OPEN", "REPAIRED", "RESOLVED"],
        runs,
        findings,
        statement,
        csv_href,
        run: ctx.can(Permission::ReconRun),
        resolve: ctx.can(Permission::ReconResolve),
        filter_date: a.asked.map(|d| d.to_string()).unwrap_or_default(),
        date: a.date,
        config_id: a.config_id,
        my_apps: ctx
            .session
            .principal
            .app_scope()
            .map(|a| a.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        app_id: a.app_id,
        kind: a.kind,
        status: a.status,
    };
    Ok(ctx.render(Some(Section::Recon), t.recon, &page))
}

/// `GET /console/recon/statement.csv?date=&configId=&appId=`.
pub async fn statement_csv(
    ctx: Ctx,
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> PageResult {
    ctx.require(Permission::StatementsRead)?;
    let filter = Asked::parse(q.as_deref()).statement(&ctx)?;
    let rows = views::statement(&state, &filter)
        .await
        .map_err(|e| ctx.fail(&e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cashdesk-statement.csv\"",
            ),
        ],
        views::statement_csv(&rows),
    )
        .into_response())
}

/// `POST /console/recon/run` `date, configId?`.
pub async fn run(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::ReconRun)?;
    let date_s = field(&form, "date");
    let config_s = field(&form, "configId");
    let back = page_link("recon", &[("date", &date_s), ("configId", &config_s)], "");
    let result = match (day(&date_s), config_s.as_str()) {
        (None, _) => Err(ServiceError::invalid_as("date", "date must be YYYY-MM-DD")),
        (Some(d), "") => views::run(&state, d, None, RunOptions::default()).await,
        (Some(d), c) => match ConfigId::parse(c) {
            Some(c) => views::run(&state, d, Some(&c), RunOptions::default()).await,
            None => Err(ServiceError::invalid_as(
                "configId",
                "configId is not a channel config id",
            )),
        },
    };
    Ok(ctx.done(&back, result, ctx.t().done))
}

/// `POST /console/recon/findings/{id}/resolve` `note`.
pub async fn resolve(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::ReconResolve)?;
    let note = field(&form, "note");
    let result = if note.is_empty() {
        Err(ServiceError::invalid("note", "is required"))
    } else if note.chars().count() > 1000 {
        Err(ServiceError::invalid(
            "note",
            "is longer than 1000 characters",
        ))
    } else {
        views::resolve(&state, &id, &note, &ctx.session.principal).await
    };
    let back = local_back_of(&form);
    Ok(ctx.done(&back, result, ctx.t().resolved))
}

/// Back to the page the form was on (its filters), inside the console.
fn local_back_of(form: &HashMap<String, String>) -> String {
    let back = field(form, "back");
    crate::console::layout::local_back((!back.is_empty()).then_some(back.as_str()))
}
