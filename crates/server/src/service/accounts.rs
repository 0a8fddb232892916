//! Console accounts: creation and changes by an administrator, passwords
//! (argon2id), sign-in with its throttle, the optional TOTP second factor,
//! and API tokens (docs/console.md).
//!
//! # Sign-in
//!
//! One answer for every refusal — unknown user, wrong password, wrong or
//! missing code, disabled, locked — so the form tells a stranger nothing
//! about which usernames exist; the audit log and the account's own
//! counter tell the operator. An unknown username is hashed against a
//! decoy so it takes as long as a known one. [`MAX_FAILURES`] wrong
//! attempts in a row lock the account for [`LOCK_SECS`]; a good sign-in
//! or an administrator's password reset clears the count. The per-address
//! limit is the console's ([`crate::console::auth`]).

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use cashdesk_core::{AccountId, AppId, Role, TokenId};
use cashdesk_crypto::{Secret, random};
use cashdesk_store::{Account, AccountUpdate, ApiToken};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use totp_rs::{Algorithm as TotpAlgorithm, TOTP};

use crate::access::{Principal, Via};
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;

/// Wrong passwords (or codes) in a row before the account is locked.
pub const MAX_FAILURES: i32 = 5;
/// How long a locked account stays locked.
pub const LOCK_SECS: i64 = 15 * 60;
/// Password length bounds (characters).
pub const MIN_PASSWORD: usize = 12;
pub const MAX_PASSWORD: usize = 128;
/// What an API token starts with (how the operator API tells it from the
/// break-glass token).
pub const TOKEN_PREFIX: &str = "cdk_";

/// argon2id with OWASP's second recommended setting (19 MiB, 2 passes,
/// one lane): about 30 ms a hash on a small server.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The hash an unknown username is checked against (same cost).
static DECOY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("decoy password that no account has").unwrap_or_default());

/// An argon2id PHC string of `password` with a fresh salt.
pub fn hash_password(password: &str) -> ServiceResult<String> {
    let salt = SaltString::encode_b64(&random::bytes(16))
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("salt: {e}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `hash` (constant time).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// The password rule: 12 to 128 characters, not all the same character.
pub fn check_password(field: &str, password: &str) -> ServiceResult<()> {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(ServiceError::invalid(
            field,
            format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(ServiceError::invalid(
            field,
            "must not repeat one character",
        ));
    }
    Ok(())
}

/// A username: 3 to 64 of `[a-z0-9._-]`, starting with a letter or digit.
pub fn check_username(username: &str) -> ServiceResult<()> {
    let ok = (3..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && username
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "username",
            "must be 3 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
        ))
    }
}

/// What a new account is.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub role: Role,
    pub apps: Vec<AppId>,
    pub password: Secret,
}

/// A merchant account needs at least one app, and every app must exist;
/// other roles have none.
async fn check_scope(state: &AppState, role: Role, apps: &[AppId]) -> ServiceResult<()> {
    if !role.is_scoped() {
        if apps.is_empty() {
            return Ok(());
        }
        return Err(ServiceError::invalid(
            "apps",
            format!("only merchant accounts have apps; a {role} sees every app"),
        ));
    }
    if apps.is_empty() {
        return Err(ServiceError::invalid(
            "apps",
            "a merchant account needs at least one app",
        ));
    }
    for app in apps {
        if state.store.get_app(app).await?.is_none() {
            return Err(ServiceError::invalid(
                "apps",
                format!("app {app} not found"),
            ));
        }
    }
    Ok(())
}

/// What the audit log keeps of an account (no hash, no secret).
pub fn audit_view(a: &Account) -> Value {
    json!({
        "username": a.username,
        "role": a.role,
        "apps": a.apps,
        "disabled": a.disabled,
        "totp": a.totp_enabled,
    })
}

pub async fn create(state: &AppState, new: NewAccount, by: &Principal) -> ServiceResult<Account> {
    check_username(&new.username)?;
    check_password("password", new.password.expose())?;
    check_scope(state, new.role, &new.apps).await?;
    let now = Utc::now();
    let account = Account {
        account_id: AccountId::generate(),
        username: new.username,
        role: new.role,
        apps: new.apps,
        password_hash: hash_password(new.password.expose())?,
        totp_sealed: None,
        totp_enabled: false,
        disabled: false,
        failed_logins: 0,
        locked_until: None,
        created_at: now,
        updated_at: now,
    };
    let audit = by
        .audit("account.create", account.account_id.as_str(), Value::Null)
        .with_change(Value::Null, audit_view(&account));
    match state.store.create_account(&account, &audit).await {
        Ok(()) => Ok(account),
        Err(cashdesk_store::StoreError::Conflict(_)) => Err(ServiceError::Conflict(format!(
            "username {} is taken",
            account.username
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn get(state: &AppState, id: &str) -> ServiceResult<Account> {
    let not_found = || ServiceError::not_found(format!("account {id}"));
    let id = AccountId::parse(id).ok_or_else(not_found)?;
    state.store.get_account(&id).await?.ok_or_else(not_found)
}

/// An administrator's (or, for `password` and `totp`, the account's own)
/// change, audited with the account before and after.
pub async fn update(
    state: &AppState,
    account: &Account,
    update: AccountUpdate,
    action: &str,
    by: &Principal,
) -> ServiceResult<Account> {
    if update.role.is_some() || update.apps.is_some() {
        let role = update.role.unwrap_or(account.role);
        let apps = update.apps.as_deref().unwrap_or(&account.apps);
        check_scope(state, role, apps).await?;
    }
    let mut after = account.clone();
    if let Some(role) = update.role {
        after.role = role;
    }
    if let Some(apps) = &update.apps {
        after.apps.clone_from(apps);
    }
    if let Some(disabled) = update.disabled {
        after.disabled = disabled;
    }
    if let Some(totp) = &update.totp {
        after.totp_enabled = totp.as_ref().is_some_and(|(_, on)| *on);
    }
    let mut detail = json!({});
    if update.password_hash.is_some() {
        detail["password"] = json!("changed");
    }
    if update.unlock {
        detail["unlocked"] = json!(true);
    }
    let audit = by
        .audit(action, account.account_id.as_str(), detail)
        .with_change(audit_view(account), audit_view(&after));
    state
        .store
        .update_account(&account.account_id, &update, Utc::now(), &audit)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("account {}", account.account_id)))
}

/// Why a sign-in was refused (the form shows one message for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Unknown user, wrong password, wrong or missing code, disabled.
    Refused,
    /// Locked until the time (after [`MAX_FAILURES`]).
    Locked,
}

/// Checks a sign-in. `code` is the TOTP code, asked only of accounts that
/// turned it on. Audited: every refusal of a known account, the lock and
/// the success.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    code: Option<&str>,
    ip: Option<std::net::IpAddr>,
) -> ServiceResult<Result<Account, LoginRefusal>> {
    let now = Utc::now();
    let Some(account) = state.store.find_account(username).await? else {
        // Same work as a real check: the time says nothing.
        let _ = verify_password(password, &DECOY_HASH);
        return Ok(Err(LoginRefusal::Refused));
    };
    let by = Principal {
        ip,
        ..principal_of(&account, Via::Session)
    };
    if account.locked_until.is_some_and(|t| t > now) {
        super::audit(
            state,
            &by,
            "account.login_refused",
            account.account_id.as_str(),
            json!({"reason": "locked"}),
        )
        .await;
        return Ok(Err(LoginRefusal::Locked));
    }
    let password_ok = verify_password(password, &account.password_hash);
    let code_ok = !account.totp_enabled
        || code.is_some_and(|c| check_totp_code(state, &account, c).unwrap_or(false));
    if password_ok && code_ok && !account.disabled {
        state
            .store
            .record_login_success(&account.account_id)
            .await?;
        super::audit(
            state,
            &by,
            "account.login",
            account.account_id.as_str(),
            Value::Null,
        )
        .await;
        return Ok(Ok(account));
    }
    let reason = if account.disabled {
        "disabled"
    } else if !password_ok {
        "password"
    } else {
        "code"
    };
    let (failures, locked) = state
        .store
        .record_login_failure(
            &account.account_id,
            MAX_FAILURES,
            now + Duration::seconds(LOCK_SECS),
        )
        .await?;
    let just_locked = locked.is_some_and(|t| t > now) && failures >= MAX_FAILURES;
    super::audit(
        state,
        &by,
        if just_locked {
            "account.locked"
        } else {
            "account.login_refused"
        },
        account.account_id.as_str(),
        json!({ "reason": reason, "failures": failures }),
    )
    .await;
    Ok(Err(if just_locked {
        LoginRefusal::Locked
    } else {
        LoginRefusal::Refused
    }))
}

/// The principal an account acts as.
pub fn principal_of(account: &Account, via: Via) -> Principal {
    Principal {
        actor: account.username.clone(),
        account_id: Some(account.account_id.to_string()),
        role: account.role,
        apps: if account.role.is_scoped() {
            account.apps.clone()
        } else {
            Vec::new()
        },
        ip: None,
        via,
    }
}

fn totp_aad(id: &AccountId) -> String {
    format!("account:{id}:totp")
}

/// RFC 6238 with the authenticator apps' defaults: SHA-1, 6 digits, 30 s,
/// one step of clock skew either way.
fn totp(secret: &[u8], username: &str) -> ServiceResult<TOTP> {
    TOTP::new(
        TotpAlgorithm::SHA1,
        6,
        1,
        30,
        secret.to_vec(),
        Some("cashdesk".to_owned()),
        username.to_owned(),
    )
    .map_err(|e| ServiceError::internal(anyhow::anyhow!("TOTP: {e}")))
}

/// A new TOTP secret for `account`, sealed, and its `otpauth://` URL (for
/// the QR code); the check stays off until a code confirms it
/// ([`confirm_totp`]).
pub fn new_totp(state: &AppState, account: &Account) -> ServiceResult<(Vec<u8>, String)> {
    let secret = random::bytes(20);
    let url = totp(&secret, &account.username)?.get_url();
    let sealed = state
        .master_key
        .seal(&secret, totp_aad(&account.account_id).as_bytes());
    Ok((sealed, url))
}

/// The `otpauth://` URL of a sealed secret (shown again while enrolling).
pub fn totp_url(state: &AppState, account: &Account, sealed: &[u8]) -> ServiceResult<String> {
    let secret = open_totp(state, account, sealed)?;
    Ok(totp(&secret, &account.username)?.get_url())
}

fn open_totp(state: &AppState, account: &Account, sealed: &[u8]) -> ServiceResult<Vec<u8>> {
    state
        .master_key
        .open(sealed, totp_aad(&account.account_id).as_bytes())
        .map(|s| s.to_vec())
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("opening a TOTP secret: {e}")))
}

/// Whether `code` is the account's current TOTP code (±30 s).
pub fn check_totp_code(state: &AppState, account: &Account, code: &str) -> ServiceResult<bool> {
    let Some(sealed) = &account.totp_sealed else {
        return Ok(false);
    };
    let secret = open_totp(state, account, sealed)?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(false);
    }
    totp(&secret, &account.username)?
        .check_current(code)
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("clock: {e}")))
}

/// The current code of a sealed secret (tests and `cashdesk account`).
pub fn current_totp_code(state: &AppState, account: &Account) -> ServiceResult<Option<String>> {
    let Some(sealed) = &account.totp_sealed else {
        return Ok(None);
    };
    let secret = open_totp(state, account, sealed)?;
    totp(&secret, &account.username)?
        .generate_current()
        .map(Some)
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("clock: {e}")))
}

/// A new API token of `account`: `(token row, the token in clear)`; the
/// clear token exists only in this answer.
pub async fn create_token(
    state: &AppState,
    account: &Account,
    name: &str,
    by: &Principal,
) -> ServiceResult<(ApiToken, Secret)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ServiceError::invalid("name", "must be 1 to 64 characters"));
    }
    let clear = Secret::new(format!("{TOKEN_PREFIX}{}", random::token(32)));
    let token = ApiToken {
        token_id: TokenId::generate(),
        account_id: account.account_id.clone(),
        name: name.to_owned(),
        created_at: Utc::now(),
        last_used_at: None,
        revoked_at: None,
    };
    let audit = by.audit(
        "token.create",
        token.token_id.as_str(),
        json!({ "account": account.username, "name": token.name }),
    );
    state
        .store
        .create_token(&token, &token_hash(clear.expose()), &audit)
        .await?;
    Ok((token, clear))
}

/// Revokes a token of `account` (or any token, for an administrator).
pub async fn revoke_token(
    state: &AppState,
    token_id: &str,
    owner: Option<&AccountId>,
    by: &Principal,
) -> ServiceResult<()> {
    let not_found = || ServiceError::not_found(format!("token {token_id}"));
    let id = TokenId::parse(token_id).ok_or_else(not_found)?;
    let token = state.store.get_token(&id).await?.ok_or_else(not_found)?;
    if owner.is_some_and(|o| *o != token.account_id) {
        return Err(not_found());
    }
    let audit = by
        .audit("token.revoke", id.as_str(), json!({ "name": token.name }))
        .with_change(json!({"revoked": false}), json!({"revoked": true}));
    if state.store.revoke_token(&id, Utc::now(), &audit).await? {
        Ok(())
    } else {
        Err(ServiceError::state_not_allowed(format!(
            "token {token_id} is already revoked"
        )))
    }
}

/// How a token or a session cookie is kept: hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(cashdesk_crypto::digest::sha256(token.as_bytes()))
}

/// The principal of an API token (`cdk_…`), if it is a live token of an
/// enabled account. Notes the use at most once a minute.
pub async fn token_principal(state: &AppState, token: &str) -> ServiceResult<Option<Principal>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let Some((t, account)) = state.store.find_token(&token_hash(token)).await? else {
        return Ok(None);
    };
    if account.disabled {
        return Ok(None);
    }
    let now = Utc::now();
    if t.last_used_at
        .is_none_or(|at| now - at > Duration::seconds(60))
    {
        state.store.touch_token(&t.token_id, now).await?;
    }
    Ok(Some(principal_of(&account, Via::ApiToken)))
}

/// When a lock ends, for the form ("try again after …").
pub fn locked_until(account: &Account, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    account.locked_until.filter(|t| *t > now)
}
