//! The console dashboard's figures: for a window of China days, how many
//! orders were made and paid, for how much, and how much was refunded —
//! in total, by channel, by app, by store and per day.
//!
//! What counts where:
//! - orders, paid orders and the paid amount belong to the order's
//!   creation day (an order paid after midnight still counts on the day it
//!   was made, so a day's success rate is the share of its orders that
//!   were paid, whenever that happened). "Paid" is "has a payment"
//!   (`pay_time` set): a refunded order was paid too;
//! - refunds belong to the day they succeeded (`finished_at` of a
//!   `SUCCESS` refund), under their order's channel and store.
//!
//! Each figure is read with one grouped query per table (by channel type,
//! app, store and day together), folded into the totals and breakdowns
//! here; the scope (`Option<&[AppId]>`: `None` every app, `Some` only
//! those, a merchant's view) is a filter of both queries. The only SQL the
//! engines disagree on is the China day of a stored time
//! ([`Backend::cn_day`]).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use cashdesk_core::time::shanghai;
use cashdesk_core::{AppId, ChannelType, Fen, RefundState, StoreId};
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use serde::Serialize;

use crate::Result;
use crate::common::{Backend, Sql, SqlStore, state_literal};
use crate::rows::{app_id, id, store_id};

/// The China days the figures cover: `[from, to)`, midnight to midnight
/// in UTC+8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatsWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl StatsWindow {
    /// The last `days` China days, today (of `now`) included: 1 = today,
    /// 7 = the last week, 30 = the last month. 0 is taken as 1.
    pub fn last_days(days: u32, now: DateTime<Utc>) -> StatsWindow {
        let today = now.with_timezone(&shanghai()).date_naive();
        let first = today
            .checked_sub_days(Days::new(u64::from(days.max(1) - 1)))
            .unwrap_or(today);
        let end = today.checked_add_days(Days::new(1)).unwrap_or(today);
        StatsWindow {
            from: cn_midnight(first),
            to: cn_midnight(end),
        }
    }

    /// Every China day of the window, in order.
    pub fn days(&self) -> Vec<NaiveDate> {
        let first = self.from.with_timezone(&shanghai()).date_naive();
        let last = self.to.with_timezone(&shanghai()).date_naive();
        first.iter_days().take_while(|d| *d < last).collect()
    }
}

/// 00:00 of `day` in China, in UTC.
fn cn_midnight(day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    // UTC+8 has no gaps or folds: the mapping is always single.
    shanghai()
        .from_local_datetime(&naive)
        .single()
        .map_or_else(|| naive.and_utc(), |t| t.with_timezone(&Utc))
}

/// One line of figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsLine {
    /// Orders created.
    pub orders: u64,
    /// Of those, the ones paid.
    pub paid: u64,
    /// What they paid.
    pub paid_amount: Fen,
    /// Refunds that succeeded.
    pub refunds: u64,
    /// What they gave back.
    pub refunded_amount: Fen,
}

impl Default for StatsLine {
    fn default() -> Self {
        StatsLine {
            orders: 0,
            paid: 0,
            paid_amount: Fen::ZERO,
            refunds: 0,
            refunded_amount: Fen::ZERO,
        }
    }
}

impl StatsLine {
    /// Paid orders per order made, `None` without orders.
    pub fn success_rate(&self) -> Option<f64> {
        (self.orders > 0).then(|| self.paid as f64 / self.orders as f64)
    }

    fn add(&mut self, other: &StatsLine) {
        self.orders += other.orders;
        self.paid += other.paid;
        self.paid_amount = Fen::from_stored(self.paid_amount.get() + other.paid_amount.get());
        self.refunds += other.refunds;
        self.refunded_amount =
            Fen::from_stored(self.refunded_amount.get() + other.refunded_amount.get());
    }
}

/// The figures of one channel type; `None`: orders that never went to a
/// channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStats {
    pub channel_type: Option<ChannelType>,
    #[serde(flatten)]
    pub line: StatsLine,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStats {
    pub app_id: AppId,
    #[serde(flatten)]
    pub line: StatsLine,
}

/// The figures of one store of an app; `None`: the app's orders without a
/// store.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStats {
    pub app_id: AppId,
    pub store_id: Option<StoreId>,
    #[serde(flatten)]
    pub line: StatsLine,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayStats {
    pub day: NaiveDate,
    #[serde(flatten)]
    pub line: StatsLine,
}

/// The dashboard's figures for one window and scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardStats {
    pub window: StatsWindow,
    pub totals: StatsLine,
    /// By channel type, largest paid amount first.
    pub by_channel: Vec<ChannelStats>,
    /// By app, largest paid amount first.
    pub by_app: Vec<AppStats>,
    /// By app and store, largest paid amount first.
    pub by_store: Vec<StoreStats>,
    /// Every day of the window, in order (days without anything included).
    pub days: Vec<DayStats>,
}

/// The dashboard's reads.
#[async_trait]
pub trait Dashboard: Send + Sync {
    /// The figures of `window`, of the apps in `scope` (`None`: every
    /// app; `Some(&[])`: none, all figures zero).
    async fn dashboard_stats(
        &self,
        window: StatsWindow,
        scope: Option<&[AppId]>,
    ) -> Result<DashboardStats>;
}

/// One group of a grouped query.
#[derive(sqlx::FromRow)]
struct RawGroup {
    channel_type: Option<String>,
    app_id: String,
    store_id: Option<String>,
    day: i64,
    n: i64,
    paid: i64,
    amount: i64,
}

/// ` AND <col> IN ($a, $b)` for a scope, or nothing.
fn scope_filter(sql: &mut Sql, col: &str, scope: Option<&[AppId]>) -> String {
    match scope {
        None => String::new(),
        Some(apps) => {
            let params: Vec<String> = apps.iter().map(|a| sql.push_arg(a.as_str())).collect();
            format!(" AND {col} IN ({})", params.join(", "))
        }
    }
}

#[async_trait]
impl<B: Backend> Dashboard for SqlStore<B> {
    async fn dashboard_stats(
        &self,
        window: StatsWindow,
        scope: Option<&[AppId]>,
    ) -> Result<DashboardStats> {
        let mut groups = Vec::new();
        if scope.is_none_or(|apps| !apps.is_empty()) {
            let mut sql = Sql::new("");
            let (from, to) = (sql.push_arg(window.from), sql.push_arg(window.to));
            let scoped = scope_filter(&mut sql, "app_id", scope);
            let day = self.backend.cn_day("created_at");
            sql.text = format!(
                "SELECT channel_type, app_id, store_id, {day} AS day, COUNT(*) AS n, \
                 CAST(COALESCE(SUM(CASE WHEN pay_time IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) AS paid, \
                 CAST(COALESCE(SUM(CASE WHEN pay_time IS NULL THEN 0 ELSE amount END), 0) AS BIGINT) AS amount \
                 FROM orders WHERE created_at >= {from} AND created_at < {to}{scoped} \
                 GROUP BY channel_type, app_id, store_id, {day}"
            );
            for g in self.backend.fetch_all::<RawGroup>(sql).await? {
                groups.push((g, false));
            }
            let mut sql = Sql::new("");
            let (from, to) = (sql.push_arg(window.from), sql.push_arg(window.to));
            let scoped = scope_filter(&mut sql, "r.app_id", scope);
            let day = self.backend.cn_day("r.finished_at");
            let success = state_literal(RefundState::Success.as_str());
            sql.text = format!(
                "SELECT o.channel_type AS channel_type, r.app_id AS app_id, \
                 o.store_id AS store_id, {day} AS day, COUNT(*) AS n, \
                 CAST(0 AS BIGINT) AS paid, CAST(COALESCE(SUM(r.amount), 0) AS BIGINT) AS amount \
                 FROM refunds r JOIN orders o ON o.order_id = r.order_id \
                 WHERE r.state = {success} AND r.finished_at >= {from} AND r.finished_at < {to}{scoped} \
                 GROUP BY o.channel_type, r.app_id, o.store_id, {day}"
            );
            for g in self.backend.fetch_all::<RawGroup>(sql).await? {
                groups.push((g, true));
            }
        }
        fold(window, groups)
    }
}

/// The grouped rows (`true`: a refund group) into the figures.
fn fold(window: StatsWindow, groups: Vec<(RawGroup, bool)>) -> Result<DashboardStats> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let mut totals = StatsLine::default();
    let mut by_channel: HashMap<Option<ChannelType>, StatsLine> = HashMap::new();
    let mut by_app: HashMap<AppId, StatsLine> = HashMap::new();
    let mut by_store: HashMap<(AppId, Option<StoreId>), StatsLine> = HashMap::new();
    let mut by_day: BTreeMap<NaiveDate, StatsLine> = window
        .days()
        .into_iter()
        .map(|d| (d, StatsLine::default()))
        .collect();
    for (g, refund) in groups {
        let channel = g
            .channel_type
            .map(|c| id("orders.channel_type", c, ChannelType::parse))
            .transpose()?;
        let app = app_id("orders.app_id", g.app_id)?;
        let store = store_id("orders.store_id", g.store_id)?;
        let n = u64::try_from(g.n).unwrap_or(0);
        let amount = Fen::from_stored(g.amount.max(0));
        let line = if refund {
            StatsLine {
                refunds: n,
                refunded_amount: amount,
                ..StatsLine::default()
            }
        } else {
            StatsLine {
                orders: n,
                paid: u64::try_from(g.paid).unwrap_or(0),
                paid_amount: amount,
                ..StatsLine::default()
            }
        };
        totals.add(&line);
        by_channel.entry(channel).or_default().add(&line);
        by_app.entry(app.clone()).or_default().add(&line);
        by_store.entry((app, store)).or_default().add(&line);
        let day = u64::try_from(g.day)
            .ok()
            .and_then(|d| epoch.checked_add_days(Days::new(d)));
        if let Some(day) = day {
            by_day.entry(day).or_default().add(&line);
        }
    }
    // Largest paid amount first, then most orders, then by name (stable
    // output for equal figures).
    fn rank(a: &StatsLine, b: &StatsLine) -> std::cmp::Ordering {
        b.paid_amount
            .cmp(&a.paid_amount)
            .then(b.orders.cmp(&a.orders))
            .then(b.refunded_amount.cmp(&a.refunded_amount))
    }
    let mut by_channel: Vec<ChannelStats> = by_channel
        .into_iter()
        .map(|(channel_type, line)| ChannelStats { channel_type, line })
        .collect();
    by_channel.sort_by(|a, b| {
        rank(&a.line, &b.line).then_with(|| {
            let name = |c: &ChannelStats| c.channel_type.map(|t| t.as_str()).unwrap_or("");
            name(a).cmp(name(b))
        })
    });
    let mut by_app: Vec<AppStats> = by_app
        .into_iter()
        .map(|(app_id, line)| AppStats { app_id, line })
        .collect();
    by_app.sort_by(|a, b| {
        rank(&a.line, &b.line).then_with(|| a.app_id.as_str().cmp(b.app_id.as_str()))
    });
    let mut by_store: Vec<StoreStats> = by_store
        .into_iter()
        .map(|((app_id, store_id), line)| StoreStats {
            app_id,
            store_id,
            line,
        })
        .collect();
    by_store.sort_by(|a, b| {
        let key = |s: &StoreStats| {
            (
                s.app_id.as_str().to_owned(),
                s.store_id.as_ref().map(|x| x.as_str().to_owned()),
            )
        };
        rank(&a.line, &b.line).then_with(|| key(a).cmp(&key(b)))
    });
    Ok(DashboardStats {
        window,
        totals,
        by_channel,
        by_app,
        by_store,
        days: by_day
            .into_iter()
            .map(|(day, line)| DayStats { day, line })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_china_days() {
        // 2024-05-01 17:00 UTC is 2024-05-02 01:00 in China.
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 17, 0, 0).unwrap();
        let today = StatsWindow::last_days(1, now);
        assert_eq!(
            today.from,
            Utc.with_ymd_and_hms(2024, 5, 1, 16, 0, 0).unwrap()
        );
        assert_eq!(
            today.to,
            Utc.with_ymd_and_hms(2024, 5, 2, 16, 0, 0).unwrap()
        );
        assert_eq!(today.days(), [NaiveDate::from_ymd_opt(2024, 5, 2).unwrap()]);
        let week = StatsWindow::last_days(7, now);
        assert_eq!(week.to, today.to);
        assert_eq!(
            week.from,
            Utc.with_ymd_and_hms(2024, 4, 25, 16, 0, 0).unwrap()
        );
        assert_eq!(week.days().len(), 7);
        assert_eq!(StatsWindow::last_days(30, now).days().len(), 30);
        assert_eq!(StatsWindow::last_days(0, now), today);
    }

    #[test]
    fn success_rate_is_paid_per_order() {
        let line = StatsLine {
            orders: 4,
            paid: 3,
            ..StatsLine::default()
        };
        assert_eq!(line.success_rate(), Some(0.75));
        assert_eq!(StatsLine::default().success_rate(), None);
    }
}
