//! Admin: reconciliation. `GET /api/admin/reconciliations?date=&configId=&state=&limit=`
//! (runs, newest day first), `POST /api/admin/reconciliations/run`
//! `{"date", "configId"?, "refetch"?}` (one config, or every enabled one),
//! `GET /api/admin/reconciliations/findings?date=&configId=&kind=&status=&before=&limit=`,
//! one finding, `POST …/findings/{id}/resolve {"note"}` (audited) and
//! the daily statement (`…/statement`, JSON or CSV).

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cashdesk_core::{AppId, ConfigId, FindingId, FindingKind, Permission, ReconState, StoreId};
use cashdesk_store::{FindingFilter, ReconRunFilter, StatementFilter};
use chrono::NaiveDate;

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{Fields, JsonObject, ListQuery, PathParam};
use crate::recon::RunOptions;
use crate::recon::views::{self, FindingView, ReconRunView};
use crate::service::error::ServiceError;
use crate::state::AppState;

fn day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// The typed filter of `GET /api/admin/reconciliations`.
pub fn run_filter(q: &ListQuery) -> ApiResult<ReconRunFilter> {
    Ok(ReconRunFilter {
        bill_date: q.get("date", "must be YYYY-MM-DD", day)?,
        config_id: q.get("configId", "is not a channel config id", ConfigId::parse)?,
        state: q.get("state", "must be RUNNING, NOT_READY, FAILED or DONE", |s| {
            ReconState::parse(&s.to_ascii_uppercase())
        })?,
        limit: q.limit(50, 500)?,
    })
}

/// The typed filter of `GET /api/admin/reconciliations/findings`.
pub fn finding_filter(q: &ListQuery) -> ApiResult<FindingFilter> {
    Ok(FindingFilter {
        bill_date: q.get("date", "must be YYYY-MM-DD", day)?,
        config_id: q.get("configId", "is not a channel config id", ConfigId::parse)?,
        kind: q.get("kind", "is not a finding kind", |s| {
            FindingKind::parse(&s.to_ascii_uppercase())
        })?,
        status: q.get(
            "status",
            "must be OPEN, REPAIRED or RESOLVED",
            views::parse_status,
        )?,
        before: q.get("before", "is not a finding id", FindingId::parse)?,
        limit: q.limit(50, 1000)?,
    })
}

pub async fn list(
    State(state): State<AppState>,
    by: Principal,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<ReconRunView>>> {
    by.require(Permission::ReconRead)?;
    let filter = run_filter(&ListQuery::parse(q.as_deref()))?;
    Ok(Success(views::list_runs(&state, &filter).await?))
}

pub async fn run(
    State(state): State<AppState>,
    by: Principal,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<Vec<ReconRunView>>> {
    by.require(Permission::ReconRun)?;
    let f = Fields(&body);
    let date = f.str_req("date", 10)?;
    let date =
        day(date).ok_or_else(|| ServiceError::invalid_as("date", "date must be YYYY-MM-DD"))?;
    let config_id = match f.str_opt("configId", 64)? {
        Some(c) => Some(ConfigId::parse(c).ok_or_else(|| {
            ServiceError::invalid_as("configId", "configId is not a channel config id")
        })?),
        None => None,
    };
    let options = RunOptions {
        refetch: f.bool_opt("refetch")?.unwrap_or(false),
    };
    Ok(Success(
        views::run(&state, date, config_id.as_ref(), options).await?,
    ))
}

pub async fn findings(
    State(state): State<AppState>,
    by: Principal,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<FindingView>>> {
    by.require(Permission::ReconRead)?;
    let filter = finding_filter(&ListQuery::parse(q.as_deref()))?;
    Ok(Success(views::list_findings(&state, &filter).await?))
}

/// `GET /api/admin/reconciliations/statement?date=&configId=&appId=&storeId=&limit=&format=`:
/// the daily statement (JSON, or CSV with `format=csv`).
pub async fn statement(
    State(state): State<AppState>,
    by: Principal,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    by.require(Permission::StatementsRead)?;
    let q = ListQuery::parse(q.as_deref());
    let mut filter = statement_filter(&q)?;
    // A merchant's statement: its app only (bill lines that are no
    // cashdesk order have no app and are an operator's to see).
    let asked = filter.app_id.as_deref().map(AppId::parse).transpose()?;
    filter.app_id = by.narrow(asked)?.map(|a| a.as_str().to_owned());
    let csv = q
        .get("format", "must be json or csv", |s| match s {
            "json" => Some(false),
            "csv" => Some(true),
            _ => None,
        })?
        .unwrap_or(false);
    let rows = views::statement(&state, &filter).await?;
    Ok(if csv {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"cashdesk-statement.csv\"",
                ),
            ],
            views::statement_csv(&rows),
        )
            .into_response()
    } else {
        Success(rows).into_response()
    })
}

/// The typed filter of `GET /api/admin/reconciliations/statement`.
pub fn statement_filter(q: &ListQuery) -> ApiResult<StatementFilter> {
    Ok(StatementFilter {
        bill_date: q.get("date", "must be YYYY-MM-DD", day)?,
        config_id: q.get("configId", "is not a channel config id", ConfigId::parse)?,
        app_id: q.get("appId", "is not an app id", |s| {
            AppId::parse(s).ok().map(|a| a.as_str().to_owned())
        })?,
        store_id: q.get("storeId", "is not a store id", |s| {
            StoreId::parse(s).ok().map(|a| a.as_str().to_owned())
        })?,
        limit: q.limit(1000, 1000)?,
    })
}

pub async fn finding(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<FindingView>> {
    by.require(Permission::ReconRead)?;
    Ok(Success(views::get_finding(&state, &id).await?))
}

pub async fn resolve(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<FindingView>> {
    by.require(Permission::ReconResolve)?;
    let note = Fields(&body).text_req("note", 1000)?;
    Ok(Success(views::resolve(&state, &id, note, &by).await?))
}
