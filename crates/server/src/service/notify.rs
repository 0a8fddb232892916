//! Channel notifications (`GET|POST /api/cashier-desk/notify/{configId}`):
//! verify, match to the order, apply once, answer in the channel's format.
//!
//! Order of checks, and why:
//! 1. the config exists (unknown → 404, nothing parsed);
//! 2. the adapter verifies everything that belongs to the config without a
//!    network call (signature, timestamp window, appid/mch_id, decryption);
//!    a key problem (v3 platform key rotated, APIv3 key wrong) cannot tell
//!    which order it is about, so this config's `PAYING` orders are queried
//!    at the channel in the background (at most once per
//!    [`RECONCILE_INTERVAL`] per config, so forged notifications cannot
//!    turn cashdesk into a query amplifier) and the channel gets its failure
//!    reply, so it retries;
//! 3. the order the notification names exists, belongs to this config
//!    (or has no channel yet), and the amount is the order's
//!    ([`cashdesk_channels::PaymentNotification::check_against`]); the
//!    merchant it names is the one the order is paid to — the order's
//!    store identity or the config's own account
//!    ([`cashdesk_channels::Channel::check_merchant`]: two stores may share
//!    a config and its notify URL) — and an echoed attach field is its
//!    store's tag ([`super::stores::check_attach`]);
//! 4. [`super::payments::apply_paid`]: one compare-and-set, however many
//!    copies arrive.
//!
//! Anything refused changes nothing and gets the channel's failure reply.
//! A verified notification that names one of our orders lands in the
//! order's timeline with its result ([`timeline::record_notification`]).
//! Every outcome is counted in `cashdesk_channel_notifications_total`
//! by channel type and result.

use std::time::{Duration, Instant};

use cashdesk_channels::{
    Channel, ExpectedOrder, IncomingNotification, NotificationReply, NotifyErrorKind,
    PaymentResult, VerifiedNotification,
};
use cashdesk_core::{ConfigId, OrderState};
use cashdesk_store::{ChannelConfig, OrderFilter};

use crate::channel_cache;
use crate::service::error::ServiceResult;
use crate::service::payments::{self, PaidOutcome};
use crate::service::{stores, timeline};
use crate::settlement::{self, OrderEvent, Source};
use crate::state::AppState;

/// The least time between two key-problem reconciliations of one config.
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(10);

/// The answer to the channel: its own reply, or a bare 404 for a config
/// that does not exist.
pub enum NotifyAnswer {
    Reply(NotificationReply),
    UnknownConfig,
}

/// Handles one notification sent to `config_id`'s notify URL.
#[tracing::instrument(name = "channel_notification", level = "info", skip_all, fields(config_id = %config_id))]
pub async fn handle(state: &AppState, config_id: &str, n: IncomingNotification) -> NotifyAnswer {
    let Some(config_id) = ConfigId::parse(config_id) else {
        state
            .metrics
            .channel_notification("unknown", "unknown_config");
        return NotifyAnswer::UnknownConfig;
    };
    let config = match state.store.get_channel_config(&config_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            state
                .metrics
                .channel_notification("unknown", "unknown_config");
            return NotifyAnswer::UnknownConfig;
        }
        Err(e) => {
            tracing::error!(config_id = %config_id, error = %e, "loading the config of a notification failed");
            return NotifyAnswer::UnknownConfig;
        }
    };
    let adapter = match channel_cache::adapter(state, &config) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(config_id = %config_id, error = %e, "notification for an unusable config");
            state
                .metrics
                .channel_notification(config.channel_type.as_str(), "config_error");
            return NotifyAnswer::UnknownConfig;
        }
    };
    let (ok, result) = match process(state, &config, adapter.as_ref(), &n).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(config_id = %config_id, error = %e, "processing a verified notification failed");
            (false, "error")
        }
    };
    state
        .metrics
        .channel_notification(config.channel_type.as_str(), result);
    NotifyAnswer::Reply(adapter.notification_reply(ok))
}

/// `(acknowledge?, result label)`.
async fn process(
    state: &AppState,
    config: &ChannelConfig,
    adapter: &dyn Channel,
    n: &IncomingNotification,
) -> ServiceResult<(bool, &'static str)> {
    let verified = match adapter.parse_notification(n) {
        Ok(v) => v,
        Err(e) => {
            // Anyone can post to a notify URL: sampled per config.
            crate::sampled_warn!(state, "notification_refused", config.config_id.as_str(), config_id = %config.config_id, error_kind = ?e.kind, reason = %e.message, "notification refused");
            return Ok((
                false,
                match e.kind {
                    NotifyErrorKind::Malformed => "malformed",
                    NotifyErrorKind::Unverifiable => "unverifiable",
                    NotifyErrorKind::Mismatch => "mismatch",
                    NotifyErrorKind::KeyProblem => {
                        spawn_reconcile(state, &config.config_id);
                        "key_problem"
                    }
                },
            ));
        }
    };
    // Recorded in the order's timeline with what came of it, whichever
    // way it ends below, at the time it arrived (before the changes it
    // causes).
    let received = chrono::Utc::now();
    let subject = timeline::notification_subject(&verified);
    let result = act(state, config, adapter, verified).await;
    let label = match &result {
        Ok((_, label)) => Ok(*label),
        Err(e) => Err(e.to_string()),
    };
    timeline::record_notification(state, received, subject, label);
    result
}

/// Acts on a verified notification: `(acknowledge?, result label)`.
async fn act(
    state: &AppState,
    config: &ChannelConfig,
    adapter: &dyn Channel,
    verified: VerifiedNotification,
) -> ServiceResult<(bool, &'static str)> {
    let payment = match verified {
        VerifiedNotification::Payment(p) => p,
        VerifiedNotification::Refund(r) => {
            return super::refunds::handle_notification(state, config, adapter, &r).await;
        }
        VerifiedNotification::Other { event } => {
            tracing::info!(config_id = %config.config_id, event, "verified notification of no interest acknowledged");
            return Ok((true, "ignored"));
        }
    };
    let Some(order_id) = payment.order_id() else {
        tracing::warn!(config_id = %config.config_id, out_trade_no = %payment.out_trade_no, "notification names no cashdesk order");
        return Ok((false, "unknown_order"));
    };
    let Some(order) = state.store.get_order(&order_id).await? else {
        tracing::warn!(config_id = %config.config_id, order_id = %order_id, "notification for an unknown order");
        return Ok((false, "unknown_order"));
    };
    if let Some(c) = &order.channel
        && c.config_id != config.config_id
    {
        // Verified by another merchant account than the one the order is
        // being paid with: cashdesk never created it there (see
        // service::payments), so it is not acted on; the channel keeps
        // retrying and the log says why.
        tracing::error!(order_id = %order_id, notified_config = %config.config_id, order_config = %c.config_id, "verified notification from a config the order is not paid with");
        return Ok((false, "mismatch"));
    }
    if let Err(e) = payment.check_against(&ExpectedOrder {
        order_id: order.order_id.clone(),
        amount: order.amount,
    }) {
        tracing::warn!(order_id = %order_id, reason = %e.message, "notification does not match its order");
        return Ok((false, "mismatch"));
    }
    // The merchant it names must be the one the order is paid to (the
    // store's identity, or the config's own account), and an echoed
    // attach its store's tag.
    let identity = stores::notification_identity(state, &order, &config.config_id).await?;
    if let Err(e) = adapter.check_merchant(&payment.merchant, identity.as_ref()) {
        tracing::warn!(order_id = %order_id, reason = %e.message, "notification is not for the order's merchant");
        return Ok((false, "mismatch"));
    }
    if let Err(reason) = stores::check_attach(&order, payment.attach.as_deref()) {
        tracing::warn!(order_id = %order_id, %reason, "notification is not for the order's store");
        return Ok((false, "mismatch"));
    }
    match payment.result {
        PaymentResult::Paid(paid) => {
            let (_, outcome) =
                payments::apply_paid(state, &order, &paid, None, None, Source::Notification)
                    .await?;
            Ok((
                true,
                match outcome {
                    PaidOutcome::Applied => "applied",
                    PaidOutcome::Duplicate => "duplicate",
                    PaidOutcome::PaidAfterClose => "paid_after_close",
                },
            ))
        }
        PaymentResult::Failed { code, message } => {
            let failed = OrderEvent::PaymentFailed {
                code: code.clone(),
                message,
            };
            let changed =
                settlement::apply_order(state, &order, &failed, Source::Notification).await?;
            tracing::info!(order_id = %order_id, code, applied = changed.is_some(), "channel reported a failed payment");
            Ok((true, "failed_payment"))
        }
        PaymentResult::Closed => {
            // As a query answering "closed": a PAYING order closes; a
            // CLOSED one (the merchant's own close, whose notification can
            // overtake the close's answer) stays as it is. The merchant
            // is told PAY_CLOSED as for any close.
            let changed = settlement::apply_order(
                state,
                &order,
                &OrderEvent::ClosedByChannel,
                Source::Notification,
            )
            .await?;
            tracing::info!(order_id = %order_id, applied = changed.is_some(), "channel reported the order closed");
            Ok((true, "closed"))
        }
    }
}

/// Queries this config's `PAYING` orders at the channel, in the background,
/// unless that was done less than [`RECONCILE_INTERVAL`] ago.
fn spawn_reconcile(state: &AppState, config_id: &ConfigId) {
    {
        let mut last = state
            .reconciled_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last
            .get(config_id)
            .is_some_and(|t| now.duration_since(*t) < RECONCILE_INTERVAL)
        {
            return;
        }
        last.insert(config_id.clone(), now);
    }
    let state = state.clone();
    let config_id = config_id.clone();
    tokio::spawn(async move {
        match reconcile(&state, &config_id).await {
            Ok(n) => {
                tracing::info!(config_id = %config_id, queried = n, "reconciled after a key-problem notification")
            }
            Err(e) => tracing::warn!(config_id = %config_id, error = %e, "reconciliation failed"),
        }
    });
}

/// Asks the channel about every `PAYING` order of `config_id` (newest
/// 1000); returns how many were queried.
pub async fn reconcile(state: &AppState, config_id: &ConfigId) -> ServiceResult<usize> {
    let paying = state
        .store
        .list_orders(&OrderFilter {
            state: Some(OrderState::Paying),
            limit: 1000,
            ..OrderFilter::default()
        })
        .await?;
    let mut queried = 0;
    for order in paying.iter().filter(|o| {
        o.channel
            .as_ref()
            .is_some_and(|c| &c.config_id == config_id)
    }) {
        queried += 1;
        if let Err(e) = payments::sync_if_pending(state, order.clone(), Source::Query).await {
            tracing::warn!(order_id = %order.order_id, error = %e, "query during reconciliation failed");
        }
    }
    Ok(queried)
}
