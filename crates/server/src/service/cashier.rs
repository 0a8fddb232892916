//! The cashier page's questions to the order book: what a token opens
//! ([`open`], [`Stage`]), which bound channels the buyer is offered
//! ([`offered`]), paying with one ([`pay`], the very service behind
//! `POST /api/cashier-desk/payment`, so the page can do nothing the
//! merchant API would refuse), and how the order stands now ([`refresh`]).
//!
//! # No double payment through the page
//!
//! Only a `CREATED`/`PAYING`, unexpired order shows channels; every other
//! state shows its result page. The choice itself goes through
//! [`payments::pay`], which refuses a paid, closed or expired order and a
//! second channel for an order already being paid (422), whatever the
//! page showed a moment ago.
//!
//! # Asking the channel
//!
//! Notifications normally settle an order. While a buyer waits on the QR
//! or result page, [`refresh`] also asks the channel, at most once per
//! [`SYNC_EVERY`] per order in this process, so a lost notification does
//! not leave the buyer waiting and polling pages cannot hammer a channel.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use cashdesk_channels::PayerOAuth;
use cashdesk_core::{ChannelId, OrderId, OrderState};
use cashdesk_store::{App, BoundChannel, Order};
use chrono::{DateTime, Utc};

use crate::cashier::view::{Device, Flow, flow};
use crate::channel_cache;
use crate::service::error::{ServiceError, ServiceResult};
use crate::service::pay_command::PayCommand;
use crate::service::payments;
use crate::settlement::Source;
use crate::state::AppState;
use crate::wire::PaymentResponse;

/// How often the page may make cashdesk ask the channel about one order.
pub const SYNC_EVERY: Duration = Duration::from_secs(5);

/// An order opened by its cashier token, with its app.
#[derive(Debug, Clone)]
pub struct Opened {
    pub order: Order,
    pub app: App,
}

/// Where an order stands for the buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Can be paid now (`CREATED`/`PAYING`, not expired).
    Payable,
    /// Paid (refunds later do not change what the payer sees).
    Paid,
    Failed,
    Closed,
    /// Unpaid and past its expiry.
    Expired,
}

impl Stage {
    pub fn of(order: &Order, now: DateTime<Utc>) -> Stage {
        match order.state {
            s if s.is_paid() => Stage::Paid,
            OrderState::Failed => Stage::Failed,
            OrderState::Closed => Stage::Closed,
            _ if order.expire_at <= now => Stage::Expired,
            _ => Stage::Payable,
        }
    }

    /// Whether the page can stop waiting.
    pub fn is_final(self) -> bool {
        self != Stage::Payable
    }
}

/// Cashier tokens are 43 base64url characters; anything else is not worth
/// a query.
fn plausible_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The order (and app) a token opens; `None` = no such token.
pub async fn open(state: &AppState, token: &str) -> ServiceResult<Option<Opened>> {
    if !plausible_token(token) {
        return Ok(None);
    }
    let Some(order) = state.store.get_order_by_token(token).await? else {
        return Ok(None);
    };
    let app = state.store.get_app(&order.app_id).await?.ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!("order {} has no app", order.order_id))
    })?;
    Ok(Some(Opened { order, app }))
}

/// A channel as offered on this device.
#[derive(Debug, Clone)]
pub struct Offer {
    pub bound: BoundChannel,
    pub flow: Flow,
}

/// The bound channels of the order's app and store that work on `device`,
/// by `sort` (then id, for a stable order). An order already being paid
/// with a channel offers only that one: the payment service refuses a
/// second channel anyway.
pub async fn offered(
    state: &AppState,
    opened: &Opened,
    device: Device,
) -> ServiceResult<Vec<Offer>> {
    if state.config.binding_auto_approve_secs.is_some() {
        state.store.approve_due_bindings(Utc::now()).await?;
    }
    let mut bound = state
        .store
        .bound_channels(&opened.app.app_id, opened.order.store_id.as_ref())
        .await?;
    bound.sort_by(|a, b| {
        (a.channel.sort, a.channel.channel_id.as_str())
            .cmp(&(b.channel.sort, b.channel.channel_id.as_str()))
    });
    let current = opened.order.channel.as_ref().map(|c| &c.channel_id);
    Ok(bound
        .into_iter()
        .filter(|b| current.is_none_or(|c| c == &b.channel.channel_id))
        .filter_map(|b| {
            flow(b.config.channel_type, b.channel.scene_code, device)
                .map(|flow| Offer { bound: b, flow })
        })
        .collect())
}

/// Pays with `channel_id` through [`payments::pay`] (the same
/// [`PayCommand`] a merchant's `POST /payment` is parsed into); returns its `data`
/// (`{orderId, channelType, sceneCode, payData}`). A channel that shows
/// its own pages (Alipay wap/page) sends the buyer back to the cashier's
/// result page, which forwards to the order's `returnUrl` once paid.
pub async fn pay(
    state: &AppState,
    opened: &Opened,
    channel_id: &ChannelId,
    client_ip: Option<IpAddr>,
    openid: Option<(&str, &str)>,
) -> ServiceResult<PaymentResponse> {
    let mut command = PayCommand::new(opened.order.out_trade_no.to_string(), channel_id.clone())
        .with_client_ip(client_ip);
    if let Some((openid, app_id)) = openid {
        // Got by OAuth under the config's official account: a user of that
        // AppID, also for a store that has its own.
        command = command.with_openid(openid, app_id);
    }
    let back = format!(
        "{}/cashier-desk-web/result?{}",
        state.public_url,
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &opened.order.token)
            .finish()
    );
    payments::pay(state, &opened.app, command.returning_to(back)).await
}

/// The web OAuth that gets a JSAPI payer's openid for a bound channel
/// (WeChat: the config's official account); `None` when the channel has
/// none or the config lacks its credentials (`appSecret`): then JSAPI
/// cannot work in a browser. The secret stays inside the adapter.
pub fn payer_oauth(
    state: &AppState,
    bound: &BoundChannel,
) -> ServiceResult<Option<Arc<dyn PayerOAuth>>> {
    if cashdesk_channels::channel_meta(bound.config.channel_type)
        .and_then(|m| m.payer_oauth)
        .is_none()
    {
        return Ok(None);
    }
    Ok(channel_cache::adapter(state, &bound.config)?.payer_oauth())
}

static LAST_SYNC: LazyLock<Mutex<HashMap<OrderId, Instant>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Whether this process may ask the channel about `order_id` now (and
/// records that it does).
fn may_sync(order_id: &OrderId) -> bool {
    let mut map = LAST_SYNC.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() > 4096 {
        map.retain(|_, at| at.elapsed() < SYNC_EVERY);
    }
    match map.get(order_id) {
        Some(at) if at.elapsed() < SYNC_EVERY => false,
        _ => {
            map.insert(order_id.clone(), Instant::now());
            true
        }
    }
}

/// The order as it stands: a `PAYING` order is asked about at its channel
/// (throttled, see the module comment); a channel that cannot answer
/// leaves the local state, which is logged, not shown.
pub async fn refresh(state: &AppState, order: Order) -> ServiceResult<Order> {
    if order.state != OrderState::Paying
        || order.expire_at <= Utc::now()
        || !may_sync(&order.order_id)
    {
        return Ok(order);
    }
    match payments::sync_if_pending(state, order.clone(), Source::Cashier).await {
        Ok(o) => Ok(o),
        Err(e @ (ServiceError::Internal(_) | ServiceError::Storage(_))) => Err(e),
        Err(e) => {
            tracing::info!(order_id = %order.order_id, error = %e, "cashier: channel query failed; showing the local state");
            Ok(order)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_worth_a_query() {
        assert!(plausible_token("abcDEF012_-"));
        assert!(!plausible_token(""));
        assert!(!plausible_token("a b"));
        assert!(!plausible_token("a%27"));
        assert!(!plausible_token(&"a".repeat(129)));
    }

    #[test]
    fn sync_is_throttled_per_order() {
        let a = OrderId::generate();
        let b = OrderId::generate();
        assert!(may_sync(&a));
        assert!(!may_sync(&a));
        assert!(may_sync(&b));
    }
}
