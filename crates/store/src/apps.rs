//! The merchants' apps: their settings and their signing keys (sealed),
//! with a key rotation that keeps the previous key for a while.

use async_trait::async_trait;
use cashdesk_core::{AppId, NotifyUrl};
use chrono::{DateTime, Utc};

use crate::common::{Backend, Sql, SqlStore, Tx, state_literals, tx_one};
use crate::rows::{APP_COLS, RawApp};
use crate::{App, AppSettingsUpdate, NotificationState, Result};

/// The merchants' apps.
#[async_trait]
pub trait Apps: Send + Sync {
    async fn insert_app(&self, app: &App) -> Result<()>;
    async fn get_app(&self, app_id: &AppId) -> Result<Option<App>>;
    async fn list_apps(&self) -> Result<Vec<App>>;
    /// `false` if no such app.
    async fn set_app_enabled(&self, app_id: &AppId, enabled: bool) -> Result<bool>;
    /// Change the settings that are `Some` in `update`; the app as stored
    /// afterwards, `None` if no such app. A new notify URL also becomes
    /// the URL of the app's notifications that are not delivered (pending
    /// or failed) and were addressed to its old one (orders that named
    /// their own URL keep it), in the same transaction; the second value
    /// is how many were readdressed.
    async fn update_app_settings(
        &self,
        app_id: &AppId,
        update: &AppSettingsUpdate,
    ) -> Result<Option<(App, u64)>>;
    /// Replaces the app's key (sealed; RSA2/SM2 apps: and its public key):
    /// the current one becomes the previous key, accepted until
    /// `previous_valid_until`; a previous key from an earlier rotation is
    /// dropped. The app is unconfirmed until [`Apps::confirm_app_key`].
    /// `None` if the app does not exist.
    async fn rotate_app_key(
        &self,
        app_id: &AppId,
        key_sealed: &[u8],
        public_key_pem: Option<&str>,
        previous_valid_until: DateTime<Utc>,
    ) -> Result<Option<App>>;
    /// Records that the app signed a request with its current key.
    async fn confirm_app_key(&self, app_id: &AppId) -> Result<()>;
}

#[async_trait]
impl<B: Backend> Apps for SqlStore<B> {
    async fn insert_app(&self, app: &App) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO apps ({APP_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(app.app_id.as_str())
        .bind(app.app_name.as_str())
        .bind(app.sign_type.as_str())
        .bind(app.app_key_sealed.as_slice())
        .bind(app.public_key_pem.as_deref())
        .bind(app.notify_url.as_ref().map(NotifyUrl::as_str))
        .bind(app.refund_review)
        .bind(app.enabled)
        .bind(app.created_at)
        .bind(app.auto_refund_paid_after_close)
        .bind(app.previous_key.as_ref().map(|p| p.key_sealed.as_slice()))
        .bind(
            app.previous_key
                .as_ref()
                .and_then(|p| p.public_key_pem.as_deref()),
        )
        .bind(app.previous_key.as_ref().map(|p| p.valid_until))
        .bind(app.key_confirmed)
        .bind(app.refund_applications.mode.as_str())
        .bind(i32::try_from(app.refund_applications.days).unwrap_or(i32::MAX))
        .bind(app.refund_applications.on_timeout.as_str());
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn get_app(&self, app_id: &AppId) -> Result<Option<App>> {
        let sql = Sql::new(format!("SELECT {APP_COLS} FROM apps WHERE app_id = $1"))
            .bind(app_id.as_str());
        self.one::<RawApp, _>(sql).await
    }

    async fn list_apps(&self) -> Result<Vec<App>> {
        self.all::<RawApp, _>(Sql::new(format!(
            "SELECT {APP_COLS} FROM apps ORDER BY created_at, app_id"
        )))
        .await
    }

    async fn set_app_enabled(&self, app_id: &AppId, enabled: bool) -> Result<bool> {
        let sql = Sql::new("UPDATE apps SET enabled = $1 WHERE app_id = $2")
            .bind(enabled)
            .bind(app_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    async fn update_app_settings(
        &self,
        app_id: &AppId,
        update: &AppSettingsUpdate,
    ) -> Result<Option<(App, u64)>> {
        let mut tx = self.backend.begin().await?;
        // Before the app changes: the subquery reads its old URL.
        let readdressed = match &update.notify_url {
            Some(Some(url)) => {
                let sql = Sql::new(format!(
                    "UPDATE notifications SET url = $1 WHERE app_id = $2 AND state IN ({}) \
                     AND url = (SELECT notify_url FROM apps WHERE app_id = $2)",
                    state_literals([
                        NotificationState::Pending.as_str(),
                        NotificationState::Failed.as_str(),
                    ])
                ))
                .bind(url.as_str())
                .bind(app_id.as_str());
                tx.execute(sql).await?
            }
            _ => 0,
        };
        let sql = Sql::new(format!(
            "UPDATE apps SET refund_review = COALESCE($1, refund_review), \
             auto_refund_paid_after_close = COALESCE($2, auto_refund_paid_after_close), \
             notify_url = CASE WHEN $3 THEN $4 ELSE notify_url END, \
             refund_application_mode = COALESCE($6, refund_application_mode), \
             refund_application_days = COALESCE($7, refund_application_days), \
             refund_application_timeout = COALESCE($8, refund_application_timeout) \
             WHERE app_id = $5 RETURNING {APP_COLS}"
        ))
        .bind(update.refund_review)
        .bind(update.auto_refund_paid_after_close)
        .bind(update.notify_url.is_some())
        .bind(
            update
                .notify_url
                .as_ref()
                .and_then(|u| u.as_ref().map(NotifyUrl::as_str)),
        )
        .bind(app_id.as_str())
        .bind(update.refund_applications.map(|p| p.mode.as_str()))
        .bind(
            update
                .refund_applications
                .map(|p| i32::try_from(p.days).unwrap_or(i32::MAX)),
        )
        .bind(update.refund_applications.map(|p| p.on_timeout.as_str()));
        let Some(app) = tx_one::<_, RawApp, App>(&mut tx, sql).await? else {
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some((app, readdressed)))
    }

    async fn rotate_app_key(
        &self,
        app_id: &AppId,
        key_sealed: &[u8],
        public_key_pem: Option<&str>,
        previous_valid_until: DateTime<Utc>,
    ) -> Result<Option<App>> {
        // The right-hand sides read the row as it was before the update.
        let sql = Sql::new(format!(
            "UPDATE apps SET previous_key_sealed = app_key_sealed, \
             previous_public_key_pem = public_key_pem, previous_key_until = $1, \
             app_key_sealed = $2, public_key_pem = $3, key_confirmed = $4 \
             WHERE app_id = $5 RETURNING {APP_COLS}"
        ))
        .bind(previous_valid_until)
        .bind(key_sealed)
        .bind(public_key_pem)
        .bind(false)
        .bind(app_id.as_str());
        self.one::<RawApp, _>(sql).await
    }

    async fn confirm_app_key(&self, app_id: &AppId) -> Result<()> {
        let sql =
            Sql::new("UPDATE apps SET key_confirmed = $1 WHERE app_id = $2 AND key_confirmed = $3")
                .bind(true)
                .bind(app_id.as_str())
                .bind(false);
        self.backend.execute(sql).await?;
        Ok(())
    }
}
