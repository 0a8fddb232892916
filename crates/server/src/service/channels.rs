//! Channel configs (a merchant account at a channel; credentials sealed,
//! AAD `config:<configId>:credentials`, only ever shown masked) and
//! channels (one scene of a config that apps may apply for).

use cashdesk_core::{ChannelId, ChannelType, ConfigId, SceneCode};
use cashdesk_store::{Channel, ChannelConfig};
use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::access::Principal;
use crate::input::Fields;
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::wire::{ChannelConfigView, ChannelView};

pub fn credentials_aad(config_id: &ConfigId) -> String {
    format!("config:{config_id}:credentials")
}

/// Same shape, every scalar replaced by `"***"` (numbers and booleans too:
/// a numeric PIN is as secret as a string key). `null` stays `null`.
pub fn mask(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), mask(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(mask).collect()),
        _ => Value::String("***".to_owned()),
    }
}

/// Whether the channel type's adapters take `scene` (ARCHITECTURE.md §6),
/// as the channel's factory declares it.
pub fn scene_supported(channel_type: ChannelType, scene: SceneCode) -> bool {
    cashdesk_channels::channel_meta(channel_type).is_some_and(|m| m.supports(scene))
}

fn http_url(field: &str, s: &str) -> ServiceResult<String> {
    let u = url::Url::parse(s)
        .map_err(|e| ServiceError::invalid(field, format!("is not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(ServiceError::invalid(
            field,
            "must be an http or https URL with a host",
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ServiceError::invalid(field, "must not carry credentials"));
    }
    Ok(u.as_str().trim_end_matches('/').to_owned())
}

pub async fn create_config(
    state: &AppState,
    body: &Map<String, Value>,
    by: &Principal,
) -> ServiceResult<ConfigId> {
    let f = Fields(body);
    let channel_type_s = f.str_req("channelType", 16)?;
    let channel_type = ChannelType::parse(channel_type_s)
        .filter(|t| cashdesk_channels::channel_meta(*t).is_some())
        .ok_or_else(|| {
            let known: Vec<&str> = cashdesk_channels::channel_types()
                .map(ChannelType::as_str)
                .collect();
            ServiceError::invalid(
                "channelType",
                format!("must be one of {}", known.join(", ")),
            )
        })?;
    let name = f.str_req("name", 64)?.trim().to_owned();
    let mch_id = f.str_req("mchId", 64)?.trim().to_owned();
    // Checked when given; left out, the channel's only version applies
    // (ali-pay v2, lakala v3; wx-pay has two and needs it). The resolved
    // version is stored, so the config shows what it speaks.
    let api_version =
        cashdesk_channels::resolve_api_version(channel_type, f.str_opt("apiVersion", 16)?)
            .map_err(|reason| ServiceError::invalid_as("apiVersion", reason))?;
    let credentials = f.object_req("credentials")?;
    let base_url = f
        .str_opt("baseUrl", 512)?
        .map(|s| http_url("baseUrl", s))
        .transpose()?;
    // A config that could not build an adapter is refused now, with the
    // adapter's reason (it names the field and never echoes a secret).
    validate_credentials(channel_type, &api_version, credentials)?;

    let config_id = ConfigId::generate();
    let plain = serde_json::to_vec(credentials).map_err(ServiceError::internal)?;
    let config = ChannelConfig {
        credentials_sealed: state
            .master_key
            .seal(&plain, credentials_aad(&config_id).as_bytes()),
        config_id: config_id.clone(),
        channel_type,
        name,
        mch_id,
        api_version: Some(api_version),
        base_url,
        enabled: true,
        created_at: Utc::now(),
        credentials_updated_at: None,
    };
    state.store.insert_channel_config(&config).await?;
    // The detail names the credential keys, never their values.
    let keys: Vec<&String> = credentials.keys().collect();
    super::audit(
        state,
        by,
        "channel_config.create",
        config_id.as_str(),
        json!({ "channelType": channel_type, "name": config.name, "mchId": config.mch_id, "credentialKeys": keys }),
    )
    .await;
    Ok(config_id)
}

/// Refuses credentials the channel's adapter could not use, with the
/// adapter's reason (it names the field and never echoes a secret).
fn validate_credentials(
    channel_type: ChannelType,
    api_version: &str,
    credentials: &Map<String, Value>,
) -> ServiceResult<()> {
    let as_value = Value::Object(credentials.clone());
    cashdesk_channels::validate_credentials(channel_type, api_version, &as_value).map_err(
        |reason| {
            let field = if reason.contains("apiVersion") {
                "apiVersion"
            } else {
                "credentials"
            };
            ServiceError::invalid_as(field, reason)
        },
    )
}

/// Replaces credentials of a config (certificate rotation, a new platform
/// key, a new API key): `credentials` is a JSON merge patch (RFC 7396) on
/// the stored object, so only what changes is sent (a key set to `null`
/// is removed). The result is validated by the channel's adapter as a
/// new config would be; refused, nothing changes. Accepted, it is sealed
/// and stored, audited with the names of the keys that changed (never
/// their values), and used from the next call on: this instance drops its
/// adapter now, other instances sharing the database see the changed
/// fingerprint on their next use of the config (channel_cache.rs).
pub async fn replace_credentials(
    state: &AppState,
    config_id: &str,
    body: &Map<String, Value>,
    by: &Principal,
) -> ServiceResult<ChannelConfigView> {
    let id = parse_config_id(config_id)?;
    let f = Fields(body);
    let patch = f.object_req("credentials")?;
    if patch.is_empty() {
        return Err(ServiceError::invalid(
            "credentials",
            "name at least one credential to change",
        ));
    }
    let config = state
        .store
        .get_channel_config(&id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("channel config {config_id}")))?;
    let Value::Object(current) = crate::channel_cache::unseal_credentials(state, &config)? else {
        return Err(ServiceError::internal(anyhow::anyhow!(
            "credentials of {id} are not a JSON object"
        )));
    };
    let mut merged = Value::Object(current.clone());
    json_patch::merge(&mut merged, &Value::Object(patch.clone()));
    let Value::Object(merged) = merged else {
        unreachable!("a merge patch object applied to an object is an object");
    };
    let api_version = config.api_version.as_deref().unwrap_or("");
    validate_credentials(config.channel_type, api_version, &merged)?;

    let mut changed: Vec<&String> = merged
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    changed.sort();
    let mut removed: Vec<&String> = current
        .keys()
        .filter(|k| !merged.contains_key(*k))
        .collect();
    removed.sort();
    let plain = serde_json::to_vec(&merged).map_err(ServiceError::internal)?;
    let sealed = state
        .master_key
        .seal(&plain, credentials_aad(&id).as_bytes());
    let updated = state
        .store
        .replace_channel_credentials(&id, &sealed, Utc::now())
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("channel config {config_id}")))?;
    state.channels.invalidate(&id);
    // Before and after: which keys were set and when they last changed;
    // a value (or a digest of one) never.
    let keys_of = |m: &Map<String, Value>| {
        let mut k: Vec<&String> = m.keys().collect();
        k.sort();
        json!(k)
    };
    let when = |t: Option<chrono::DateTime<Utc>>| t.map(crate::wire::time);
    super::record(
        state,
        by.audit(
            "channel_config.credentials",
            id.as_str(),
            json!({ "changedKeys": changed, "removedKeys": removed }),
        )
        .with_change(
            json!({ "keys": keys_of(&current), "credentialsUpdatedAt": when(config.credentials_updated_at) }),
            json!({ "keys": keys_of(&merged), "credentialsUpdatedAt": when(updated.credentials_updated_at) }),
        ),
    )
    .await;
    config_view(state, &updated)
}

fn config_view(state: &AppState, c: &ChannelConfig) -> ServiceResult<ChannelConfigView> {
    let value = crate::channel_cache::unseal_credentials(state, c)?;
    Ok(ChannelConfigView {
        config_id: c.config_id.to_string(),
        channel_type: c.channel_type,
        name: c.name.clone(),
        mch_id: c.mch_id.clone(),
        api_version: c.api_version.clone(),
        credentials: mask(&value),
        base_url: c.base_url.clone(),
        enabled: c.enabled,
        created_at: crate::wire::time(c.created_at),
        credentials_updated_at: c.credentials_updated_at.map(crate::wire::time),
        capabilities: crate::wire::ChannelCapabilities::of(c.channel_type),
    })
}

fn parse_config_id(s: &str) -> ServiceResult<ConfigId> {
    ConfigId::parse(s).ok_or_else(|| ServiceError::not_found(format!("channel config {s}")))
}

pub async fn get_config(state: &AppState, config_id: &str) -> ServiceResult<ChannelConfigView> {
    let id = parse_config_id(config_id)?;
    let c = state
        .store
        .get_channel_config(&id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("channel config {config_id}")))?;
    config_view(state, &c)
}

pub async fn list_configs(state: &AppState) -> ServiceResult<Vec<ChannelConfigView>> {
    state
        .store
        .list_channel_configs()
        .await?
        .iter()
        .map(|c| config_view(state, c))
        .collect()
}

pub async fn set_config_enabled(
    state: &AppState,
    config_id: &str,
    enabled: bool,
    by: &Principal,
) -> ServiceResult<ChannelConfigView> {
    let id = parse_config_id(config_id)?;
    if !state.store.set_channel_config_enabled(&id, enabled).await? {
        return Err(ServiceError::not_found(format!(
            "channel config {config_id}"
        )));
    }
    state.channels.invalidate(&id);
    let action = if enabled {
        "channel_config.enable"
    } else {
        "channel_config.disable"
    };
    super::audit_enabled(state, by, action, id.as_str(), enabled).await;
    get_config(state, config_id).await
}

pub async fn create_channel(
    state: &AppState,
    body: &Map<String, Value>,
    by: &Principal,
) -> ServiceResult<ChannelId> {
    let f = Fields(body);
    let config_s = f.str_req("configId", 64)?;
    let config_id = ConfigId::parse(config_s)
        .ok_or_else(|| ServiceError::invalid("configId", "is not a config id"))?;
    let scene_s = f.str_req("sceneCode", 16)?;
    let scene_code = SceneCode::parse(scene_s).ok_or_else(|| {
        ServiceError::invalid(
            "sceneCode",
            "must be one of mini, jsapi, native, h5, app, wap, page, qr",
        )
    })?;
    let channel_name = f.text_req("channelName", 64)?.trim().to_owned();
    let sort = match f.int_opt("sort")? {
        None => 0,
        Some(v) => {
            i32::try_from(v).map_err(|_| ServiceError::invalid("sort", "is out of range"))?
        }
    };
    let config = state
        .store
        .get_channel_config(&config_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("channel config {config_id}")))?;
    if !scene_supported(config.channel_type, scene_code) {
        let supported: Vec<&str> = cashdesk_channels::channel_meta(config.channel_type)
            .map(|m| m.scene_codes().map(SceneCode::as_str).collect())
            .unwrap_or_default();
        return Err(ServiceError::invalid(
            "sceneCode",
            format!(
                "{} does not support the {} scene (it has {})",
                config.channel_type,
                scene_code,
                supported.join(", ")
            ),
        ));
    }
    let channel = Channel {
        channel_id: ChannelId::generate(),
        config_id,
        scene_code,
        channel_name,
        sort,
        enabled: true,
        created_at: Utc::now(),
    };
    state
        .store
        .insert_channel(&channel)
        .await
        .map_err(|e| match e {
            cashdesk_store::StoreError::NotFound(_) => {
                ServiceError::not_found(format!("channel config {}", channel.config_id))
            }
            other => other.into(),
        })?;
    super::audit(
        state,
        by,
        "channel.create",
        channel.channel_id.as_str(),
        json!({ "configId": channel.config_id, "sceneCode": scene_code, "channelName": channel.channel_name }),
    )
    .await;
    Ok(channel.channel_id)
}

fn parse_channel_id(s: &str) -> ServiceResult<ChannelId> {
    ChannelId::parse(s).ok_or_else(|| ServiceError::not_found(format!("channel {s}")))
}

async fn channel_view(state: &AppState, c: &Channel) -> ServiceResult<ChannelView> {
    let t = state
        .store
        .get_channel_config(&c.config_id)
        .await?
        .map(|cfg| cfg.channel_type);
    Ok(ChannelView::new(c, t))
}

pub async fn get_channel(state: &AppState, channel_id: &str) -> ServiceResult<ChannelView> {
    let id = parse_channel_id(channel_id)?;
    let c = state
        .store
        .get_channel(&id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("channel {channel_id}")))?;
    channel_view(state, &c).await
}

pub async fn list_channels(state: &AppState) -> ServiceResult<Vec<ChannelView>> {
    let configs = state.store.list_channel_configs().await?;
    let channels = state.store.list_channels().await?;
    Ok(channels
        .iter()
        .map(|c| {
            let t = configs
                .iter()
                .find(|cfg| cfg.config_id == c.config_id)
                .map(|cfg| cfg.channel_type);
            ChannelView::new(c, t)
        })
        .collect())
}

pub async fn set_channel_enabled(
    state: &AppState,
    channel_id: &str,
    enabled: bool,
    by: &Principal,
) -> ServiceResult<ChannelView> {
    let id = parse_channel_id(channel_id)?;
    if !state.store.set_channel_enabled(&id, enabled).await? {
        return Err(ServiceError::not_found(format!("channel {channel_id}")));
    }
    let action = if enabled {
        "channel.enable"
    } else {
        "channel.disable"
    };
    super::audit_enabled(state, by, action, id.as_str(), enabled).await;
    get_channel(state, channel_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_come_from_the_channel_factories() {
        use SceneCode::*;
        assert!(scene_supported(ChannelType::WxPay, Jsapi));
        assert!(!scene_supported(ChannelType::WxPay, Qr));
        assert!(scene_supported(ChannelType::AliPay, Page));
        assert!(!scene_supported(ChannelType::AliPay, Native));
        assert!(scene_supported(ChannelType::Lakala, H5));
        assert!(!scene_supported(ChannelType::Lakala, App));
    }

    #[test]
    fn masking_keeps_shape_hides_values() {
        let v = json!({"apiKey": "k", "n": 5, "nested": {"pem": "x", "list": ["a", true]}, "none": null});
        assert_eq!(
            mask(&v),
            json!({"apiKey": "***", "n": "***", "nested": {"pem": "***", "list": ["***", "***"]}, "none": null})
        );
    }
}
