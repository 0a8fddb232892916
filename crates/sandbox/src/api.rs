//! The sandbox's own test API (`/sandbox/api/*`), shared by every channel
//! simulator (`channelType` picks one: `wx-pay`, `ali-pay`, `lakala`):
//!
//! - `POST /sandbox/api/merchants` `{"channelType":"wx-pay","signType"?:"MD5"|"HMAC-SHA256"}`
//!   → 201 with [`MerchantCredentials`](crate::MerchantCredentials);
//!   `{"channelType":"ali-pay"}` → [`AlipayMerchantCredentials`](crate::AlipayMerchantCredentials);
//!   `{"channelType":"lakala"}` → [`LakalaMerchantCredentials`](crate::LakalaMerchantCredentials);
//!   for chains and service providers (the `identity` in each answer is
//!   what a cashdesk store takes at the config of the parent):
//!   `{"channelType":"wx-pay","serviceProvider":true}` → a service
//!   provider's [`MerchantCredentials`](crate::MerchantCredentials)
//!   (`serviceProvider: true`), `{"channelType":"wx-pay","spMchId":"…"}` →
//!   one of its sub-merchants, [`SubMerchantCredentials`](crate::SubMerchantCredentials);
//!   `{"channelType":"lakala","appId":"OP…"}` → a store terminal of that app,
//!   [`LakalaStoreCredentials`](crate::LakalaStoreCredentials);
//!   `{"channelType":"ali-pay","isvAppId":"…"}` → a new merchant that
//!   authorized that app, with its `app_auth_token`,
//!   [`AlipayAuthCredentials`](crate::AlipayAuthCredentials);
//! - `POST /sandbox/api/pay` `{"channelType","outTradeNo","result":"SUCCESS"|"FAIL","mchId"?,"openid"?}`
//!   → 200 `{mchId, outTradeNo, tradeState, transactionId?, notified}`
//!   (`tradeState` in the channel's own words: WeChat's trade_state,
//!   Alipay's trade_status, Lakala's trade_state; `transactionId` is
//!   Alipay's or Lakala's `trade_no`); 404 unknown order, 409 already
//!   paid/closed or ambiguous (then pass `mchId`). An Alipay wap, page or app
//!   order exists at Alipay only once the buyer opens it: pass its signed
//!   URL or order string as `orderString` (instead of `outTradeNo`) and the
//!   sandbox submits it as the browser or wallet would, then pays.
//!   Alipay has no failed payment: `FAIL` closes the trade (TRADE_CLOSED,
//!   notified); for Lakala it marks the trade FAIL (not notified);
//! - `POST /sandbox/api/faults` (see [`crate::faults`]) → 201 the fault;
//!   `GET` lists active faults, `DELETE` clears them;
//! - `GET /sandbox/api/requests?mchId=&kind=api|notify|payer&limit=` → `{"requests":[…]}`.
//!
//! Errors are `{"code","message"}`. This API has no authentication: it is a
//! test harness, and the server mounts the sandbox only when configured to.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cashdesk_crypto::wxv2::WxSignType;
use serde::Deserialize;
use serde_json::json;

use crate::Shared;
use crate::faults::FaultRequest;
use crate::ledger::LedgerError;
use crate::v3::plain_error;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/api/merchants", post(open_merchant))
        .route("/sandbox/api/pay", post(pay))
        .route(
            "/sandbox/api/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/sandbox/api/requests", get(requests))
}

fn bad_request(message: impl Into<String>) -> Response {
    plain_error(StatusCode::BAD_REQUEST, "PARAM_ERROR", message)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|e| Box::new(bad_request(format!("invalid JSON body: {e}"))))
}

fn check_channel(channel_type: &str) -> Result<(), Box<Response>> {
    if crate::faults::CHANNEL_TYPES.contains(&channel_type) {
        Ok(())
    } else {
        Err(Box::new(bad_request(format!(
            "unsupported channelType `{channel_type}` (this sandbox simulates wx-pay, ali-pay and lakala)"
        ))))
    }
}

fn open_failed(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "opening a sandbox merchant failed");
    plain_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "SYSTEM_ERROR",
        "could not open a sandbox merchant",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OpenMerchant {
    channel_type: String,
    sign_type: Option<String>,
    /// wx-pay: open a service provider.
    #[serde(default)]
    service_provider: bool,
    /// wx-pay: open a sub-merchant of this service provider.
    sp_mch_id: Option<String>,
    /// lakala: open a store terminal of this app.
    app_id: Option<String>,
    /// ali-pay: open a merchant that authorizes this app.
    isv_app_id: Option<String>,
}

/// The parent-scoped openings: a sub-merchant, a store terminal, an app
/// authorization. `None` when the request opens a top-level merchant.
async fn open_child(s: &Arc<Shared>, req: &OpenMerchant) -> Option<Response> {
    let misplaced = |field: &str, channel: &str| {
        Some(bad_request(format!("{field} only applies to {channel}")))
    };
    if req.sp_mch_id.is_some() && req.channel_type != "wx-pay" {
        return misplaced("spMchId", "wx-pay");
    }
    if req.service_provider && req.channel_type != "wx-pay" {
        return misplaced("serviceProvider", "wx-pay");
    }
    if req.app_id.is_some() && req.channel_type != "lakala" {
        return misplaced("appId", "lakala");
    }
    if req.isv_app_id.is_some() && req.channel_type != "ali-pay" {
        return misplaced("isvAppId", "ali-pay");
    }
    if req.sp_mch_id.is_some() && (req.service_provider || req.sign_type.is_some()) {
        return Some(bad_request(
            "a sub-merchant has no keys: spMchId goes without serviceProvider and signType",
        ));
    }
    let shared = s.clone();
    let (sp, app, isv) = (
        req.sp_mch_id.clone(),
        req.app_id.clone(),
        req.isv_app_id.clone(),
    );
    if sp.is_none() && app.is_none() && isv.is_none() {
        return None;
    }
    let opened = tokio::task::spawn_blocking(move || -> anyhow::Result<serde_json::Value> {
        if let Some(sp) = sp {
            return Ok(serde_json::to_value(
                shared.merchants.open_sub_merchant(&sp)?,
            )?);
        }
        if let Some(app) = app {
            return Ok(serde_json::to_value(
                shared.merchants.open_lakala_store(&app)?,
            )?);
        }
        let isv = isv.unwrap_or_default();
        Ok(serde_json::to_value(
            shared.merchants.open_alipay_authorized(&shared.pki, &isv)?,
        )?)
    })
    .await;
    Some(match opened {
        Ok(Ok(v)) => (StatusCode::CREATED, axum::Json(v)).into_response(),
        // The parent does not exist (or is not a service provider): the
        // caller's mistake, said plainly.
        Ok(Err(e)) => plain_error(StatusCode::NOT_FOUND, "PARENT_NOT_FOUND", format!("{e:#}")),
        Err(e) => open_failed(anyhow::anyhow!("opening task failed: {e}")),
    })
}

async fn open_merchant(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: OpenMerchant = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if let Err(resp) = check_channel(&req.channel_type) {
        return *resp;
    }
    if let Some(resp) = open_child(&s, &req).await {
        return resp;
    }
    if req.channel_type != "wx-pay" {
        if req.sign_type.is_some() {
            return bad_request("signType only applies to wx-pay");
        }
        let shared = s.clone();
        let lakala = req.channel_type == "lakala";
        let opened = tokio::task::spawn_blocking(move || {
            if lakala {
                shared
                    .open_lakala_blocking()
                    .and_then(|c| Ok(serde_json::to_value(c)?))
            } else {
                shared
                    .open_alipay_blocking()
                    .and_then(|c| Ok(serde_json::to_value(c)?))
            }
        })
        .await;
        return match opened {
            Ok(Ok(v)) => (StatusCode::CREATED, axum::Json(v)).into_response(),
            Ok(Err(e)) => open_failed(e),
            Err(e) => open_failed(anyhow::anyhow!("opening task failed: {e}")),
        };
    }
    let sign_type = match req.sign_type.as_deref() {
        None => WxSignType::Md5,
        Some(t) => match WxSignType::parse(t) {
            Some(t) => t,
            None => return bad_request("signType must be MD5 or HMAC-SHA256"),
        },
    };
    match s
        .clone()
        .open_merchant(sign_type, req.service_provider)
        .await
    {
        Ok(creds) => (StatusCode::CREATED, axum::Json(creds)).into_response(),
        Err(e) => open_failed(e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PayRequest {
    channel_type: String,
    out_trade_no: Option<String>,
    result: String,
    mch_id: Option<String>,
    openid: Option<String>,
    /// ali-pay only: a signed wap/page/app order string (or URL) to submit first.
    order_string: Option<String>,
}

async fn pay(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: PayRequest = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if let Err(resp) = check_channel(&req.channel_type) {
        return *resp;
    }
    let success = match req.result.as_str() {
        "SUCCESS" => true,
        "FAIL" => false,
        _ => return bad_request("result must be SUCCESS or FAIL"),
    };
    let out_trade_no = match (&req.order_string, &req.out_trade_no) {
        (Some(os), _) if req.channel_type == "ali-pay" => {
            match crate::alipay::submit_order_string(&s, os) {
                Ok(o) => o.out_trade_no,
                Err(msg) => return bad_request(format!("orderString refused: {msg}")),
            }
        }
        (Some(_), _) => return bad_request("orderString only applies to ali-pay"),
        (None, Some(no)) => no.clone(),
        (None, None) => return bad_request("outTradeNo is required"),
    };
    let mut candidates = s.ledger.find_any(&out_trade_no);
    candidates.retain(|o| o.api.channel_type() == req.channel_type);
    if let Some(m) = &req.mch_id {
        candidates.retain(|o| &o.mch_id == m);
    }
    let order = match candidates.len() {
        0 => {
            return plain_error(
                StatusCode::NOT_FOUND,
                "ORDER_NOT_EXIST",
                "no sandbox order has this outTradeNo",
            );
        }
        1 => candidates.remove(0),
        _ => {
            return plain_error(
                StatusCode::CONFLICT,
                "AMBIGUOUS",
                "several sandbox merchants have an order with this outTradeNo; pass mchId",
            );
        }
    };
    match s.pay(
        &order.mch_id,
        &order.out_trade_no,
        success,
        req.openid,
        "api",
    ) {
        Ok(paid) => {
            let now = chrono::Utc::now();
            let trade_state = match paid.api {
                crate::ledger::Api::Alipay => crate::alipay::trade_status(&paid, now),
                crate::ledger::Api::Lakala => crate::lakala::trade_state(&paid, now),
                _ => paid.trade_state(now),
            };
            let mut v = json!({
                "mchId": paid.mch_id,
                "outTradeNo": paid.out_trade_no,
                "tradeState": trade_state,
                "notified": paid.notify_url,
            });
            if let Some((transaction_id, _, _)) = paid.paid() {
                v["transactionId"] = json!(transaction_id);
            }
            (StatusCode::OK, axum::Json(v)).into_response()
        }
        Err(LedgerError::OrderPaid) => plain_error(
            StatusCode::CONFLICT,
            "ORDERPAID",
            "the order is already paid",
        ),
        Err(LedgerError::OrderClosed) => plain_error(
            StatusCode::CONFLICT,
            "ORDERCLOSED",
            "the order is closed, expired or failed and cannot be paid",
        ),
        Err(e) => plain_error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", e.to_string()),
    }
}

async fn add_fault(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: FaultRequest = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match s.faults.add(req) {
        Ok(f) => (StatusCode::CREATED, axum::Json(f)).into_response(),
        Err(msg) => bad_request(msg),
    }
}

async fn list_faults(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(json!({"faults": s.faults.list()})).into_response()
}

async fn clear_faults(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(json!({"cleared": s.faults.clear()})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestsQuery {
    mch_id: Option<String>,
    kind: Option<String>,
    limit: Option<usize>,
}

async fn requests(State(s): State<Arc<Shared>>, Query(q): Query<RequestsQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).min(1000);
    axum::Json(json!({"requests": s.log.list(q.mch_id.as_deref(), q.kind.as_deref(), limit)}))
        .into_response()
}
