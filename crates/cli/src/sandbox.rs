//! `cashdesk sandbox`: the channel simulators (WeChat Pay v2/v3, Alipay,
//! Lakala) alone, without the rest of cashdesk (the same ones `cashdesk
//! serve` mounts under `/sandbox` when `sandbox` is on). Useful to point
//! another cashdesk, or any WeChat Pay, Alipay or Lakala client, at a
//! simulator on its own port.

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
    /// Notification retry waits of every channel, comma-separated (e.g.
    /// `15s,30s,3m`). Default: each channel's own (WeChat's and Lakala's
    /// 15s/15s/30s/3m/10m/… 24h4m in all; Alipay's 4m/10m/10m/1h/2h/6h/15h).
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
        config = config.with_notify_schedule(parse_schedule(s).context("--notify-schedule")?);
    }
    let sandbox = Sandbox::start(config).await?;
    println!(
        "cashdesk SANDBOX (WeChat Pay, Alipay and Lakala simulators; not a payment service) is running"
    );
    println!("  WeChat Pay base URL  {}", sandbox.base_url());
    println!("  HTTPS (mutual TLS)   {}", sandbox.refund_tls_url());
    println!("  Alipay gateway       {}", sandbox.alipay_gateway_url());
    println!("  Lakala base URL      {}", sandbox.lakala_base_url());
    println!(
        "  data folder          {}",
        args.data_dir.join("sandbox").display()
    );
    println!("Open a merchant (credentials in the shape the channel config takes):");
    for body in [
        r#"{"channelType":"wx-pay","signType":"HMAC-SHA256"}"#,
        r#"{"channelType":"ali-pay"}"#,
        r#"{"channelType":"lakala"}"#,
    ] {
        println!(
            "  curl -s -X POST {public_url}/sandbox/api/merchants -H 'content-type: application/json' -d '{body}'"
        );
    }
    let served = axum::serve(listener, sandbox.router())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("sandbox server failed");
    sandbox.shutdown().await;
    served
}
