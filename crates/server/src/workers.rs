//! Background workers of one application: merchant notification delivery
//! (see [`crate::service::delivery`]), the order and refund pollers and the
//! expiry job (see [`crate::service::poller`], [`crate::service::refunds`]),
//! binding auto-approval (when configured), nonce purge, the order
//! timeline's retention and metrics upkeep.
//! Plain tokio tasks that watch one shutdown flag; [`Workers::stop`] raises
//! it and waits for each task to finish its current step.
//!
//! Every instance runs every worker, so nothing is done twice only because
//! each step is safe to run on several instances at once: a compare-and-set
//! or idempotent delete (auto-approval, nonce purge, timeline retention), a claim that is its
//! own lease (the outbox, the pollers), or — for the expiry job, whose list
//! of expired orders is a plain read — a cluster lease held by one instance
//! at a time ([`crate::service::poller::EXPIRY_LEASE`]). No step relies on
//! an instance-local timer being the only one.
//!
//! The delivery worker and the two pollers keep a fixed number of pieces
//! of work in flight ([`crate::slots`]: 32 deliveries, 8 order queries, 8
//! refund queries) and claim again as soon as one ends, so a slow merchant
//! endpoint or channel holds only the slots of its own rows. The delivery
//! worker wakes when this instance queues a notification
//! ([`crate::state::Inner::outbox_wake`]), so the merchant hears of a
//! payment within moments, and polls (at the schedule's shortest wait, at
//! most every second) for rows queued by other instances or come due.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::service::delivery::{self, Deliverer};
use crate::service::error::ServiceResult;
use crate::service::poller;
use crate::slots::{InFlight, Slots, Taken};
use crate::state::AppState;

pub struct Workers {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
    state: AppState,
}

/// How often a poller or the delivery worker looks for due rows, given the
/// shortest wait of its schedule: that often, but between 50 ms and 1 s.
fn poll_every(shortest: Option<Duration>) -> Duration {
    shortest
        .unwrap_or(Duration::from_secs(1))
        .clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// A worker that keeps up to `slots` pieces of work in flight
/// ([`crate::slots`]): when woken (by `wake`, if any) or every `every`, it
/// waits for a free slot, calls `fill` with every free one (which claims
/// that many rows and starts each), and again at once while `fill` says it
/// used them all. When told to stop, it waits for the work in flight.
fn slot_worker<F, Fut>(
    mut stop: watch::Receiver<bool>,
    every: Duration,
    wake: Option<AppState>,
    name: &'static str,
    slots: Slots,
    mut fill: F,
) -> JoinHandle<()>
where
    F: FnMut(Taken) -> Fut + Send + 'static,
    Fut: Future<Output = ServiceResult<bool>> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'worker: loop {
            let woken = async {
                match &wake {
                    Some(state) => state.outbox_wake.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = woken => {}
                _ = tick.tick() => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
            loop {
                let taken = tokio::select! {
                    taken = slots.free() => taken,
                    changed = stop.changed() => {
                        if changed.is_err() || *stop.borrow() {
                            break 'worker;
                        }
                        continue;
                    }
                };
                match fill(taken).await {
                    Ok(true) if !*stop.borrow() => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(worker = name, error = ?e, "claiming work failed");
                        break;
                    }
                }
            }
        }
        slots.drain().await;
        tracing::debug!(worker = name, "worker stopped");
    })
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
        match Deliverer::new(state) {
            Ok(d) => {
                let (s, d) = (state.clone(), Arc::new(d));
                handles.push(slot_worker(
                    rx.clone(),
                    poll_every(d.shortest_wait()),
                    Some(state.clone()),
                    "notification-delivery",
                    Slots::new(delivery::CONCURRENCY),
                    move |taken| {
                        let (s, d) = (s.clone(), Arc::clone(&d));
                        async move { delivery::send_due(&s, &d, taken).await }
                    },
                ));
            }
            // Only a TLS backend that cannot start; the rows wait for the
            // next start (or another instance).
            Err(e) => {
                tracing::error!(error = %e, "cannot build the notification client: merchant notifications are NOT delivered by this instance")
            }
        }
        // The pollers look for due rows at least every second (more often
        // when the schedule's first query is sooner).
        let every = poll_every(state.config.query_schedule().first_after.to_std().ok());
        let s = state.clone();
        let in_flight = InFlight::new();
        handles.push(slot_worker(
            rx.clone(),
            every,
            None,
            "order-poller",
            Slots::new(poller::QUERY_CONCURRENCY),
            move |taken| {
                let (s, in_flight) = (s.clone(), in_flight.clone());
                async move { poller::query_due_orders(&s, taken, &in_flight).await }
            },
        ));
        // Refund applications past their app's days, and approvals whose
        // refund was interrupted (every 5 s; the decision is a
        // compare-and-set, so two instances decide each once).
        let s = state.clone();
        handles.push(periodic(
            rx.clone(),
            Duration::from_secs(5),
            "refund-applications",
            move || {
                let s = s.clone();
                async move {
                    match crate::service::applications::run_due(&s, Utc::now()).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            handled = n,
                            "refund applications decided by timeout or refunded"
                        ),
                        Err(e) => tracing::warn!(error = ?e, "refund application step failed"),
                    }
                }
            },
        ));
        let s = state.clone();
        handles.push(periodic(
            rx.clone(),
            Duration::from_secs(1),
            "expiry",
            move || {
                let s = s.clone();
                async move {
                    let owner = s.instance_id.clone();
                    match poller::expire_due(&s, &owner, 50).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(expired = n, "expired orders handled"),
                        Err(e) => tracing::warn!(error = ?e, "expiry step failed"),
                    }
                }
            },
        ));
        let s = state.clone();
        let in_flight = InFlight::new();
        handles.push(slot_worker(
            rx.clone(),
            every,
            None,
            "refund-poller",
            Slots::new(poller::QUERY_CONCURRENCY),
            move |taken| {
                let (s, in_flight) = (s.clone(), in_flight.clone());
                async move { crate::service::refunds::query_due(&s, taken, &in_flight).await }
            },
        ));
        match state.config.recon_window() {
            Ok(Some(window)) => {
                let s = state.clone();
                handles.push(periodic(
                    rx.clone(),
                    Duration::from_secs(60),
                    "reconciliation",
                    move || {
                        let s = s.clone();
                        async move { crate::recon::schedule::step(&s, window, Utc::now()).await }
                    },
                ));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "recon_window is not valid: no daily reconciliation")
            }
        }
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
                    crate::service::timeline::prune(s.store.as_ref(), Utc::now()).await;
                    s.metrics.upkeep();
                }
            },
        ));
        Workers {
            stop,
            handles,
            state: state.clone(),
        }
    }

    /// Signals every worker, waits for them, and gives up this instance's
    /// job lease so another instance takes over at once.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            if let Err(e) = h.await {
                tracing::warn!(error = %e, "a worker ended abnormally");
            }
        }
        poller::release(&self.state, &self.state.instance_id).await;
    }
}
