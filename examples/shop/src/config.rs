//! Configuration by flags or environment. Against a local `cashdesk serve`
//! one flag is enough: `--demo-app cashdesk-data/demo-app.json` names the
//! gateway URL, the app id and key, and the sandbox's WeChat Pay v2
//! mini-program channel, all written there by cashdesk's first start.
//! Anything given explicitly wins over the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use cashdesk_sdk::{Credentials, Secret, SignType};
use serde::Deserialize;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "cashdesk-shop", about = "A reference buy-now shop on cashdesk")]
pub struct ShopConfig {
    /// Where the shop listens.
    #[arg(long, env = "SHOP_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The shop's SQLite file (created on first start).
    #[arg(long, env = "SHOP_DATABASE", default_value = "shop.db")]
    pub database: PathBuf,
    /// How cashdesk reaches the shop (its notifications go to
    /// `<public-url>/cashdesk/notify`); default `http://<listen address>`.
    #[arg(long, env = "SHOP_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// cashdesk's `demo-app.json`: gateway URL, app id and key, channels.
    #[arg(long, env = "CASHDESK_DEMO_APP_FILE")]
    pub demo_app: Option<PathBuf>,
    /// cashdesk's base URL.
    #[arg(long, env = "CASHDESK_URL")]
    pub gateway_url: Option<String>,
    #[arg(long, env = "CASHDESK_APP_ID")]
    pub app_id: Option<String>,
    /// The app key (shared-key sign types: HMAC-SHA256, HMAC-SM3, MD5).
    #[arg(long, env = "CASHDESK_APP_KEY", hide_env_values = true)]
    pub app_key: Option<String>,
    #[arg(long, env = "CASHDESK_SIGN_TYPE")]
    pub sign_type: Option<String>,
    /// The mini-program channel buy-now pays with; without one, buy-now
    /// answers only the cashier URL.
    #[arg(long, env = "CASHDESK_CHANNEL_ID")]
    pub channel_id: Option<String>,
    /// cashdesk's `expireMinutes` for new orders (1..=1440).
    #[arg(long, env = "SHOP_EXPIRE_MINUTES", default_value_t = 1440)]
    pub expire_minutes: u32,
    /// How long a pending order is reused by buy-now.
    #[arg(long, env = "SHOP_REUSE_DAYS", default_value_t = 7)]
    pub reuse_days: u32,
    /// Adds two demo goods to an empty shop.
    #[arg(long, env = "SHOP_SEED_GOODS", default_value_t = true, action = clap::ArgAction::Set)]
    pub seed_goods: bool,
}

impl ShopConfig {
    /// A config for tests: port 0, no demo file, no seed goods.
    pub fn for_tests(database: PathBuf, gateway_url: &str, app_id: &str, app_key: &str) -> Self {
        ShopConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database,
            public_url: None,
            demo_app: None,
            gateway_url: Some(gateway_url.to_owned()),
            app_id: Some(app_id.to_owned()),
            app_key: Some(app_key.to_owned()),
            sign_type: None,
            channel_id: None,
            expire_minutes: 1440,
            reuse_days: 7,
            seed_goods: false,
        }
    }
}

/// What the shop needs of cashdesk, resolved from flags and the demo file.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub url: String,
    pub app_id: String,
    pub credentials: Credentials,
    pub channel_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DemoApp {
    app_id: String,
    app_key: String,
    sign_type: Option<String>,
    base_url: Option<String>,
    #[serde(default)]
    channels: Vec<DemoChannel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DemoChannel {
    channel_id: String,
    channel_type: String,
    api_version: Option<String>,
    scene_code: String,
}

impl Gateway {
    pub fn resolve(config: &ShopConfig) -> anyhow::Result<Gateway> {
        let demo = config.demo_app.as_deref().map(read_demo).transpose()?;
        let url = config
            .gateway_url
            .clone()
            .or_else(|| demo.as_ref().and_then(|d| d.base_url.clone()))
            .context("no gateway URL: give --gateway-url or --demo-app")?;
        let app_id = config
            .app_id
            .clone()
            .or_else(|| demo.as_ref().map(|d| d.app_id.clone()))
            .context("no app id: give --app-id or --demo-app")?;
        let app_key = config
            .app_key
            .clone()
            .or_else(|| demo.as_ref().map(|d| d.app_key.clone()))
            .context("no app key: give --app-key or --demo-app")?;
        let sign_type_name = config
            .sign_type
            .clone()
            .or_else(|| demo.as_ref().and_then(|d| d.sign_type.clone()))
            .unwrap_or_else(|| SignType::HmacSha256.as_str().to_owned());
        let Some(sign_type) = SignType::parse(&sign_type_name) else {
            bail!("unknown sign type {sign_type_name}");
        };
        if sign_type.is_asymmetric() {
            bail!(
                "the reference shop signs with a shared app key (HMAC-SHA256, HMAC-SM3, MD5), not {sign_type}"
            );
        }
        // The demo app's WeChat Pay v2 mini-program channel, unless named.
        let channel_id = config.channel_id.clone().or_else(|| {
            demo.as_ref()?
                .channels
                .iter()
                .find(|c| {
                    c.channel_type == "wx-pay"
                        && c.api_version.as_deref() == Some("v2")
                        && c.scene_code == "mini"
                })
                .map(|c| c.channel_id.clone())
        });
        Ok(Gateway {
            url,
            app_id,
            credentials: Credentials::Shared {
                sign_type,
                app_key: Secret::new(app_key),
            },
            channel_id,
        })
    }
}

fn read_demo(path: &Path) -> anyhow::Result<DemoApp> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}
