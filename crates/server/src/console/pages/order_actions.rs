//! What a person does to one order from its page: sync it with the
//! channel, close it, refund it (`service::order_actions`, the operator
//! API's paths, audited as the signed-in account). Each answers with the
//! order's page and a message.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use cashdesk_core::{Fen, Permission};
use cashdesk_store::Order;
use serde_json::Map;

use crate::console::BASE;
use crate::console::layout::{Ctx, PageResult};
use crate::service::error::ServiceError;
use crate::service::order_actions::{self, OperatorRefund};
use crate::state::AppState;

/// The order, if the principal sees it (else the 404 page, the same for
/// an unknown order and another app's).
async fn load(ctx: &Ctx, state: &AppState, id: &str) -> Result<Order, axum::response::Response> {
    order_actions::load(state, id, &ctx.session.principal)
        .await
        .map_err(|e| ctx.fail(&e))
}

fn back(id: &str) -> String {
    format!("{BASE}/orders/{id}")
}

/// `POST /console/orders/{id}/sync`: asks the channel about an unpaid
/// order and shows what it said.
pub async fn sync(ctx: Ctx, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    ctx.require(Permission::OrdersManage)?;
    let order = load(&ctx, &state, &id).await?;
    let result = order_actions::sync(&state, order, &ctx.session.principal).await;
    Ok(ctx.done(&back(&id), result, ctx.t().synced))
}

/// `POST /console/orders/{id}/close`.
pub async fn close(ctx: Ctx, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    ctx.require(Permission::OrdersManage)?;
    let order = load(&ctx, &state, &id).await?;
    let result = order_actions::close(&state, order, &ctx.session.principal).await;
    Ok(ctx.done(&back(&id), result, ctx.t().closed))
}

/// `POST /console/orders/{id}/refund` `amount` (yuan), `reason`,
/// `outRefundNo` (put in the form when it was shown).
pub async fn refund(
    ctx: Ctx,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    ctx.require(Permission::RefundsCreate)?;
    let order = load(&ctx, &state, &id).await?;
    let result = match refund_input(&form) {
        Ok(input) => order_actions::refund(&state, order, input, &ctx.session.principal).await,
        Err(e) => Err(e),
    };
    Ok(ctx.done(&back(&id), result, ctx.t().refund_asked))
}

/// The form as an [`OperatorRefund`] (the operator API's checks); the
/// amount is in yuan, as people type it (`12.5`, `12.50`).
fn refund_input(form: &HashMap<String, String>) -> Result<OperatorRefund, ServiceError> {
    let field = |k: &str| form.get(k).map(|s| s.trim()).unwrap_or_default();
    let amount = Fen::from_yuan("amount", field("amount"))?;
    let mut body = Map::new();
    body.insert("amount".to_owned(), amount.get().into());
    for k in ["reason", "outRefundNo"] {
        body.insert(k.to_owned(), field(k).into());
    }
    OperatorRefund::parse(&body)
}
