//! Server configuration: built-in defaults ← optional TOML file ←
//! `CASHDESK_*` environment variables (figment), so `cashdesk serve` runs
//! with no configuration at all and every setting can be overridden by an
//! operator's environment.
//!
//! Only the names listed in [`ENV_KEYS`] are read from the environment:
//! other `CASHDESK_*` variables (e.g. `CASHDESK_TEST_POSTGRES_URL`) are not
//! configuration and must not fail the load; `cashdesk serve` warns about
//! the ones it does not know either ([`unknown_env_vars`]: a misspelt
//! `CASHDESK_SANBOX` is said, not silently ignored). An unknown key in the
//! TOML file is an error that names it (`deny_unknown_fields`): a misspelt
//! `sandbox = false` must not leave the sandbox on.
//!
//! # Postures
//!
//! [`Config::mode`] is `development` or `production`: set by `mode`, or
//! derived from the listener (loopback → development, anything else →
//! production). Development is the zero-config `cashdesk serve`: sandbox
//! on the public listener, demo app, private notify URLs allowed,
//! signature errors that show the string to sign. Production turns all
//! of that off unless asked for, and an enabled sandbox answers only on
//! its own loopback listener (`sandbox_listen`). See docs/operations.md.
//!
//! This file holds the settings and their rules; `env` the list of
//! environment variables that are configuration and the warning about the
//! others; `values` the parsers of the values written as text (schedules,
//! proxy lists, URLs with passwords).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod env;
#[cfg(test)]
mod tests;
mod values;

pub use env::{ENV_KEYS, OTHER_ENV_VARS, unknown_env_vars};
use values::{cidr_list, cidr_strings, lossy_opt_string};
pub use values::{parse_schedule, redact_url};

/// The merchant notification retry waits of ARCHITECTURE.md §5.3 (24 h 4 min
/// in all): after the n-th failed attempt the next one is the n-th wait
/// later; after the last, the notification is `FAILED`.
pub const DEFAULT_NOTIFY_SCHEDULE: &str = "15s,15s,30s,3m,10m,20m,30m,30m,30m,60m,3h,3h,3h,6h,6h";

/// The config file read when no `--config` is given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "cashdesk.toml";

/// How the binary formats its logs (the subscriber is set by the binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// The posture of a start (module comment; docs/operations.md "Postures").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Development,
    Production,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

/// Which header a trusted proxy puts the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, Envoy,
    /// cloud balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`.
    Forwarded,
}

/// Everything `cashdesk serve` can be told; `deploy/cashdesk.toml` is the
/// commented sample (a test checks it names every field).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `development` or `production` (`CASHDESK_MODE`); default
    /// development when `listen` is a loopback address, production
    /// otherwise. An explicit `development` on a non-loopback listener is
    /// allowed (a container's `0.0.0.0`) but warned about loudly.
    pub mode: Option<Mode>,
    /// Where to listen (`CASHDESK_LISTEN`, default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// The data folder: SQLite file, master key, admin token, demo app.
    pub data_dir: PathBuf,
    /// `sqlite:…` or `postgres://…`; default SQLite in the data folder.
    #[serde(deserialize_with = "lossy_opt_string")]
    pub database_url: Option<String>,
    /// The operator token; default generated into `<data_dir>/admin.token`.
    #[serde(deserialize_with = "lossy_opt_string")]
    pub admin_token: Option<String>,
    /// The base URL buyers open and channels call back; default
    /// `http://<listen>` (with the bound port when the port is 0).
    #[serde(deserialize_with = "lossy_opt_string")]
    pub public_url: Option<String>,
    /// The channel sandbox (`CASHDESK_SANDBOX`): unset = on in
    /// development, off in production. On: the WeChat Pay, Alipay and
    /// Lakala simulators answer under `/sandbox/...` (plus their HTTPS
    /// listener) and, in development, the demo app is bound to them and
    /// signature errors also return the expected string to sign.
    pub sandbox: Option<bool>,
    /// The sandbox's own plain-HTTP listener, which must be a loopback
    /// address (`CASHDESK_SANDBOX_LISTEN`). In production an enabled
    /// sandbox is served only there (default `127.0.0.1:0`), never on
    /// `listen`; in development it is on `listen` unless this is set.
    pub sandbox_listen: Option<SocketAddr>,
    /// The sandbox's HTTPS (mutual-TLS) listener; default `127.0.0.1:0`
    /// (`CASHDESK_SANDBOX_TLS_LISTEN`).
    pub sandbox_tls_listen: Option<SocketAddr>,
    /// The sandbox's notification retry waits, comma-separated durations
    /// (`15s,30s,3m`, `100ms,200ms`); default WeChat's own schedule
    /// (`CASHDESK_SANDBOX_NOTIFY_SCHEDULE`).
    #[serde(deserialize_with = "lossy_opt_string")]
    pub sandbox_notify_schedule: Option<String>,
    /// Whole-request timeout of outbound channel calls, in milliseconds
    /// (`CASHDESK_CHANNEL_TIMEOUT_MS`, default 15000).
    pub channel_timeout_ms: u64,
    /// Where the cashier page sends a buyer in the WeChat browser for the
    /// openid of a JSAPI payment (`CASHDESK_WECHAT_OAUTH_BASE_URL`):
    /// `<base>/connect/oauth2/authorize` and
    /// `<base>/sns/oauth2/access_token`. Default: the mounted sandbox
    /// (`<public_url>/sandbox/wechat`) in sandbox mode, WeChat itself
    /// (`open.weixin.qq.com` / `api.weixin.qq.com`) otherwise.
    #[serde(deserialize_with = "lossy_opt_string")]
    pub wechat_oauth_base_url: Option<String>,
    /// When the poller asks a channel about a `PAYING` order or a
    /// `PROCESSING` refund that has no final answer yet: the first duration
    /// after its last change, then each following one after the previous
    /// query (the last repeats; orders until they expire). Default
    /// `60s,60s,2m,5m,10m` (`CASHDESK_QUERY_SCHEDULE`).
    #[serde(deserialize_with = "lossy_opt_string")]
    pub query_schedule: Option<String>,
    /// The waits between merchant notification attempts, comma-separated
    /// (`CASHDESK_NOTIFY_SCHEDULE`, default [`DEFAULT_NOTIFY_SCHEDULE`]):
    /// one more attempt than waits, then `FAILED`.
    #[serde(deserialize_with = "lossy_opt_string")]
    pub notify_schedule: Option<String>,
    /// Whole-request timeout of one merchant notification attempt, in
    /// milliseconds (`CASHDESK_NOTIFY_TIMEOUT_MS`, default 10000). The
    /// delivery lease is twice this plus a second.
    pub notify_timeout_ms: u64,
    /// When the daily reconciliation of yesterday runs, China Standard
    /// Time: `HH:MM-HH:MM` (first try at the start, then every 30 minutes
    /// while a bill is not ready or could not be fetched, until the end),
    /// or `off` (runs only when asked: `cashdesk recon run`, the admin
    /// API). Default `10:00-18:00` (`CASHDESK_RECON_WINDOW`).
    #[serde(deserialize_with = "lossy_opt_string")]
    pub recon_window: Option<String>,
    /// Whether `POST /api/cashier-desk-sa/register` works without the operator token.
    pub open_registration: bool,
    /// Approve binding applications automatically after this many seconds;
    /// `None` = an operator approves them.
    pub binding_auto_approve_secs: Option<u64>,
    /// Accept notify URLs on loopback/private/link-local hosts (tests, LAN
    /// setups). Default off; when it is not set at all (file or
    /// environment), [`Config::load`] turns it on in development, where a
    /// merchant's test receiver on `localhost` is the normal case.
    pub allow_private_notify_urls: bool,
    /// Largest request body accepted (413 code 4002 above it).
    pub body_limit_bytes: usize,
    /// Peers whose `proxy_header` is believed (`CASHDESK_TRUSTED_PROXIES`,
    /// CIDRs or addresses, comma-separated in the environment). The
    /// client's address is the peer's unless the peer is one of these;
    /// then it is the right-most address of `proxy_header` that is not.
    #[serde(deserialize_with = "cidr_list", serialize_with = "cidr_strings")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `x-forwarded-for` (default) or `forwarded` (RFC 7239): the header
    /// the trusted proxies write; the other one is ignored.
    pub proxy_header: ProxyHeader,
    /// Open connections at most (`CASHDESK_MAX_CONNECTIONS`, default
    /// 4096); one more is answered `503` with `Retry-After` and closed.
    pub max_connections: usize,
    /// From the first byte of a request to the end of its headers, in
    /// milliseconds (default 10000); a slower client is disconnected.
    pub header_read_timeout_ms: u64,
    /// A keep-alive connection with no request for this long is closed
    /// (default 75000: above the usual 60 s upstream idle timeout of
    /// balancers, so they close first).
    pub idle_timeout_ms: u64,
    /// The whole request body must arrive within this many milliseconds
    /// of its headers (default 30000; 408 code 4080 otherwise).
    pub body_read_timeout_ms: u64,
    /// Requests per second per client address on the unauthenticated
    /// surfaces: channel notifications, cashier pages, registration, the
    /// payment list, platform keys, the sandbox (default 100; 0 = no
    /// limit).
    pub rate_limit_public: u32,
    /// Burst above `rate_limit_public` (default 200).
    pub rate_limit_public_burst: u32,
    /// Requests per second on the signed merchant API and the admin API,
    /// per client address before the credentials are checked and per app
    /// after (default 500; 0 = no limit).
    pub rate_limit_api: u32,
    /// Burst above `rate_limit_api` (default 1000).
    pub rate_limit_api_burst: u32,
    pub log_format: LogFormat,
    /// The master key (standard base64 of 32 bytes); default
    /// `<data_dir>/master.key`, generated on first start.
    #[serde(deserialize_with = "lossy_opt_string")]
    pub master_key: Option<String>,
    /// URL prefixes the sandbox may notify besides this cashdesk's own
    /// notify endpoint (`<public_url>/api/cashier-desk/notify/`),
    /// comma-separated (`CASHDESK_SANDBOX_NOTIFY_ALLOW`).
    #[serde(deserialize_with = "lossy_opt_string")]
    pub sandbox_notify_allow: Option<String>,
    /// Web OAuth domains (`host` or `host:port`) the sandbox's official
    /// accounts accept in `redirect_uri` besides the public URL's,
    /// comma-separated (`CASHDESK_SANDBOX_OAUTH_DOMAINS`).
    #[serde(deserialize_with = "lossy_opt_string")]
    pub sandbox_oauth_domains: Option<String>,
    /// Merchants the sandbox's test API opens per minute in all; 0 = no
    /// limit (`CASHDESK_SANDBOX_MERCHANTS_PER_MINUTE`, default 60).
    pub sandbox_merchants_per_minute: u32,
    /// The same per client address (`…_PER_IP`, default 20).
    pub sandbox_merchants_per_minute_per_ip: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./cashdesk-data"),
            database_url: None,
            admin_token: None,
            public_url: None,
            sandbox: None,
            sandbox_listen: None,
            sandbox_tls_listen: None,
            sandbox_notify_schedule: None,
            channel_timeout_ms: 15_000,
            wechat_oauth_base_url: None,
            query_schedule: None,
            notify_schedule: None,
            notify_timeout_ms: 10_000,
            open_registration: false,
            binding_auto_approve_secs: None,
            recon_window: None,
            allow_private_notify_urls: false,
            body_limit_bytes: 65_536,
            trusted_proxies: Vec::new(),
            proxy_header: ProxyHeader::XForwardedFor,
            max_connections: 4096,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 75_000,
            body_read_timeout_ms: 30_000,
            rate_limit_public: 100,
            rate_limit_public_burst: 200,
            rate_limit_api: 500,
            rate_limit_api_burst: 1000,
            log_format: LogFormat::Pretty,
            master_key: None,
            sandbox_notify_allow: None,
            sandbox_oauth_domains: None,
            sandbox_merchants_per_minute: 60,
            sandbox_merchants_per_minute_per_ip: 20,
        }
    }
}

// Secrets never reach logs: Debug prints whether they are set, not them.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: &Option<String>| if o.is_some() { "Some(***)" } else { "None" };
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("admin_token", &set(&self.admin_token))
            .field("public_url", &self.public_url)
            .field("sandbox", &self.sandbox)
            .field("sandbox_listen", &self.sandbox_listen)
            .field("sandbox_tls_listen", &self.sandbox_tls_listen)
            .field("sandbox_notify_schedule", &self.sandbox_notify_schedule)
            .field("channel_timeout_ms", &self.channel_timeout_ms)
            .field("wechat_oauth_base_url", &self.wechat_oauth_base_url)
            .field("query_schedule", &self.query_schedule)
            .field("notify_schedule", &self.notify_schedule)
            .field("notify_timeout_ms", &self.notify_timeout_ms)
            .field("open_registration", &self.open_registration)
            .field("binding_auto_approve_secs", &self.binding_auto_approve_secs)
            .field("recon_window", &self.recon_window)
            .field("allow_private_notify_urls", &self.allow_private_notify_urls)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("proxy_header", &self.proxy_header)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout_ms", &self.header_read_timeout_ms)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("body_read_timeout_ms", &self.body_read_timeout_ms)
            .field("rate_limit_public", &self.rate_limit_public)
            .field("rate_limit_public_burst", &self.rate_limit_public_burst)
            .field("rate_limit_api", &self.rate_limit_api)
            .field("rate_limit_api_burst", &self.rate_limit_api_burst)
            .field("log_format", &self.log_format)
            .field("master_key", &set(&self.master_key))
            .field("sandbox_notify_allow", &self.sandbox_notify_allow)
            .field("sandbox_oauth_domains", &self.sandbox_oauth_domains)
            .field(
                "sandbox_merchants_per_minute",
                &self.sandbox_merchants_per_minute,
            )
            .field(
                "sandbox_merchants_per_minute_per_ip",
                &self.sandbox_merchants_per_minute_per_ip,
            )
            .finish()
    }
}

impl Config {
    /// Defaults ← `file` (or `./cashdesk.toml` when `file` is `None` and it
    /// exists) ← `CASHDESK_*` environment. A named file that does not exist
    /// is an error; so is any value that does not parse.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        // What the operator set, apart from the defaults: some defaults
        // depend on whether a key was set at all.
        let mut sources = Figment::new();
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.is_file(),
                    "config file {} does not exist",
                    path.display()
                );
                sources = sources.merge(Toml::file(path));
            }
            None => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.is_file() {
                    sources = sources.merge(Toml::file(default));
                }
            }
        }
        sources = sources.merge(Env::prefixed("CASHDESK_").only(ENV_KEYS));
        let mut config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(sources.clone())
            .extract()
            .context("invalid configuration")?;
        // Private notify URLs: on in development unless set either way.
        if sources.find_value("allow_private_notify_urls").is_err()
            && config.mode().0 == Mode::Development
        {
            config.allow_private_notify_urls = true;
        }
        config.validate()?;
        Ok(config)
    }

    /// The posture of this configuration and why, for the startup report:
    /// `(development, "listener 127.0.0.1:8080 is loopback")`.
    pub fn mode(&self) -> (Mode, String) {
        let loopback = self.listen.ip().is_loopback();
        let what = if loopback { "is" } else { "is not" };
        match self.mode {
            Some(Mode::Development) if !loopback => (
                Mode::Development,
                format!(
                    "set explicitly, although listener {} is not loopback: the sandbox and the demo app are reachable from the network",
                    self.listen
                ),
            ),
            Some(mode) => (mode, "set explicitly".to_owned()),
            None if loopback => (
                Mode::Development,
                format!("listener {} {what} loopback", self.listen),
            ),
            None => (
                Mode::Production,
                format!("listener {} {what} loopback", self.listen),
            ),
        }
    }

    /// Whether the sandbox runs: as set, else on in development only.
    pub fn sandbox_enabled(&self) -> bool {
        self.sandbox.unwrap_or(self.mode().0 == Mode::Development)
    }

    /// Where the sandbox is served when not on the public listener:
    /// always in production, in development only with `sandbox_listen`.
    pub fn sandbox_own_listener(&self) -> Option<SocketAddr> {
        if !self.sandbox_enabled() {
            return None;
        }
        match (self.mode().0, self.sandbox_listen) {
            (_, Some(addr)) => Some(addr),
            (Mode::Production, None) => Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            (Mode::Development, None) => None,
        }
    }

    /// A configuration for tests: `data_dir`, listen on `127.0.0.1:0`,
    /// sandbox on, the sandbox's and the merchant notifications' schedules
    /// in milliseconds, a 2 s notification timeout, private notify URLs
    /// allowed (test merchants listen on loopback). Nothing is read from
    /// the environment.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            allow_private_notify_urls: true,
            sandbox_notify_schedule: Some("100ms,200ms,400ms,800ms,1s,2s".to_owned()),
            notify_schedule: Some("100ms,200ms,400ms,800ms,1s,2s".to_owned()),
            notify_timeout_ms: 2_000,
            recon_window: Some("off".to_owned()),
            ..Config::default()
        }
    }

    /// The daily reconciliation window ([`Config::recon_window`]); `None`
    /// when it is `off`.
    pub fn recon_window(&self) -> anyhow::Result<Option<(chrono::NaiveTime, chrono::NaiveTime)>> {
        let s = self.recon_window.as_deref().unwrap_or("10:00-18:00").trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (a, b) = s
            .split_once('-')
            .with_context(|| format!("`{s}` is not HH:MM-HH:MM or off"))?;
        let t = |x: &str| {
            chrono::NaiveTime::parse_from_str(x.trim(), "%H:%M")
                .with_context(|| format!("`{x}` is not HH:MM"))
        };
        let (start, end) = (t(a)?, t(b)?);
        anyhow::ensure!(start < end, "the window `{s}` ends before it starts");
        Ok(Some((start, end)))
    }

    /// Header read, idle and body timeouts.
    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.idle_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.body_read_timeout_ms)
    }

    /// Refuses values that parse but cannot work.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.body_limit_bytes >= 1024,
            "body_limit_bytes must be at least 1024"
        );
        if let Some(url) = &self.public_url {
            let parsed =
                url::Url::parse(url).with_context(|| format!("public_url `{url}` is not a URL"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some(),
                "public_url must be an http(s) URL with a host"
            );
            anyhow::ensure!(
                parsed.query().is_none() && parsed.fragment().is_none(),
                "public_url must not have a query or fragment"
            );
        }
        if let Some(url) = &self.wechat_oauth_base_url {
            let parsed = url::Url::parse(url)
                .with_context(|| format!("wechat_oauth_base_url `{url}` is not a URL"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some(),
                "wechat_oauth_base_url must be an http(s) URL with a host"
            );
        }
        if let Some(s) = &self.sandbox_notify_schedule {
            parse_schedule(s).context("sandbox_notify_schedule")?;
        }
        if let Some(s) = &self.query_schedule {
            parse_schedule(s).context("query_schedule")?;
        }
        if let Some(s) = &self.notify_schedule {
            parse_schedule(s).context("notify_schedule")?;
        }
        self.recon_window().context("recon_window")?;
        anyhow::ensure!(
            (100..=120_000).contains(&self.notify_timeout_ms),
            "notify_timeout_ms must be between 100 and 120000"
        );
        anyhow::ensure!(
            (100..=300_000).contains(&self.channel_timeout_ms),
            "channel_timeout_ms must be between 100 and 300000"
        );
        if let Some(token) = &self.admin_token {
            anyhow::ensure!(
                token.trim().len() >= 16,
                "admin_token must be at least 16 characters"
            );
        }
        if let Some(addr) = self.sandbox_listen {
            anyhow::ensure!(
                addr.ip().is_loopback(),
                "sandbox_listen must be a loopback address (127.0.0.1 or ::1), not {addr}: \
                 the sandbox is unauthenticated"
            );
        }
        anyhow::ensure!(
            (1..=1_000_000).contains(&self.max_connections),
            "max_connections must be between 1 and 1000000"
        );
        for (name, ms) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
        ] {
            anyhow::ensure!(
                (100..=3_600_000).contains(&ms),
                "{name} must be between 100 and 3600000"
            );
        }
        for (rate, burst, name) in [
            (
                self.rate_limit_public,
                self.rate_limit_public_burst,
                "rate_limit_public_burst",
            ),
            (
                self.rate_limit_api,
                self.rate_limit_api_burst,
                "rate_limit_api_burst",
            ),
        ] {
            anyhow::ensure!(
                rate == 0 || burst >= 1,
                "{name} must be at least 1 when its rate is set"
            );
        }
        Ok(())
    }

    /// The database URL in effect: the configured one, or SQLite in the
    /// data folder.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("cashdesk.db").display()),
        }
    }

    /// Where a generated operator token is kept.
    pub fn admin_token_file(&self) -> PathBuf {
        self.data_dir.join("admin.token")
    }

    /// The merchant notification retry waits ([`Config::notify_schedule`]).
    pub fn notify_schedule(&self) -> Vec<std::time::Duration> {
        self.notify_schedule
            .as_deref()
            .and_then(|s| parse_schedule(s).ok())
            .or_else(|| parse_schedule(DEFAULT_NOTIFY_SCHEDULE).ok())
            .unwrap_or_default()
    }

    /// The channel poller's schedule ([`Config::query_schedule`]).
    pub fn query_schedule(&self) -> cashdesk_store::QuerySchedule {
        let Some(durations) = self
            .query_schedule
            .as_deref()
            .and_then(|s| parse_schedule(s).ok())
        else {
            return cashdesk_store::QuerySchedule::default();
        };
        let to_chrono = |d: &std::time::Duration| {
            chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::seconds(60))
        };
        let mut all = durations.iter().map(to_chrono);
        let first_after = all.next().unwrap_or(chrono::Duration::seconds(60));
        cashdesk_store::QuerySchedule {
            first_after,
            delays: all.collect(),
        }
    }

    /// Where a generated master key is kept.
    pub fn master_key_file(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    /// Where the demo app's credentials are written on a fresh database.
    pub fn demo_app_file(&self) -> PathBuf {
        self.data_dir.join("demo-app.json")
    }
}
