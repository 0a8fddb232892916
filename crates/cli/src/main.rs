//! The `cashdesk` binary: parse the command line and hand over to the
//! command modules. Everything the server does lives in `cashdesk-server`;
//! everything an operator or merchant script does goes through
//! `cashdesk-sdk`, so this crate stays a thin shell.

mod admin;
mod cli;
mod sandbox;
mod serve;
mod sign;
mod telemetry;

use std::process::ExitCode;

use clap::Parser as _;

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
