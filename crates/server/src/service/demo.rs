//! The demo setup on a fresh database with the sandbox on: four sandbox
//! merchants — WeChat Pay for API v2 (HMAC-SHA256) and for API v3, an
//! Alipay app (public-key mode) and a Lakala app — a channel config for
//! each, a channel per scene the channel supports (WeChat mini, jsapi,
//! native, h5, app; Alipay mini, wap, page, qr, app; Lakala mini, jsapi,
//! native, h5) and the demo app's bindings, approved. Everything goes
//! through the same services the admin API and the binding flow use, so
//! the demo is set up exactly as an operator would set it up by hand
//! (and audited). The merchants are opened through the sandbox the same
//! way `POST /sandbox/api/merchants` opens them, and their credentials are
//! pasted unchanged.
//!
//! `sort` groups the channels on the cashier page: WeChat v2 0–4, v3
//! 10–14, Alipay 20–24, Lakala 30–33.

use cashdesk_core::{ChannelType, SceneCode};
use cashdesk_sandbox::Sandbox;
use cashdesk_store::App;
use serde::Serialize;
use serde_json::{Value, json};

use crate::access::Principal;
use crate::service::error::{ServiceError, ServiceResult};
use crate::service::{bindings, channels};
use crate::state::AppState;

/// One demo channel, as reported at startup and in `demo-app.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoChannel {
    pub channel_id: String,
    pub config_id: String,
    pub channel_type: ChannelType,
    /// `v2` or `v3` (WeChat Pay); Alipay speaks `v2`, Lakala `v3`.
    pub api_version: String,
    pub scene_code: SceneCode,
    pub channel_name: String,
}

const WECHAT_SCENES: &[(SceneCode, &str)] = &[
    (SceneCode::Mini, "mini-program"),
    (SceneCode::Jsapi, "JSAPI"),
    (SceneCode::Native, "Native QR"),
    (SceneCode::H5, "H5"),
    (SceneCode::App, "App"),
];

const ALIPAY_SCENES: &[(SceneCode, &str)] = &[
    (SceneCode::Mini, "mini-program"),
    (SceneCode::Wap, "mobile web"),
    (SceneCode::Page, "PC web"),
    (SceneCode::Qr, "QR"),
    (SceneCode::App, "App"),
];

const LAKALA_SCENES: &[(SceneCode, &str)] = &[
    (SceneCode::Mini, "WeChat mini-program"),
    (SceneCode::Jsapi, "JSAPI"),
    (SceneCode::Native, "QR"),
    (SceneCode::H5, "Alipay H5"),
];

fn object(v: Value) -> ServiceResult<serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ServiceError::internal(anyhow::anyhow!("not a JSON object"))),
    }
}

/// One sandbox config to create and bind.
struct DemoConfig {
    channel_type: ChannelType,
    /// Given to the admin service only for WeChat (the others default).
    api_version: Option<&'static str>,
    name: String,
    mch_id: String,
    credentials: Value,
    base_url: String,
    scenes: &'static [(SceneCode, &'static str)],
    /// Channel names are `{brand} {scene label} ({tag})`.
    brand: &'static str,
    tag: &'static str,
    first_sort: i32,
}

/// Opens the sandbox merchants and binds `app` to their channels.
pub async fn bind_demo_channels(
    state: &AppState,
    sandbox: &Sandbox,
    app: &App,
) -> ServiceResult<Vec<DemoChannel>> {
    let by = &Principal::system("startup", None);
    let to_value = |v: Result<Value, serde_json::Error>| v.map_err(ServiceError::internal);
    let mut configs = Vec::new();
    for (version, sign_type, first_sort) in [("v2", Some("HMAC-SHA256"), 0), ("v3", None, 10)] {
        let m = sandbox
            .open_wechat_merchant(sign_type)
            .await
            .map_err(ServiceError::internal)?;
        let credentials = match version {
            "v2" => to_value(serde_json::to_value(&m.credentials_v2))?,
            _ => to_value(serde_json::to_value(&m.credentials_v3))?,
        };
        configs.push(DemoConfig {
            channel_type: ChannelType::WxPay,
            api_version: Some(version),
            name: format!("Sandbox WeChat Pay {version}"),
            mch_id: m.mch_id,
            credentials,
            base_url: m.base_url,
            scenes: WECHAT_SCENES,
            brand: "WeChat Pay",
            tag: if version == "v2" {
                "sandbox v2"
            } else {
                "sandbox v3"
            },
            first_sort,
        });
    }
    let ali = sandbox
        .open_alipay_merchant()
        .await
        .map_err(ServiceError::internal)?;
    configs.push(DemoConfig {
        channel_type: ChannelType::AliPay,
        api_version: None,
        name: "Sandbox Alipay".to_owned(),
        mch_id: ali.mch_id,
        credentials: to_value(serde_json::to_value(&ali.credentials))?,
        base_url: ali.base_url,
        scenes: ALIPAY_SCENES,
        brand: "Alipay",
        tag: "sandbox",
        first_sort: 20,
    });
    let lkl = sandbox
        .open_lakala_merchant()
        .await
        .map_err(ServiceError::internal)?;
    configs.push(DemoConfig {
        channel_type: ChannelType::Lakala,
        api_version: None,
        name: "Sandbox Lakala".to_owned(),
        mch_id: lkl.mch_id,
        credentials: to_value(serde_json::to_value(&lkl.credentials))?,
        base_url: lkl.base_url,
        scenes: LAKALA_SCENES,
        brand: "Lakala",
        tag: "sandbox",
        first_sort: 30,
    });

    let mut out = Vec::new();
    for c in configs {
        let mut body = json!({
            "channelType": c.channel_type,
            "name": c.name,
            "mchId": c.mch_id,
            "credentials": c.credentials,
            "baseUrl": c.base_url,
        });
        if let Some(v) = c.api_version {
            body["apiVersion"] = json!(v);
        }
        let config_id = channels::create_config(state, &object(body)?, by).await?;
        let api_version = state
            .store
            .get_channel_config(&config_id)
            .await?
            .and_then(|cfg| cfg.api_version)
            .unwrap_or_default();
        for (i, (scene, label)) in c.scenes.iter().enumerate() {
            let name = format!("{} {label} ({})", c.brand, c.tag);
            let body = object(json!({
                "configId": config_id,
                "sceneCode": scene,
                "channelName": name,
                "sort": c.first_sort + i32::try_from(i).unwrap_or(0),
            }))?;
            let channel_id = channels::create_channel(state, &body, by).await?;
            let applied = bindings::apply(
                state,
                app,
                &object(json!({ "channelId": channel_id }))?,
                &Principal::app(&app.app_id, None),
            )
            .await?;
            bindings::decide(state, &applied.binding_id, true, by).await?;
            out.push(DemoChannel {
                channel_id: channel_id.to_string(),
                config_id: config_id.to_string(),
                channel_type: c.channel_type,
                api_version: api_version.clone(),
                scene_code: *scene,
                channel_name: name,
            });
        }
    }
    Ok(out)
}
