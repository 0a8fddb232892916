//! Console sign-in: the login page, sessions, CSRF, sign-out.
//!
//! - **Session**: a random 256-bit cookie `cashdesk_session` (`HttpOnly`,
//!   `SameSite=Strict`, `Path=/console`, `Secure` when the public URL is
//!   https); the database keeps its SHA-256 only. Every sign-in makes a
//!   new session (a cookie planted before sign-in is never promoted:
//!   no fixation). A session ends after [`IDLE_SECS`] without a request or
//!   [`ABSOLUTE_SECS`] after sign-in, at sign-out, and when an
//!   administrator changes the account's password, role or scope or
//!   disables it.
//! - **CSRF**: each session has its own random token; every POST behind
//!   the session carries it in the form field `csrf` and is refused (403)
//!   without it, before any handler runs. The login form has a token of
//!   its own in a short-lived cookie (no signing in a victim as someone
//!   else).
//! - **Throttle**: [`crate::edge::ratelimit::LOGIN_PER_MINUTE`] attempts a
//!   minute per client address, and the account's own lock
//!   ([`crate::service::accounts`]). Every refusal shows one message.

use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cashdesk_crypto::{ct_eq, random};
use cashdesk_store::Session;
use chrono::{Duration, Utc};
use serde_json::Value;

use super::{BASE, ConsoleSession, layout};
use crate::access::{Principal, Via};
use crate::cashier::i18n::Lang;
use crate::edge::client_ip;
use crate::service::accounts::{self, LoginRefusal, principal_of, token_hash};
use crate::state::AppState;

/// A session ends this long after its last request.
pub const IDLE_SECS: i64 = 30 * 60;
/// A session ends this long after sign-in, however busy.
pub const ABSOLUTE_SECS: i64 = 12 * 3600;
/// The largest console form accepted.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

const SESSION_COOKIE: &str = "cashdesk_session";
const LOGIN_COOKIE: &str = "cashdesk_login";

/// The console's routes: the login page and the stylesheet (open),
/// sign-out and `pages` behind [`require_session`], every response with
/// the console's headers ([`layout::secure`]).
pub fn router(state: AppState, pages: Router<AppState>) -> Router<AppState> {
    let private = Router::new()
        .route(&format!("{BASE}/logout"), post(logout))
        .merge(pages)
        .route_layer(from_fn_with_state(state, require_session));
    Router::new()
        .route(&format!("{BASE}/login"), get(login_page).post(login))
        .merge(layout::assets_router())
        .merge(private)
        .layer(axum::middleware::map_response(layout::secure))
}

/// The value of cookie `name`, if it is a plausible one (not empty, at
/// most 128 bytes: the console's cookies are all shorter).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    layout::cookie(headers, name)
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

fn secure_flag(state: &AppState) -> &'static str {
    if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
) -> String {
    let age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
    format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict{age}{}",
        secure_flag(state)
    )
}

fn lang_of(headers: &HeaderMap) -> Lang {
    if let Some(l) = cookie(headers, layout::LANG_COOKIE) {
        match l {
            "en" => return Lang::En,
            "zh" => return Lang::Zh,
            _ => {}
        }
    }
    Lang::from_accept_language(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn to_login(state: &AppState, clear: bool) -> Response {
    let mut resp = Redirect::to(&format!("{BASE}/login")).into_response();
    if clear {
        let gone = set_cookie(state, SESSION_COOKIE, "", BASE, Some(0));
        if let Ok(v) = HeaderValue::from_str(&gone) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp
}

fn plain(status: StatusCode, msg: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

/// Middleware: the [`ConsoleSession`] of the request, or the login page;
/// a POST without the session's CSRF token is refused before its handler.
pub async fn require_session(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(raw) = cookie(req.headers(), SESSION_COOKIE) else {
        return to_login(&state, false);
    };
    let hash = token_hash(raw);
    let session = match state.store.get_session(&hash).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_login(&state, true),
        Err(e) => {
            tracing::error!(error = %e, "reading a console session");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let now = Utc::now();
    let expired = now - session.last_seen_at > Duration::seconds(IDLE_SECS)
        || now - session.created_at > Duration::seconds(ABSOLUTE_SECS);
    let account = match state.store.get_account(&session.account_id).await {
        Ok(a) => a.filter(|a| !a.disabled && !expired),
        Err(e) => {
            tracing::error!(error = %e, "reading a console account");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let Some(account) = account else {
        if let Err(e) = state.store.delete_session(&hash).await {
            tracing::warn!(error = %e, "removing an ended console session");
        }
        return to_login(&state, true);
    };
    if now - session.last_seen_at > Duration::seconds(60)
        && let Err(e) = state.store.touch_session(&hash, now).await
    {
        tracing::warn!(error = %e, "noting a console session's use");
    }
    let lang = lang_of(req.headers());
    let ip = client_ip::of(&req);
    let (parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "form too large");
        };
        if !csrf_ok(&bytes, &session.csrf) {
            return plain(
                StatusCode::FORBIDDEN,
                "this form is stale or did not come from the console: reload the page and try again",
            );
        }
        Body::from(bytes)
    } else {
        body
    };
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(ConsoleSession {
        principal: Principal {
            ip,
            ..principal_of(&account, Via::Session)
        },
        csrf: session.csrf,
        lang,
    });
    req.extensions_mut().insert(SessionHash(hash));
    next.run(req).await
}

/// The session's key, for sign-out.
#[derive(Clone)]
struct SessionHash(String);

/// Whether the form's `csrf` field is the session's token.
fn csrf_ok(form: &Bytes, expected: &str) -> bool {
    url::form_urlencoded::parse(form)
        .find(|(k, _)| k == "csrf")
        .is_some_and(|(_, v)| ct_eq(v.as_bytes(), expected.as_bytes()))
}

struct LoginTexts {
    code: &'static str,
    title: &'static str,
    username: &'static str,
    password: &'static str,
    totp: &'static str,
    submit: &'static str,
    refused: &'static str,
    stale: &'static str,
    throttled: &'static str,
    signed_out: &'static str,
}

const ZH: LoginTexts = LoginTexts {
    code: "zh-CN",
    title: "cashdesk 控制台登录",
    username: "用户名",
    password: "密码",
    totp: "动态验证码（已开启两步验证时填写）",
    submit: "登录",
    refused: "登录失败：请检查用户名、密码和验证码。连续失败 5 次，账号将锁定 15 分钟。",
    stale: "表单已过期，请重新登录。",
    throttled: "尝试次数过多，请一分钟后再试。",
    signed_out: "已退出登录。",
};

const EN: LoginTexts = LoginTexts {
    code: "en",
    title: "cashdesk console sign-in",
    username: "Username",
    password: "Password",
    totp: "One-time code (if two-step sign-in is on)",
    submit: "Sign in",
    refused: "Sign-in failed: check your username, password and code. After 5 failures in a row an account is locked for 15 minutes.",
    stale: "This form expired; please sign in again.",
    throttled: "Too many attempts; try again in a minute.",
    signed_out: "You are signed out.",
};

fn texts(lang: Lang) -> &'static LoginTexts {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    t: &'static LoginTexts,
    css: &'static str,
    csrf: String,
    username: String,
    error: Option<&'static str>,
    notice: Option<&'static str>,
}

/// The login page with a fresh login CSRF token in its cookie.
fn login_form(
    state: &AppState,
    status: StatusCode,
    lang: Lang,
    username: &str,
    error: Option<&'static str>,
    notice: Option<&'static str>,
) -> Response {
    let csrf = random::token(24);
    let page = LoginPage {
        t: texts(lang),
        css: layout::CSS_URL.as_str(),
        csrf: csrf.clone(),
        username: username.to_owned(),
        error,
        notice,
    };
    let html = match page.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "console login template failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    let c = set_cookie(
        state,
        LOGIN_COOKIE,
        &csrf,
        &format!("{BASE}/login"),
        Some(3600),
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login_form(&state, StatusCode::OK, lang_of(&headers), "", None, None)
}

/// `POST /console/login` (form `csrf`, `username`, `password`, `code`).
async fn login(State(state): State<AppState>, req: Request) -> Response {
    let lang = lang_of(req.headers());
    let t = texts(lang);
    let ip = client_ip::of(&req);
    let cookie_csrf = cookie(req.headers(), LOGIN_COOKIE).map(str::to_owned);
    let old_session = cookie(req.headers(), SESSION_COOKIE).map(token_hash);
    let Ok(body) = to_bytes(req.into_body(), MAX_FORM_BYTES).await else {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "form too large");
    };
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let username = field("username").trim();
    let username = if username.len() > 64 { "" } else { username };
    let csrf_ok = cookie_csrf
        .as_deref()
        .is_some_and(|c| ct_eq(c.as_bytes(), field("csrf").as_bytes()));
    if !csrf_ok {
        return login_form(
            &state,
            StatusCode::FORBIDDEN,
            lang,
            username,
            Some(t.stale),
            None,
        );
    }
    if let Some(ip) = ip
        && let Err(refused) = state.edge.limits.login(ip)
    {
        crate::edge::ratelimit::refuse_logged(&state, "login", &ip.to_string());
        let mut resp = login_form(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            lang,
            username,
            Some(t.throttled),
            None,
        );
        if let Ok(v) = HeaderValue::from_str(&refused.seconds().to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let password = field("password");
    let code = Some(field("code")).filter(|c| !c.trim().is_empty());
    if password.len() > accounts::MAX_PASSWORD * 4 {
        return login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            lang,
            username,
            Some(t.refused),
            None,
        );
    }
    let account = match accounts::login(&state, username, password, code, ip).await {
        Ok(Ok(account)) => account,
        Ok(Err(LoginRefusal::Refused | LoginRefusal::Locked)) => {
            return login_form(
                &state,
                StatusCode::UNAUTHORIZED,
                lang,
                username,
                Some(t.refused),
                None,
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "console sign-in");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    // A cookie that came with the form is never promoted: it is dropped,
    // and the account gets a session id nobody has seen.
    if let Some(old) = old_session
        && let Err(e) = state.store.delete_session(&old).await
    {
        tracing::warn!(error = %e, "removing a replaced console session");
    }
    let token = random::token(32);
    let now = Utc::now();
    let session = Session {
        account_id: account.account_id.clone(),
        csrf: random::token(32),
        ip: ip.map(|ip| ip.to_string()),
        created_at: now,
        last_seen_at: now,
    };
    if let Err(e) = state
        .store
        .create_session(&token_hash(&token), &session)
        .await
    {
        tracing::error!(error = %e, "creating a console session");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    }
    let mut resp = Redirect::to(BASE).into_response();
    let headers = resp.headers_mut();
    for c in [
        set_cookie(&state, SESSION_COOKIE, &token, BASE, None),
        set_cookie(&state, LOGIN_COOKIE, "", &format!("{BASE}/login"), Some(0)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// `POST /console/logout`: ends the session.
async fn logout(State(state): State<AppState>, req: Request) -> Response {
    let session = req.extensions().get::<ConsoleSession>().cloned();
    if let Some(SessionHash(hash)) = req.extensions().get::<SessionHash>()
        && let Err(e) = state.store.delete_session(hash).await
    {
        tracing::warn!(error = %e, "ending a console session");
    }
    if let Some(s) = session {
        let target = s.principal.account_id.clone().unwrap_or_default();
        crate::service::audit(&state, &s.principal, "account.logout", &target, Value::Null).await;
        let mut resp = login_form(
            &state,
            StatusCode::OK,
            s.lang,
            "",
            None,
            Some(texts(s.lang).signed_out),
        );
        let gone = set_cookie(&state, SESSION_COOKIE, "", BASE, Some(0));
        if let Ok(v) = HeaderValue::from_str(&gone) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
        return resp;
    }
    to_login(&state, true)
}
