//! The stores of an app (its shops or sites) and their merchant
//! identities, sealed, one per channel config.

use async_trait::async_trait;
use cashdesk_core::{AppId, ConfigId, StoreId};
use chrono::{DateTime, Utc};

use crate::common::{Backend, Sql, SqlStore};
use crate::rows::{IDENTITY_COLS, RawIdentity, RawStore, STORE_COLS};
use crate::{MerchantStore, Result, StoreError, StoreIdentity, StoreUpdate};

/// The stores of apps and their merchant identities.
#[async_trait]
pub trait MerchantStores: Send + Sync {
    /// `Conflict` if the app already has this store, `NotFound` if the app
    /// does not exist.
    async fn insert_store(&self, store: &MerchantStore) -> Result<()>;
    async fn get_store(&self, app_id: &AppId, store_id: &StoreId) -> Result<Option<MerchantStore>>;
    /// Ordered by app then store id; every app's when `app_id` is `None`.
    async fn list_stores(&self, app_id: Option<&AppId>) -> Result<Vec<MerchantStore>>;
    /// Changes what `update` sets and `updated_at`; `None` if no such store.
    async fn update_store(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        update: &StoreUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<MerchantStore>>;
    /// Insert or replace the store's identity at the config (one upsert;
    /// a replacement keeps `created_at`). Returns the stored row.
    /// `NotFound` if the store or the config does not exist.
    async fn put_store_identity(&self, identity: &StoreIdentity) -> Result<StoreIdentity>;
    async fn get_store_identity(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        config_id: &ConfigId,
    ) -> Result<Option<StoreIdentity>>;
    /// Ordered by config id.
    async fn list_store_identities(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
    ) -> Result<Vec<StoreIdentity>>;
    /// Every store's identity at one config (reconciliation fetches a
    /// bill per sub-merchant), ordered by app and store.
    async fn list_config_identities(&self, config_id: &ConfigId) -> Result<Vec<StoreIdentity>>;
    /// `false` if there was none. Orders already paying with it keep their
    /// copy ([`Order::store_identity_sealed`](crate::Order::store_identity_sealed)).
    async fn delete_store_identity(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        config_id: &ConfigId,
    ) -> Result<bool>;
}

#[async_trait]
impl<B: Backend> MerchantStores for SqlStore<B> {
    async fn insert_store(&self, st: &MerchantStore) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO stores ({STORE_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(st.app_id.as_str())
        .bind(st.store_id.as_str())
        .bind(st.name.as_str())
        .bind(st.enabled)
        .bind(st.created_at)
        .bind(st.updated_at);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn get_store(&self, app_id: &AppId, store_id: &StoreId) -> Result<Option<MerchantStore>> {
        let sql = Sql::new(format!(
            "SELECT {STORE_COLS} FROM stores WHERE app_id = $1 AND store_id = $2"
        ))
        .bind(app_id.as_str())
        .bind(store_id.as_str());
        self.one::<RawStore, _>(sql).await
    }

    async fn list_stores(&self, app_id: Option<&AppId>) -> Result<Vec<MerchantStore>> {
        let sql = match app_id {
            Some(a) => Sql::new(format!(
                "SELECT {STORE_COLS} FROM stores WHERE app_id = $1 ORDER BY app_id, store_id"
            ))
            .bind(a.as_str()),
            None => Sql::new(format!(
                "SELECT {STORE_COLS} FROM stores ORDER BY app_id, store_id"
            )),
        };
        let mut stores: Vec<MerchantStore> = self.all::<RawStore, _>(sql).await?;
        // By bytes, whatever the database collation.
        stores.sort_by(|a, b| {
            (a.app_id.as_str(), a.store_id.as_str()).cmp(&(b.app_id.as_str(), b.store_id.as_str()))
        });
        Ok(stores)
    }

    async fn update_store(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        update: &StoreUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<MerchantStore>> {
        let sql = Sql::new(format!(
            "UPDATE stores SET name = COALESCE($1, name), enabled = COALESCE($2, enabled), \
             updated_at = $3 WHERE app_id = $4 AND store_id = $5 RETURNING {STORE_COLS}"
        ))
        .bind(update.name.as_deref())
        .bind(update.enabled)
        .bind(now)
        .bind(app_id.as_str())
        .bind(store_id.as_str());
        self.one::<RawStore, _>(sql).await
    }

    async fn put_store_identity(&self, i: &StoreIdentity) -> Result<StoreIdentity> {
        // One upsert: a second put replaces the fields and keeps created_at.
        let sql = Sql::new(format!(
            "INSERT INTO store_identities ({IDENTITY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (app_id, store_id, config_id) DO UPDATE SET mch_id = excluded.mch_id, \
             identity_sealed = excluded.identity_sealed, updated_at = excluded.updated_at \
             RETURNING {IDENTITY_COLS}"
        ))
        .bind(i.app_id.as_str())
        .bind(i.store_id.as_str())
        .bind(i.config_id.as_str())
        .bind(i.mch_id.as_str())
        .bind(i.identity_sealed.as_slice())
        .bind(i.created_at)
        .bind(i.updated_at);
        self.one::<RawIdentity, StoreIdentity>(sql)
            .await?
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "identity of store {} at {} was not written",
                    i.store_id, i.config_id
                ))
            })
    }

    async fn get_store_identity(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        config_id: &ConfigId,
    ) -> Result<Option<StoreIdentity>> {
        let sql = Sql::new(format!(
            "SELECT {IDENTITY_COLS} FROM store_identities \
             WHERE app_id = $1 AND store_id = $2 AND config_id = $3"
        ))
        .bind(app_id.as_str())
        .bind(store_id.as_str())
        .bind(config_id.as_str());
        self.one::<RawIdentity, _>(sql).await
    }

    async fn list_store_identities(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
    ) -> Result<Vec<StoreIdentity>> {
        let sql = Sql::new(format!(
            "SELECT {IDENTITY_COLS} FROM store_identities WHERE app_id = $1 AND store_id = $2"
        ))
        .bind(app_id.as_str())
        .bind(store_id.as_str());
        let mut all: Vec<StoreIdentity> = self.all::<RawIdentity, _>(sql).await?;
        all.sort_by(|a, b| a.config_id.cmp(&b.config_id));
        Ok(all)
    }

    async fn list_config_identities(&self, config_id: &ConfigId) -> Result<Vec<StoreIdentity>> {
        let sql = Sql::new(format!(
            "SELECT {IDENTITY_COLS} FROM store_identities WHERE config_id = $1 \
             ORDER BY app_id, store_id"
        ))
        .bind(config_id.as_str());
        self.all::<RawIdentity, _>(sql).await
    }

    async fn delete_store_identity(
        &self,
        app_id: &AppId,
        store_id: &StoreId,
        config_id: &ConfigId,
    ) -> Result<bool> {
        let sql = Sql::new(
            "DELETE FROM store_identities WHERE app_id = $1 AND store_id = $2 AND config_id = $3",
        )
        .bind(app_id.as_str())
        .bind(store_id.as_str())
        .bind(config_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }
}
