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
//! - `POST /sandbox/api/clock` `{"offsetSeconds": n}` moves the sandbox's
//!   clock to the real time plus `n` seconds (at most 400 days either way;
//!   0 puts it back) and `GET` reads it: 200 `{"now","offsetSeconds"}`.
//!   The order book and the bills go by it ([`crate::clock`]): move it
//!   back a day, make and pay orders, move it back to now, and they are
//!   yesterday's bill;
//! - `GET /sandbox/api/requests?mchId=&kind=api|notify|payer&limit=` → `{"requests":[…]}`
//!   (status, result and latency of every attempt; never what a notified
//!   server answered, see [`crate::reqlog`]);
//! - `GET /sandbox/api/subscribe/messages?appId=&openid=&limit=` and
//!   `GET /sandbox/api/subscribe/templates`: the mini-programs' received
//!   subscribe messages and their templates (served by [`crate::subscribe`]).
//!
//! Errors are `{"code","message"}`.
//!
//! # Exposure
//!
//! This API has no credentials of its own: it is a test harness, like the
//! channels' own sandboxes, and the host decides who reaches it (`cashdesk
//! serve` mounts it only in sandbox mode). What anyone who reaches it can
//! do is bounded:
//!
//! - opening merchants is rate-limited ([`MerchantQuota`]: per client
//!   address — IPv6 per /64, the TCP peer, never a forwarded-for header —
//!   and in all; 429 `FREQUENCY_LIMITED` with `Retry-After`), capped in
//!   number ([`crate::SandboxConfig::max_merchants`], 403
//!   `MERCHANT_LIMIT`), and the RSA key generation it costs runs on the
//!   blocking pool, [`KEYGEN_PERMITS`] at a time; a merchant is one
//!   appended journal line, not a rewrite ([`crate::merchants`]);
//! - orders notify only allowed targets ([`crate::targets`]), and the
//!   order book, the faults, the request log and the OAuth codes are
//!   bounded in size.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{Extensions, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cashdesk_crypto::wxv2::WxSignType;
use serde::Deserialize;
use serde_json::json;

use crate::Shared;
use crate::faults::FaultRequest;
use crate::ledger::LedgerError;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/api/merchants", post(open_merchant))
        .route("/sandbox/api/pay", post(pay))
        .route(
            "/sandbox/api/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/sandbox/api/requests", get(requests))
        .route("/sandbox/api/clock", get(clock).post(set_clock))
}

/// How fast the test API opens merchants (each costs an RSA key pair).
/// `0` turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerchantQuota {
    /// Openings per minute from one client address (IPv6: one /64),
    /// as a burst that refills evenly over the minute.
    pub per_ip_per_minute: u32,
    /// Openings per minute from everyone together.
    pub per_minute: u32,
}

impl Default for MerchantQuota {
    /// 20 per address and 60 in all per minute.
    fn default() -> Self {
        Self {
            per_ip_per_minute: 20,
            per_minute: 60,
        }
    }
}

/// Key generations (RSA-2048) running at once; more callers wait.
pub const KEYGEN_PERMITS: usize = 2;

/// Client addresses the per-address limiter tracks at most; past it
/// (after dropping those whose quota is full again) openings are refused
/// for a minute.
const MAX_TRACKED_CLIENTS: usize = 65_536;

/// The merchant-opening quota and the key-generation permits.
pub struct MerchantGate {
    per_ip: Option<governor::DefaultKeyedRateLimiter<IpAddr>>,
    global: Option<governor::DefaultDirectRateLimiter>,
    keygen: tokio::sync::Semaphore,
}

impl MerchantGate {
    pub fn new(q: &MerchantQuota) -> anyhow::Result<Self> {
        let quota = |n: u32| NonZeroU32::new(n).map(governor::Quota::per_minute);
        Ok(Self {
            per_ip: quota(q.per_ip_per_minute).map(governor::RateLimiter::keyed),
            global: quota(q.per_minute).map(governor::RateLimiter::direct),
            keygen: tokio::sync::Semaphore::new(KEYGEN_PERMITS),
        })
    }

    /// Take one opening for `client` (`None`: the host passed no peer
    /// address; all such callers share one quota). `Err`: how long to wait.
    fn admit(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        use governor::clock::Clock as _;
        if let Some(limiter) = &self.per_ip {
            if limiter.len() >= MAX_TRACKED_CLIENTS / 2 {
                limiter.retain_recent();
            }
            if limiter.len() >= MAX_TRACKED_CLIENTS {
                return Err(Duration::from_secs(60));
            }
            let key = client.map(client_key).unwrap_or(IpAddr::from([0u8; 4]));
            if let Err(not_until) = limiter.check_key(&key) {
                return Err(not_until.wait_time_from(limiter.clock().now()));
            }
        }
        if let Some(limiter) = &self.global
            && let Err(not_until) = limiter.check()
        {
            return Err(not_until.wait_time_from(limiter.clock().now()));
        }
        Ok(())
    }

    /// Run a key generation on the blocking pool, at most
    /// [`KEYGEN_PERMITS`] at a time.
    pub(crate) async fn keygen<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self
            .keygen
            .acquire()
            .await
            .map_err(|_| anyhow::anyhow!("the key generation permits are closed"))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| anyhow::anyhow!("key generation task failed: {e}"))?
    }
}

/// The quota key of a client address: IPv4 as is, IPv6 by its /64 (one
/// host usually has a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::from(segments)
            }
        },
    }
}

/// The TCP peer of a request, from whichever listener served it.
fn peer_ip(ext: &Extensions) -> Option<IpAddr> {
    ext.get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| {
            ext.get::<ConnectInfo<crate::tls::TlsPeer>>()
                .map(|c| c.0.remote.ip())
        })
}

fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut resp = plain_error(
        StatusCode::TOO_MANY_REQUESTS,
        "FREQUENCY_LIMITED",
        format!("too many sandbox merchants opened; retry in {secs} s"),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
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
    let opened = s
        .merchant_gate
        .keygen(move || -> anyhow::Result<serde_json::Value> {
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
        Ok(v) => (StatusCode::CREATED, axum::Json(v)).into_response(),
        // The parent does not exist (or is not a service provider): the
        // caller's mistake, said plainly.
        Err(e) => plain_error(StatusCode::NOT_FOUND, "PARENT_NOT_FOUND", format!("{e:#}")),
    })
}

async fn open_merchant(State(s): State<Arc<Shared>>, ext: Extensions, body: Bytes) -> Response {
    let req: OpenMerchant = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if let Err(resp) = check_channel(&req.channel_type) {
        return *resp;
    }
    if let Err(wait) = s.merchant_gate.admit(peer_ip(&ext)) {
        return too_many(wait);
    }
    if s.merchants.count() >= s.max_merchants {
        return plain_error(
            StatusCode::FORBIDDEN,
            "MERCHANT_LIMIT",
            format!(
                "this sandbox already holds {} merchants, its maximum (its operator can raise it, or start over with an empty data folder)",
                s.max_merchants
            ),
        );
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
        let opened = s
            .merchant_gate
            .keygen(move || {
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
            Ok(v) => (StatusCode::CREATED, axum::Json(v)).into_response(),
            Err(e) => open_failed(e),
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
                format!(
                    "no {} order at this sandbox has the out_trade_no `{out_trade_no}`. outTradeNo here is the channel's out_trade_no: for an order made through cashdesk that is cashdesk's orderId (the `P…` id in the order answer), not the merchant's own outTradeNo",
                    req.channel_type
                ),
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
            let now = s.now();
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetClock {
    offset_seconds: i64,
}

fn clock_json(s: &Shared) -> Response {
    axum::Json(json!({
        "now": cashdesk_core::time::to_rfc3339_cn(s.now()),
        "offsetSeconds": s.clock.offset().num_seconds(),
    }))
    .into_response()
}

async fn clock(State(s): State<Arc<Shared>>) -> Response {
    clock_json(&s)
}

async fn set_clock(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: SetClock = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let offset = chrono::TimeDelta::try_seconds(req.offset_seconds)
        .ok_or_else(|| "offsetSeconds is out of range".to_owned())
        .and_then(|d| s.clock.set_offset(d));
    match offset {
        Ok(()) => clock_json(&s),
        Err(msg) => bad_request(msg),
    }
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

/// A JSON error in the v3 style, `{code, message}`, unsigned: the test API
/// is the sandbox's own, not part of any channel's protocol.
pub(crate) fn plain_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message.into()})),
    )
        .into_response()
}
