//! Reconciliation (docs/reconciliation.md): for one channel config and one
//! day, fetch the channel's bill ([`files`]), match it line by line against
//! cashdesk's orders and refunds ([`matching`]), repair what is safe to
//! repair and record every other difference as a finding for an operator.
//!
//! A run of (config, day) holds the cluster lease `recon:<config>:<day>`,
//! so two instances (or the scheduler and an operator's `recon run`) never
//! match the same day at once; a second caller is told it is running.
//! Reruns are idempotent: the stored file is read again (no channel call
//! unless `refetch`), findings are keyed by what they are about, an
//! operator's resolution and a repair are kept, and `OPEN` findings the
//! rerun no longer sees are removed.
//!
//! Repairs go one way only: a payment the bill has and cashdesk shows as
//! unpaid (`CREATED`, `PAYING`, `CLOSED`, `FAILED`) is asked about at the
//! channel, and when the channel confirms it, recorded through the normal
//! paid path ([`payments::sync_order`]: `PAY_SUCCESS` to the merchant,
//! `paidAfterClose` and its automatic refund where they apply). Nothing is
//! ever un-paid or un-refunded automatically.

pub mod fees;
pub mod files;
pub mod matching;
pub mod queries;
pub mod schedule;
pub mod views;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use cashdesk_channels::StoreMerchant;
use cashdesk_channels::bill::BillRecord;
use cashdesk_core::{
    ConfigId, Fen, FindingKind, FindingStatus, OrderId, ReconState, RefundId, RefundState,
};
use cashdesk_store::{NewFinding, Order, ReconOrder, ReconRun, StatementRow, StoredBill};
use chrono::{Duration, NaiveDate, Utc};

use crate::channel_cache;
use crate::service::error::{ServiceError, ServiceResult};
use crate::service::{payments, stores};
use crate::settlement::Source;
use crate::state::AppState;
use files::{FetchError, Fetched};
use matching::{
    Matcher, Moved, Totals, cst_day, day_start, payment_finding, refund_finding, store_of,
};

/// How long a run's lease lasts (renewed by nothing: a run of a day of
/// bills takes seconds to minutes; a dead instance's lease expires).
pub(crate) const LEASE_TTL_MINUTES: i64 = 30;

/// How a run is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Download the bill again even if a stored copy exists.
    pub refetch: bool,
}

fn lease_name(config_id: &ConfigId, day: NaiveDate) -> String {
    format!("recon:{config_id}:{day}")
}

/// Reconciles (config, day). The day must be over in China (bills exist
/// only for past days). Returns the run as stored.
pub async fn run_day(
    state: &AppState,
    config_id: &ConfigId,
    day: NaiveDate,
    options: RunOptions,
) -> ServiceResult<ReconRun> {
    let today = cst_day(Utc::now());
    if day >= today {
        return Err(ServiceError::invalid_as(
            "date",
            format!(
                "{day} is not over yet in China (today is {today}); bills exist for past days only"
            ),
        ));
    }
    let config = state
        .store
        .get_channel_config(config_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("channel config {config_id}")))?;
    let lease = lease_name(config_id, day);
    let owner = state.instance_id.clone();
    if !state
        .store
        .try_acquire_lease(
            &lease,
            &owner,
            Utc::now(),
            Duration::minutes(LEASE_TTL_MINUTES),
        )
        .await?
    {
        return Err(ServiceError::Conflict(format!(
            "the reconciliation of {config_id} on {day} is running elsewhere"
        )));
    }
    let result = run_locked(state, &config, day, options).await;
    if let Err(e) = state.store.release_lease(&lease, &owner).await {
        tracing::warn!(lease, error = %e, "could not release a reconciliation lease");
    }
    let run = result?;
    publish_metrics(state, &run).await;
    Ok(run)
}

async fn run_locked(
    state: &AppState,
    config: &cashdesk_store::ChannelConfig,
    day: NaiveDate,
    options: RunOptions,
) -> ServiceResult<ReconRun> {
    let config_id = &config.config_id;
    let previous = state.store.get_recon_run(config_id, day).await?;
    let run = state
        .store
        .start_recon_run(config_id, day, Utc::now())
        .await?;
    let data_dir = state.config.data_dir.clone();
    let adapter = channel_cache::adapter(state, config)?;

    // 1. The bills of every scope (the config's own account, each store
    // identity at it), from the data folder when kept.
    let mut bills: Vec<StoredBill> = Vec::new();
    for (scope, merchant) in scopes(state, config_id).await? {
        let kept = previous
            .as_ref()
            .filter(|_| !options.refetch)
            .and_then(|p| p.bills.iter().find(|b| b.scope == scope))
            .filter(|b| files::usable(&data_dir, b).is_some())
            .cloned();
        if let Some(b) = kept {
            bills.push(b);
            continue;
        }
        match files::fetch(
            &data_dir,
            adapter.as_ref(),
            config_id,
            day,
            &scope,
            merchant,
        )
        .await
        {
            Ok(Fetched::Stored(b)) => bills.push(b),
            Ok(Fetched::Empty) => {}
            Ok(Fetched::NotReady(msg)) => {
                return finish_undone(
                    state,
                    run,
                    ReconState::NotReady,
                    format!("the channel's bill is not ready: {msg}"),
                    Some(Utc::now() + retry_after()),
                )
                .await;
            }
            // No bill file (Lakala): ask the channel about each trade.
            Ok(Fetched::NoFile) => {
                return queries::run(state, run, config, adapter.as_ref(), day).await;
            }
            Err(e) => {
                state
                    .metrics
                    .recon_fetch_failed(config_id.as_str(), "channel");
                let retry = !matches!(&e, FetchError::Channel(c) if !c.is_retryable());
                let msg = format!("the bill could not be fetched: {e}");
                return finish_failed(state, run, msg, retry.then(|| Utc::now() + retry_after()))
                    .await;
            }
        }
    }

    // The fee of every line goes to the store from a read of its own,
    // alongside the matching rather than after it: the store's writer is
    // idle while the window loads and the bill is matched. A run that
    // stops early stops it (a fee comes from a bill whose hash held, so
    // what was written stays true).
    let fees = Aborting(tokio::spawn({
        let (state, config_id, bills) = (state.clone(), config_id.clone(), bills.clone());
        async move { fees::record(&state, &config_id, day, &bills).await }
    }));

    // 2. Matching, file by file.
    let from = day_start(day - Duration::days(1));
    let to = day_start(day + Duration::days(2));
    // The window is kept as the store reads it, compactly (a busy
    // config's three days are millions of orders).
    let mut matcher = Matcher::empty(day, bills.len() > 1);
    state
        .store
        .recon_orders(config_id, from, to, &mut |o| matcher.add_order(&o))
        .await?;
    state
        .store
        .recon_refunds(config_id, from, to, &mut |r| matcher.add_refund(&r))
        .await?;
    for stored in &bills {
        let before = matcher.totals.clone();
        let (m, read) = read_blocking(data_dir.clone(), stored.clone(), matcher).await?;
        matcher = m;
        match read {
            Ok(summary) => matcher.check_summary(&stored.scope, &summary, &before),
            Err(e) => {
                state.metrics.recon_fetch_failed(config_id.as_str(), "file");
                files::discard(&data_dir, stored);
                let msg = format!("the bill {} cannot be read: {e}", stored.path);
                return finish_failed(state, run, msg, Some(Utc::now() + retry_after())).await;
            }
        }
    }

    // 3. Lines the window did not place, and local entries no line has.
    let mut findings = std::mem::take(&mut matcher.findings);
    for rec in std::mem::take(&mut matcher.unplaced_payments) {
        if let Some(f) = place_payment(state, config_id, &rec, &mut matcher).await? {
            findings.push(f);
        }
    }
    for rec in std::mem::take(&mut matcher.unplaced_refunds) {
        if let Some(f) = place_refund(state, &rec, &mut matcher).await? {
            findings.push(f);
        }
    }
    let (mut local_orders, mut local_refunds) = matcher.unmatched_local();
    if !(local_orders.is_empty() && local_refunds.is_empty()) {
        let booked = booked_on_previous_day(state, config_id, day).await?;
        local_orders.retain(|o| !booked.contains(o.order_id.as_str()));
        local_refunds.retain(|r| !booked.contains(r.refund_id.as_str()));
    }
    findings.extend(local_orders.iter().map(matching::local_only));
    findings.extend(local_refunds.iter().map(matching::refund_local_only));

    save_outcome(state, config, day, &matcher.statement(), &findings).await?;
    // This bill booked what cashdesk had paid the evening before: the
    // previous day's run may have reported it missing.
    let (prev_orders, prev_refunds): (Vec<String>, Vec<String>) = matcher
        .explains_previous
        .iter()
        .cloned()
        .partition(|s| s.starts_with("order:"));
    let yesterday = day - Duration::days(1);
    state
        .store
        .clear_open_findings(config_id, yesterday, FindingKind::LocalOnly, &prev_orders)
        .await?;
    state
        .store
        .clear_open_findings(
            config_id,
            yesterday,
            FindingKind::RefundLocalOnly,
            &prev_refunds,
        )
        .await?;

    fees.finish().await?;

    let t = &matcher.totals;
    tracing::info!(config_id = %config_id, %day, lines = t.lines, matched = t.matched, findings = findings.len(), "reconciled");
    mark_done(state, run, t, bills, None).await
}

/// Stores what a run of (config, day) found: the day's statement (one row
/// per app and store) and its findings (keeping resolutions and repairs).
pub(super) async fn save_outcome(
    state: &AppState,
    config: &cashdesk_store::ChannelConfig,
    day: NaiveDate,
    statement: &HashMap<(String, String), Moved>,
    findings: &[NewFinding],
) -> ServiceResult<()> {
    let rows: Vec<StatementRow> = statement
        .iter()
        .map(|((app, store), m)| StatementRow {
            config_id: config.config_id.clone(),
            bill_date: day,
            app_id: app.clone(),
            store_id: store.clone(),
            channel_type: config.channel_type.as_str().to_owned(),
            payments: m.payments,
            gross: Fen::from_stored(m.gross),
            refunds: m.refunds,
            refunded: Fen::from_stored(m.refunded),
            fees_e5: m.fee_e5,
        })
        .collect();
    state
        .store
        .replace_statement(&config.config_id, day, &rows)
        .await?;
    let token = ulid::Ulid::new().to_string();
    state
        .store
        .save_findings(&config.config_id, day, &token, findings, Utc::now())
        .await?;
    Ok(())
}

/// Ends a run `DONE` with its totals, kept bills and message.
pub(super) async fn mark_done(
    state: &AppState,
    mut run: ReconRun,
    t: &Totals,
    bills: Vec<StoredBill>,
    message: Option<String>,
) -> ServiceResult<ReconRun> {
    run.state = ReconState::Done;
    run.message = message;
    run.bills = bills;
    run.lines = t.lines;
    run.matched = t.matched;
    run.paid_total = Fen::from_stored(t.paid);
    run.refund_total = Fen::from_stored(t.refunded);
    run.fee_total_e5 = t.fee_e5;
    run.finished_at = Some(Utc::now());
    run.next_try_at = None;
    state.store.finish_recon_run(&run).await?;
    Ok(run)
}

/// A task that is aborted when dropped unfinished.
struct Aborting<T>(tokio::task::JoinHandle<T>);

impl<T> Aborting<ServiceResult<T>> {
    async fn finish(mut self) -> ServiceResult<T> {
        (&mut self.0).await.map_err(ServiceError::internal)?
    }
}

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// When a bill that could not be had is asked for again.
fn retry_after() -> Duration {
    Duration::minutes(30)
}

/// Ends a run that could not match its day (`NOT_READY` or `FAILED`),
/// saying why and when it is tried again (`None`: not by itself).
async fn finish_undone(
    state: &AppState,
    mut run: ReconRun,
    st: ReconState,
    msg: String,
    next_try_at: Option<chrono::DateTime<Utc>>,
) -> ServiceResult<ReconRun> {
    if st == ReconState::Failed {
        tracing::warn!(config_id = %run.config_id, day = %run.bill_date, error = %msg, "reconciliation failed");
    }
    run.state = st;
    run.message = Some(msg);
    run.finished_at = Some(Utc::now());
    run.next_try_at = next_try_at;
    state.store.finish_recon_run(&run).await?;
    Ok(run)
}

async fn finish_failed(
    state: &AppState,
    run: ReconRun,
    msg: String,
    next_try_at: Option<chrono::DateTime<Utc>>,
) -> ServiceResult<ReconRun> {
    finish_undone(state, run, ReconState::Failed, msg, next_try_at).await
}

/// The config's own account and every store identity at it (one bill
/// each: a WeChat service provider's sub-merchants, Alipay's authorized
/// merchants), `""` naming the own account.
async fn scopes(
    state: &AppState,
    config_id: &ConfigId,
) -> ServiceResult<Vec<(String, Option<StoreMerchant>)>> {
    let mut out = vec![(String::new(), None)];
    let mut seen = HashSet::new();
    for row in state.store.list_config_identities(config_id).await? {
        if !seen.insert(row.mch_id.clone()) {
            continue;
        }
        let merchant = stores::open_identity(
            state,
            &row.app_id,
            &row.store_id,
            config_id,
            &row.identity_sealed,
        )?;
        out.push((row.mch_id, Some(merchant)));
    }
    Ok(out)
}

type ReadResult = Result<cashdesk_channels::bill::BillSummary, cashdesk_channels::bill::BillError>;

async fn read_blocking(
    data_dir: std::path::PathBuf,
    stored: StoredBill,
    mut matcher: Matcher,
) -> ServiceResult<(Matcher, ReadResult)> {
    tokio::task::spawn_blocking(move || {
        let r = files::read(&data_dir, &stored, |rec| matcher.feed(rec));
        (matcher, r)
    })
    .await
    .map_err(ServiceError::internal)
}

/// The order and refund ids the previous day's kept bills book (only
/// when that day was reconciled: otherwise nothing explains a missing line).
async fn booked_on_previous_day(
    state: &AppState,
    config_id: &ConfigId,
    day: NaiveDate,
) -> ServiceResult<HashSet<String>> {
    let Some(prev) = state
        .store
        .get_recon_run(config_id, day - Duration::days(1))
        .await?
        .filter(|r| r.state == ReconState::Done)
    else {
        return Ok(HashSet::new());
    };
    let data_dir = state.config.data_dir.clone();
    let ids = Arc::new(Mutex::new(HashSet::new()));
    for stored in prev.bills {
        let (dir, sink) = (data_dir.clone(), ids.clone());
        let read = tokio::task::spawn_blocking(move || {
            files::read(&dir, &stored, |rec| {
                let id = rec.out_refund_no.unwrap_or(rec.out_trade_no);
                sink.lock().expect("not poisoned").insert(id);
            })
        })
        .await
        .map_err(ServiceError::internal)?;
        if let Err(e) = read {
            tracing::warn!(config_id = %config_id, error = %e, "the previous day's bill cannot be read");
        }
    }
    let set = std::mem::take(&mut *ids.lock().expect("not poisoned"));
    Ok(set)
}

fn as_recon_order(o: &Order) -> Option<ReconOrder> {
    Some(ReconOrder {
        order_id: o.order_id.clone(),
        app_id: o.app_id.clone(),
        store_id: o.store_id.clone(),
        amount: o.amount,
        state: o.state,
        transaction_id: o.transaction_id.clone(),
        pay_time: o.pay_time?,
    })
}

/// A payment line for an order not paid in the window: paid outside it
/// (compared there), unpaid (`CHANNEL_ONLY`, repaired when the channel
/// confirms) or unknown to cashdesk (`CHANNEL_ONLY`).
async fn place_payment(
    state: &AppState,
    config_id: &ConfigId,
    rec: &BillRecord,
    matcher: &mut Matcher,
) -> ServiceResult<Option<NewFinding>> {
    let order = match OrderId::parse(&rec.out_trade_no) {
        Some(id) => state.store.get_order(&id).await?,
        None => None,
    };
    match &order {
        Some(o) => matcher.book(o.app_id.as_str(), store_of(o.store_id.as_ref()), rec),
        None => matcher.book("", "", rec),
    }
    let totals = &mut matcher.totals;
    let Some(order) = order else {
        return Ok(Some(payment_finding(
            FindingKind::ChannelOnly,
            rec,
            None,
            format!(
                "the channel took {} yuan for out_trade_no {} (transaction {}), which is no cashdesk order",
                rec.amount.to_yuan(),
                rec.out_trade_no,
                rec.transaction_id
            ),
        )));
    };
    if let Some(local) = as_recon_order(&order).filter(|o| o.state.is_paid()) {
        if local.amount == rec.amount {
            totals.matched += 1;
            return Ok(None);
        }
        return Ok(Some(matching::amount_mismatch(rec, &local)));
    }
    let mut f = payment_finding(
        FindingKind::ChannelOnly,
        rec,
        None,
        format!(
            "the channel took {} yuan for order {}, which cashdesk has {}",
            rec.amount.to_yuan(),
            order.order_id,
            order.state
        ),
    );
    f.subject = matching::order_subject(order.order_id.as_str());
    f.local_amount = Some(order.amount);
    f.evidence["local"] = serde_json::json!({"state": order.state, "amount": order.amount.get()});
    let repaired = repair(state, config_id, &order).await;
    match repaired {
        Ok(o) if o.state.is_paid() => {
            f.status = FindingStatus::Repaired;
            f.detail.push_str(&repaired_note(&o));
            totals.matched += 1;
        }
        Ok(o) => f.detail.push_str(&format!(
            "; asked, the channel does not confirm it paid (the order stays {})",
            o.state
        )),
        Err(e) => f
            .detail
            .push_str(&format!("; the channel could not be asked: {e}")),
    }
    Ok(Some(f))
}

/// What a repaired finding's detail says about the order it recorded.
pub(crate) fn repaired_note(o: &Order) -> String {
    format!(
        "; the channel confirmed the payment and cashdesk recorded it (now {}{})",
        o.state,
        if o.paid_after_close {
            ", paid after close"
        } else {
            ""
        }
    )
}

/// Asks the order's channel how it stands and applies what it says, as
/// the poller would.
async fn repair(state: &AppState, config_id: &ConfigId, order: &Order) -> ServiceResult<Order> {
    let Some((oc, adapter)) = payments::order_adapter(state, order).await? else {
        return Err(ServiceError::state_not_allowed(
            "the order never recorded a channel; look it up at the channel by hand",
        ));
    };
    if &oc.config_id != config_id {
        return Err(ServiceError::state_not_allowed(format!(
            "the order is being paid with another config ({})",
            oc.config_id
        )));
    }
    let identity = payments::recorded_identity(state, order)?;
    payments::sync_order(
        state,
        order,
        adapter.as_ref(),
        Some(oc),
        identity.as_ref(),
        Source::Reconciliation,
    )
    .await
}

/// A refund line for a refund not successful in the window.
async fn place_refund(
    state: &AppState,
    rec: &BillRecord,
    matcher: &mut Matcher,
) -> ServiceResult<Option<NewFinding>> {
    let id = rec.out_refund_no.as_deref().unwrap_or_default();
    let refund = match RefundId::parse(id) {
        Some(id) => state.store.get_refund(&id).await?,
        None => None,
    };
    let order = match &refund {
        Some(r) => state.store.get_order(&r.order_id).await?,
        None => None,
    };
    match &order {
        Some(o) => matcher.book(o.app_id.as_str(), store_of(o.store_id.as_ref()), rec),
        None => matcher.book("", "", rec),
    }
    let totals = &mut matcher.totals;
    let Some(refund) = refund else {
        return Ok(Some(refund_finding(
            FindingKind::RefundChannelOnly,
            rec,
            None,
            format!(
                "the channel gave back {} yuan for out_refund_no {id}, which is no cashdesk refund",
                rec.amount.to_yuan()
            ),
        )));
    };
    if refund.state == RefundState::Success && refund.amount == rec.amount {
        totals.matched += 1;
        return Ok(None);
    }
    let (kind, detail) = if refund.state == RefundState::Success {
        (
            FindingKind::RefundAmountMismatch,
            format!(
                "refund {}: the channel gave back {} yuan, cashdesk recorded {} yuan",
                refund.refund_id,
                rec.amount.to_yuan(),
                refund.amount.to_yuan()
            ),
        )
    } else {
        (
            FindingKind::RefundChannelOnly,
            format!(
                "the channel gave back {} yuan for refund {}, which cashdesk has {}{}",
                rec.amount.to_yuan(),
                refund.refund_id,
                refund.state,
                if refund.state == RefundState::Processing {
                    " (the refund poller will ask the channel)"
                } else {
                    ""
                }
            ),
        )
    };
    let mut f = refund_finding(kind, rec, None, detail);
    f.subject = matching::refund_subject(refund.refund_id.as_str());
    f.local_amount = Some(refund.amount);
    f.evidence["local"] = serde_json::json!({"state": refund.state, "amount": refund.amount.get()});
    Ok(Some(f))
}

/// Sets the findings and last-success gauges after a run.
async fn publish_metrics(state: &AppState, run: &ReconRun) {
    if run.state == ReconState::Done
        && let Some(at) = run.finished_at
    {
        state
            .metrics
            .recon_succeeded(run.config_id.as_str(), at.timestamp());
    }
    match state.store.open_findings_by_kind().await {
        Ok(counts) => {
            for kind in FindingKind::ALL {
                let n = counts
                    .iter()
                    .find(|(k, _)| k == kind)
                    .map_or(0, |(_, n)| *n);
                state.metrics.recon_open_findings(kind.as_str(), n);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not count open findings"),
    }
}
