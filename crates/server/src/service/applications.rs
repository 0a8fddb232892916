//! Refund applications (issue 17 §2): the buyer asks, through the
//! merchant's backend (`POST /api/cashier-desk/refund-applications`), and
//! the app's policy says who decides — nobody (`none`: approved when made),
//! the merchant (`…/{outRefundNo}/approve|reject`, signed), or the
//! gateway's operators — and what the timeout decides after the policy's
//! days. A decision is a compare-and-set with its audit entry in one
//! transaction, so approve and reject racing make one decision.
//!
//! An approval runs the normal refund (`service::refunds::create`) under
//! the application's `outRefundNo`, with a request built from the
//! application alone, so running it again (after a crash, by the worker)
//! is the same refund. The merchant made the calls and gets no
//! notification for the application; the refund's outcome is notified as
//! any refund's (`REFUND_SUCCESS` / `REFUND_FAIL`).

use std::collections::HashMap;

use cashdesk_core::{
    AppId, ApplicationId, Fen, OutRefundNo, OutTradeNo, RefundApplicationMode,
    RefundApplicationState, TimeoutDecision,
};
use cashdesk_crypto::digest;
use cashdesk_store::{App, ApplicationDecision, Inserted, RefundApplication};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::refunds::{self, REASON_MAX_CHARS, RefundInput};
use crate::access::Principal;
use crate::input::Fields;
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::wire::{self, RefundResult};

/// The longest buyer remark kept.
pub const REMARK_MAX_CHARS: usize = 200;

/// A validated application.
#[derive(Debug, Clone)]
pub struct ApplicationInput {
    pub out_trade_no: OutTradeNo,
    pub out_refund_no: OutRefundNo,
    pub amount: Fen,
    pub reason: String,
    pub buyer_remark: Option<String>,
}

impl ApplicationInput {
    pub fn parse(body: &Map<String, Value>) -> ServiceResult<ApplicationInput> {
        let f = Fields(body);
        let amount = f.fen_req("amount")?;
        Ok(ApplicationInput {
            out_trade_no: OutTradeNo::parse(f.str_req("outTradeNo", usize::MAX)?)?,
            out_refund_no: OutRefundNo::parse(f.str_req("outRefundNo", usize::MAX)?)?,
            amount,
            reason: f.str_req("reason", REASON_MAX_CHARS)?.trim().to_owned(),
            buyer_remark: f
                .str_opt("buyerRemark", REMARK_MAX_CHARS)?
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
        })
    }
}

/// An application as the merchant and the operators see it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationView {
    pub application_id: String,
    pub app_id: String,
    pub out_refund_no: String,
    pub out_trade_no: String,
    pub order_id: String,
    pub amount: i64,
    pub reason: String,
    pub buyer_remark: Option<String>,
    /// `APPLIED`, `APPROVED` or `REJECTED`.
    pub state: RefundApplicationState,
    /// When the app's timeout decides, if nobody has.
    pub decide_by: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub remark: Option<String>,
    pub auto_decided: bool,
    /// The refund an approval made (its state as now).
    pub refund: Option<RefundResult>,
    /// Why an approval's refund could not be made.
    pub refund_error: Option<String>,
    pub created_at: String,
}

async fn view(
    state: &AppState,
    app: &App,
    a: &RefundApplication,
) -> ServiceResult<ApplicationView> {
    let order = state
        .store
        .get_order(&a.order_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("order {}", a.order_id)))?;
    let refund = match &a.refund_id {
        Some(_) => Some(refunds::get(state, app, a.out_refund_no.as_str(), false).await?),
        None => None,
    };
    Ok(ApplicationView {
        application_id: a.application_id.to_string(),
        app_id: a.app_id.to_string(),
        out_refund_no: a.out_refund_no.to_string(),
        out_trade_no: order.out_trade_no.to_string(),
        order_id: a.order_id.to_string(),
        amount: a.amount.get(),
        reason: a.reason.clone(),
        buyer_remark: a.buyer_remark.clone(),
        state: a.state,
        decide_by: wire::time(a.decide_by),
        decided_at: a.decided_at.map(wire::time),
        decided_by: a.decided_by.clone(),
        remark: a.remark.clone(),
        auto_decided: a.auto_decided,
        refund,
        refund_error: a.refund_error.clone(),
        created_at: wire::time(a.created_at),
    })
}

/// `POST /api/cashier-desk/refund-applications`; `body` is the raw body
/// the merchant signed (the same `outRefundNo` with the same body answers
/// the application as it is, another body 409).
pub async fn apply(
    state: &AppState,
    app: &App,
    body: &[u8],
    input: ApplicationInput,
) -> ServiceResult<ApplicationView> {
    let request_hash = hex::encode(digest::sha256(body));
    let conflict = || {
        ServiceError::Conflict(format!(
            "outRefundNo {} is already used by another refund or application; use a new one",
            input.out_refund_no
        ))
    };
    if let Some(existing) = state
        .store
        .find_application(&app.app_id, &input.out_refund_no)
        .await?
    {
        if existing.request_hash != request_hash {
            return Err(conflict());
        }
        return view(state, app, &existing).await;
    }
    if state
        .store
        .get_refund_by_out_refund_no(&app.app_id, &input.out_refund_no)
        .await?
        .is_some()
    {
        return Err(conflict());
    }
    let order = state
        .store
        .get_order_by_out_trade_no(&app.app_id, &input.out_trade_no)
        .await?
        .ok_or_else(|| {
            ServiceError::not_found(format!("order with outTradeNo {}", input.out_trade_no))
        })?;
    if !order.state.is_paid() {
        return Err(ServiceError::state_not_allowed(format!(
            "order is {}: only a paid order can be refunded",
            order.state
        )));
    }
    let refundable = order.amount.get() - order.refunded_amount.get();
    if input.amount.get() > refundable {
        return Err(refunds::exceeds_refundable(input.amount, refundable));
    }
    let now = Utc::now();
    let policy = app.refund_applications;
    let new = RefundApplication {
        application_id: ApplicationId::generate(),
        app_id: app.app_id.clone(),
        order_id: order.order_id.clone(),
        out_refund_no: input.out_refund_no.clone(),
        amount: input.amount,
        reason: input.reason,
        buyer_remark: input.buyer_remark,
        request_hash: request_hash.clone(),
        state: RefundApplicationState::Applied,
        decide_by: now + Duration::days(i64::from(policy.days)),
        decided_at: None,
        decided_by: None,
        remark: None,
        auto_decided: false,
        refund_id: None,
        refund_error: None,
        created_at: now,
        updated_at: now,
    };
    let stored = match state.store.insert_application(&new).await? {
        Inserted::New(a) => a,
        Inserted::Existing(a) if a.request_hash == request_hash => {
            return view(state, app, &a).await;
        }
        Inserted::Existing(_) => return Err(conflict()),
    };
    super::audit(
        state,
        &Principal::app(&app.app_id, None),
        "refund_application.apply",
        stored.application_id.as_str(),
        json!({ "outRefundNo": stored.out_refund_no, "orderId": stored.order_id, "amount": stored.amount.get() }),
    )
    .await;
    tracing::info!(application_id = %stored.application_id, app_id = %app.app_id, amount = stored.amount.get(), "refund application");
    if policy.mode == RefundApplicationMode::None {
        let by = Principal::system("refund-applications", None);
        return decide(
            state,
            app,
            stored,
            true,
            Some("approved when made (mode none)".into()),
            &by,
            true,
        )
        .await;
    }
    view(state, app, &stored).await
}

/// `GET /api/cashier-desk/refund-applications/{outRefundNo}`.
pub async fn get(
    state: &AppState,
    app: &App,
    out_refund_no: &str,
) -> ServiceResult<ApplicationView> {
    let a = of_app(state, app, out_refund_no).await?;
    view(state, app, &a).await
}

async fn of_app(
    state: &AppState,
    app: &App,
    out_refund_no: &str,
) -> ServiceResult<RefundApplication> {
    let no = OutRefundNo::parse(out_refund_no)?;
    state
        .store
        .find_application(&app.app_id, &no)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("refund application with outRefundNo {no}")))
}

/// The merchant's decision (`…/approve|reject {remark?}`, signed): only
/// for an app whose applications the merchant decides.
pub async fn merchant_decides(
    state: &AppState,
    app: &App,
    out_refund_no: &str,
    approve: bool,
    body: &Map<String, Value>,
) -> ServiceResult<ApplicationView> {
    let remark = remark_of(body)?;
    let a = of_app(state, app, out_refund_no).await?;
    if app.refund_applications.mode != RefundApplicationMode::Merchant {
        return Err(ServiceError::state_not_allowed(format!(
            "this app's refund applications are decided by {} (refundApplications.mode), not by the merchant",
            match app.refund_applications.mode {
                RefundApplicationMode::Operator => "the gateway's operators",
                _ => "nobody: they are approved when made",
            }
        )));
    }
    decide(
        state,
        app,
        a,
        approve,
        remark,
        &Principal::app(&app.app_id, None),
        false,
    )
    .await
}

/// `remark` of a decision (at most 200 characters).
pub fn remark_of(body: &Map<String, Value>) -> ServiceResult<Option<String>> {
    Ok(Fields(body)
        .str_opt("remark", REMARK_MAX_CHARS)?
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned))
}

/// `APPLIED → APPROVED | REJECTED` (compare-and-set, audited in the same
/// transaction); an approval then makes the refund. A decided application
/// is 422 naming its state.
pub async fn decide(
    state: &AppState,
    app: &App,
    a: RefundApplication,
    approve: bool,
    remark: Option<String>,
    by: &Principal,
    auto: bool,
) -> ServiceResult<ApplicationView> {
    let to = if approve {
        RefundApplicationState::Approved
    } else {
        RefundApplicationState::Rejected
    };
    let action = if approve {
        "refund_application.approve"
    } else {
        "refund_application.reject"
    };
    let audit = by
        .audit(
            action,
            a.application_id.as_str(),
            json!({ "outRefundNo": a.out_refund_no, "remark": remark, "auto": auto }),
        )
        .with_change(json!({ "state": a.state }), json!({ "state": to }));
    let decision = ApplicationDecision {
        to,
        by: by.actor.clone(),
        remark,
        auto,
        at: Utc::now(),
    };
    let Some(decided) = state
        .store
        .decide_application(&a.application_id, &decision, &audit)
        .await?
    else {
        let now = state
            .store
            .get_application(&a.application_id)
            .await?
            .map_or("gone".to_owned(), |c| c.state.to_string());
        return Err(ServiceError::state_not_allowed(format!(
            "refund application {} is {now}, only an APPLIED one can be decided",
            a.out_refund_no
        )));
    };
    let decided = if approve {
        make_refund(state, app, decided).await?
    } else {
        decided
    };
    view(state, app, &decided).await
}

/// The refund of an approved application, under its `outRefundNo`, with
/// a request built from the application alone (so a second run is the
/// same refund). A refusal (the order is no longer refundable, the
/// amount exceeds what is left, the number is taken) is recorded on the
/// application; a passing failure (database, …) is left for the worker.
async fn make_refund(
    state: &AppState,
    app: &App,
    a: RefundApplication,
) -> ServiceResult<RefundApplication> {
    let order = state
        .store
        .get_order(&a.order_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("order {}", a.order_id)))?;
    let body = serde_json::to_vec(&json!({
        "outTradeNo": order.out_trade_no.as_str(),
        "outRefundNo": a.out_refund_no.as_str(),
        "amount": a.amount.get(),
        "reason": a.reason,
        "applicationId": a.application_id.as_str(),
    }))
    .map_err(|e| ServiceError::internal(anyhow::Error::from(e)))?;
    let input = RefundInput {
        out_trade_no: order.out_trade_no.clone(),
        out_refund_no: a.out_refund_no.clone(),
        amount: a.amount,
        reason: Some(a.reason.clone()),
        // Told where the order's own notifications go (else the app's URL).
        notify_url: order.notify_url.clone(),
    };
    let now = Utc::now();
    match refunds::create(state, app, &body, input).await {
        Ok(r) => {
            let id = cashdesk_core::RefundId::parse(&r.refund_id).ok_or_else(|| {
                ServiceError::internal(anyhow::anyhow!("refund id {}", r.refund_id))
            })?;
            state
                .store
                .set_application_refund(&a.application_id, Ok(&id), now)
                .await?;
        }
        Err(
            e @ (ServiceError::StateNotAllowed { .. }
            | ServiceError::Conflict(_)
            | ServiceError::NotFound { .. }
            | ServiceError::Invalid { .. }),
        ) => {
            tracing::warn!(application_id = %a.application_id, error = %e, "approved refund application could not be refunded");
            state
                .store
                .set_application_refund(&a.application_id, Err(&e.to_string()), now)
                .await?;
        }
        Err(e) => return Err(e),
    }
    state
        .store
        .get_application(&a.application_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("refund application {}", a.application_id)))
}

/// The worker's step: applications past their app's days are decided as
/// the app's policy says (audited as `refund-applications`, `auto`), and
/// approved ones whose refund was interrupted get it. Returns how many
/// were handled.
pub async fn run_due(state: &AppState, now: DateTime<Utc>) -> ServiceResult<usize> {
    let due = state.store.due_applications(now, 100).await?;
    let by = Principal::system("refund-applications", None);
    let mut n = 0;
    for a in due {
        let Some(app) = state.store.get_app(&a.app_id).await? else {
            continue;
        };
        let result = match a.state {
            RefundApplicationState::Applied => {
                let approve = app.refund_applications.on_timeout == TimeoutDecision::Approve;
                let remark = format!(
                    "undecided for {} days: {} by the app's policy",
                    app.refund_applications.days,
                    if approve { "approved" } else { "rejected" }
                );
                decide(state, &app, a, approve, Some(remark), &by, true)
                    .await
                    .map(|_| ())
            }
            _ => make_refund(state, &app, a).await.map(|_| ()),
        };
        match result {
            Ok(()) => n += 1,
            // Decided meanwhile by someone else: nothing to do.
            Err(ServiceError::StateNotAllowed { .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, "refund application step failed; retried on the next tick")
            }
        }
    }
    Ok(n)
}

// --- operators and the console ---

/// The application `id`, if the principal sees its app, with its app.
pub async fn load(
    state: &AppState,
    id: &str,
    by: &Principal,
) -> ServiceResult<(App, RefundApplication)> {
    let missing = || ServiceError::not_found(format!("refund application {id}"));
    let id = ApplicationId::parse(id).ok_or_else(missing)?;
    let a = state
        .store
        .get_application(&id)
        .await?
        .filter(|a| by.sees_app(&a.app_id))
        .ok_or_else(missing)?;
    let app = state.store.get_app(&a.app_id).await?.ok_or_else(missing)?;
    Ok((app, a))
}

/// The permission a person needs to decide an application of `app`: an
/// operator's review where the operators decide, the right to refund
/// where the merchant does (its staff, in the console or with a token).
pub fn permission_to_decide(app: &App) -> cashdesk_core::Permission {
    match app.refund_applications.mode {
        RefundApplicationMode::Operator => cashdesk_core::Permission::RefundsReview,
        _ => cashdesk_core::Permission::RefundsCreate,
    }
}

/// Lists applications (newest first), each with its refund.
pub async fn list(
    state: &AppState,
    filter: &cashdesk_store::ApplicationFilter,
) -> ServiceResult<Vec<ApplicationView>> {
    // A page is mostly one app's: each app is read once.
    let mut apps: HashMap<AppId, App> = HashMap::new();
    let mut out = Vec::new();
    for a in state.store.list_applications(filter).await? {
        if !apps.contains_key(&a.app_id) {
            let Some(app) = state.store.get_app(&a.app_id).await? else {
                continue;
            };
            apps.insert(a.app_id.clone(), app);
        }
        out.push(view(state, &apps[&a.app_id], &a).await?);
    }
    Ok(out)
}

/// One application as the operators see it.
pub async fn view_of(
    state: &AppState,
    app: &App,
    a: &RefundApplication,
) -> ServiceResult<ApplicationView> {
    view(state, app, a).await
}
