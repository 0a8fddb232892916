//! Asking the channels on cashdesk's own initiative, for orders whose
//! outcome no notification has brought: the `PAYING`-order poller and the
//! expiry job.
//!
//! # The poller
//!
//! [`query_due_orders`] claims `PAYING` orders that are due for a query
//! ([`cashdesk_store::Orders::claim_orders_to_query`]: first
//! `CASHDESK_QUERY_SCHEDULE`'s first wait after the move to `PAYING`, then
//! backing off; never once expired, that is the expiry job's). What the
//! channel says is applied exactly as a verified notification would be
//! ([`payments::apply_channel_status`]): paid → `SUCCESS` and
//! `PAY_SUCCESS`, closed → `CLOSED` and `PAY_CLOSED`. The claim is one
//! statement that pushes each order's next query forward, so it is its own
//! lease: every instance runs the step, none queries an order another
//! instance claimed in the same round, and a dead instance's orders come
//! due again.
//!
//! # Expiry
//!
//! [`expire_due`] handles `CREATED`/`PAYING` orders past `expireAt`. The
//! list of them is a plain read, so the job runs under the cluster lease
//! [`EXPIRY_LEASE`] (one instance at a time, renewed before each order;
//! another instance takes over when its holder dies). For each order:
//!
//! - never sent to a channel (`CREATED`, no channel) → `CLOSED`;
//! - otherwise the channel is asked first: paid → `SUCCESS` (never close
//!   what is paid), failed → `FAILED`, closed there → `CLOSED`; unpaid →
//!   closed at the channel (a channel that then says "paid" is queried and
//!   the payment recorded), then `CLOSED` locally; unknown at the channel →
//!   `CLOSED` locally (nothing can be paid there);
//! - the channel unreachable, or a state it cannot explain → left as it is
//!   and tried again next round.
//!
//! Every `CLOSED` tells the merchant `PAY_CLOSED`.

use cashdesk_channels::{ChannelOrderStatus, QueryRequest};
use cashdesk_core::OrderId;
use cashdesk_store::Order;
use chrono::Utc;

use crate::service::error::{ServiceError, ServiceResult};
use crate::service::payments;
use crate::settlement::Source;
use crate::slots::{InFlight, Taken};
use crate::state::AppState;

/// The cluster lease the expiry job runs under.
pub const EXPIRY_LEASE: &str = "job.expiry";

/// How many channel queries the order poller (and, apart, the refund
/// poller) of one instance has in flight at once ([`crate::slots`]): a
/// channel that answers slowly, or only at its timeout, holds the slots of
/// its own rows while the other channels' rows are claimed and asked.
pub const QUERY_CONCURRENCY: usize = 8;

/// The order poller's step: claims as many due `PAYING` orders as `slots`
/// holds and asks each one's channel in a slot of its own. Returns whether
/// every slot was used (more may be due). An order still being asked from
/// an earlier claim is skipped (`in_flight`); one order's failure is
/// logged, and its claim already set its next query.
#[tracing::instrument(name = "poll_orders", level = "debug", skip_all)]
pub async fn query_due_orders(
    state: &AppState,
    slots: Taken,
    in_flight: &InFlight<OrderId>,
) -> ServiceResult<bool> {
    let schedule = state.config.query_schedule();
    let limit = u32::try_from(slots.count()).unwrap_or(1);
    let due = state
        .store
        .claim_orders_to_query(Utc::now(), limit, &schedule)
        .await?;
    Ok(slots.start_each(due, |order| {
        let mark = in_flight.start(&order.order_id)?;
        let state = state.clone();
        Some(async move {
            let _mark = mark;
            let (order_id, attempts) = (order.order_id.clone(), order.query_attempts);
            match payments::sync_if_pending(&state, order, Source::Poller).await {
                Ok(o) => {
                    tracing::debug!(order_id = %o.order_id, state = %o.state, attempts, "order queried")
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(order_id = %order_id, error = %e, "order query failed; will try again")
                }
                Err(e) => {
                    tracing::error!(order_id = %order_id, error = ?e, "order query failed and will not mend by itself (asked again on schedule); an operator should look")
                }
            }
        })
    }))
}

/// How long the expiry lease lasts: the longest one order can take (a
/// query, a close at the channel and, if the channel refuses the close, a
/// second query) and some.
fn lease_ttl(state: &AppState) -> chrono::Duration {
    let ms = i64::try_from(state.config.channel_timeout_ms).unwrap_or(15_000);
    chrono::Duration::milliseconds(ms * 3) + chrono::Duration::seconds(10)
}

/// One round of the expiry job, if this instance holds (or gets) the
/// expiry lease: up to `limit` expired orders. Returns how many were
/// looked at.
pub async fn expire_due(state: &AppState, owner: &str, limit: u32) -> ServiceResult<usize> {
    let ttl = lease_ttl(state);
    if !state
        .store
        .try_acquire_lease(EXPIRY_LEASE, owner, Utc::now(), ttl)
        .await?
    {
        return Ok(0);
    }
    let expired = state.store.list_expired_orders(Utc::now(), limit).await?;
    let mut seen = 0;
    for order in &expired {
        // Renewed before each order: a slow channel must not let the lease
        // run out while this instance still works through the list.
        if !state
            .store
            .try_acquire_lease(EXPIRY_LEASE, owner, Utc::now(), ttl)
            .await?
        {
            break;
        }
        seen += 1;
        match expire(state, order).await {
            Ok(o) => {
                tracing::info!(order_id = %o.order_id, state = %o.state, "expired order settled")
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(order_id = %order.order_id, error = %e, "expired order left as it is; trying again next round")
            }
            Err(e) => {
                tracing::error!(order_id = %order.order_id, error = ?e, "expired order left as it is and will not mend by itself (tried again next round); an operator should look")
            }
        }
    }
    Ok(seen)
}

/// Gives the expiry lease up (on shutdown), so another instance takes
/// over at once.
pub async fn release(state: &AppState, owner: &str) {
    if let Err(e) = state.store.release_lease(EXPIRY_LEASE, owner).await {
        tracing::warn!(error = %e, "could not release the expiry lease; it runs out by itself");
    }
}

/// Settles one expired order (see the module comment).
async fn expire(state: &AppState, order: &Order) -> ServiceResult<Order> {
    let Some((oc, adapter)) = payments::order_adapter(state, order).await? else {
        return closed(state, order).await;
    };
    let identity = payments::recorded_identity(state, order)?;
    let status = adapter
        .query(&QueryRequest {
            order_id: order.order_id.clone(),
            amount: order.amount,
            store: identity.as_ref().map(|i| i.merchant.clone()),
        })
        .await
        .map_err(ServiceError::Channel)?;
    let after = payments::apply_channel_status(
        state,
        order,
        &status,
        Some(oc),
        identity.as_ref(),
        Source::Expiry,
    )
    .await?;
    if !after.state.is_payable() {
        return Ok(after);
    }
    match status {
        ChannelOrderStatus::NotFound => {}
        ChannelOrderStatus::NotPaid | ChannelOrderStatus::Paying | ChannelOrderStatus::Closed => {
            payments::close_at_channel(state, &after).await?;
        }
        other => {
            return Err(ServiceError::ChannelAnswer(format!(
                "the channel reports a state cashdesk does not know ({other:?})"
            )));
        }
    }
    closed(state, &after).await
}

/// Closes locally; the order as it is afterwards (closed by this call, or
/// settled otherwise meanwhile).
async fn closed(state: &AppState, order: &Order) -> ServiceResult<Order> {
    if let Some(o) = payments::close_order(state, order, Source::Expiry).await? {
        return Ok(o);
    }
    state
        .store
        .get_order(&order.order_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("order {}", order.order_id)))
}
