//! Warnings about input from strangers (forged notifications, refused
//! requests, dropped connections), sampled: the first of a kind and key
//! is logged, then at most one per [`INTERVAL`], saying how many were not
//! logged in between. Every occurrence is counted in
//! `cashdesk_warnings_total{kind}` and every logged one in
//! `cashdesk_warnings_logged_total{kind}`, so a flood costs a metric
//! increment per request, not a log line.
//!
//! Use [`sampled_warn!`](crate::sampled_warn):
//! `sampled_warn!(state, "notification_refused", config_id, reason = %r, "notification refused")`.
//! The key says what is counted separately (a config id, an address);
//! at most [`MAX_KEYS`] keys are remembered, past that the rest share one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// At most one line per kind and key in this interval.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Keys remembered at once; further keys share [`OVERFLOW_KEY`].
pub const MAX_KEYS: usize = 1024;
const OVERFLOW_KEY: &str = "(other)";

#[derive(Default)]
pub struct Sampler {
    seen: Mutex<HashMap<(&'static str, String), Seen>>,
}

struct Seen {
    logged_at: Instant,
    suppressed: u64,
}

impl Sampler {
    /// Counts one warning; `Some(n)` when it is to be logged now, `n`
    /// being how many of this kind and key were not logged since the last.
    pub fn check(&self, metrics: &Metrics, kind: &'static str, key: &str) -> Option<u64> {
        metrics.warning(kind, false);
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let key = if seen.len() >= MAX_KEYS && !seen.contains_key(&(kind, key.to_owned())) {
            seen.retain(|_, s| now.duration_since(s.logged_at) < INTERVAL);
            if seen.len() >= MAX_KEYS {
                OVERFLOW_KEY
            } else {
                key
            }
        } else {
            key
        };
        let log = match seen.get_mut(&(kind, key.to_owned())) {
            None => {
                seen.insert(
                    (kind, key.to_owned()),
                    Seen {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
            Some(s) if now.duration_since(s.logged_at) >= INTERVAL => {
                let n = s.suppressed;
                s.logged_at = now;
                s.suppressed = 0;
                Some(n)
            }
            Some(s) => {
                s.suppressed += 1;
                None
            }
        };
        if log.is_some() {
            metrics.warning(kind, true);
        }
        log
    }

    /// Forgets keys whose interval has passed with nothing suppressed.
    pub fn prune(&self) {
        let now = Instant::now();
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| s.suppressed > 0 || now.duration_since(s.logged_at) < INTERVAL);
    }
}

/// `tracing::warn!`, sampled per kind and key by the application's
/// [`Sampler`]: `sampled_warn!(state, kind, key, fields…, "message")`.
#[macro_export]
macro_rules! sampled_warn {
    ($state:expr, $kind:expr, $key:expr, $($rest:tt)+) => {
        if let Some(suppressed) = $state.edge.warnings.check(&$state.metrics, $kind, $key) {
            tracing::warn!(kind = $kind, suppressed, $($rest)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_is_logged_then_counted_per_key() {
        let metrics = Metrics::new().expect("metrics");
        let s = Sampler::default();
        assert_eq!(s.check(&metrics, "k", "a"), Some(0));
        for _ in 0..99 {
            assert_eq!(s.check(&metrics, "k", "a"), None);
        }
        assert_eq!(s.check(&metrics, "k", "b"), Some(0), "another key");
        assert_eq!(s.check(&metrics, "other", "a"), Some(0), "another kind");
        let text = metrics.render();
        assert!(
            text.contains(r#"cashdesk_warnings_total{kind="k"} 101"#),
            "{text}"
        );
        assert!(
            text.contains(r#"cashdesk_warnings_logged_total{kind="k"} 2"#),
            "{text}"
        );
        // After the interval: logged again with the count of the others.
        {
            let mut seen = s.seen.lock().expect("lock");
            let a = seen.get_mut(&("k", "a".to_owned())).expect("a");
            a.logged_at -= INTERVAL;
        }
        assert_eq!(s.check(&metrics, "k", "a"), Some(99));
    }

    #[test]
    fn keys_are_bounded() {
        let metrics = Metrics::new().expect("metrics");
        let s = Sampler::default();
        for i in 0..MAX_KEYS {
            assert_eq!(s.check(&metrics, "k", &i.to_string()), Some(0));
        }
        assert_eq!(
            s.check(&metrics, "k", "new"),
            Some(0),
            "the overflow key, once"
        );
        assert_eq!(s.check(&metrics, "k", "newer"), None);
        assert!(s.seen.lock().expect("lock").len() <= MAX_KEYS + 1);
    }
}
