//! `GET|POST /api/cashier-desk/notify/{configId}`: where channels send
//! their notifications. The handler only turns the HTTP request into an
//! [`IncomingNotification`] (raw bytes: signatures cover them exactly) and
//! the service's answer into the channel's reply; everything else is in
//! [`crate::service::notify`].
//!
//! The per-address rate limit of the public surfaces applies here, before
//! anything is read or verified: a refused notification gets `429` with
//! `Retry-After` and the channel's own failure reply (WeChat v2 `FAIL`
//! XML, v3 `{"code":"FAIL"}`, Alipay `fail`, Lakala's JSON), so the
//! channel retries later as after any failure. The reply's format comes
//! from the config's adapter when it is already built; otherwise (no
//! database read for a refused request) a plain-text 429.

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cashdesk_channels::{IncomingNotification, NotificationReply};
use cashdesk_core::ConfigId;

use crate::edge::client_ip;
use crate::edge::ratelimit::{Refused, refuse_logged};
use crate::input::{PathParam, read_body};
use crate::service::notify::{self, NotifyAnswer};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/cashier-desk/notify/{config_id}",
        get(receive).post(receive),
    )
}

async fn receive(
    State(state): State<AppState>,
    PathParam(config_id): PathParam,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    if let Some(ip) = client_ip::of(&req)
        && let Err(refused) = state.edge.limits.public(ip)
    {
        return rate_limited(&state, &config_id, &ip.to_string(), refused);
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(body, state.config.body_limit_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let incoming = IncomingNotification {
        method: parts.method.as_str().to_owned(),
        headers,
        query,
        body: body.to_vec(),
    };
    match notify::handle(&state, &config_id, incoming).await {
        NotifyAnswer::Reply(reply) => reply_response(reply),
        NotifyAnswer::UnknownConfig => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "unknown notify target",
        )
            .into_response(),
    }
}

fn reply_response(reply: NotificationReply) -> Response {
    let mut resp = Response::new(Body::from(reply.body));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = reply.content_type {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    resp
}

/// 429 in the channel's failure format when its adapter is at hand.
fn rate_limited(state: &AppState, config_id: &str, client: &str, refused: Refused) -> Response {
    refuse_logged(state, "notify", client);
    let adapter = ConfigId::parse(config_id).and_then(|id| state.channels.cached(&id));
    let mut resp = match adapter {
        Some(adapter) => {
            state
                .metrics
                .channel_notification(adapter.channel_type().as_str(), "rate_limited");
            reply_response(adapter.notification_reply(false))
        }
        None => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "too many requests",
        )
            .into_response(),
    };
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    resp.headers_mut()
        .insert(header::RETRY_AFTER, refused.seconds().into());
    resp
}
