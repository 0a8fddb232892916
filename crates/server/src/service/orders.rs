//! Pay orders: create (idempotent on the raw body), the buyer's payment
//! list, query and close (the channel side of both is in
//! [`super::payments`]).
//!
//! Idempotency: the order stores `sha256(body)` and the `data` it was
//! answered with. The same `outTradeNo` with the same bytes gets that
//! answer again (same orderId, token, expireAt, channels); other bytes get
//! 409. A race between two identical creates is settled by the store's
//! unique key (`Inserted::Existing`).
//!
//! `storeId`, when given, must name an existing, enabled store of the app
//! ([`super::stores::require_store`]); an identical retry of an order
//! answers as before even if its store was disabled since.

use std::net::IpAddr;

use cashdesk_core::{Fen, OrderId, OrderState, OutTradeNo, StoreId};
use cashdesk_crypto::{digest, random};
use cashdesk_store::{App, Inserted, NewOrder, Order, OrderFilter};
use chrono::Utc;
use serde_json::{Map, Value};

use crate::auth::sign_for_app;
use crate::input::Fields;
use crate::service::bindings::payment_channels;
use crate::service::error::{ServiceError, ServiceResult, TokenRefusal};
use crate::settlement::Source;
use crate::state::AppState;
use crate::wire::{self, CreateOrderResponse, OrderSignature, OrderView, PayResult, PaymentList};

pub const DEFAULT_EXPIRE_MINUTES: i64 = 30;
pub const MAX_EXPIRE_MINUTES: i64 = 1440;

/// A validated create-order request.
#[derive(Debug, Clone)]
pub struct OrderInput {
    pub out_trade_no: OutTradeNo,
    pub amount: Fen,
    pub order_title: String,
    pub goods_desc: String,
    pub third_party_user: String,
    pub notify_url: Option<cashdesk_core::NotifyUrl>,
    pub return_url: Option<String>,
    pub expire_minutes: i64,
    pub store_id: Option<StoreId>,
    pub attach: Option<String>,
    pub client_ip: Option<String>,
}

fn return_url(s: &str) -> ServiceResult<String> {
    let u = url::Url::parse(s)
        .map_err(|e| ServiceError::invalid("returnUrl", format!("is not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(ServiceError::invalid(
            "returnUrl",
            "must be an http or https URL",
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ServiceError::invalid(
            "returnUrl",
            "must not carry credentials",
        ));
    }
    Ok(s.to_owned())
}

impl OrderInput {
    pub fn parse(state: &AppState, body: &Map<String, Value>) -> ServiceResult<OrderInput> {
        let f = Fields(body);
        // outTradeNo's own rule gives the precise message (length, charset).
        let out_trade_no = match f.str_opt("outTradeNo", usize::MAX)? {
            Some(s) => OutTradeNo::parse(s)?,
            None => return Err(ServiceError::invalid("outTradeNo", "is required")),
        };
        let amount = f.fen_req("amount")?;
        let order_title = f.text_req("orderTitle", 128)?.to_owned();
        let goods_desc = f.text_opt("goodsDesc", 600)?.unwrap_or_default().to_owned();
        let third_party_user = f
            .str_opt("thirdPartyUser", 128)?
            .unwrap_or_default()
            .to_owned();
        let notify_url = f
            .str_opt("notifyUrl", 512)?
            .map(|s| super::parse_notify_url(state, "notifyUrl", s))
            .transpose()?;
        let return_url = f.str_opt("returnUrl", 512)?.map(return_url).transpose()?;
        let expire_minutes = match f.int_opt("expireMinutes")? {
            None => DEFAULT_EXPIRE_MINUTES,
            Some(m) if (1..=MAX_EXPIRE_MINUTES).contains(&m) => m,
            Some(_) => {
                return Err(ServiceError::invalid(
                    "expireMinutes",
                    format!("must be between 1 and {MAX_EXPIRE_MINUTES}"),
                ));
            }
        };
        let store_id = f
            .str_opt("storeId", usize::MAX)?
            .map(StoreId::parse)
            .transpose()?;
        // WeChat's attach limit is 127 bytes, so count bytes here.
        let attach = match f.str_opt("attach", usize::MAX)? {
            Some(a) if a.len() > 127 => {
                return Err(ServiceError::invalid("attach", "must be at most 127 bytes"));
            }
            other => other.map(str::to_owned),
        };
        let client_ip = f
            .str_opt("clientIp", 64)?
            .map(|s| {
                s.parse::<IpAddr>().map(|ip| ip.to_string()).map_err(|_| {
                    ServiceError::invalid("clientIp", "must be an IPv4 or IPv6 address")
                })
            })
            .transpose()?;
        Ok(OrderInput {
            out_trade_no,
            amount,
            order_title,
            goods_desc,
            third_party_user,
            notify_url,
            return_url,
            expire_minutes,
            store_id,
            attach,
            client_ip,
        })
    }
}

fn replay_or_conflict(order: &Order, request_hash: &str) -> ServiceResult<Value> {
    if order.request_hash == request_hash {
        Ok(order.response.clone())
    } else {
        Err(ServiceError::Conflict(format!(
            "outTradeNo {} already exists with a different request body; use a new outTradeNo or resend the original body",
            order.out_trade_no
        )))
    }
}

/// Creates the order (or returns the original answer); `body` is the raw
/// request body the merchant signed.
pub async fn create(
    state: &AppState,
    app: &App,
    body: &[u8],
    input: OrderInput,
) -> ServiceResult<Value> {
    let request_hash = hex::encode(digest::sha256(body));
    if let Some(existing) = state
        .store
        .get_order_by_out_trade_no(&app.app_id, &input.out_trade_no)
        .await?
    {
        return replay_or_conflict(&existing, &request_hash);
    }
    if let Some(store_id) = &input.store_id {
        super::stores::require_store(state, &app.app_id, store_id).await?;
    }

    let channels = payment_channels(state, app, input.store_id.as_ref()).await?;
    let now = Utc::now();
    let order_id = OrderId::generate();
    let token = random::token(32);
    let expire_at = now + chrono::Duration::minutes(input.expire_minutes);

    let timestamp = now.timestamp().to_string();
    let nonce = random::nonce_str(32);
    let message = format!(
        "{}\n{}\n{timestamp}\n{nonce}\n",
        app.app_id, input.out_trade_no
    );
    // Signing fails only inside (a key that cannot be opened).
    let signature = sign_for_app(state, app, message.as_bytes())
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("{e}")))?;

    let cashier_url = {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &token)
            .finish();
        format!("{}/cashier-desk-web/payment?{q}", state.public_url)
    };
    let answer = CreateOrderResponse {
        order_id: order_id.to_string(),
        out_trade_no: input.out_trade_no.to_string(),
        token: token.clone(),
        cashier_url,
        expire_at: wire::time(expire_at),
        signature: OrderSignature {
            app_id: app.app_id.to_string(),
            nonce,
            timestamp,
            signature,
            out_trade_no: input.out_trade_no.to_string(),
        },
        channels,
    };
    let response = serde_json::to_value(&answer).map_err(ServiceError::internal)?;
    let new = NewOrder {
        order_id,
        app_id: app.app_id.clone(),
        out_trade_no: input.out_trade_no,
        amount: input.amount,
        order_title: input.order_title,
        goods_desc: input.goods_desc,
        third_party_user: input.third_party_user,
        notify_url: input.notify_url,
        return_url: input.return_url,
        store_id: input.store_id,
        attach: input.attach,
        client_ip: input.client_ip,
        token,
        expire_at,
        request_hash: request_hash.clone(),
        response,
        created_at: now,
    };
    match state.store.insert_order(&new).await? {
        Inserted::New(order) => {
            state.metrics.order_created();
            tracing::info!(order_id = %order.order_id, app_id = %order.app_id, amount = order.amount.get(), "order created");
            Ok(order.response)
        }
        Inserted::Existing(order) => replay_or_conflict(&order, &request_hash),
    }
}

fn parse_out_trade_no(s: &str) -> ServiceResult<OutTradeNo> {
    Ok(OutTradeNo::parse(s)?)
}

pub(crate) async fn order_of_app(
    state: &AppState,
    app: &App,
    out_trade_no: &str,
) -> ServiceResult<Order> {
    let otn = parse_out_trade_no(out_trade_no)?;
    state
        .store
        .get_order_by_out_trade_no(&app.app_id, &otn)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("order with outTradeNo {otn}")))
}

/// `query-pay-result`; with `sync`, an unpaid order that has a channel is
/// first asked about at the channel (see [`super::payments::sync_if_pending`]).
pub async fn query(
    state: &AppState,
    app: &App,
    out_trade_no: &str,
    sync: bool,
) -> ServiceResult<PayResult> {
    let order = order_of_app(state, app, out_trade_no).await?;
    let order = if sync {
        super::payments::sync_if_pending(state, order, Source::Query).await?
    } else {
        order
    };
    Ok(wire::pay_result(&order))
}

/// CREATED/PAYING → CLOSED (merchant told `PAY_CLOSED`), closing at the
/// channel first when the order has one (already closed there is fine; a
/// channel failure leaves the order as it was, 502); closing a closed
/// order answers the same; a paid or failed order cannot be closed (422).
pub async fn close(state: &AppState, app: &App, out_trade_no: &str) -> ServiceResult<PayResult> {
    let order = order_of_app(state, app, out_trade_no).await?;
    Ok(wire::pay_result(
        &close_order(state, &order, Source::Merchant).await?,
    ))
}

/// [`close`] of a loaded order on behalf of `source` (the merchant API or
/// an operator): the order as it is afterwards.
pub async fn close_order(state: &AppState, order: &Order, source: Source) -> ServiceResult<Order> {
    if order.state.is_payable() {
        super::payments::close_at_channel(state, order).await?;
    }
    if let Some(closed) = super::payments::close_order(state, order, source).await? {
        return Ok(closed);
    }
    // Lost the race or not closable: decide on the state as it is now.
    let current = state
        .store
        .get_order(&order.order_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("order {}", order.order_id)))?;
    match current.state {
        OrderState::Closed => Ok(current),
        s => Err(ServiceError::state_not_allowed(if s.is_paid() {
            format!("order is {s}: a paid order cannot be closed (refund it instead)")
        } else {
            format!("order is {s} and cannot be closed")
        })),
    }
}

/// What the buyer may pay with (the token is the credential).
pub async fn payment_list(state: &AppState, token: &str) -> ServiceResult<PaymentList> {
    let unknown = || ServiceError::from(TokenRefusal::Unknown);
    // Tokens are 43 base64url characters; anything else is not worth a query.
    if token.len() > 128
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(unknown());
    }
    let order = state
        .store
        .get_order_by_token(token)
        .await?
        .ok_or_else(unknown)?;
    if order.expire_at <= Utc::now() {
        return Err(TokenRefusal::Expired.into());
    }
    let app = state.store.get_app(&order.app_id).await?.ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!("order {} has no app", order.order_id))
    })?;
    let channels = payment_channels(state, &app, order.store_id.as_ref()).await?;
    Ok(PaymentList {
        order_id: order.order_id.to_string(),
        out_trade_no: order.out_trade_no.to_string(),
        amount: order.amount.get(),
        order_title: order.order_title.clone(),
        expire_at: wire::time(order.expire_at),
        state: order.state,
        app_id: app.app_id.to_string(),
        app_name: app.app_name.clone(),
        channels,
    })
}

// --- admin ---

pub async fn admin_list(state: &AppState, filter: &OrderFilter) -> ServiceResult<Vec<OrderView>> {
    Ok(state
        .store
        .list_orders(filter)
        .await?
        .iter()
        .map(OrderView::from)
        .collect())
}

pub async fn admin_get(state: &AppState, order_id: &str) -> ServiceResult<OrderView> {
    let id = OrderId::parse(order_id)
        .ok_or_else(|| ServiceError::not_found(format!("order {order_id}")))?;
    let order = state
        .store
        .get_order(&id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("order {order_id}")))?;
    let mut view = OrderView::from(&order);
    view.channel_fee = state
        .store
        .get_fee(order.order_id.as_str())
        .await?
        .as_ref()
        .map(crate::wire::ChannelFeeView::from);
    Ok(view)
}
