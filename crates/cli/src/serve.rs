//! `cashdesk serve` and `cashdesk migrate`: load the configuration, start
//! logging, and hand over to `cashdesk-server` / `cashdesk-store`.
//!
//! The startup report goes to stdout (logs go to stderr) and is the only
//! place a generated admin token or demo app key is ever shown; both are
//! also kept in 0600 files in the data folder.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use cashdesk_core::{ChannelType, SceneCode};
use cashdesk_server::config::{redact_url, unknown_env_vars};
use cashdesk_server::{Application, Config, Mode, StartupReport, shutdown_signal};
use cashdesk_store::ConnectOptions;

use crate::telemetry;

pub async fn serve(config_file: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_file)?;
    telemetry::init(config.log_format)?;
    for name in unknown_env_vars(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok())) {
        tracing::warn!(
            variable = %name,
            "{name} is not a cashdesk setting and is ignored (misspelt? see deploy/cashdesk.toml)"
        );
    }
    let app = Application::build(config)
        .await
        .context("cashdesk could not start")?;
    let report = render_report(app.startup_report());
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    app.run_until_stopped(shutdown_signal()).await
}

/// The human-readable startup report. (The server's `Display` for
/// [`StartupReport`] is terser; the binary adds the sandbox state and a
/// first command to try.)
fn render_report(report: &StartupReport) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("cashdesk {} is running", env!("CARGO_PKG_VERSION")));
    line(format!(
        "  mode          {}: {}",
        report.mode.as_str(),
        report.mode_reason
    ));
    line(format!("  listening on  {}", report.listen_url));
    line(format!("  public URL    {}", report.public_url));
    line(format!("  data folder   {}", report.data_dir.display()));
    line(format!(
        "  database      {} ({})",
        report.db_backend, report.database_url
    ));
    line(format!(
        "  sandbox       {}",
        match (&report.sandbox, report.mode) {
            (None, _) => "off".to_owned(),
            (Some(sb), _) if sb.own_listener => format!(
                "ON at {} only (its own loopback listener): simulated channels, not real money",
                sb.base_url
            ),
            (Some(_), Mode::Development) => "ON: simulated channels, not real money (signature errors show the expected string to sign)".to_owned(),
            (Some(_), Mode::Production) => "ON: simulated channels, not real money".to_owned(),
        }
    ));
    if let Some(sb) = &report.sandbox {
        line(format!(
            "  WeChat Pay sandbox  {} (HTTPS {})",
            sb.wechat_base_url, sb.tls_base_url
        ));
        line(format!("  Alipay sandbox      {}", sb.alipay_gateway_url));
        line(format!("  Lakala sandbox      {}", sb.lakala_base_url));
    }
    line(format!("  API docs      {}/api/docs", report.public_url));
    line(format!(
        "  console       {}/console  (first account: cashdesk account create --username root --role admin)",
        report.public_url
    ));
    match (&report.admin_token, &report.admin_token_file) {
        (Some(token), file) => {
            line(String::new());
            let kept = file
                .as_ref()
                .map(|f| format!("kept in {}", f.display()))
                .unwrap_or_else(|| "not saved".to_owned());
            line(format!(
                "Operator token (generated now, shown once; {kept}):"
            ));
            line(format!("  {}", token.expose()));
        }
        (None, Some(file)) => line(format!("  operator token in {}", file.display())),
        (None, None) => line("  operator token from CASHDESK_ADMIN_TOKEN / config".to_owned()),
    }
    if let Some(demo) = &report.demo_app {
        line(String::new());
        line(format!(
            "Demo app (created now, key shown once; kept in {}):",
            demo.file.display()
        ));
        line(format!("  appId   {}", demo.app_id));
        line(format!("  appKey  {}", demo.app_key.expose()));
        if !report.demo_channels.is_empty() {
            line("  bound to sandbox channels:".to_owned());
            for c in &report.demo_channels {
                line(format!(
                    "    {}  {:<7} {:<6} {}",
                    c.channel_id,
                    c.channel_type.as_str(),
                    c.scene_code.as_str(),
                    c.channel_name
                ));
            }
        }
        let sign = format!(
            "cashdesk sign --app-file {} --base-url {}",
            demo.file.display(),
            report.public_url
        );
        line("Try it:".to_owned());
        line(format!("  {sign} --method POST \\"));
        line("    --path /api/cashier-desk/unified/orders \\".to_owned());
        line(
            "    --body '{\"outTradeNo\":\"T1001\",\"amount\":1,\"orderTitle\":\"Test\"}' --curl | sh"
                .to_owned(),
        );
        let mini_v2 = report.demo_channels.iter().find(|c| {
            c.channel_type == ChannelType::WxPay
                && c.api_version == "v2"
                && c.scene_code == SceneCode::Mini
        });
        if let Some(mini) = mini_v2 {
            line("Then pay it on the sandbox (mini-program, WeChat Pay v2; see README \"Try a payment on the sandbox\"):".to_owned());
            line(format!(
                "  {sign} --method POST --path /api/cashier-desk/payment \\"
            ));
            line(format!(
                "    --body '{{\"outTradeNo\":\"T1001\",\"channelId\":\"{}\",\"openid\":\"oSandboxBuyer\"}}' --curl | sh",
                mini.channel_id
            ));
            line(format!(
                "  curl -s -X POST {}/sandbox/api/pay -H 'content-type: application/json' \\",
                report
                    .sandbox
                    .as_ref()
                    .map_or(report.public_url.as_str(), |s| s.base_url.as_str())
            ));
            line("    -d '{\"channelType\":\"wx-pay\",\"outTradeNo\":\"<orderId from the first answer>\",\"result\":\"SUCCESS\"}'".to_owned());
            line(format!(
                "  {sign} --path /api/cashier-desk/out-trade-no/query-pay-result/T1001 --curl | sh"
            ));
        }
    }
    out
}

pub async fn migrate(config_file: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_file)?;
    telemetry::init(config.log_format)?;
    if config.database_url.is_none() {
        // The default SQLite file lives in the data folder.
        cashdesk_server::data_dir::create_private_dir(&config.data_dir)?;
    }
    let url = config.effective_database_url();
    let shown = redact_url(&url);
    let store = cashdesk_store::connect(&url, &ConnectOptions::default())
        .await
        .with_context(|| format!("cannot open the database {shown}"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("migrating {shown} failed"))?;
    println!(
        "migrations applied: {} database {shown} is up to date",
        store.backend()
    );
    Ok(())
}
