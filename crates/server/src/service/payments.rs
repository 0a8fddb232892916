//! Paying an order through a channel, and everything that asks a channel
//! about a payment: `POST /payment`, `query-pay-result?sync=true`, `close`,
//! and [`apply_paid`], the one place a payment becomes `SUCCESS` (used by
//! verified notifications and by channel queries alike).
//!
//! # One channel per order (no double payment)
//!
//! cashdesk's order id is the channel's `out_trade_no`, and a buyer can
//! only pay what a `payData` was returned for. The rules:
//!
//! - `CREATED`: the channel is called first, then the order moves
//!   `CREATED → PAYING` with the channel recorded (compare-and-set). If two
//!   requests race, one wins; the loser finds the order `PAYING` with
//!   another channel (or closed, or paid), closes what it just created at
//!   its channel (best effort: its `payData` was never returned, so nobody
//!   can pay it) and answers 422 4220.
//! - `PAYING` with the same channel: the channel is asked again with the
//!   same parameters; WeChat answers with the same prepay (and so does the
//!   sandbox), so the buyer gets a fresh `payData` for the same payment.
//! - `PAYING` with another channel: refused with 422 4220. Switching would
//!   need "close at the old channel, then create at the new one" to be
//!   atomic across concurrent switchers, which a state compare-and-set
//!   cannot guarantee; to let the buyer pay another way the merchant closes
//!   the order (which closes it at the channel) and creates a new one.
//!
//! # One channel call per order at a time (single-flight)
//!
//! Identical `POST /payment` requests for one order that arrive while the
//! first is still at the channel wait for its answer and get the same one
//! (the same `payData`, or the same error): fifty buyers' taps make one
//! channel call, not fifty. A different request for the same order (another
//! channel, another payer) waits for the one in flight to end and then
//! takes its turn under the rules above. "Identical" is the order (app and
//! `outTradeNo`) and everything the channel is asked with: channel,
//! payer, payer AppID, client IP and return URL. The cashier page's
//! payments go through the same gate.
//!
//! This is per instance ([`crate::single_flight`]). Instances sharing a
//! database do not wait for each other: each may make one call for the
//! same order at the same time, as before (the channel answers the same
//! prepay for the same parameters, and the `CREATED → PAYING`
//! compare-and-set keeps one channel per order). Holding a database row
//! lock across a channel call was rejected: it would tie a connection to a
//! remote call of up to the channel timeout.
//!
//! # Stores
//!
//! A store's order is paid with the store's identity at the bound config
//! when it has one (service-provider sub-merchant, Lakala numbers, Alipay
//! app authorization; see [`super::stores`]), else with the config's own
//! account; the identity is recorded with the channel on `CREATED →
//! PAYING` and every later call for the order (the same channel again,
//! queries, closes, refunds) uses that recorded copy. The order's `mchId`
//! is the merchant it is paid to. A store that is disabled (or gone) takes
//! no payments (4034 / 4003); the attach-style field carries the store's
//! tag ([`super::stores::attach_tag`]).
//!
//! # Channel errors
//!
//! A failed channel call changes nothing: the merchant gets 502 5020 with
//! the channel's message (`data.channelCode` when the channel gave one) and
//! may retry. Business answers that are outcomes are mapped by their
//! [`BusinessKind`] (each adapter reads its own codes into it; nothing here
//! knows a channel's code): `OrderAlreadyPaid` → the channel is queried and
//! the payment applied, then 4220 (the order is paid); `OrderClosed` →
//! 4220; a request the channel cannot take for this scene (no openid for
//! mini/jsapi, no clientIp for h5) → 400 4000.
//!
//! `payData` is the adapter's typed [`PayData`]: a QR shape gets its
//! `qrSvgUrl` here ([`add_qr_svg_url`]), and the answer serializes it to
//! the wire shape.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cashdesk_channels::{
    BusinessKind, Channel, ChannelError, ChannelOrderStatus, CloseRequest, PaidInfo, PayData,
    PayRequest, QueryRequest, StoreMerchant,
};
use cashdesk_core::{AppId, ChannelId, OrderId, OrderState};
use cashdesk_store::{App, BoundChannel, Order, OrderChannel};
use chrono::Utc;
use serde_json::{Value, json};

use crate::channel_cache;
use crate::service::error::{BindingRefusal, ServiceError, ServiceResult};
use crate::service::orders::order_of_app;
use crate::service::pay_command::PayCommand;
use crate::service::{refunds, stores};
use crate::settlement::{self, OrderEvent, Source};
use crate::single_flight::SingleFlight;
use crate::state::AppState;
use crate::wire::PaymentResponse;

/// AAD of a sealed QR token.
const QR_AAD: &[u8] = b"cashier:qr";

/// The answer a payment flight shares with every identical request.
type PayAnswer = Result<PaymentResponse, Arc<ServiceError>>;

/// This instance's payment calls in flight, by app and `outTradeNo`.
#[derive(Default)]
pub struct PaymentFlights(SingleFlight<(AppId, String), PayCommand, PayAnswer>);

async fn bound_channel(
    state: &AppState,
    app: &App,
    order: &Order,
    channel_id: &ChannelId,
) -> ServiceResult<BoundChannel> {
    if state.config.binding_auto_approve_secs.is_some() {
        state.store.approve_due_bindings(Utc::now()).await?;
    }
    let bound = state
        .store
        .bound_channels(&app.app_id, order.store_id.as_ref())
        .await?
        .into_iter()
        .find(|b| &b.channel.channel_id == channel_id);
    if let Some(bound) = bound {
        return Ok(bound);
    }
    // A channel that does not exist is not found (4040); one that exists
    // but this app may not use here is not bound (4031).
    if state.store.get_channel(channel_id).await?.is_none() {
        return Err(ServiceError::NotFound {
            what: format!(
                "channel {channel_id} (the channels bound to the order are in its payment list)"
            ),
            field: Some("channelId"),
        });
    }
    Err(BindingRefusal::NotBound {
        channel_id: channel_id.clone(),
        app_id: app.app_id.clone(),
    }
    .into())
}

fn order_channel(b: &BoundChannel, identity: Option<&PaymentIdentity>) -> OrderChannel {
    OrderChannel {
        channel_id: b.channel.channel_id.clone(),
        channel_type: b.config.channel_type,
        config_id: b.config.config_id.clone(),
        mch_id: identity.map_or_else(|| b.config.mch_id.clone(), |i| i.mch_id.clone()),
        scene_code: b.channel.scene_code,
    }
}

/// The store identity a payment is made with: sealed (as recorded in the
/// order), the merchant it amounts to, and what the adapter reads.
pub struct PaymentIdentity {
    pub(crate) sealed: Vec<u8>,
    pub(crate) mch_id: String,
    pub(crate) merchant: StoreMerchant,
}

/// The identity recorded in an order that is paying (see
/// [`super::stores::order_identity`]).
pub fn recorded_identity(
    state: &AppState,
    order: &Order,
) -> ServiceResult<Option<PaymentIdentity>> {
    Ok(
        match (
            stores::order_identity(state, order)?,
            &order.store_identity_sealed,
            &order.channel,
        ) {
            (Some(merchant), Some(sealed), Some(ch)) => Some(PaymentIdentity {
                sealed: sealed.clone(),
                mch_id: ch.mch_id.clone(),
                merchant,
            }),
            _ => None,
        },
    )
}

/// The order's own copy when it is already paying through `bound`'s
/// channel (the same parameters again), else the store's current identity
/// at the bound config; `None` for the config's own account.
async fn payment_identity(
    state: &AppState,
    order: &Order,
    bound: &BoundChannel,
) -> ServiceResult<Option<PaymentIdentity>> {
    let Some(store_id) = &order.store_id else {
        return Ok(None);
    };
    if let Some(current) = &order.channel
        && current.channel_id == bound.channel.channel_id
    {
        return recorded_identity(state, order);
    }
    Ok(
        stores::current_identity(state, &order.app_id, store_id, &bound.config.config_id)
            .await?
            .map(|(row, merchant)| PaymentIdentity {
                sealed: row.identity_sealed,
                mch_id: row.mch_id,
                merchant,
            }),
    )
}

/// `POST /api/cashier-desk/payment` and the cashier page's payments →
/// `{orderId, channelType, sceneCode, payData}`. The buyer comes back from
/// a channel's own pages (Alipay wap/page) to the command's `return_url`,
/// else to the order's `returnUrl`.
pub async fn pay(state: &AppState, app: &App, input: PayCommand) -> ServiceResult<PaymentResponse> {
    let key = (app.app_id.clone(), input.out_trade_no.clone());
    let work = {
        let (state, app, input) = (state.clone(), app.clone(), input.clone());
        move || async move { pay_now(&state, &app, input).await.map_err(Arc::new) }
    };
    match state.payment_flights.0.run(key, input, work).await {
        Some(answer) => answer.map_err(|e| e.duplicate()),
        None => Err(ServiceError::internal(anyhow::anyhow!(
            "the payment task failed (see the panic above)"
        ))),
    }
}

/// One payment request, for real (callers go through the single-flight
/// gate of [`pay`]).
async fn pay_now(state: &AppState, app: &App, input: PayCommand) -> ServiceResult<PaymentResponse> {
    let order = order_of_app(state, app, &input.out_trade_no).await?;
    if !order.state.is_payable() {
        return Err(ServiceError::state_not_allowed(format!(
            "order is {} and cannot be paid",
            order.state
        )));
    }
    if order.expire_at <= Utc::now() {
        return Err(ServiceError::state_not_allowed(
            "order has expired and cannot be paid",
        ));
    }
    if let Some(store_id) = &order.store_id {
        stores::require_store(state, &app.app_id, store_id).await?;
    }
    let bound = bound_channel(state, app, &order, &input.channel_id).await?;
    if let Some(current) = &order.channel
        && current.channel_id != bound.channel.channel_id
    {
        return Err(ServiceError::state_not_allowed(format!(
            "order is already being paid with channel {} ({} {}); to pay another way, close this order and create a new one",
            current.channel_id, current.channel_type, current.scene_code
        )));
    }
    let adapter = channel_cache::adapter(state, &bound.config)?;
    let identity = payment_identity(state, &order, &bound).await?;
    let store = identity.as_ref().map(|i| i.merchant.clone());
    let req = PayRequest {
        order_id: order.order_id.clone(),
        amount: order.amount,
        scene: bound.channel.scene_code,
        description: order.order_title.clone(),
        payer_id: input.payer_id,
        payer_app_id: input.payer_app_id,
        client_ip: input
            .client_ip
            .map(|ip| ip.to_string())
            .or_else(|| order.client_ip.clone()),
        expire_at: Some(order.expire_at),
        attach: stores::channel_attach(&order),
        return_url: input.return_url.or_else(|| order.return_url.clone()),
        store: store.clone(),
    };
    let created = match adapter.create_payment(&req).await {
        Ok(r) => r,
        Err(e) => {
            return Err(pay_error(state, &order, adapter.as_ref(), &bound, identity, e).await);
        }
    };
    let oc = order_channel(&bound, identity.as_ref());
    if order.state == OrderState::Created {
        let started = OrderEvent::PaymentStarted {
            channel: oc.clone(),
            identity_sealed: identity.map(|i| i.sealed),
        };
        if settlement::apply_order(state, &order, &started, Source::Merchant)
            .await?
            .is_none()
        {
            lost_race(state, &order.order_id, adapter.as_ref(), &oc, store).await?;
        }
    }
    tracing::info!(order_id = %order.order_id, channel_id = %oc.channel_id, scene = %oc.scene_code, "payment started at the channel");
    let mut pay_data = created.pay_data;
    add_qr_svg_url(state, &order.order_id, &mut pay_data);
    Ok(PaymentResponse {
        order_id: order.order_id.to_string(),
        channel_type: oc.channel_type.as_str().to_owned(),
        scene_code: oc.scene_code.as_str().to_owned(),
        pay_data,
    })
}

/// The one place a QR `payData` gets its `qrSvgUrl`: the code the channel
/// gave (WeChat/Lakala Native `codeUrl`, Alipay `qrCode`) as an SVG served
/// by cashdesk.
fn add_qr_svg_url(state: &AppState, order_id: &OrderId, pay_data: &mut PayData) {
    if let PayData::Native {
        code_url: code,
        qr_svg_url: svg,
    }
    | PayData::QrCode {
        qr_code: code,
        qr_svg_url: svg,
    } = pay_data
        && !code.is_empty()
    {
        *svg = Some(qr_svg_url(state, order_id, code));
    }
}

/// Our `CREATED → PAYING` lost: decide on the order as it is now. The same
/// channel won (a concurrent identical request): fine, same prepay. Anything
/// else: close what we just created (nobody has its payData) and refuse.
async fn lost_race(
    state: &AppState,
    order_id: &OrderId,
    adapter: &dyn Channel,
    ours: &OrderChannel,
    store: Option<StoreMerchant>,
) -> ServiceResult<()> {
    let current = state
        .store
        .get_order(order_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("order {order_id}")))?;
    let same_channel = current
        .channel
        .as_ref()
        .is_some_and(|c| c.channel_id == ours.channel_id);
    if current.state == OrderState::Paying && same_channel {
        return Ok(());
    }
    if !same_channel
        && let Err(e) = adapter
            .close(&CloseRequest {
                order_id: order_id.clone(),
                store,
            })
            .await
    {
        tracing::warn!(order_id = %order_id, error = %e, "could not close the losing channel order; nobody holds its payData");
    }
    Err(ServiceError::state_not_allowed(match current.state {
        OrderState::Paying => "order is already being paid with another channel".to_owned(),
        s => format!("order is {s} and cannot be paid"),
    }))
}

async fn pay_error(
    state: &AppState,
    order: &Order,
    adapter: &dyn Channel,
    bound: &BoundChannel,
    identity: Option<PaymentIdentity>,
    e: ChannelError,
) -> ServiceError {
    tracing::warn!(order_id = %order.order_id, error = %e, "channel refused or failed the payment");
    if e.business_kind() == Some(BusinessKind::OrderAlreadyPaid) {
        // Paid at the channel before we heard of it: find out and apply.
        let oc = order_channel(bound, identity.as_ref());
        return match sync_order(
            state,
            order,
            adapter,
            Some(oc),
            identity.as_ref(),
            Source::Query,
        )
        .await
        {
            Ok(o) if o.state.is_paid() => ServiceError::state_not_allowed(format!(
                "order is already paid (transaction {})",
                o.transaction_id.unwrap_or_default()
            )),
            Ok(_) => ServiceError::Channel(e),
            Err(err) => err,
        };
    }
    if e.business_kind() == Some(BusinessKind::OrderClosed) {
        return ServiceError::state_not_allowed(
            "order is closed at the channel (closed or expired); create a new order",
        );
    }
    ServiceError::Channel(e)
}

/// Why [`apply_paid`] did (or did not) change the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaidOutcome {
    /// CREATED/PAYING → SUCCESS now.
    Applied,
    /// It was already paid (a copy of the same news).
    Duplicate,
    /// CLOSED/FAILED → SUCCESS with `paidAfterClose`.
    PaidAfterClose,
}

/// Records a verified payment: `CREATED|PAYING → SUCCESS` with the
/// transaction id and pay time (compare-and-set: however many copies of the
/// news arrive, concurrently or not, one transition happens). A payment for
/// a `CLOSED` or `FAILED` order is never dropped: it becomes `SUCCESS` with
/// `paidAfterClose`. The amount must equal the order's.
pub async fn apply_paid(
    state: &AppState,
    order: &Order,
    paid: &PaidInfo,
    channel: Option<OrderChannel>,
    identity_sealed: Option<Vec<u8>>,
    source: Source,
) -> ServiceResult<(Order, PaidOutcome)> {
    if paid.amount != order.amount {
        return Err(ServiceError::ChannelAnswer(format!(
            "the channel reports {} fen paid for an order of {} fen; nothing was changed",
            paid.amount, order.amount
        )));
    }
    let event = OrderEvent::Paid {
        transaction_id: paid.transaction_id.clone(),
        pay_time: paid.pay_time,
        channel,
        identity_sealed,
    };
    if !matches!(order.state, OrderState::Closed | OrderState::Failed)
        && let Some(o) = settlement::apply_order(state, order, &event, source).await?
    {
        return Ok((o, PaidOutcome::Applied));
    }
    // Lost, or the order was not payable when read: decide again on the
    // order as it is now.
    for _ in 0..2 {
        let current = state
            .store
            .get_order(&order.order_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("order {}", order.order_id)))?;
        if current.state.is_paid() {
            if current.transaction_id.as_deref() != Some(paid.transaction_id.as_str()) {
                tracing::error!(
                    order_id = %current.order_id,
                    recorded = current.transaction_id.as_deref().unwrap_or(""),
                    reported = %paid.transaction_id,
                    "a second payment was reported for a paid order: refund one by hand"
                );
            } else if current.paid_after_close {
                // A copy of the news that made it paidAfterClose: if the
                // automatic refund was not stored then (a crash, a
                // database error), it is now.
                refunds::auto_refund_paid_after_close(state, &current).await?;
            }
            return Ok((current, PaidOutcome::Duplicate));
        }
        if let Some(o) = settlement::apply_order(state, &current, &event, source).await? {
            if o.paid_after_close {
                refunds::auto_refund_paid_after_close(state, &o).await?;
                return Ok((o, PaidOutcome::PaidAfterClose));
            }
            return Ok((o, PaidOutcome::Applied));
        }
        // CREATED/PAYING again (cannot happen: the first CAS would have
        // applied); read once more.
    }
    Err(ServiceError::internal(anyhow::anyhow!(
        "order {} did not settle while recording a payment",
        order.order_id
    )))
}

/// The adapter of the config an order is being paid with.
pub async fn order_adapter(
    state: &AppState,
    order: &Order,
) -> ServiceResult<Option<(OrderChannel, Arc<dyn Channel>)>> {
    let Some(oc) = order.channel.clone() else {
        return Ok(None);
    };
    let config = state
        .store
        .get_channel_config(&oc.config_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!(
                "order {} names config {} which does not exist",
                order.order_id,
                oc.config_id
            ))
        })?;
    let adapter = channel_cache::adapter(state, &config)?;
    Ok(Some((oc, adapter)))
}

/// Asks the channel how the order stands and applies what it says
/// ([`apply_channel_status`]). Only for orders that are still
/// `CREATED`/`PAYING`; a channel failure is a 502 and changes nothing.
pub async fn sync_order(
    state: &AppState,
    order: &Order,
    adapter: &dyn Channel,
    channel: Option<OrderChannel>,
    identity: Option<&PaymentIdentity>,
    source: Source,
) -> ServiceResult<Order> {
    let status = adapter
        .query(&QueryRequest {
            order_id: order.order_id.clone(),
            amount: order.amount,
            store: identity.map(|i| i.merchant.clone()),
        })
        .await
        .map_err(ServiceError::Channel)?;
    apply_channel_status(state, order, &status, channel, identity, source).await
}

/// Applies what a channel says about an unpaid order: paid →
/// [`apply_paid`] (amount checked), failed → `FAILED`, closed at the
/// channel → `CLOSED` (merchant told `PAY_CLOSED`); anything else changes
/// nothing. Returns the order as it is afterwards.
pub async fn apply_channel_status(
    state: &AppState,
    order: &Order,
    status: &ChannelOrderStatus,
    channel: Option<OrderChannel>,
    identity: Option<&PaymentIdentity>,
    source: Source,
) -> ServiceResult<Order> {
    let changed = match status {
        ChannelOrderStatus::Paid(paid) | ChannelOrderStatus::Refunded(paid) => {
            let sealed = identity.map(|i| i.sealed.clone());
            return Ok(apply_paid(state, order, paid, channel, sealed, source)
                .await?
                .0);
        }
        ChannelOrderStatus::Closed => {
            settlement::apply_order(state, order, &OrderEvent::ClosedByChannel, source).await?
        }
        ChannelOrderStatus::Failed { code, message } => {
            let failed = OrderEvent::PaymentFailed {
                code: code.clone(),
                message: message.clone(),
            };
            settlement::apply_order(state, order, &failed, source).await?
        }
        other => {
            tracing::debug!(order_id = %order.order_id, status = ?other, "channel query: nothing to apply");
            None
        }
    };
    match changed {
        Some(o) => {
            tracing::info!(order_id = %o.order_id, state = %o.state, source = source.as_str(), "order updated from a channel query");
            Ok(o)
        }
        None => state
            .store
            .get_order(&order.order_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("order {}", order.order_id))),
    }
}

/// An unpaid order with a channel is asked about at the channel first
/// (`query-pay-result?sync=true`, the cashier page's wait, the poller).
pub async fn sync_if_pending(
    state: &AppState,
    order: Order,
    source: Source,
) -> ServiceResult<Order> {
    if !order.state.is_payable() {
        return Ok(order);
    }
    match order_adapter(state, &order).await? {
        Some((oc, adapter)) => {
            let identity = recorded_identity(state, &order)?;
            sync_order(
                state,
                &order,
                adapter.as_ref(),
                Some(oc),
                identity.as_ref(),
                source,
            )
            .await
        }
        None => Ok(order),
    }
}

/// `CREATED|PAYING → CLOSED` locally (compare-and-set) with the
/// `PAY_CLOSED` notification; call [`close_at_channel`] first for an order
/// that has a channel. `Some` if this call closed it.
pub async fn close_order(
    state: &AppState,
    order: &Order,
    source: Source,
) -> ServiceResult<Option<Order>> {
    let event = match source {
        Source::Expiry => OrderEvent::Expired,
        _ => OrderEvent::ClosedByMerchant,
    };
    settlement::apply_order(state, order, &event, source).await
}

/// Before a local close: close at the channel (already closed there is
/// fine). A channel that says the order is paid is queried and the payment
/// applied; the caller then finds the order paid.
pub async fn close_at_channel(state: &AppState, order: &Order) -> ServiceResult<()> {
    let Some((oc, adapter)) = order_adapter(state, order).await? else {
        return Ok(());
    };
    let identity = recorded_identity(state, order)?;
    match adapter
        .close(&CloseRequest {
            order_id: order.order_id.clone(),
            store: identity.as_ref().map(|i| i.merchant.clone()),
        })
        .await
    {
        Ok(()) => Ok(()),
        Err(e @ ChannelError::Business { .. }) => {
            // Already paid (and any other refusal): ask what happened
            // rather than guess.
            tracing::warn!(order_id = %order.order_id, error = %e, "channel refused to close; querying");
            let now = sync_order(
                state,
                order,
                adapter.as_ref(),
                Some(oc),
                identity.as_ref(),
                Source::Query,
            )
            .await?;
            if now.state.is_paid() {
                Ok(())
            } else {
                Err(ServiceError::Channel(e))
            }
        }
        Err(e) => Err(ServiceError::Channel(e)),
    }
}

// --- the Native QR code ---

/// `<public_url>/cashier-desk-web/qr/<token>.svg`. The token is the order id
/// and the channel's code URL sealed under the master key: only cashdesk
/// mints them, so the endpoint renders code URLs the channel gave for an
/// order and nothing else (it is not an open QR generator).
pub fn qr_svg_url(state: &AppState, order_id: &OrderId, code_url: &str) -> String {
    let plain = json!({"o": order_id, "u": code_url}).to_string();
    let token = URL_SAFE_NO_PAD.encode(state.master_key.seal(plain.as_bytes(), QR_AAD));
    format!("{}/cashier-desk-web/qr/{token}.svg", state.public_url)
}

/// The SVG of a QR token, while its order can still be paid.
pub async fn qr_svg(state: &AppState, file: &str) -> ServiceResult<String> {
    let gone = || ServiceError::not_found("QR code");
    let token = file.strip_suffix(".svg").ok_or_else(gone)?;
    if token.len() > 2048 {
        return Err(gone());
    }
    let sealed = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| gone())?;
    let plain = state.master_key.open(&sealed, QR_AAD).map_err(|_| gone())?;
    let v: Value = serde_json::from_slice(&plain).map_err(|_| gone())?;
    let order_id = v["o"].as_str().and_then(OrderId::parse).ok_or_else(gone)?;
    let code_url = v["u"].as_str().ok_or_else(gone)?;
    let order = state.store.get_order(&order_id).await?.ok_or_else(gone)?;
    if !order.state.is_payable() || order.expire_at <= Utc::now() {
        return Err(ServiceError::state_not_allowed(format!(
            "order is {} and can no longer be paid",
            order.state
        )));
    }
    render_qr_svg(code_url)
}

/// The QR code of `text` as SVG (error correction M, quiet zone included).
pub fn render_qr_svg(text: &str) -> ServiceResult<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("QR encoding failed: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build())
}
