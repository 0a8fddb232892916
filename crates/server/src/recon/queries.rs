//! Reconciliation by queries, for a channel that serves no bill file
//! (`Channel::download_bill` answers `NoFile`): Lakala, whose statement
//! files we could not confirm (PROTOCOLS-2 §1.4). Instead of reading the
//! channel's list of the day, the run asks the channel about each of
//! cashdesk's own trades of the day (`tradequery`):
//!
//! - every order of the config paid on the day (China time): the channel
//!   confirms the payment with the same amount (matched), with another
//!   amount (`AMOUNT_MISMATCH`; the adapters refuse such an answer with
//!   a `BadResponse` whose message states both amounts, kept as evidence),
//!   or does not have it paid (`LOCAL_ONLY`, the channel's state in the
//!   detail);
//! - every order of the config created from the day before to the day
//!   after that went to the channel and is still unpaid (`CREATED`,
//!   `PAYING`, `CLOSED`, `FAILED`): a payment the channel confirms is
//!   `CHANNEL_ONLY` and is recorded through the normal paid path
//!   (`PAY_SUCCESS` to the merchant, `paidAfterClose` where it applies),
//!   the finding `REPAIRED`; the window is as wide as the bill matching's,
//!   for payments made across midnight or under skewed clocks;
//! - every successful refund of the day: not a success at the channel →
//!   `REFUND_LOCAL_ONLY`, another amount → `REFUND_AMOUNT_MISMATCH`.
//!
//! All questions are asked before anything is repaired or recorded, at
//! most [`QUERY_CONCURRENCY`] at a time, each with the channel's normal
//! timeouts. One that fails ends the run `FAILED` with nothing recorded
//! (retried at `next_try_at` when the failure is retryable): findings of a
//! half-asked day would read as a complete one.
//!
//! What this cannot do: see a payment cashdesk never created (a trade the
//! channel has under an unknown `out_trade_no`); that needs the channel's
//! statement. The run's message says so.
//!
//! The run's counters keep the bill's meaning: `lines` are the trades the
//! channel confirmed (payments and refunds it says were made), `matched`
//! those that agree with cashdesk, the totals what the channel confirmed;
//! no fees (queries do not state them). The daily statement books the
//! same trades on their order's app and store.

use cashdesk_channels::{BusinessKind, QueryRequest, RefundQueryRequest};
use cashdesk_channels::{Channel, ChannelError, ChannelOrderStatus, RefundOutcome, RefundStatus};
use std::collections::HashMap;

use cashdesk_core::{AppId, Fen, FindingKind, FindingStatus, StoreId};
use cashdesk_store::{ChannelConfig, NewFinding, Order, ReconOrder, ReconRefund, ReconRun};
use chrono::{Duration, NaiveDate, Utc};
use futures::{StreamExt, stream};
use serde_json::{Value, json};

use super::matching::{Moved, Totals, day_start, order_subject, refund_subject, store_of};
use super::{finish_failed, mark_done, repaired_note, retry_after, save_outcome};
use crate::service::error::{ServiceError, ServiceResult};
use crate::service::payments::{self, PaymentIdentity};
use crate::service::stores;
use crate::settlement::Source;
use crate::state::AppState;

/// How many questions are at the channel at once.
pub const QUERY_CONCURRENCY: usize = 8;

/// What the channel said about an order.
enum Answer {
    Status(ChannelOrderStatus),
    /// It has the order paid with another amount (the adapter refused
    /// the answer, with this message).
    AmountDiffers {
        channel: Fen,
        message: String,
    },
}

/// One question and its answer.
enum Asked {
    /// An order cashdesk has paid on the day.
    Paid { local: ReconOrder, answer: Answer },
    /// An order cashdesk has unpaid; its identity for the repair.
    Unpaid {
        order: Box<Order>,
        identity: Option<PaymentIdentity>,
        answer: Answer,
    },
    /// A refund cashdesk has succeeded on the day; `None`: the channel
    /// has no such refund.
    Refund {
        local: ReconRefund,
        answer: Option<RefundStatus>,
    },
}

/// A question the channel did not answer.
struct Unanswered {
    about: String,
    error: ChannelError,
}

/// The run's counters and the daily statement, per (app, store), of the
/// trades the channel confirmed.
#[derive(Debug, Default)]
struct Tally {
    totals: Totals,
    statement: HashMap<(String, String), Moved>,
}

impl Tally {
    fn moved(&mut self, app: &AppId, store: Option<&StoreId>) -> &mut Moved {
        self.statement
            .entry((app.as_str().to_owned(), store_of(store).to_owned()))
            .or_default()
    }

    /// A payment the channel confirmed, of `amount`.
    fn payment(&mut self, app: &AppId, store: Option<&StoreId>, amount: Fen) {
        self.totals.lines += 1;
        self.totals.paid += amount.get();
        let m = self.moved(app, store);
        m.payments += 1;
        m.gross += amount.get();
    }

    /// A refund the channel confirmed, of `amount`.
    fn refund(&mut self, app: &AppId, store: Option<&StoreId>, amount: Fen) {
        self.totals.lines += 1;
        self.totals.refunded += amount.get();
        let m = self.moved(app, store);
        m.refunds += 1;
        m.refunded += amount.get();
    }

    fn matched(&mut self) {
        self.totals.matched += 1;
    }
}

/// Reconciles (config, day) by queries and finishes `run` (called by
/// [`super::run_locked`] when the channel serves no bill file).
pub(super) async fn run(
    state: &AppState,
    run: ReconRun,
    config: &ChannelConfig,
    adapter: &dyn Channel,
    day: NaiveDate,
) -> ServiceResult<ReconRun> {
    let config_id = &config.config_id;
    let (start, end) = (day_start(day), day_start(day + Duration::days(1)));
    // Paid first: an order paid between the two reads is in neither (the
    // next day's run sees it), never in both.
    let mut paid = Vec::new();
    state
        .store
        .recon_orders(config_id, start, end, &mut |o| paid.push(o))
        .await?;
    let unpaid = state
        .store
        .recon_unpaid_sent_orders(
            config_id,
            day_start(day - Duration::days(1)),
            day_start(day + Duration::days(2)),
        )
        .await?;
    let mut refunds = Vec::new();
    state
        .store
        .recon_refunds(config_id, start, end, &mut |r| refunds.push(r))
        .await?;
    let asked_about = format!(
        "{} paid orders, {} unpaid orders and {} refunds",
        paid.len(),
        unpaid.len(),
        refunds.len()
    );

    let answers = match ask_all(state, adapter, paid, unpaid, refunds).await? {
        Ok(a) => a,
        Err(u) => {
            state
                .metrics
                .recon_fetch_failed(config_id.as_str(), "query");
            let retry = u.error.is_retryable();
            let msg = format!(
                "{} serves no bill file and could not be asked about {}: {}; nothing was recorded",
                config.channel_type, u.about, u.error
            );
            return finish_failed(state, run, msg, retry.then(|| Utc::now() + retry_after())).await;
        }
    };

    let mut tally = Tally::default();
    let mut findings = Vec::new();
    for asked in answers {
        let found = match asked {
            Asked::Paid { local, answer } => paid_order(&local, answer, &mut tally),
            Asked::Unpaid {
                order,
                identity,
                answer,
            } => unpaid_order(state, &order, identity.as_ref(), answer, &mut tally).await?,
            Asked::Refund { local, answer } => refund(&local, answer.as_ref(), &mut tally),
        };
        findings.extend(found);
    }

    save_outcome(state, config, day, &tally.statement, &findings).await?;
    let totals = &tally.totals;
    tracing::info!(config_id = %config_id, %day, lines = totals.lines, matched = totals.matched, findings = findings.len(), "reconciled by queries");
    let message = format!(
        "{} serves no bill file: reconciled by asking the channel about {asked_about}; \
         a payment cashdesk never created cannot be seen this way",
        config.channel_type
    );
    mark_done(state, run, totals, Vec::new(), Some(message)).await
}

/// Asks every question, [`QUERY_CONCURRENCY`] at a time; stops at the
/// first the channel does not answer.
async fn ask_all(
    state: &AppState,
    adapter: &dyn Channel,
    paid: Vec<ReconOrder>,
    unpaid: Vec<Order>,
    refunds: Vec<ReconRefund>,
) -> ServiceResult<Result<Vec<Asked>, Unanswered>> {
    enum Question {
        Paid(ReconOrder),
        Unpaid(Box<Order>),
        Refund(ReconRefund),
    }
    let questions = paid
        .into_iter()
        .map(Question::Paid)
        .chain(unpaid.into_iter().map(|o| Question::Unpaid(Box::new(o))))
        .chain(refunds.into_iter().map(Question::Refund));
    let mut answers = stream::iter(questions)
        .map(|q| async move {
            match q {
                Question::Paid(local) => ask_paid(state, adapter, local).await,
                Question::Unpaid(order) => ask_unpaid(state, adapter, order).await,
                Question::Refund(local) => ask_refund(state, adapter, local).await,
            }
        })
        .buffer_unordered(QUERY_CONCURRENCY);
    let mut out = Vec::new();
    while let Some(a) = answers.next().await {
        match a? {
            Ok(asked) => out.push(asked),
            // Dropping the stream cancels the questions still out.
            Err(u) => return Ok(Err(u)),
        }
    }
    Ok(Ok(out))
}

/// An order's query; a refused answer stating two amounts is an answer.
async fn query_order(
    adapter: &dyn Channel,
    order: &Order,
    identity: Option<&PaymentIdentity>,
) -> Result<Answer, Unanswered> {
    let req = QueryRequest {
        order_id: order.order_id.clone(),
        amount: order.amount,
        store: identity.map(|i| i.merchant.clone()),
    };
    match adapter.query(&req).await {
        Ok(status) => Ok(Answer::Status(status)),
        Err(e) => match amount_in_refusal(&e) {
            Some(channel) => Ok(Answer::AmountDiffers {
                channel,
                message: e.to_string(),
            }),
            None => Err(Unanswered {
                about: format!("order {}", order.order_id),
                error: e,
            }),
        },
    }
}

async fn ask_paid(
    state: &AppState,
    adapter: &dyn Channel,
    local: ReconOrder,
) -> ServiceResult<Result<Asked, Unanswered>> {
    let order = state
        .store
        .get_order(&local.order_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("order {}", local.order_id)))?;
    let identity = payments::recorded_identity(state, &order)?;
    Ok(query_order(adapter, &order, identity.as_ref())
        .await
        .map(|answer| Asked::Paid { local, answer }))
}

async fn ask_unpaid(
    state: &AppState,
    adapter: &dyn Channel,
    order: Box<Order>,
) -> ServiceResult<Result<Asked, Unanswered>> {
    let identity = payments::recorded_identity(state, &order)?;
    Ok(query_order(adapter, &order, identity.as_ref())
        .await
        .map(|answer| Asked::Unpaid {
            order,
            identity,
            answer,
        }))
}

async fn ask_refund(
    state: &AppState,
    adapter: &dyn Channel,
    local: ReconRefund,
) -> ServiceResult<Result<Asked, Unanswered>> {
    let order = state
        .store
        .get_order(&local.order_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("order {}", local.order_id)))?;
    let req = RefundQueryRequest {
        order_id: order.order_id.clone(),
        refund_id: local.refund_id.clone(),
        store: stores::order_identity(state, &order)?,
    };
    Ok(match adapter.query_refund(&req).await {
        Ok(status) => Ok(Asked::Refund {
            local,
            answer: Some(status),
        }),
        Err(e) if e.business_kind() == Some(BusinessKind::RefundNotFound) => Ok(Asked::Refund {
            local,
            answer: None,
        }),
        Err(e) => Err(Unanswered {
            about: format!("refund {}", local.refund_id),
            error: e,
        }),
    })
}

/// The channel's amount in an adapter's refusal of a paid answer whose
/// amount is not the order's. Every adapter words it the same way:
/// "…: paid amount {channel} fen differs from the order amount {order} fen".
/// A refusal worded otherwise is not misread: it fails the run.
fn amount_in_refusal(e: &ChannelError) -> Option<Fen> {
    let ChannelError::BadResponse { message } = e else {
        return None;
    };
    let (_, rest) = message.split_once("paid amount ")?;
    let (amount, rest) = rest.split_once(" fen differs from the order amount ")?;
    rest.ends_with(" fen").then_some(())?;
    Fen::parse_positive("amount", amount.parse::<i64>().ok()?).ok()
}

fn status_evidence(status: &ChannelOrderStatus) -> Value {
    match status {
        ChannelOrderStatus::Paid(p) | ChannelOrderStatus::Refunded(p) => json!({
            "state": if matches!(status, ChannelOrderStatus::Paid(_)) { "PAID" } else { "REFUNDED" },
            "transactionId": p.transaction_id,
            "payTime": p.pay_time,
            "amount": p.amount.get(),
        }),
        ChannelOrderStatus::NotPaid => json!({"state": "NOT_PAID"}),
        ChannelOrderStatus::Paying => json!({"state": "PAYING"}),
        ChannelOrderStatus::Closed => json!({"state": "CLOSED"}),
        ChannelOrderStatus::Failed { code, message } => {
            json!({"state": "FAILED", "code": code, "message": message})
        }
        ChannelOrderStatus::NotFound => json!({"state": "NOT_FOUND"}),
        ChannelOrderStatus::Unknown { state } => json!({"state": "UNKNOWN", "channelState": state}),
    }
}

/// How an answer that is not a payment reads in a finding.
fn status_words(status: &ChannelOrderStatus) -> String {
    match status {
        ChannelOrderStatus::Paid(_) | ChannelOrderStatus::Refunded(_) => "paid".to_owned(),
        ChannelOrderStatus::NotPaid => "not paid".to_owned(),
        ChannelOrderStatus::Paying => "still being paid".to_owned(),
        ChannelOrderStatus::Closed => "closed".to_owned(),
        ChannelOrderStatus::Failed { code, message } => format!("failed ({code}: {message})"),
        ChannelOrderStatus::NotFound => "unknown to it".to_owned(),
        ChannelOrderStatus::Unknown { state } => {
            format!("in a state cashdesk does not know ({state})")
        }
    }
}

fn recon_order_evidence(o: &ReconOrder) -> Value {
    json!({"state": o.state, "amount": o.amount.get(), "payTime": o.pay_time, "transactionId": o.transaction_id, "appId": o.app_id, "storeId": o.store_id})
}

fn order_evidence(o: &Order) -> Value {
    json!({"state": o.state, "amount": o.amount.get(), "createdAt": o.created_at, "payTime": o.pay_time, "transactionId": o.transaction_id, "appId": o.app_id, "storeId": o.store_id})
}

fn order_finding(
    kind: FindingKind,
    order_id: &str,
    channel_amount: Option<Fen>,
    local_amount: Fen,
    detail: String,
    evidence: Value,
) -> NewFinding {
    NewFinding {
        kind,
        subject: order_subject(order_id),
        status: FindingStatus::Open,
        order_id: Some(order_id.to_owned()),
        refund_id: None,
        channel_amount,
        local_amount: Some(local_amount),
        detail,
        evidence,
    }
}

/// An order cashdesk has paid on the day, against the channel's answer.
fn paid_order(local: &ReconOrder, answer: Answer, tally: &mut Tally) -> Option<NewFinding> {
    let id = local.order_id.as_str();
    let status = match answer {
        Answer::AmountDiffers { channel, message } => {
            tally.payment(&local.app_id, local.store_id.as_ref(), channel);
            return Some(order_finding(
                FindingKind::AmountMismatch,
                id,
                Some(channel),
                local.amount,
                format!(
                    "order {id}: the channel took {} yuan, cashdesk recorded {} yuan",
                    channel.to_yuan(),
                    local.amount.to_yuan()
                ),
                json!({"query": {"state": "PAID", "amount": channel.get(), "refusal": message}, "local": recon_order_evidence(local)}),
            ));
        }
        Answer::Status(s) => s,
    };
    let evidence = json!({"query": status_evidence(&status), "local": recon_order_evidence(local)});
    let (ChannelOrderStatus::Paid(p) | ChannelOrderStatus::Refunded(p)) = &status else {
        return Some(order_finding(
            FindingKind::LocalOnly,
            id,
            None,
            local.amount,
            format!(
                "cashdesk has order {id} paid ({} yuan, transaction {}); asked, the channel says it is {}",
                local.amount.to_yuan(),
                local.transaction_id.as_deref().unwrap_or("-"),
                status_words(&status)
            ),
            evidence,
        ));
    };
    tally.payment(&local.app_id, local.store_id.as_ref(), p.amount);
    if p.amount != local.amount {
        // Adapters refuse such answers; one that does not is compared here.
        return Some(order_finding(
            FindingKind::AmountMismatch,
            id,
            Some(p.amount),
            local.amount,
            format!(
                "order {id}: the channel took {} yuan, cashdesk recorded {} yuan",
                p.amount.to_yuan(),
                local.amount.to_yuan()
            ),
            evidence,
        ));
    }
    if let Some(recorded) = local.transaction_id.as_deref()
        && recorded != p.transaction_id
    {
        return Some(order_finding(
            FindingKind::StateMismatch,
            id,
            Some(p.amount),
            local.amount,
            format!(
                "order {id}: the channel's payment is transaction {}, cashdesk recorded transaction {recorded}",
                p.transaction_id
            ),
            evidence,
        ));
    }
    tally.matched();
    None
}

/// An order cashdesk has unpaid: a payment the channel confirms is
/// `CHANNEL_ONLY`, recorded through the normal paid path when it can be.
async fn unpaid_order(
    state: &AppState,
    order: &Order,
    identity: Option<&PaymentIdentity>,
    answer: Answer,
    tally: &mut Tally,
) -> ServiceResult<Option<NewFinding>> {
    let id = order.order_id.as_str();
    let status = match answer {
        Answer::AmountDiffers { channel, message } => {
            tally.payment(&order.app_id, order.store_id.as_ref(), channel);
            return Ok(Some(order_finding(
                FindingKind::ChannelOnly,
                id,
                Some(channel),
                order.amount,
                format!(
                    "the channel took {} yuan for order {id}, which cashdesk has {} for {} yuan; not recorded, the amounts differ",
                    channel.to_yuan(),
                    order.state,
                    order.amount.to_yuan()
                ),
                json!({"query": {"state": "PAID", "amount": channel.get(), "refusal": message}, "local": order_evidence(order)}),
            )));
        }
        Answer::Status(s) => s,
    };
    let (ChannelOrderStatus::Paid(p) | ChannelOrderStatus::Refunded(p)) = &status else {
        // Unpaid on both sides: nothing to reconcile (the poller and
        // the expiry job keep the order's own state).
        return Ok(None);
    };
    tally.payment(&order.app_id, order.store_id.as_ref(), p.amount);
    let mut f = order_finding(
        FindingKind::ChannelOnly,
        id,
        Some(p.amount),
        order.amount,
        format!(
            "the channel took {} yuan for order {id} (transaction {}), which cashdesk has {}",
            p.amount.to_yuan(),
            p.transaction_id,
            order.state
        ),
        json!({"query": status_evidence(&status), "local": order_evidence(order)}),
    );
    let repaired = payments::apply_channel_status(
        state,
        order,
        &status,
        order.channel.clone(),
        identity,
        Source::Reconciliation,
    )
    .await;
    match repaired {
        Ok(o) if o.state.is_paid() => {
            f.status = FindingStatus::Repaired;
            f.detail.push_str(&repaired_note(&o));
            tally.matched();
        }
        Ok(o) => f.detail.push_str(&format!(
            "; cashdesk could not record it (the order is {})",
            o.state
        )),
        Err(e) => {
            tracing::warn!(order_id = %order.order_id, error = %e, "reconciliation could not record a payment the channel confirmed");
            f.detail
                .push_str(&format!("; cashdesk could not record it: {e}"));
        }
    }
    if matches!(status, ChannelOrderStatus::Refunded(_)) {
        f.detail
            .push_str("; the channel also reports refunds of it, which cashdesk does not have");
    }
    Ok(Some(f))
}

fn outcome_words(o: RefundOutcome) -> &'static str {
    match o {
        RefundOutcome::Success => "succeeded",
        RefundOutcome::Processing => "still processing (or unknown to it)",
        RefundOutcome::Closed => "closed without money moving",
        RefundOutcome::Abnormal => "abnormal (it needs handling at the channel)",
    }
}

/// A refund cashdesk has succeeded on the day, against the channel's answer.
fn refund(
    local: &ReconRefund,
    answer: Option<&RefundStatus>,
    tally: &mut Tally,
) -> Option<NewFinding> {
    let local_ev = json!({"state": local.state, "amount": local.amount.get(), "finishedAt": local.finished_at, "channelRefundId": local.channel_refund_id, "appId": local.app_id, "storeId": local.store_id});
    let query_ev = answer.map(|s| {
        json!({"outcome": format!("{:?}", s.outcome).to_ascii_uppercase(), "channelRefundId": s.channel_refund_id, "amount": s.refund_amount.map(Fen::get), "successTime": s.success_time})
    });
    let finding = |kind, channel_amount, detail| NewFinding {
        kind,
        subject: refund_subject(local.refund_id.as_str()),
        status: FindingStatus::Open,
        order_id: Some(local.order_id.as_str().to_owned()),
        refund_id: Some(local.refund_id.as_str().to_owned()),
        channel_amount,
        local_amount: Some(local.amount),
        detail,
        evidence: json!({"query": query_ev, "local": local_ev}),
    };
    let Some(status) = answer.filter(|s| s.outcome == RefundOutcome::Success) else {
        let said = answer.map_or("it has no such refund", |s| outcome_words(s.outcome));
        return Some(finding(
            FindingKind::RefundLocalOnly,
            None,
            format!(
                "cashdesk has refund {} of order {} succeeded ({} yuan); asked, the channel says {said}",
                local.refund_id,
                local.order_id,
                local.amount.to_yuan()
            ),
        ));
    };
    // A success without an amount is taken at cashdesk's amount.
    let channel = status.refund_amount.unwrap_or(local.amount);
    tally.refund(&local.app_id, local.store_id.as_ref(), channel);
    if channel != local.amount {
        return Some(finding(
            FindingKind::RefundAmountMismatch,
            Some(channel),
            format!(
                "refund {}: the channel gave back {} yuan, cashdesk recorded {} yuan",
                local.refund_id,
                channel.to_yuan(),
                local.amount.to_yuan()
            ),
        ));
    }
    tally.matched();
    None
}

#[cfg(test)]
mod tests;
