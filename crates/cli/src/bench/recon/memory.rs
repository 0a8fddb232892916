//! This process's resident memory during the run, from `/proc/self`.
//!
//! The peak is the kernel's own high-water mark, `VmHWM`, reset just
//! before the run by writing `5` to `/proc/self/clear_refs` (Linux 4.0 and
//! later), so it is the peak of the run and not of the set-up. Where the
//! kernel refuses the reset, the figure is the largest `VmRSS` seen by a
//! thread sampling every 10 ms instead (it can miss a peak shorter than
//! that), and the report says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A `kB` field of `/proc/self/status`, in KiB.
pub(super) fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// How the peak was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum PeakSource {
    /// `VmHWM` after a reset.
    Hwm,
    /// The largest sampled `VmRSS`.
    Sampled,
}

/// Watches the run's memory from before it starts.
pub(super) struct Watch {
    reset: bool,
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    sampler: std::thread::JoinHandle<()>,
}

impl Watch {
    pub(super) fn start() -> Watch {
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(status_kib("VmRSS").unwrap_or(0)));
        let sampler = {
            let (stop, max_kib) = (stop.clone(), max_kib.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kib) = status_kib("VmRSS") {
                        max_kib.fetch_max(kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Watch {
            reset,
            stop,
            max_kib,
            sampler,
        }
    }

    /// The peak since [`Watch::start`], in KiB, and how it was measured.
    pub(super) fn finish(self) -> (u64, PeakSource) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.sampler.join();
        let sampled = self.max_kib.load(Ordering::Relaxed);
        match status_kib("VmHWM").filter(|_| self.reset) {
            Some(hwm) => (hwm, PeakSource::Hwm),
            None => (sampled, PeakSource::Sampled),
        }
    }
}
