//! Refunds: taken against an order's refundable amount in one
//! transaction, changed by a compare-and-set that also keeps the order's
//! refunded amount and state (and writes the merchant notification), and
//! queried by the poller while processing.

use async_trait::async_trait;
use cashdesk_core::{AppId, Fen, NotifyUrl, OrderState, OutRefundNo, RefundId, RefundState};
use chrono::{DateTime, Utc};

use crate::audit::insert_audit_in;
use crate::common::{
    Backend, REFUND_CLAIM, Sql, SqlStore, Tx, claim_query_sql, page_size, state_literal,
    state_literals, tx_one,
};
use crate::outbox::insert_notification;
use crate::rows::{ORDER_COLS, REFUND_COLS, RawOrder, RawRefund};
use crate::{
    InitialRefundState, NewNotification, NewRefund, Notification, Order, QuerySchedule, Refund,
    RefundFilter, RefundInsert, RefundTransition, Result, StoreError,
};

/// Refunds.
#[async_trait]
pub trait Refunds: Send + Sync {
    /// Store a refund if the order can take it, atomically: in one
    /// transaction holding the order (PostgreSQL: its row locked `FOR
    /// UPDATE`; SQLite: `BEGIN IMMEDIATE`), so concurrent requests never
    /// refund more than the order's amount. In order:
    /// 1. a refund with the same (app, outRefundNo) → `Existing` (whatever
    ///    its order or state; the caller compares `request_hash`);
    /// 2. order `refund.order_id` of `refund.app_id` missing →
    ///    `Err(NotFound)`;
    /// 3. order not SUCCESS / PART_REFUNDED / REFUNDED →
    ///    `OrderNotRefundable`;
    /// 4. order amount − Σ refunds that hold an amount
    ///    ([`cashdesk_core::RefundState::holds_amount`]) < `refund.amount`
    ///    → `ExceedsRefundable`;
    /// 5. otherwise `New`, in state `initial`.
    ///
    /// The order itself is not changed (its state and `refunded_amount`
    /// follow completed refunds only, see [`Refunds::transition_refund`]).
    async fn insert_refund(
        &self,
        refund: &NewRefund,
        initial: InitialRefundState,
    ) -> Result<RefundInsert>;
    async fn get_refund(&self, refund_id: &RefundId) -> Result<Option<Refund>>;
    async fn get_refund_by_out_refund_no(
        &self,
        app_id: &AppId,
        out_refund_no: &OutRefundNo,
    ) -> Result<Option<Refund>>;
    /// Newest first.
    async fn list_refunds(&self, filter: &RefundFilter) -> Result<Vec<Refund>>;
    /// Compare-and-set on a refund, with its consequences, in one
    /// transaction: `Some((refund, notification))` if applied, `None` if
    /// the refund's state was not in `t.from` (or it does not exist), and
    /// then nothing is written. When `t.to` is SUCCESS the refund's amount
    /// is added to the order's `refunded_amount` and the order becomes
    /// REFUNDED (all refunded) or PART_REFUNDED (if it was SUCCESS or
    /// PART_REFUNDED; other states are kept); a refund
    /// reaches SUCCESS once (SUCCESS in `from` is ignored then), so the
    /// amount is never counted twice. The optional outbox row and
    /// `t.audit` are written in the same transaction (the row due at
    /// `t.now`).
    async fn transition_refund(
        &self,
        refund_id: &RefundId,
        t: &RefundTransition,
        notification: Option<&NewNotification>,
    ) -> Result<Option<(Refund, Option<Notification>)>>;
    /// As [`Orders::schedule_order_query`](crate::Orders::schedule_order_query),
    /// for a PROCESSING refund.
    async fn schedule_refund_query(&self, refund_id: &RefundId, at: DateTime<Utc>) -> Result<bool>;
    /// As [`Orders::claim_orders_to_query`](crate::Orders::claim_orders_to_query),
    /// for PROCESSING refunds (no expiry).
    async fn claim_refunds_to_query(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        schedule: &QuerySchedule,
    ) -> Result<Vec<Refund>>;
}

/// The order states a refund may be taken in (REFUNDED only to answer
/// "nothing left" with the refundable amount).
const REFUNDABLE_ORDER_STATES: [OrderState; 3] = [
    OrderState::Success,
    OrderState::PartRefunded,
    OrderState::Refunded,
];

#[async_trait]
impl<B: Backend> Refunds for SqlStore<B> {
    async fn insert_refund(
        &self,
        r: &NewRefund,
        initial: InitialRefundState,
    ) -> Result<RefundInsert> {
        let mut tx = self.backend.begin().await?;
        // 1. The order row, locked until commit: every insert_refund and
        //    transition_refund of this order queues here, so the sum read
        //    below cannot change before our insert commits. (SQLite: the
        //    transaction holds the database's write lock already.)
        let order = tx_one::<_, RawOrder, Order>(
            &mut tx,
            Sql::new(format!(
                "SELECT {ORDER_COLS} FROM orders WHERE order_id = $1 AND app_id = $2{}",
                self.backend.for_update()
            ))
            .bind(r.order_id.as_str())
            .bind(r.app_id.as_str()),
        )
        .await?;
        // 2. Idempotency: the same (app, outRefundNo) answers with the
        //    stored refund.
        let existing = tx_one::<_, RawRefund, Refund>(
            &mut tx,
            Sql::new(format!(
                "SELECT {REFUND_COLS} FROM refunds WHERE app_id = $1 AND out_refund_no = $2"
            ))
            .bind(r.app_id.as_str())
            .bind(r.out_refund_no.as_str()),
        )
        .await?;
        if let Some(existing) = existing {
            return Ok(RefundInsert::Existing(existing));
        }
        let Some(order) = order else {
            return Err(StoreError::NotFound(format!(
                "order {} of app {}",
                r.order_id, r.app_id
            )));
        };
        if !REFUNDABLE_ORDER_STATES.contains(&order.state) {
            return Ok(RefundInsert::OrderNotRefundable { state: order.state });
        }
        // 3. What is left: the order's amount minus every refund that still
        //    holds an amount (pending review, processing or done).
        let mut sum = Sql::new("").bind(r.order_id.as_str());
        let holding = state_literals(
            RefundState::ALL
                .iter()
                .filter(|s| s.holds_amount())
                .map(|s| s.as_str()),
        );
        sum.text = format!(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds \
             WHERE order_id = $1 AND state IN ({holding})"
        );
        let (held,): (i64,) = tx.fetch_optional(sum).await?.unwrap_or((0,));
        let refundable = Fen::from_stored((order.amount.get() - held).max(0));
        if r.amount > refundable {
            return Ok(RefundInsert::ExceedsRefundable { refundable });
        }
        // 4. Insert. A concurrent insert of the same (app, outRefundNo) for
        //    another order is not serialised by our order lock: DO NOTHING
        //    makes it an idempotent answer rather than an error.
        let insert = Sql::new(format!(
            "INSERT INTO refunds (refund_id, app_id, order_id, out_refund_no, amount, reason, \
             notify_url, state, request_hash, created_at, updated_at, query_attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 0) \
             ON CONFLICT (app_id, out_refund_no) DO NOTHING RETURNING {REFUND_COLS}"
        ))
        .bind(r.refund_id.as_str())
        .bind(r.app_id.as_str())
        .bind(r.order_id.as_str())
        .bind(r.out_refund_no.as_str())
        .bind(r.amount.get())
        .bind(r.reason.as_deref())
        .bind(r.notify_url.as_ref().map(NotifyUrl::as_str))
        .bind(initial.state().as_str())
        .bind(r.request_hash.as_str())
        .bind(r.created_at);
        match tx_one::<_, RawRefund, Refund>(&mut tx, insert).await? {
            Some(new) => {
                tx.commit().await?;
                Ok(RefundInsert::New(new))
            }
            None => {
                drop(tx);
                self.get_refund_by_out_refund_no(&r.app_id, &r.out_refund_no)
                    .await?
                    .map(RefundInsert::Existing)
                    .ok_or_else(|| {
                        StoreError::Conflict(format!(
                            "refund {} conflicts but has no twin",
                            r.out_refund_no
                        ))
                    })
            }
        }
    }

    async fn get_refund(&self, refund_id: &RefundId) -> Result<Option<Refund>> {
        let sql = Sql::new(format!(
            "SELECT {REFUND_COLS} FROM refunds WHERE refund_id = $1"
        ))
        .bind(refund_id.as_str());
        self.one::<RawRefund, _>(sql).await
    }

    async fn get_refund_by_out_refund_no(
        &self,
        app_id: &AppId,
        out_refund_no: &OutRefundNo,
    ) -> Result<Option<Refund>> {
        let sql = Sql::new(format!(
            "SELECT {REFUND_COLS} FROM refunds WHERE app_id = $1 AND out_refund_no = $2"
        ))
        .bind(app_id.as_str())
        .bind(out_refund_no.as_str());
        self.one::<RawRefund, _>(sql).await
    }

    async fn list_refunds(&self, filter: &RefundFilter) -> Result<Vec<Refund>> {
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
            cond.push(format!("refund_id < {}", sql.push_arg(before.as_str())));
        }
        let limit = sql.push_arg(i64::from(page_size(filter.limit)));
        sql.text = format!(
            "SELECT {REFUND_COLS} FROM refunds WHERE {} ORDER BY refund_id DESC LIMIT {limit}",
            cond.join(" AND ")
        );
        self.all::<RawRefund, _>(sql).await
    }

    async fn transition_refund(
        &self,
        refund_id: &RefundId,
        t: &RefundTransition,
        notification: Option<&NewNotification>,
    ) -> Result<Option<(Refund, Option<Notification>)>> {
        let success = t.to == RefundState::Success;
        // A refund reaches SUCCESS once: its amount is added to the order
        // exactly when that happens.
        let from: Vec<RefundState> = t
            .from
            .iter()
            .copied()
            .filter(|s| !(success && *s == RefundState::Success))
            .collect();
        if from.is_empty() {
            return Ok(None);
        }
        let mut tx = self.backend.begin().await?;
        // Lock the order first, as insert_refund does (one lock order, no
        // deadlock between the two).
        let lock = Sql::new(format!(
            "SELECT order_id FROM orders \
             WHERE order_id = (SELECT order_id FROM refunds WHERE refund_id = $1){}",
            self.backend.for_update()
        ))
        .bind(refund_id.as_str());
        let Some((order_id,)) = tx.fetch_optional::<(String,)>(lock).await? else {
            return Ok(None);
        };
        let mut sql = Sql::new("")
            .bind(t.to.as_str())
            .bind(t.now)
            .bind(t.channel_refund_id.as_deref())
            .bind(t.error_code.as_deref())
            .bind(t.error_msg.as_deref())
            .bind(t.finished_at)
            .bind(refund_id.as_str());
        let from = state_literals(from.iter().map(|s| s.as_str()));
        sql.text = format!(
            "UPDATE refunds SET state = $1, updated_at = $2, \
             channel_refund_id = COALESCE($3, channel_refund_id), \
             error_code = COALESCE($4, error_code), error_msg = COALESCE($5, error_msg), \
             finished_at = COALESCE($6, finished_at) \
             WHERE refund_id = $7 AND state IN ({from}) RETURNING {REFUND_COLS}"
        );
        let Some(refund) = tx_one::<_, RawRefund, Refund>(&mut tx, sql).await? else {
            return Ok(None);
        };
        if success {
            // SET expressions read the row's old values on both engines.
            let mut sql = Sql::new("")
                .bind(refund.amount.get())
                .bind(OrderState::Refunded.as_str())
                .bind(OrderState::PartRefunded.as_str())
                .bind(t.now)
                .bind(order_id.as_str());
            let partial = state_literals(
                [OrderState::Success, OrderState::PartRefunded]
                    .iter()
                    .map(|s| s.as_str()),
            );
            sql.text = format!(
                "UPDATE orders SET refunded_amount = refunded_amount + $1, updated_at = $4, \
                 state = CASE WHEN state NOT IN ({partial}) THEN state \
                 WHEN refunded_amount + $1 >= amount THEN $2 ELSE $3 END \
                 WHERE order_id = $5"
            );
            if tx.execute(sql).await? != 1 {
                return Err(StoreError::NotFound(format!("order {order_id}")));
            }
        }
        let notification = match notification {
            Some(n) => Some(insert_notification(&mut tx, n, t.now).await?),
            None => None,
        };
        if let Some(entry) = &t.audit {
            insert_audit_in(&mut tx, entry).await?;
        }
        tx.commit().await?;
        Ok(Some((refund, notification)))
    }

    async fn schedule_refund_query(&self, refund_id: &RefundId, at: DateTime<Utc>) -> Result<bool> {
        let sql = Sql::new("UPDATE refunds SET next_query_at = $1 WHERE refund_id = $2")
            .bind(at)
            .bind(refund_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    async fn claim_refunds_to_query(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        schedule: &QuerySchedule,
    ) -> Result<Vec<Refund>> {
        let sql = claim_query_sql(
            &REFUND_CLAIM,
            now,
            limit,
            schedule,
            self.backend.skip_locked(),
        );
        let mut refunds: Vec<Refund> = self.all::<RawRefund, _>(sql).await?;
        refunds
            .sort_by(|a, b| (a.next_query_at, &a.refund_id).cmp(&(b.next_query_at, &b.refund_id)));
        Ok(refunds)
    }
}
