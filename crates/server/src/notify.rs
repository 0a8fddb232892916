//! `GET|POST /api/cashier-desk/notify/{configId}`: where channels send
//! their notifications. The handler only turns the HTTP request into an
//! [`IncomingNotification`] (raw bytes: signatures cover them exactly) and
//! the service's answer into the channel's reply; everything else is in
//! [`crate::service::notify`].

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cashdesk_channels::IncomingNotification;

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
        NotifyAnswer::Reply(reply) => {
            let mut resp = Response::new(Body::from(reply.body));
            *resp.status_mut() =
                StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if let Some(ct) = reply.content_type {
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            resp
        }
        NotifyAnswer::UnknownConfig => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "unknown notify target",
        )
            .into_response(),
    }
}
