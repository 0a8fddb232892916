//! The buyer-facing web surface under `/cashier-desk-web`: the cashier
//! page a merchant sends its buyer to (`cashierUrl`), the pages each way
//! to pay needs, the result pages, and the Native QR code image.
//!
//! | route | what |
//! |---|---|
//! | `GET  /cashier-desk-web/payment?token=` | the cashier page (or the order's result) |
//! | `POST /cashier-desk-web/payment` `token, channelId` | choose a channel: redirect (H5/WAP), QR page (Native), WeChat OAuth (JSAPI), or a QR of this page (phone-only channel on a computer) |
//! | `GET  /cashier-desk-web/wechat-oauth?token=&channelId=&code=&state=` | back from WeChat OAuth: openid → JSAPI bridge page |
//! | `GET  /cashier-desk-web/payment/status?token=` | `{state, final, resultUrl}` for the page's poll |
//! | `GET  /cashier-desk-web/result?token=` | paid / failed / closed / expired / still waiting |
//! | `GET  /cashier-desk-web/payment/page-qr.svg?token=` | QR code of the cashier page itself |
//! | `GET  /cashier-desk-web/qr/{token}.svg` | a Native QR code (sealed by [`payments::qr_svg_url`]) |
//! | `GET  /cashier-desk-web/static/{file}` | the stylesheet and the script |
//!
//! Pages are rendered on the server from askama templates
//! (`templates/cashier/`, checked at compile time) and work with
//! JavaScript off: channels are submit buttons of one form, waiting pages
//! have an "I have paid" link and the result page refreshes itself. The
//! script (countdown, status poll, WeChat JSAPI bridge) only improves
//! that. Headers and the CSP are in [`assets`]. Handlers stay thin: every
//! decision about the order is in [`crate::service::cashier`], which pays
//! through the same service as `POST /api/cashier-desk/payment`.

pub mod assets;
pub mod i18n;
pub mod oauth;
pub mod view;

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use cashdesk_channels::PayData;
use cashdesk_core::ChannelId;
use chrono::Utc;
use serde_json::json;

use crate::error::{ApiError, ErrorCode};
use crate::input::{PathParam, query_params};
use crate::service::cashier::{self as svc, Opened, Stage};
use crate::service::error::ServiceError;
use crate::service::payments;
use crate::state::AppState;
use i18n::{Lang, Texts};
use view::{Device, Flow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cashier-desk-web/payment", get(show).post(choose))
        .route("/cashier-desk-web/payment/status", get(status))
        .route("/cashier-desk-web/payment/page-qr.svg", get(page_qr))
        .route("/cashier-desk-web/result", get(result))
        .route("/cashier-desk-web/wechat-oauth", get(wechat_oauth))
        .route("/cashier-desk-web/static/{file}", get(static_file))
        .route("/cashier-desk-web/qr/{file}", get(qr_svg))
}

// --- who is asking -------------------------------------------------------

/// The buyer's language, device and IP address, from the request.
pub struct Visitor {
    pub lang: Lang,
    pub device: Device,
    pub ip: Option<IpAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let h = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        Ok(Visitor {
            lang: Lang::from_accept_language(h(header::ACCEPT_LANGUAGE)),
            device: Device::from_user_agent(h(header::USER_AGENT)),
            // The client's address (trusted proxies resolved), else the peer.
            ip: parts
                .extensions
                .get::<crate::edge::client_ip::ClientIp>()
                .map(|c| c.0)
                .or_else(|| {
                    parts
                        .extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|c| c.0.ip())
                }),
        })
    }
}

// --- view models ---------------------------------------------------------

pub struct Head {
    pub title: String,
    pub css: &'static str,
    pub js: &'static str,
    /// `<meta http-equiv="refresh" content="…">`.
    pub refresh: Option<String>,
}

impl Head {
    fn new(title: impl Into<String>) -> Head {
        Head {
            title: title.into(),
            css: assets::CSS_URL.as_str(),
            js: assets::JS_URL.as_str(),
            refresh: None,
        }
    }
}

pub struct Countdown {
    pub text: String,
    pub expire_iso: String,
    pub expire_ms: i64,
    pub expired_url: String,
}

pub struct OrderInfo {
    pub merchant: String,
    pub title: String,
    pub amount: String,
    pub out_trade_no: String,
    pub countdown: Option<Countdown>,
}

impl OrderInfo {
    fn of(o: &Opened, with_countdown: bool) -> OrderInfo {
        let now = Utc::now();
        OrderInfo {
            merchant: o.app.app_name.clone(),
            title: o.order.order_title.clone(),
            amount: view::amount(o.order.amount),
            out_trade_no: o.order.out_trade_no.to_string(),
            countdown: with_countdown.then(|| Countdown {
                text: view::countdown((o.order.expire_at - now).num_seconds()),
                expire_iso: o.order.expire_at.to_rfc3339(),
                expire_ms: o.order.expire_at.timestamp_millis(),
                expired_url: page_url("result", &o.order.token),
            }),
        }
    }
}

pub struct ChannelItem {
    pub id: String,
    pub brand: &'static str,
    pub flow: &'static str,
    pub name: String,
    pub icon: &'static str,
}

#[derive(Template)]
#[template(path = "cashier/payment.html")]
pub struct PaymentPage<'a> {
    pub t: &'static Texts,
    pub head: Head,
    pub order: OrderInfo,
    pub notice: Option<&'a str>,
    pub being_paid: bool,
    pub channels: Vec<ChannelItem>,
    pub token: &'a str,
}

#[derive(Template)]
#[template(path = "cashier/qr.html")]
pub struct QrPage {
    pub t: &'static Texts,
    pub head: Head,
    pub order: OrderInfo,
    pub heading: &'static str,
    pub hint: &'static str,
    pub qr_url: String,
    pub qr_alt: &'static str,
    pub status_url: String,
    pub result_url: String,
    pub cashier_url: String,
}

#[derive(Template)]
#[template(path = "cashier/jsapi.html")]
pub struct JsapiPage {
    pub t: &'static Texts,
    pub head: Head,
    pub order: OrderInfo,
    /// `payData` as JSON, read by the script from `data-pay`.
    pub pay_data: String,
    pub result_url: String,
    pub cashier_url: String,
}

#[derive(Template)]
#[template(path = "cashier/result.html")]
pub struct ResultPage {
    pub t: &'static Texts,
    pub head: Head,
    pub icon: &'static str,
    pub heading: &'static str,
    pub body: &'static str,
    pub order: Option<OrderInfo>,
    pub return_url: Option<String>,
    pub status_url: Option<String>,
    pub retry_url: Option<String>,
    pub retry_label: &'static str,
}

const ICON_OK: &str = r##"<svg class="status-icon" viewBox="0 0 64 64" aria-hidden="true"><circle cx="32" cy="32" r="30" fill="#07c160"/><path d="M19 33l9 9 17-19" fill="none" stroke="#fff" stroke-width="5" stroke-linecap="round" stroke-linejoin="round"/></svg>"##;
const ICON_FAIL: &str = r##"<svg class="status-icon" viewBox="0 0 64 64" aria-hidden="true"><circle cx="32" cy="32" r="30" fill="#f53f3f"/><path d="M22 22l20 20M42 22L22 42" stroke="#fff" stroke-width="5" stroke-linecap="round"/></svg>"##;
const ICON_WAIT: &str = r##"<svg class="status-icon" viewBox="0 0 64 64" aria-hidden="true"><circle cx="32" cy="32" r="30" fill="#ff7d00"/><path d="M32 16v17l11 7" fill="none" stroke="#fff" stroke-width="5" stroke-linecap="round" stroke-linejoin="round"/></svg>"##;
const ICON_INFO: &str = r##"<svg class="status-icon" viewBox="0 0 64 64" aria-hidden="true"><circle cx="32" cy="32" r="30" fill="#86909c"/><path d="M32 28v18M32 18v1" stroke="#fff" stroke-width="5" stroke-linecap="round"/></svg>"##;

/// `/cashier-desk-web/<what>?token=…` (relative: the page's own origin).
fn page_url(what: &str, token: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish();
    format!("/cashier-desk-web/{what}?{q}")
}

/// A same-origin path for a URL cashdesk built from its public URL.
fn local_path(state: &AppState, url: &str) -> String {
    url.strip_prefix(state.public_url.as_str())
        .filter(|p| p.starts_with('/'))
        .unwrap_or(url)
        .to_owned()
}

fn render(status: StatusCode, page: Result<String, askama::Error>) -> Response {
    let resp = match page {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cashier template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    };
    assets::secure(resp)
}

fn unknown_page(t: &'static Texts) -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        t,
        ICON_INFO,
        t.unknown_title,
        t.unknown_body,
    )
}

fn message_page(
    status: StatusCode,
    t: &'static Texts,
    icon: &'static str,
    heading: &'static str,
    body: &'static str,
) -> Response {
    let page = ResultPage {
        t,
        head: Head::new(heading),
        icon,
        heading,
        body,
        order: None,
        return_url: None,
        status_url: None,
        retry_url: None,
        retry_label: t.refresh,
    };
    render(status, page.render())
}

/// A failure the buyer cannot fix: logged, a plain page shown.
fn trouble(t: &'static Texts, e: &ServiceError) -> Response {
    match e {
        ServiceError::Internal(_) | ServiceError::Storage(_) => {
            tracing::error!(error = ?e, "cashier: internal error")
        }
        other => tracing::warn!(error = %other, "cashier: request failed"),
    }
    message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        t,
        ICON_INFO,
        t.unavailable_title,
        t.unavailable_body,
    )
}

/// The result page of an order (any stage; `Payable` = still waiting).
pub fn result_page(t: &'static Texts, o: &Opened, stage: Stage) -> Response {
    let token = &o.order.token;
    let (icon, heading, body) = match stage {
        Stage::Paid => (ICON_OK, t.paid_title, t.paid_body),
        Stage::Failed => (ICON_FAIL, t.failed_title, t.failed_body),
        Stage::Closed => (ICON_INFO, t.closed_title, t.closed_body),
        Stage::Expired => (ICON_INFO, t.expired_title, t.expired_body),
        Stage::Payable => (ICON_WAIT, t.pending_title, t.pending_body),
    };
    let mut head = Head::new(heading);
    let return_url = match stage {
        Stage::Paid => o.order.return_url.clone(),
        _ => None,
    };
    if let Some(r) = &return_url {
        // Back to the shop after a moment (works with JavaScript off).
        head.refresh = Some(format!("3;url={r}"));
    } else if stage == Stage::Payable {
        head.refresh = Some("5".to_owned());
    }
    let waiting = stage == Stage::Payable;
    let page = ResultPage {
        t,
        head,
        icon,
        heading,
        body,
        order: Some(OrderInfo::of(o, false)),
        return_url,
        status_url: waiting.then(|| page_url("payment/status", token)),
        retry_url: waiting.then(|| page_url("payment", token)),
        retry_label: t.other_way,
    };
    let status = if stage == Stage::Expired {
        StatusCode::GONE
    } else {
        StatusCode::OK
    };
    render(status, page.render())
}

async fn payment_page(
    state: &AppState,
    v: &Visitor,
    o: &Opened,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let t = v.lang.texts();
    let offers = match svc::offered(state, o, v.device).await {
        Ok(x) => x,
        Err(e) => return trouble(t, &e),
    };
    let channels = offers
        .iter()
        .map(|offer| ChannelItem {
            id: offer.bound.channel.channel_id.to_string(),
            brand: view::brand(v.lang, offer.bound.config.channel_type),
            flow: view::flow_label(t, offer.flow),
            name: offer.bound.channel.channel_name.clone(),
            icon: view::icon(offer.bound.config.channel_type),
        })
        .collect();
    let page = PaymentPage {
        t,
        head: Head::new(format!("{} · {}", t.checkout, o.app.app_name)),
        order: OrderInfo::of(o, true),
        notice,
        being_paid: o.order.channel.is_some(),
        channels,
        token: &o.order.token,
    };
    render(status, page.render())
}

fn token_of(query: Option<&str>) -> String {
    query_params(query).remove("token").unwrap_or_default()
}

/// Opens the token, or answers for the buyer: unknown token, trouble.
async fn open_or_page(
    state: &AppState,
    t: &'static Texts,
    token: &str,
) -> Result<Opened, Response> {
    match svc::open(state, token).await {
        Ok(Some(o)) => Ok(o),
        Ok(None) => Err(unknown_page(t)),
        Err(e) => Err(trouble(t, &e)),
    }
}

// --- handlers ------------------------------------------------------------

/// `GET /cashier-desk-web/payment?token=`.
async fn show(State(state): State<AppState>, v: Visitor, RawQuery(q): RawQuery) -> Response {
    let t = v.lang.texts();
    let o = match open_or_page(&state, t, &token_of(q.as_deref())).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    match Stage::of(&o.order, Utc::now()) {
        Stage::Payable => payment_page(&state, &v, &o, None, StatusCode::OK).await,
        stage => result_page(t, &o, stage),
    }
}

/// `GET /cashier-desk-web/result?token=`.
async fn result(State(state): State<AppState>, v: Visitor, RawQuery(q): RawQuery) -> Response {
    let t = v.lang.texts();
    let mut o = match open_or_page(&state, t, &token_of(q.as_deref())).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    o.order = match svc::refresh(&state, o.order).await {
        Ok(order) => order,
        Err(e) => return trouble(t, &e),
    };
    result_page(t, &o, Stage::of(&o.order, Utc::now()))
}

/// `GET /cashier-desk-web/payment/status?token=` → `{state, final, resultUrl}`.
async fn status(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let token = token_of(q.as_deref());
    let mut o = match svc::open(&state, &token).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return ApiError::new(ErrorCode::TokenUnknown, "unknown cashier token").into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    o.order = match svc::refresh(&state, o.order).await {
        Ok(order) => order,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let stage = Stage::of(&o.order, Utc::now());
    let body = json!({
        "state": o.order.state,
        "final": stage.is_final(),
        "resultUrl": page_url("result", &token),
    });
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

/// `POST /cashier-desk-web/payment` (form `token`, `channelId`).
async fn choose(State(state): State<AppState>, v: Visitor, body: Bytes) -> Response {
    let t = v.lang.texts();
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    let o = match open_or_page(&state, t, token).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    if Stage::of(&o.order, Utc::now()) != Stage::Payable {
        return Redirect::to(&page_url("result", token)).into_response();
    }
    let offers = match svc::offered(&state, &o, v.device).await {
        Ok(x) => x,
        Err(e) => return trouble(t, &e),
    };
    let chosen = form
        .get("channelId")
        .and_then(|c| ChannelId::parse(c))
        .and_then(|id| {
            offers
                .into_iter()
                .find(|x| x.bound.channel.channel_id == id)
        });
    let Some(offer) = chosen else {
        return payment_page(
            &state,
            &v,
            &o,
            Some(t.unavailable_title),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let channel_id = offer.bound.channel.channel_id.clone();
    match offer.flow {
        Flow::PageQr => {
            let page = QrPage {
                t,
                head: Head::new(t.phone_title),
                order: OrderInfo::of(&o, true),
                heading: t.phone_title,
                hint: t.phone_hint,
                qr_url: page_url("payment/page-qr.svg", token),
                qr_alt: t.phone_qr_alt,
                status_url: page_url("payment/status", token),
                result_url: page_url("result", token),
                cashier_url: page_url("payment", token),
            };
            render(StatusCode::OK, page.render())
        }
        Flow::WechatJsapi => match svc::payer_oauth(&state, &offer.bound) {
            Ok(Some(oauth)) => {
                let back = format!(
                    "{}/cashier-desk-web/wechat-oauth?{}",
                    state.public_url,
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("token", token)
                        .append_pair("channelId", channel_id.as_str())
                        .finish()
                );
                let st = oauth::oauth_state(token, channel_id.as_str());
                Redirect::to(&oauth.authorize_url(&back, &st)).into_response()
            }
            Ok(None) => {
                payment_page(&state, &v, &o, Some(t.not_configured), StatusCode::CONFLICT).await
            }
            Err(e) => trouble(t, &e),
        },
        Flow::Redirect | Flow::Qr => match svc::pay(&state, &o, &channel_id, v.ip, None).await {
            Ok(paid) => after_pay(&state, &v, &o, &offer.bound, offer.flow, &paid.pay_data),
            Err(e) => pay_refused(&state, &v, &o, e).await,
        },
    }
}

/// The page (or redirect) for a `payData`.
fn after_pay(
    state: &AppState,
    v: &Visitor,
    o: &Opened,
    bound: &cashdesk_store::BoundChannel,
    flow: Flow,
    pay_data: &PayData,
) -> Response {
    let t = v.lang.texts();
    let token = &o.order.token;
    match flow {
        Flow::Redirect => {
            let target = pay_data
                .redirect_url()
                .and_then(|u| url::Url::parse(u).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"));
            let Some(mut target) = target else {
                return trouble(
                    t,
                    &ServiceError::internal(anyhow::anyhow!(
                        "channel {} gave no H5/WAP URL",
                        bound.channel.channel_id
                    )),
                );
            };
            // A channel whose H5 page returns the buyer to a URL the
            // merchant appends (WeChat's `redirect_url`) gets the result
            // page; Alipay's wap/page pages return by themselves.
            if let PayData::H5 { .. } = pay_data
                && let Some(param) = cashdesk_channels::channel_meta(bound.config.channel_type)
                    .and_then(|m| m.h5_return_param)
            {
                let back = format!("{}{}", state.public_url, page_url("result", token));
                target.query_pairs_mut().append_pair(param, &back);
            }
            Redirect::to(target.as_str()).into_response()
        }
        _ => {
            let svg = match pay_data {
                PayData::Native { qr_svg_url, .. } | PayData::QrCode { qr_svg_url, .. } => {
                    qr_svg_url.as_deref()
                }
                _ => None,
            };
            let qr_url = match svg {
                Some(u) => local_path(state, u),
                None => match pay_data.qr_content() {
                    Some(code) => {
                        local_path(state, &payments::qr_svg_url(state, &o.order.order_id, code))
                    }
                    None => {
                        return trouble(
                            t,
                            &ServiceError::internal(anyhow::anyhow!(
                                "channel {} gave no QR code",
                                bound.channel.channel_id
                            )),
                        );
                    }
                },
            };
            let page = QrPage {
                t,
                head: Head::new(t.scan_title),
                order: OrderInfo::of(o, true),
                heading: t.scan_title,
                hint: t.scan_hint,
                qr_url,
                qr_alt: t.qr_alt,
                status_url: page_url("payment/status", token),
                result_url: page_url("result", token),
                cashier_url: page_url("payment", token),
            };
            render(StatusCode::OK, page.render())
        }
    }
}

/// The payment service said no: a state that changed under the page (paid,
/// closed, expired, another channel) → the order as it is now; anything
/// else → the cashier page again with a notice.
async fn pay_refused(state: &AppState, v: &Visitor, o: &Opened, e: ServiceError) -> Response {
    let t = v.lang.texts();
    if let ServiceError::Internal(_) | ServiceError::Storage(_) = e {
        return trouble(t, &e);
    }
    tracing::info!(order_id = %o.order.order_id, error = %e, "cashier: payment refused");
    let now = match svc::open(state, &o.order.token).await {
        Ok(Some(now)) => now,
        Ok(None) => return unknown_page(t),
        Err(e) => return trouble(t, &e),
    };
    let stage = Stage::of(&now.order, Utc::now());
    if stage != Stage::Payable {
        return Redirect::to(&page_url("result", &o.order.token)).into_response();
    }
    let status = match ApiError::from(e).code() {
        ErrorCode::StateNotAllowed => StatusCode::CONFLICT,
        ErrorCode::ChannelError => StatusCode::BAD_GATEWAY,
        _ => StatusCode::BAD_REQUEST,
    };
    payment_page(state, v, &now, Some(t.unavailable_body), status).await
}

/// `GET /cashier-desk-web/wechat-oauth?token=&channelId=&code=&state=`.
async fn wechat_oauth(
    State(state): State<AppState>,
    v: Visitor,
    RawQuery(q): RawQuery,
) -> Response {
    let t = v.lang.texts();
    let params = query_params(q.as_deref());
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    let token = get("token");
    let o = match open_or_page(&state, t, token).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    if Stage::of(&o.order, Utc::now()) != Stage::Payable {
        return Redirect::to(&page_url("result", token)).into_response();
    }
    let expected = oauth::oauth_state(token, get("channelId"));
    if !cashdesk_crypto::ct_eq(expected.as_bytes(), get("state").as_bytes()) {
        return payment_page(
            &state,
            &v,
            &o,
            Some(t.unavailable_title),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    if get("code").is_empty() {
        // The buyer declined (WeChat comes back without a code).
        return payment_page(&state, &v, &o, Some(t.jsapi_cancelled), StatusCode::OK).await;
    }
    let offers = match svc::offered(&state, &o, Device::WeChat).await {
        Ok(x) => x,
        Err(e) => return trouble(t, &e),
    };
    let Some(offer) = ChannelId::parse(get("channelId")).and_then(|id| {
        offers
            .into_iter()
            .find(|x| x.bound.channel.channel_id == id && x.flow == Flow::WechatJsapi)
    }) else {
        return payment_page(
            &state,
            &v,
            &o,
            Some(t.unavailable_title),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let oauth = match svc::payer_oauth(&state, &offer.bound) {
        Ok(Some(x)) => x,
        Ok(None) => {
            return payment_page(&state, &v, &o, Some(t.not_configured), StatusCode::CONFLICT)
                .await;
        }
        Err(e) => return trouble(t, &e),
    };
    let openid = match oauth.payer_id(get("code")).await {
        Ok(id) => id,
        Err(e) => {
            // The adapter's message names the channel's errcode, never the
            // AppSecret.
            tracing::warn!(app_id = oauth.app_id(), error = %e, "WeChat OAuth code exchange failed");
            return payment_page(
                &state,
                &v,
                &o,
                Some(t.unavailable_body),
                StatusCode::BAD_GATEWAY,
            )
            .await;
        }
    };
    let channel_id = offer.bound.channel.channel_id.clone();
    match svc::pay(
        &state,
        &o,
        &channel_id,
        v.ip,
        Some((&openid, oauth.app_id())),
    )
    .await
    {
        Ok(paid) => {
            let page = JsapiPage {
                t,
                head: Head::new(t.jsapi_title),
                order: OrderInfo::of(&o, true),
                pay_data: paid.pay_data.to_json().to_string(),
                result_url: page_url("result", token),
                cashier_url: page_url("payment", token),
            };
            render(StatusCode::OK, page.render())
        }
        Err(e) => pay_refused(&state, &v, &o, e).await,
    }
}

/// `GET /cashier-desk-web/payment/page-qr.svg?token=`: the cashier page's
/// own URL as a QR code, while the order can be paid (not a QR generator:
/// it only ever encodes cashdesk's cashier URL of a live token).
async fn page_qr(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let token = token_of(q.as_deref());
    let o = match svc::open(&state, &token).await {
        Ok(Some(o)) => o,
        Ok(None) => return ApiError::not_found("QR code").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if Stage::of(&o.order, Utc::now()) != Stage::Payable {
        return ApiError::not_found("QR code").into_response();
    }
    let url = format!("{}{}", state.public_url, page_url("payment", &token));
    svg_response(payments::render_qr_svg(&url))
}

fn svg_response(svg: Result<String, ServiceError>) -> Response {
    match svg {
        Ok(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            svg,
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn qr_svg(State(state): State<AppState>, PathParam(file): PathParam) -> Response {
    svg_response(payments::qr_svg(&state, &file).await)
}

async fn static_file(PathParam(file): PathParam) -> Response {
    assets::file(&file).unwrap_or_else(|| ApiError::not_found(file).into_response())
}

#[cfg(test)]
mod tests;
