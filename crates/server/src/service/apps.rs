//! Apps: registration (the seed `cashier-desk-sa/register` and the admin
//! create), enable/disable, views. The app key is random, shown once, and
//! stored sealed under the master key (AAD `app:<appId>:key`).

use cashdesk_core::{
    AppId, RefundApplicationMode, RefundApplicationPolicy, SignType, TimeoutDecision,
};
use cashdesk_crypto::rsa::RsaPublicKey;
use cashdesk_crypto::sm::Sm2PublicKey;
use cashdesk_crypto::{Secret, random};
use cashdesk_store::{App, AppSettingsUpdate};
use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::access::Principal;
use crate::auth::app_key_aad;
use crate::input::Fields;
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;
use crate::wire::{AppSettingsView, AppView, RegisterAppResponse, RotatedKeyView};

/// A validated registration.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub app_name: String,
    pub notify_url: Option<cashdesk_core::NotifyUrl>,
    pub sign_type: SignType,
    pub public_key_pem: Option<String>,
    pub refund_review: bool,
    pub auto_refund_paid_after_close: bool,
}

impl NewApp {
    pub fn parse(state: &AppState, body: &Map<String, Value>) -> ServiceResult<NewApp> {
        let f = Fields(body);
        let app_name = f.text_req("appName", 64)?.trim().to_owned();
        let notify_url = f
            .str_opt("notifyUrl", 512)?
            .map(|s| super::parse_notify_url(state, "notifyUrl", s))
            .transpose()?;
        let sign_type = match f.str_opt("signType", 16)? {
            None => SignType::default(),
            Some(s) => SignType::parse(s).ok_or_else(|| {
                ServiceError::invalid(
                    "signType",
                    "must be one of HMAC-SHA256, HMAC-SM3, MD5, RSA2, SM2",
                )
            })?,
        };
        let public_key_pem = f.str_opt("publicKeyPem", 8192)?.map(str::to_owned);
        check_public_key(sign_type, public_key_pem.as_deref())?;
        let refund_review = f.bool_opt("refundReview")?.unwrap_or(false);
        let auto_refund_paid_after_close = f.bool_opt("autoRefundPaidAfterClose")?.unwrap_or(false);
        Ok(NewApp {
            app_name,
            notify_url,
            sign_type,
            public_key_pem,
            refund_review,
            auto_refund_paid_after_close,
        })
    }
}

/// RSA2/SM2 apps register a public key of their kind; shared-key apps
/// none.
fn check_public_key(sign_type: SignType, public_key_pem: Option<&str>) -> ServiceResult<()> {
    match (sign_type, public_key_pem) {
        (SignType::Rsa2, Some(pem)) => {
            RsaPublicKey::from_pem(pem).map_err(|e| {
                ServiceError::invalid("publicKeyPem", format!("is not an RSA public key ({e})"))
            })?;
        }
        (SignType::Sm2, Some(pem)) => {
            Sm2PublicKey::from_pem(pem).map_err(|e| {
                ServiceError::invalid("publicKeyPem", format!("is not an SM2 public key ({e})"))
            })?;
        }
        (SignType::Rsa2 | SignType::Sm2, None) => {
            return Err(ServiceError::invalid(
                "publicKeyPem",
                format!("is required for {sign_type} apps"),
            ));
        }
        (_, Some(_)) => {
            return Err(ServiceError::invalid(
                "publicKeyPem",
                format!("only RSA2 and SM2 apps register a public key, not {sign_type} apps"),
            ));
        }
        (_, None) => {}
    }
    Ok(())
}

/// `app` + 16 random hex digits.
pub fn new_app_id() -> AppId {
    let id = format!("app{}", hex::encode(random::bytes(8)));
    match AppId::parse(&id) {
        Ok(id) => id,
        // "app" + hex always satisfies the AppId rule.
        Err(e) => unreachable!("generated app id rejected: {e}"),
    }
}

/// Creates the app; the returned key is the only time it exists in clear.
pub async fn create(state: &AppState, new: NewApp, by: &Principal) -> ServiceResult<(App, Secret)> {
    let app_id = new_app_id();
    let key = Secret::new(random::token(32));
    let app = App {
        app_key_sealed: state
            .master_key
            .seal(key.expose().as_bytes(), app_key_aad(&app_id).as_bytes()),
        app_id,
        app_name: new.app_name,
        sign_type: new.sign_type,
        public_key_pem: new.public_key_pem,
        notify_url: new.notify_url,
        refund_review: new.refund_review,
        auto_refund_paid_after_close: new.auto_refund_paid_after_close,
        enabled: true,
        created_at: Utc::now(),
        previous_key: None,
        key_confirmed: true,
        refund_applications: cashdesk_core::RefundApplicationPolicy::default(),
    };
    state.store.insert_app(&app).await?;
    super::audit(
        state,
        by,
        "app.register",
        app.app_id.as_str(),
        json!({ "appName": app.app_name, "signType": app.sign_type }),
    )
    .await;
    Ok((app, key))
}

pub fn registered(app: &App, key: &Secret) -> RegisterAppResponse {
    RegisterAppResponse {
        app_id: app.app_id.to_string(),
        app_key: key.expose().to_owned(),
        sign_type: app.sign_type,
    }
}

fn parse_id(app_id: &str) -> ServiceResult<AppId> {
    AppId::parse(app_id).map_err(|_| ServiceError::not_found(format!("app {app_id}")))
}

pub async fn get(state: &AppState, app_id: &str) -> ServiceResult<AppView> {
    let id = parse_id(app_id)?;
    let app = state
        .store
        .get_app(&id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("app {app_id}")))?;
    Ok(AppView::from(&app))
}

pub async fn list(state: &AppState) -> ServiceResult<Vec<AppView>> {
    Ok(state
        .store
        .list_apps()
        .await?
        .iter()
        .map(AppView::from)
        .collect())
}

pub async fn set_enabled(
    state: &AppState,
    app_id: &str,
    enabled: bool,
    by: &Principal,
) -> ServiceResult<AppView> {
    let id = parse_id(app_id)?;
    if !state.store.set_app_enabled(&id, enabled).await? {
        return Err(ServiceError::not_found(format!("app {app_id}")));
    }
    let action = if enabled { "app.enable" } else { "app.disable" };
    super::audit_enabled(state, by, action, id.as_str(), enabled).await;
    get(state, app_id).await
}

/// An operator's change of an app's settings (`refundReview`,
/// `autoRefundPaidAfterClose`; what is absent stays). Audited.
pub async fn update_settings(
    state: &AppState,
    app_id: &str,
    body: &Map<String, Value>,
    by: &Principal,
) -> ServiceResult<AppSettingsView> {
    let id = parse_id(app_id)?;
    let f = Fields(body);
    // notifyUrl: a URL replaces the app's; null or "" removes it.
    let notify_url = if body.contains_key("notifyUrl") {
        Some(
            f.str_opt("notifyUrl", 512)?
                .map(|s| super::parse_notify_url(state, "notifyUrl", s))
                .transpose()?,
        )
    } else {
        None
    };
    // What the settings were, for the audit log and the policy's merge
    // (read just before: a concurrent change shows in its own entry).
    let current = state.store.get_app(&id).await?;
    let before = current.as_ref().map(settings_of);
    let refund_applications = match body.get("refundApplications") {
        None | Some(Value::Null) => None,
        Some(_) => Some(parse_policy(
            f.object_req("refundApplications")?,
            current
                .as_ref()
                .map(|a| a.refund_applications)
                .unwrap_or_default(),
        )?),
    };
    let update = AppSettingsUpdate {
        refund_review: f.bool_opt("refundReview")?,
        auto_refund_paid_after_close: f.bool_opt("autoRefundPaidAfterClose")?,
        notify_url,
        refund_applications,
    };
    if update == AppSettingsUpdate::default() {
        return Err(ServiceError::invalid(
            "refundReview",
            "give refundReview, autoRefundPaidAfterClose, notifyUrl and/or refundApplications",
        ));
    }
    let (app, readdressed) = state
        .store
        .update_app_settings(&id, &update)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("app {app_id}")))?;
    let mut detail = json!({
        "refundReview": update.refund_review,
        "autoRefundPaidAfterClose": update.auto_refund_paid_after_close,
        "refundApplications": update.refund_applications,
    });
    if let Some(url) = &update.notify_url {
        detail["notifyUrl"] = json!(url);
        detail["notificationsReaddressed"] = json!(readdressed);
    }
    let entry = by
        .audit("app.settings", id.as_str(), detail)
        .with_change(before.unwrap_or(Value::Null), settings_of(&app));
    super::record(state, entry).await;
    Ok(AppSettingsView {
        app: AppView::from(&app),
        notifications_readdressed: update.notify_url.is_some().then_some(readdressed),
    })
}

/// An app's settings as the audit log shows them before and after a change.
fn settings_of(app: &App) -> Value {
    json!({
        "refundReview": app.refund_review,
        "autoRefundPaidAfterClose": app.auto_refund_paid_after_close,
        "notifyUrl": app.notify_url,
        "refundApplications": app.refund_applications,
    })
}

/// `refundApplications: {mode?, days?, onTimeout?}` over the app's
/// current policy (a field left out stays as it is).
fn parse_policy(
    body: &Map<String, Value>,
    current: RefundApplicationPolicy,
) -> ServiceResult<RefundApplicationPolicy> {
    let f = Fields(body);
    let mut p = current;
    if let Some(m) = f.str_opt("mode", 16)? {
        p.mode = RefundApplicationMode::parse(m).ok_or_else(|| {
            ServiceError::invalid(
                "refundApplications.mode",
                "must be none, merchant or operator",
            )
        })?;
    }
    if let Some(d) = f.int_opt("days").map_err(|_| {
        ServiceError::invalid("refundApplications.days", "must be a whole number of days")
    })? {
        p.days = u32::try_from(d)
            .ok()
            .filter(|d| (1..=RefundApplicationPolicy::MAX_DAYS).contains(d))
            .ok_or_else(|| {
                ServiceError::invalid(
                    "refundApplications.days",
                    format!("must be 1 to {}", RefundApplicationPolicy::MAX_DAYS),
                )
            })?;
    }
    if let Some(t) = f.str_opt("onTimeout", 16)? {
        p.on_timeout = TimeoutDecision::parse(t).ok_or_else(|| {
            ServiceError::invalid("refundApplications.onTimeout", "must be approve or reject")
        })?;
    }
    Ok(p)
}

/// The longest overlap an operator may give a rotation: 30 days.
pub const MAX_KEY_OVERLAP_SECS: i64 = 30 * 24 * 3600;
/// The overlap when none is given: one day.
pub const DEFAULT_KEY_OVERLAP_SECS: i64 = 24 * 3600;

/// Rotates an app's key with an overlap window. A shared-key app (HMAC,
/// MD5) gets a new random key, returned this once; an RSA2/SM2 app gives
/// its new public key (`publicKeyPem`). The key it had stays valid for
/// incoming signatures for `overlapSeconds` (default one day, at most 30
/// days, 0 ends it now); a previous key of an earlier rotation is dropped.
/// What cashdesk signs for a shared-key app (answers, notifications) uses
/// the previous key until the app first signs a request with the new one:
/// a merchant deploys the new key at its own pace and never sees a
/// signature it cannot check. Audited (never the key).
pub async fn rotate_key(
    state: &AppState,
    app_id: &str,
    body: &Map<String, Value>,
    by: &Principal,
) -> ServiceResult<RotatedKeyView> {
    let id = parse_id(app_id)?;
    let f = Fields(body);
    let overlap = match f.int_opt("overlapSeconds")? {
        None => DEFAULT_KEY_OVERLAP_SECS,
        Some(s) if (0..=MAX_KEY_OVERLAP_SECS).contains(&s) => s,
        Some(_) => {
            return Err(ServiceError::invalid(
                "overlapSeconds",
                format!("must be 0 to {MAX_KEY_OVERLAP_SECS} (30 days)"),
            ));
        }
    };
    let public_key_pem = f.str_opt("publicKeyPem", 8192)?;
    let app = state
        .store
        .get_app(&id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("app {app_id}")))?;
    check_public_key(app.sign_type, public_key_pem)?;
    let shared = !matches!(app.sign_type, SignType::Rsa2 | SignType::Sm2);
    // RSA2/SM2 apps keep their (unused) shared key; only the public key turns.
    let key = shared.then(|| Secret::new(random::token(32)));
    let key_sealed = match &key {
        Some(key) => state
            .master_key
            .seal(key.expose().as_bytes(), app_key_aad(&id).as_bytes()),
        None => app.app_key_sealed.clone(),
    };
    let until = Utc::now() + chrono::Duration::seconds(overlap);
    let rotated = state
        .store
        .rotate_app_key(&id, &key_sealed, public_key_pem, until)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("app {app_id}")))?;
    super::audit(
        state,
        by,
        "app.rotate_key",
        id.as_str(),
        json!({ "signType": rotated.sign_type, "overlapSeconds": overlap, "previousKeyValidUntil": crate::wire::time(until) }),
    )
    .await;
    Ok(RotatedKeyView {
        app_id: rotated.app_id.to_string(),
        sign_type: rotated.sign_type,
        app_key: key.map(|k| k.expose().to_owned()),
        previous_key_valid_until: crate::wire::time(until),
    })
}
