//! `cashdesk bench recon`: one day's reconciliation of a WeChat Pay trade
//! bill of `--lines` lines against as many paid orders, through the real
//! engine ([`cashdesk_server::recon::run_day`], what the daily scheduler
//! and `POST /api/admin/reconciliations/run` call), with issue 15's
//! figures: lines per second and the peak resident memory of the run
//! (targets: ≥ 100,000 lines/s and < 200 MB on SQLite for 1,000,000 lines
//! against 1,000,000 orders).
//!
//! It is a benchmark that also checks: the bill carries planted
//! differences ([`book`]) and the command fails (non-zero exit) unless the
//! run reports exactly them. A fast run that finds the wrong things is not
//! a figure.
//!
//! The set-up ([`setup`]: application, config, orders in bulk; [`bill`]:
//! the gzip bill and its SHA-1) is timed and printed apart; the figures
//! are the run alone, from `run_day`'s call to its return: the kept bill's
//! hash check, reading and matching every line, the store's reads of the
//! day's window of orders and refunds, the lookups of the lines the window
//! does not place, and the findings written. Memory: [`memory`].

mod bill;
mod book;
mod memory;
mod setup;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use cashdesk_channels::bill::{BillFormat, Compression};
use cashdesk_core::ReconState;
use cashdesk_server::recon::{RunOptions, matching::cst_day, run_day};
use cashdesk_store::{FindingFilter, StoredBill};
use chrono::{Duration, Utc};
use clap::Args;
use serde::Serialize;

use super::server::process_cpu_seconds;
use book::{Book, MIN_LINES};
use memory::{PeakSource, Watch};
use setup::Setup;

/// The targets (SQLite).
const TARGET_LINES_PER_SECOND: f64 = 100_000.0;
const TARGET_PEAK_BYTES: f64 = 200_000_000.0;

#[derive(Debug, Clone, Args)]
pub struct ReconArgs {
    /// Bill lines, and paid orders (at least 100).
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: u64,
    /// The database: a scratch PostgreSQL database (`postgres://…`) or
    /// SQLite file; default: SQLite in the temporary data folder. The
    /// bench adds its own channel config, app, channel and orders.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Write the figures as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep the temporary folder (database, bill) and print where.
    #[arg(long)]
    pub keep: bool,
}

/// What the run gave.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Figures {
    backend: &'static str,
    lines: i64,
    orders: u64,
    matched: i64,
    run_seconds: f64,
    lines_per_second: f64,
    /// CPU this process used during the run (every thread: the matching,
    /// the runtime, SQLite's).
    run_cpu_seconds: Option<f64>,
    rss_before_mib: f64,
    peak_rss_mib: f64,
    peak_source: PeakSource,
    /// Finding kinds and counts, sorted by kind.
    findings: Vec<(String, u64)>,
    correct: bool,
    bill_gzip_bytes: u64,
    bill_text_bytes: u64,
    setup_orders_seconds: f64,
    setup_bill_seconds: f64,
    setup_app_seconds: f64,
    cpus: usize,
    load_average: Option<String>,
}

pub async fn run(args: &ReconArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.lines >= MIN_LINES,
        "--lines must be at least {MIN_LINES}"
    );
    let tmp = tempfile::Builder::new()
        .prefix("cashdesk-bench-recon-")
        .tempdir()
        .context("creating a temporary folder")?;
    let result = bench(args, tmp.path()).await;
    if args.keep {
        let kept = tmp.keep();
        eprintln!("kept {}", kept.display());
    }
    let figures = result?;
    print!("{}", render(&figures));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&figures).context("serialising the figures")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    if !figures.correct {
        bail!("the reconciliation did not report exactly the planted differences");
    }
    Ok(())
}

async fn bench(args: &ReconArgs, dir: &Path) -> anyhow::Result<Figures> {
    let seed = u16::from_le_bytes(
        cashdesk_crypto::random::bytes(2)
            .try_into()
            .unwrap_or([0, 0]),
    );
    // Yesterday in China: a day that is over, as every bill's.
    let book = Book::new(args.lines, cst_day(Utc::now()) - Duration::days(1), seed);
    let day = book.day;

    let started = Instant::now();
    let setup = Setup::build(dir, args.database_url.as_deref()).await?;
    let setup_app_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "bench recon: {} lines against {} orders on {day}, {} ({:.1} s to build the application)",
        args.lines, args.lines, setup.backend, setup_app_seconds
    );

    let started = Instant::now();
    setup.insert_orders(&book).await?;
    let setup_orders_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "bench recon: {} paid orders written in {setup_orders_seconds:.1} s",
        book.n
    );

    let started = Instant::now();
    let (abs, rel) = setup.bill_path(day)?;
    let written = {
        let book = Book::new(args.lines, day, seed);
        let (mch_id, app_id) = (setup.mch_id.clone(), setup.wx_app_id.clone());
        tokio::task::spawn_blocking(move || {
            bill::write(
                &abs,
                &book,
                &bill::Merchant {
                    mch_id: &mch_id,
                    app_id: &app_id,
                },
            )
        })
        .await
        .context("the bill writer")??
    };
    setup
        .keep_bill(
            day,
            StoredBill {
                scope: String::new(),
                path: rel,
                format: BillFormat::WechatTrade.as_str().to_owned(),
                compression: Compression::Gzip.as_str().to_owned(),
                sha1: Some(written.sha1.clone()),
                size: written.size,
            },
        )
        .await?;
    let setup_bill_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "bench recon: bill of {} lines written in {setup_bill_seconds:.1} s ({:.1} MB gzip, {:.1} MB text)",
        written.lines,
        written.size as f64 / 1e6,
        written.text_size as f64 / 1e6
    );

    // The run.
    let rss_before = memory::status_kib("VmRSS").unwrap_or(0);
    let watch = Watch::start();
    let cpu_before = process_cpu_seconds("self");
    let started = Instant::now();
    let run = run_day(&setup.state, &setup.config_id, day, RunOptions::default())
        .await
        .context("the reconciliation run")?;
    let run_seconds = started.elapsed().as_secs_f64();
    let cpu_after = process_cpu_seconds("self");
    let (peak_kib, peak_source) = watch.finish();

    if run.state != ReconState::Done {
        bail!(
            "the run ended {}: {}",
            run.state,
            run.message.as_deref().unwrap_or("")
        );
    }
    let findings = finding_counts(&setup, day).await?;
    let expected = book.expected();
    let correct = run.lines == expected.lines
        && run.matched == expected.matched
        && findings == expected.findings;
    if !correct {
        eprintln!(
            "bench recon: expected {} lines, {} matched and findings {:?}; the run reported {} lines, {} matched and findings {:?}",
            expected.lines, expected.matched, expected.findings, run.lines, run.matched, findings
        );
    }
    Ok(Figures {
        backend: setup.backend,
        lines: run.lines,
        orders: book.n,
        matched: run.matched,
        run_seconds,
        lines_per_second: run.lines as f64 / run_seconds,
        run_cpu_seconds: cpu_after.zip(cpu_before).map(|(a, b)| a - b),
        rss_before_mib: rss_before as f64 / 1024.0,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        peak_source,
        findings,
        correct,
        bill_gzip_bytes: written.size,
        bill_text_bytes: written.text_size,
        setup_orders_seconds,
        setup_bill_seconds,
        setup_app_seconds,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
    })
}

/// The findings of (config, day), counted by kind.
async fn finding_counts(
    setup: &Setup,
    day: chrono::NaiveDate,
) -> anyhow::Result<Vec<(String, u64)>> {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    let mut before = None;
    loop {
        let page = setup
            .state
            .store
            .list_findings(&FindingFilter {
                bill_date: Some(day),
                config_id: Some(setup.config_id.clone()),
                before: before.clone(),
                limit: 1000,
                ..FindingFilter::default()
            })
            .await?;
        for f in &page {
            *counts.entry(f.kind.as_str().to_owned()).or_default() += 1;
        }
        match page.last() {
            Some(last) if page.len() == 1000 => before = Some(last.finding_id.clone()),
            _ => break,
        }
    }
    Ok(counts.into_iter().collect())
}

fn render(f: &Figures) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mb = |mib: f64| mib * 1024.0 * 1024.0 / 1e6;
    let _ = writeln!(
        out,
        "{:.0} bill lines/s: {} lines reconciled against {} paid orders in {:.2} s ({}, WeChat trade bill, gzip, SHA-1 checked)",
        f.lines_per_second, f.lines, f.orders, f.run_seconds, f.backend
    );
    let _ = writeln!(
        out,
        "peak RSS during the run: {:.1} MiB ({:.0} MB; {}); {:.1} MiB when it started",
        f.peak_rss_mib,
        mb(f.peak_rss_mib),
        match f.peak_source {
            PeakSource::Hwm => "VmHWM, reset just before the run",
            PeakSource::Sampled => "largest VmRSS sampled every 10 ms: VmHWM could not be reset",
        },
        f.rss_before_mib
    );
    if let Some(cpu) = f.run_cpu_seconds {
        let _ = writeln!(out, "CPU during the run: {cpu:.2} s (all threads)");
    }
    let kinds: Vec<String> = f.findings.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "findings: {}; {} lines matched: {}",
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        },
        f.matched,
        if f.correct {
            "exactly the planted differences"
        } else {
            "NOT the planted differences (see above)"
        }
    );
    let _ = writeln!(
        out,
        "set-up (not in the figures): application {:.1} s, orders {:.1} s ({:.0}/s), bill {:.1} s ({:.1} MB gzip, {:.1} MB text)",
        f.setup_app_seconds,
        f.setup_orders_seconds,
        f.orders as f64 / f.setup_orders_seconds,
        f.setup_bill_seconds,
        f.bill_gzip_bytes as f64 / 1e6,
        f.bill_text_bytes as f64 / 1e6
    );
    let met = |b: bool| if b { "met" } else { "NOT met" };
    let _ = writeln!(
        out,
        "targets (SQLite, 1,000,000 lines): >= 100,000 lines/s {}; < 200 MB peak RSS {}",
        met(f.lines_per_second >= TARGET_LINES_PER_SECOND),
        met(mb(f.peak_rss_mib) * 1e6 < TARGET_PEAK_BYTES)
    );
    let _ = writeln!(
        out,
        "machine: {} CPUs, load average {}",
        f.cpus,
        f.load_average.as_deref().unwrap_or("n/a")
    );
    out
}
