//! What an app can be paid with: channel configs (a merchant account at a
//! provider, its credentials sealed), channels (a config and a scene) and
//! bindings (an app's, or one of its stores', approved use of a channel),
//! and the join of the three an order is offered ([`Channels::bound_channels`]).

use async_trait::async_trait;
use cashdesk_core::{AppId, BindingId, BindingState, ChannelId, ConfigId, StoreId};
use chrono::{DateTime, Utc};

use crate::common::{Backend, Sql, SqlStore, state_literal};
use crate::rows::{
    BINDING_COLS, BOUND_COLS, CHANNEL_COLS, CONFIG_COLS, RawBinding, RawBound, RawChannel,
    RawConfig,
};
use crate::{
    Binding, BindingFilter, BoundChannel, Channel, ChannelConfig, Inserted, Result, StoreError,
};

/// Channel configs, channels and the bindings of apps to channels.
#[async_trait]
pub trait Channels: Send + Sync {
    // --- channel configs and channels ---
    async fn insert_channel_config(&self, config: &ChannelConfig) -> Result<()>;
    async fn get_channel_config(&self, config_id: &ConfigId) -> Result<Option<ChannelConfig>>;
    async fn list_channel_configs(&self) -> Result<Vec<ChannelConfig>>;
    async fn set_channel_config_enabled(&self, config_id: &ConfigId, enabled: bool)
    -> Result<bool>;
    /// Replaces the sealed credentials; `None` if the config does not exist.
    async fn replace_channel_credentials(
        &self,
        config_id: &ConfigId,
        credentials_sealed: &[u8],
        at: DateTime<Utc>,
    ) -> Result<Option<ChannelConfig>>;
    /// `NotFound` if the config does not exist.
    async fn insert_channel(&self, channel: &Channel) -> Result<()>;
    async fn get_channel(&self, channel_id: &ChannelId) -> Result<Option<Channel>>;
    async fn list_channels(&self) -> Result<Vec<Channel>>;
    async fn set_channel_enabled(&self, channel_id: &ChannelId, enabled: bool) -> Result<bool>;

    // --- bindings ---
    /// Unique per (app, channel, store). Applying again returns the
    /// existing binding, whatever its state.
    async fn insert_binding(&self, binding: &Binding) -> Result<Inserted<Binding>>;
    async fn get_binding(&self, binding_id: &BindingId) -> Result<Option<Binding>>;
    async fn list_bindings(&self, filter: &BindingFilter) -> Result<Vec<Binding>>;
    /// PENDING → `to` (APPROVED or REJECTED), compare-and-set. `None` if the
    /// binding is not pending (or does not exist).
    async fn decide_binding(
        &self,
        binding_id: &BindingId,
        to: BindingState,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Binding>>;
    /// Approve every pending binding whose `auto_approve_at` has passed.
    async fn approve_due_bindings(&self, now: DateTime<Utc>) -> Result<u64>;
    /// What an order of `app_id` (and `store_id`) may be paid with: approved
    /// bindings for the app (app-wide, or for that store), enabled channel,
    /// enabled config; one entry per channel (a store binding wins over an
    /// app-wide one), ordered by `sort` then channel id.
    async fn bound_channels(
        &self,
        app_id: &AppId,
        store_id: Option<&StoreId>,
    ) -> Result<Vec<BoundChannel>>;
}

/// Who approved a binding whose `auto_approve_at` passed.
pub(crate) const AUTO_APPROVER: &str = "auto";

/// `bindings.store_id` is NOT NULL with `''` for "every store of the app", so
/// the unique key (app, channel, store) also holds for app-wide bindings
/// (NULLs would never conflict).
fn store_key(store_id: Option<&StoreId>) -> &str {
    store_id.map_or("", StoreId::as_str)
}

impl<B: Backend> SqlStore<B> {
    async fn binding_by_key(
        &self,
        app_id: &AppId,
        channel_id: &ChannelId,
        store_id: Option<&StoreId>,
    ) -> Result<Option<Binding>> {
        let sql = Sql::new(format!(
            "SELECT {BINDING_COLS} FROM bindings WHERE app_id = $1 AND channel_id = $2 AND store_id = $3"
        ))
        .bind(app_id.as_str())
        .bind(channel_id.as_str())
        .bind(store_key(store_id));
        self.one::<RawBinding, _>(sql).await
    }
}

#[async_trait]
impl<B: Backend> Channels for SqlStore<B> {
    // --- channel configs and channels ---

    async fn insert_channel_config(&self, c: &ChannelConfig) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO channel_configs ({CONFIG_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(c.config_id.as_str())
        .bind(c.channel_type.as_str())
        .bind(c.name.as_str())
        .bind(c.mch_id.as_str())
        .bind(c.api_version.as_deref())
        .bind(c.credentials_sealed.as_slice())
        .bind(c.base_url.as_deref())
        .bind(c.enabled)
        .bind(c.created_at)
        .bind(c.credentials_updated_at);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn get_channel_config(&self, config_id: &ConfigId) -> Result<Option<ChannelConfig>> {
        let sql = Sql::new(format!(
            "SELECT {CONFIG_COLS} FROM channel_configs WHERE config_id = $1"
        ))
        .bind(config_id.as_str());
        self.one::<RawConfig, _>(sql).await
    }

    async fn list_channel_configs(&self) -> Result<Vec<ChannelConfig>> {
        self.all::<RawConfig, _>(Sql::new(format!(
            "SELECT {CONFIG_COLS} FROM channel_configs ORDER BY config_id"
        )))
        .await
    }

    async fn set_channel_config_enabled(
        &self,
        config_id: &ConfigId,
        enabled: bool,
    ) -> Result<bool> {
        let sql = Sql::new("UPDATE channel_configs SET enabled = $1 WHERE config_id = $2")
            .bind(enabled)
            .bind(config_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    async fn replace_channel_credentials(
        &self,
        config_id: &ConfigId,
        credentials_sealed: &[u8],
        at: DateTime<Utc>,
    ) -> Result<Option<ChannelConfig>> {
        let sql = Sql::new(format!(
            "UPDATE channel_configs SET credentials_sealed = $1, credentials_updated_at = $2 \
             WHERE config_id = $3 RETURNING {CONFIG_COLS}"
        ))
        .bind(credentials_sealed)
        .bind(at)
        .bind(config_id.as_str());
        self.one::<RawConfig, _>(sql).await
    }

    async fn insert_channel(&self, c: &Channel) -> Result<()> {
        let sql = Sql::new(format!(
            "INSERT INTO channels ({CHANNEL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(c.channel_id.as_str())
        .bind(c.config_id.as_str())
        .bind(c.scene_code.as_str())
        .bind(c.channel_name.as_str())
        .bind(c.sort)
        .bind(c.enabled)
        .bind(c.created_at);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn get_channel(&self, channel_id: &ChannelId) -> Result<Option<Channel>> {
        let sql = Sql::new(format!(
            "SELECT {CHANNEL_COLS} FROM channels WHERE channel_id = $1"
        ))
        .bind(channel_id.as_str());
        self.one::<RawChannel, _>(sql).await
    }

    async fn list_channels(&self) -> Result<Vec<Channel>> {
        self.all::<RawChannel, _>(Sql::new(format!(
            "SELECT {CHANNEL_COLS} FROM channels ORDER BY channel_id"
        )))
        .await
    }

    async fn set_channel_enabled(&self, channel_id: &ChannelId, enabled: bool) -> Result<bool> {
        let sql = Sql::new("UPDATE channels SET enabled = $1 WHERE channel_id = $2")
            .bind(enabled)
            .bind(channel_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    // --- bindings ---

    async fn insert_binding(&self, b: &Binding) -> Result<Inserted<Binding>> {
        let sql = Sql::new(format!(
            "INSERT INTO bindings ({BINDING_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (app_id, channel_id, store_id) DO NOTHING RETURNING {BINDING_COLS}"
        ))
        .bind(b.binding_id.as_str())
        .bind(b.app_id.as_str())
        .bind(b.channel_id.as_str())
        .bind(store_key(b.store_id.as_ref()))
        .bind(b.state.as_str())
        .bind(b.created_at)
        .bind(b.auto_approve_at)
        .bind(b.decided_at)
        .bind(b.decided_by.as_deref());
        if let Some(new) = self.one::<RawBinding, Binding>(sql).await? {
            return Ok(Inserted::New(new));
        }
        self.binding_by_key(&b.app_id, &b.channel_id, b.store_id.as_ref())
            .await?
            .map(Inserted::Existing)
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "binding {} conflicts but has no twin",
                    b.binding_id
                ))
            })
    }

    async fn get_binding(&self, binding_id: &BindingId) -> Result<Option<Binding>> {
        let sql = Sql::new(format!(
            "SELECT {BINDING_COLS} FROM bindings WHERE binding_id = $1"
        ))
        .bind(binding_id.as_str());
        self.one::<RawBinding, _>(sql).await
    }

    async fn list_bindings(&self, filter: &BindingFilter) -> Result<Vec<Binding>> {
        let mut sql = Sql::new("");
        let mut cond = vec!["TRUE".to_owned()];
        cond.extend(sql.app_scope("app_id", filter.app_ids.as_deref()));
        if let Some(app_id) = &filter.app_id {
            cond.push(format!("app_id = {}", sql.push_arg(app_id.as_str())));
        }
        if let Some(state) = filter.state {
            cond.push(format!("state = {}", state_literal(state.as_str())));
        }
        sql.text = format!(
            "SELECT {BINDING_COLS} FROM bindings WHERE {} ORDER BY binding_id",
            cond.join(" AND ")
        );
        self.all::<RawBinding, _>(sql).await
    }

    async fn decide_binding(
        &self,
        binding_id: &BindingId,
        to: BindingState,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Binding>> {
        if to == BindingState::Pending {
            // Not a decision: nothing to apply.
            return Ok(None);
        }
        let sql = Sql::new(format!(
            "UPDATE bindings SET state = $1, decided_at = $2, decided_by = $3 \
             WHERE binding_id = $4 AND state = {} RETURNING {BINDING_COLS}",
            state_literal(BindingState::Pending.as_str())
        ))
        .bind(to.as_str())
        .bind(now)
        .bind(by)
        .bind(binding_id.as_str());
        self.one::<RawBinding, _>(sql).await
    }

    async fn approve_due_bindings(&self, now: DateTime<Utc>) -> Result<u64> {
        let sql = Sql::new(format!(
            "UPDATE bindings SET state = $1, decided_at = $2, decided_by = $3 \
             WHERE state = {} AND auto_approve_at IS NOT NULL AND auto_approve_at <= $2",
            state_literal(BindingState::Pending.as_str())
        ))
        .bind(BindingState::Approved.as_str())
        .bind(now)
        .bind(AUTO_APPROVER);
        self.backend.execute(sql).await
    }

    async fn bound_channels(
        &self,
        app_id: &AppId,
        store_id: Option<&StoreId>,
    ) -> Result<Vec<BoundChannel>> {
        // App-wide bindings (store_id '') always qualify; a store's own
        // binding only for that store. Without a store, $3 is '' too.
        let sql = Sql::new(format!(
            "SELECT {BOUND_COLS} FROM bindings b \
             JOIN channels c ON c.channel_id = b.channel_id \
             JOIN channel_configs g ON g.config_id = c.config_id \
             WHERE b.app_id = $1 AND b.state = {} AND c.enabled AND g.enabled \
             AND (b.store_id = '' OR b.store_id = $2)",
            state_literal(BindingState::Approved.as_str())
        ))
        .bind(app_id.as_str())
        .bind(store_key(store_id));
        let mut rows: Vec<BoundChannel> = self.all::<RawBound, _>(sql).await?;
        // One entry per channel, the store's binding before the app-wide
        // one; then the display order. Sorted here rather than in SQL so the
        // order does not depend on a database collation.
        rows.sort_by(|a, b| {
            (
                a.channel.sort,
                a.channel.channel_id.as_str(),
                a.binding.store_id.is_none(),
            )
                .cmp(&(
                    b.channel.sort,
                    b.channel.channel_id.as_str(),
                    b.binding.store_id.is_none(),
                ))
        });
        rows.dedup_by(|later, first| later.channel.channel_id == first.channel.channel_id);
        Ok(rows)
    }
}
