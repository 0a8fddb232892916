//! The dashboard (`/console/dashboard?days=1|7|30`): volume, order count,
//! success rate and refunds over today, 7 or 30 China days, by channel,
//! app and store, with per-day charts (SVG rendered here: no script), and
//! what needs a person: open reconciliation findings and merchant
//! endpoints whose notifications failed. Everything is within the
//! principal's app scope (a merchant sees its apps' figures only);
//! findings and endpoints show only to roles that may read them.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use cashdesk_core::{Fen, FindingStatus, Permission};
use cashdesk_store::{
    FindingFilter, NotificationFilter, NotificationState, StatsLine, StatsWindow,
};
use chrono::Utc;

use super::BASE;
use super::layout::{Ctx, Section};
use crate::cashier::i18n::Lang;
use crate::charts;
use crate::input::query_params;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(&format!("{BASE}/dashboard"), get(show))
}

struct Texts {
    title: &'static str,
    today: &'static str,
    days7: &'static str,
    days30: &'static str,
    orders: &'static str,
    paid: &'static str,
    amount: &'static str,
    success: &'static str,
    refunds: &'static str,
    refunded: &'static str,
    by_channel: &'static str,
    by_app: &'static str,
    by_store: &'static str,
    volume_chart: &'static str,
    count_chart: &'static str,
    findings: &'static str,
    failing: &'static str,
    failing_count: &'static str,
    none: &'static str,
    no_channel: &'static str,
    no_store: &'static str,
}

const ZH: Texts = Texts {
    title: "概览",
    today: "今天",
    days7: "近 7 天",
    days30: "近 30 天",
    orders: "订单数",
    paid: "支付成功",
    amount: "交易额（元）",
    success: "成功率",
    refunds: "退款笔数",
    refunded: "退款额（元）",
    by_channel: "按渠道",
    by_app: "按应用",
    by_store: "按门店",
    volume_chart: "每日交易额（元）",
    count_chart: "每日订单数",
    findings: "待处理的对账差异",
    failing: "通知失败的商户地址",
    failing_count: "失败通知",
    none: "无",
    no_channel: "未选择渠道",
    no_store: "（无门店）",
};

const EN: Texts = Texts {
    title: "Dashboard",
    today: "Today",
    days7: "7 days",
    days30: "30 days",
    orders: "Orders",
    paid: "Paid",
    amount: "Volume (yuan)",
    success: "Success rate",
    refunds: "Refunds",
    refunded: "Refunded (yuan)",
    by_channel: "By channel",
    by_app: "By app",
    by_store: "By store",
    volume_chart: "Daily volume (yuan)",
    count_chart: "Daily orders",
    findings: "Open reconciliation findings",
    failing: "Merchant endpoints with failed notifications",
    failing_count: "Failed",
    none: "none",
    no_channel: "no channel chosen",
    no_store: "(no store)",
};

/// One line of a breakdown, formatted.
struct Row {
    name: String,
    orders: u64,
    paid: u64,
    amount: String,
    success: String,
    refunds: u64,
    refunded: String,
}

fn row(name: String, l: &StatsLine) -> Row {
    Row {
        name,
        orders: l.orders,
        paid: l.paid,
        amount: l.paid_amount.to_yuan(),
        success: l
            .success_rate()
            .map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0)),
        refunds: l.refunds,
        refunded: l.refunded_amount.to_yuan(),
    }
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct Page {
    t: &'static Texts,
    days: u32,
    totals: Row,
    /// By channel, by app, by store: a title and its rows.
    breakdowns: Vec<(&'static str, Vec<Row>)>,
    volume_svg: String,
    count_svg: String,
    /// `None`: the role may not read them.
    findings: Option<usize>,
    failing: Option<Vec<(String, usize)>>,
}

async fn show(State(state): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = ctx.require(Permission::OrdersRead) {
        return r;
    }
    let t = match ctx.session.lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    };
    let days = match query_params(q.as_deref()).get("days").map(String::as_str) {
        Some("1") => 1,
        Some("30") => 30,
        _ => 7,
    };
    let scope = ctx.session.principal.app_scope();
    let window = StatsWindow::last_days(days, Utc::now());
    let stats = match state.store.dashboard_stats(window, scope).await {
        Ok(s) => s,
        Err(e) => return ctx.fail(&e.into()),
    };
    let findings = if ctx.can(Permission::ReconRead) {
        let filter = FindingFilter {
            status: Some(FindingStatus::Open),
            limit: 1000,
            ..FindingFilter::default()
        };
        match state.store.list_findings(&filter).await {
            Ok(f) => Some(f.len()),
            Err(e) => return ctx.fail(&e.into()),
        }
    } else {
        None
    };
    let failing = if ctx.can(Permission::NotificationsRead) {
        let filter = NotificationFilter {
            app_ids: scope.map(<[_]>::to_vec),
            state: Some(NotificationState::Failed),
            limit: 500,
            ..NotificationFilter::default()
        };
        match state.store.list_notifications(&filter).await {
            Ok(list) => {
                let mut by_url: BTreeMap<String, usize> = BTreeMap::new();
                for n in &list {
                    *by_url.entry(n.url.to_string()).or_default() += 1;
                }
                let mut v: Vec<(String, usize)> = by_url.into_iter().collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                v.truncate(10);
                Some(v)
            }
            Err(e) => return ctx.fail(&e.into()),
        }
    } else {
        None
    };
    let max_amount = stats
        .days
        .iter()
        .map(|d| d.line.paid_amount.get())
        .max()
        .unwrap_or(0);
    let max_orders = stats.days.iter().map(|d| d.line.orders).max().unwrap_or(0);
    let by_channel = stats
        .by_channel
        .iter()
        .map(|c| {
            let name = c
                .channel_type
                .map_or_else(|| t.no_channel.to_owned(), |c| c.as_str().to_owned());
            row(name, &c.line)
        })
        .collect();
    let by_app = stats
        .by_app
        .iter()
        .map(|a| row(a.app_id.to_string(), &a.line))
        .collect();
    let by_store = stats
        .by_store
        .iter()
        .map(|s| {
            let store = s.store_id.as_ref().map_or(t.no_store, |s| s.as_str());
            row(format!("{} / {store}", s.app_id), &s.line)
        })
        .collect();
    let page = Page {
        t,
        days,
        totals: row(String::new(), &stats.totals),
        breakdowns: vec![
            (t.by_channel, by_channel),
            (t.by_app, by_app),
            (t.by_store, by_store),
        ],
        volume_svg: charts::bar_chart(
            t.volume_chart,
            &charts::paid_amount_bars(&stats.days),
            &Fen::from_stored(max_amount).to_yuan(),
        ),
        count_svg: charts::bar_chart(
            t.count_chart,
            &charts::order_count_bars(&stats.days),
            &max_orders.to_string(),
        ),
        findings,
        failing,
    };
    ctx.render(Some(Section::Dashboard), t.title, &page)
}
