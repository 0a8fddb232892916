//! The daily reconciliation: inside the configured window
//! ([`crate::config::Config::recon_window`], China Standard Time, default
//! 10:00–18:00) every enabled config's yesterday is reconciled once; a run
//! that found the bill not ready, or could not fetch or read it, is tried
//! again at its `next_try_at` (30 minutes later) until the window closes.
//! Every instance runs the step; the run's lease lets one of them do each
//! (config, day).

use chrono::{DateTime, Duration, NaiveTime, Utc};

use super::matching::cst;
use super::{LEASE_TTL_MINUTES, RunOptions, run_day};
use crate::service::error::ServiceError;
use crate::state::AppState;
use cashdesk_core::ReconState;
use cashdesk_store::ReconRun;

/// Whether a stored run of yesterday should be started (again) now.
pub fn due(run: Option<&ReconRun>, now: DateTime<Utc>) -> bool {
    let Some(run) = run else { return true };
    match run.state {
        ReconState::Done => false,
        ReconState::NotReady | ReconState::Failed => run.next_try_at.is_some_and(|t| t <= now),
        // An instance that died while running: its lease has expired.
        ReconState::Running => run.started_at + Duration::minutes(LEASE_TTL_MINUTES) <= now,
    }
}

/// One step of the scheduler.
pub async fn step(state: &AppState, window: (NaiveTime, NaiveTime), now: DateTime<Utc>) {
    let local = now.with_timezone(&cst());
    if local.time() < window.0 || local.time() >= window.1 {
        return;
    }
    let day = local.date_naive() - Duration::days(1);
    let configs = match state.store.list_channel_configs().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "reconciliation: cannot list channel configs");
            return;
        }
    };
    for config in configs.into_iter().filter(|c| c.enabled) {
        let run = match state.store.get_recon_run(&config.config_id, day).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation: cannot read a run");
                continue;
            }
        };
        if !due(run.as_ref(), now) {
            continue;
        }
        match run_day(state, &config.config_id, day, RunOptions::default()).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => {}
            Err(e) => {
                tracing::warn!(config_id = %config.config_id, %day, error = %e, "reconciliation failed")
            }
        }
    }
}
