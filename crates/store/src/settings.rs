//! Small values shared by every instance: settings (platform keys, …),
//! written once, and the request nonces that stop a signed request from
//! being replayed on any instance.

use async_trait::async_trait;
use cashdesk_core::AppId;
use chrono::{DateTime, Utc};

use crate::common::{Backend, Sql, SqlStore};
use crate::{Result, StoreError};

/// Settings and request nonces.
#[async_trait]
pub trait Settings: Send + Sync {
    // --- settings: small shared values (platform keys, …) ---
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Insert unless present; returns the value that is stored afterwards
    /// (ours, or the one another instance stored first).
    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<String>;

    // --- request nonces (replay protection across instances) ---
    /// Record `nonce` for `app_id` until `expires_at`. `true` if it was not
    /// seen (or only an expired copy was), `false` for a replay.
    async fn use_nonce(
        &self,
        app_id: &AppId,
        nonce: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Delete expired nonces; returns how many.
    async fn purge_nonces(&self, now: DateTime<Utc>) -> Result<u64>;
}

#[async_trait]
impl<B: Backend> Settings for SqlStore<B> {
    // --- settings ---

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        let sql = Sql::new("SELECT value FROM settings WHERE name = $1").bind(key);
        Ok(self
            .backend
            .fetch_optional::<(String,)>(sql)
            .await?
            .map(|(v,)| v))
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<String> {
        let insert = Sql::new(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(key)
        .bind(value);
        self.backend.execute(insert).await?;
        // Ours or the first writer's: settings are never changed afterwards.
        self.get_setting(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("setting `{key}` vanished after insert")))
    }

    // --- nonces ---

    async fn use_nonce(
        &self,
        app_id: &AppId,
        nonce: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        // One statement: a fresh nonce is inserted; an expired copy is
        // taken over; a live copy makes the upsert's WHERE false, so nothing
        // changes. Under concurrency the database serialises the key, so
        // exactly one caller sees a changed row.
        let sql = Sql::new(
            "INSERT INTO nonces (app_id, nonce, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (app_id, nonce) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE nonces.expires_at <= $4",
        )
        .bind(app_id.as_str())
        .bind(nonce)
        .bind(expires_at)
        .bind(now);
        Ok(self.backend.execute(sql).await? == 1)
    }

    async fn purge_nonces(&self, now: DateTime<Utc>) -> Result<u64> {
        self.backend
            .execute(Sql::new("DELETE FROM nonces WHERE expires_at <= $1").bind(now))
            .await
    }
}
