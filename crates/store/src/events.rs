//! The order timeline's own records (`order_events`): each call cashdesk
//! made to a channel about an order or one of its refunds (operation,
//! outcome, latency, a summary of the answer), each channel notification
//! received for them (verified or refused), and each state change they
//! caused. The rest of an order's timeline is already kept elsewhere and
//! is read from there: its creation (the order row), merchant
//! notifications and their attempts (the outbox), refunds (their rows).
//!
//! The table is a log, not a source of truth: nothing decides on it, a
//! failed insert is logged by the caller and the payment goes on. So it
//! is kept small and bounded: a summary is a small JSON object whose text
//! is capped at [`MAX_SUMMARY_BYTES`] (a larger one is stored as
//! `{"truncated": true, "bytes": n}`), a listing is bounded by the page
//! size, and rows older than the retention are deleted in batches by
//! [`OrderEvents::prune_order_events`] (the server's housekeeping job).

use async_trait::async_trait;
use cashdesk_core::{OrderId, RefundId};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::common::{Backend, Sql, SqlStore, page_size};
use crate::rows::{Ts, corrupt, id, json};
use crate::{Result, StoreError};

/// The most bytes of a summary's JSON text the store keeps.
pub const MAX_SUMMARY_BYTES: usize = 2048;

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum OrderEventKind {
    /// cashdesk called the channel (pay, query, close, refund, refund query).
    #[serde(rename = "CHANNEL_CALL")]
    ChannelCall,
    /// The channel notified cashdesk (payment or refund news).
    #[serde(rename = "CHANNEL_NOTIFY")]
    ChannelNotify,
    /// The order or refund changed state (the settlement's transition).
    #[serde(rename = "STATE")]
    State,
}

impl OrderEventKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ChannelCall => "CHANNEL_CALL",
            Self::ChannelNotify => "CHANNEL_NOTIFY",
            Self::State => "STATE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::ChannelCall, Self::ChannelNotify, Self::State]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventOutcome {
    /// The call answered, the notification was acted on, the state changed.
    #[serde(rename = "OK")]
    Ok,
    /// The call failed (the channel refused, was unreachable, answered
    /// something unusable), or acting on a notification failed.
    #[serde(rename = "ERROR")]
    Error,
    /// A notification cashdesk did not accept (another order, amount or
    /// merchant than the order's).
    #[serde(rename = "REFUSED")]
    Refused,
}

impl EventOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Error => "ERROR",
            Self::Refused => "REFUSED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Ok, Self::Error, Self::Refused]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// An event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrderEvent {
    pub order_id: OrderId,
    /// The refund it concerns, if any.
    pub refund_id: Option<RefundId>,
    pub at: DateTime<Utc>,
    pub kind: OrderEventKind,
    /// `pay`, `query`, `close`, `refund`, `refund_query`, `notify`,
    /// `refund_notify`, or a state event's name (`paid`, `expired`, …).
    pub operation: String,
    pub outcome: EventOutcome,
    /// How long the channel took (calls only).
    pub latency_ms: Option<u32>,
    /// A small JSON object: codes, states, amounts, truncated messages.
    pub summary: serde_json::Value,
}

/// A recorded event, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderEventRecord {
    /// Increasing in insertion order (ties of `at` sort by it).
    pub id: i64,
    pub order_id: OrderId,
    pub refund_id: Option<RefundId>,
    pub at: DateTime<Utc>,
    pub kind: OrderEventKind,
    pub operation: String,
    pub outcome: EventOutcome,
    pub latency_ms: Option<u32>,
    pub summary: serde_json::Value,
}

/// The order timeline's records.
#[async_trait]
pub trait OrderEvents: Send + Sync {
    /// Appends one event. Its summary is replaced by
    /// `{"truncated": true, "bytes": n}` when its JSON text is longer than
    /// [`MAX_SUMMARY_BYTES`]. An unknown order (or refund) is
    /// [`StoreError::NotFound`].
    async fn insert_order_event(&self, event: &NewOrderEvent) -> Result<()>;
    /// The order's events (those of its refunds included), oldest first,
    /// at most `limit` (0: the default page, at most 1000): the first
    /// ones, so a long-polled order still shows how it began.
    async fn list_order_events(
        &self,
        order_id: &OrderId,
        limit: u32,
    ) -> Result<Vec<OrderEventRecord>>;
    /// Deletes at most `limit` events recorded before `before`, oldest
    /// first; returns how many (call again while it returns `limit`).
    async fn prune_order_events(&self, before: DateTime<Utc>, limit: u32) -> Result<u64>;
}

const EVENT_COLS: &str =
    "id, order_id, refund_id, at, kind, operation, outcome, latency_ms, summary";

/// The summary's JSON text, capped.
fn summary_text(summary: &serde_json::Value) -> Result<String> {
    let text = serde_json::to_string(summary)
        .map_err(|e| StoreError::Corrupt(format!("order_events.summary: {e}")))?;
    if text.len() <= MAX_SUMMARY_BYTES {
        return Ok(text);
    }
    Ok(serde_json::json!({"truncated": true, "bytes": text.len()}).to_string())
}

#[async_trait]
impl<B: Backend> OrderEvents for SqlStore<B> {
    async fn insert_order_event(&self, e: &NewOrderEvent) -> Result<()> {
        let sql = Sql::new(
            "INSERT INTO order_events (order_id, refund_id, at, kind, operation, outcome, \
             latency_ms, summary) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(e.order_id.as_str())
        .bind(e.refund_id.as_ref().map(RefundId::as_str))
        .bind(e.at)
        .bind(e.kind.as_str())
        .bind(e.operation.as_str())
        .bind(e.outcome.as_str())
        .bind(e.latency_ms.map(i64::from))
        .bind(summary_text(&e.summary)?);
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn list_order_events(
        &self,
        order_id: &OrderId,
        limit: u32,
    ) -> Result<Vec<OrderEventRecord>> {
        let sql = Sql::new(format!(
            "SELECT {EVENT_COLS} FROM order_events WHERE order_id = $1 \
             ORDER BY at, id LIMIT $2"
        ))
        .bind(order_id.as_str())
        .bind(i64::from(page_size(limit)));
        self.all::<RawEvent, _>(sql).await
    }

    async fn prune_order_events(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        // A bounded batch: a first prune after an upgrade or a long
        // outage must not hold the (SQLite) write lock for long.
        let sql = Sql::new(
            "DELETE FROM order_events WHERE id IN \
             (SELECT id FROM order_events WHERE at < $1 ORDER BY id LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(page_size(limit)));
        self.backend.execute(sql).await
    }
}

#[derive(sqlx::FromRow)]
struct RawEvent {
    id: i64,
    order_id: String,
    refund_id: Option<String>,
    at: Ts,
    kind: String,
    operation: String,
    outcome: String,
    latency_ms: Option<i64>,
    summary: String,
}

impl TryFrom<RawEvent> for OrderEventRecord {
    type Error = StoreError;

    fn try_from(r: RawEvent) -> Result<Self, StoreError> {
        Ok(OrderEventRecord {
            id: r.id,
            order_id: id("order_events.order_id", r.order_id, OrderId::parse)?,
            refund_id: r
                .refund_id
                .map(|v| id("order_events.refund_id", v, RefundId::parse))
                .transpose()?,
            at: r.at.0,
            kind: OrderEventKind::parse(&r.kind)
                .ok_or_else(|| corrupt("order_events.kind", &r.kind))?,
            operation: r.operation,
            outcome: EventOutcome::parse(&r.outcome)
                .ok_or_else(|| corrupt("order_events.outcome", &r.outcome))?,
            latency_ms: r
                .latency_ms
                .map(|ms| {
                    u32::try_from(ms)
                        .map_err(|_| corrupt("order_events.latency_ms", &ms.to_string()))
                })
                .transpose()?,
            summary: json("order_events.summary", &r.summary)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_summary_is_replaced_by_a_marker() {
        let small = serde_json::json!({"code": "OK"});
        assert_eq!(summary_text(&small).unwrap(), r#"{"code":"OK"}"#);
        let big = serde_json::json!({"message": "x".repeat(MAX_SUMMARY_BYTES)});
        let text = summary_text(&big).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["truncated"], true);
        assert!(v["bytes"].as_u64().unwrap() > MAX_SUMMARY_BYTES as u64);
    }

    #[test]
    fn kinds_and_outcomes_round_trip() {
        for k in [
            OrderEventKind::ChannelCall,
            OrderEventKind::ChannelNotify,
            OrderEventKind::State,
        ] {
            assert_eq!(OrderEventKind::parse(k.as_str()), Some(k));
        }
        for o in [EventOutcome::Ok, EventOutcome::Error, EventOutcome::Refused] {
            assert_eq!(EventOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(OrderEventKind::parse("state"), None);
    }
}
