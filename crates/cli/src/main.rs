//! The `cashdesk` binary: parse the command line and hand over to the
//! command modules. Everything the server does lives in `cashdesk-server`;
//! everything an operator or merchant script does goes through
//! `cashdesk-sdk`, so this crate stays a thin shell.

mod account;
mod admin;
mod bench;
mod cli;
mod recon;
mod sandbox;
mod serve;
mod sign;
mod telemetry;

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc instead of glibc's malloc: under load the server spends about a
/// fifth of its CPU in allocation, most of it glibc's arena locking and
/// trimming across tokio's worker threads (docs/benchmarks.md, "Where the
/// time goes"); mimalloc's thread-local free lists take most of that away.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(hint) = unreachable_server_hint(&e) {
                eprintln!("{hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// When a command could not reach the server at all, which URL it tried
/// and how to point it elsewhere.
fn unreachable_server_hint(e: &anyhow::Error) -> Option<String> {
    let http = e.chain().find_map(|cause| {
        cause
            .downcast_ref::<cashdesk_sdk::SdkError>()
            .and_then(|sdk| match sdk {
                cashdesk_sdk::SdkError::Http(h) => Some(h),
                _ => None,
            })
            .or_else(|| cause.downcast_ref::<reqwest::Error>())
    })?;
    if !(http.is_connect() || http.is_timeout()) {
        return None;
    }
    let origin = http.url().map_or_else(
        || "the server".to_owned(),
        |u| u.origin().ascii_serialization(),
    );
    Some(format!(
        "hint: nothing answered at {origin}. Start the server (`cashdesk serve`), or point this \
         command at yours with --url or the CASHDESK_URL environment variable."
    ))
}
