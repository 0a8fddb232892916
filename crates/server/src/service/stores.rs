//! Stores (ARCHITECTURE.md §7): the shops of an app, and each store's own
//! merchant identity per channel config.
//!
//! # Stores
//!
//! A store belongs to an app (`(appId, storeId)` is unique) and has a name
//! and an enabled flag. An order's or a binding application's `storeId`
//! must name an existing, enabled store of the app ([`require_store`]):
//! unknown → 400 `STORE_UNKNOWN` (4003), disabled → 403 `STORE_DISABLED`
//! (4034), and nothing is stored. A payment of an order whose store has
//! been disabled since is refused the same way; an existing order's
//! queries, closes, refunds and notifications are not (money may have
//! moved). Orders and bindings written before stores existed keep their
//! free-form `storeId` (no foreign key), and idempotent replays of an
//! order answer as before.
//!
//! # Store identities
//!
//! A store may carry its own merchant identity at a channel config: the
//! WeChat sub-merchant of a service-provider config (`{subMchId,
//! subAppId?}`), its Lakala merchant/terminal numbers (`{merchantNo,
//! termNo, subAppId?}`), the app authorization of its own Alipay merchant
//! (`{appAuthToken, authAppId, sellerId?}`). The fields are checked by the
//! channel adapter ([`cashdesk_channels::validate_store_identity`], as
//! credentials are), sealed under the master key (AAD
//! `store:<appId>:<storeId>:<configId>:identity`) and shown with secret
//! fields masked. Without an identity, a store's orders use the config's
//! own account.
//!
//! When an order moves to PAYING, the identity it is paid with is copied
//! (still sealed) into the order; queries, closes, refunds and the check of
//! its notifications use that copy, so changing or deleting a store's
//! identity never strands the orders already made with it.
//!
//! # The store in the channel's attach field
//!
//! The attach-style field of a store's order (WeChat `attach`, Alipay
//! `passback_params`, Lakala `remark`) carries [`attach_tag`]
//! (`cashdesk-store:<storeId>`) instead of the merchant's `attach`, which
//! cashdesk keeps and returns itself (query, merchant notification). A
//! notification that echoes the field must echo the tag of its order's
//! store ([`check_attach`]): with the identity check of
//! [`cashdesk_channels::Channel::check_merchant`], a notification is only
//! applied to an order of the store it was made for, even when two stores
//! share one config and one notify URL.

use cashdesk_channels::{StoreMerchant, validate_store_identity};
use cashdesk_core::{AppId, ConfigId, StoreId};
use cashdesk_store::{ChannelConfig, MerchantStore, Order, StoreIdentity, StoreUpdate};
use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::access::Principal;
use crate::input::Fields;
use crate::service::channels::mask;
use crate::service::error::{ServiceError, ServiceResult, StoreRefusal};
use crate::state::AppState;
use crate::wire::{StoreIdentityView, StoreView};

/// The prefix of [`attach_tag`].
pub const ATTACH_TAG_PREFIX: &str = "cashdesk-store:";

pub fn identity_aad(app_id: &AppId, store_id: &StoreId, config_id: &ConfigId) -> String {
    format!("store:{app_id}:{store_id}:{config_id}:identity")
}

/// What a store's order carries in the channel's attach-style field.
pub fn attach_tag(store_id: &StoreId) -> String {
    format!("{ATTACH_TAG_PREFIX}{store_id}")
}

/// The attach-style value sent to the channel for `order`: the store tag
/// for a store's order, else the merchant's own `attach`.
pub fn channel_attach(order: &Order) -> Option<String> {
    match &order.store_id {
        Some(s) => Some(attach_tag(s)),
        None => order.attach.clone(),
    }
}

/// A notification of a store's order that echoes the attach field must
/// echo its store's tag.
pub fn check_attach(order: &Order, notified: Option<&str>) -> Result<(), String> {
    match (&order.store_id, notified) {
        (Some(s), Some(got)) if got != attach_tag(s) => Err(format!(
            "the notification's attach `{got}` is not store {s}'s tag"
        )),
        _ => Ok(()),
    }
}

fn parse_app_id(s: &str) -> ServiceResult<AppId> {
    AppId::parse(s).map_err(|_| ServiceError::not_found(format!("app {s}")))
}

fn parse_store_id(s: &str) -> ServiceResult<StoreId> {
    StoreId::parse(s).map_err(|_| ServiceError::not_found(format!("store {s}")))
}

/// The store `store_id` of `app_id`, which must exist and be enabled
/// (4003 / 4034 otherwise, `data = {field: "storeId"}`).
pub async fn require_store(
    state: &AppState,
    app_id: &AppId,
    store_id: &StoreId,
) -> ServiceResult<MerchantStore> {
    match state.store.get_store(app_id, store_id).await? {
        None => Err(StoreRefusal::Unknown {
            app_id: app_id.clone(),
            store_id: store_id.clone(),
        }
        .into()),
        Some(s) if !s.enabled => Err(StoreRefusal::Disabled {
            store_id: store_id.clone(),
        }
        .into()),
        Some(s) => Ok(s),
    }
}

/// Opens a sealed identity into what the adapter reads.
pub(crate) fn open_identity(
    state: &AppState,
    app_id: &AppId,
    store_id: &StoreId,
    config_id: &ConfigId,
    sealed: &[u8],
) -> ServiceResult<StoreMerchant> {
    let plain = state
        .master_key
        .open(sealed, identity_aad(app_id, store_id, config_id).as_bytes())
        .map_err(|e| {
            ServiceError::internal(anyhow::anyhow!(
                "cannot open the identity of store {store_id} at {config_id}: {e}"
            ))
        })?;
    let fields: Value = serde_json::from_slice(&plain).map_err(|e| {
        ServiceError::internal(anyhow::anyhow!(
            "identity of store {store_id} at {config_id} is not JSON: {e}"
        ))
    })?;
    Ok(StoreMerchant::new(store_id.as_str(), fields))
}

/// The identity an order is being paid with (its sealed copy), if any.
pub fn order_identity(state: &AppState, order: &Order) -> ServiceResult<Option<StoreMerchant>> {
    let (Some(sealed), Some(store_id), Some(ch)) = (
        order.store_identity_sealed.as_deref(),
        order.store_id.as_ref(),
        order.channel.as_ref(),
    ) else {
        return Ok(None);
    };
    open_identity(state, &order.app_id, store_id, &ch.config_id, sealed).map(Some)
}

/// A store's current identity at a config: the stored row (for its sealed
/// bytes and `mchId`) and what the adapter reads.
pub async fn current_identity(
    state: &AppState,
    app_id: &AppId,
    store_id: &StoreId,
    config_id: &ConfigId,
) -> ServiceResult<Option<(StoreIdentity, StoreMerchant)>> {
    let Some(row) = state
        .store
        .get_store_identity(app_id, store_id, config_id)
        .await?
    else {
        return Ok(None);
    };
    let merchant = open_identity(state, app_id, store_id, config_id, &row.identity_sealed)?;
    Ok(Some((row, merchant)))
}

/// The identity a notification for `order` at `config` must be for: the
/// order's copy once it is paying; for an order that never recorded its
/// channel (a crash between the channel call and the transition), the
/// store's current identity at that config.
pub async fn notification_identity(
    state: &AppState,
    order: &Order,
    config_id: &ConfigId,
) -> ServiceResult<Option<StoreMerchant>> {
    if order.channel.is_some() {
        return order_identity(state, order);
    }
    match &order.store_id {
        Some(s) => Ok(current_identity(state, &order.app_id, s, config_id)
            .await?
            .map(|(_, m)| m)),
        None => Ok(None),
    }
}

// --- the operator's API ---

async fn view(state: &AppState, s: &MerchantStore) -> ServiceResult<StoreView> {
    let configs = state.store.list_channel_configs().await?;
    let identities = state
        .store
        .list_store_identities(&s.app_id, &s.store_id)
        .await?
        .iter()
        .map(|i| {
            identity_view(
                state,
                i,
                configs.iter().find(|c| c.config_id == i.config_id),
            )
        })
        .collect::<ServiceResult<Vec<_>>>()?;
    Ok(StoreView::new(s, identities))
}

/// An identity as operators see it: non-secret fields in clear (a
/// sub-merchant id is no secret), secret ones masked.
fn identity_view(
    state: &AppState,
    i: &StoreIdentity,
    config: Option<&ChannelConfig>,
) -> ServiceResult<StoreIdentityView> {
    let opened = open_identity(
        state,
        &i.app_id,
        &i.store_id,
        &i.config_id,
        &i.identity_sealed,
    )?;
    // Which fields are secret is the adapter's to say; an identity it does
    // not accept (any more), or of a config that is gone, is masked whole.
    let secret: Option<&[&str]> = config.and_then(|c| {
        validate_store_identity(
            c.channel_type,
            c.api_version.as_deref().unwrap_or(""),
            &Value::Object(opened.fields.clone()),
        )
        .ok()
        .map(|s| s.secret_fields)
    });
    let fields = opened
        .fields
        .iter()
        .map(|(k, v)| {
            let hide = secret.is_none_or(|s| s.contains(&k.as_str()));
            (k.clone(), if hide { mask(v) } else { v.clone() })
        })
        .collect::<Map<String, Value>>();
    Ok(StoreIdentityView {
        config_id: i.config_id.to_string(),
        channel_type: config.map(|c| c.channel_type),
        mch_id: i.mch_id.clone(),
        identity: Value::Object(fields),
        created_at: crate::wire::time(i.created_at),
        updated_at: crate::wire::time(i.updated_at),
    })
}

async fn store_of(state: &AppState, app_id: &str, store_id: &str) -> ServiceResult<MerchantStore> {
    let (a, s) = (parse_app_id(app_id)?, parse_store_id(store_id)?);
    state
        .store
        .get_store(&a, &s)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("store {store_id} of app {app_id}")))
}

/// `POST /api/admin/stores` `{appId, storeId, name, enabled?}`.
pub async fn create(
    state: &AppState,
    body: &Map<String, Value>,
    by: &Principal,
) -> ServiceResult<StoreView> {
    let f = Fields(body);
    let app_id = AppId::parse(f.str_req("appId", AppId::MAX_LEN)?)?;
    let store_id = match f.str_opt("storeId", usize::MAX)? {
        Some(s) => StoreId::parse(s)?,
        None => return Err(ServiceError::invalid("storeId", "is required")),
    };
    let name = f.text_req("name", 64)?.trim().to_owned();
    let enabled = f.bool_opt("enabled")?.unwrap_or(true);
    if state.store.get_app(&app_id).await?.is_none() {
        return Err(ServiceError::not_found(format!("app {app_id}")));
    }
    let now = Utc::now();
    let store = MerchantStore {
        app_id,
        store_id,
        name,
        enabled,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .insert_store(&store)
        .await
        .map_err(|e| match e {
            cashdesk_store::StoreError::Conflict(_) => ServiceError::Conflict(format!(
                "app {} already has a store {}",
                store.app_id, store.store_id
            )),
            cashdesk_store::StoreError::NotFound(_) => {
                ServiceError::not_found(format!("app {}", store.app_id))
            }
            other => other.into(),
        })?;
    super::audit(
        state,
        by,
        "store.create",
        &format!("{}/{}", store.app_id, store.store_id),
        json!({ "name": store.name, "enabled": store.enabled }),
    )
    .await;
    view(state, &store).await
}

/// `GET /api/admin/stores?appId=`.
pub async fn list(state: &AppState, app_id: Option<&str>) -> ServiceResult<Vec<StoreView>> {
    let app_id = app_id.map(AppId::parse).transpose()?;
    let stores = state.store.list_stores(app_id.as_ref()).await?;
    let mut out = Vec::with_capacity(stores.len());
    for s in &stores {
        out.push(view(state, s).await?);
    }
    Ok(out)
}

pub async fn get(state: &AppState, app_id: &str, store_id: &str) -> ServiceResult<StoreView> {
    let s = store_of(state, app_id, store_id).await?;
    view(state, &s).await
}

/// Renames (`PUT …/{appId}/{storeId}` `{name}`) or enables/disables.
pub async fn update(
    state: &AppState,
    app_id: &str,
    store_id: &str,
    update: StoreUpdate,
    by: &Principal,
) -> ServiceResult<StoreView> {
    let s = store_of(state, app_id, store_id).await?;
    let updated = state
        .store
        .update_store(&s.app_id, &s.store_id, &update, Utc::now())
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("store {store_id} of app {app_id}")))?;
    let action = match update.enabled {
        Some(true) => "store.enable",
        Some(false) => "store.disable",
        None => "store.rename",
    };
    super::audit_change(
        state,
        by,
        action,
        &format!("{app_id}/{store_id}"),
        json!({ "name": s.name, "enabled": s.enabled }),
        json!({ "name": updated.name, "enabled": updated.enabled }),
    )
    .await;
    view(state, &updated).await
}

pub fn parse_rename(body: &Map<String, Value>) -> ServiceResult<StoreUpdate> {
    let name = Fields(body).text_req("name", 64)?.trim().to_owned();
    Ok(StoreUpdate {
        name: Some(name),
        enabled: None,
    })
}

/// `PUT /api/admin/stores/{appId}/{storeId}/identities/{configId}`
/// `{identity: {…}}`: the store's identity at that config, checked by the
/// config's adapter, sealed, replacing any previous one.
pub async fn put_identity(
    state: &AppState,
    app_id: &str,
    store_id: &str,
    config_id: &str,
    body: &Map<String, Value>,
    by: &Principal,
) -> ServiceResult<StoreIdentityView> {
    let s = store_of(state, app_id, store_id).await?;
    let config_id = ConfigId::parse(config_id)
        .ok_or_else(|| ServiceError::not_found(format!("channel config {config_id}")))?;
    let config = state
        .store
        .get_channel_config(&config_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("channel config {config_id}")))?;
    let identity = Fields(body).object_req("identity")?;
    let as_value = Value::Object(identity.clone());
    // The adapter's reason names the field and never echoes a secret.
    let summary = validate_store_identity(
        config.channel_type,
        config.api_version.as_deref().unwrap_or(""),
        &as_value,
    )
    .map_err(|reason| ServiceError::invalid_as("identity", reason))?;
    let plain = serde_json::to_vec(&as_value).map_err(ServiceError::internal)?;
    let now = Utc::now();
    let row = StoreIdentity {
        identity_sealed: state.master_key.seal(
            &plain,
            identity_aad(&s.app_id, &s.store_id, &config_id).as_bytes(),
        ),
        mch_id: summary.mch_id.unwrap_or_else(|| config.mch_id.clone()),
        app_id: s.app_id.clone(),
        store_id: s.store_id.clone(),
        config_id: config_id.clone(),
        created_at: now,
        updated_at: now,
    };
    let before = identity_summary(state, app_id, store_id, config_id.as_str()).await?;
    let stored = state
        .store
        .put_store_identity(&row)
        .await
        .map_err(|e| match e {
            cashdesk_store::StoreError::NotFound(_) => {
                ServiceError::not_found(format!("store {store_id} or channel config {config_id}"))
            }
            other => other.into(),
        })?;
    // The detail names the identity's keys, never their values.
    let keys: Vec<&String> = identity.keys().collect();
    let after = identity_summary(state, app_id, store_id, config_id.as_str()).await?;
    super::record(
        state,
        by.audit(
            "store.identity.put",
            &format!("{}/{}/{config_id}", s.app_id, s.store_id),
            json!({ "channelType": config.channel_type, "mchId": stored.mch_id, "identityKeys": keys }),
        )
        .with_change(before, after),
    )
    .await;
    identity_view(state, &stored, Some(&config))
}

/// What the audit log keeps of a store's identity at a config: the
/// merchant id and which keys are set (a value never); `null` for none.
async fn identity_summary(
    state: &AppState,
    app_id: &str,
    store_id: &str,
    config_id: &str,
) -> ServiceResult<Value> {
    Ok(get(state, app_id, store_id)
        .await?
        .identities
        .iter()
        .find(|i| i.config_id == config_id)
        .map_or(Value::Null, |i| {
            let mut keys: Vec<&String> = i
                .identity
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            keys.sort();
            json!({ "mchId": i.mch_id, "identityKeys": keys, "updatedAt": i.updated_at })
        }))
}

pub async fn list_identities(
    state: &AppState,
    app_id: &str,
    store_id: &str,
) -> ServiceResult<Vec<StoreIdentityView>> {
    Ok(get(state, app_id, store_id).await?.identities)
}

/// `DELETE …/identities/{configId}`: the store's orders use the config's
/// own account from now on (orders already paying keep their copy).
pub async fn delete_identity(
    state: &AppState,
    app_id: &str,
    store_id: &str,
    config_id: &str,
    by: &Principal,
) -> ServiceResult<Value> {
    let s = store_of(state, app_id, store_id).await?;
    let config = ConfigId::parse(config_id).ok_or_else(|| {
        ServiceError::not_found(format!("identity at channel config {config_id}"))
    })?;
    let before = identity_summary(state, app_id, store_id, config.as_str()).await?;
    if !state
        .store
        .delete_store_identity(&s.app_id, &s.store_id, &config)
        .await?
    {
        return Err(ServiceError::not_found(format!(
            "identity of store {store_id} at channel config {config_id}"
        )));
    }
    super::audit_change(
        state,
        by,
        "store.identity.delete",
        &format!("{}/{}/{config}", s.app_id, s.store_id),
        before,
        Value::Null,
    )
    .await;
    Ok(json!({ "deleted": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_tags_name_the_store() {
        let s = StoreId::parse("S-01").unwrap();
        assert_eq!(attach_tag(&s), "cashdesk-store:S-01");
        // Fits every channel's field (WeChat v2: 127 bytes).
        let longest = StoreId::parse(&"s".repeat(StoreId::MAX_LEN)).unwrap();
        assert!(attach_tag(&longest).len() <= 127);
    }

    #[test]
    fn the_channel_attach_is_the_store_tag_for_store_orders() {
        let now = Utc::now();
        let mut o = Order {
            attach: Some("memo".into()),
            ..crate::service::test_order(AppId::parse("app-1").unwrap(), "T1", 1, now)
        };
        assert_eq!(channel_attach(&o).as_deref(), Some("memo"));
        // Without a store, the merchant's attach is not interpreted.
        assert!(check_attach(&o, Some("cashdesk-store:S-02")).is_ok());
        o.store_id = Some(StoreId::parse("S-01").unwrap());
        assert_eq!(channel_attach(&o).as_deref(), Some("cashdesk-store:S-01"));
        assert!(check_attach(&o, Some("cashdesk-store:S-01")).is_ok());
        assert!(
            check_attach(&o, None).is_ok(),
            "a channel that does not echo it"
        );
        assert!(check_attach(&o, Some("cashdesk-store:S-02")).is_err());
        assert!(check_attach(&o, Some("memo")).is_err());
    }
}
