//! WeChat Pay API v3 (JSON) front end: `/sandbox/wechat/v3/...`.
//!
//! Every request must carry `Authorization: WECHATPAY2-SHA256-RSA2048
//! mchid=…,nonce_str=…,timestamp=…,serial_no=…,signature=…` over
//! `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n` — the path exactly as
//! received, so a merchant signs what it sends, or the same path without
//! the sandbox's mount prefix `/sandbox/wechat` ([`MOUNT_PREFIX`]): SDKs
//! differ when their base URL has a path — wechatpay-java and -go sign the
//! full path they send, wechatpayv3 (Python) signs the canonical `/v3/...`
//! path as at `api.mch.weixin.qq.com` — and both must work — verified with the public key
//! of the merchant certificate whose serial is `serial_no`, timestamp within
//! 300 s. Errors are `{code, message}` with WeChat's HTTP statuses. Every
//! response, errors and 204s included, is signed with the platform key over
//! `TIMESTAMP\nNONCE\nBODY\n` (Wechatpay-Timestamp/Nonce/Signature/Serial).
//!
//! Service providers (服务商) use the partner endpoints
//! (`/v3/pay/partner/transactions/{jsapi|native|h5|app}` with `sp_appid`,
//! `sp_mchid`, `sub_appid`, `sub_mchid`, `payer.sp_openid|sub_openid`;
//! query `?sp_mchid=&sub_mchid=`; close `{sp_mchid, sub_mchid}`) and name
//! `sub_mchid` in refunds (`?sub_mchid=` on the refund query); the
//! sub-merchant must be one of theirs and `sub_appid` its AppID. A service
//! provider cannot use the direct-merchant endpoints, nor a direct
//! merchant the partner ones (403 `NO_AUTH`).
//!
//! Files: this one is the front door (routes, the entry that logs, applies
//! faults, checks the signature and signs the answer); `sign` the
//! signatures both ways; `flows` what each call does to the order book;
//! `wire` reading request bodies and writing transactions and refunds;
//! `bill` the trade bill (apply and download) and `billtext` its text,
//! which v2's `downloadbill` serves too.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::Shared;
use crate::faults::{CallFault, FaultKind};
use crate::ledger::{OrderRef, TradeType};
use crate::pki::Pki;
use crate::reqlog::NewEntry;

mod bill;
pub mod billtext;
mod flows;
mod sign;
mod wire;

pub(crate) use bill::bill_day;
pub(crate) use sign::signature_headers;
pub use sign::{Authorization, MOUNT_PREFIX, parse_authorization};
pub use wire::{refund_json, transaction_json};

use flows::dispatch;
use sign::{signed, verify};
use wire::query_param;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/sandbox/wechat/v3/pay/transactions/jsapi",
            post(create_jsapi),
        )
        .route(
            "/sandbox/wechat/v3/pay/transactions/native",
            post(create_native),
        )
        .route("/sandbox/wechat/v3/pay/transactions/h5", post(create_h5))
        .route("/sandbox/wechat/v3/pay/transactions/app", post(create_app))
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/jsapi",
            post(partner_jsapi),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/native",
            post(partner_native),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/h5",
            post(partner_h5),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/app",
            post(partner_app),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/out-trade-no/{no}",
            get(partner_query_by_out_trade_no),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/id/{id}",
            get(partner_query_by_id),
        )
        .route(
            "/sandbox/wechat/v3/pay/partner/transactions/out-trade-no/{no}/close",
            post(partner_close),
        )
        .route(
            "/sandbox/wechat/v3/pay/transactions/out-trade-no/{no}",
            get(query_by_out_trade_no),
        )
        .route(
            "/sandbox/wechat/v3/pay/transactions/out-trade-no/{no}/close",
            post(close),
        )
        .route(
            "/sandbox/wechat/v3/pay/transactions/id/{id}",
            get(query_by_id),
        )
        .route("/sandbox/wechat/v3/refund/domestic/refunds", post(refund))
        .route(
            "/sandbox/wechat/v3/refund/domestic/refunds/{no}",
            get(refund_query),
        )
        .route("/sandbox/wechat/v3/certificates", get(certificates))
        .route("/sandbox/wechat/v3/bill/tradebill", get(trade_bill))
        .route("/sandbox/wechat/v3/billdownload/file", get(bill::download))
}

#[derive(Debug)]
pub struct V3Error {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> V3Error {
    V3Error {
        status,
        code,
        message: message.into(),
    }
}

fn param(message: impl Into<String>) -> V3Error {
    err(StatusCode::BAD_REQUEST, "PARAM_ERROR", message)
}

fn sign_error(message: impl Into<String>) -> V3Error {
    err(StatusCode::UNAUTHORIZED, "SIGN_ERROR", message)
}

enum Op {
    Create(TradeType, &'static str),
    Query(OrderRef),
    Close(String),
    PartnerCreate(TradeType, &'static str),
    PartnerQuery(OrderRef),
    PartnerClose(String),
    Refund,
    RefundQuery(String),
    Certificates,
    /// `via_tls`: asked on the HTTPS listener (the link then points there).
    TradeBill {
        via_tls: bool,
    },
}

type Outcome = Result<(StatusCode, Option<Value>), V3Error>;

macro_rules! create_handler {
    ($name:ident, $tt:expr, $kind:literal) => {
        async fn $name(
            State(s): State<Arc<Shared>>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            entry(s, Op::Create($tt, $kind), Method::POST, uri, headers, body).await
        }
    };
}
create_handler!(create_jsapi, TradeType::Jsapi, "jsapi");
create_handler!(create_native, TradeType::Native, "native");
create_handler!(create_h5, TradeType::Mweb, "h5");
create_handler!(create_app, TradeType::App, "app");

macro_rules! partner_create_handler {
    ($name:ident, $tt:expr, $kind:literal) => {
        async fn $name(
            State(s): State<Arc<Shared>>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            entry(
                s,
                Op::PartnerCreate($tt, $kind),
                Method::POST,
                uri,
                headers,
                body,
            )
            .await
        }
    };
}
partner_create_handler!(partner_jsapi, TradeType::Jsapi, "jsapi");
partner_create_handler!(partner_native, TradeType::Native, "native");
partner_create_handler!(partner_h5, TradeType::Mweb, "h5");
partner_create_handler!(partner_app, TradeType::App, "app");

async fn partner_query_by_out_trade_no(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(no): Path<String>,
    headers: HeaderMap,
) -> Response {
    let op = Op::PartnerQuery(OrderRef::OutTradeNo(no));
    entry(s, op, Method::GET, uri, headers, Bytes::new()).await
}

async fn partner_query_by_id(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let op = Op::PartnerQuery(OrderRef::TransactionId(id));
    entry(s, op, Method::GET, uri, headers, Bytes::new()).await
}

async fn partner_close(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(no): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(s, Op::PartnerClose(no), Method::POST, uri, headers, body).await
}

async fn query_by_out_trade_no(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(no): Path<String>,
    headers: HeaderMap,
) -> Response {
    entry(
        s,
        Op::Query(OrderRef::OutTradeNo(no)),
        Method::GET,
        uri,
        headers,
        Bytes::new(),
    )
    .await
}

async fn query_by_id(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    entry(
        s,
        Op::Query(OrderRef::TransactionId(id)),
        Method::GET,
        uri,
        headers,
        Bytes::new(),
    )
    .await
}

async fn close(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(no): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(s, Op::Close(no), Method::POST, uri, headers, body).await
}

async fn refund(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(s, Op::Refund, Method::POST, uri, headers, body).await
}

async fn refund_query(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(no): Path<String>,
    headers: HeaderMap,
) -> Response {
    entry(
        s,
        Op::RefundQuery(no),
        Method::GET,
        uri,
        headers,
        Bytes::new(),
    )
    .await
}

async fn certificates(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    entry(s, Op::Certificates, Method::GET, uri, headers, Bytes::new()).await
}

async fn trade_bill(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    ext: axum::http::Extensions,
    headers: HeaderMap,
) -> Response {
    let via_tls = ext
        .get::<axum::extract::ConnectInfo<crate::tls::TlsPeer>>()
        .is_some();
    let op = Op::TradeBill { via_tls };
    entry(s, op, Method::GET, uri, headers, Bytes::new()).await
}

async fn entry(
    s: Arc<Shared>,
    op: Op,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path())
        .to_owned();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(parse_authorization);
    // A partner call is logged (and matched by faults) under the
    // sub-merchant whose order it is.
    let sub_hint = query_param(&uri, "sub_mchid").or_else(|| {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["sub_mchid"].as_str().map(str::to_owned))
    });
    let mch_hint = match &auth {
        Some(Ok(a)) => sub_hint.or_else(|| Some(a.mchid.clone())),
        _ => None,
    };
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let log = |status: StatusCode, result: &str, detail: Option<String>| {
        s.log.push(NewEntry {
            kind: "api",
            method: method.as_str(),
            target: &path_and_query,
            mch_id: mch_hint.as_deref(),
            status: status.as_u16(),
            result,
            detail,
            request_body: Some(&body_text),
        })
    };

    if let Some(fault) = s.faults.take_call(mch_hint.as_deref(), uri.path()) {
        let resp = fault_response(&s.pki, fault).await;
        log(resp.status(), "FAULT", Some(format!("{:?}", fault.kind)));
        return resp;
    }

    let outcome = match auth {
        None => Err(sign_error("缺少Authorization请求头")),
        Some(Err(e)) => Err(e),
        Some(Ok(a)) => match verify(&s, &a, method.as_str(), &path_and_query, &body) {
            Ok(m) => dispatch(&s, &m, op, &uri, &body),
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok((status, value)) => {
            log(status, "SUCCESS", None);
            signed(&s.pki, status, value)
        }
        Err(e) => {
            log(e.status, e.code, Some(e.message.clone()));
            signed(
                &s.pki,
                e.status,
                Some(json!({"code": e.code, "message": e.message})),
            )
        }
    }
}

async fn fault_response(pki: &Pki, fault: CallFault) -> Response {
    match fault.kind {
        FaultKind::SystemError => signed(
            pki,
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(json!({"code": "SYSTEM_ERROR", "message": "系统错误（沙箱故障注入）"})),
        ),
        _ => crate::faults::bare_reply(fault).await,
    }
}
