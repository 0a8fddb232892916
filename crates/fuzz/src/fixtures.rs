//! What the targets share, built once per process: a runtime, a channel
//! sandbox in a temporary folder with one merchant per channel, the
//! sandbox's platform keys (they sign what the "channel" sends), the
//! merchant-side adapters built from those merchants' credentials exactly
//! as the server builds them, and — only for the server target — a whole
//! `cashdesk serve` on loopback with its demo app.
//!
//! Keys are generated per process (the sandbox makes them): a seed never
//! carries a signature that must still verify; targets sign in mode `S`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cashdesk_channels::{Channel, ChannelEnv, HttpSettings, build_channel};
use cashdesk_core::ChannelType;
use cashdesk_crypto::rsa::RsaPrivateKey;
use cashdesk_sandbox::pki::Pki;
use cashdesk_sandbox::{
    AlipayMerchantCredentials, LakalaMerchantCredentials, MerchantCredentials, Sandbox,
    SandboxConfig,
};
use tokio::runtime::Runtime;

/// The sandbox, its keys and one merchant (and adapter) per channel.
pub struct Fixtures {
    pub rt: Runtime,
    pub sandbox: Sandbox,
    pub router: axum::Router,
    pub pki: Pki,
    /// A WeChat merchant signing v2 with MD5, one with HMAC-SHA256 (both
    /// have v3 credentials too).
    pub wechat_md5: MerchantCredentials,
    pub wechat_hmac: MerchantCredentials,
    pub alipay: AlipayMerchantCredentials,
    pub lakala: LakalaMerchantCredentials,
    pub wx_v2_md5: Arc<dyn Channel>,
    pub wx_v2_hmac: Arc<dyn Channel>,
    pub wx_v3: Arc<dyn Channel>,
    pub alipay_channel: Arc<dyn Channel>,
    pub lakala_channel: Arc<dyn Channel>,
    /// The merchants' own keys (they sign requests to the sandbox).
    pub wechat_v3_key: RsaPrivateKey,
    pub alipay_app_key: RsaPrivateKey,
    pub lakala_app_key: RsaPrivateKey,
    _dir: tempfile::TempDir,
}

fn fatal(what: &str, e: impl std::fmt::Display) -> ! {
    // Fixtures are the harness, not the code under test: without them no
    // target can run, so stop with the reason.
    panic!("fuzz fixture: {what}: {e}")
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fatal("tokio runtime", e))
}

pub fn channel_env() -> ChannelEnv {
    ChannelEnv {
        public_url: "https://pay.example.com".into(),
        notify_url: "https://pay.example.com/api/cashier-desk/notify/C01FUZZ".into(),
        http: HttpSettings {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        },
        extra_root_ca_pems: vec![],
        oauth_base_url: None,
    }
}

fn adapter(
    channel_type: ChannelType,
    version: &str,
    mch_id: &str,
    credentials: serde_json::Value,
) -> Arc<dyn Channel> {
    build_channel(
        channel_type,
        version,
        mch_id,
        &credentials,
        None,
        &channel_env(),
    )
    .unwrap_or_else(|e| fatal("building an adapter", e))
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_else(|e| fatal("credentials to JSON", e))
}

pub fn get() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(build)
}

impl Fixtures {
    /// The names mode `S` seeds may use for the per-process merchant
    /// numbers and the current time ([`crate::message::substitute`]).
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let now = chrono::Utc::now();
        vec![
            ("$WXMCH", self.wechat_md5.mch_id.clone()),
            ("$WXAPP", self.wechat_md5.credentials_v2.app_id.clone()),
            ("$WXHMCH", self.wechat_hmac.mch_id.clone()),
            ("$WXHAPP", self.wechat_hmac.credentials_v2.app_id.clone()),
            ("$ALIAPP", self.alipay.credentials.app_id.clone()),
            ("$ALIPID", self.alipay.credentials.seller_id.clone()),
            ("$LKLAPP", self.lakala.credentials.app_id.clone()),
            ("$LKLMER", self.lakala.credentials.merchant_no.clone()),
            ("$LKLTERM", self.lakala.credentials.term_no.clone()),
            ("$NOWCN", cashdesk_core::time::to_cn_datetime(now)),
            ("$NOWCOMPACT", cashdesk_core::time::to_compact(now)),
            ("$NOWUNIX", now.timestamp().to_string()),
        ]
    }
}

fn build() -> Fixtures {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap_or_else(|e| fatal("temp dir", e));
    let (sandbox, wechat_md5, wechat_hmac, alipay, lakala) = rt.block_on(async {
        let config = SandboxConfig::new(dir.path(), "http://127.0.0.1:9");
        let sandbox = Sandbox::start(config)
            .await
            .unwrap_or_else(|e| fatal("sandbox", e));
        let md5 = sandbox.open_wechat_merchant(Some("MD5")).await;
        let hmac = sandbox.open_wechat_merchant(Some("HMAC-SHA256")).await;
        let alipay = sandbox.open_alipay_merchant().await;
        let lakala = sandbox.open_lakala_merchant().await;
        (
            sandbox,
            md5.unwrap_or_else(|e| fatal("wechat merchant", e)),
            hmac.unwrap_or_else(|e| fatal("wechat merchant", e)),
            alipay.unwrap_or_else(|e| fatal("alipay merchant", e)),
            lakala.unwrap_or_else(|e| fatal("lakala merchant", e)),
        )
    });
    let pki = Pki::load_or_create(&dir.path().join("sandbox"))
        .unwrap_or_else(|e| fatal("sandbox pki", e));
    let wx_v2_md5 = adapter(
        ChannelType::WxPay,
        "v2",
        &wechat_md5.mch_id,
        json(&wechat_md5.credentials_v2),
    );
    let wx_v2_hmac = adapter(
        ChannelType::WxPay,
        "v2",
        &wechat_hmac.mch_id,
        json(&wechat_hmac.credentials_v2),
    );
    let wx_v3 = adapter(
        ChannelType::WxPay,
        "v3",
        &wechat_md5.mch_id,
        json(&wechat_md5.credentials_v3),
    );
    let alipay_channel = adapter(
        ChannelType::AliPay,
        "",
        &alipay.mch_id,
        json(&alipay.credentials),
    );
    let lakala_channel = adapter(
        ChannelType::Lakala,
        "",
        &lakala.mch_id,
        json(&lakala.credentials),
    );
    let key = |pem: &str| RsaPrivateKey::from_pem(pem).unwrap_or_else(|e| fatal("merchant key", e));
    Fixtures {
        wechat_v3_key: key(&wechat_md5.credentials_v3.private_key_pem),
        alipay_app_key: key(&alipay.credentials.private_key_pem),
        lakala_app_key: key(&lakala.credentials.private_key_pem),
        router: sandbox.router(),
        rt,
        sandbox,
        pki,
        wechat_md5,
        wechat_hmac,
        alipay,
        lakala,
        wx_v2_md5,
        wx_v2_hmac,
        wx_v3,
        alipay_channel,
        lakala_channel,
        _dir: dir,
    }
}

/// A running `cashdesk serve` (SQLite in a temporary folder, the sandbox
/// mounted) and its demo app.
pub struct Server {
    pub rt: Runtime,
    pub base_url: String,
    pub app_id: String,
    pub app_key: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap_or_else(|e| fatal("temp dir", e));
        let config = cashdesk_server::Config::for_tests(dir.path());
        let app = rt
            .block_on(cashdesk_server::Application::build(config))
            .unwrap_or_else(|e| fatal("cashdesk server", e));
        let base_url = format!("http://{}", app.local_addr());
        let demo = app
            .startup_report()
            .demo_app
            .clone()
            .unwrap_or_else(|| fatal("cashdesk server", "no demo app on a fresh database"));
        rt.spawn(app.run_until_stopped(std::future::pending()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|e| fatal("HTTP client", e));
        Server {
            rt,
            base_url,
            app_id: demo.app_id,
            app_key: demo.app_key.expose().to_owned(),
            client,
            _dir: dir,
        }
    })
}
