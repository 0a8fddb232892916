//! The `cashdesk` binary: parse the command line and hand over to the
//! command modules. Everything the server does lives in `cashdesk-server`;
//! everything an operator or merchant script does goes through
//! `cashdesk-sdk`, so this crate stays a thin shell.

mod admin;
mod bench;
mod cli;
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
            ExitCode::FAILURE
        }
    }
}
