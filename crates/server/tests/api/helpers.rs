//! `spawn_app`: a fresh data folder and database per test (SQLite file, or
//! a new PostgreSQL database `cd_test_<uuid>` dropped afterwards), the
//! server on 127.0.0.1:0, SDK clients for the operator and the demo app.

use std::sync::Arc;
use std::time::Duration;

use cashdesk_core::SignType;
use cashdesk_crypto::rsa::RsaPrivateKey;
use cashdesk_crypto::sm::Sm2PrivateKey;
use cashdesk_sdk::{
    AdminClient, Client, CreateOrderRequest, Credentials, HeaderMap, Method, RawResponse,
    RegisterAppRequest, SdkError, Secret,
};
use cashdesk_server::{Application, Config};
use cashdesk_store::{OrderFilter, Store};
use sqlx::Connection as _;
use tokio::sync::oneshot;

/// `mod <name> { sqlite, postgres }` calling `<name>(Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match $crate::helpers::Backend::postgres() {
                        Some(b) => super::$name(b).await,
                        None => eprintln!("skipping: CASHDESK_TEST_POSTGRES_URL not set"),
                    }
                }
            }
        )*
    };
}

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The server URL from CASHDESK_TEST_POSTGRES_URL.
    Postgres(String),
}

impl Backend {
    /// `None` (the test skips) without CASHDESK_TEST_POSTGRES_URL; under
    /// `CI=true` that is a failure instead, so the PostgreSQL variants
    /// cannot pass without running.
    pub fn postgres() -> Option<Backend> {
        let url = std::env::var("CASHDESK_TEST_POSTGRES_URL")
            .ok()
            .filter(|s| !s.is_empty());
        assert!(
            url.is_some() || !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI=true, but CASHDESK_TEST_POSTGRES_URL is not set: the PostgreSQL variant would pass without running (set it, as .ci/run does)"
        );
        url.map(Backend::Postgres)
    }
}

/// A fresh PostgreSQL database, dropped (WITH FORCE) when this is dropped.
pub struct PgDatabase {
    server_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(server_url: &str) -> PgDatabase {
        let name = format!("cd_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(server_url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(server_url).expect("postgres URL");
        url.set_path(&format!("/{name}"));
        PgDatabase {
            server_url: server_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Best effort, on a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub base_url: String,
    /// Where the sandbox answers: `base_url` in development, its own
    /// loopback listener in production.
    pub sandbox_url: String,
    /// What the start reported (mode, sandbox, demo app).
    pub report: cashdesk_server::StartupReport,
    pub admin_token: String,
    pub admin: AdminClient,
    pub demo_app_id: String,
    pub demo_app_key: String,
    /// The demo app's client (HMAC-SHA256).
    pub client: Client,
    pub store: Arc<dyn Store>,
    /// The running server's state (to build a router of one area).
    pub state: cashdesk_server::state::AppState,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the server must be gone before its folder and database.
    pub pg: Option<Arc<PgDatabase>>,
    pub dir: Arc<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], but `client`, `demo_app_id` and `demo_app_key` are a
/// newly registered HMAC-SHA256 app with no channel bound (the demo app
/// itself is bound to the sandbox channels on a fresh database).
pub async fn spawn_app_unbound(backend: Backend) -> TestApp {
    let mut app = spawn_app(backend).await;
    let m = app.merchant(SignType::HmacSha256).await;
    if let Credentials::Shared { app_key, .. } = &m.credentials {
        app.demo_app_key = app_key.expose().to_owned();
    }
    app.client = m.client;
    app.demo_app_id = m.app_id;
    app
}

/// Like [`spawn_app`], with a chance to change the config first.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let pg = match &backend {
        Backend::Sqlite => None,
        Backend::Postgres(server) => Some(Arc::new(PgDatabase::create(server).await)),
    };
    let mut config = Config::for_tests(dir.path().join("data"));
    if let Some(pg) = &pg {
        config.database_url = Some(pg.url.clone());
    }
    tweak(&mut config);
    start(config, dir, pg).await
}

/// Starts another instance on the same folder and database as `other`,
/// behind the same public URL (as instances behind one balancer are: the
/// channels' notifications reach either). `base_url` is its own listener.
pub async fn spawn_sibling(other: &TestApp) -> TestApp {
    let mut config = other.config.clone();
    config.public_url = Some(other.report.public_url.clone());
    start(config, other.dir.clone(), other.pg.clone()).await
}

async fn start(
    config: Config,
    dir: Arc<tempfile::TempDir>,
    pg: Option<Arc<PgDatabase>>,
) -> TestApp {
    let app = Application::build(config.clone())
        .await
        .expect("application builds");
    let report = app.startup_report().clone();
    // Where this instance listens (its public URL too, unless it shares
    // another's: spawn_sibling).
    let base_url = report.listen_url.clone();
    let sandbox_url = report
        .sandbox
        .as_ref()
        .map_or_else(|| base_url.clone(), |s| s.base_url.clone());
    let store = app.store();
    let state = app.state();
    let admin_token = match &config.admin_token {
        Some(token) => token.clone(),
        None => std::fs::read_to_string(config.admin_token_file())
            .expect("admin token file")
            .trim()
            .to_owned(),
    };
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let admin = AdminClient::new(&base_url, &admin_token).expect("admin client");
    // The demo app (development), or else an app registered now.
    let (demo_app_id, demo_app_key) = match std::fs::read(config.demo_app_file()) {
        Ok(bytes) => {
            let demo: serde_json::Value = serde_json::from_slice(&bytes).expect("demo app JSON");
            (
                demo["appId"].as_str().expect("appId").to_owned(),
                demo["appKey"].as_str().expect("appKey").to_owned(),
            )
        }
        Err(_) => {
            let reg = admin
                .create_app(&RegisterAppRequest {
                    app_name: "test shop".to_owned(),
                    sign_type: Some(SignType::HmacSha256),
                    ..RegisterAppRequest::default()
                })
                .await
                .expect("register an app");
            (reg.app_id, reg.app_key)
        }
    };
    let client = Client::new(
        &base_url,
        &demo_app_id,
        Credentials::hmac_sha256(demo_app_key.clone()),
    )
    .expect("client");
    TestApp {
        base_url,
        sandbox_url,
        report,
        admin_token,
        admin,
        demo_app_id,
        demo_app_key,
        client,
        store,
        state,
        config,
        stop: Some(tx),
        server: Some(server),
        pg,
        dir,
    }
}

/// An app registered by the operator, with its client.
pub struct TestMerchant {
    pub app_id: String,
    pub client: Client,
    pub credentials: Credentials,
}

impl TestApp {
    /// Registers an app with `sign_type` (fresh client key pairs for RSA2/SM2).
    pub async fn merchant(&self, sign_type: SignType) -> TestMerchant {
        let (public_key_pem, private_pem) = match sign_type {
            SignType::Rsa2 => {
                let k = RsaPrivateKey::generate_2048().expect("rsa key");
                (Some(k.public_key().to_spki_pem()), Some(k.to_pkcs8_pem()))
            }
            SignType::Sm2 => {
                let k = Sm2PrivateKey::generate();
                (Some(k.public_key().to_spki_pem()), Some(k.to_pkcs8_pem()))
            }
            _ => (None, None),
        };
        let reg = self
            .admin
            .create_app(&RegisterAppRequest {
                app_name: format!("shop {sign_type}"),
                sign_type: Some(sign_type),
                public_key_pem,
                ..RegisterAppRequest::default()
            })
            .await
            .expect("register app");
        assert_eq!(reg.sign_type, sign_type);
        let credentials = match (sign_type, private_pem) {
            (SignType::Rsa2, Some(pem)) => Credentials::Rsa {
                private_key_pem: Secret::new(pem),
                platform_public_key_pem: self.platform_keys().await.rsa_public_key_pem,
            },
            (SignType::Sm2, Some(pem)) => Credentials::Sm2 {
                private_key_pem: Secret::new(pem),
                platform_public_key_pem: self.platform_keys().await.sm2_public_key_pem,
            },
            _ => Credentials::Shared {
                sign_type,
                app_key: Secret::new(reg.app_key.clone()),
            },
        };
        let client = Client::new(&self.base_url, &reg.app_id, credentials.clone()).expect("client");
        TestMerchant {
            app_id: reg.app_id,
            client,
            credentials,
        }
    }

    /// Creates an enabled store `store_id` of `app_id` (orders and
    /// binding applications may only name existing, enabled stores).
    pub async fn add_store(&self, app_id: &str, store_id: &str) -> serde_json::Value {
        self.admin
            .create_store(&cashdesk_sdk::CreateStoreRequest {
                app_id: app_id.to_owned(),
                store_id: store_id.to_owned(),
                name: format!("门店 {store_id}"),
                enabled: None,
            })
            .await
            .expect("store created")
    }

    pub async fn platform_keys(&self) -> cashdesk_sdk::PlatformKeys {
        self.client.platform_keys().await.expect("platform keys")
    }

    /// Orders in the database (all apps).
    pub async fn order_count(&self) -> usize {
        self.store
            .list_orders(&OrderFilter {
                limit: 10_000,
                ..OrderFilter::default()
            })
            .await
            .expect("list orders")
            .len()
    }

    /// An unsigned request.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        headers: HeaderMap,
    ) -> RawResponse {
        self.client
            .send_raw(method, path, body.to_vec(), headers)
            .await
            .expect("HTTP round trip")
    }

    /// A request signed by `client` with a chosen timestamp and nonce.
    pub async fn signed_raw(
        &self,
        client: &Client,
        method: Method,
        path: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> RawResponse {
        let signed = client
            .signer()
            .sign_request_at(method.as_str(), path, body, timestamp, nonce)
            .expect("sign");
        let mut headers = signed.to_header_map().expect("headers");
        headers.insert("content-type", "application/json".parse().expect("header"));
        self.raw(method, path, body, headers).await
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn order(out_trade_no: &str, amount: i64) -> CreateOrderRequest {
    CreateOrderRequest::new(out_trade_no, amount, "Coffee")
}

/// A fresh valid outTradeNo.
pub fn otn() -> String {
    format!("T{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}

/// Asserts an SDK error is the API error `code` with HTTP `status`.
#[track_caller]
pub fn assert_api_error<T: std::fmt::Debug>(
    result: Result<T, SdkError>,
    status: u16,
    code: i64,
) -> Option<serde_json::Value> {
    match result {
        Err(SdkError::Api {
            status: s,
            code: c,
            msg,
            data,
        }) => {
            assert_eq!((s, c), (status, code), "unexpected error: {msg}");
            data
        }
        other => panic!("expected API error {code} (HTTP {status}), got {other:?}"),
    }
}

/// Asserts a raw response is an error envelope with `code` and `status`.
#[track_caller]
pub fn assert_envelope(resp: &RawResponse, status: u16, code: i64) -> serde_json::Value {
    let body = resp.json().expect("JSON body");
    assert_eq!(
        (resp.status.as_u16(), body["code"].as_i64()),
        (status, Some(code)),
        "body: {body}"
    );
    assert!(
        body["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "msg: {body}"
    );
    assert!(
        body["responseTime"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "responseTime: {body}"
    );
    body
}

pub async fn wait_until<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// --- channels and the sandbox ---

/// A sandbox WeChat Pay merchant wired into cashdesk: its credentials (as
/// the sandbox handed them out), a channel config, one channel per scene,
/// and a fresh merchant app bound (approved) to all of them.
pub struct WxSetup {
    /// `POST /sandbox/api/merchants`'s answer.
    pub merchant: serde_json::Value,
    pub api_version: &'static str,
    pub config_id: String,
    /// scene code → channel id.
    pub channels: std::collections::HashMap<String, String>,
    pub shop: TestMerchant,
}

impl WxSetup {
    pub fn mch_id(&self) -> &str {
        self.merchant["mchId"].as_str().expect("mchId")
    }
    /// The credentials object of this setup's API version.
    pub fn creds(&self) -> &serde_json::Value {
        match self.api_version {
            "v2" => &self.merchant["credentialsV2"],
            _ => &self.merchant["credentialsV3"],
        }
    }
    pub fn channel(&self, scene: &str) -> &str {
        self.channels.get(scene).expect("channel of scene")
    }
}

pub const SCENES: [&str; 5] = ["mini", "jsapi", "native", "h5", "app"];

impl TestApp {
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client")
    }

    /// POSTs JSON to the mounted sandbox's test API.
    pub async fn sandbox_post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let resp = self
            .http()
            .post(format!("{}{path}", self.sandbox_url))
            .json(&body)
            .send()
            .await
            .expect("sandbox call");
        let status = resp.status().as_u16();
        let v = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, v)
    }

    /// GETs the mounted sandbox's test API.
    pub async fn sandbox_get(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let resp = self
            .http()
            .get(format!("{}{path_and_query}", self.sandbox_url))
            .send()
            .await
            .expect("sandbox call");
        let status = resp.status().as_u16();
        let v = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, v)
    }

    pub async fn open_sandbox_merchant(&self, sign_type: &str) -> serde_json::Value {
        let (status, m) = self
            .sandbox_post(
                "/sandbox/api/merchants",
                serde_json::json!({"channelType": "wx-pay", "signType": sign_type}),
            )
            .await;
        assert_eq!(status, 201, "{m}");
        m
    }

    /// A wx-pay config from `credentials` (overridable), channels for every
    /// scene and a new merchant app bound to them.
    pub async fn wechat_setup_with(
        &self,
        api_version: &'static str,
        sign_type: &str,
        tweak: impl FnOnce(&mut serde_json::Value),
    ) -> WxSetup {
        let shop = self.merchant(SignType::HmacSha256).await;
        self.wechat_setup_for(api_version, sign_type, tweak, shop)
            .await
    }

    /// An HMAC-SHA256 app registered with `req` (its name and settings).
    pub async fn merchant_with(&self, req: RegisterAppRequest) -> TestMerchant {
        let reg = self.admin.create_app(&req).await.expect("register app");
        let credentials = Credentials::Shared {
            sign_type: reg.sign_type,
            app_key: Secret::new(reg.app_key.clone()),
        };
        let client = Client::new(&self.base_url, &reg.app_id, credentials.clone()).expect("client");
        TestMerchant {
            app_id: reg.app_id,
            client,
            credentials,
        }
    }

    /// [`TestApp::wechat_setup`] for an app the test registered.
    pub async fn wechat_setup_for(
        &self,
        api_version: &'static str,
        sign_type: &str,
        tweak: impl FnOnce(&mut serde_json::Value),
        shop: TestMerchant,
    ) -> WxSetup {
        self.wechat_setup_at(api_version, sign_type, tweak, shop, |url| url.to_owned())
            .await
    }

    /// [`TestApp::wechat_setup_for`] with the config's base URL made from
    /// the sandbox's by `base_url` (e.g. through a proxy).
    pub async fn wechat_setup_at(
        &self,
        api_version: &'static str,
        sign_type: &str,
        tweak: impl FnOnce(&mut serde_json::Value),
        shop: TestMerchant,
        base_url: impl FnOnce(&str) -> String,
    ) -> WxSetup {
        let merchant = self.open_sandbox_merchant(sign_type).await;
        let mut credentials = match api_version {
            "v2" => merchant["credentialsV2"].clone(),
            _ => merchant["credentialsV3"].clone(),
        };
        tweak(&mut credentials);
        let config = self
            .admin
            .create_channel_config(&cashdesk_sdk::CreateChannelConfigRequest {
                channel_type: "wx-pay".into(),
                name: format!("sandbox {api_version}"),
                mch_id: merchant["mchId"].as_str().expect("mchId").to_owned(),
                api_version: Some(api_version.into()),
                credentials,
                base_url: Some(base_url(merchant["baseUrl"].as_str().expect("baseUrl"))),
            })
            .await
            .expect("channel config");
        let mut channels = std::collections::HashMap::new();
        for scene in SCENES {
            let ch = self
                .admin
                .create_channel(&cashdesk_sdk::CreateChannelRequest {
                    config_id: config.config_id.clone(),
                    scene_code: scene.into(),
                    channel_name: format!("WeChat {scene} {api_version}"),
                    sort: None,
                })
                .await
                .expect("channel");
            let applied = shop
                .client
                .apply_binding(&cashdesk_sdk::ApplyBindingRequest {
                    channel_id: ch.channel_id.clone(),
                    store_id: None,
                })
                .await
                .expect("apply");
            self.admin
                .approve_binding(&applied.binding_id)
                .await
                .expect("approve");
            channels.insert(scene.to_owned(), ch.channel_id);
        }
        WxSetup {
            merchant,
            api_version,
            config_id: config.config_id,
            channels,
            shop,
        }
    }

    pub async fn wechat_setup(&self, api_version: &'static str) -> WxSetup {
        self.wechat_setup_with(api_version, "HMAC-SHA256", |_| {})
            .await
    }

    /// `POST /api/cashier-desk/payment` with a raw JSON body signed by
    /// `client`: for tests that send channel-specific or odd fields (the
    /// typed way is `client.pay(&PaymentRequest…)`).
    pub async fn pay_json(
        &self,
        client: &Client,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, SdkError> {
        client
            .send(Method::POST, "/api/cashier-desk/payment", Some(&body))
            .await
            .map(|env| env.data.unwrap_or(serde_json::Value::Null))
    }

    /// Pays the order at the sandbox (as the buyer would).
    pub async fn sandbox_pay(&self, order_id: &str) {
        let (status, v) = self
            .sandbox_post(
                "/sandbox/api/pay",
                serde_json::json!({"channelType": "wx-pay", "outTradeNo": order_id, "result": "SUCCESS"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }

    pub async fn add_fault(&self, fault: serde_json::Value) {
        let (status, v) = self.sandbox_post("/sandbox/api/faults", fault).await;
        assert_eq!(status, 201, "{v}");
    }

    /// Sum of the values of `name` series whose labels contain every `labels` pair.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self
            .http()
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The `metric` sum once it has reached `at_least`, or as it is after
    /// 5 s: the server counts an event just after committing the change a
    /// test waits for, so a read right after that change may be early.
    pub async fn metric_settled(&self, name: &str, labels: &[(&str, &str)], at_least: f64) -> f64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let v = self.metric(name, labels).await;
            if v >= at_least || tokio::time::Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the `metric` sum rises above `before` within 5 s (the server
    /// counts some events just after committing the change a test saw).
    pub async fn metric_rises(&self, name: &str, labels: &[(&str, &str)], before: f64) -> bool {
        wait_until(Duration::from_secs(5), || async {
            self.metric(name, labels).await > before
        })
        .await
    }

    /// Stores an order of the demo app whose time ran out a minute ago, as
    /// created 31 minutes ago; its cashier token.
    pub async fn insert_expired_order(&self) -> String {
        let now = chrono::Utc::now();
        let token = cashdesk_crypto::random::token(32);
        let expired = cashdesk_store::NewOrder {
            order_id: cashdesk_core::OrderId::generate(),
            app_id: cashdesk_core::AppId::parse(&self.demo_app_id).expect("app id"),
            out_trade_no: cashdesk_core::OutTradeNo::parse(&otn()).expect("otn"),
            amount: cashdesk_core::Fen::from_stored(1),
            order_title: "old".into(),
            goods_desc: String::new(),
            third_party_user: String::new(),
            notify_url: None,
            return_url: None,
            store_id: None,
            attach: None,
            client_ip: None,
            token: token.clone(),
            expire_at: now - chrono::Duration::minutes(1),
            request_hash: "0".repeat(64),
            response: serde_json::json!({}),
            created_at: now - chrono::Duration::minutes(31),
        };
        self.store.insert_order(&expired).await.expect("insert");
        token
    }

    /// Creates an order for `client` and returns (outTradeNo, orderId).
    pub async fn new_order(&self, client: &Client, amount: i64) -> (String, String) {
        let no = otn();
        let created = client
            .create_order(&order(&no, amount))
            .await
            .expect("order");
        (no, created.order_id)
    }

    /// Moves the order's `expireAt` into the past, straight in the
    /// database (orders live at least a minute through the API; tests of
    /// expiry cannot wait that long). The channel still has the original
    /// expiry.
    pub async fn force_expire(&self, order_id: &str) {
        use sqlx::Connection as _;
        let past = chrono::Utc::now() - chrono::Duration::seconds(1);
        let url = self.config.effective_database_url();
        let sql = "UPDATE orders SET expire_at = $1 WHERE order_id = $2";
        let n = if url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("open sqlite");
            sqlx::query(sql)
                .bind(past.timestamp_micros())
                .bind(order_id)
                .execute(&mut c)
                .await
                .expect("update")
                .rows_affected()
        } else {
            let mut c = sqlx::PgConnection::connect(&url)
                .await
                .expect("open postgres");
            sqlx::query(sql)
                .bind(past)
                .bind(order_id)
                .execute(&mut c)
                .await
                .expect("update")
                .rows_affected()
        };
        assert_eq!(n, 1, "order {order_id} exists");
    }

    /// Waits until the order's local state is `state`.
    pub async fn wait_state(
        &self,
        client: &Client,
        out_trade_no: &str,
        state: &str,
    ) -> cashdesk_sdk::PayResult {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = client
                .query_pay_result(out_trade_no, false)
                .await
                .expect("query");
            if serde_json::to_value(r.state).expect("state") == state {
                return r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order never reached {state}: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A sandbox Alipay or Lakala merchant wired into cashdesk (like
/// [`WxSetup`]): the sandbox's answer, the credentials pasted into a config
/// created WITHOUT `apiVersion` (the channel's only version applies), one
/// channel per scene and a fresh merchant app bound (approved) to them.
pub struct ChannelSetup {
    /// `POST /sandbox/api/merchants`'s answer.
    pub merchant: serde_json::Value,
    /// The credentials object the config was created with.
    pub credentials: serde_json::Value,
    pub config_id: String,
    /// scene code → channel id.
    pub channels: std::collections::HashMap<String, String>,
    pub shop: TestMerchant,
}

impl ChannelSetup {
    /// The credentials' `mchId` (Alipay's pid, Lakala's merchant_no).
    pub fn mch_id(&self) -> &str {
        self.merchant["mchId"].as_str().expect("mchId")
    }
    /// A string field of the credentials.
    pub fn cred(&self, k: &str) -> &str {
        self.credentials[k]
            .as_str()
            .unwrap_or_else(|| panic!("credentials.{k}"))
    }
    pub fn channel(&self, scene: &str) -> &str {
        self.channels.get(scene).expect("channel of scene")
    }
}

pub const ALIPAY_SCENES: [&str; 5] = ["mini", "wap", "page", "qr", "app"];
pub const LAKALA_SCENES: [&str; 4] = ["mini", "jsapi", "native", "h5"];

impl TestApp {
    /// `POST /sandbox/api/merchants {"channelType": channel_type}`.
    pub async fn open_sandbox(&self, channel_type: &str) -> serde_json::Value {
        let (status, m) = self
            .sandbox_post(
                "/sandbox/api/merchants",
                serde_json::json!({"channelType": channel_type}),
            )
            .await;
        assert_eq!(status, 201, "{m}");
        m
    }

    /// A config of `channel_type` from the sandbox's `credentials_key`
    /// (`credentials` or, Alipay certificate mode, `credentialsCert`),
    /// changed by `tweak`, with channels for `scenes`.
    pub async fn channel_setup_with(
        &self,
        channel_type: &'static str,
        credentials_key: &str,
        scenes: &[&str],
        tweak: impl FnOnce(&mut serde_json::Value),
    ) -> ChannelSetup {
        let merchant = self.open_sandbox(channel_type).await;
        let mut credentials = merchant[credentials_key].clone();
        assert!(credentials.is_object(), "{credentials_key} in {merchant}");
        tweak(&mut credentials);
        let config = self
            .admin
            .create_channel_config(&cashdesk_sdk::CreateChannelConfigRequest {
                channel_type: channel_type.into(),
                name: format!("sandbox {channel_type} {credentials_key}"),
                mch_id: merchant["mchId"].as_str().expect("mchId").to_owned(),
                api_version: None,
                credentials: credentials.clone(),
                base_url: Some(merchant["baseUrl"].as_str().expect("baseUrl").to_owned()),
            })
            .await
            .expect("channel config");
        let shop = self.merchant(SignType::HmacSha256).await;
        let mut channels = std::collections::HashMap::new();
        for scene in scenes {
            let ch = self
                .admin
                .create_channel(&cashdesk_sdk::CreateChannelRequest {
                    config_id: config.config_id.clone(),
                    scene_code: (*scene).into(),
                    channel_name: format!("{channel_type} {scene}"),
                    sort: None,
                })
                .await
                .expect("channel");
            let applied = shop
                .client
                .apply_binding(&cashdesk_sdk::ApplyBindingRequest {
                    channel_id: ch.channel_id.clone(),
                    store_id: None,
                })
                .await
                .expect("apply");
            self.admin
                .approve_binding(&applied.binding_id)
                .await
                .expect("approve");
            channels.insert((*scene).to_owned(), ch.channel_id);
        }
        ChannelSetup {
            merchant,
            credentials,
            config_id: config.config_id,
            channels,
            shop,
        }
    }

    /// Alipay in public-key mode, or with `cert` in certificate mode.
    pub async fn alipay_setup(&self, cert: bool) -> ChannelSetup {
        let key = if cert {
            "credentialsCert"
        } else {
            "credentials"
        };
        self.channel_setup_with("ali-pay", key, &ALIPAY_SCENES, |_| {})
            .await
    }

    pub async fn lakala_setup(&self) -> ChannelSetup {
        self.channel_setup_with("lakala", "credentials", &LAKALA_SCENES, |_| {})
            .await
    }

    /// `POST /sandbox/api/pay` with `body`; returns the answer (status 200
    /// asserted).
    pub async fn sandbox_pay_with(&self, body: serde_json::Value) -> serde_json::Value {
        let (status, v) = self.sandbox_post("/sandbox/api/pay", body.clone()).await;
        assert_eq!(status, 200, "{body} → {v}");
        v
    }

    /// The sandbox's request log: `GET /sandbox/api/requests?mchId=&kind=`.
    pub async fn sandbox_requests(&self, mch_id: &str, kind: &str) -> Vec<serde_json::Value> {
        let v: serde_json::Value = self
            .http()
            .get(format!(
                "{}/sandbox/api/requests?mchId={mch_id}&kind={kind}&limit=1000",
                self.sandbox_url
            ))
            .send()
            .await
            .expect("requests")
            .json()
            .await
            .expect("requests JSON");
        v["requests"].as_array().cloned().unwrap_or_default()
    }
}

/// The value of `name` in an `application/x-www-form-urlencoded` string.
pub fn form_value(form: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A fresh outRefundNo.
pub fn orn() -> String {
    format!("R{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}
