//! The server under test: a real `cashdesk serve` child process (this
//! binary, or `--server-exe`) on the bench's temporary folder, with only
//! the bench's own settings; its address and database read from its
//! startup report, its memory and CPU from `/proc`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};

pub(super) struct ServerProcess {
    child: tokio::process::Child,
    pid: u32,
    pub(super) url: String,
    pub(super) backend: &'static str,
    pub(super) admin_token: String,
}

impl ServerProcess {
    pub(super) async fn start(
        dir: &Path,
        database_url: Option<&str>,
        exe: Option<&Path>,
    ) -> anyhow::Result<ServerProcess> {
        let exe = match exe {
            Some(exe) => exe.to_path_buf(),
            None => std::env::current_exe().context("locating the cashdesk binary")?,
        };
        let admin_token = cashdesk_crypto::random::nonce_str(32);
        let log = std::fs::File::create(dir.join("server.log")).context("creating server.log")?;
        let mut cmd = tokio::process::Command::new(&exe);
        // Only the bench's own settings: no CASHDESK_* from the caller's
        // environment and no ./cashdesk.toml (the child runs in `dir`).
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CASHDESK_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("serve")
            .current_dir(dir)
            .env("CASHDESK_LISTEN", "127.0.0.1:0")
            .env("CASHDESK_DATA_DIR", dir.join("server"))
            .env("CASHDESK_SANDBOX", "false")
            .env("CASHDESK_ADMIN_TOKEN", &admin_token)
            .env("CASHDESK_ALLOW_PRIVATE_NOTIFY_URLS", "true")
            // One app and one address (loopback) send everything: limits
            // far above the load, so the limiter runs but never refuses.
            // (An older `--server-exe` ignores them.)
            .env("CASHDESK_RATE_LIMIT_PUBLIC", "1000000")
            .env("CASHDESK_RATE_LIMIT_PUBLIC_BURST", "1000000")
            .env("CASHDESK_RATE_LIMIT_API", "1000000")
            .env("CASHDESK_RATE_LIMIT_API_BURST", "1000000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(url) = database_url {
            cmd.env("CASHDESK_DATABASE_URL", url);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        // The startup report: `  listening on  http://…`, then
        // `  database      sqlite (…)`.
        let mut url = None;
        let mut backend = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while backend.is_none() {
            let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(_) => bail!(
                    "cashdesk serve stopped before it listened; see {}",
                    dir.join("server.log").display()
                ),
                Err(_) => bail!("cashdesk serve did not start within 60 s"),
            };
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("listening on") {
                url = Some(rest.trim().trim_end_matches('/').to_owned());
            } else if let Some(rest) = line.strip_prefix("database") {
                backend = Some(if rest.trim().starts_with("postgres") {
                    "postgres"
                } else {
                    "sqlite"
                });
            }
        }
        let backend = backend.unwrap_or("sqlite");
        // Keep reading (and dropping) what it prints.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let url = url.context("cashdesk serve printed no listening address")?;
        Ok(ServerProcess {
            child,
            pid,
            url,
            backend,
            admin_token,
        })
    }

    /// A memory figure of `/proc/<pid>/status` in KiB (`VmRSS` now,
    /// `VmHWM` the peak); `None` where there is no procfs.
    pub(super) fn rss_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status.lines().find_map(|l| {
            l.strip_prefix(field)?
                .trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
    }

    pub(super) fn cpu_seconds(&self) -> Option<f64> {
        process_cpu_seconds(&self.pid.to_string())
    }

    pub(super) async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// User + system CPU time of a process so far (`/proc/<pid>/stat`, clock
/// ticks of 1/100 s on Linux); `pid` may be `self`.
pub(super) fn process_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
