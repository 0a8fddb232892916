//! Orders: the search (`GET /console/orders`, keyset pages by `before=`)
//! and one order with its timeline, refunds and merchant notifications
//! (every attempt). What a person does to the order (sync, close, refund)
//! is in `order_actions`; the detail page offers only what the role may
//! do and the order's state allows.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use cashdesk_core::{
    AppId, ChannelId, ChannelType, OrderId, OrderState, OutTradeNo, Permission, StoreId,
};
use cashdesk_store::{NotificationFilter, OrderFilter, RefundFilter};

use super::{Cell, day_start, page_link};
use crate::console::BASE;
use crate::console::layout::{Ctx, PageResult, Refused, Section};
use crate::console::texts::Texts;
use crate::input::query_params;
use crate::recon::views::yuan;
use crate::service::{order_actions, orders, outbox, refunds, timeline_view};
use crate::state::AppState;
use crate::wire::{NotificationView, OrderView, RefundView};

/// Rows per page.
const PAGE: u32 = 50;

/// The search form's values, as typed (shown back in the form).
#[derive(Debug, Default)]
pub struct Search {
    pub out_trade_no: String,
    pub order_id: String,
    pub transaction_id: String,
    pub buyer: String,
    pub app_id: String,
    pub store_id: String,
    pub channel: String,
    pub state: String,
    pub from: String,
    pub to: String,
}

impl Search {
    fn read(q: &std::collections::HashMap<String, String>) -> Search {
        let v = |k: &str| q.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
        Search {
            out_trade_no: v("outTradeNo"),
            order_id: v("orderId"),
            transaction_id: v("transactionId"),
            buyer: v("buyer"),
            app_id: v("appId"),
            store_id: v("storeId"),
            channel: v("channel"),
            state: v("state"),
            from: v("from"),
            to: v("to"),
        }
    }

    /// The store's filter; the names of the fields it could not read.
    fn filter(&self) -> (OrderFilter, Vec<&'static str>) {
        let mut bad = Vec::new();
        let mut f = OrderFilter {
            limit: PAGE,
            ..OrderFilter::default()
        };
        fn opt<T>(
            s: &str,
            name: &'static str,
            bad: &mut Vec<&'static str>,
            p: impl FnOnce(&str) -> Option<T>,
        ) -> Option<T> {
            if s.is_empty() {
                return None;
            }
            let v = p(s);
            if v.is_none() {
                bad.push(name);
            }
            v
        }
        f.out_trade_no = opt(&self.out_trade_no, "outTradeNo", &mut bad, |s| {
            OutTradeNo::parse(s).ok()
        });
        f.order_id = opt(&self.order_id, "orderId", &mut bad, OrderId::parse);
        f.transaction_id = opt(&self.transaction_id, "transactionId", &mut bad, |s| {
            (s.len() <= 64).then(|| s.to_owned())
        });
        f.buyer_id = opt(&self.buyer, "buyer", &mut bad, |s| {
            (s.len() <= 128).then(|| s.to_owned())
        });
        f.app_id = opt(&self.app_id, "appId", &mut bad, |s| AppId::parse(s).ok());
        f.store_id = opt(&self.store_id, "storeId", &mut bad, |s| {
            StoreId::parse(s).ok()
        });
        // A channel id, or a channel type (`wx-pay`).
        if !self.channel.is_empty() {
            if let Some(t) = ChannelType::parse(&self.channel) {
                f.channel_type = Some(t);
            } else {
                f.channel_id = opt(&self.channel, "channel", &mut bad, ChannelId::parse);
            }
        }
        f.state = opt(&self.state, "state", &mut bad, OrderState::parse);
        f.created_from = opt(&self.from, "from", &mut bad, day_start);
        f.created_to = opt(&self.to, "to", &mut bad, |s| {
            day_start(s).map(|d| d + chrono::Duration::days(1))
        });
        (f, bad)
    }

    fn pairs(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("outTradeNo", &self.out_trade_no),
            ("orderId", &self.order_id),
            ("transactionId", &self.transaction_id),
            ("buyer", &self.buyer),
            ("appId", &self.app_id),
            ("storeId", &self.store_id),
            ("channel", &self.channel),
            ("state", &self.state),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }
}

#[derive(Template)]
#[template(path = "console/orders.html")]
struct ListPage<'a> {
    t: &'static Texts,
    s: &'a Search,
    states: Vec<&'static str>,
    bad: Vec<&'static str>,
    rows: Vec<Row>,
    next: Option<String>,
    first: Option<String>,
}

struct Row {
    href: String,
    order_id: String,
    out_trade_no: String,
    app_id: String,
    store_id: String,
    amount: String,
    state: String,
    channel: String,
    created_at: String,
}

/// `GET /console/orders`.
pub async fn list(ctx: Ctx, State(state): State<AppState>, RawQuery(q): RawQuery) -> PageResult {
    ctx.require(Permission::OrdersRead)?;
    let params = query_params(q.as_deref());
    let s = Search::read(&params);
    let (mut filter, bad) = s.filter();
    filter.app_ids = ctx.session.principal.app_scope().map(<[AppId]>::to_vec);
    filter.before = params.get("before").and_then(|b| OrderId::parse(b));
    let views = orders::admin_list(&state, &filter)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let t = ctx.t();
    let next = (views.len() == PAGE as usize)
        .then(|| {
            views
                .last()
                .map(|v| page_link("orders", &s.pairs(), &v.order_id))
        })
        .flatten();
    let rows = views.iter().map(row).collect();
    let page = ListPage {
        t,
        s: &s,
        states: OrderState::ALL.iter().map(|s| s.as_str()).collect(),
        bad,
        rows,
        next,
        first: filter
            .before
            .is_some()
            .then(|| page_link("orders", &s.pairs(), "")),
    };
    Ok(ctx.render(Some(Section::Orders), t.orders, &page))
}

fn row(v: &OrderView) -> Row {
    Row {
        href: format!("{BASE}/orders/{}", v.order_id),
        order_id: v.order_id.clone(),
        out_trade_no: v.out_trade_no.clone(),
        app_id: v.app_id.clone(),
        store_id: v.store_id.clone().unwrap_or_default(),
        amount: yuan(v.amount),
        state: v.state.to_string(),
        channel: v.channel_type.clone().unwrap_or_default(),
        created_at: v.created_at.clone(),
    }
}

#[derive(Template)]
#[template(path = "console/order.html")]
struct DetailPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    fields: Vec<Cell>,
    refunds: Vec<RefundView>,
    notifications: Vec<NotificationView>,
    /// The order's URL when it may be synced and closed (`…/sync`, `…/close`).
    actions: Option<String>,
    /// Where the refund form posts, when the role may refund and the order
    /// has money left to refund.
    refund_url: Option<String>,
    refundable: String,
    /// A fresh `outRefundNo` in the form: a double submit is one refund.
    out_refund_no: String,
    refunds_visible: bool,
    resend: bool,
    timeline: Vec<TimelineRow>,
}

/// One line of the order's timeline, formatted.
struct TimelineRow {
    at: String,
    kind: &'static str,
    operation: String,
    outcome: String,
    latency: String,
    detail: String,
}

/// The order's timeline (`service::timeline_view`): creation, every
/// channel call with its latency, the channel's notifications, state
/// changes, refunds and merchant notifications with each attempt — the
/// refunds and merchant notifications only for roles that may read them.
async fn timeline(
    ctx: &Ctx,
    state: &AppState,
    order_id: &OrderId,
) -> Result<Vec<TimelineRow>, Refused> {
    let Some(order) = state
        .store
        .get_order(order_id)
        .await
        .map_err(|e| ctx.fail(&e.into()))?
    else {
        return Err(ctx.not_found().into());
    };
    let entries = timeline_view::load(state, &order)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let refunds = ctx.can(Permission::RefundsRead);
    let notifications = ctx.can(Permission::NotificationsRead);
    Ok(entries
        .into_iter()
        .filter(|e| match e.kind {
            "REFUND_CREATED" => refunds,
            "MERCHANT_NOTIFY" | "MERCHANT_ATTEMPT" => notifications,
            _ => true,
        })
        .map(|e| {
            let mut detail = if e.detail.is_null() {
                String::new()
            } else {
                e.detail.to_string()
            };
            if let Some(r) = &e.refund_id {
                detail = format!("{r} {detail}");
            }
            if detail.chars().count() > 300 {
                detail = detail.chars().take(300).collect::<String>() + "…";
            }
            TimelineRow {
                at: crate::wire::time(e.at),
                kind: e.kind,
                operation: e.operation,
                outcome: e.outcome.unwrap_or_default(),
                latency: e
                    .latency_ms
                    .map_or_else(String::new, |ms| format!("{ms} ms")),
                detail,
            }
        })
        .collect())
}

impl DetailPage<'_> {
    fn money(&self, fen: impl std::borrow::Borrow<i64>) -> String {
        yuan(*fen.borrow())
    }
}

/// `GET /console/orders/{id}`: another app's order reads as missing.
pub async fn detail(ctx: Ctx, State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    ctx.require(Permission::OrdersRead)?;
    let o = visible_order(&ctx, &state, &id).await?;
    let t = ctx.t();
    let order_id = OrderId::parse(&o.order_id).ok_or_else(|| ctx.not_found())?;
    let timeline = timeline(&ctx, &state, &order_id).await?;
    let refunds = if ctx.can(Permission::RefundsRead) {
        refunds::admin_list(
            &state,
            &RefundFilter {
                order_id: Some(order_id.clone()),
                limit: 1000,
                ..RefundFilter::default()
            },
        )
        .await
        .map_err(|e| ctx.fail(&e))?
    } else {
        Vec::new()
    };
    let mut notifications = Vec::new();
    if ctx.can(Permission::NotificationsRead) {
        let list = outbox::admin_list(
            &state,
            &NotificationFilter {
                order_id: Some(order_id),
                limit: 1000,
                ..NotificationFilter::default()
            },
        )
        .await
        .map_err(|e| ctx.fail(&e))?;
        for n in list {
            // With every attempt.
            notifications.push(
                outbox::admin_get(&state, &n.notify_id)
                    .await
                    .map_err(|e| ctx.fail(&e))?,
            );
        }
    }
    let page = DetailPage {
        t,
        csrf: ctx.csrf(),
        fields: order_fields(t, &o),
        refunds,
        notifications,
        actions: (ctx.can(Permission::OrdersManage) && o.state.is_payable())
            .then(|| format!("{BASE}/orders/{}", o.order_id)),
        refund_url: (ctx.can(Permission::RefundsCreate)
            && o.state.is_paid()
            && o.refunded_amount < o.amount)
            .then(|| format!("{BASE}/orders/{}/refund", o.order_id)),
        refundable: yuan(o.amount - o.refunded_amount),
        out_refund_no: order_actions::new_out_refund_no().to_string(),
        refunds_visible: ctx.can(Permission::RefundsRead),
        resend: ctx.can(Permission::NotificationsResend),
        timeline,
    };
    Ok(ctx.render(
        Some(Section::Orders),
        &format!("{} {}", t.order, o.out_trade_no),
        &page,
    ))
}

/// The order, if it exists and the principal sees its app; else the 404
/// page (the same for both).
pub async fn visible_order(ctx: &Ctx, state: &AppState, id: &str) -> Result<OrderView, Refused> {
    let o = orders::admin_get(state, id)
        .await
        .map_err(|e| ctx.fail(&e))?;
    if !super::sees(ctx, &o.app_id) {
        return Err(ctx.not_found().into());
    }
    Ok(o)
}

fn order_fields(t: &'static Texts, o: &OrderView) -> Vec<Cell> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        Cell::new("orderId", &o.order_id),
        Cell::new("outTradeNo", &o.out_trade_no),
        Cell::new(t.app, &o.app_id),
        Cell::new(t.store, &opt(&o.store_id)),
        Cell::new(t.state, o.state.as_str()),
        Cell::new(t.amount, &yuan(o.amount)),
        Cell::new(t.refunded, &yuan(o.refunded_amount)),
        Cell::new(t.title, &o.order_title),
        Cell::new(t.buyer, &o.third_party_user),
        Cell::new(t.channel, &opt(&o.channel_type)),
        Cell::new("channelId", &opt(&o.channel_id)),
        Cell::new("sceneCode", &opt(&o.scene_code)),
        Cell::new("mchId", &opt(&o.mch_id)),
        Cell::new(t.transaction_id, &opt(&o.transaction_id)),
        Cell::new(t.created_at, &o.created_at),
        Cell::new(t.pay_time, &opt(&o.pay_time)),
        Cell::new(t.expire_at, &o.expire_at),
        Cell::new(t.updated_at, &o.updated_at),
        Cell::new(
            "notifyUrl",
            &o.notify_url
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
        ),
        Cell::new("attach", &opt(&o.attach)),
        Cell::new("clientIp", &opt(&o.client_ip)),
        Cell::new(
            t.error,
            &format!("{} {}", opt(&o.result_error_code), opt(&o.result_error_msg)),
        ),
        Cell::new(t.paid_after_close, t.yes_no(o.paid_after_close)),
    ]
}
