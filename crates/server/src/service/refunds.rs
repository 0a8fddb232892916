//! Refunds: the merchant API (`POST /api/cashier-desk/refunds`,
//! `GET …/refunds/{outRefundNo}`), refund notifications from channels, the
//! poller step for refunds without a final answer, and the operators'
//! review (approve / reject).
//!
//! # Life of a refund
//!
//! `PENDING_REVIEW? → PROCESSING → SUCCESS | FAIL`, or `PENDING_REVIEW →
//! REJECTED` (ARCHITECTURE.md §4). The store holds the rules that need a
//! transaction: [`cashdesk_store::Refunds::insert_refund`] checks the
//! refundable amount while holding the order, so concurrent requests never
//! refund more than was paid (a refund in `PENDING_REVIEW`, `PROCESSING` or
//! `SUCCESS` holds its amount; `FAIL` and `REJECTED` release it), and
//! [`cashdesk_store::Refunds::transition_refund`] moves a refund to
//! `SUCCESS` together with its order's `refundedAmount` and state
//! (`PART_REFUNDED` / `REFUNDED`). Every transition is a compare-and-set,
//! so a notification, a query and a sync racing for one refund make one
//! transition.
//!
//! cashdesk's refund id is the channel's `out_refund_no`; channels treat a
//! second request with the same `out_refund_no` as the same refund, which
//! is what makes re-sending safe.
//!
//! # What the channel's answer does
//!
//! - success → `SUCCESS`; accepted / processing → stays `PROCESSING`
//!   (the notification or the poller settles it);
//! - a definite refusal (a business error such as WeChat's `NOTENOUGH`, a
//!   config error such as a missing client certificate, a request the
//!   channel cannot take) → `FAIL` with the channel's code and message,
//!   amount released. A refusal of kind
//!   [`BusinessKind::InsufficientBalance`] is also logged as an error for
//!   the operator (the merchant account must be topped up). The merchant gets 200 with state `FAIL`, not an error: the
//!   refund exists under its `outRefundNo`, and the same body sent again
//!   must get the same answer. A new attempt uses a new `outRefundNo`;
//! - an unknown outcome (`SYSTEMERROR`, 5xx, timeout, an unverifiable
//!   answer) → stays `PROCESSING`, answered 200 with state `PROCESSING`,
//!   and the poller queries it (or the merchant asks with `?sync=true`). A
//!   channel that then says it has never heard of the refund (the adapter's
//!   [`BusinessKind::RefundNotFound`]: WeChat `REFUNDNOTEXIST` /
//!   `RESOURCE_NOT_EXISTS`, Alipay's answer without a refund status) gets
//!   the refund again.
//! - `ABNORMAL` (WeChat: the money could not reach the buyer's account and
//!   needs handling in the merchant platform) is recorded in
//!   `errorCode`/`errorMsg` and the refund stays `PROCESSING`: the channel
//!   reports the outcome once the merchant has dealt with it.
//!
//! # The poller
//!
//! [`query_due`] claims `PROCESSING` refunds that are due for a query
//! ([`cashdesk_store::Refunds::claim_refunds_to_query`]). The claim is one
//! statement that pushes each row's next query time forward, so it is
//! itself the lease: every instance runs the step, no two get the same
//! refund in one round, and a dying instance's refunds come due again. No
//! cluster lease is needed.
//!
//! Merchant notifications (`REFUND_SUCCESS`, `REFUND_FAIL`) belong to the
//! outbox; every final transition goes through [`finish`], which writes
//! the outbox row with it.
//!
//! # Paid after close
//!
//! [`auto_refund_paid_after_close`] refunds a payment that arrived for a
//! closed order, for apps that ask for it: one refund per order (its
//! `outRefundNo` is `PAC-<orderId>`), through the same path as a
//! merchant's.

use std::sync::Arc;

use cashdesk_channels::{
    BusinessKind, Channel, ChannelError, ExpectedRefund, RefundNotification, RefundOutcome,
    RefundQueryRequest, RefundRequest, RefundStatus,
};
use cashdesk_core::{AppId, Fen, OutRefundNo, OutTradeNo, RefundId, RefundState};
use cashdesk_crypto::digest;
use cashdesk_store::{
    App, ChannelConfig, InitialRefundState, NewRefund, Order, Refund, RefundFilter, RefundInsert,
};
use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::access::Principal;
use crate::input::Fields;
use crate::service::error::{ServiceError, ServiceResult};
use crate::service::orders::order_of_app;
use crate::service::payments::order_adapter;
use crate::service::stores;
use crate::settlement::{self, RefundEvent, Source, order_of_refund as order_of};
use crate::slots::{InFlight, Taken};
use crate::state::AppState;
use crate::wire::{RefundResult, RefundView};

/// WeChat's limit for `refund_desc`.
pub const REASON_MAX_CHARS: usize = 80;

/// A validated refund request.
#[derive(Debug, Clone)]
pub struct RefundInput {
    pub out_trade_no: OutTradeNo,
    pub out_refund_no: OutRefundNo,
    pub amount: Fen,
    pub reason: Option<String>,
    pub notify_url: Option<cashdesk_core::NotifyUrl>,
}

impl RefundInput {
    pub fn parse(state: &AppState, body: &Map<String, Value>) -> ServiceResult<RefundInput> {
        let f = Fields(body);
        let out_trade_no = match f.str_opt("outTradeNo", usize::MAX)? {
            Some(s) => OutTradeNo::parse(s)?,
            None => return Err(ServiceError::invalid("outTradeNo", "is required")),
        };
        let out_refund_no = match f.str_opt("outRefundNo", usize::MAX)? {
            Some(s) => OutRefundNo::parse(s)?,
            None => return Err(ServiceError::invalid("outRefundNo", "is required")),
        };
        let amount = f.fen_req("amount")?;
        let reason = f
            .str_opt("reason", REASON_MAX_CHARS)?
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        let notify_url = f
            .str_opt("notifyUrl", 512)?
            .map(|s| super::parse_notify_url(state, "notifyUrl", s))
            .transpose()?;
        Ok(RefundInput {
            out_trade_no,
            out_refund_no,
            amount,
            reason,
            notify_url,
        })
    }
}

/// 422 for a refund (or an application) of more than the order has left.
pub fn exceeds_refundable(amount: Fen, refundable: i64) -> ServiceError {
    ServiceError::StateNotAllowed {
        msg: format!(
            "amount {amount} fen is more than the {refundable} fen still refundable on this order"
        ),
        data: Some(json!({ "refundable": refundable })),
    }
}

fn conflict(out_refund_no: &OutRefundNo) -> ServiceError {
    ServiceError::Conflict(format!(
        "outRefundNo {out_refund_no} already exists with a different request body; use a new outRefundNo or resend the original body"
    ))
}

/// The refund as the merchant sees it now (its order read afresh, for
/// `refundedAmount`).
async fn answer(state: &AppState, refund: &Refund) -> ServiceResult<RefundResult> {
    let order = order_of(state, refund).await?;
    Ok(crate::wire::refund_result(refund, &order))
}

async fn reload(state: &AppState, refund_id: &RefundId) -> ServiceResult<Refund> {
    state
        .store
        .get_refund(refund_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("refund {refund_id}")))
}

/// `POST /api/cashier-desk/refunds`; `body` is the raw body the merchant
/// signed (its sha256 decides same-request vs conflict).
pub async fn create(
    state: &AppState,
    app: &App,
    body: &[u8],
    input: RefundInput,
) -> ServiceResult<RefundResult> {
    let request_hash = hex::encode(digest::sha256(body));
    if let Some(existing) = state
        .store
        .get_refund_by_out_refund_no(&app.app_id, &input.out_refund_no)
        .await?
    {
        return replay(state, &existing, &request_hash).await;
    }
    let order = order_of_app(state, app, input.out_trade_no.as_str()).await?;
    if !order.state.is_paid() {
        return Err(ServiceError::state_not_allowed(format!(
            "order is {}: only a paid order can be refunded",
            order.state
        )));
    }
    // Resolved before anything is stored: an order whose channel cannot be
    // reached leaves no refund behind.
    let Some((_, adapter)) = order_adapter(state, &order).await? else {
        return Err(ServiceError::state_not_allowed(
            "order has no channel to refund through",
        ));
    };
    let now = Utc::now();
    let new = NewRefund {
        refund_id: RefundId::generate(),
        app_id: app.app_id.clone(),
        order_id: order.order_id.clone(),
        out_refund_no: input.out_refund_no.clone(),
        amount: input.amount,
        reason: input.reason,
        notify_url: input.notify_url,
        request_hash: request_hash.clone(),
        created_at: now,
    };
    let initial = if app.refund_review {
        InitialRefundState::PendingReview
    } else {
        InitialRefundState::Processing
    };
    let refund = match state.store.insert_refund(&new, initial).await {
        Ok(RefundInsert::New(r)) => r,
        Ok(RefundInsert::Existing(r)) => return replay(state, &r, &request_hash).await,
        Ok(RefundInsert::ExceedsRefundable { refundable }) => {
            return Err(exceeds_refundable(input.amount, refundable.get()));
        }
        Ok(RefundInsert::OrderNotRefundable { state: s }) => {
            return Err(ServiceError::state_not_allowed(format!(
                "order is {s} and can no longer be refunded"
            )));
        }
        Err(cashdesk_store::StoreError::NotFound(_)) => {
            return Err(ServiceError::not_found(format!(
                "order with outTradeNo {}",
                input.out_trade_no
            )));
        }
        Err(e) => return Err(e.into()),
    };
    state.metrics.refund_requested(refund.state.as_str());
    tracing::info!(
        refund_id = %refund.refund_id,
        order_id = %refund.order_id,
        app_id = %refund.app_id,
        amount = refund.amount.get(),
        state = %refund.state,
        "refund created"
    );
    let refund = if refund.state == RefundState::Processing {
        submit(state, &refund, &order, adapter.as_ref()).await?
    } else {
        refund
    };
    answer(state, &refund).await
}

/// Same `outRefundNo`: the same body gets the refund as it stands now,
/// another body 409.
async fn replay(
    state: &AppState,
    existing: &Refund,
    request_hash: &str,
) -> ServiceResult<RefundResult> {
    if existing.request_hash != request_hash {
        return Err(conflict(&existing.out_refund_no));
    }
    answer(state, existing).await
}

/// `GET /api/cashier-desk/refunds/{outRefundNo}`; with `sync`, a
/// `PROCESSING` refund is first asked about at the channel (a channel
/// failure is a 502 and changes nothing).
pub async fn get(
    state: &AppState,
    app: &App,
    out_refund_no: &str,
    sync: bool,
) -> ServiceResult<RefundResult> {
    let no = OutRefundNo::parse(out_refund_no)?;
    let refund = refund_of_app(state, &app.app_id, &no).await?;
    let refund = if sync && refund.state == RefundState::Processing {
        sync_refund(state, &refund, Source::Query).await?
    } else {
        refund
    };
    answer(state, &refund).await
}

async fn refund_of_app(
    state: &AppState,
    app_id: &AppId,
    no: &OutRefundNo,
) -> ServiceResult<Refund> {
    state
        .store
        .get_refund_by_out_refund_no(app_id, no)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("refund with outRefundNo {no}")))
}

// --- the channel side ---

/// The refund of `order`, for the store identity the order was paid with
/// (its recorded copy; `None`: the config's own account).
fn refund_request(
    state: &AppState,
    refund: &Refund,
    order: &Order,
) -> ServiceResult<RefundRequest> {
    Ok(RefundRequest {
        order_id: order.order_id.clone(),
        refund_id: refund.refund_id.clone(),
        order_amount: order.amount,
        refund_amount: refund.amount,
        reason: refund.reason.clone(),
        store: stores::order_identity(state, order)?,
    })
}

/// Sends a `PROCESSING` refund to the channel and applies the answer (see
/// the module comment). Returns the refund as it is afterwards.
async fn submit(
    state: &AppState,
    refund: &Refund,
    order: &Order,
    adapter: &dyn Channel,
) -> ServiceResult<Refund> {
    match adapter.refund(&refund_request(state, refund, order)?).await {
        Ok(status) => apply_status(state, refund, &status, Source::Merchant).await,
        Err(e) => {
            if is_definite_refusal(&e) {
                if e.business_kind() == Some(BusinessKind::InsufficientBalance) {
                    tracing::error!(refund_id = %refund.refund_id, error = %e, "the merchant account at the channel cannot cover the refund: top it up, then refund again");
                } else {
                    tracing::warn!(refund_id = %refund.refund_id, error = %e, "the channel refused the refund");
                }
                let (code, message) = refusal_code(&e);
                let failed = RefundEvent::Failed {
                    channel_refund_id: None,
                    code,
                    message,
                };
                settlement::apply_refund(state, refund, &failed, Source::Merchant).await?;
            } else {
                // Unknown outcome: the channel may have taken it. The
                // poller asks (and re-sends if the channel never saw it).
                tracing::warn!(refund_id = %refund.refund_id, error = %e, "refund outcome unknown; it will be queried");
                let at = Utc::now() + state.config.query_schedule().first_after;
                state
                    .store
                    .schedule_refund_query(&refund.refund_id, at)
                    .await?;
            }
            reload(state, &refund.refund_id).await
        }
    }
}

/// Whether a failed refund call certainly moved no money: the channel said
/// no, or the request never left (configuration, request shape).
fn is_definite_refusal(e: &ChannelError) -> bool {
    matches!(
        e,
        ChannelError::Business { .. }
            | ChannelError::Config { .. }
            | ChannelError::InvalidRequest { .. }
    )
}

fn refusal_code(e: &ChannelError) -> (String, String) {
    match e {
        ChannelError::Business { code, message, .. } => (code.clone(), message.clone()),
        ChannelError::Config { message } => ("CHANNEL_CONFIG".to_owned(), message.clone()),
        ChannelError::InvalidRequest { message, .. } => {
            ("INVALID_REQUEST".to_owned(), message.clone())
        }
        other => (
            e.code().unwrap_or("CHANNEL_ERROR").to_owned(),
            other.to_string(),
        ),
    }
}

/// Asks the channel about a `PROCESSING` refund and applies the answer; a
/// refund the channel has never heard of is sent again. Channel failures
/// are returned as 502 and change nothing.
pub async fn sync_refund(
    state: &AppState,
    refund: &Refund,
    source: Source,
) -> ServiceResult<Refund> {
    let order = order_of(state, refund).await?;
    let adapter = adapter_of(state, &order).await?;
    let query = RefundQueryRequest {
        order_id: order.order_id.clone(),
        refund_id: refund.refund_id.clone(),
        store: stores::order_identity(state, &order)?,
    };
    match adapter.query_refund(&query).await {
        Ok(status) => apply_status(state, refund, &status, source).await,
        // The refund request never reached the channel: send it again.
        Err(e) if e.business_kind() == Some(BusinessKind::RefundNotFound) => {
            tracing::info!(refund_id = %refund.refund_id, source = source.as_str(), "the channel has no such refund; sending it again");
            submit(state, refund, &order, adapter.as_ref()).await
        }
        Err(e) => Err(ServiceError::Channel(e)),
    }
}

async fn adapter_of(state: &AppState, order: &Order) -> ServiceResult<Arc<dyn Channel>> {
    order_adapter(state, order)
        .await?
        .map(|(_, a)| a)
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!(
                "order {} has refunds but no channel",
                order.order_id
            ))
        })
}

/// Applies what the channel says about a refund (answer or query).
async fn apply_status(
    state: &AppState,
    refund: &Refund,
    status: &RefundStatus,
    source: Source,
) -> ServiceResult<Refund> {
    if let Some(amount) = status.refund_amount
        && amount != refund.amount
    {
        tracing::error!(
            refund_id = %refund.refund_id,
            reported = amount.get(),
            expected = refund.amount.get(),
            source = source.as_str(),
            "the channel reports another amount for this refund; nothing applied"
        );
        return reload(state, &refund.refund_id).await;
    }
    let now = Utc::now();
    let event = match status.outcome {
        RefundOutcome::Success => RefundEvent::Succeeded {
            channel_refund_id: status.channel_refund_id.clone(),
            success_time: status.success_time.unwrap_or(now),
        },
        RefundOutcome::Closed => RefundEvent::Failed {
            channel_refund_id: status.channel_refund_id.clone(),
            code: "REFUND_CLOSED".to_owned(),
            message: "the channel closed the refund; no money was moved".to_owned(),
        },
        RefundOutcome::Abnormal => {
            tracing::error!(refund_id = %refund.refund_id, source = source.as_str(), "the channel reports the refund ABNORMAL: handle it in the channel's merchant platform");
            RefundEvent::Progress {
                channel_refund_id: status.channel_refund_id.clone(),
                problem: Some((
                    "ABNORMAL".to_owned(),
                    "the refund could not reach the buyer's account; handle it in the channel's merchant platform"
                        .to_owned(),
                )),
            }
        }
        RefundOutcome::Processing => RefundEvent::Progress {
            channel_refund_id: status.channel_refund_id.clone(),
            problem: None,
        },
    };
    settlement::apply_refund(state, refund, &event, source).await?;
    reload(state, &refund.refund_id).await
}

// --- paid after close ---

/// The `outRefundNo` of an order's automatic refund: deterministic, so
/// however often it is asked for, one refund exists.
pub fn auto_refund_no(order: &Order) -> ServiceResult<OutRefundNo> {
    Ok(OutRefundNo::parse(&format!("PAC-{}", order.order_id))?)
}

/// For an app with `autoRefundPaidAfterClose`: stores the full refund of a
/// `paidAfterClose` order (idempotent by [`auto_refund_no`], skipping
/// review: the app asked for it in advance) and sends it to the channel in
/// the background. It goes the normal way from there (answer, channel
/// notification, poller), and the merchant is told `REFUND_SUCCESS` or
/// `REFUND_FAIL`. The insert is awaited so that a failure reaches the
/// caller (a channel notification is then refused, and its retry comes
/// back here); if the background send is lost, the poller finds the
/// refund `PROCESSING`, asks the channel, which has never seen it, and
/// sends it.
pub async fn auto_refund_paid_after_close(
    state: &AppState,
    order: &Order,
) -> ServiceResult<Option<Refund>> {
    if !order.paid_after_close {
        return Ok(None);
    }
    let app = state.store.get_app(&order.app_id).await?.ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!("order {} has no app", order.order_id))
    })?;
    if !app.auto_refund_paid_after_close {
        return Ok(None);
    }
    let out_refund_no = auto_refund_no(order)?;
    let new = NewRefund {
        refund_id: RefundId::generate(),
        app_id: order.app_id.clone(),
        order_id: order.order_id.clone(),
        out_refund_no: out_refund_no.clone(),
        amount: order.amount,
        reason: Some(AUTO_REFUND_REASON.to_owned()),
        notify_url: None,
        request_hash: hex::encode(digest::sha256(
            format!("auto-refund-paid-after-close:{}", order.order_id).as_bytes(),
        )),
        created_at: Utc::now(),
    };
    let refund = match state
        .store
        .insert_refund(&new, InitialRefundState::Processing)
        .await?
    {
        RefundInsert::New(r) => r,
        RefundInsert::Existing(r) => return Ok(Some(r)),
        RefundInsert::ExceedsRefundable { refundable } => {
            tracing::error!(order_id = %order.order_id, refundable = refundable.get(), "paid after close, but the order is already (partly) refunded: no automatic refund; check it by hand");
            return Ok(None);
        }
        RefundInsert::OrderNotRefundable { state: s } => {
            tracing::error!(order_id = %order.order_id, state = %s, "paid after close, but the order cannot be refunded: check it by hand");
            return Ok(None);
        }
    };
    state.metrics.refund_requested(refund.state.as_str());
    tracing::warn!(refund_id = %refund.refund_id, order_id = %order.order_id, out_refund_no = %out_refund_no, "paid after close: refunding automatically");
    let (state2, refund2, order2) = (state.clone(), refund.clone(), order.clone());
    tokio::spawn(async move {
        let sent = match adapter_of(&state2, &order2).await {
            Ok(adapter) => submit(&state2, &refund2, &order2, adapter.as_ref())
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::warn!(refund_id = %refund2.refund_id, error = ?e, "sending the automatic refund failed; the poller will");
        }
    });
    Ok(Some(refund))
}

/// The reason of an automatic refund (shown to the buyer; ≤ 80 characters).
pub const AUTO_REFUND_REASON: &str = "paid after the order was closed";

// --- channel notifications ---

/// A verified refund notification for `config`: `(acknowledge?, result
/// label)`. Refused (the channel retries): a refund cashdesk does not know,
/// of an order paid through another config, or with another order or
/// amount. Copies after the first change nothing and are acknowledged.
#[tracing::instrument(name = "refund_notification", level = "info", skip_all, fields(config_id = %config.config_id, out_refund_no = %n.out_refund_no))]
pub async fn handle_notification(
    state: &AppState,
    config: &ChannelConfig,
    adapter: &dyn Channel,
    n: &RefundNotification,
) -> ServiceResult<(bool, &'static str)> {
    let Some(refund_id) = n.refund_id() else {
        tracing::warn!(config_id = %config.config_id, out_refund_no = %n.out_refund_no, "refund notification names no cashdesk refund");
        return Ok((false, "unknown_refund"));
    };
    let Some(refund) = state.store.get_refund(&refund_id).await? else {
        tracing::warn!(config_id = %config.config_id, refund_id = %refund_id, "refund notification for an unknown refund");
        return Ok((false, "unknown_refund"));
    };
    let order = order_of(state, &refund).await?;
    if order
        .channel
        .as_ref()
        .is_none_or(|c| c.config_id != config.config_id)
    {
        tracing::error!(config_id = %config.config_id, refund_id = %refund_id, "refund notification from a config the order was not paid with");
        return Ok((false, "mismatch"));
    }
    if let Err(e) = n.check_against(&ExpectedRefund {
        order_id: order.order_id.clone(),
        refund_id: refund.refund_id.clone(),
        refund_amount: refund.amount,
    }) {
        tracing::warn!(refund_id = %refund_id, reason = %e.message, "refund notification does not match its refund");
        return Ok((false, "mismatch"));
    }
    // For the merchant the order was paid to (its store's identity, or the
    // config's own account).
    if let Err(e) =
        adapter.check_merchant(&n.merchant, stores::order_identity(state, &order)?.as_ref())
    {
        tracing::warn!(refund_id = %refund_id, reason = %e.message, "refund notification is not for the order's merchant");
        return Ok((false, "mismatch"));
    }
    let status = RefundStatus {
        outcome: n.outcome,
        channel_refund_id: n.channel_refund_id.clone(),
        refund_amount: Some(n.refund_amount),
        success_time: n.success_time,
    };
    let before = refund.state;
    let after = apply_status(state, &refund, &status, Source::Notification).await?;
    let label = match (n.outcome, before, after.state) {
        (RefundOutcome::Success, RefundState::Processing, RefundState::Success)
        | (RefundOutcome::Closed, RefundState::Processing, RefundState::Fail) => "refund_applied",
        (RefundOutcome::Success, _, RefundState::Success)
        | (RefundOutcome::Closed, _, RefundState::Fail) => "duplicate",
        (RefundOutcome::Processing | RefundOutcome::Abnormal, _, _) => "refund_processing",
        (outcome, _, now) => {
            // A final answer that contradicts a final state (e.g. SUCCESS
            // for a refund cashdesk recorded as FAIL): retrying cannot
            // change it, so it is acknowledged and raised for a human.
            tracing::error!(refund_id = %refund_id, ?outcome, state = %now, "refund notification contradicts the recorded state: check this refund by hand");
            "refund_conflict"
        }
    };
    Ok((true, label))
}

// --- the poller ---

/// The refund poller's step: claims as many `PROCESSING` refunds due for a
/// query as `slots` holds and asks each one's channel in a slot of its own
/// (see [`crate::service::poller::query_due_orders`], which it mirrors).
/// Returns whether every slot was used.
#[tracing::instrument(name = "poll_refunds", level = "debug", skip_all)]
pub async fn query_due(
    state: &AppState,
    slots: Taken,
    in_flight: &InFlight<RefundId>,
) -> ServiceResult<bool> {
    let schedule = state.config.query_schedule();
    let limit = u32::try_from(slots.count()).unwrap_or(1);
    let due = state
        .store
        .claim_refunds_to_query(Utc::now(), limit, &schedule)
        .await?;
    Ok(slots.start_each(due, |refund| {
        let mark = in_flight.start(&refund.refund_id)?;
        let state = state.clone();
        Some(async move {
            let _mark = mark;
            match sync_refund(&state, &refund, Source::Poller).await {
                Ok(r) => {
                    tracing::debug!(refund_id = %r.refund_id, state = %r.state, attempts = refund.query_attempts, "refund queried")
                }
                Err(e) => {
                    tracing::warn!(refund_id = %refund.refund_id, error = ?e, "refund query failed; will try again")
                }
            }
        })
    }))
}

// --- operators ---

pub async fn admin_list(state: &AppState, filter: &RefundFilter) -> ServiceResult<Vec<RefundView>> {
    let refunds = state.store.list_refunds(filter).await?;
    let mut out = Vec::with_capacity(refunds.len());
    for r in &refunds {
        out.push(RefundView::new(r, &order_of(state, r).await?));
    }
    Ok(out)
}

async fn refund_by_id(state: &AppState, refund_id: &str) -> ServiceResult<Refund> {
    let id = RefundId::parse(refund_id)
        .ok_or_else(|| ServiceError::not_found(format!("refund {refund_id}")))?;
    reload(state, &id).await
}

pub async fn admin_get(state: &AppState, refund_id: &str) -> ServiceResult<RefundView> {
    let refund = refund_by_id(state, refund_id).await?;
    let mut view = RefundView::new(&refund, &order_of(state, &refund).await?);
    view.channel_fee = state
        .store
        .get_fee(refund.refund_id.as_str())
        .await?
        .as_ref()
        .map(crate::wire::ChannelFeeView::from);
    Ok(view)
}

/// An operator's review: `PENDING_REVIEW → PROCESSING` and to the channel
/// (approve), or `PENDING_REVIEW → REJECTED`, releasing the amount
/// (reject). Compare-and-set: of two operators deciding at once, one
/// wins; the other (and any refund not pending) gets 422. The decision is
/// audited (as `actor`) in the transaction that makes it, so the log
/// holds exactly the decisions that took effect.
pub async fn decide(
    state: &AppState,
    refund_id: &str,
    approve: bool,
    by: &Principal,
) -> ServiceResult<RefundView> {
    let refund = refund_by_id(state, refund_id).await?;
    let order = order_of(state, &refund).await?;
    let decided = if approve {
        // Resolved first: an unusable channel leaves the refund pending.
        let adapter = adapter_of(state, &order).await?;
        let event = RefundEvent::Approved { by: by.clone() };
        match settlement::apply_refund(state, &refund, &event, Source::Operator).await? {
            Some(r) => Some(submit(state, &r, &order, adapter.as_ref()).await?),
            None => None,
        }
    } else {
        let event = RefundEvent::Rejected { by: by.clone() };
        settlement::apply_refund(state, &refund, &event, Source::Operator).await?
    };
    let Some(r) = decided else {
        let current = reload(state, &refund.refund_id).await?;
        return Err(ServiceError::state_not_allowed(format!(
            "refund {} is {}, only a PENDING_REVIEW refund can be decided",
            current.refund_id, current.state
        )));
    };
    let order = order_of(state, &r).await?;
    Ok(RefundView::new(&r, &order))
}
