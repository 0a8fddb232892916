//! Admin: reconciliation. `GET /api/admin/reconciliations?date=&configId=&state=&limit=`
//! (runs, newest day first), `POST /api/admin/reconciliations/run`
//! `{"date", "configId"?, "refetch"?}` (one config, or every enabled one),
//! `GET /api/admin/reconciliations/findings?date=&configId=&kind=&status=&before=&limit=`,
//! one finding, and `POST …/findings/{id}/resolve {"note"}` (audited).

use axum::extract::{RawQuery, State};
use cashdesk_core::{ConfigId, FindingId, FindingKind, ReconState};
use cashdesk_store::{FindingFilter, ReconRunFilter};
use chrono::NaiveDate;

use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{Fields, JsonObject, ListQuery, PathParam};
use crate::recon::RunOptions;
use crate::recon::views::{self, FindingView, ReconRunView};
use crate::service::ADMIN_ACTOR;
use crate::service::error::ServiceError;
use crate::state::AppState;

fn day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

pub async fn list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<ReconRunView>>> {
    let q = ListQuery::parse(q.as_deref());
    let filter = ReconRunFilter {
        bill_date: q.get("date", "must be YYYY-MM-DD", day)?,
        config_id: q.get("configId", "is not a channel config id", ConfigId::parse)?,
        state: q.get("state", "must be RUNNING, NOT_READY, FAILED or DONE", |s| {
            ReconState::parse(&s.to_ascii_uppercase())
        })?,
        limit: q.limit(50, 500)?,
    };
    Ok(Success(views::list_runs(&state, &filter).await?))
}

pub async fn run(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<Vec<ReconRunView>>> {
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
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<FindingView>>> {
    let q = ListQuery::parse(q.as_deref());
    let filter = FindingFilter {
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
    };
    Ok(Success(views::list_findings(&state, &filter).await?))
}

pub async fn finding(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<Success<FindingView>> {
    Ok(Success(views::get_finding(&state, &id).await?))
}

pub async fn resolve(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<FindingView>> {
    let note = Fields(&body).text_req("note", 1000)?;
    Ok(Success(
        views::resolve(&state, &id, note, ADMIN_ACTOR).await?,
    ))
}
