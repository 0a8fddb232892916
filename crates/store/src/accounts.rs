//! Console accounts, their API tokens and their sessions (issue 16).
//!
//! Secrets are never stored: an account keeps an argon2id hash of its
//! password and its TOTP secret sealed by the caller; a token and a
//! session cookie are kept as their SHA-256 (the caller hashes). Every
//! change an administrator makes is written with its audit entry in one
//! transaction. The login throttle's counter is one compare-free
//! `UPDATE … RETURNING`, so two instances counting the same account's
//! failures never lose one.

use async_trait::async_trait;
use cashdesk_core::{AccountId, AppId, Role, TokenId};
use chrono::{DateTime, Utc};

use crate::audit::insert_audit_in;
use crate::common::{Backend, Sql, SqlStore, Tx};
use crate::rows::{Ts, corrupt, id};
use crate::{AuditEntry, Result};

/// A console account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: AccountId,
    /// Unique; how the account signs in and what the audit log names.
    pub username: String,
    pub role: Role,
    /// The apps a merchant account is scoped to (empty for other roles).
    pub apps: Vec<AppId>,
    /// argon2id, PHC string format.
    pub password_hash: String,
    /// The TOTP secret, sealed under the master key by the caller.
    pub totp_sealed: Option<Vec<u8>>,
    /// Whether a TOTP code is asked at sign-in (the secret is confirmed).
    pub totp_enabled: bool,
    pub disabled: bool,
    /// Wrong passwords (or codes) since the last good sign-in.
    pub failed_logins: i32,
    /// No sign-in before this time.
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an administrator may change about an account (absent: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    pub role: Option<Role>,
    pub apps: Option<Vec<AppId>>,
    pub password_hash: Option<String>,
    pub disabled: Option<bool>,
    /// `Some(None)` removes the TOTP secret (and turns the check off).
    pub totp: Option<Option<(Vec<u8>, bool)>>,
    /// Clears the throttle (a password reset unlocks the account).
    pub unlock: bool,
}

/// An account's API token (the token itself is shown once, never kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub token_id: TokenId,
    pub account_id: AccountId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A console session (kept under the SHA-256 of its cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account_id: AccountId,
    pub csrf: String,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[async_trait]
pub trait Accounts: Send + Sync {
    /// Creates the account; a taken username is `Conflict`.
    async fn create_account(&self, account: &Account, audit: &AuditEntry) -> Result<()>;
    async fn get_account(&self, id: &AccountId) -> Result<Option<Account>>;
    async fn find_account(&self, username: &str) -> Result<Option<Account>>;
    /// Every account, by username.
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Applies `update` with its audit entry; `None` if there is no such
    /// account. A changed password, role, scope or a disabled account
    /// ends the account's sessions in the same transaction.
    async fn update_account(
        &self,
        id: &AccountId,
        update: &AccountUpdate,
        now: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<Option<Account>>;
    /// Counts a failed sign-in; at `max_failures` the account is locked
    /// until `lock_until`. Returns the count and the lock.
    async fn record_login_failure(
        &self,
        id: &AccountId,
        max_failures: i32,
        lock_until: DateTime<Utc>,
    ) -> Result<(i32, Option<DateTime<Utc>>)>;
    /// A good sign-in: the throttle starts again.
    async fn record_login_success(&self, id: &AccountId) -> Result<()>;

    /// Stores a token under `token_hash` (hex SHA-256).
    async fn create_token(
        &self,
        token: &ApiToken,
        token_hash: &str,
        audit: &AuditEntry,
    ) -> Result<()>;
    /// The unrevoked token of this hash, with its account.
    async fn find_token(&self, token_hash: &str) -> Result<Option<(ApiToken, Account)>>;
    /// Notes a token's use (at most about once a minute is enough).
    async fn touch_token(&self, id: &TokenId, now: DateTime<Utc>) -> Result<()>;
    /// An account's tokens, newest first, revoked ones included.
    async fn list_tokens(&self, account: &AccountId) -> Result<Vec<ApiToken>>;
    async fn get_token(&self, id: &TokenId) -> Result<Option<ApiToken>>;
    /// Revokes a token; `false` if it does not exist or was revoked.
    async fn revoke_token(
        &self,
        id: &TokenId,
        now: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<bool>;

    async fn create_session(&self, session_hash: &str, session: &Session) -> Result<()>;
    async fn get_session(&self, session_hash: &str) -> Result<Option<Session>>;
    async fn touch_session(&self, session_hash: &str, now: DateTime<Utc>) -> Result<()>;
    async fn delete_session(&self, session_hash: &str) -> Result<()>;
    /// Removes the sessions last seen before `idle_before` or created
    /// before `created_before`; returns how many.
    async fn purge_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64>;
}

const COLS: &str = "account_id, username, role, apps, password_hash, totp_sealed, totp_enabled, \
                    disabled, failed_logins, locked_until, created_at, updated_at";
const TOKEN_COLS: &str = "token_id, account_id, name, created_at, last_used_at, revoked_at";
const SESSION_COLS: &str = "account_id, csrf, ip, created_at, last_seen_at";

fn apps_json(apps: &[AppId]) -> String {
    let ids: Vec<&str> = apps.iter().map(AppId::as_str).collect();
    serde_json::Value::from(ids).to_string()
}

#[async_trait]
impl<B: Backend> Accounts for SqlStore<B> {
    async fn create_account(&self, a: &Account, audit: &AuditEntry) -> Result<()> {
        let mut tx = self.backend.begin().await?;
        let sql = Sql::new(format!(
            "INSERT INTO accounts ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(a.account_id.as_str())
        .bind(a.username.as_str())
        .bind(a.role.as_str())
        .bind(apps_json(&a.apps))
        .bind(a.password_hash.as_str())
        .bind(a.totp_sealed.as_deref())
        .bind(a.totp_enabled)
        .bind(a.disabled)
        .bind(a.failed_logins)
        .bind(a.locked_until)
        .bind(a.created_at)
        .bind(a.updated_at);
        tx.execute(sql).await?;
        insert_audit_in(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn get_account(&self, id: &AccountId) -> Result<Option<Account>> {
        let sql = Sql::new(format!("SELECT {COLS} FROM accounts WHERE account_id = $1"))
            .bind(id.as_str());
        self.one::<RawAccount, Account>(sql).await
    }

    async fn find_account(&self, username: &str) -> Result<Option<Account>> {
        let sql =
            Sql::new(format!("SELECT {COLS} FROM accounts WHERE username = $1")).bind(username);
        self.one::<RawAccount, Account>(sql).await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        let sql = Sql::new(format!("SELECT {COLS} FROM accounts ORDER BY username"));
        self.all::<RawAccount, Account>(sql).await
    }

    async fn update_account(
        &self,
        id: &AccountId,
        u: &AccountUpdate,
        now: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<Option<Account>> {
        let mut sql = Sql::new("");
        let mut set = vec![format!("updated_at = {}", sql.push_arg(now))];
        if let Some(role) = u.role {
            set.push(format!("role = {}", sql.push_arg(role.as_str())));
        }
        if let Some(apps) = &u.apps {
            set.push(format!("apps = {}", sql.push_arg(apps_json(apps))));
        }
        if let Some(hash) = &u.password_hash {
            set.push(format!("password_hash = {}", sql.push_arg(hash.as_str())));
        }
        if let Some(disabled) = u.disabled {
            set.push(format!("disabled = {}", sql.push_arg(disabled)));
        }
        if let Some(totp) = &u.totp {
            let (sealed, enabled) = match totp {
                Some((sealed, enabled)) => (Some(sealed.as_slice()), *enabled),
                None => (None, false),
            };
            set.push(format!("totp_sealed = {}", sql.push_arg(sealed)));
            set.push(format!("totp_enabled = {}", sql.push_arg(enabled)));
        }
        if u.unlock {
            set.push("failed_logins = 0".to_owned());
            set.push("locked_until = NULL".to_owned());
        }
        let id_arg = sql.push_arg(id.as_str());
        sql.text = format!(
            "UPDATE accounts SET {} WHERE account_id = {id_arg} RETURNING {COLS}",
            set.join(", ")
        );
        let mut tx = self.backend.begin().await?;
        let Some(raw) = tx.fetch_optional::<RawAccount>(sql).await? else {
            return Ok(None);
        };
        let account = Account::try_from(raw)?;
        let ends_sessions = u.role.is_some()
            || u.apps.is_some()
            || u.password_hash.is_some()
            || u.disabled == Some(true);
        if ends_sessions {
            tx.execute(
                Sql::new("DELETE FROM console_sessions WHERE account_id = $1").bind(id.as_str()),
            )
            .await?;
        }
        insert_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(account))
    }

    async fn record_login_failure(
        &self,
        id: &AccountId,
        max_failures: i32,
        lock_until: DateTime<Utc>,
    ) -> Result<(i32, Option<DateTime<Utc>>)> {
        let sql = Sql::new(
            "UPDATE accounts SET failed_logins = failed_logins + 1, \
             locked_until = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until END \
             WHERE account_id = $3 RETURNING failed_logins, locked_until",
        )
        .bind(max_failures)
        .bind(lock_until)
        .bind(id.as_str());
        let row = self.backend.fetch_optional::<RawThrottle>(sql).await?;
        Ok(row.map_or((0, None), |r| {
            (r.failed_logins, r.locked_until.map(|t| t.0))
        }))
    }

    async fn record_login_success(&self, id: &AccountId) -> Result<()> {
        let sql = Sql::new(
            "UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE account_id = $1",
        )
        .bind(id.as_str());
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn create_token(&self, t: &ApiToken, token_hash: &str, audit: &AuditEntry) -> Result<()> {
        let mut tx = self.backend.begin().await?;
        let sql = Sql::new(format!(
            "INSERT INTO account_tokens ({TOKEN_COLS}, token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(t.token_id.as_str())
        .bind(t.account_id.as_str())
        .bind(t.name.as_str())
        .bind(t.created_at)
        .bind(t.last_used_at)
        .bind(t.revoked_at)
        .bind(token_hash);
        tx.execute(sql).await?;
        insert_audit_in(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<(ApiToken, Account)>> {
        let sql = Sql::new(format!(
            "SELECT {TOKEN_COLS} FROM account_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(token_hash);
        let Some(token) = self.one::<RawToken, ApiToken>(sql).await? else {
            return Ok(None);
        };
        Ok(self
            .get_account(&token.account_id)
            .await?
            .map(|account| (token, account)))
    }

    async fn touch_token(&self, id: &TokenId, now: DateTime<Utc>) -> Result<()> {
        let sql = Sql::new("UPDATE account_tokens SET last_used_at = $1 WHERE token_id = $2")
            .bind(now)
            .bind(id.as_str());
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn list_tokens(&self, account: &AccountId) -> Result<Vec<ApiToken>> {
        let sql = Sql::new(format!(
            "SELECT {TOKEN_COLS} FROM account_tokens WHERE account_id = $1 ORDER BY token_id DESC"
        ))
        .bind(account.as_str());
        self.all::<RawToken, ApiToken>(sql).await
    }

    async fn get_token(&self, id: &TokenId) -> Result<Option<ApiToken>> {
        let sql = Sql::new(format!(
            "SELECT {TOKEN_COLS} FROM account_tokens WHERE token_id = $1"
        ))
        .bind(id.as_str());
        self.one::<RawToken, ApiToken>(sql).await
    }

    async fn revoke_token(
        &self,
        id: &TokenId,
        now: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let mut tx = self.backend.begin().await?;
        let n = tx
            .execute(
                Sql::new(
                    "UPDATE account_tokens SET revoked_at = $1 \
                     WHERE token_id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(id.as_str()),
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        insert_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_session(&self, session_hash: &str, s: &Session) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO console_sessions (session_hash, {SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(session_hash)
        .bind(s.account_id.as_str())
        .bind(s.csrf.as_str())
        .bind(s.ip.as_deref())
        .bind(s.created_at)
        .bind(s.last_seen_at);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn get_session(&self, session_hash: &str) -> Result<Option<Session>> {
        let sql = Sql::new(format!(
            "SELECT {SESSION_COLS} FROM console_sessions WHERE session_hash = $1"
        ))
        .bind(session_hash);
        self.one::<RawSession, Session>(sql).await
    }

    async fn touch_session(&self, session_hash: &str, now: DateTime<Utc>) -> Result<()> {
        let sql = Sql::new("UPDATE console_sessions SET last_seen_at = $1 WHERE session_hash = $2")
            .bind(now)
            .bind(session_hash);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn delete_session(&self, session_hash: &str) -> Result<()> {
        let sql =
            Sql::new("DELETE FROM console_sessions WHERE session_hash = $1").bind(session_hash);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn purge_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64> {
        let sql =
            Sql::new("DELETE FROM console_sessions WHERE last_seen_at < $1 OR created_at < $2")
                .bind(idle_before)
                .bind(created_before);
        self.backend.execute(sql).await
    }
}

#[derive(sqlx::FromRow)]
struct RawAccount {
    account_id: String,
    username: String,
    role: String,
    apps: String,
    password_hash: String,
    totp_sealed: Option<Vec<u8>>,
    totp_enabled: bool,
    disabled: bool,
    failed_logins: i32,
    locked_until: Option<Ts>,
    created_at: Ts,
    updated_at: Ts,
}

impl TryFrom<RawAccount> for Account {
    type Error = crate::StoreError;

    fn try_from(r: RawAccount) -> Result<Self> {
        let apps: Vec<String> =
            serde_json::from_str(&r.apps).map_err(|_| corrupt("accounts.apps", &r.apps))?;
        Ok(Account {
            account_id: id("accounts.account_id", r.account_id, AccountId::parse)?,
            role: Role::parse(&r.role).ok_or_else(|| corrupt("accounts.role", &r.role))?,
            apps: apps
                .iter()
                .map(|a| AppId::parse(a).map_err(|_| corrupt("accounts.apps", a)))
                .collect::<Result<_>>()?,
            username: r.username,
            password_hash: r.password_hash,
            totp_sealed: r.totp_sealed,
            totp_enabled: r.totp_enabled,
            disabled: r.disabled,
            failed_logins: r.failed_logins,
            locked_until: r.locked_until.map(|t| t.0),
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RawThrottle {
    failed_logins: i32,
    locked_until: Option<Ts>,
}

#[derive(sqlx::FromRow)]
struct RawToken {
    token_id: String,
    account_id: String,
    name: String,
    created_at: Ts,
    last_used_at: Option<Ts>,
    revoked_at: Option<Ts>,
}

impl TryFrom<RawToken> for ApiToken {
    type Error = crate::StoreError;

    fn try_from(r: RawToken) -> Result<Self> {
        Ok(ApiToken {
            token_id: id("account_tokens.token_id", r.token_id, TokenId::parse)?,
            account_id: id("account_tokens.account_id", r.account_id, AccountId::parse)?,
            name: r.name,
            created_at: r.created_at.0,
            last_used_at: r.last_used_at.map(|t| t.0),
            revoked_at: r.revoked_at.map(|t| t.0),
        })
    }
}

#[derive(sqlx::FromRow)]
struct RawSession {
    account_id: String,
    csrf: String,
    ip: Option<String>,
    created_at: Ts,
    last_seen_at: Ts,
}

impl TryFrom<RawSession> for Session {
    type Error = crate::StoreError;

    fn try_from(r: RawSession) -> Result<Self> {
        Ok(Session {
            account_id: id(
                "console_sessions.account_id",
                r.account_id,
                AccountId::parse,
            )?,
            csrf: r.csrf,
            ip: r.ip,
            created_at: r.created_at.0,
            last_seen_at: r.last_seen_at.0,
        })
    }
}
