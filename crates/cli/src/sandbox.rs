//! `cashdesk sandbox`: the WeChat Pay simulator alone, without the rest of
//! cashdesk (the same one `cashdesk serve` mounts under `/sandbox` when
//! `sandbox` is on). Useful to point another cashdesk, or any WeChat Pay
//! client, at a simulator on its own port.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use cashdesk_sandbox::{Sandbox, SandboxConfig};
use cashdesk_server::config::{LogFormat, parse_schedule};
use cashdesk_server::shutdown_signal;
use clap::Args;

use crate::telemetry;

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address of the plain-HTTP listener (API, payer page, test API).
    #[arg(
        long,
        env = "CASHDESK_SANDBOX_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: SocketAddr,
    /// Folder for the sandbox's CA, platform key and merchants
    /// (`<data-dir>/sandbox/`).
    #[arg(long, env = "CASHDESK_DATA_DIR", default_value = "./cashdesk-data")]
    pub data_dir: PathBuf,
    /// Base URL the sandbox is reached at (payer pages, code URLs,
    /// credentials' baseUrl). Default: http://<listen address>.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Address of the HTTPS (mutual-TLS) listener. Default: 127.0.0.1:0.
    #[arg(long, env = "CASHDESK_SANDBOX_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,
    /// Notification retry waits, comma-separated (e.g. `15s,30s,3m`).
    /// Default: WeChat's schedule (15s/15s/30s/3m/10m/… 24h4m in all).
    #[arg(long, env = "CASHDESK_SANDBOX_NOTIFY_SCHEDULE")]
    pub notify_schedule: Option<String>,
}

pub async fn run(args: &SandboxArgs) -> anyhow::Result<()> {
    telemetry::init(LogFormat::Pretty)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let mut config = SandboxConfig::new(&args.data_dir, public_url.clone());
    config.tls_listen = args.tls_listen;
    if let Some(s) = &args.notify_schedule {
        config.notify_schedule = parse_schedule(s).context("--notify-schedule")?;
    }
    let sandbox = Sandbox::start(config).await?;
    println!("cashdesk SANDBOX (WeChat Pay simulator; not a payment service) is running");
    println!("  WeChat Pay base URL  {}", sandbox.base_url());
    println!("  HTTPS (mutual TLS)   {}", sandbox.refund_tls_url());
    println!(
        "  data folder          {}",
        args.data_dir.join("sandbox").display()
    );
    println!("Open a merchant (credentials in the shape a wx-pay channel config takes):");
    println!(
        "  curl -s -X POST {public_url}/sandbox/api/merchants -H 'content-type: application/json' -d '{{\"channelType\":\"wx-pay\",\"signType\":\"HMAC-SHA256\"}}'"
    );
    let served = axum::serve(listener, sandbox.router())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("sandbox server failed");
    sandbox.shutdown().await;
    served
}
