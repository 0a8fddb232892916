//! The console: server-rendered pages under `/console` for operators and
//! merchants (docs/console.md). Same binary, no outside assets, a strict
//! CSP, forms that work without JavaScript.
//!
//! Every page but the login page runs behind the session middleware
//! ([`auth`]): it finds the session from the `cashdesk_session` cookie,
//! checks its idle and absolute timeouts, and puts a [`ConsoleSession`]
//! in the request's extensions. A page takes it as an extractor, checks
//! the permission it needs with `session.principal.require(..)`, and every
//! form that changes state carries `session.csrf`, checked before the
//! handler runs.

pub mod account;
pub mod auth;
pub mod dashboard;
pub mod layout;
pub mod pages;
pub mod texts;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use crate::access::Principal;
use crate::cashier::i18n::Lang;
use crate::state::AppState;

/// Where the console lives.
pub const BASE: &str = "/console";

/// A signed-in console user, as the session middleware found them.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub principal: Principal,
    /// The session's CSRF token: every state-changing form sends it back
    /// in a hidden `csrf` field.
    pub csrf: String,
    /// The page language (`Accept-Language`, or the `lang` cookie).
    pub lang: Lang,
}

/// A page without a session goes to the login page.
impl<S: Send + Sync> FromRequestParts<S> for ConsoleSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ConsoleSession>()
            .cloned()
            .ok_or_else(|| Redirect::to(&format!("{BASE}/login")).into_response())
    }
}

/// The login page and assets (open), and [`pages::router`] behind the
/// session middleware (CSRF checked on every POST).
pub fn router(state: AppState) -> Router<AppState> {
    auth::router(
        state,
        pages::router()
            .merge(account::router())
            .merge(dashboard::router()),
    )
}
