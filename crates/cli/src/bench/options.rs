//! The command line of `cashdesk bench`: the scenario, the channel and
//! scene, the load (clients, duration, count, rate), the database, and
//! what to keep or write.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

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
    pub(super) fn channel_type(self) -> &'static str {
        match self {
            Self::WxV2Mini | Self::WxV3Mini => "wx-pay",
            Self::AlipayQr => "ali-pay",
            Self::LakalaNative => "lakala",
        }
    }

    pub(super) fn scene(self) -> &'static str {
        match self {
            Self::WxV2Mini | Self::WxV3Mini => "mini",
            Self::AlipayQr => "qr",
            Self::LakalaNative => "native",
        }
    }
}

/// A benchmark other than the payment cycle.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchTarget {
    /// Reconciliation: a generated WeChat Pay trade bill of --lines lines
    /// against as many paid orders, through the real engine; prints lines/s
    /// and the run's peak memory, and fails unless the findings are exactly
    /// the planted differences.
    Recon(super::recon::ReconArgs),
}

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Another benchmark instead of the payment cycle (its own options
    /// follow it).
    #[command(subcommand)]
    pub target: Option<BenchTarget>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_the_notify_schedule() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("10s,20s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
