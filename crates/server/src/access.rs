//! Who is asking, and what they may do: the [`Principal`] of an operator
//! API request or a console page, and the checks every route makes with
//! it (the matrix is `cashdesk_core::access`).
//!
//! A principal comes from one of three credentials, each resolved by a
//! middleware into the request's extensions before any handler runs:
//! the break-glass `CASHDESK_ADMIN_TOKEN` (role admin, actor `admin`), an
//! account's API token (`Authorization: Bearer cdk_…`, the account's role
//! and scope), or a console session cookie (the same). Handlers take
//! `principal: Principal` as an extractor and call [`Principal::require`]
//! for the route's permission; a `merchant` principal is further limited
//! to its apps by [`Principal::sees_app`] and [`Principal::app_scope`].

use std::fmt;
use std::net::IpAddr;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cashdesk_core::{AppId, Permission, Role};
use cashdesk_store::AuditEntry;
use chrono::Utc;
use serde_json::Value;

use crate::edge::client_ip;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::service::accounts;
use crate::state::AppState;

/// The actor name of the break-glass admin token in the audit log.
pub const BREAK_GLASS_ACTOR: &str = "admin";

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What the audit log names: `admin` for the break-glass token, the
    /// account's username otherwise.
    pub actor: String,
    /// The account, when the credential is an account's.
    pub account_id: Option<String>,
    pub role: Role,
    /// The apps a scoped (merchant) account sees; empty for other roles.
    pub apps: Vec<AppId>,
    /// The client's address ([`crate::edge::client_ip::ClientIp`]).
    pub ip: Option<IpAddr>,
    /// The credential that proved it.
    pub via: Via,
}

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The break-glass `CASHDESK_ADMIN_TOKEN`.
    BreakGlass,
    /// An account's API token.
    ApiToken,
    /// A console session.
    Session,
    /// A request signed with an app's key (the merchant API): audited
    /// with the role `app`.
    Signature,
    /// cashdesk itself (start-up, open registration): no person, no
    /// credential; audited without a role.
    System,
}

impl Principal {
    /// The break-glass admin token's principal.
    pub fn break_glass(ip: Option<IpAddr>) -> Principal {
        Principal {
            actor: BREAK_GLASS_ACTOR.to_owned(),
            account_id: None,
            role: Role::Admin,
            apps: Vec::new(),
            ip,
            via: Via::BreakGlass,
        }
    }

    /// cashdesk acting on its own (`actor` names the occasion:
    /// `startup`, `open-registration`).
    pub fn system(actor: &str, ip: Option<IpAddr>) -> Principal {
        Principal {
            actor: actor.to_owned(),
            account_id: None,
            role: Role::Admin,
            apps: Vec::new(),
            ip,
            via: Via::System,
        }
    }

    /// An app acting through a signed request of the merchant API.
    pub fn app(app_id: &AppId, ip: Option<IpAddr>) -> Principal {
        Principal {
            actor: app_id.to_string(),
            account_id: None,
            role: Role::Merchant,
            apps: vec![app_id.clone()],
            ip,
            via: Via::Signature,
        }
    }

    /// The role as the audit log records it: `app` for a signed request,
    /// none for cashdesk itself.
    pub fn audit_role(&self) -> Option<&'static str> {
        match self.via {
            Via::System => None,
            Via::Signature => Some("app"),
            Via::BreakGlass | Via::ApiToken | Via::Session => Some(self.role.as_str()),
        }
    }

    /// Whether the role may do `p` (the scope is checked separately).
    pub fn can(&self, p: Permission) -> bool {
        self.role.allows(p)
    }

    /// 403 4035 unless the role may do `p`.
    pub fn require(&self, p: Permission) -> ApiResult<()> {
        if self.can(p) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::PermissionDenied,
                format!("the role {} may not do {p}", self.role),
            ))
        }
    }

    /// Whether the principal sees `app`'s data: every app, unless the
    /// role is scoped, then only its own.
    pub fn sees_app(&self, app: &AppId) -> bool {
        !self.role.is_scoped() || self.apps.contains(app)
    }

    /// An audit entry of an action by this principal, now.
    pub fn audit(&self, action: &str, target: &str, detail: Value) -> AuditEntry {
        AuditEntry {
            at: Utc::now(),
            actor: self.actor.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
            role: self.audit_role().map(str::to_owned),
            ip: self.ip.map(|ip| ip.to_string()),
            before: None,
            after: None,
        }
    }

    /// 404 "`what` not found" — the answer to an object that does not
    /// exist — when `app_id` is an app the principal does not see: a
    /// merchant account cannot tell another app's ids from unknown ones.
    pub fn scoped(&self, app_id: &str, what: impl fmt::Display) -> ApiResult<()> {
        if self.sees(app_id) {
            Ok(())
        } else {
            Err(ApiError::not_found(what))
        }
    }

    /// [`Principal::sees_app`] of an app id as text (a view's `appId`).
    pub fn sees(&self, app_id: &str) -> bool {
        !self.role.is_scoped() || self.apps.iter().any(|a| a.as_str() == app_id)
    }

    /// The app scope of a list (the store filters' `app_ids`: `None`
    /// every app); an asked app the principal does not see is 404, as an
    /// unknown app is.
    pub fn list_scope(&self, asked: Option<&AppId>) -> ApiResult<Option<Vec<AppId>>> {
        if let Some(app) = asked
            && !self.sees_app(app)
        {
            return Err(ApiError::not_found(format!("app {app}")));
        }
        Ok(self.app_scope().map(<[AppId]>::to_vec))
    }

    /// The one app a list that cannot take a scope (the statement) is
    /// narrowed to: the one asked for (404 as for an unknown app when the
    /// principal does not see it), else — for a scoped principal — its
    /// one app; a scoped principal with several apps names one (4000
    /// `appId`).
    pub fn narrow(&self, asked: Option<AppId>) -> ApiResult<Option<AppId>> {
        match (asked, self.app_scope()) {
            (Some(app), _) if self.sees_app(&app) => Ok(Some(app)),
            (Some(app), _) => Err(ApiError::not_found(format!("app {app}"))),
            (None, None) => Ok(None),
            (None, Some([only])) => Ok(Some(only.clone())),
            (None, Some(_)) => Err(ApiError::invalid("appId", "name one of the account's apps")),
        }
    }

    /// `None`: every app. `Some(apps)`: only these (a scoped role; an
    /// empty list sees nothing).
    pub fn app_scope(&self) -> Option<&[AppId]> {
        self.role.is_scoped().then_some(self.apps.as_slice())
    }
}

/// The bearer token of `Authorization: Bearer <token>`, trimmed.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Who a bearer token is: the break-glass admin token (compared as
/// digests, so the time tells neither a partial match nor the length),
/// or a live API token of an enabled account; `None` for anything else.
pub async fn bearer_principal(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
) -> ApiResult<Option<Principal>> {
    let Some(given) = bearer(headers) else {
        return Ok(None);
    };
    if state.admin_token.matches(given.as_bytes()) {
        return Ok(Some(Principal::break_glass(ip)));
    }
    let found = accounts::token_principal(state, given).await?;
    Ok(found.map(|p| Principal { ip, ..p }))
}

/// Middleware of the operator API: the request's [`Principal`] from its
/// bearer token, or 401 4019 before any handler runs.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = client_ip::of(&req);
    match bearer_principal(&state, req.headers(), ip).await {
        Ok(Some(principal)) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Ok(None) => ApiError::new(
            ErrorCode::AdminUnauthorized,
            "the operator API needs Authorization: Bearer <admin token or account API token>",
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The principal the authentication middleware put in the request; a
/// route outside those middlewares has none and answers 401 4019.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            ApiError::new(
                ErrorCode::AdminUnauthorized,
                "the operator API needs Authorization: Bearer <token>",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant(apps: &[&str]) -> Principal {
        Principal {
            actor: "shop".into(),
            account_id: Some("A1".into()),
            role: Role::Merchant,
            apps: apps
                .iter()
                .map(|a| AppId::parse(a).expect("app id"))
                .collect(),
            ip: None,
            via: Via::Session,
        }
    }

    #[test]
    fn a_merchant_sees_its_own_apps_only() {
        let m = merchant(&["app_one"]);
        assert!(m.sees_app(&AppId::parse("app_one").expect("id")));
        assert!(!m.sees_app(&AppId::parse("app_two").expect("id")));
        assert_eq!(m.app_scope().map(<[AppId]>::len), Some(1));
        let admin = Principal::break_glass(None);
        assert!(admin.sees_app(&AppId::parse("app_two").expect("id")));
        assert!(admin.app_scope().is_none());
    }

    #[test]
    fn require_refuses_with_4035() {
        let m = merchant(&[]);
        let err = m.require(Permission::AuditRead).expect_err("refused");
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        assert_eq!(err.code().status(), axum::http::StatusCode::FORBIDDEN);
        assert!(m.require(Permission::OrdersRead).is_ok());
    }
}
