//! Admin: console accounts and their API tokens (`accounts.manage`), and
//! `GET /api/admin/me` (anyone signed in: who the credential is).
//!
//! Passwords go in and never come out; a token is in the answer that
//! creates it and nowhere else.

use axum::extract::State;
use cashdesk_core::{AppId, Permission, Role};
use cashdesk_crypto::Secret;
use cashdesk_store::{Account, AccountUpdate, ApiToken};
use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::access::Principal;
use crate::envelope::Success;
use crate::error::ApiResult;
use crate::input::{Fields, JsonObject, PathParam};
use crate::service::accounts::{self, NewAccount};
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::wire::time;

/// An account as the API shows it (no hash, no secret).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub account_id: String,
    pub username: String,
    pub role: Role,
    pub apps: Vec<String>,
    pub disabled: bool,
    pub totp: bool,
    pub failed_logins: i32,
    pub locked_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            account_id: a.account_id.to_string(),
            username: a.username.clone(),
            role: a.role,
            apps: a.apps.iter().map(ToString::to_string).collect(),
            disabled: a.disabled,
            totp: a.totp_enabled,
            failed_logins: a.failed_logins,
            locked_until: accounts::locked_until(a, Utc::now()).map(time),
            created_at: time(a.created_at),
            updated_at: time(a.updated_at),
        }
    }
}

/// A token as listed (never the token).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub token_id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        TokenView {
            token_id: t.token_id.to_string(),
            name: t.name.clone(),
            created_at: time(t.created_at),
            last_used_at: t.last_used_at.map(time),
            revoked_at: t.revoked_at.map(time),
            token: None,
        }
    }
}

/// Who the request's credential is.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    pub actor: String,
    pub account_id: Option<String>,
    pub role: Role,
    /// A merchant account's apps; absent for roles that see every app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<String>>,
    /// What the role may do (`cashdesk_core::Permission` names).
    pub permissions: Vec<&'static str>,
}

pub async fn me(by: Principal) -> ApiResult<Success<MeView>> {
    Ok(Success(MeView {
        actor: by.actor.clone(),
        account_id: by.account_id.clone(),
        role: by.role,
        apps: by
            .app_scope()
            .map(|apps| apps.iter().map(ToString::to_string).collect()),
        permissions: Permission::ALL
            .iter()
            .filter(|p| by.can(**p))
            .map(|p| p.as_str())
            .collect(),
    }))
}

pub fn parse_role(field: &str, s: &str) -> ServiceResult<Role> {
    Role::parse(s).ok_or_else(|| {
        ServiceError::invalid(
            field,
            "must be admin, operator, finance, auditor or merchant",
        )
    })
}

/// `apps`: an array of app ids.
fn parse_apps(body: &Map<String, Value>) -> ServiceResult<Option<Vec<AppId>>> {
    let Some(v) = body.get("apps").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let items = v
        .as_array()
        .filter(|a| a.len() <= 100)
        .ok_or_else(|| ServiceError::invalid("apps", "must be an array of at most 100 app ids"))?;
    items
        .iter()
        .map(|i| {
            i.as_str()
                .and_then(|s| AppId::parse(s).ok())
                .ok_or_else(|| ServiceError::invalid("apps", "must be an array of app ids"))
        })
        .collect::<ServiceResult<Vec<_>>>()
        .map(Some)
}

/// The account `id`, for an administrator (`accounts.manage`, checked
/// before the account is looked up).
async fn managed(state: &AppState, by: &Principal, id: &str) -> ApiResult<Account> {
    by.require(Permission::AccountsManage)?;
    Ok(accounts::get(state, id).await?)
}

pub async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> ApiResult<Success<Vec<AccountView>>> {
    by.require(Permission::AccountsManage)?;
    let list = state.store.list_accounts().await?;
    Ok(Success(list.iter().map(AccountView::from).collect()))
}

/// `{username, role, apps?, password}`.
pub async fn create(
    State(state): State<AppState>,
    by: Principal,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<AccountView>> {
    by.require(Permission::AccountsManage)?;
    let f = Fields(&body);
    let new = NewAccount {
        username: f.str_req("username", 64)?.to_owned(),
        role: parse_role("role", f.str_req("role", 16)?)?,
        apps: parse_apps(&body)?.unwrap_or_default(),
        password: Secret::new(
            f.text_req("password", accounts::MAX_PASSWORD * 4)?
                .to_owned(),
        ),
    };
    let account = accounts::create(&state, new, &by).await?;
    Ok(Success(AccountView::from(&account)))
}

pub async fn get(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<AccountView>> {
    Ok(Success(AccountView::from(
        &managed(&state, &by, &id).await?,
    )))
}

/// `{role?, apps?, disabled?}`: what is given changes; a new role or
/// scope, or disabling, signs the account out everywhere.
pub async fn settings(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<AccountView>> {
    let account = managed(&state, &by, &id).await?;
    let f = Fields(&body);
    let update = AccountUpdate {
        role: f
            .str_opt("role", 16)?
            .map(|r| parse_role("role", r))
            .transpose()?,
        apps: parse_apps(&body)?,
        disabled: f.bool_opt("disabled")?,
        ..AccountUpdate::default()
    };
    if update == AccountUpdate::default() {
        return Err(ServiceError::invalid("role", "give role, apps and/or disabled").into());
    }
    if update.disabled == Some(true)
        && by.account_id.as_deref() == Some(account.account_id.as_str())
    {
        return Err(ServiceError::invalid("disabled", "an account cannot disable itself").into());
    }
    let updated = accounts::update(&state, &account, update, "account.update", &by).await?;
    Ok(Success(AccountView::from(&updated)))
}

/// `{password}`: an administrator's reset; unlocks the account and signs
/// it out everywhere.
pub async fn reset_password(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<AccountView>> {
    let account = managed(&state, &by, &id).await?;
    let password = Fields(&body).text_req("password", accounts::MAX_PASSWORD * 4)?;
    accounts::check_password("password", password)?;
    let update = AccountUpdate {
        password_hash: Some(accounts::hash_password(password)?),
        unlock: true,
        ..AccountUpdate::default()
    };
    let updated = accounts::update(&state, &account, update, "account.password_reset", &by).await?;
    Ok(Success(AccountView::from(&updated)))
}

/// Removes the account's TOTP second factor (a lost phone).
pub async fn reset_totp(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<AccountView>> {
    let account = managed(&state, &by, &id).await?;
    let update = AccountUpdate {
        totp: Some(None),
        ..AccountUpdate::default()
    };
    let updated = accounts::update(&state, &account, update, "account.totp_reset", &by).await?;
    Ok(Success(AccountView::from(&updated)))
}

pub async fn list_tokens(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<Vec<TokenView>>> {
    let account = managed(&state, &by, &id).await?;
    let tokens = state.store.list_tokens(&account.account_id).await?;
    Ok(Success(tokens.iter().map(TokenView::from).collect()))
}

/// `{name}`: a new API token of the account, in this answer only.
pub async fn create_token(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Success<TokenView>> {
    let account = managed(&state, &by, &id).await?;
    let name = Fields(&body).text_req("name", 64)?;
    let (token, clear) = accounts::create_token(&state, &account, name, &by).await?;
    let mut view = TokenView::from(&token);
    view.token = Some(clear.expose().to_owned());
    Ok(Success(view))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    by: Principal,
    PathParam(id): PathParam,
) -> ApiResult<Success<Value>> {
    by.require(Permission::AccountsManage)?;
    accounts::revoke_token(&state, &id, None, &by).await?;
    Ok(Success(
        serde_json::json!({ "tokenId": id, "revoked": true }),
    ))
}
