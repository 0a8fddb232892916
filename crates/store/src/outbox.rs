//! The outbox: merchant notifications, written in the transaction of the
//! state change they report ([`insert_notification`]), claimed with leases
//! by the delivery workers of every instance, with a log of every delivery
//! attempt.

use async_trait::async_trait;
use cashdesk_core::{NotifyId, RefundId};
use chrono::{DateTime, Duration, Utc};

use crate::common::{Backend, Sql, SqlStore, Tx, page_size, state_literal, tx_one};
use crate::rows::{
    ATTEMPT_COLS, NOTIFY_COLS, OUTCOME_DELIVERED, OUTCOME_FAILED, OUTCOME_RETRY, RawAttempt,
    RawNotification,
};
use crate::{
    AttemptOutcome, NewAttempt, NewNotification, Notification, NotificationAttempt,
    NotificationFilter, NotificationState, RESPONSE_EXCERPT_MAX, Result, StoreError,
};

/// Merchant notifications (the outbox) and their delivery attempts.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Lease up to `limit` due notifications to `owner` until `now +
    /// lease`. Due: PENDING, `next_attempt_at <= now`, and no live lease
    /// (none, or `lease_until <= now`: the lease of a dead worker is taken
    /// over). One statement: PostgreSQL `FOR UPDATE SKIP LOCKED`, so
    /// concurrent claimers on any number of instances get disjoint rows;
    /// SQLite runs it under its single write lock. Oldest due first;
    /// `limit` 0 means 100, at most 1000. `owner` must identify one worker of one process (e.g.
    /// `host:pid:uuid`): the lease checks compare it.
    async fn claim_due_notifications(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Notification>>;
    /// Record a delivery attempt and its outcome, if `owner` still holds
    /// the lease (it claimed the notification and nobody took it over or
    /// resent it since); `false` and nothing written otherwise. When it
    /// applies, in one transaction: the attempt is logged (excerpt cut to
    /// [`RESPONSE_EXCERPT_MAX`] bytes), `attempts` incremented,
    /// `last_error` set to `attempt.error`, the lease released, and the
    /// state set by `outcome`: `Delivered` → DELIVERED (`delivered_at =
    /// attempt.at`), `RetryAt(t)` → PENDING due at `t`, `Failed` → FAILED.
    async fn record_notification_attempt(
        &self,
        notify_id: &NotifyId,
        owner: &str,
        attempt: &NewAttempt,
        outcome: AttemptOutcome,
    ) -> Result<bool>;
    async fn get_notification(&self, notify_id: &NotifyId) -> Result<Option<Notification>>;
    /// Newest first.
    async fn list_notifications(&self, filter: &NotificationFilter) -> Result<Vec<Notification>>;
    /// Oldest first.
    async fn list_notification_attempts(
        &self,
        notify_id: &NotifyId,
    ) -> Result<Vec<NotificationAttempt>>;
    /// An operator's resend: whatever its state, the notification becomes
    /// PENDING and due at `now`, with the same `notify_id`, its attempts
    /// count and history kept. A live lease (`lease_until > now`) is kept:
    /// its holder may be sending it this moment, so nobody else claims it
    /// until the holder records its attempt (whose outcome then applies)
    /// or the lease runs out; an expired lease is dropped. `None` if no
    /// such notification.
    async fn resend_notification(
        &self,
        notify_id: &NotifyId,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>>;
}

/// Write an outbox row inside the caller's transaction, due at `now`.
pub(crate) async fn insert_notification<X: Tx>(
    tx: &mut X,
    n: &NewNotification,
    now: DateTime<Utc>,
) -> Result<Notification> {
    let sql = Sql::new(format!(
        "INSERT INTO notifications (notify_id, app_id, order_id, refund_id, notify_type, url, \
         body, state, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9) RETURNING {NOTIFY_COLS}"
    ))
    .bind(n.notify_id.as_str())
    .bind(n.app_id.as_str())
    .bind(n.order_id.as_str())
    .bind(n.refund_id.as_ref().map(RefundId::as_str))
    .bind(n.notify_type.as_str())
    .bind(n.url.as_str())
    .bind(n.body.as_str())
    .bind(NotificationState::Pending.as_str())
    .bind(now);
    tx_one::<X, RawNotification, Notification>(tx, sql)
        .await?
        .ok_or_else(|| {
            StoreError::Conflict(format!("notification {} was not inserted", n.notify_id))
        })
}

/// Cut a reply excerpt to at most [`RESPONSE_EXCERPT_MAX`] bytes, at a
/// character boundary.
fn excerpt(s: &str) -> &str {
    if s.len() <= RESPONSE_EXCERPT_MAX {
        return s;
    }
    let mut end = RESPONSE_EXCERPT_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[async_trait]
impl<B: Backend> Outbox for SqlStore<B> {
    async fn claim_due_notifications(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let due = format!(
            "state = {} AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3)",
            state_literal(NotificationState::Pending.as_str())
        );
        let sql = Sql::new(format!(
            "WITH picked AS MATERIALIZED (SELECT notify_id FROM notifications WHERE {due} \
             ORDER BY next_attempt_at, notify_id LIMIT $4{}) \
             UPDATE notifications SET lease_owner = $1, lease_until = $2 \
             WHERE notify_id IN (SELECT notify_id FROM picked) AND {due} \
             RETURNING {NOTIFY_COLS}",
            self.backend.skip_locked()
        ))
        .bind(owner)
        .bind(now + lease)
        .bind(now)
        .bind(i64::from(page_size(limit)));
        let mut claimed: Vec<Notification> = self.all::<RawNotification, _>(sql).await?;
        claimed.sort_by(|a, b| {
            (a.next_attempt_at, &a.notify_id).cmp(&(b.next_attempt_at, &b.notify_id))
        });
        Ok(claimed)
    }

    async fn record_notification_attempt(
        &self,
        notify_id: &NotifyId,
        owner: &str,
        attempt: &NewAttempt,
        outcome: AttemptOutcome,
    ) -> Result<bool> {
        let (state, next_at, delivered_at, label, retry_at) = match outcome {
            AttemptOutcome::Delivered => (
                NotificationState::Delivered,
                None,
                Some(attempt.at),
                OUTCOME_DELIVERED,
                None,
            ),
            AttemptOutcome::RetryAt(at) => (
                NotificationState::Pending,
                Some(at),
                None,
                OUTCOME_RETRY,
                Some(at),
            ),
            AttemptOutcome::Failed => (NotificationState::Failed, None, None, OUTCOME_FAILED, None),
        };
        let mut tx = self.backend.begin().await?;
        let update = Sql::new(format!(
            "UPDATE notifications SET state = $1, attempts = attempts + 1, \
             next_attempt_at = COALESCE($2, next_attempt_at), \
             delivered_at = COALESCE($3, delivered_at), last_error = $4, \
             lease_owner = NULL, lease_until = NULL \
             WHERE notify_id = $5 AND lease_owner = $6 AND state = {}",
            state_literal(NotificationState::Pending.as_str())
        ))
        .bind(state.as_str())
        .bind(next_at)
        .bind(delivered_at)
        .bind(attempt.error.as_deref())
        .bind(notify_id.as_str())
        .bind(owner);
        if tx.execute(update).await? != 1 {
            return Ok(false); // not ours (any more): rolled back, nothing written
        }
        let latency = i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX);
        let log = Sql::new(format!(
            "INSERT INTO notification_attempts ({ATTEMPT_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(notify_id.as_str())
        .bind(attempt.at)
        .bind(owner)
        .bind(attempt.http_status.map(i32::from))
        .bind(latency)
        .bind(attempt.response_excerpt.as_deref().map(excerpt))
        .bind(attempt.error.as_deref())
        .bind(label)
        .bind(retry_at);
        tx.execute(log).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn get_notification(&self, notify_id: &NotifyId) -> Result<Option<Notification>> {
        let sql = Sql::new(format!(
            "SELECT {NOTIFY_COLS} FROM notifications WHERE notify_id = $1"
        ))
        .bind(notify_id.as_str());
        self.one::<RawNotification, _>(sql).await
    }

    async fn list_notifications(&self, filter: &NotificationFilter) -> Result<Vec<Notification>> {
        let mut sql = Sql::new("");
        let mut cond = vec!["TRUE".to_owned()];
        cond.extend(sql.app_scope("app_id", filter.app_ids.as_deref()));
        if let Some(app_id) = &filter.app_id {
            cond.push(format!("app_id = {}", sql.push_arg(app_id.as_str())));
        }
        if let Some(order_id) = &filter.order_id {
            cond.push(format!("order_id = {}", sql.push_arg(order_id.as_str())));
        }
        if let Some(state) = filter.state {
            cond.push(format!("state = {}", state_literal(state.as_str())));
        }
        if let Some(before) = &filter.before {
            cond.push(format!("notify_id < {}", sql.push_arg(before.as_str())));
        }
        let limit = sql.push_arg(i64::from(page_size(filter.limit)));
        sql.text = format!(
            "SELECT {NOTIFY_COLS} FROM notifications WHERE {} ORDER BY notify_id DESC LIMIT {limit}",
            cond.join(" AND ")
        );
        self.all::<RawNotification, _>(sql).await
    }

    async fn list_notification_attempts(
        &self,
        notify_id: &NotifyId,
    ) -> Result<Vec<NotificationAttempt>> {
        let sql = Sql::new(format!(
            "SELECT {ATTEMPT_COLS} FROM notification_attempts WHERE notify_id = $1 ORDER BY id"
        ))
        .bind(notify_id.as_str());
        self.all::<RawAttempt, _>(sql).await
    }

    async fn resend_notification(
        &self,
        notify_id: &NotifyId,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>> {
        // A live lease is kept: its holder may be sending right now, and
        // nobody else may send until it records or its lease runs out.
        let sql = Sql::new(format!(
            "UPDATE notifications SET state = $1, next_attempt_at = $2, \
             lease_owner = CASE WHEN lease_until > $2 THEN lease_owner ELSE NULL END, \
             lease_until = CASE WHEN lease_until > $2 THEN lease_until ELSE NULL END \
             WHERE notify_id = $3 RETURNING {NOTIFY_COLS}"
        ))
        .bind(NotificationState::Pending.as_str())
        .bind(now)
        .bind(notify_id.as_str());
        self.one::<RawNotification, _>(sql).await
    }
}
