//! The operator API's accounts and tokens (`/api/admin/accounts`,
//! `/api/admin/tokens`, `/api/admin/me`): an administrator's calls
//! (`accounts.manage`), and `me` for any credential.

use reqwest::Method;
use serde_json::{Value, json};

use crate::Result;
use crate::admin::{AdminClient, seg};

impl AdminClient {
    /// `GET /api/admin/me`: who this token is, its role and permissions.
    pub async fn me(&self) -> Result<Value> {
        self.request(Method::GET, "/api/admin/me", None).await
    }

    /// `GET /api/admin/accounts` (by username).
    pub async fn list_accounts(&self) -> Result<Value> {
        self.request(Method::GET, "/api/admin/accounts", None).await
    }

    /// `GET /api/admin/accounts/{accountId}`.
    pub async fn get_account(&self, account_id: &str) -> Result<Value> {
        let path = format!("/api/admin/accounts/{}", seg(account_id)?);
        self.request(Method::GET, &path, None).await
    }

    /// `POST /api/admin/accounts` `{username, role, apps, password}`:
    /// `apps` for a merchant account only.
    pub async fn create_account(
        &self,
        username: &str,
        role: &str,
        apps: &[String],
        password: &str,
    ) -> Result<Value> {
        let body =
            json!({ "username": username, "role": role, "apps": apps, "password": password });
        self.request(Method::POST, "/api/admin/accounts", Some(&body))
            .await
    }

    /// `POST /api/admin/accounts/{accountId}/settings` `{role?, apps?,
    /// disabled?}` (what is given changes; the account is signed out).
    pub async fn update_account(&self, account_id: &str, changes: &Value) -> Result<Value> {
        let path = format!("/api/admin/accounts/{}/settings", seg(account_id)?);
        self.request(Method::POST, &path, Some(changes)).await
    }

    /// `POST /api/admin/accounts/{accountId}/password` `{password}`: a
    /// reset, which also unlocks the account.
    pub async fn reset_password(&self, account_id: &str, password: &str) -> Result<Value> {
        let path = format!("/api/admin/accounts/{}/password", seg(account_id)?);
        self.request(Method::POST, &path, Some(&json!({ "password": password })))
            .await
    }

    /// `POST /api/admin/accounts/{accountId}/totp/reset`: removes the
    /// account's second factor.
    pub async fn reset_totp(&self, account_id: &str) -> Result<Value> {
        let path = format!("/api/admin/accounts/{}/totp/reset", seg(account_id)?);
        self.request(Method::POST, &path, Some(&json!({}))).await
    }

    /// `GET /api/admin/accounts/{accountId}/tokens` (never the tokens).
    pub async fn list_tokens(&self, account_id: &str) -> Result<Value> {
        let path = format!("/api/admin/accounts/{}/tokens", seg(account_id)?);
        self.request(Method::GET, &path, None).await
    }

    /// `POST /api/admin/accounts/{accountId}/tokens` `{name}`: the answer's
    /// `token` is the only copy.
    pub async fn create_token(&self, account_id: &str, name: &str) -> Result<Value> {
        let path = format!("/api/admin/accounts/{}/tokens", seg(account_id)?);
        self.request(Method::POST, &path, Some(&json!({ "name": name })))
            .await
    }

    /// `POST /api/admin/tokens/{tokenId}/revoke`.
    pub async fn revoke_token(&self, token_id: &str) -> Result<Value> {
        let path = format!("/api/admin/tokens/{}/revoke", seg(token_id)?);
        self.request(Method::POST, &path, Some(&json!({}))).await
    }
}
