//! The shop's SQLite database: goods with stock, orders, and the log of the
//! notifications cashdesk sent.
//!
//! Every change of stock happens in one transaction with the change of
//! order state that causes it, and every state change is a compare-and-set
//! (`… WHERE state = 'PENDING'`), so a notification that arrives twice, or
//! a notification racing the answer of a query, moves stock once. The pool
//! has one connection: SQLite has one writer anyway, and a single
//! connection rules out a read-then-write transaction failing to upgrade
//! its lock under a concurrent writer.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Order states. cashdesk's order behind a `PENDING` order may be
/// `CREATED` or `PAYING`; `PAID` and `CLOSED` follow its `PAY_SUCCESS` and
/// `PAY_CLOSED`.
pub const PENDING: &str = "PENDING";
pub const PAID: &str = "PAID";
pub const CLOSED: &str = "CLOSED";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Goods {
    pub goods_id: String,
    pub name: String,
    /// Fen.
    pub price: i64,
    pub stock: i64,
    pub reserved: i64,
}

impl Goods {
    /// What buy-now can still reserve.
    pub fn available(&self) -> i64 {
        self.stock - self.reserved
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: String,
    pub user_id: String,
    #[serde(skip)]
    pub openid: String,
    pub goods_id: String,
    pub qty: i64,
    /// Fen.
    pub amount: i64,
    pub state: String,
    #[serde(skip)]
    pub gateway_request: String,
    /// cashdesk's `orderId`, once cashdesk answered.
    pub gateway_order_id: Option<String>,
    pub transaction_id: Option<String>,
    pub paid_after_close: bool,
    pub created_at: i64,
    pub reuse_until: i64,
    pub settled_at: Option<i64>,
}

/// A new order to reserve stock for.
pub struct NewOrder<'a> {
    pub user_id: &'a str,
    pub openid: &'a str,
    pub goods_id: &'a str,
    pub qty: i64,
    pub now: i64,
    /// How long (seconds) a pending order is reused by buy-now.
    pub reuse_secs: i64,
}

/// What [`Db::find_or_reserve`] found or did.
#[derive(Debug)]
pub enum Reservation {
    /// A new order; its stock is reserved.
    New(Order),
    /// The user's pending order for these goods (same quantity), still in
    /// its reuse window.
    Reused(Order),
    /// A pending order for these goods with another quantity.
    OtherQty(Order),
    /// A pending order past its reuse window: close it first.
    Stale(Order),
    UnknownGoods,
    OutOfStock {
        available: i64,
    },
}

/// What cashdesk said happened to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Paid {
        gateway_order_id: String,
        transaction_id: Option<String>,
    },
    Closed {
        gateway_order_id: Option<String>,
    },
}

/// A verified notification, logged with the settlement it caused.
pub struct Notified<'a> {
    pub notify_id: &'a str,
    pub notify_type: &'a str,
}

#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
}

impl Db {
    /// Opens (creating) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Db, sqlx::Error> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Db { pool })
    }

    /// Adds goods unless they exist (then nothing changes).
    pub async fn add_goods(
        &self,
        goods_id: &str,
        name: &str,
        price: i64,
        stock: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO goods (goods_id, name, price, stock) VALUES (?, ?, ?, ?) \
             ON CONFLICT (goods_id) DO NOTHING",
        )
        .bind(goods_id)
        .bind(name)
        .bind(price)
        .bind(stock)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn goods(&self, goods_id: &str) -> Result<Option<Goods>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM goods WHERE goods_id = ?")
            .bind(goods_id)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn list_goods(&self) -> Result<Vec<Goods>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM goods ORDER BY goods_id")
            .fetch_all(&self.pool)
            .await
    }

    pub async fn order(&self, order_id: &str) -> Result<Option<Order>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM orders WHERE order_id = ?")
            .bind(order_id)
            .fetch_optional(&self.pool)
            .await
    }

    /// The user's pending order for the goods, or else a new one with its
    /// stock reserved, in one transaction. `gateway_request` builds the
    /// create-order body of a new order from its id and amount.
    pub async fn find_or_reserve(
        &self,
        new: &NewOrder<'_>,
        gateway_request: impl FnOnce(&str, i64, &Goods) -> String,
    ) -> Result<Reservation, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let pending: Option<Order> = sqlx::query_as(
            "SELECT * FROM orders WHERE user_id = ? AND goods_id = ? AND state = 'PENDING'",
        )
        .bind(new.user_id)
        .bind(new.goods_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(order) = pending {
            return Ok(if order.reuse_until <= new.now {
                Reservation::Stale(order)
            } else if order.qty != new.qty {
                Reservation::OtherQty(order)
            } else {
                Reservation::Reused(order)
            });
        }
        let goods: Option<Goods> = sqlx::query_as("SELECT * FROM goods WHERE goods_id = ?")
            .bind(new.goods_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(goods) = goods else {
            return Ok(Reservation::UnknownGoods);
        };
        let reserved = sqlx::query(
            "UPDATE goods SET reserved = reserved + ? WHERE goods_id = ? AND stock - reserved >= ?",
        )
        .bind(new.qty)
        .bind(new.goods_id)
        .bind(new.qty)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if reserved != 1 {
            return Ok(Reservation::OutOfStock {
                available: goods.available(),
            });
        }
        let order_id = format!("S{}", ulid::Ulid::new());
        let amount = goods.price * new.qty;
        let request = gateway_request(&order_id, amount, &goods);
        sqlx::query(
            "INSERT INTO orders (order_id, user_id, openid, goods_id, qty, amount, state, \
             gateway_request, created_at, reuse_until) \
             VALUES (?, ?, ?, ?, ?, ?, 'PENDING', ?, ?, ?)",
        )
        .bind(&order_id)
        .bind(new.user_id)
        .bind(new.openid)
        .bind(new.goods_id)
        .bind(new.qty)
        .bind(amount)
        .bind(&request)
        .bind(new.now)
        .bind(new.now + new.reuse_secs)
        .execute(&mut *tx)
        .await?;
        let order: Order = sqlx::query_as("SELECT * FROM orders WHERE order_id = ?")
            .bind(&order_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Reservation::New(order))
    }

    /// Pending orders made before `created_before` (oldest first, at most
    /// `limit`).
    pub async fn pending_before(
        &self,
        created_before: i64,
        limit: i64,
    ) -> Result<Vec<Order>, sqlx::Error> {
        sqlx::query_as(
            "SELECT * FROM orders WHERE state = 'PENDING' AND created_at < ? \
             ORDER BY created_at LIMIT ?",
        )
        .bind(created_before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Records cashdesk's order id once it answered.
    pub async fn set_gateway_order_id(
        &self,
        order_id: &str,
        gateway_order_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE orders SET gateway_order_id = ? WHERE order_id = ? AND gateway_order_id IS NULL",
        )
        .bind(gateway_order_id)
        .bind(order_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Applies what cashdesk said, once: a payment takes the quantity off
    /// the stock and the reservation (of a closed order, whose reservation
    /// went back already: off the stock only, flagged `paid_after_close`
    /// for a person to look at); a close gives the reservation back. A
    /// repeated outcome changes nothing. With `notified`, the notification
    /// is logged in the same transaction. Returns whether the order changed.
    pub async fn settle(
        &self,
        order_id: &str,
        outcome: &Outcome,
        now: i64,
        notified: Option<Notified<'_>>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let changed = match outcome {
            Outcome::Paid {
                gateway_order_id,
                transaction_id,
            } => {
                // SET expressions see the row as it was: `paid_after_close`
                // says whether the order came from CLOSED.
                let row: Option<(String, i64, bool)> = sqlx::query_as(
                    "UPDATE orders SET state = 'PAID', gateway_order_id = ?, transaction_id = ?, \
                     paid_after_close = (state = 'CLOSED'), settled_at = ? \
                     WHERE order_id = ? AND state IN ('PENDING', 'CLOSED') \
                     RETURNING goods_id, qty, paid_after_close",
                )
                .bind(gateway_order_id)
                .bind(transaction_id)
                .bind(now)
                .bind(order_id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((goods_id, qty, after_close)) = &row {
                    let sql = if *after_close {
                        "UPDATE goods SET stock = stock - ?1 WHERE goods_id = ?2"
                    } else {
                        "UPDATE goods SET stock = stock - ?1, reserved = reserved - ?1 WHERE goods_id = ?2"
                    };
                    sqlx::query(sql)
                        .bind(qty)
                        .bind(goods_id)
                        .execute(&mut *tx)
                        .await?;
                }
                row.is_some()
            }
            Outcome::Closed { gateway_order_id } => {
                let row: Option<(String, i64)> = sqlx::query_as(
                    "UPDATE orders SET state = 'CLOSED', settled_at = ?, \
                     gateway_order_id = COALESCE(gateway_order_id, ?) \
                     WHERE order_id = ? AND state = 'PENDING' RETURNING goods_id, qty",
                )
                .bind(now)
                .bind(gateway_order_id)
                .bind(order_id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((goods_id, qty)) = &row {
                    sqlx::query("UPDATE goods SET reserved = reserved - ? WHERE goods_id = ?")
                        .bind(qty)
                        .bind(goods_id)
                        .execute(&mut *tx)
                        .await?;
                }
                row.is_some()
            }
        };
        if let Some(n) = notified {
            log_notification(&mut tx, &n, order_id, changed, now).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Logs a verified notification that settles nothing (refund events).
    pub async fn log_notification(
        &self,
        notified: Notified<'_>,
        order_id: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        log_notification(&mut tx, &notified, order_id, false, now).await?;
        tx.commit().await
    }

    /// `(deliveries, applied)` of a notification, by its `notifyId`.
    pub async fn notification(&self, notify_id: &str) -> Result<Option<(i64, bool)>, sqlx::Error> {
        sqlx::query_as("SELECT deliveries, applied FROM notifications WHERE notify_id = ?")
            .bind(notify_id)
            .fetch_optional(&self.pool)
            .await
    }
}

async fn log_notification(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    n: &Notified<'_>,
    order_id: &str,
    applied: bool,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications (notify_id, notify_type, order_id, deliveries, applied, first_at, last_at) \
         VALUES (?, ?, ?, 1, ?, ?, ?) \
         ON CONFLICT (notify_id) DO UPDATE SET deliveries = deliveries + 1, \
         applied = MAX(applied, excluded.applied), last_at = excluded.last_at",
    )
    .bind(n.notify_id)
    .bind(n.notify_type)
    .bind(order_id)
    .bind(applied)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
