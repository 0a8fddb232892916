//! The shop's HTTP routes. Answers are plain JSON; errors are
//! `{"code": "OUT_OF_STOCK", "message": "…"}` with a fitting status.
//!
//! | route | what |
//! |---|---|
//! | `GET /goods` | goods with `stock`, `reserved`, `available` |
//! | `POST /buy-now {userId, goodsId, qty, openid?}` | the order (new or reused), `payData`, `cashierUrl` |
//! | `GET /orders/{id}` | the order; what the mini-program polls |
//! | `POST /orders/{id}/cancel` | closes a pending order at cashdesk, stock back |
//! | `POST /orders/{id}/refund-application` | `{amount?, reason, buyerRemark?}` → cashdesk's refund application (a `PAID` order) |
//! | `GET /orders/{id}/refund-application` | the application as cashdesk has it |
//! | `POST /orders/{id}/refund-application/approve\|reject` | `{remark?}`: the shop's staff decide |
//! | `POST /cashdesk/notify` | cashdesk's signed notifications |

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::AppState;
use crate::db::PENDING;
use crate::orders::{self, BuyNow, ShopError};

/// The path cashdesk's notifications are addressed to.
pub const NOTIFY_PATH: &str = "/cashdesk/notify";

pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/goods", get(list_goods))
        .route("/buy-now", post(buy_now))
        .route("/orders/{id}", get(order))
        .route("/orders/{id}/cancel", post(cancel))
        .route(
            "/orders/{id}/refund-application",
            post(refund_application).get(refund_application_get),
        )
        .route(
            "/orders/{id}/refund-application/{what}",
            post(refund_application_decide),
        )
        .route(NOTIFY_PATH, post(notify))
        .with_state(state)
}

impl IntoResponse for ShopError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ShopError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            ShopError::UnknownGoods => (StatusCode::NOT_FOUND, "UNKNOWN_GOODS"),
            ShopError::UnknownOrder => (StatusCode::NOT_FOUND, "UNKNOWN_ORDER"),
            ShopError::OutOfStock { .. } => (StatusCode::CONFLICT, "OUT_OF_STOCK"),
            ShopError::PendingOrder { .. } => (StatusCode::CONFLICT, "PENDING_ORDER"),
            ShopError::State(_) => (StatusCode::CONFLICT, "STATE"),
            // cashdesk refused what was asked (a decided application, an
            // amount over what is left): its status, passed on.
            ShopError::Gateway(cashdesk_sdk::SdkError::Api { status, .. })
                if (400..500).contains(status) =>
            {
                (
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::CONFLICT),
                    "REFUSED",
                )
            }
            ShopError::Gateway(_) => (StatusCode::BAD_GATEWAY, "GATEWAY"),
            ShopError::Db(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        let message = match &self {
            ShopError::Db(e) => {
                tracing::error!(error = %e, "database");
                "internal error".to_owned()
            }
            ShopError::Gateway(e) => {
                tracing::warn!(error = %e, "cashdesk");
                self.to_string()
            }
            _ => self.to_string(),
        };
        let mut body = json!({"code": code, "message": message});
        if let ShopError::PendingOrder { order_id, .. } = &self {
            body["orderId"] = json!(order_id);
        }
        (status, Json(body)).into_response()
    }
}

async fn list_goods(State(state): State<AppState>) -> Result<Response, ShopError> {
    let goods = state.db.list_goods().await?;
    let list: Vec<_> = goods
        .iter()
        .map(|g| {
            let mut v = json!(g);
            v["available"] = json!(g.available());
            v
        })
        .collect();
    Ok(Json(list).into_response())
}

async fn buy_now(State(state): State<AppState>, body: Bytes) -> Result<Response, ShopError> {
    let req: BuyNow =
        serde_json::from_slice(&body).map_err(|e| ShopError::BadRequest(format!("body: {e}")))?;
    let bought = orders::buy_now(&state, &req).await?;
    Ok(Json(bought).into_response())
}

async fn order(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ShopError> {
    let order = state.db.order(&id).await?.ok_or(ShopError::UnknownOrder)?;
    Ok(Json(order).into_response())
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ShopError> {
    let order = state.db.order(&id).await?.ok_or(ShopError::UnknownOrder)?;
    if order.state != PENDING {
        return Err(ShopError::State(order.state));
    }
    let order = orders::close(&state, &order).await?;
    Ok(Json(order).into_response())
}

async fn refund_application(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(ask): Json<crate::refunds::Ask>,
) -> Result<Response, ShopError> {
    Ok(Json(crate::refunds::apply(&state, &id, ask).await?).into_response())
}

async fn refund_application_get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ShopError> {
    Ok(Json(crate::refunds::get(&state, &id).await?).into_response())
}

/// The staff's decision `{remark?}`.
#[derive(Debug, Default, serde::Deserialize)]
struct Decision {
    remark: Option<String>,
}

async fn refund_application_decide(
    State(state): State<AppState>,
    Path((id, what)): Path<(String, String)>,
    Json(d): Json<Decision>,
) -> Result<Response, ShopError> {
    let approve = match what.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ShopError::BadRequest("approve or reject".into())),
    };
    let v = crate::refunds::decide(&state, &id, approve, d.remark.as_deref()).await?;
    Ok(Json(v).into_response())
}

/// cashdesk's notification: verified over the exact bytes and the notify
/// URL as it was given to cashdesk, before anything is read. Acknowledged
/// with `{"code":1000,…}` (docs/api.md "Acknowledgement") once applied or
/// known; anything else is an error status, so cashdesk retries.
async fn notify(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let n = match cashdesk_sdk::verify_notification(
        &state.verifier,
        &state.notify_url,
        &headers,
        &body,
    ) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "notification refused");
            let body = json!({"code": "BAD_SIGNATURE", "message": "notification refused"});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    };
    match orders::on_notification(&state, &n).await {
        Ok(notice) => {
            tracing::info!(notify_id = %n.notify_id, notify_type = %n.notify_type,
                order_id = %n.out_trade_no, ?notice, "notification");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                cashdesk_sdk::NOTIFICATION_ACK_BODY,
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!(notify_id = %n.notify_id, error = %e, "notification not applied");
            e.into_response()
        }
    }
}
