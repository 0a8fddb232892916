//! The demo setup on a fresh database with the sandbox on: two sandbox
//! WeChat Pay merchants (one for API v2 with HMAC-SHA256, one for API v3),
//! a channel config for each, a channel per scene (mini, jsapi, native, h5,
//! app) and the demo app's bindings, approved. Everything goes through the
//! same services the admin API and the binding flow use, so the demo is
//! set up exactly as an operator would set it up by hand (and audited).

use cashdesk_core::SceneCode;
use cashdesk_sandbox::Sandbox;
use cashdesk_store::App;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::service::{bindings, channels};
use crate::state::AppState;

/// One demo channel, as reported at startup.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoChannel {
    pub channel_id: String,
    pub config_id: String,
    /// `v2` or `v3`.
    pub api_version: String,
    pub scene_code: SceneCode,
    pub channel_name: String,
}

const SCENES: [(SceneCode, &str); 5] = [
    (SceneCode::Mini, "mini-program"),
    (SceneCode::Jsapi, "JSAPI"),
    (SceneCode::Native, "Native QR"),
    (SceneCode::H5, "H5"),
    (SceneCode::App, "App"),
];

fn object(v: Value) -> ApiResult<serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::internal(anyhow::anyhow!("not a JSON object"))),
    }
}

/// Opens the sandbox merchants and binds `app` to their channels.
pub async fn bind_demo_channels(
    state: &AppState,
    sandbox: &Sandbox,
    app: &App,
) -> ApiResult<Vec<DemoChannel>> {
    let mut out = Vec::new();
    for (version, sign_type) in [("v2", Some("HMAC-SHA256")), ("v3", None)] {
        let m = sandbox
            .open_wechat_merchant(sign_type)
            .await
            .map_err(ApiError::internal)?;
        let credentials = match version {
            "v2" => serde_json::to_value(&m.credentials_v2),
            _ => serde_json::to_value(&m.credentials_v3),
        }
        .map_err(ApiError::internal)?;
        let body = object(json!({
            "channelType": "wx-pay",
            "name": format!("Sandbox WeChat Pay {version}"),
            "mchId": m.mch_id,
            "apiVersion": version,
            "credentials": credentials,
            "baseUrl": m.base_url,
        }))?;
        let config_id = channels::create_config(state, &body).await?;
        for (i, (scene, label)) in SCENES.iter().enumerate() {
            let name = format!("WeChat Pay {label} (sandbox {version})");
            let body = object(json!({
                "configId": config_id,
                "sceneCode": scene,
                "channelName": name,
                "sort": i32::try_from(i).unwrap_or(0) + if version == "v2" { 0 } else { 10 },
            }))?;
            let channel_id = channels::create_channel(state, &body).await?;
            let applied =
                bindings::apply(state, app, &object(json!({ "channelId": channel_id }))?).await?;
            bindings::decide(state, &applied.binding_id, true).await?;
            out.push(DemoChannel {
                channel_id: channel_id.to_string(),
                config_id: config_id.to_string(),
                api_version: version.to_owned(),
                scene_code: *scene,
                channel_name: name,
            });
        }
    }
    Ok(out)
}
