//! `cashdesk bench`: the whole payment cycle under load, on loopback, in
//! one command, with figures that mean something on a noisy machine.
//!
//! # What runs where
//!
//! - **The server** is a real `cashdesk serve` child process (this very
//!   binary) on a temporary data folder: SQLite by default, or the
//!   `--database-url` given. Its peak and idle resident memory are read
//!   from `/proc/<pid>/status` (`VmHWM`, `VmRSS`), and its CPU time from
//!   `/proc/<pid>/stat`. Its sandbox is off: like a real channel, the
//!   simulator is somewhere else. Its rate limits are set far above the
//!   load (every request comes from one app on loopback), so they are
//!   checked but never refuse.
//! - **The channel sandbox** runs in this process on its own loopback
//!   port, with real keys and real signatures, and reports when it sent
//!   each channel notification and when cashdesk acknowledged it.
//! - **A merchant receiver** runs in this process: it verifies each
//!   merchant notification's signature (with the SDK, as a merchant would)
//!   and acknowledges it.
//! - **N merchant clients** (the SDK over HTTP, each with its own
//!   connections) run the cycle: unified order → payment (`payData`) → the
//!   sandbox pays (`POST /sandbox/api/pay`, as a buyer would) → the sandbox
//!   notifies cashdesk → cashdesk notifies the merchant, who acknowledges.
//!
//! The channel is set up through the admin API exactly as an operator
//! would (a sandbox merchant, a channel config, a channel, an app, a
//! binding approved).
//!
//! # The figures
//!
//! Per stage, p50/p90/p99/max: `order` (the unified-order request),
//! `payment` (the payment request, which calls the channel), `buyer pays`
//! (the sandbox's pay API; not cashdesk's time, shown for completeness),
//! `channel notification` (from the sandbox sending it to cashdesk's
//! acknowledgement: verification, the state change and the outbox row),
//! `merchant delivery` (from that acknowledgement to the merchant
//! receiving the signed notification) and the whole `cycle`. Then errors
//! by kind, the server's memory and CPU, and the same clients hammering
//! `GET /healthz` of the same server for comparison: cycles per second
//! divided by `/healthz` requests per second is a figure that survives a
//! busy or slower machine better than either alone.
//!
//! `--rate` paces the clients together (open loop): each operation has a
//! slot, and its latency counts from the slot, not from when a free
//! client got to it, so a server that falls behind shows it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cashdesk_sandbox::{NotifyObservation, Sandbox, SandboxConfig};
use cashdesk_sdk::{AdminClient, CreateChannelConfigRequest, CreateChannelRequest};
use cashdesk_sdk::{
    ApplyBindingRequest, Client, CreateOrderRequest, Credentials, PaymentRequest,
    RegisterAppRequest, SdkError, SignatureVerifier,
};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::{mpsc, oneshot};

/// What each client does in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// The whole cycle, from the unified order to the merchant's
    /// acknowledged notification.
    Cycle,
    /// The unified order alone.
    Order,
}

/// The channel and scene the cycle pays with (a sandbox merchant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BenchChannel {
    /// WeChat Pay API v2 (XML, HMAC-SHA256), mini-program.
    WxV2Mini,
    /// WeChat Pay API v3 (JSON, SHA256withRSA, AES-GCM notifications),
    /// mini-program.
    WxV3Mini,
    /// Alipay (RSA2), QR code (`alipay.trade.precreate`).
    AlipayQr,
    /// Lakala (LKLAPI-SHA256withRSA), Native QR.
    LakalaNative,
}

impl BenchChannel {
    fn channel_type(self) -> &'static str {
        match self {
            Self::WxV2Mini | Self::WxV3Mini => "wx-pay",
            Self::AlipayQr => "ali-pay",
            Self::LakalaNative => "lakala",
        }
    }

    fn scene(self) -> &'static str {
        match self {
            Self::WxV2Mini | Self::WxV3Mini => "mini",
            Self::AlipayQr => "qr",
            Self::LakalaNative => "native",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Concurrent merchant clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// How long the measured run lasts (e.g. `10s`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many operations instead (or at `--duration`,
    /// whichever comes first).
    #[arg(long)]
    pub count: Option<u64>,
    /// `cycle`: the whole payment cycle; `order`: the unified order alone.
    #[arg(long, value_enum, default_value_t = Scenario::Cycle)]
    pub scenario: Scenario,
    /// The channel and scene the cycle pays with.
    #[arg(long, value_enum, default_value_t = BenchChannel::WxV2Mini)]
    pub channel: BenchChannel,
    /// Start this many operations per second in all (open loop); default:
    /// as fast as the clients go.
    #[arg(long)]
    pub rate: Option<f64>,
    /// The server's database: a scratch PostgreSQL database
    /// (`postgres://…`) or SQLite file; default: SQLite in the temporary
    /// data folder. The bench adds its own app, channel and orders.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Unmeasured run before the measured one.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// How long the `/healthz` comparison runs (`0s`: skip it).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub baseline: Duration,
    /// Write the figures as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep the temporary folder (server data and log) and print where.
    #[arg(long)]
    pub keep: bool,
    /// Run this `cashdesk` binary as the server instead of this one: two
    /// builds (before and after a change) under the same load generator.
    #[arg(long, value_name = "PATH")]
    pub server_exe: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let parsed = cashdesk_server::config::parse_schedule(s).map_err(|e| format!("{e:#}"))?;
    match parsed.as_slice() {
        [d] => Ok(*d),
        _ => Err(format!("`{s}` is not one duration")),
    }
}

/// How long one stage may take before the cycle counts as failed.
const STAGE_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate > 0.0 && rate.is_finite(), "--rate must be positive");
    }
    let tmp = tempfile::Builder::new()
        .prefix("cashdesk-bench-")
        .tempdir()
        .context("creating a temporary folder")?;
    let result = bench(args, tmp.path()).await;
    if args.keep {
        let kept = tmp.keep();
        eprintln!("kept {}", kept.display());
    }
    let report = result?;
    print!("{}", report.render());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).context("serialising the figures")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}

async fn bench(args: &BenchArgs, dir: &Path) -> anyhow::Result<Report> {
    let started = Instant::now();
    let receiver = Receiver::start().await?;
    let (observed_tx, observed_rx) = mpsc::unbounded_channel();
    let sandbox = SandboxHost::start(dir, observed_tx).await?;
    let notifications = Observed::collect(observed_rx);
    let mut server = ServerProcess::start(
        dir,
        args.database_url.as_deref(),
        args.server_exe.as_deref(),
    )
    .await?;
    let setup = Setup::run(&server, &sandbox, &receiver, args.channel).await?;
    let rss_idle_kib = server.rss_kib("VmRSS");
    eprintln!(
        "bench: server {} ({}), sandbox {}, receiver {}; {} clients, {:?} {} for {:?}{} (set up in {:.1} s)",
        server.url,
        server.backend,
        sandbox.url,
        receiver.url,
        args.clients,
        args.scenario,
        serde_json::to_value(args.channel)?.as_str().unwrap_or(""),
        args.duration,
        args.rate.map(|r| format!(" at {r}/s")).unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );

    let ctx = Arc::new(Ctx {
        clients: setup.clients(&server.url, args.clients)?,
        plain: (0..args.clients).map(|_| reqwest::Client::new()).collect(),
        server_url: server.url.clone(),
        channel: args.channel,
        channel_id: setup.channel_id.clone(),
        sandbox_url: sandbox.url.clone(),
        http: reqwest::Client::new(),
        receiver: receiver.state.clone(),
        run: cashdesk_crypto::random::nonce_str(6),
        seq: AtomicU64::new(0),
    });

    if !args.warmup.is_zero() {
        let _ = drive(&ctx, args.scenario.into(), args.warmup, None, args.rate).await;
    }
    let cpu_before = (server.cpu_seconds(), process_cpu_seconds("self"));
    let run = drive(
        &ctx,
        args.scenario.into(),
        args.duration,
        args.count,
        args.rate,
    )
    .await;
    let cpu_after = (server.cpu_seconds(), process_cpu_seconds("self"));
    let baseline = if args.baseline.is_zero() {
        None
    } else {
        Some(drive(&ctx, Load::Healthz, args.baseline, None, None).await)
    };
    let rss_peak_kib = server.rss_kib("VmHWM");
    server.stop().await;
    drop(sandbox);

    // Notifications answered at the very end are reported shortly after.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let notifications = notifications.snapshot();
    Ok(Report::new(
        args,
        &server,
        &run,
        baseline.as_ref(),
        &notifications,
        &receiver.state,
        rss_idle_kib,
        rss_peak_kib,
        cpu_after.0.zip(cpu_before.0).map(|(a, b)| a - b),
        cpu_after.1.zip(cpu_before.1).map(|(a, b)| a - b),
    ))
}

// --- the server child process ---------------------------------------------

struct ServerProcess {
    child: tokio::process::Child,
    pid: u32,
    url: String,
    backend: &'static str,
    admin_token: String,
}

impl ServerProcess {
    async fn start(
        dir: &Path,
        database_url: Option<&str>,
        exe: Option<&Path>,
    ) -> anyhow::Result<ServerProcess> {
        let exe = match exe {
            Some(exe) => exe.to_path_buf(),
            None => std::env::current_exe().context("locating the cashdesk binary")?,
        };
        let admin_token = cashdesk_crypto::random::nonce_str(32);
        let log = std::fs::File::create(dir.join("server.log")).context("creating server.log")?;
        let mut cmd = tokio::process::Command::new(&exe);
        // Only the bench's own settings: no CASHDESK_* from the caller's
        // environment and no ./cashdesk.toml (the child runs in `dir`).
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CASHDESK_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("serve")
            .current_dir(dir)
            .env("CASHDESK_LISTEN", "127.0.0.1:0")
            .env("CASHDESK_DATA_DIR", dir.join("server"))
            .env("CASHDESK_SANDBOX", "false")
            .env("CASHDESK_ADMIN_TOKEN", &admin_token)
            .env("CASHDESK_ALLOW_PRIVATE_NOTIFY_URLS", "true")
            // One app and one address (loopback) send everything: limits
            // far above the load, so the limiter runs but never refuses.
            // (An older `--server-exe` ignores them.)
            .env("CASHDESK_RATE_LIMIT_PUBLIC", "1000000")
            .env("CASHDESK_RATE_LIMIT_PUBLIC_BURST", "1000000")
            .env("CASHDESK_RATE_LIMIT_API", "1000000")
            .env("CASHDESK_RATE_LIMIT_API_BURST", "1000000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(url) = database_url {
            cmd.env("CASHDESK_DATABASE_URL", url);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        // The startup report: `  listening on  http://…`, then
        // `  database      sqlite (…)`.
        let mut url = None;
        let mut backend = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while backend.is_none() {
            let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(_) => bail!(
                    "cashdesk serve stopped before it listened; see {}",
                    dir.join("server.log").display()
                ),
                Err(_) => bail!("cashdesk serve did not start within 60 s"),
            };
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("listening on") {
                url = Some(rest.trim().trim_end_matches('/').to_owned());
            } else if let Some(rest) = line.strip_prefix("database") {
                backend = Some(if rest.trim().starts_with("postgres") {
                    "postgres"
                } else {
                    "sqlite"
                });
            }
        }
        let backend = backend.unwrap_or("sqlite");
        // Keep reading (and dropping) what it prints.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let url = url.context("cashdesk serve printed no listening address")?;
        Ok(ServerProcess {
            child,
            pid,
            url,
            backend,
            admin_token,
        })
    }

    /// A memory figure of `/proc/<pid>/status` in KiB (`VmRSS` now,
    /// `VmHWM` the peak); `None` where there is no procfs.
    fn rss_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status.lines().find_map(|l| {
            l.strip_prefix(field)?
                .trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
    }

    fn cpu_seconds(&self) -> Option<f64> {
        process_cpu_seconds(&self.pid.to_string())
    }

    async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// User + system CPU time of a process so far (`/proc/<pid>/stat`, clock
/// ticks of 1/100 s on Linux); `pid` may be `self`.
fn process_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

// --- the sandbox, hosted on its own port ------------------------------------

struct SandboxHost {
    sandbox: Arc<Sandbox>,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

impl SandboxHost {
    async fn start(
        dir: &Path,
        observer: mpsc::UnboundedSender<NotifyObservation>,
    ) -> anyhow::Result<SandboxHost> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding the sandbox")?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut config = SandboxConfig::new(dir.join("sandbox"), url.clone());
        config.notify_observer = Some(observer);
        // The server under test is another process on loopback.
        config.notify_targets = cashdesk_sandbox::NotifyTargets::loopback_cashdesks(Vec::new());
        let sandbox = Arc::new(Sandbox::start(config).await?);
        let router = sandbox.router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(SandboxHost {
            sandbox,
            url,
            server,
        })
    }
}

impl Drop for SandboxHost {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The sandbox's notification reports, by the order they were for.
#[derive(Clone, Default)]
struct Observed(Arc<Mutex<HashMap<String, NotifyObservation>>>);

impl Observed {
    fn collect(mut rx: mpsc::UnboundedReceiver<NotifyObservation>) -> Observed {
        let observed = Observed::default();
        let sink = observed.clone();
        tokio::spawn(async move {
            while let Some(o) = rx.recv().await {
                if o.acked
                    && o.kind == "pay"
                    && let Ok(mut map) = sink.0.lock()
                {
                    map.entry(o.out_trade_no.clone()).or_insert(o);
                }
            }
        });
        observed
    }

    fn snapshot(&self) -> HashMap<String, NotifyObservation> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

// --- the merchant receiver ---------------------------------------------------

#[derive(Default)]
struct ReceiverState {
    verifier: OnceLock<SignatureVerifier>,
    url: OnceLock<String>,
    /// Orders whose PAY_SUCCESS a client waits for.
    waiting: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    /// Notifications received (any type) and those received twice.
    received: AtomicU64,
    duplicates: AtomicU64,
    bad_signatures: AtomicU64,
    seen: Mutex<std::collections::HashSet<String>>,
}

struct Receiver {
    state: Arc<ReceiverState>,
    url: String,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding the merchant receiver")?;
        let url = format!("http://{}/notify", listener.local_addr()?);
        let state = Arc::new(ReceiverState::default());
        let _ = state.url.set(url.clone());
        let router = axum::Router::new()
            .route("/notify", post(receive))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Receiver { state, url })
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let at = Instant::now();
    let (Some(verifier), Some(url)) = (state.verifier.get(), state.url.get()) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready");
    };
    let n = match cashdesk_sdk::verify_notification(verifier, url, &headers, &body) {
        Ok(n) => n,
        Err(_) => {
            state.bad_signatures.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::UNAUTHORIZED, "bad signature");
        }
    };
    state.received.fetch_add(1, Ordering::Relaxed);
    let fresh = state
        .seen
        .lock()
        .map(|mut s| s.insert(n.notify_id.clone()))
        .unwrap_or(true);
    if !fresh {
        state.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    if n.notify_type == "PAY_SUCCESS" {
        let waiter = state
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&n.order_id));
        if let Some(tx) = waiter {
            let _ = tx.send(at);
        }
    }
    (StatusCode::OK, cashdesk_sdk::NOTIFICATION_ACK_BODY)
}

// --- set-up through the admin API ------------------------------------------

struct Setup {
    app_id: String,
    app_key: String,
    channel_id: String,
}

impl Setup {
    async fn run(
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
    fn clients(&self, url: &str, n: usize) -> anyhow::Result<Vec<Client>> {
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

// --- the load -----------------------------------------------------------------

struct Ctx {
    clients: Vec<Client>,
    /// Plain HTTP clients (the `/healthz` comparison), one per client.
    plain: Vec<reqwest::Client>,
    server_url: String,
    channel: BenchChannel,
    channel_id: String,
    sandbox_url: String,
    http: reqwest::Client,
    receiver: Arc<ReceiverState>,
    /// Makes this run's outTradeNos unique in a reused database.
    run: String,
    seq: AtomicU64,
}

/// One measured operation.
#[derive(Default, Clone)]
struct Sample {
    order: Option<Duration>,
    payment: Option<Duration>,
    buyer: Option<Duration>,
    /// The order id and when the merchant got its notification.
    order_id: Option<String>,
    delivered_at: Option<Instant>,
    total: Option<Duration>,
}

/// What one `drive` measured.
struct Run {
    elapsed: Duration,
    samples: Vec<Sample>,
    errors: BTreeMap<String, u64>,
}

/// Paces operations at a total rate: each gets the next slot.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    /// Waits for this operation's slot and returns it.
    async fn slot(&self) -> Instant {
        let slot = match self.next.lock() {
            Ok(mut next) => {
                let slot = (*next).max(Instant::now());
                *next = slot + self.interval;
                slot
            }
            Err(_) => Instant::now(),
        };
        tokio::time::sleep_until(slot.into()).await;
        slot
    }
}

/// What one client loop does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Cycle,
    Order,
    Healthz,
}

impl From<Scenario> for Load {
    fn from(s: Scenario) -> Load {
        match s {
            Scenario::Cycle => Load::Cycle,
            Scenario::Order => Load::Order,
        }
    }
}

/// Runs `load` on every client until `duration` has passed (or `count`
/// operations have started), paced by `rate` when given.
async fn drive(
    ctx: &Arc<Ctx>,
    load: Load,
    duration: Duration,
    count: Option<u64>,
    rate: Option<f64>,
) -> Run {
    let started = Instant::now();
    let deadline = started + duration;
    let pacer = rate.map(|r| {
        Arc::new(Pacer {
            interval: Duration::from_secs_f64(1.0 / r),
            next: Mutex::new(started),
        })
    });
    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ctx.clients.len() {
        let ctx = ctx.clone();
        let pacer = pacer.clone();
        let issued = issued.clone();
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                if count.is_some_and(|c| issued.fetch_add(1, Ordering::Relaxed) >= c) {
                    break;
                }
                let start = match &pacer {
                    Some(p) => {
                        let slot = p.slot().await;
                        if slot >= deadline {
                            break;
                        }
                        slot
                    }
                    None => Instant::now(),
                };
                let done = match load {
                    Load::Cycle => cycle(&ctx, i, start).await,
                    Load::Order => order(&ctx, i, start).await,
                    Load::Healthz => healthz(&ctx, i, start).await,
                };
                match done {
                    Ok(s) => samples.push(s),
                    Err(kind) => *errors.entry(kind).or_default() += 1,
                }
            }
            (samples, errors)
        });
    }
    let mut run = Run {
        elapsed: Duration::ZERO,
        samples: Vec::new(),
        errors: BTreeMap::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((samples, errors)) => {
                run.samples.extend(samples);
                for (k, n) in errors {
                    *run.errors.entry(k).or_default() += n;
                }
            }
            Err(e) => *run.errors.entry(format!("client task: {e}")).or_default() += 1,
        }
    }
    run.elapsed = started.elapsed();
    run
}

/// A short, stable name for a failure (the errors-by-kind table).
fn kind(stage: &str, e: &SdkError) -> String {
    match e {
        SdkError::Api { status, code, .. } => format!("{stage}: HTTP {status}, code {code}"),
        SdkError::Http(e) if e.is_timeout() => format!("{stage}: timeout"),
        SdkError::Http(e) if e.is_connect() => format!("{stage}: connection refused"),
        SdkError::Http(_) => format!("{stage}: HTTP transport error"),
        SdkError::BadResponseSignature(_) => format!("{stage}: response signature rejected"),
        SdkError::InvalidBody(_) => format!("{stage}: unexpected body"),
        other => format!("{stage}: {other}"),
    }
}

impl Ctx {
    fn next_out_trade_no(&self) -> (u64, String) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        (n, format!("B{}{n}", self.run))
    }

    fn forget(&self, order_id: &str) {
        if let Ok(mut w) = self.receiver.waiting.lock() {
            w.remove(order_id);
        }
    }
}

async fn order(ctx: &Ctx, client: usize, start: Instant) -> Result<Sample, String> {
    let (n, no) = ctx.next_out_trade_no();
    ctx.clients[client]
        .create_order(&CreateOrderRequest::new(
            &no,
            1 + (n % 1000) as i64,
            "bench",
        ))
        .await
        .map_err(|e| kind("order", &e))?;
    Ok(Sample {
        order: Some(start.elapsed()),
        total: Some(start.elapsed()),
        ..Sample::default()
    })
}

async fn healthz(ctx: &Ctx, client: usize, start: Instant) -> Result<Sample, String> {
    let resp = ctx.plain[client]
        .get(format!("{}/healthz", ctx.server_url))
        .send()
        .await
        .map_err(|e| {
            format!(
                "healthz: {}",
                if e.is_timeout() {
                    "timeout"
                } else {
                    "HTTP transport error"
                }
            )
        })?;
    let status = resp.status();
    let _ = resp.bytes().await;
    if !status.is_success() {
        return Err(format!("healthz: HTTP {}", status.as_u16()));
    }
    Ok(Sample {
        total: Some(start.elapsed()),
        ..Sample::default()
    })
}

async fn cycle(ctx: &Ctx, client: usize, start: Instant) -> Result<Sample, String> {
    let sdk = &ctx.clients[client];
    let (n, no) = ctx.next_out_trade_no();
    let created = sdk
        .create_order(&CreateOrderRequest::new(
            &no,
            1 + (n % 1000) as i64,
            "bench",
        ))
        .await
        .map_err(|e| kind("order", &e))?;
    let ordered = Instant::now();
    let mut req = PaymentRequest::new(&no, &ctx.channel_id);
    if matches!(ctx.channel, BenchChannel::WxV2Mini | BenchChannel::WxV3Mini) {
        req = req.with_openid("oBenchBuyer0000000000000000");
    }
    sdk.pay(&req).await.map_err(|e| kind("payment", &e))?;
    let paying = Instant::now();
    let (tx, rx) = oneshot::channel();
    if let Ok(mut w) = ctx.receiver.waiting.lock() {
        w.insert(created.order_id.clone(), tx);
    }
    let answer = ctx
        .http
        .post(format!("{}/sandbox/api/pay", ctx.sandbox_url))
        .json(&json!({
            "channelType": ctx.channel.channel_type(),
            "outTradeNo": created.order_id,
            "result": "SUCCESS",
        }))
        .send()
        .await;
    match answer {
        Ok(r) if r.status().is_success() => {
            let _ = r.bytes().await;
        }
        Ok(r) => {
            ctx.forget(&created.order_id);
            return Err(format!(
                "buyer pays (sandbox): HTTP {}",
                r.status().as_u16()
            ));
        }
        Err(_) => {
            ctx.forget(&created.order_id);
            return Err("buyer pays (sandbox): HTTP transport error".into());
        }
    }
    let paid = Instant::now();
    let delivered_at = match tokio::time::timeout(STAGE_TIMEOUT, rx).await {
        Ok(Ok(at)) => at,
        _ => {
            ctx.forget(&created.order_id);
            return Err("merchant notification: not received within 30 s".into());
        }
    };
    Ok(Sample {
        order: Some(ordered - start),
        payment: Some(paying - ordered),
        buyer: Some(paid - paying),
        order_id: Some(created.order_id),
        delivered_at: Some(delivered_at),
        total: Some(delivered_at.saturating_duration_since(start)),
    })
}

// --- the report ---------------------------------------------------------------

/// Latency figures of one stage, in milliseconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    count: usize,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
}

impl Stats {
    fn of(mut v: Vec<Duration>) -> Option<Stats> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        // Nearest rank: the smallest value with at least p of the samples
        // at or below it.
        let pct = |p: f64| {
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            ms(v[rank - 1])
        };
        let sum: Duration = v.iter().sum();
        Some(Stats {
            count: v.len(),
            p50_ms: pct(0.50),
            p90_ms: pct(0.90),
            p99_ms: pct(0.99),
            max_ms: ms(v[v.len() - 1]),
            mean_ms: ms(sum) / v.len() as f64,
        })
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerFigures {
    backend: &'static str,
    rss_idle_mib: Option<f64>,
    rss_peak_mib: Option<f64>,
    /// CPU seconds the server used during the measured run.
    cpu_seconds: Option<f64>,
    /// … per completed operation, in milliseconds.
    cpu_ms_per_op: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Baseline {
    requests: usize,
    per_second: f64,
    latency: Option<Stats>,
    errors: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    scenario: Scenario,
    channel: Option<BenchChannel>,
    clients: usize,
    rate: Option<f64>,
    seconds: f64,
    completed: usize,
    per_second: f64,
    errors: BTreeMap<String, u64>,
    /// Latency of each stage, in the order of the cycle.
    stages: Vec<Stage>,
    server: ServerFigures,
    healthz: Option<Baseline>,
    /// `perSecond` ÷ `healthz.perSecond`.
    ratio_to_healthz: Option<f64>,
    merchant_notifications: NotificationCounts,
    machine: Machine,
}

#[derive(Debug, Serialize)]
struct Stage {
    stage: &'static str,
    #[serde(flatten)]
    stats: Stats,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationCounts {
    received: u64,
    duplicates: u64,
    bad_signatures: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Machine {
    cpus: usize,
    load_average: Option<String>,
    /// CPU seconds this bench process (clients, sandbox, receiver) used
    /// during the measured run: the load generator shares the machine.
    harness_cpu_seconds: Option<f64>,
}

fn mib(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| k as f64 / 1024.0)
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn new(
        args: &BenchArgs,
        server: &ServerProcess,
        run: &Run,
        baseline: Option<&Run>,
        observed: &HashMap<String, NotifyObservation>,
        receiver: &ReceiverState,
        rss_idle_kib: Option<u64>,
        rss_peak_kib: Option<u64>,
        cpu_seconds: Option<f64>,
        harness_cpu_seconds: Option<f64>,
    ) -> Report {
        let seconds = run.elapsed.as_secs_f64();
        let completed = run.samples.len();
        let pick = |f: fn(&Sample) -> Option<Duration>| -> Vec<Duration> {
            run.samples.iter().filter_map(f).collect()
        };
        let mut notify = Vec::new();
        let mut delivery = Vec::new();
        for s in &run.samples {
            if let (Some(id), Some(at)) = (&s.order_id, s.delivered_at)
                && let Some(o) = observed.get(id)
            {
                notify.push(o.answered_at.saturating_duration_since(o.sent_at));
                delivery.push(at.saturating_duration_since(o.answered_at));
            }
        }
        let mut stages = Vec::new();
        let mut put = |name: &'static str, v: Vec<Duration>| {
            if let Some(s) = Stats::of(v) {
                stages.push(Stage {
                    stage: name,
                    stats: s,
                });
            }
        };
        put("order", pick(|s| s.order));
        put("payment", pick(|s| s.payment));
        put("buyer pays (sandbox)", pick(|s| s.buyer));
        put("channel notification", notify);
        put("merchant delivery", delivery);
        if args.scenario == Scenario::Cycle {
            put("cycle", pick(|s| s.total));
        }
        let per_second = completed as f64 / seconds.max(1e-9);
        let healthz = baseline.map(|b| {
            let times: Vec<Duration> = b.samples.iter().filter_map(|s| s.total).collect();
            Baseline {
                requests: times.len(),
                per_second: times.len() as f64 / b.elapsed.as_secs_f64().max(1e-9),
                latency: Stats::of(times),
                errors: b.errors.clone(),
            }
        });
        let ratio_to_healthz = healthz
            .as_ref()
            .filter(|h| h.per_second > 0.0)
            .map(|h| per_second / h.per_second);
        Report {
            scenario: args.scenario,
            channel: (args.scenario == Scenario::Cycle).then_some(args.channel),
            clients: args.clients,
            rate: args.rate,
            seconds,
            completed,
            per_second,
            errors: run.errors.clone(),
            stages,
            server: ServerFigures {
                backend: server.backend,
                rss_idle_mib: mib(rss_idle_kib),
                rss_peak_mib: mib(rss_peak_kib),
                cpu_seconds,
                cpu_ms_per_op: cpu_seconds
                    .filter(|_| completed > 0)
                    .map(|c| c * 1000.0 / completed as f64),
            },
            healthz,
            ratio_to_healthz,
            merchant_notifications: NotificationCounts {
                received: receiver.received.load(Ordering::Relaxed),
                duplicates: receiver.duplicates.load(Ordering::Relaxed),
                bad_signatures: receiver.bad_signatures.load(Ordering::Relaxed),
            },
            machine: Machine {
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                load_average: std::fs::read_to_string("/proc/loadavg")
                    .ok()
                    .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
                harness_cpu_seconds,
            },
        }
    }

    fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let what = match self.scenario {
            Scenario::Cycle => "complete payment cycles",
            Scenario::Order => "unified orders",
        };
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:.0} {what}/s ({} in {:.1} s, {} clients{}, {}{})",
            self.per_second,
            self.completed,
            self.seconds,
            self.clients,
            self.rate
                .map(|r| format!(", paced at {r}/s"))
                .unwrap_or_default(),
            self.server.backend,
            self.channel
                .and_then(|c| serde_json::to_value(c).ok())
                .and_then(|v| v.as_str().map(|s| format!(", {s}")))
                .unwrap_or_default(),
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "stage (ms)", "count", "p50", "p90", "p99", "max"
        );
        for Stage {
            stage: name,
            stats: s,
        } in &self.stages
        {
            let _ = writeln!(
                out,
                "{name:<24} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
            );
        }
        let _ = writeln!(out);
        if self.errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        } else {
            let _ = writeln!(out, "errors:");
            for (k, n) in &self.errors {
                let _ = writeln!(out, "  {n:>8}  {k}");
            }
        }
        let n = &self.merchant_notifications;
        let _ = writeln!(
            out,
            "merchant notifications received: {} ({} repeated, {} badly signed)",
            n.received, n.duplicates, n.bad_signatures
        );
        let fmt_mib = |v: Option<f64>| v.map_or("n/a".to_owned(), |m| format!("{m:.1} MiB"));
        let _ = writeln!(
            out,
            "server: RSS idle {}, peak {}; CPU {} ({} per operation)",
            fmt_mib(self.server.rss_idle_mib),
            fmt_mib(self.server.rss_peak_mib),
            self.server
                .cpu_seconds
                .map_or("n/a".to_owned(), |c| format!("{c:.1} s")),
            self.server
                .cpu_ms_per_op
                .map_or("n/a".to_owned(), |c| format!("{c:.2} ms")),
        );
        if let Some(h) = &self.healthz {
            let _ = writeln!(
                out,
                "GET /healthz, same clients: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms{}",
                h.per_second,
                h.latency.as_ref().map_or(0.0, |l| l.p50_ms),
                h.latency.as_ref().map_or(0.0, |l| l.p99_ms),
                if h.errors.is_empty() {
                    String::new()
                } else {
                    format!(", {} errors", h.errors.values().sum::<u64>())
                }
            );
        }
        if let Some(r) = self.ratio_to_healthz {
            let _ = writeln!(out, "ratio to /healthz: {r:.3}");
        }
        let _ = writeln!(
            out,
            "machine: {} CPUs, load average {}; this bench process (clients, sandbox, receiver) used {} CPU",
            self.machine.cpus,
            self.machine.load_average.as_deref().unwrap_or("n/a"),
            self.machine
                .harness_cpu_seconds
                .map_or("n/a".to_owned(), |c| format!("{c:.1} s")),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = Stats::of(ms(&(1..=100).rev().collect::<Vec<_>>())).expect("stats");
        assert_eq!(s.count, 100);
        assert_eq!(
            (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert!((s.mean_ms - 50.5).abs() < 1e-9);

        let one = Stats::of(ms(&[7])).expect("stats");
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (7.0, 7.0, 7.0));
        let two = Stats::of(ms(&[1, 9])).expect("stats");
        assert_eq!((two.p50_ms, two.p90_ms), (1.0, 9.0));
        assert!(Stats::of(Vec::new()).is_none());
    }

    #[test]
    fn durations_parse_like_the_notify_schedule() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("10s,20s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[tokio::test]
    async fn the_pacer_hands_out_slots_an_interval_apart() {
        let start = Instant::now();
        let pacer = Pacer {
            interval: Duration::from_millis(5),
            next: Mutex::new(start),
        };
        let mut slots = Vec::new();
        for _ in 0..4 {
            slots.push(pacer.slot().await);
        }
        // The first slot is the start, or now if that has passed; the next
        // ones are one interval apart, or later when the caller came late
        // (a slot never lies in the past, so a late client does not bunch
        // operations up).
        assert!(slots[0] >= start);
        for pair in slots.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(5), "{slots:?}");
        }
        assert!(Instant::now() >= slots[3]);
    }
}
