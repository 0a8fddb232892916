//! Orders: created once per (app, outTradeNo), changed only by the
//! compare-and-set of [`Orders::transition_order_notify`] (with its
//! merchant notification), queried by the poller and closed by the expiry
//! job.

use async_trait::async_trait;
use cashdesk_core::{AppId, NotifyUrl, OrderId, OrderState, OutTradeNo, StoreId};
use chrono::{DateTime, Utc};

use crate::audit::insert_audit_in;
use crate::common::{
    Backend, ORDER_CLAIM, Sql, SqlStore, Tx, claim_query_sql, page_size, state_literal,
    state_literals, tx_one,
};
use crate::outbox::insert_notification;
use crate::rows::{ORDER_COLS, RawOrder, json_text};
use crate::{
    Inserted, NewNotification, NewOrder, Notification, Order, OrderFilter, OrderTransition,
    QuerySchedule, Result, StoreError,
};

/// Orders.
#[async_trait]
pub trait Orders: Send + Sync {
    /// Insert, or return the existing order with the same (app, outTradeNo).
    async fn insert_order(&self, order: &NewOrder) -> Result<Inserted<Order>>;
    async fn get_order(&self, order_id: &OrderId) -> Result<Option<Order>>;
    async fn get_order_by_out_trade_no(
        &self,
        app_id: &AppId,
        out_trade_no: &OutTradeNo,
    ) -> Result<Option<Order>>;
    async fn get_order_by_token(&self, token: &str) -> Result<Option<Order>>;
    /// Newest first.
    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>>;

    /// The one way an order's state changes after creation (the server's
    /// settlement module calls it): a compare-and-set — `Some((updated,
    /// notification))` if applied, `None` if the order's state was not in
    /// `t.from` (or the order does not exist) — and, when it applies, the
    /// outbox row `notification` in the same transaction: either both are stored or
    /// neither (a lost compare-and-set writes no notification; a failed
    /// notification insert, e.g. a duplicate `notify_id`, undoes the
    /// transition and is returned as the error). The notification is due
    /// at `t.now`; it must belong to this order. `t.audit`, when set, is
    /// written in the same transaction too (only if the change applies).
    async fn transition_order_notify(
        &self,
        order_id: &OrderId,
        t: &OrderTransition,
        notification: Option<&NewNotification>,
    ) -> Result<Option<(Order, Option<Notification>)>>;
    /// Set when the poller should next query a PAYING order (also settable
    /// in the transition to PAYING: [`OrderTransition::next_query_at`]).
    /// `false` if no such order.
    async fn schedule_order_query(&self, order_id: &OrderId, at: DateTime<Utc>) -> Result<bool>;
    /// Claim up to `limit` PAYING orders that are due for a channel query
    /// (`next_query_at <= now`, or never scheduled and
    /// `updated_at <= now - schedule.first_after`) and not expired
    /// (`expire_at > now`: those belong to the expiry job). Each claimed
    /// order's `query_attempts` is incremented and its `next_query_at`
    /// pushed to `now + schedule.delay_after(query_attempts)`, in the same
    /// statement, so concurrent claimers (threads or instances) never get
    /// the same order in one round (PostgreSQL `FOR UPDATE SKIP LOCKED`).
    /// Returns the orders as updated, soonest due next first. Claiming
    /// changes neither the state nor `updated_at`. `limit` 0 means 100;
    /// at most 1000.
    async fn claim_orders_to_query(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        schedule: &QuerySchedule,
    ) -> Result<Vec<Order>>;
    /// CREATED or PAYING orders whose `expire_at <= now`, soonest expired
    /// first, at most `limit` (0: 100). A plain read: run the expiry job
    /// under a cluster lease
    /// ([`Leases::try_acquire_lease`](crate::Leases::try_acquire_lease))
    /// and close with a compare-and-set.
    async fn list_expired_orders(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>>;
}

/// The compare-and-set of [`Orders::transition_order_notify`]; `None` when it
/// cannot apply (empty `from`).
fn order_transition_sql(order_id: &OrderId, t: &OrderTransition) -> Option<Sql> {
    if t.from.is_empty() {
        return None;
    }
    let ch = t.channel.as_ref();
    let mut sql = Sql::new("")
        .bind(t.to.as_str())
        .bind(t.now)
        .bind(ch.map(|c| c.channel_id.as_str()))
        .bind(ch.map(|c| c.channel_type.as_str()))
        .bind(ch.map(|c| c.config_id.as_str()))
        .bind(ch.map(|c| c.mch_id.as_str()))
        .bind(ch.map(|c| c.scene_code.as_str()))
        .bind(t.transaction_id.as_deref())
        .bind(t.pay_time)
        .bind(t.result_error_code.as_deref())
        .bind(t.result_error_msg.as_deref())
        .bind(t.paid_after_close)
        .bind(order_id.as_str())
        .bind(t.next_query_at)
        .bind(t.store_identity_sealed.as_deref());
    let from = state_literals(t.from.iter().map(|s| s.as_str()));
    // The channel's five columns and the store identity it is used with
    // are replaced together (or not at all): $3 decides for all of them.
    sql.text = format!(
        "UPDATE orders SET state = $1, updated_at = $2, \
         channel_id = CASE WHEN $3 IS NULL THEN channel_id ELSE $3 END, \
         channel_type = CASE WHEN $3 IS NULL THEN channel_type ELSE $4 END, \
         config_id = CASE WHEN $3 IS NULL THEN config_id ELSE $5 END, \
         mch_id = CASE WHEN $3 IS NULL THEN mch_id ELSE $6 END, \
         scene_code = CASE WHEN $3 IS NULL THEN scene_code ELSE $7 END, \
         store_identity_sealed = CASE WHEN $3 IS NULL THEN store_identity_sealed ELSE $15 END, \
         transaction_id = COALESCE($8, transaction_id), \
         pay_time = COALESCE($9, pay_time), \
         result_error_code = COALESCE($10, result_error_code), \
         result_error_msg = COALESCE($11, result_error_msg), \
         paid_after_close = COALESCE($12, paid_after_close), \
         next_query_at = COALESCE($14, next_query_at) \
         WHERE order_id = $13 AND state IN ({from}) RETURNING {ORDER_COLS}"
    );
    Some(sql)
}

#[async_trait]
impl<B: Backend> Orders for SqlStore<B> {
    async fn insert_order(&self, o: &NewOrder) -> Result<Inserted<Order>> {
        let sql = Sql::new(format!(
            "INSERT INTO orders (order_id, app_id, out_trade_no, amount, order_title, goods_desc, \
             third_party_user, notify_url, return_url, store_id, attach, client_ip, token, expire_at, \
             request_hash, response, state, refunded_amount, paid_after_close, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20) \
             ON CONFLICT (app_id, out_trade_no) DO NOTHING RETURNING {ORDER_COLS}"
        ))
        .bind(o.order_id.as_str())
        .bind(o.app_id.as_str())
        .bind(o.out_trade_no.as_str())
        .bind(o.amount.get())
        .bind(o.order_title.as_str())
        .bind(o.goods_desc.as_str())
        .bind(o.third_party_user.as_str())
        .bind(o.notify_url.as_ref().map(NotifyUrl::as_str))
        .bind(o.return_url.as_deref())
        .bind(o.store_id.as_ref().map(StoreId::as_str))
        .bind(o.attach.as_deref())
        .bind(o.client_ip.as_deref())
        .bind(o.token.as_str())
        .bind(o.expire_at)
        .bind(o.request_hash.as_str())
        .bind(json_text("orders.response", &o.response)?)
        .bind(OrderState::Created.as_str())
        .bind(0_i64)
        .bind(false)
        .bind(o.created_at);
        if let Some(new) = self.one::<RawOrder, Order>(sql).await? {
            return Ok(Inserted::New(new));
        }
        // The (app, outTradeNo) key exists: the first insert won. Other
        // unique keys (order id, token) are not covered by DO NOTHING and
        // surface as a Conflict error above.
        self.get_order_by_out_trade_no(&o.app_id, &o.out_trade_no)
            .await?
            .map(Inserted::Existing)
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "order {} conflicts but has no twin",
                    o.out_trade_no
                ))
            })
    }

    async fn get_order(&self, order_id: &OrderId) -> Result<Option<Order>> {
        let sql = Sql::new(format!(
            "SELECT {ORDER_COLS} FROM orders WHERE order_id = $1"
        ))
        .bind(order_id.as_str());
        self.one::<RawOrder, _>(sql).await
    }

    async fn get_order_by_out_trade_no(
        &self,
        app_id: &AppId,
        out_trade_no: &OutTradeNo,
    ) -> Result<Option<Order>> {
        let sql = Sql::new(format!(
            "SELECT {ORDER_COLS} FROM orders WHERE app_id = $1 AND out_trade_no = $2"
        ))
        .bind(app_id.as_str())
        .bind(out_trade_no.as_str());
        self.one::<RawOrder, _>(sql).await
    }

    async fn get_order_by_token(&self, token: &str) -> Result<Option<Order>> {
        let sql = Sql::new(format!("SELECT {ORDER_COLS} FROM orders WHERE token = $1")).bind(token);
        self.one::<RawOrder, _>(sql).await
    }

    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>> {
        let mut sql = Sql::new("");
        let mut cond = vec!["TRUE".to_owned()];
        cond.extend(sql.app_scope("app_id", filter.app_ids.as_deref()));
        if let Some(app_id) = &filter.app_id {
            cond.push(format!("app_id = {}", sql.push_arg(app_id.as_str())));
        }
        if let Some(order_id) = &filter.order_id {
            cond.push(format!("order_id = {}", sql.push_arg(order_id.as_str())));
        }
        if let Some(tx) = &filter.transaction_id {
            cond.push(format!("transaction_id = {}", sql.push_arg(tx.as_str())));
        }
        if let Some(buyer) = &filter.buyer_id {
            cond.push(format!(
                "third_party_user = {}",
                sql.push_arg(buyer.as_str())
            ));
        }
        if let Some(channel_id) = &filter.channel_id {
            cond.push(format!(
                "channel_id = {}",
                sql.push_arg(channel_id.as_str())
            ));
        }
        if let Some(channel_type) = filter.channel_type {
            cond.push(format!(
                "channel_type = {}",
                sql.push_arg(channel_type.as_str())
            ));
        }
        if let Some(from) = filter.created_from {
            cond.push(format!("created_at >= {}", sql.push_arg(from)));
        }
        if let Some(to) = filter.created_to {
            cond.push(format!("created_at < {}", sql.push_arg(to)));
        }
        if let Some(store_id) = &filter.store_id {
            cond.push(format!("store_id = {}", sql.push_arg(store_id.as_str())));
        }
        if let Some(state) = filter.state {
            cond.push(format!("state = {}", state_literal(state.as_str())));
        }
        if let Some(no) = &filter.out_trade_no {
            cond.push(format!("out_trade_no = {}", sql.push_arg(no.as_str())));
        }
        if let Some(before) = &filter.before {
            cond.push(format!("order_id < {}", sql.push_arg(before.as_str())));
        }
        let limit = sql.push_arg(i64::from(page_size(filter.limit)));
        sql.text = format!(
            "SELECT {ORDER_COLS} FROM orders WHERE {} ORDER BY order_id DESC LIMIT {limit}",
            cond.join(" AND ")
        );
        self.all::<RawOrder, _>(sql).await
    }

    async fn transition_order_notify(
        &self,
        order_id: &OrderId,
        t: &OrderTransition,
        notification: Option<&NewNotification>,
    ) -> Result<Option<(Order, Option<Notification>)>> {
        let Some(sql) = order_transition_sql(order_id, t) else {
            return Ok(None);
        };
        if notification.is_none() && t.audit.is_none() {
            return Ok(self.one::<RawOrder, Order>(sql).await?.map(|o| (o, None)));
        }
        let mut tx = self.backend.begin().await?;
        // The UPDATE locks the order row (PostgreSQL) until commit.
        let Some(order) = tx_one::<_, RawOrder, Order>(&mut tx, sql).await? else {
            return Ok(None); // dropped: rolled back, nothing written
        };
        let notification = match notification {
            Some(n) => Some(insert_notification(&mut tx, n, t.now).await?),
            None => None,
        };
        if let Some(entry) = &t.audit {
            insert_audit_in(&mut tx, entry).await?;
        }
        tx.commit().await?;
        Ok(Some((order, notification)))
    }

    async fn schedule_order_query(&self, order_id: &OrderId, at: DateTime<Utc>) -> Result<bool> {
        let sql = Sql::new("UPDATE orders SET next_query_at = $1 WHERE order_id = $2")
            .bind(at)
            .bind(order_id.as_str());
        Ok(self.backend.execute(sql).await? > 0)
    }

    async fn claim_orders_to_query(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        schedule: &QuerySchedule,
    ) -> Result<Vec<Order>> {
        let sql = claim_query_sql(
            &ORDER_CLAIM,
            now,
            limit,
            schedule,
            self.backend.skip_locked(),
        );
        let mut orders: Vec<Order> = self.all::<RawOrder, _>(sql).await?;
        // RETURNING has no order; the previous due time is gone, so sort
        // by the new one (same attempt count → same delay).
        orders.sort_by(|a, b| (a.next_query_at, &a.order_id).cmp(&(b.next_query_at, &b.order_id)));
        Ok(orders)
    }

    async fn list_expired_orders(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>> {
        let sql = Sql::new(format!(
            "SELECT {ORDER_COLS} FROM orders WHERE state IN ({}) AND expire_at <= $1 \
             ORDER BY expire_at, order_id LIMIT $2",
            state_literals([OrderState::Created.as_str(), OrderState::Paying.as_str()])
        ))
        .bind(now)
        .bind(i64::from(page_size(limit)));
        self.all::<RawOrder, _>(sql).await
    }
}
