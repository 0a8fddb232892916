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

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use cashdesk_core::{AppId, Permission, Role};

use crate::error::{ApiError, ErrorCode};

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
        }
    }

    /// Whether the role may do `p` (the scope is checked separately).
    pub fn can(&self, p: Permission) -> bool {
        self.role.allows(p)
    }

    /// 403 4035 unless the role may do `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
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

    /// `None`: every app. `Some(apps)`: only these (a scoped role; an
    /// empty list sees nothing).
    pub fn app_scope(&self) -> Option<&[AppId]> {
        self.role.is_scoped().then_some(self.apps.as_slice())
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
