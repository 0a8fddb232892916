//! `cashdesk sandbox`: the channel simulators (WeChat Pay v2/v3, Alipay,
//! Lakala) alone, without the rest of cashdesk (the same ones `cashdesk
//! serve` mounts under `/sandbox` when `sandbox` is on). Useful to point
//! another cashdesk, or any WeChat Pay, Alipay or Lakala client, at a
//! simulator on its own port.
//!
//! Standing alone it notifies, by default, any cashdesk on this machine
//! (loopback URLs under `/api/cashier-desk/notify/`) and the prefixes given
//! with `--notify-allow`; see `cashdesk_sandbox::targets`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use cashdesk_sandbox::api::MerchantQuota;
use cashdesk_sandbox::{NotifyTargets, Sandbox, SandboxConfig};
use cashdesk_server::config::{LogFormat, parse_schedule};
use cashdesk_server::shutdown_signal;
use clap::Args;

use crate::telemetry;

/// The end of `cashdesk sandbox --help`: what is served where.
pub const LONG_HELP: &str = "\
Everything is under the plain-HTTP base http://<listen> (or --public-url):

  WeChat Pay v2 (XML)   <base>/sandbox/wechat/pay/unifiedorder, …/orderquery,
                        …/closeorder, …/refundquery; the v2 refund
                        /sandbox/wechat/secapi/pay/refund only on the HTTPS
                        (mutual-TLS) listener, which serves every path too
  WeChat Pay v3 (JSON)  <base>/sandbox/wechat/v3/pay/transactions/…,
                        …/v3/refund/domestic/refunds, …/v3/certificates
                        (signatures over the full path or over /v3/… both verify)
  WeChat web OAuth      <base>/sandbox/wechat/connect/oauth2/authorize,
                        <base>/sandbox/wechat/sns/oauth2/access_token
  mini-program API      <base>/sandbox/wechat/cgi-bin/token, …/cgi-bin/stable_token,
                        …/cgi-bin/message/subscribe/send; received messages at
                        <base>/sandbox/wechat/subscribe/messages
  Alipay OpenAPI        <base>/sandbox/alipay/gateway.do
  Lakala open platform  <base>/sandbox/lakala/api/v3/labs/…
  payer pages           <base>/sandbox/wechat/pay/{prepayId},
                        <base>/sandbox/alipay/pay/{tradeNo},
                        <base>/sandbox/lakala/pay/{tradeNo}
  test API              <base>/sandbox/api/merchants (open a merchant: the
                        channel config to paste), /sandbox/api/pay,
                        /sandbox/api/faults, /sandbox/api/requests

Keys, merchants, orders and the HTTPS port are kept in <data-dir>/sandbox/.
Notifications go only to loopback URLs under /api/cashier-desk/notify/ (any
cashdesk on this machine) and to the --notify-allow prefixes.
See docs/channels.md, \"The sandbox\".";

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address of the plain-HTTP listener (API, payer page, test API).
    #[arg(
        long,
        env = "CASHDESK_SANDBOX_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: SocketAddr,
    /// Folder for the sandbox's CA, platform key, merchants, orders and
    /// HTTPS port (`<data-dir>/sandbox/`).
    #[arg(long, env = "CASHDESK_DATA_DIR", default_value = "./cashdesk-data")]
    pub data_dir: PathBuf,
    /// Base URL the sandbox is reached at (payer pages, code URLs,
    /// credentials' baseUrl, the web OAuth domain). Default: http://<listen address>.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Address of the HTTPS (mutual-TLS) listener. Default: 127.0.0.1 on
    /// the port of the last start (kept in the data folder), else a free one.
    #[arg(long, env = "CASHDESK_SANDBOX_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,
    /// Notification retry waits of every channel, comma-separated (e.g.
    /// `15s,30s,3m`). Default: each channel's own (WeChat's and Lakala's
    /// 15s/15s/30s/3m/10m/… 24h4m in all; Alipay's 4m/10m/10m/1h/2h/6h/15h).
    #[arg(long, env = "CASHDESK_SANDBOX_NOTIFY_SCHEDULE")]
    pub notify_schedule: Option<String>,
    /// Also send notifications to URLs under this prefix (repeatable, or
    /// comma-separated), e.g. `https://shop.example.com/pay/notify/`.
    /// Without it: only loopback URLs under /api/cashier-desk/notify/.
    #[arg(
        long = "notify-allow",
        value_name = "PREFIX",
        env = "CASHDESK_SANDBOX_NOTIFY_ALLOW",
        value_delimiter = ','
    )]
    pub notify_allow: Vec<String>,
    /// Register this web OAuth domain (`host` or `host:port`) for every
    /// sandbox official account, besides the public URL's (repeatable, or
    /// comma-separated): OAuth redirects only go to registered domains.
    #[arg(
        long = "oauth-domain",
        value_name = "HOST[:PORT]",
        env = "CASHDESK_SANDBOX_OAUTH_DOMAINS",
        value_delimiter = ','
    )]
    pub oauth_domains: Vec<String>,
    /// Merchants the test API opens per minute in all (0: no limit).
    #[arg(long, env = "CASHDESK_SANDBOX_MERCHANTS_PER_MINUTE", default_value_t = MerchantQuota::default().per_minute)]
    pub merchants_per_minute: u32,
    /// Merchants the test API opens per minute for one client address
    /// (0: no limit).
    #[arg(long, env = "CASHDESK_SANDBOX_MERCHANTS_PER_MINUTE_PER_IP", default_value_t = MerchantQuota::default().per_ip_per_minute)]
    pub merchants_per_minute_per_ip: u32,
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
    config.notify_targets = NotifyTargets::loopback_cashdesks(
        args.notify_allow
            .iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
    );
    config.oauth_domains = args.oauth_domains.clone();
    config.merchant_quota = MerchantQuota {
        per_ip_per_minute: args.merchants_per_minute_per_ip,
        per_minute: args.merchants_per_minute,
    };
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
    // The peer address keys the merchant-opening quota per client.
    let served = axum::serve(
        listener,
        sandbox
            .router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("sandbox server failed");
    sandbox.shutdown().await;
    served
}
