//! Mini-program access tokens shared by every instance (issue 17 §1):
//! one row per AppID with the token (sealed by the caller), its expiry,
//! and the lease that lets one instance at a time refresh it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use crate::common::{Backend, Sql, SqlStore};
use crate::rows::Ts;

/// A mini-program's token row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpToken {
    pub appid: String,
    /// Sealed by the caller; `None` before the first refresh and after
    /// the token was refused.
    pub token_sealed: Option<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The next refresh must ask WeChat for a new token (the one it kept
    /// handing out was refused).
    pub force_refresh: bool,
    pub refresh_owner: Option<String>,
    pub refresh_until: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait MpTokens: Send + Sync {
    async fn get_mp_token(&self, appid: &str) -> Result<Option<MpToken>>;
    /// Takes the refresh lease of `appid` for `owner` until `until`, if
    /// nobody holds it now (`true`): one refresh in flight per AppID.
    async fn claim_mp_token_refresh(
        &self,
        appid: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Stores a refreshed token and gives the lease back.
    async fn store_mp_token(
        &self,
        appid: &str,
        token_sealed: &[u8],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Gives the lease back without a token (the refresh failed).
    async fn release_mp_token_refresh(&self, appid: &str, owner: &str) -> Result<()>;
    /// Forgets the token if it is still `token_sealed` (WeChat refused
    /// it), and asks the next refresh to force a new one.
    async fn forget_mp_token(
        &self,
        appid: &str,
        token_sealed: &[u8],
        now: DateTime<Utc>,
    ) -> Result<()>;
}

const COLS: &str = "appid, token_sealed, expires_at, force_refresh, refresh_owner, refresh_until";

#[async_trait]
impl<B: Backend> MpTokens for SqlStore<B> {
    async fn get_mp_token(&self, appid: &str) -> Result<Option<MpToken>> {
        let sql = Sql::new(format!(
            "SELECT {COLS} FROM mp_access_tokens WHERE appid = $1"
        ))
        .bind(appid);
        self.one::<Raw, MpToken>(sql).await
    }

    async fn claim_mp_token_refresh(
        &self,
        appid: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = Sql::new(
            "INSERT INTO mp_access_tokens (appid, force_refresh, refresh_owner, refresh_until, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (appid) DO UPDATE SET refresh_owner = excluded.refresh_owner, \
             refresh_until = excluded.refresh_until, updated_at = excluded.updated_at \
             WHERE mp_access_tokens.refresh_until IS NULL OR mp_access_tokens.refresh_until < $5",
        )
        .bind(appid)
        .bind(false)
        .bind(owner)
        .bind(until)
        .bind(now);
        Ok(self.backend.execute(sql).await? == 1)
    }

    async fn store_mp_token(
        &self,
        appid: &str,
        token_sealed: &[u8],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = Sql::new(
            "UPDATE mp_access_tokens SET token_sealed = $1, expires_at = $2, force_refresh = $3, \
             refresh_owner = NULL, refresh_until = NULL, updated_at = $4 WHERE appid = $5",
        )
        .bind(token_sealed)
        .bind(expires_at)
        .bind(false)
        .bind(now)
        .bind(appid);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn release_mp_token_refresh(&self, appid: &str, owner: &str) -> Result<()> {
        let sql = Sql::new(
            "UPDATE mp_access_tokens SET refresh_owner = NULL, refresh_until = NULL \
             WHERE appid = $1 AND refresh_owner = $2",
        )
        .bind(appid)
        .bind(owner);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn forget_mp_token(
        &self,
        appid: &str,
        token_sealed: &[u8],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = Sql::new(
            "UPDATE mp_access_tokens SET token_sealed = NULL, expires_at = NULL, \
             force_refresh = $1, updated_at = $2 WHERE appid = $3 AND token_sealed = $4",
        )
        .bind(true)
        .bind(now)
        .bind(appid)
        .bind(token_sealed);
        self.backend.execute(sql).await?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct Raw {
    appid: String,
    token_sealed: Option<Vec<u8>>,
    expires_at: Option<Ts>,
    force_refresh: bool,
    refresh_owner: Option<String>,
    refresh_until: Option<Ts>,
}

impl TryFrom<Raw> for MpToken {
    type Error = crate::StoreError;

    fn try_from(r: Raw) -> Result<Self> {
        Ok(MpToken {
            appid: r.appid,
            token_sealed: r.token_sealed,
            expires_at: r.expires_at.map(|t| t.0),
            force_refresh: r.force_refresh,
            refresh_owner: r.refresh_owner,
            refresh_until: r.refresh_until.map(|t| t.0),
        })
    }
}
