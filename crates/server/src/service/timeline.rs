//! Recording the order timeline (`order_events`, see
//! `cashdesk_store::OrderEvents`): one place per kind of event, so no
//! call site can forget one.
//!
//! - **Channel calls**: every adapter the server uses is wrapped in
//!   [`Recorded`] when it is built ([`crate::channel_cache::adapter`]), so
//!   every pay, query, close, refund and refund query — from the merchant
//!   API, the cashier page, the poller, the expiry job, notifications'
//!   follow-ups or reconciliation by queries — is recorded with its
//!   latency and a summary of its answer. Calls that concern no order
//!   (bill downloads, OAuth) are passed through unrecorded.
//! - **Channel notifications**: [`record_notification`], called once by
//!   [`super::notify`] for every notification that verified and named an
//!   order of ours (payment and refund news alike), with what was done
//!   with it (`REFUSED` when it did not match the order). A notification
//!   that fails verification cannot be trusted to name an order, so it is
//!   only logged and counted, as before.
//! - **State changes**: [`record_order_state`] and
//!   [`record_refund_state`], called by the settlement's one door
//!   ([`crate::settlement`]) after each transition it made.
//!
//! Recording never fails nor slows the payment path: the event's time is
//! taken when it happens (a call's start, a notification's arrival, a
//! transition's commit time), and it is written by a background task, so
//! a reader sees it a moment later; a failed write is logged (`order
//! event not recorded`) and dropped. (Were it awaited, every payment,
//! notification and transition would wait for one more insert before it
//! answers and counts its metrics.)
//!
//! Summaries are small and hold no secret: channel codes, states,
//! amounts, ids the order detail shows anyway, whether a payer id was
//! given (never the id), and messages cut at [`MAX_TEXT`] characters —
//! never a signature, a key, a payer's id or address, or a whole body.
//!
//! Retention: the housekeeping worker deletes events older than
//! [`RETENTION_DAYS`] days ([`prune`]).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use cashdesk_channels::bill::{BillDownload, BillRequest};
use cashdesk_channels::{
    Channel, ChannelError, ChannelOrderStatus, CloseRequest, IncomingNotification,
    NotificationReply, NotifiedMerchant, NotifyError, PaidInfo, PayRequest, PayResponse,
    PayerOAuth, PaymentResult, QueryRequest, RefundOutcome, RefundQueryRequest, RefundRequest,
    RefundStatus, StoreMerchant, VerifiedNotification,
};
use cashdesk_core::{ChannelType, OrderId, RefundId};
use cashdesk_store::{EventOutcome, NewOrderEvent, Order, OrderEventKind, Refund, Store};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::state::AppState;

/// The most characters of a message (a channel's error text) kept.
pub const MAX_TEXT: usize = 200;

/// How long events are kept.
pub const RETENTION_DAYS: i64 = 180;

/// `s` cut to [`MAX_TEXT`] characters (an ellipsis marks the cut).
fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        None => s.to_owned(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}

/// Writes `event` in the background; a failure is logged, never returned.
fn record(store: &Arc<dyn Store>, event: NewOrderEvent) {
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.insert_order_event(&event).await {
            tracing::warn!(order_id = %event.order_id, operation = %event.operation, error = %e, "order event not recorded");
        }
    });
}

/// Deletes the events older than [`RETENTION_DAYS`] (in batches; the
/// housekeeping job calls it every minute, so a backlog drains over a
/// few runs without holding the write lock long).
pub async fn prune(store: &dyn Store, now: DateTime<Utc>) {
    const BATCH: u32 = 1000;
    let before = now - chrono::Duration::days(RETENTION_DAYS);
    for _ in 0..10 {
        match store.prune_order_events(before, BATCH).await {
            Ok(n) if n < u64::from(BATCH) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "order event prune failed");
                return;
            }
        }
    }
}

// --- channel calls ---

/// An adapter whose order calls are recorded. Every method of
/// [`Channel`] is forwarded, the provided ones too (a default left in
/// place would replace the adapter's own); a method added to the trait
/// must be added here.
pub struct Recorded {
    inner: Arc<dyn Channel>,
    store: Arc<dyn Store>,
}

/// Wraps `inner` so its order calls land in the timeline.
pub fn recorded(inner: Arc<dyn Channel>, store: Arc<dyn Store>) -> Arc<dyn Channel> {
    Arc::new(Recorded { inner, store })
}

impl fmt::Debug for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorded")
            .field("inner", &self.inner)
            .finish()
    }
}

/// One recorded call.
struct Call<'a> {
    order_id: &'a OrderId,
    refund_id: Option<&'a RefundId>,
    operation: &'static str,
    request: Value,
}

impl Recorded {
    async fn call<T>(
        &self,
        call: Call<'_>,
        answer: impl Fn(&T) -> Value,
        run: impl Future<Output = Result<T, ChannelError>>,
    ) -> Result<T, ChannelError> {
        let at = Utc::now();
        let started = Instant::now();
        let result = run.await;
        let latency_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        let (outcome, answer) = match &result {
            Ok(v) => (EventOutcome::Ok, answer(v)),
            Err(e) => (EventOutcome::Error, error_summary(e)),
        };
        let event = NewOrderEvent {
            order_id: call.order_id.clone(),
            refund_id: call.refund_id.cloned(),
            at,
            kind: OrderEventKind::ChannelCall,
            operation: call.operation.to_owned(),
            outcome,
            latency_ms: Some(latency_ms),
            summary: json!({
                "channel": self.inner.channel_type().as_str(),
                "request": call.request,
                "answer": answer,
            }),
        };
        record(&self.store, event);
        result
    }
}

fn store_of(store: Option<&StoreMerchant>) -> Value {
    store.map_or(Value::Null, |s| Value::String(cut(&s.store_id)))
}

/// A failed call: its class, the channel's code and message (cut).
pub fn error_summary(e: &ChannelError) -> Value {
    match e {
        ChannelError::Business {
            kind,
            code,
            message,
        } => {
            json!({"error": "business", "kind": format!("{kind:?}"), "code": cut(code), "message": cut(message)})
        }
        ChannelError::Retryable { code, message } => {
            json!({"error": "retryable", "code": code.as_deref().map(cut), "message": cut(message)})
        }
        ChannelError::BadResponse { message } => {
            json!({"error": "bad_response", "message": cut(message)})
        }
        ChannelError::Config { message } => json!({"error": "config", "message": cut(message)}),
        ChannelError::InvalidRequest { field, message } => {
            json!({"error": "invalid_request", "field": field, "message": cut(message)})
        }
    }
}

fn paid_summary(status: &str, p: &PaidInfo) -> Value {
    json!({
        "status": status,
        "transactionId": cut(&p.transaction_id),
        "amount": p.amount.get(),
        "payTime": p.pay_time,
    })
}

/// A query's answer.
pub fn order_status_summary(s: &ChannelOrderStatus) -> Value {
    match s {
        ChannelOrderStatus::Paid(p) => paid_summary("PAID", p),
        ChannelOrderStatus::Refunded(p) => paid_summary("REFUNDED", p),
        ChannelOrderStatus::NotPaid => json!({"status": "NOT_PAID"}),
        ChannelOrderStatus::Paying => json!({"status": "PAYING"}),
        ChannelOrderStatus::Closed => json!({"status": "CLOSED"}),
        ChannelOrderStatus::Failed { code, message } => {
            json!({"status": "FAILED", "code": cut(code), "message": cut(message)})
        }
        ChannelOrderStatus::NotFound => json!({"status": "NOT_FOUND"}),
        ChannelOrderStatus::Unknown { state } => json!({"status": "UNKNOWN", "state": cut(state)}),
    }
}

fn refund_outcome(o: RefundOutcome) -> &'static str {
    match o {
        RefundOutcome::Success => "SUCCESS",
        RefundOutcome::Processing => "PROCESSING",
        RefundOutcome::Closed => "CLOSED",
        RefundOutcome::Abnormal => "ABNORMAL",
    }
}

/// A refund's answer.
pub fn refund_status_summary(s: &RefundStatus) -> Value {
    json!({
        "outcome": refund_outcome(s.outcome),
        "channelRefundId": s.channel_refund_id.as_deref().map(cut),
        "refundAmount": s.refund_amount.map(|a| a.get()),
        "successTime": s.success_time,
    })
}

#[async_trait]
impl Channel for Recorded {
    fn channel_type(&self) -> ChannelType {
        self.inner.channel_type()
    }
    fn api_version(&self) -> &'static str {
        self.inner.api_version()
    }
    fn mch_id(&self) -> &str {
        self.inner.mch_id()
    }
    fn meta(&self) -> &'static cashdesk_channels::ChannelMeta {
        self.inner.meta()
    }
    fn payer_oauth(&self) -> Option<Arc<dyn PayerOAuth>> {
        self.inner.payer_oauth()
    }

    async fn create_payment(&self, req: &PayRequest) -> Result<PayResponse, ChannelError> {
        let call = Call {
            order_id: &req.order_id,
            refund_id: None,
            operation: "pay",
            request: json!({
                "scene": req.scene.as_str(),
                "amount": req.amount.get(),
                "payerId": req.payer_id.is_some(),
                "store": store_of(req.store.as_ref()),
            }),
        };
        let answer = |r: &PayResponse| json!({"prepayId": r.prepay_id.is_some()});
        self.call(call, answer, self.inner.create_payment(req))
            .await
    }

    async fn query(&self, req: &QueryRequest) -> Result<ChannelOrderStatus, ChannelError> {
        let call = Call {
            order_id: &req.order_id,
            refund_id: None,
            operation: "query",
            request: json!({"amount": req.amount.get(), "store": store_of(req.store.as_ref())}),
        };
        self.call(call, order_status_summary, self.inner.query(req))
            .await
    }

    async fn close(&self, req: &CloseRequest) -> Result<(), ChannelError> {
        let call = Call {
            order_id: &req.order_id,
            refund_id: None,
            operation: "close",
            request: json!({"store": store_of(req.store.as_ref())}),
        };
        self.call(call, |_| json!({"closed": true}), self.inner.close(req))
            .await
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStatus, ChannelError> {
        let call = Call {
            order_id: &req.order_id,
            refund_id: Some(&req.refund_id),
            operation: "refund",
            request: json!({
                "orderAmount": req.order_amount.get(),
                "refundAmount": req.refund_amount.get(),
                "store": store_of(req.store.as_ref()),
            }),
        };
        self.call(call, refund_status_summary, self.inner.refund(req))
            .await
    }

    async fn query_refund(&self, req: &RefundQueryRequest) -> Result<RefundStatus, ChannelError> {
        let call = Call {
            order_id: &req.order_id,
            refund_id: Some(&req.refund_id),
            operation: "refund_query",
            request: json!({"store": store_of(req.store.as_ref())}),
        };
        self.call(call, refund_status_summary, self.inner.query_refund(req))
            .await
    }

    fn parse_notification(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError> {
        self.inner.parse_notification(n)
    }

    fn notification_reply(&self, ok: bool) -> NotificationReply {
        self.inner.notification_reply(ok)
    }

    async fn download_bill(
        &self,
        req: &BillRequest,
        sink: &mut (dyn std::io::Write + Send),
    ) -> Result<BillDownload, ChannelError> {
        self.inner.download_bill(req, sink).await
    }

    fn check_merchant(
        &self,
        notified: &NotifiedMerchant,
        store: Option<&StoreMerchant>,
    ) -> Result<(), NotifyError> {
        self.inner.check_merchant(notified, store)
    }
}

// --- channel notifications ---

/// The order (and refund) a verified notification names, and what it
/// says; `None` when it names nothing of ours.
pub fn notification_subject(
    v: &VerifiedNotification,
) -> Option<(OrderId, Option<RefundId>, &'static str, Value)> {
    match v {
        VerifiedNotification::Payment(p) => {
            let said = match &p.result {
                PaymentResult::Paid(paid) => json!({
                    "result": "PAID",
                    "transactionId": cut(&paid.transaction_id),
                    "amount": paid.amount.get(),
                    "payTime": paid.pay_time,
                }),
                PaymentResult::Failed { code, message } => {
                    json!({"result": "FAILED", "code": cut(code), "message": cut(message)})
                }
                PaymentResult::Closed => json!({"result": "CLOSED"}),
            };
            Some((p.order_id()?, None, "notify", said))
        }
        VerifiedNotification::Refund(r) => {
            let said = json!({
                "outcome": refund_outcome(r.outcome),
                "channelRefundId": r.channel_refund_id.as_deref().map(cut),
                "refundAmount": r.refund_amount.get(),
                "successTime": r.success_time,
            });
            let order = OrderId::parse(&r.out_trade_no)?;
            Some((order, r.refund_id(), "refund_notify", said))
        }
        VerifiedNotification::Other { .. } => None,
    }
}

/// Records a verified notification about `subject`, received at
/// `received`, and what came of it:
/// `result` is the label the notification metric counts (`applied`,
/// `duplicate`, `mismatch`, …), `Err` when acting on it failed. A
/// notification naming an order cashdesk does not have is not recorded
/// (there is no order to hang it on).
pub fn record_notification(
    state: &AppState,
    received: DateTime<Utc>,
    subject: Option<(OrderId, Option<RefundId>, &'static str, Value)>,
    result: Result<&'static str, String>,
) {
    let Some((order_id, refund_id, operation, said)) = subject else {
        return;
    };
    let (outcome, label) = match &result {
        Ok("unknown_order" | "unknown_refund") => return,
        Ok(label @ "mismatch") => (EventOutcome::Refused, *label),
        Ok(label) => (EventOutcome::Ok, *label),
        Err(_) => (EventOutcome::Error, "error"),
    };
    let event = NewOrderEvent {
        order_id,
        refund_id,
        at: received,
        kind: OrderEventKind::ChannelNotify,
        operation: operation.to_owned(),
        outcome,
        latency_ms: None,
        summary: json!({
            "notified": said,
            "result": label,
            "error": result.err().map(|e| cut(&e)),
        }),
    };
    record(&state.store, event);
}

// --- state changes ---

/// Records the transition `before → after` the settlement made for
/// `event` (its name), reported by `source`.
pub fn record_order_state(
    state: &AppState,
    before: &Order,
    after: &Order,
    event: &'static str,
    source: &'static str,
) {
    let mut summary = json!({
        "from": before.state.as_str(),
        "to": after.state.as_str(),
        "source": source,
    });
    if let Some(c) = after.channel.as_ref().filter(|_| before.channel.is_none()) {
        summary["channel"] = json!({
            "channelId": c.channel_id.as_str(),
            "channelType": c.channel_type.as_str(),
            "scene": c.scene_code.as_str(),
        });
    }
    if after.transaction_id != before.transaction_id {
        summary["transactionId"] = json!(after.transaction_id.as_deref().map(cut));
    }
    if after.result_error_code != before.result_error_code {
        summary["errorCode"] = json!(after.result_error_code.as_deref().map(cut));
        summary["errorMsg"] = json!(after.result_error_msg.as_deref().map(cut));
    }
    if after.paid_after_close {
        summary["paidAfterClose"] = json!(true);
    }
    let event = NewOrderEvent {
        order_id: after.order_id.clone(),
        refund_id: None,
        at: after.updated_at,
        kind: OrderEventKind::State,
        operation: event.to_owned(),
        outcome: EventOutcome::Ok,
        latency_ms: None,
        summary,
    };
    record(&state.store, event);
}

/// Records a refund's transition `before → after`, reported by `source`.
pub fn record_refund_state(
    state: &AppState,
    before: &Refund,
    after: &Refund,
    source: &'static str,
) {
    let mut summary = json!({
        "from": before.state.as_str(),
        "to": after.state.as_str(),
        "amount": after.amount.get(),
        "source": source,
    });
    if after.channel_refund_id != before.channel_refund_id {
        summary["channelRefundId"] = json!(after.channel_refund_id.as_deref().map(cut));
    }
    if after.error_code != before.error_code {
        summary["errorCode"] = json!(after.error_code.as_deref().map(cut));
        summary["errorMsg"] = json!(after.error_msg.as_deref().map(cut));
    }
    let event = NewOrderEvent {
        order_id: after.order_id.clone(),
        refund_id: Some(after.refund_id.clone()),
        at: after.updated_at,
        kind: OrderEventKind::State,
        operation: format!("refund_{}", after.state.as_str().to_ascii_lowercase()),
        outcome: EventOutcome::Ok,
        latency_ms: None,
        summary,
    };
    record(&state.store, event);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cashdesk_channels::BusinessKind;

    #[test]
    fn long_messages_are_cut_on_a_character() {
        assert_eq!(cut("short"), "short");
        let long = "支".repeat(MAX_TEXT + 5);
        let c = cut(&long);
        assert_eq!(c.chars().count(), MAX_TEXT + 1);
        assert!(c.ends_with('…'));
    }

    #[test]
    fn errors_keep_the_channel_code_and_a_cut_message() {
        let e = ChannelError::business(BusinessKind::OrderClosed, "ORDERCLOSED", "x".repeat(500));
        let s = error_summary(&e);
        assert_eq!(s["error"], "business");
        assert_eq!(s["kind"], "OrderClosed");
        assert_eq!(s["code"], "ORDERCLOSED");
        assert_eq!(s["message"].as_str().unwrap().chars().count(), MAX_TEXT + 1);
    }
}
