//! Admin: orders (`?appId=&storeId=&state=&outTradeNo=&limit=&before=`, newest first),
//! one order, and what a person does to it (sync, close, refund:
//! `service::order_actions`).
//! The SDK and the CLI send `cashdesk_api::OrderQuery` (all but `before`);
//! a test in `admin/mod.rs` checks that each of its names is read here.

use axum::extract::{RawQuery, State};
use cashdesk_core::{AppId, OrderId, OrderState, OutTradeNo, Permission, StoreId};
use cashdesk_store::OrderFilter;

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{JsonObject, ListQuery, PathParam};
use crate::service::order_actions::{self, OperatorRefund};
use crate::service::orders;
use crate::state::AppState;
use crate::wire::{OrderView, RefundView};

/// The typed filter of `GET /api/admin/orders`.
pub fn filter(q: &ListQuery) -> ApiResult<OrderFilter> {
    Ok(OrderFilter {
        // The principal's scope, set by the handler.
        app_ids: None,
        app_id: q.get("appId", "is not an app id", |s| AppId::parse(s).ok())?,
        store_id: q.get("storeId", "is not a store id", |s| StoreId::parse(s).ok())?,
        state: q.get("state", "is not an order state", OrderState::parse)?,
        out_trade_no: q.get(
            "outTradeNo",
            "is not an outTradeNo (1 to 32 letters, digits and _-|*)",
            |s| OutTradeNo::parse(s).ok(),
        )?,
        before: q.get("before", "is not an order id", OrderId::parse)?,
        limit: q.limit(50, 500)?,
        ..OrderFilter::default()
    })
}

pub async fn list(
    State(state): State<AppState>,
    by: Principal,
    RawQuery(q): RawQuery,
) -> ApiResult<Success<Vec<OrderView>>> {
    by.require(Permission::OrdersRead)?;
    let mut filter = filter(&ListQuery::parse(q.as_deref()))?;
    filter.app_ids = by.list_scope(filter.app_id.as_ref())?;
    Ok(Success(orders::admin_list(&state, &filter).await?))
}

pub async fn get(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<OrderView>> {
    by.require(Permission::OrdersRead)?;
    let order = orders::admin_get(&state, &id).await?;
    by.scoped(&order.app_id, format!("order {id}"))?;
    Ok(Success(order))
}

/// `POST /api/admin/orders/{id}/sync`: asks the channel about an unpaid
/// order and settles what it says.
pub async fn sync(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<OrderView>> {
    by.require(Permission::OrdersManage)?;
    let order = order_actions::load(&state, &id, &by).await?;
    Ok(Success(order_actions::sync(&state, order, &by).await?))
}

/// `POST /api/admin/orders/{id}/close`: closes an unpaid order (at the
/// channel first); the merchant is told `PAY_CLOSED`.
pub async fn close(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<OrderView>> {
    by.require(Permission::OrdersManage)?;
    let order = order_actions::load(&state, &id, &by).await?;
    Ok(Success(order_actions::close(&state, order, &by).await?))
}

/// `POST /api/admin/orders/{id}/refunds` `{amount, reason?, outRefundNo?}`:
/// refunds a paid order under the app's review rules.
pub async fn refund(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<RefundView>> {
    by.require(Permission::RefundsCreate)?;
    let order = order_actions::load(&state, &id, &by).await?;
    let input = OperatorRefund::parse(&body)?;
    Ok(Success(
        order_actions::refund(&state, order, input, &by).await?,
    ))
}
