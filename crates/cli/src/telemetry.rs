//! Logging for `serve` and `migrate`: a tracing subscriber writing to
//! stderr (stdout carries the startup report and command output), human
//! readable (`pretty`) or one JSON object per line (`json`, for log
//! shippers). The filter comes from `CASHDESK_LOG`, else `RUST_LOG`, else
//! `info`.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use cashdesk_server::config::LogFormat;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let directives = ["CASHDESK_LOG", "RUST_LOG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    let filter = match directives {
        Some(d) => EnvFilter::try_new(&d).with_context(|| format!("invalid log filter `{d}`"))?,
        None => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
