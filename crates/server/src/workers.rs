//! Background workers of one application: binding auto-approval (when
//! configured), the refund poller (see [`crate::service::refunds`]), nonce
//! purge and metrics upkeep. Plain tokio tasks that
//! watch one shutdown flag; [`Workers::stop`] raises it and waits for each
//! task to finish its current step. Each step is one store call that is
//! safe to run on several instances at once (compare-and-set / idempotent
//! deletes, or the refund poller's claim, which is its own lease), so no
//! cluster lease is needed.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub struct Workers {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

/// Runs `step` every `every` until told to stop.
fn periodic<F, Fut>(
    mut stop: watch::Receiver<bool>,
    every: Duration,
    name: &'static str,
    mut step: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => step().await,
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
        tracing::debug!(worker = name, "worker stopped");
    })
}

impl Workers {
    pub fn spawn(state: &AppState) -> Workers {
        let (stop, rx) = watch::channel(false);
        let mut handles = Vec::new();
        if state.config.binding_auto_approve_secs.is_some() {
            let s = state.clone();
            handles.push(periodic(
                rx.clone(),
                Duration::from_secs(1),
                "binding-auto-approve",
                move || {
                    let s = s.clone();
                    async move {
                        match s.store.approve_due_bindings(Utc::now()).await {
                            Ok(0) => {}
                            Ok(n) => {
                                tracing::info!(approved = n, "bindings approved automatically")
                            }
                            Err(e) => tracing::warn!(error = %e, "binding auto-approval failed"),
                        }
                    }
                },
            ));
        }
        // The refund poller looks for due refunds at least every second
        // (more often when the schedule's first query is sooner).
        let first = state
            .config
            .query_schedule()
            .first_after
            .to_std()
            .unwrap_or(Duration::from_secs(1));
        let s = state.clone();
        handles.push(periodic(
            rx.clone(),
            first.clamp(Duration::from_millis(50), Duration::from_secs(1)),
            "refund-poller",
            move || {
                let s = s.clone();
                async move {
                    match crate::service::refunds::query_due(&s, 50).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(queried = n, "refunds queried"),
                        Err(e) => tracing::warn!(error = ?e, "refund poller step failed"),
                    }
                }
            },
        ));
        let s = state.clone();
        handles.push(periodic(
            rx,
            Duration::from_secs(60),
            "housekeeping",
            move || {
                let s = s.clone();
                async move {
                    match s.store.purge_nonces(Utc::now()).await {
                        Ok(n) => tracing::debug!(purged = n, "expired nonces purged"),
                        Err(e) => tracing::warn!(error = %e, "nonce purge failed"),
                    }
                    s.metrics.upkeep();
                }
            },
        ));
        Workers { stop, handles }
    }

    /// Signals every worker and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            if let Err(e) = h.await {
                tracing::warn!(error = %e, "a worker ended abnormally");
            }
        }
    }
}
