//! The set-up, through the admin API exactly as an operator would do it:
//! a sandbox merchant, a channel config, a channel, an app whose notify URL
//! is the receiver, a binding applied for and approved; then one SDK
//! client per merchant client.

use anyhow::Context as _;
use cashdesk_sdk::{
    AdminClient, ApplyBindingRequest, Client, CreateChannelConfigRequest, CreateChannelRequest,
    Credentials, RegisterAppRequest,
};

use super::STAGE_TIMEOUT;
use super::options::BenchChannel;
use super::receiver::Receiver;
use super::sandbox::SandboxHost;
use super::server::ServerProcess;

pub(super) struct Setup {
    app_id: String,
    app_key: String,
    pub(super) channel_id: String,
}

impl Setup {
    pub(super) async fn run(
        server: &ServerProcess,
        sandbox: &SandboxHost,
        receiver: &Receiver,
        channel: BenchChannel,
    ) -> anyhow::Result<Setup> {
        let admin = AdminClient::new(&server.url, &server.admin_token)?;
        let (mch_id, api_version, credentials, base_url) = match channel {
            BenchChannel::WxV2Mini | BenchChannel::WxV3Mini => {
                let m = sandbox
                    .sandbox
                    .open_wechat_merchant(Some("HMAC-SHA256"))
                    .await?;
                let (version, credentials) = if channel == BenchChannel::WxV2Mini {
                    ("v2", serde_json::to_value(&m.credentials_v2)?)
                } else {
                    ("v3", serde_json::to_value(&m.credentials_v3)?)
                };
                (m.mch_id, version, credentials, m.base_url)
            }
            BenchChannel::AlipayQr => {
                let m = sandbox.sandbox.open_alipay_merchant().await?;
                (
                    m.mch_id,
                    "v2",
                    serde_json::to_value(&m.credentials)?,
                    m.base_url,
                )
            }
            BenchChannel::LakalaNative => {
                let m = sandbox.sandbox.open_lakala_merchant().await?;
                (
                    m.mch_id,
                    "v3",
                    serde_json::to_value(&m.credentials)?,
                    m.base_url,
                )
            }
        };
        let config = admin
            .create_channel_config(&CreateChannelConfigRequest {
                channel_type: channel.channel_type().to_owned(),
                name: "bench".to_owned(),
                mch_id,
                api_version: Some(api_version.to_owned()),
                credentials,
                base_url: Some(base_url),
            })
            .await
            .context("creating the channel config")?;
        let created = admin
            .create_channel(&CreateChannelRequest {
                config_id: config.config_id,
                scene_code: channel.scene().to_owned(),
                channel_name: "bench".to_owned(),
                sort: None,
            })
            .await
            .context("creating the channel")?;
        let app = admin
            .create_app(&RegisterAppRequest {
                app_name: "bench".to_owned(),
                notify_url: Some(receiver.url.clone()),
                sign_type: None,
                public_key_pem: None,
                refund_review: None,
                auto_refund_paid_after_close: None,
            })
            .await
            .context("registering the app")?;
        let app_key = app.app_key.clone();
        let client = Client::new(
            &server.url,
            &app.app_id,
            Credentials::hmac_sha256(app_key.clone()),
        )?;
        let applied = client
            .apply_binding(&ApplyBindingRequest {
                channel_id: created.channel_id.clone(),
                store_id: None,
            })
            .await
            .context("applying for the channel")?;
        admin
            .approve_binding(&applied.binding_id)
            .await
            .context("approving the binding")?;
        let _ = receiver
            .state
            .verifier
            .set(client.verifier().context("the app's verifier")?.clone());
        Ok(Setup {
            app_id: app.app_id,
            app_key,
            channel_id: created.channel_id,
        })
    }

    /// One SDK client per merchant client (each its own connections).
    pub(super) fn clients(&self, url: &str, n: usize) -> anyhow::Result<Vec<Client>> {
        (0..n)
            .map(|_| {
                Client::builder(
                    url,
                    &self.app_id,
                    Credentials::hmac_sha256(self.app_key.clone()),
                )
                .timeout(STAGE_TIMEOUT)
                .build()
                .map_err(Into::into)
            })
            .collect()
    }
}
