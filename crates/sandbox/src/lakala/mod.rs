//! Lakala open platform v3 front end: `/sandbox/lakala/api/v3/labs/...`
//! (the credentials' `baseUrl` is `<public_url>/sandbox/lakala`, standing
//! for `https://s2.lakala.com`).
//!
//! Every request is a JSON POST `{"req_time":"yyyyMMddHHmmss","version":"3.0",
//! "req_data":{…}}` with `Authorization: LKLAPI-SHA256withRSA appid="…",
//! serial_no="…",timestamp="…",nonce_str="…",signature="…"` over
//! `appid\nserial_no\ntimestamp\nnonce_str\nbody\n` (raw body bytes),
//! verified with the key of the app's certificate whose serial is
//! `serial_no`, timestamp within 300 s. Every answer is
//! `{"code","msg","resp_time","resp_data"}` with the headers
//! `Lklapi-Appid`, `Lklapi-Serial` (the Lakala certificate's serial),
//! `Lklapi-Timestamp`, `Lklapi-Nonce`, `Lklapi-Signature` over
//! `appid\nserial\ntimestamp\nnonce\nbody\n`, signed with Lakala's platform
//! key (`lklCertPem`). Notifications are signed with a *different* key
//! (`lklNotifyCertPem`): `Authorization: LKLAPI-SHA256withRSA
//! timestamp="…",nonce_str="…",signature="…"` over `timestamp\nnonce_str\nbody\n`,
//! acknowledged by `{"code":"SUCCESS","message":"执行成功"}`.
//!
//! Scenes (`trans_type`): 71 WeChat mini-program (`account_type` WECHAT,
//! `acc_busi_fields.sub_appid` + `user_id` → `acc_resp_fields` with the
//! `wx.requestPayment` parameters `app_id, time_stamp, nonce_str, package,
//! sign_type, pay_sign`, plus `prepay_id`), 51 JSAPI (WECHAT as 71; ALIPAY /
//! UQRCODEPAY with `user_id` → `prepay_id` = the wallet trade number), 41
//! Native (`code` = the payer page), 81 Alipay H5 (`redirect_url` = the
//! payer page, and `form_data`, an HTML form posting to it). `pay_sign` is
//! computed with Lakala's platform key over the v3 mini-program message:
//! the real one comes from WeChat and cannot be checked by the merchant
//! either.
//!
//! Trade states: CREATE (unpaid), SUCCESS, FAIL (`result: FAIL` of the test
//! API), CLOSE (closed or expired), PART_REFUND, REFUND. A refund is itself
//! a trade with its own `out_trade_no` (the refund number); tradequery
//! answers it too (`trade_type` REFUND).
//!
//! A Lakala app transacts for its own `merchant_no`/`term_no` and for its
//! store terminals' (the stores of a chain, opened through the test API
//! with `{"channelType":"lakala","appId":…}`); any other pair is refused
//! (`BBS11009`). The order book, the request log (`mchId`) and faults are
//! keyed by `merchant_no`.
//!
//! # UNCONFIRMED choices (PROTOCOLS.md leaves them open; all here)
//!
//! - Close and refund paths: `/api/v3/labs/relation/close` and
//!   `/api/v3/labs/relation/refund` (as PROTOCOLS.md lists them). There is
//!   no refund-query endpoint: refunds are synchronous (`trade_state`
//!   SUCCESS in the answer) and can be looked up with tradequery by the
//!   refund's `out_trade_no`. No refund notification is sent.
//! - Notifications go out only for successful payments (like WeChat v3);
//!   a failed payment is found by query. Retry schedule: WeChat's
//!   ([`crate::lakala_notify_schedule`]).
//! - Expiry: `acc_busi_fields.timeout_express`, whole minutes (an expired
//!   unpaid trade reads CLOSE; not notified).
//! - `subject` at most 42 bytes ([`SUBJECT_MAX_BYTES`]).
//! - Timestamp window 300 s. Error codes: see [`codes`]; gateway failures
//!   (signature, unknown appid, malformed envelope) answer HTTP 401/400
//!   with those codes, business failures HTTP 200.
//!
//! Files: this one is the front door (routes, the entry that logs, applies
//! faults, checks the signature and signs the answer); `sign` the
//! signatures (requests, answers, notifications); `flows` what each call
//! does to the order book; `wire` reading `req_data` and writing trades
//! and refunds.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::Shared;
use crate::faults::{CallFault, FaultKind};
use crate::pki::Pki;
use crate::reqlog::NewEntry;

mod flows;
mod sign;
mod wire;

pub(crate) use sign::notify_authorization;
pub use wire::trade_state;
pub(crate) use wire::{default_payer, notification_body};

use flows::dispatch;
use sign::{parse_authorization, signed, verify};
use wire::req_data;

/// `subject`: String(42), "at most 42 bytes" (UNCONFIRMED; the adapter's
/// `lakala::choices::SUBJECT_MAX_BYTES` mirrors it).
pub const SUBJECT_MAX_BYTES: usize = 42;

/// The sandbox's Lakala result codes (UNCONFIRMED except `BBS00000`).
pub mod codes {
    pub const SUCCESS: &str = "BBS00000";
    /// System error: the result is unknown, query again (integrators treat
    /// BBS10000 like BBS11112/BBS11105, "processing").
    pub const SYSTEM_ERROR: &str = "BBS10000";
    pub const SIGN_ERROR: &str = "BBS10001";
    pub const PARAM_ERROR: &str = "BBS10002";
    pub const ORDER_NOT_EXIST: &str = "BBS11001";
    pub const OUT_TRADE_NO_USED: &str = "BBS11002";
    pub const ORDER_PAID: &str = "BBS11004";
    pub const ORDER_CLOSED: &str = "BBS11005";
    pub const REFUND_EXCEEDS: &str = "BBS11006";
    pub const TRADE_STATE_ERROR: &str = "BBS11007";
    /// The merchant or terminal number is not the app's (nor one of its
    /// stores').
    pub const MERCHANT_NOT_BOUND: &str = "BBS11009";
}

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/lakala/api/v3/labs/trans/preorder", post(preorder))
        .route(
            "/sandbox/lakala/api/v3/labs/query/tradequery",
            post(tradequery),
        )
        .route("/sandbox/lakala/api/v3/labs/relation/close", post(close))
        .route("/sandbox/lakala/api/v3/labs/relation/refund", post(refund))
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Preorder,
    Query,
    Close,
    Refund,
}

#[derive(Debug)]
struct LklError {
    status: StatusCode,
    code: &'static str,
    msg: String,
}

fn err(code: &'static str, msg: impl Into<String>) -> LklError {
    LklError {
        status: StatusCode::OK,
        code,
        msg: msg.into(),
    }
}

fn param(msg: impl Into<String>) -> LklError {
    err(codes::PARAM_ERROR, msg)
}

fn auth(msg: impl Into<String>) -> LklError {
    LklError {
        status: StatusCode::UNAUTHORIZED,
        code: codes::SIGN_ERROR,
        msg: msg.into(),
    }
}

macro_rules! handler {
    ($name:ident, $op:expr) => {
        async fn $name(
            State(s): State<Arc<Shared>>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            entry(s, $op, uri.path(), &headers, &body).await
        }
    };
}
handler!(preorder, Op::Preorder);
handler!(tradequery, Op::Query);
handler!(close, Op::Close);
handler!(refund, Op::Refund);

fn envelope(code: &str, msg: &str, data: Option<Value>, now: DateTime<Utc>) -> Value {
    json!({
        "code": code,
        "msg": msg,
        "resp_time": cashdesk_core::time::to_compact(now),
        "resp_data": data.unwrap_or(Value::Null),
    })
}

async fn entry(s: Arc<Shared>, op: Op, path: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let mch_hint = parsed
        .as_ref()
        .and_then(|v| v["req_data"]["merchant_no"].as_str())
        .map(str::to_owned);
    let auth_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(parse_authorization);
    let appid = match &auth_header {
        Some(Ok(a)) => a.appid.clone(),
        _ => String::new(),
    };
    let body_text = String::from_utf8_lossy(body).into_owned();
    let log = |status: StatusCode, result: &str, detail: Option<String>| {
        s.log.push(NewEntry {
            kind: "api",
            method: "POST",
            target: path,
            mch_id: mch_hint.as_deref(),
            status: status.as_u16(),
            result,
            detail,
            request_body: Some(&body_text),
        })
    };

    if let Some(fault) = s.faults.take_call(mch_hint.as_deref(), path) {
        let resp = fault_response(&s.pki, &appid, fault).await;
        log(resp.status(), "FAULT", Some(format!("{:?}", fault.kind)));
        return resp;
    }

    let now = s.now();
    let outcome = match auth_header {
        None => Err(auth("缺少Authorization请求头")),
        Some(Err(e)) => Err(e),
        Some(Ok(a)) => verify(&s, &a, body).and_then(|m| {
            let data = req_data(parsed.as_ref())?;
            dispatch(&s, &m, op, data, now)
        }),
    };
    match outcome {
        Ok(data) => {
            log(StatusCode::OK, "SUCCESS", None);
            signed(
                &s.pki,
                &appid,
                StatusCode::OK,
                &envelope(codes::SUCCESS, "成功", Some(Value::Object(data)), now),
            )
        }
        Err(e) => {
            log(e.status, e.code, Some(e.msg.clone()));
            signed(
                &s.pki,
                &appid,
                e.status,
                &envelope(e.code, &e.msg, None, now),
            )
        }
    }
}

async fn fault_response(pki: &Pki, appid: &str, fault: CallFault) -> Response {
    match fault.kind {
        FaultKind::SystemError => signed(
            pki,
            appid,
            StatusCode::OK,
            &envelope(
                codes::SYSTEM_ERROR,
                "系统异常，请稍后重试（沙箱故障注入）",
                None,
                Utc::now(),
            ),
        ),
        _ => crate::faults::bare_reply(fault).await,
    }
}
