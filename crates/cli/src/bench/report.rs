//! The figures: latency statistics per stage (nearest-rank percentiles),
//! the server's memory and CPU, the `/healthz` comparison, the machine;
//! serialised for `--json` and rendered as the text report.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use cashdesk_sandbox::NotifyObservation;
use serde::Serialize;

use super::load::{Run, Sample};
use super::options::{BenchArgs, BenchChannel, Scenario};
use super::receiver::ReceiverState;
use super::server::ServerProcess;

/// Latency figures of one stage, in milliseconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    count: usize,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
}

impl Stats {
    fn of(mut v: Vec<Duration>) -> Option<Stats> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        // Nearest rank: the smallest value with at least p of the samples
        // at or below it.
        let pct = |p: f64| {
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            ms(v[rank - 1])
        };
        let sum: Duration = v.iter().sum();
        Some(Stats {
            count: v.len(),
            p50_ms: pct(0.50),
            p90_ms: pct(0.90),
            p99_ms: pct(0.99),
            max_ms: ms(v[v.len() - 1]),
            mean_ms: ms(sum) / v.len() as f64,
        })
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerFigures {
    backend: &'static str,
    rss_idle_mib: Option<f64>,
    rss_peak_mib: Option<f64>,
    /// CPU seconds the server used during the measured run.
    cpu_seconds: Option<f64>,
    /// … per completed operation, in milliseconds.
    cpu_ms_per_op: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Baseline {
    requests: usize,
    per_second: f64,
    latency: Option<Stats>,
    errors: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Report {
    scenario: Scenario,
    channel: Option<BenchChannel>,
    clients: usize,
    rate: Option<f64>,
    seconds: f64,
    completed: usize,
    per_second: f64,
    errors: BTreeMap<String, u64>,
    /// Latency of each stage, in the order of the cycle.
    stages: Vec<Stage>,
    server: ServerFigures,
    healthz: Option<Baseline>,
    /// `perSecond` ÷ `healthz.perSecond`.
    ratio_to_healthz: Option<f64>,
    merchant_notifications: NotificationCounts,
    machine: Machine,
}

#[derive(Debug, Serialize)]
struct Stage {
    stage: &'static str,
    #[serde(flatten)]
    stats: Stats,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationCounts {
    received: u64,
    duplicates: u64,
    bad_signatures: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Machine {
    cpus: usize,
    load_average: Option<String>,
    /// CPU seconds this bench process (clients, sandbox, receiver) used
    /// during the measured run: the load generator shares the machine.
    harness_cpu_seconds: Option<f64>,
}

fn mib(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| k as f64 / 1024.0)
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        args: &BenchArgs,
        server: &ServerProcess,
        run: &Run,
        baseline: Option<&Run>,
        observed: &HashMap<String, NotifyObservation>,
        receiver: &ReceiverState,
        rss_idle_kib: Option<u64>,
        rss_peak_kib: Option<u64>,
        cpu_seconds: Option<f64>,
        harness_cpu_seconds: Option<f64>,
    ) -> Report {
        let seconds = run.elapsed.as_secs_f64();
        let completed = run.samples.len();
        let pick = |f: fn(&Sample) -> Option<Duration>| -> Vec<Duration> {
            run.samples.iter().filter_map(f).collect()
        };
        let mut notify = Vec::new();
        let mut delivery = Vec::new();
        for s in &run.samples {
            if let (Some(id), Some(at)) = (&s.order_id, s.delivered_at)
                && let Some(o) = observed.get(id)
            {
                notify.push(o.answered_at.saturating_duration_since(o.sent_at));
                delivery.push(at.saturating_duration_since(o.answered_at));
            }
        }
        let mut stages = Vec::new();
        let mut put = |name: &'static str, v: Vec<Duration>| {
            if let Some(s) = Stats::of(v) {
                stages.push(Stage {
                    stage: name,
                    stats: s,
                });
            }
        };
        put("order", pick(|s| s.order));
        put("payment", pick(|s| s.payment));
        put("buyer pays (sandbox)", pick(|s| s.buyer));
        put("channel notification", notify);
        put("merchant delivery", delivery);
        if args.scenario == Scenario::Cycle {
            put("cycle", pick(|s| s.total));
        }
        let per_second = completed as f64 / seconds.max(1e-9);
        let healthz = baseline.map(|b| {
            let times: Vec<Duration> = b.samples.iter().filter_map(|s| s.total).collect();
            Baseline {
                requests: times.len(),
                per_second: times.len() as f64 / b.elapsed.as_secs_f64().max(1e-9),
                latency: Stats::of(times),
                errors: b.errors.clone(),
            }
        });
        let ratio_to_healthz = healthz
            .as_ref()
            .filter(|h| h.per_second > 0.0)
            .map(|h| per_second / h.per_second);
        Report {
            scenario: args.scenario,
            channel: (args.scenario == Scenario::Cycle).then_some(args.channel),
            clients: args.clients,
            rate: args.rate,
            seconds,
            completed,
            per_second,
            errors: run.errors.clone(),
            stages,
            server: ServerFigures {
                backend: server.backend,
                rss_idle_mib: mib(rss_idle_kib),
                rss_peak_mib: mib(rss_peak_kib),
                cpu_seconds,
                cpu_ms_per_op: cpu_seconds
                    .filter(|_| completed > 0)
                    .map(|c| c * 1000.0 / completed as f64),
            },
            healthz,
            ratio_to_healthz,
            merchant_notifications: NotificationCounts {
                received: receiver.received.load(Ordering::Relaxed),
                duplicates: receiver.duplicates.load(Ordering::Relaxed),
                bad_signatures: receiver.bad_signatures.load(Ordering::Relaxed),
            },
            machine: Machine {
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                load_average: std::fs::read_to_string("/proc/loadavg")
                    .ok()
                    .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
                harness_cpu_seconds,
            },
        }
    }

    pub(super) fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let what = match self.scenario {
            Scenario::Cycle => "complete payment cycles",
            Scenario::Order => "unified orders",
        };
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:.0} {what}/s ({} in {:.1} s, {} clients{}, {}{})",
            self.per_second,
            self.completed,
            self.seconds,
            self.clients,
            self.rate
                .map(|r| format!(", paced at {r}/s"))
                .unwrap_or_default(),
            self.server.backend,
            self.channel
                .and_then(|c| serde_json::to_value(c).ok())
                .and_then(|v| v.as_str().map(|s| format!(", {s}")))
                .unwrap_or_default(),
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "stage (ms)", "count", "p50", "p90", "p99", "max"
        );
        for Stage {
            stage: name,
            stats: s,
        } in &self.stages
        {
            let _ = writeln!(
                out,
                "{name:<24} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
            );
        }
        let _ = writeln!(out);
        if self.errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        } else {
            let _ = writeln!(out, "errors:");
            for (k, n) in &self.errors {
                let _ = writeln!(out, "  {n:>8}  {k}");
            }
        }
        let n = &self.merchant_notifications;
        let _ = writeln!(
            out,
            "merchant notifications received: {} ({} repeated, {} badly signed)",
            n.received, n.duplicates, n.bad_signatures
        );
        let fmt_mib = |v: Option<f64>| v.map_or("n/a".to_owned(), |m| format!("{m:.1} MiB"));
        let _ = writeln!(
            out,
            "server: RSS idle {}, peak {}; CPU {} ({} per operation)",
            fmt_mib(self.server.rss_idle_mib),
            fmt_mib(self.server.rss_peak_mib),
            self.server
                .cpu_seconds
                .map_or("n/a".to_owned(), |c| format!("{c:.1} s")),
            self.server
                .cpu_ms_per_op
                .map_or("n/a".to_owned(), |c| format!("{c:.2} ms")),
        );
        if let Some(h) = &self.healthz {
            let _ = writeln!(
                out,
                "GET /healthz, same clients: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms{}",
                h.per_second,
                h.latency.as_ref().map_or(0.0, |l| l.p50_ms),
                h.latency.as_ref().map_or(0.0, |l| l.p99_ms),
                if h.errors.is_empty() {
                    String::new()
                } else {
                    format!(", {} errors", h.errors.values().sum::<u64>())
                }
            );
        }
        if let Some(r) = self.ratio_to_healthz {
            let _ = writeln!(out, "ratio to /healthz: {r:.3}");
        }
        let _ = writeln!(
            out,
            "machine: {} CPUs, load average {}; this bench process (clients, sandbox, receiver) used {} CPU",
            self.machine.cpus,
            self.machine.load_average.as_deref().unwrap_or("n/a"),
            self.machine
                .harness_cpu_seconds
                .map_or("n/a".to_owned(), |c| format!("{c:.1} s")),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = Stats::of(ms(&(1..=100).rev().collect::<Vec<_>>())).expect("stats");
        assert_eq!(s.count, 100);
        assert_eq!(
            (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert!((s.mean_ms - 50.5).abs() < 1e-9);

        let one = Stats::of(ms(&[7])).expect("stats");
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (7.0, 7.0, 7.0));
        let two = Stats::of(ms(&[1, 9])).expect("stats");
        assert_eq!((two.p50_ms, two.p90_ms), (1.0, 9.0));
        assert!(Stats::of(Vec::new()).is_none());
    }
}
