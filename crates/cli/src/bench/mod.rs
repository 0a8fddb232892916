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
//!
//! # Files
//!
//! This one runs the whole bench ([`run`]); `options` holds the command
//! line; `server` the `cashdesk serve` child process and its `/proc`
//! figures; `sandbox` the in-process channel sandbox and what it observed;
//! `receiver` the merchant's notify endpoint; `setup` the admin-API set-up;
//! `load` the clients, the pacing and the stages of each operation;
//! `report` the statistics and how they are printed; `recon` is another
//! benchmark, `cashdesk bench recon` (a day's reconciliation, in process).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;

mod load;
mod options;
mod receiver;
mod recon;
mod report;
mod sandbox;
mod server;
mod setup;

pub use options::{BenchArgs, BenchTarget};

use load::{Ctx, Load, drive};
use receiver::Receiver;
use report::Report;
use sandbox::{Observed, SandboxHost};
use server::{ServerProcess, process_cpu_seconds};
use setup::Setup;

/// How long one stage may take before the cycle counts as failed.
const STAGE_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(BenchTarget::Recon(recon)) = &args.target {
        return recon::run(recon).await;
    }
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
