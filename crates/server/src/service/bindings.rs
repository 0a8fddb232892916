//! Bindings: an app's application to use a channel (optionally for one
//! store), approved or rejected by an operator or automatically after the
//! configured delay. What an order may be paid with is derived from the
//! approved bindings of enabled channels of enabled configs. An
//! application for a store needs an existing, enabled store of the app
//! (4003 / 4034).

use cashdesk_core::{AppId, BindingId, BindingState, ChannelId, StoreId};
use cashdesk_store::{App, Binding, BindingFilter, Inserted};
use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::access::Principal;
use crate::input::Fields;
use crate::service::error::{BindingRefusal, ServiceError, ServiceResult};
use crate::state::AppState;
use crate::wire::{ApplyBindingResponse, BindingView, ChannelView, PaymentChannel};

/// The channels an order of `app` (and `store`) may be paid with. Due
/// auto-approvals are applied first, so the answer never lags behind the
/// worker's next tick.
pub async fn payment_channels(
    state: &AppState,
    app: &App,
    store: Option<&StoreId>,
) -> ServiceResult<Vec<PaymentChannel>> {
    if state.config.binding_auto_approve_secs.is_some() {
        state.store.approve_due_bindings(Utc::now()).await?;
    }
    let bound = state.store.bound_channels(&app.app_id, store).await?;
    // A store paid to its own merchant at a config shows that merchant.
    let identities = match store {
        Some(s) => state.store.list_store_identities(&app.app_id, s).await?,
        None => Vec::new(),
    };
    Ok(bound
        .iter()
        .map(|b| {
            let mut c = crate::wire::payment_channel(app, b, &state.public_url);
            if let Some(i) = identities
                .iter()
                .find(|i| i.config_id == b.config.config_id)
            {
                c.mch_id = Some(i.mch_id.clone());
            }
            c
        })
        .collect())
}

/// An application made by a person for an app (`POST /api/admin/bindings`,
/// the console's form): `{appId, channelId, storeId?}`, audited as that
/// person. An app the principal does not see is "not found", as an unknown
/// one is; a disabled app cannot apply.
pub async fn apply_for(
    state: &AppState,
    body: &Map<String, Value>,
    by: &Principal,
) -> ServiceResult<ApplyBindingResponse> {
    let app_s = Fields(body).str_req("appId", 64)?;
    let missing = || ServiceError::not_found(format!("app {app_s}"));
    let app_id = AppId::parse(app_s).map_err(|_| missing())?;
    if !by.sees_app(&app_id) {
        return Err(missing());
    }
    let app = state.store.get_app(&app_id).await?.ok_or_else(missing)?;
    if !app.enabled {
        return Err(ServiceError::state_not_allowed(format!(
            "app {app_id} is disabled"
        )));
    }
    apply(state, &app, body, by).await
}

/// The channels an app may apply for: enabled, of an enabled config
/// (what the console's application form offers; no config detail).
pub async fn open_channels(state: &AppState) -> ServiceResult<Vec<ChannelView>> {
    let configs = state.store.list_channel_configs().await?;
    let enabled =
        |c: &cashdesk_core::ConfigId| configs.iter().any(|x| &x.config_id == c && x.enabled);
    Ok(state
        .store
        .list_channels()
        .await?
        .iter()
        .filter(|c| c.enabled && enabled(&c.config_id))
        .map(|c| {
            let t = configs
                .iter()
                .find(|x| x.config_id == c.config_id)
                .map(|x| x.channel_type);
            ChannelView::new(c, t)
        })
        .collect())
}

pub async fn apply(
    state: &AppState,
    app: &App,
    body: &Map<String, Value>,
    by: &Principal,
) -> ServiceResult<ApplyBindingResponse> {
    let f = Fields(body);
    let channel_s = f.str_req("channelId", 64)?;
    let channel_id = ChannelId::parse(channel_s)
        .ok_or_else(|| ServiceError::invalid("channelId", "is not a channel id"))?;
    let store_id = f
        .str_opt("storeId", StoreId::MAX_LEN)?
        .map(StoreId::parse)
        .transpose()?;
    if let Some(s) = &store_id {
        super::stores::require_store(state, &app.app_id, s).await?;
    }

    let channel = state
        .store
        .get_channel(&channel_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("channel {channel_id}")))?;
    let config_enabled = state
        .store
        .get_channel_config(&channel.config_id)
        .await?
        .is_some_and(|c| c.enabled);
    if !channel.enabled || !config_enabled {
        return Err(BindingRefusal::ChannelDisabled {
            channel_id: channel_id.clone(),
        }
        .into());
    }
    let now = Utc::now();
    let auto_approve_at = state
        .config
        .binding_auto_approve_secs
        .and_then(|s| i64::try_from(s).ok())
        .map(|s| now + chrono::Duration::seconds(s));
    let binding = Binding {
        binding_id: BindingId::generate(),
        app_id: app.app_id.clone(),
        channel_id,
        store_id,
        state: BindingState::Pending,
        created_at: now,
        auto_approve_at,
        decided_at: None,
        decided_by: None,
    };
    let stored = match state.store.insert_binding(&binding).await? {
        Inserted::New(b) => {
            crate::service::audit(
                state,
                by,
                "binding.apply",
                b.binding_id.as_str(),
                json!({ "channelId": b.channel_id, "storeId": b.store_id }),
            )
            .await;
            b
        }
        Inserted::Existing(b) => b,
    };
    Ok(ApplyBindingResponse {
        binding_id: stored.binding_id.to_string(),
        state: stored.state,
    })
}

pub async fn list(state: &AppState, filter: &BindingFilter) -> ServiceResult<Vec<BindingView>> {
    if state.config.binding_auto_approve_secs.is_some() {
        state.store.approve_due_bindings(Utc::now()).await?;
    }
    Ok(state
        .store
        .list_bindings(filter)
        .await?
        .iter()
        .map(BindingView::from)
        .collect())
}

/// PENDING → APPROVED / REJECTED, compare-and-set; anything else is 422.
pub async fn decide(
    state: &AppState,
    binding_id: &str,
    approve: bool,
    by: &Principal,
) -> ServiceResult<BindingView> {
    let id = BindingId::parse(binding_id)
        .ok_or_else(|| ServiceError::not_found(format!("binding {binding_id}")))?;
    let to = if approve {
        BindingState::Approved
    } else {
        BindingState::Rejected
    };
    match state
        .store
        .decide_binding(&id, to, &by.actor, Utc::now())
        .await?
    {
        Some(b) => {
            let action = if approve {
                "binding.approve"
            } else {
                "binding.reject"
            };
            let entry = by
                .audit(
                    action,
                    id.as_str(),
                    json!({ "appId": b.app_id, "channelId": b.channel_id }),
                )
                .with_change(
                    json!({ "state": BindingState::Pending }),
                    json!({ "state": b.state }),
                );
            crate::service::record(state, entry).await;
            Ok(BindingView::from(&b))
        }
        None => match state.store.get_binding(&id).await? {
            None => Err(ServiceError::not_found(format!("binding {binding_id}"))),
            Some(b) => Err(ServiceError::state_not_allowed(format!(
                "binding {binding_id} is {}, only a PENDING binding can be decided",
                b.state
            ))),
        },
    }
}
